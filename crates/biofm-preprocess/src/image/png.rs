//! PNG, unpacked into the modes of Pillow 13's `PngImagePlugin._MODES`:
//!
//! | bit depth / colour type | mode | unpacking |
//! |---|---|---|
//! | 1 grey | `1` | bits → 0/255 |
//! | 2, 4 grey | `L` | ×0x55, ×0x11 |
//! | 8 grey / 16 grey | `L` / `I;16` | as is |
//! | 8 / 16 RGB | `RGB` | 16-bit: high byte |
//! | 1, 2, 4, 8 palette | `P` | indices |
//! | 8 grey+alpha | `LA` | as is |
//! | 16 grey+alpha | `RGBA` | high bytes, grey copied to R, G, B |
//! | 8 / 16 RGBA | `RGBA` | 16-bit: high byte |
//!
//! `tRNS` becomes [`Transparency`] as in `PngImageFile.chunk_tRNS`.

use std::io::Cursor;

use png::{BitDepth, ColorType, Transformations};

use super::decode::{Ctx, Decoded};
use super::exif::{exif_orientation, xmp_orientation};
use super::{Image, ImageError, Mode, Palette, Pixels, Transparency};

const XMP_KEY: &str = "XML:com.adobe.xmp";
const MAX_TEXT_CHUNK: usize = 1 << 20;

fn corrupt(ctx: &Ctx, e: png::DecodingError) -> ImageError {
    let message = match e {
        png::DecodingError::LimitsExceeded => {
            "decoder memory limit exceeded (DecodeOptions::max_bytes)".to_string()
        }
        e => e.to_string(),
    };
    ctx.corrupt("PNG", None, message)
}

/// Decode a PNG file as `Image.open` does.
pub(super) fn decode(data: &[u8], ctx: &Ctx) -> Result<Decoded, ImageError> {
    let limits = png::Limits {
        bytes: usize::try_from(ctx.opts.max_bytes).unwrap_or(usize::MAX),
    };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(data), limits);
    decoder.set_transformations(Transformations::IDENTITY);
    decoder.set_ignore_text_chunk(false);
    let mut reader = decoder.read_info().map_err(|e| corrupt(ctx, e))?;
    let (width, height, depth, color) = {
        let info = reader.info();
        (info.width, info.height, info.bit_depth, info.color_type)
    };
    let mode = match (color, depth) {
        (ColorType::Grayscale, BitDepth::One) => Mode::Bilevel,
        (ColorType::Grayscale, BitDepth::Sixteen) => Mode::I16,
        (ColorType::Grayscale, _) => Mode::L,
        (ColorType::Rgb, _) => Mode::RGB,
        (ColorType::Indexed, _) => Mode::P,
        (ColorType::GrayscaleAlpha, BitDepth::Eight) => Mode::LA,
        (ColorType::GrayscaleAlpha, _) | (ColorType::Rgba, _) => Mode::RGBA,
    };
    ctx.check_size(u64::from(width), u64::from(height), mode)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| ctx.unsupported("PNG", "image too large"))?;
    let mut raw = vec![0u8; size];
    let frame = reader.next_frame(&mut raw).map_err(|e| corrupt(ctx, e))?;
    // Chunks after the image data (eXIf may follow IDAT); a damaged tail after complete
    // pixel data is ignored, as Pillow only reads it on demand.
    let _ = reader.finish();
    let info = reader.info();

    let w = width as usize;
    let h = height as usize;
    let stride = frame.line_size;
    let needed = (w * color.samples() * depth as usize).div_ceil(8);
    if frame.width != width || frame.height != height || stride < needed || raw.len() < stride * h {
        return Err(ctx.unsupported("PNG", "first frame smaller than the image (APNG)"));
    }
    let rows = raw.chunks_exact(stride).take(h);
    let mut out = Vec::with_capacity(w * h * mode.bands());
    for row in rows {
        unpack_row(row, w, color, depth, &mut out);
    }
    let mut image = Image::new(width, height, mode, pixels_for(mode, out))?;
    if mode == Mode::P {
        let plte = info.palette.as_deref().unwrap_or(&[]);
        image = image.with_palette(Palette::from_rgb(plte));
    }
    image = image.with_transparency(info.trns.as_deref().and_then(|t| transparency(mode, t)));

    let orientation = info
        .exif_metadata
        .as_deref()
        .and_then(exif_orientation)
        .or_else(|| {
            let itxt = info
                .utf8_text
                .iter()
                .find(|c| c.keyword == XMP_KEY)
                .and_then(|c| {
                    let mut c = c.clone();
                    c.decompress_text_with_limit(MAX_TEXT_CHUNK).ok()?;
                    c.get_text().ok()
                });
            let text = || {
                info.uncompressed_latin1_text
                    .iter()
                    .find(|c| c.keyword == XMP_KEY)
                    .map(|c| c.text.clone())
            };
            itxt.or_else(text)
                .and_then(|x| xmp_orientation(x.as_bytes()))
        });
    Ok(Decoded { image, orientation })
}

/// Samples arrive as bytes; 16-bit grey becomes `u16` values.
fn pixels_for(mode: Mode, out: Vec<u8>) -> Pixels {
    if mode == Mode::I16 {
        Pixels::U16(
            out.chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect(),
        )
    } else {
        Pixels::U8(out)
    }
}

/// Unpack one scanline into PIL's layout (16-bit grey is kept as big-endian byte pairs
/// here and converted by [`pixels_for`]).
fn unpack_row(row: &[u8], w: usize, color: ColorType, depth: BitDepth, out: &mut Vec<u8>) {
    let bits = depth as usize;
    match (color, depth) {
        (
            ColorType::Grayscale | ColorType::Indexed,
            BitDepth::One | BitDepth::Two | BitDepth::Four,
        ) => {
            let per_byte = 8 / bits;
            let mask = (1u8 << bits) - 1;
            let scale = match (color, depth) {
                (ColorType::Indexed, _) => 1,
                (_, BitDepth::One) => 255,
                (_, BitDepth::Two) => 0x55,
                _ => 0x11,
            };
            out.extend((0..w).map(|x| {
                let shift = 8 - bits * (x % per_byte + 1);
                ((row[x / per_byte] >> shift) & mask) * scale
            }));
        }
        (ColorType::Grayscale, BitDepth::Sixteen) => out.extend_from_slice(&row[..w * 2]),
        (ColorType::GrayscaleAlpha, BitDepth::Sixteen) => {
            for px in row[..w * 4].chunks_exact(4) {
                out.extend_from_slice(&[px[0], px[0], px[0], px[2]]);
            }
        }
        (_, BitDepth::Sixteen) => out.extend(row[..w * color.samples() * 2].iter().step_by(2)),
        _ => out.extend_from_slice(&row[..w * color.samples()]),
    }
}

/// `info["transparency"]` from a tRNS chunk, as `PngImageFile.chunk_tRNS`.
fn transparency(mode: Mode, trns: &[u8]) -> Option<Transparency> {
    let be16 = |i: usize| trns.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    match mode {
        Mode::P => {
            // `^\xff*\x00\xff*$`: one fully transparent entry, all others opaque → an index.
            let simple = trns.iter().filter(|&&a| a == 0).count() == 1
                && trns.iter().all(|&a| a == 0 || a == 255);
            match trns.iter().position(|&a| a == 0) {
                Some(i) if simple => Some(Transparency::Value(i as u16)),
                _ => Some(Transparency::PaletteAlpha(trns.to_vec())),
            }
        }
        Mode::Bilevel => be16(0).map(|v| Transparency::Value(if v != 0 { 255 } else { 0 })),
        Mode::L | Mode::I16 => be16(0).map(Transparency::Value),
        Mode::RGB => Some(Transparency::Rgb([be16(0)?, be16(2)?, be16(4)?])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_trns_like_pillow() {
        assert_eq!(
            transparency(Mode::P, &[255, 0, 255]),
            Some(Transparency::Value(1))
        );
        assert_eq!(
            transparency(Mode::P, &[0, 128]),
            Some(Transparency::PaletteAlpha(vec![0, 128]))
        );
        assert_eq!(
            transparency(Mode::P, &[255, 255]),
            Some(Transparency::PaletteAlpha(vec![255, 255]))
        );
        assert_eq!(
            transparency(Mode::RGB, &[0, 1, 0, 2, 0, 3]),
            Some(Transparency::Rgb([1, 2, 3]))
        );
    }

    #[test]
    fn sub_byte_unpacking() {
        let mut out = Vec::new();
        unpack_row(
            &[0b1101_0010],
            4,
            ColorType::Grayscale,
            BitDepth::Two,
            &mut out,
        );
        assert_eq!(out, vec![3 * 0x55, 0x55, 0, 2 * 0x55]);
        out.clear();
        unpack_row(
            &[0b1010_0000],
            3,
            ColorType::Indexed,
            BitDepth::One,
            &mut out,
        );
        assert_eq!(out, vec![1, 0, 1]);
    }
}
