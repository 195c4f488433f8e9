//! BMP as Pillow 13's `BmpImagePlugin` opens it: uncompressed 1/4/8-bit palette images
//! (`P`; `1` or `L` when the palette is the identity grey ramp), 16-bit `BGR;15`/`BGR;16`,
//! 24-bit `BGR` and 32-bit `BGRX` (`RGB`; `RGBA` only for bit-field masks that name an
//! alpha channel). Bottom-up and top-down files. RLE-compressed files are refused.

use super::decode::{Ctx, Decoded};
use super::{Image, ImageError, Mode, Palette, Pixels};

const FORMAT: &str = "BMP";
const BI_RGB: u32 = 0;
const BI_BITFIELDS: u32 = 3;

/// A little-endian reader that reports the offset of a short read.
struct Bytes<'a> {
    data: &'a [u8],
    ctx: &'a Ctx<'a>,
}

impl Bytes<'_> {
    fn slice(&self, at: usize, len: usize) -> Result<&[u8], ImageError> {
        at.checked_add(len)
            .and_then(|end| self.data.get(at..end))
            .ok_or_else(|| {
                self.ctx.corrupt(
                    FORMAT,
                    Some(self.data.len() as u64),
                    format!("file ends before byte {}", at.saturating_add(len)),
                )
            })
    }
    fn u16(&self, at: usize) -> Result<u16, ImageError> {
        let b = self.slice(at, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&self, at: usize) -> Result<u32, ImageError> {
        let b = self.slice(at, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// How the stored pixels map onto the image mode.
enum Layout {
    /// 1/4/8-bit indices (into the palette, or grey values for modes `1`/`L`).
    Indexed {
        bits: usize,
        grey: Option<Mode>,
        palette: Vec<u8>,
    },
    /// 16-bit 5-5-5 or 5-6-5, channel bit widths (red, green, blue).
    Packed16 { green_bits: u32 },
    /// 24/32-bit: byte positions of R, G, B (and A) within the pixel.
    Bytes {
        size: usize,
        rgba: [Option<usize>; 4],
    },
}

/// Decode a BMP file as `Image.open` does.
pub(super) fn decode(data: &[u8], ctx: &Ctx) -> Result<Decoded, ImageError> {
    let r = Bytes { data, ctx };
    let offset = r.u32(10)? as usize;
    let header_size = r.u32(14)? as usize;
    let (width, height, top_down, bits, compression, colors, after_header) = match header_size {
        12 => {
            let w = i64::from(r.u16(18)?);
            let h = i64::from(r.u16(20)?);
            (w, h, false, r.u16(24)?, BI_RGB, 0, 14 + 12)
        }
        40 | 52 | 56 | 64 | 108 | 124 => {
            let w = i64::from(r.u32(18)? as i32);
            let raw_h = r.u32(22)?;
            // PIL: a height whose top byte is 0xFF means top-down rows.
            let top_down = raw_h >> 24 == 0xFF;
            let h = if top_down {
                i64::from(raw_h.wrapping_neg())
            } else {
                i64::from(raw_h)
            };
            (
                w,
                h,
                top_down,
                r.u16(28)?,
                r.u32(30)?,
                r.u32(46)? as usize,
                14 + header_size,
            )
        }
        n => return Err(ctx.unsupported(FORMAT, format!("header type ({n})"))),
    };
    if width < 0 || height < 0 {
        return Err(ctx.unsupported(FORMAT, format!("negative size {width}x{height}")));
    }
    let bits = usize::from(bits);
    let palette_padding = if header_size == 12 { 3 } else { 4 };
    let colors = if colors == 0 && bits <= 8 {
        1 << bits
    } else {
        colors
    };
    let mut at = after_header;
    let layout = match (compression, bits) {
        (BI_RGB, 1 | 4 | 8) => {
            if !(1..=65536).contains(&colors) {
                return Err(ctx.unsupported(FORMAT, format!("palette size ({colors})")));
            }
            let raw = r.slice(at, palette_padding * colors)?;
            at += palette_padding * colors;
            let palette: Vec<u8> = raw
                .chunks_exact(palette_padding)
                .flat_map(|c| [c[2], c[1], c[0]])
                .collect();
            let ramp = |i: usize| if colors == 2 { [0u8, 255][i] } else { i as u8 };
            let is_grey = (0..colors).all(|i| palette[i * 3..i * 3 + 3] == [ramp(i); 3]);
            let grey = is_grey.then_some(if colors <= 2 { Mode::Bilevel } else { Mode::L });
            // PIL unpacks these with the 1- or 8-bit raw mode whatever the depth; only the
            // depths where that is right are accepted.
            if (grey == Some(Mode::L) && bits != 8) || (grey == Some(Mode::Bilevel) && bits != 1) {
                return Err(ctx.unsupported(
                    FORMAT,
                    format!("{bits}-bit grey palette with {colors} colours"),
                ));
            }
            Layout::Indexed {
                bits,
                grey,
                palette,
            }
        }
        (BI_RGB, 16) => Layout::Packed16 { green_bits: 5 },
        (BI_RGB, 24) => Layout::Bytes {
            size: 3,
            rgba: [Some(2), Some(1), Some(0), None],
        },
        (BI_RGB, 32) => Layout::Bytes {
            size: 4,
            rgba: [Some(2), Some(1), Some(0), None],
        },
        (BI_BITFIELDS, 16 | 24 | 32) => {
            let masks = if header_size >= 52 {
                [
                    r.u32(54)?,
                    r.u32(58)?,
                    r.u32(62)?,
                    if header_size >= 56 { r.u32(66)? } else { 0 },
                ]
            } else {
                at += 12;
                [
                    r.u32(after_header)?,
                    r.u32(after_header + 4)?,
                    r.u32(after_header + 8)?,
                    0,
                ]
            };
            bitfield_layout(bits, masks)
                .ok_or_else(|| ctx.unsupported(FORMAT, "bitfields layout"))?
        }
        (1 | 2, _) => return Err(ctx.unsupported(FORMAT, "RLE compression")),
        (c, b) => {
            return Err(ctx.unsupported(FORMAT, format!("compression {c} with {b} bits per pixel")))
        }
    };
    // PIL skips the palette when the data offset points right after the header.
    let offset = if offset == 14 + header_size && bits <= 8 {
        offset + palette_padding * colors
    } else if offset == 0 {
        at
    } else {
        offset
    };
    let mode = match &layout {
        Layout::Indexed { grey: Some(m), .. } => *m,
        Layout::Indexed { .. } => Mode::P,
        Layout::Bytes {
            rgba: [_, _, _, Some(_)],
            ..
        } => Mode::RGBA,
        _ => Mode::RGB,
    };
    ctx.check_size(width as u64, height as u64, mode)?;
    let (w, h) = (width as usize, height as usize);
    let stride = ((w * bits + 31) >> 3) & !3;
    let pixels = r.slice(offset, stride * h)?;
    let mut out = Vec::with_capacity(w * h * mode.bands());
    for y in 0..h {
        let src_row = if top_down { y } else { h - 1 - y };
        let row = &pixels[src_row * stride..(src_row + 1) * stride];
        match &layout {
            Layout::Indexed { bits, grey, .. } => {
                let per = 8 / bits;
                let mask = ((1u16 << bits) - 1) as u8;
                out.extend((0..w).map(|x| {
                    let v = (row[x / per] >> (8 - bits * (x % per + 1))) & mask;
                    if *grey == Some(Mode::Bilevel) && v != 0 {
                        255
                    } else {
                        v
                    }
                }));
            }
            Layout::Packed16 { green_bits } => {
                for px in row[..w * 2].chunks_exact(2) {
                    let p = u32::from(u16::from_le_bytes([px[0], px[1]]));
                    let gmax = (1 << green_bits) - 1;
                    let (r5, g, b5) = ((p >> (5 + green_bits)) & 31, (p >> 5) & gmax, p & 31);
                    out.extend([
                        (r5 * 255 / 31) as u8,
                        (g * 255 / gmax) as u8,
                        (b5 * 255 / 31) as u8,
                    ]);
                }
            }
            Layout::Bytes { size, rgba } => {
                for px in row[..w * size].chunks_exact(*size) {
                    out.extend(rgba.iter().flatten().map(|&i| px[i]));
                }
            }
        }
    }
    let mut image = Image::new(width as u32, height as u32, mode, Pixels::U8(out))?;
    if let Layout::Indexed {
        grey: None,
        palette,
        ..
    } = layout
    {
        image = image.with_palette(Palette::from_rgb(&palette));
    }
    Ok(Decoded {
        image,
        orientation: None,
    })
}

/// The bit-field masks Pillow accepts, as byte positions (little-endian pixel) of R, G, B, A.
fn bitfield_layout(bits: usize, [r, g, b, a]: [u32; 4]) -> Option<Layout> {
    let byte = |m: u32| match m {
        0xFF => Some(0),
        0xFF00 => Some(1),
        0xFF_0000 => Some(2),
        0xFF00_0000 => Some(3),
        _ => None,
    };
    match bits {
        16 => match (r, g, b) {
            (0xF800, 0x7E0, 0x1F) => Some(Layout::Packed16 { green_bits: 6 }),
            (0x7C00, 0x3E0, 0x1F) => Some(Layout::Packed16 { green_bits: 5 }),
            _ => None,
        },
        24 if (r, g, b) == (0xFF_0000, 0xFF00, 0xFF) => Some(Layout::Bytes {
            size: 3,
            rgba: [Some(2), Some(1), Some(0), None],
        }),
        32 => {
            const SUPPORTED: [[u32; 4]; 8] = [
                [0xFF0000, 0xFF00, 0xFF, 0x0],
                [0xFF000000, 0xFF0000, 0xFF00, 0x0],
                [0xFF000000, 0xFF00, 0xFF, 0x0],
                [0xFF000000, 0xFF0000, 0xFF00, 0xFF],
                [0xFF, 0xFF00, 0xFF0000, 0xFF000000],
                [0xFF0000, 0xFF00, 0xFF, 0xFF000000],
                [0xFF000000, 0xFF00, 0xFF, 0xFF0000],
                [0x0, 0x0, 0x0, 0x0],
            ];
            if !SUPPORTED.contains(&[r, g, b, a]) {
                return None;
            }
            if [r, g, b, a] == [0; 4] {
                // PIL reads all-zero masks as BGRA.
                return Some(Layout::Bytes {
                    size: 4,
                    rgba: [Some(2), Some(1), Some(0), Some(3)],
                });
            }
            // "BGXR" (0xFF000000, 0xFF00, 0xFF, 0): red in the top byte, green, blue.
            let rgba = [
                byte(r),
                byte(g),
                byte(b),
                if a == 0 { None } else { byte(a) },
            ];
            Some(Layout::Bytes { size: 4, rgba })
        }
        _ => None,
    }
}
