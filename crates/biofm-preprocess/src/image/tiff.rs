//! TIFF (first page), with the modes of Pillow 13's `TiffImagePlugin.OPEN_INFO`:
//! 1-bit → `1`, 8-bit grey → `L`, 16-bit grey → `I;16` (`I;16B` for big-endian files),
//! signed 16/32-bit → `I`, float32 → `F`, RGB 8/16 → `RGB` (16-bit: high byte), RGB +
//! alpha → `RGBA` (associated alpha un-premultiplied like Pillow's `RGBa` unpacker, an
//! unspecified extra sample dropped), grey + alpha → `LA`, CMYK → `CMYK`. Uncompressed,
//! LZW, Deflate, PackBits and predictor files decode through the `tiff` crate, which
//! cannot read palette (`P`) TIFFs: those get an "unsupported" error.
//!
//! Pillow 13 applies the Orientation tag while loading a TIFF, so this decoder does too.

use std::io::Cursor;

use tiff::decoder::{Decoder, DecodingResult, Limits};
use tiff::tags::Tag;
use tiff::{ColorType, TiffError};

use super::convert::unpremultiply;
use super::decode::{Ctx, Decoded};
use super::exif::ifd0_value;
use super::geometry::Transpose;
use super::{Image, ImageError, Mode, Pixels};

const FORMAT: &str = "TIFF";

fn map_err(ctx: &Ctx, e: TiffError) -> ImageError {
    match e {
        TiffError::LimitsExceeded => ctx.corrupt(
            FORMAT,
            None,
            "decoder memory limit exceeded (DecodeOptions::max_bytes)",
        ),
        TiffError::UnsupportedError(u) => ctx.unsupported(FORMAT, u.to_string()),
        e => ctx.corrupt(FORMAT, None, e.to_string()),
    }
}

/// Decode the first page of a TIFF file as `Image.open` does.
pub(super) fn decode(data: &[u8], ctx: &Ctx) -> Result<Decoded, ImageError> {
    let err = |e| map_err(ctx, e);
    // Size guard straight from the header, before the tiff crate validates strips or
    // allocates (classic TIFF; BigTIFF is checked after parsing).
    if let (Some(w), Some(h)) = (ifd0_value(data, 256), ifd0_value(data, 257)) {
        ctx.check_size(u64::from(w), u64::from(h), Mode::L)?;
    }
    let mut limits = Limits::default();
    limits.decoding_buffer_size = usize::try_from(ctx.opts.max_bytes).unwrap_or(usize::MAX);
    let mut dec = Decoder::new(Cursor::new(data))
        .map_err(err)?
        .with_limits(limits);
    let (width, height) = dec.dimensions().map_err(err)?;
    let color = dec.colortype().map_err(err)?;
    let spp: u16 = dec
        .find_tag_unsigned(Tag::SamplesPerPixel)
        .map_err(err)?
        .unwrap_or(1);
    let extra: Vec<u16> = dec
        .find_tag_unsigned_vec(Tag::ExtraSamples)
        .map_err(err)?
        .unwrap_or_default();
    let format: u16 = dec
        .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)
        .map_err(err)?
        .and_then(|v| v.first().copied())
        .unwrap_or(1);
    let planar: u16 = dec
        .find_tag_unsigned(Tag::PlanarConfiguration)
        .map_err(err)?
        .unwrap_or(1);
    let orientation: Option<u16> = dec.find_tag_unsigned(Tag::Orientation).map_err(err)?;
    let big_endian = matches!(dec.byte_order(), tiff::tags::ByteOrder::BigEndian);
    if planar == 2 && spp > 1 {
        return Err(ctx.unsupported(FORMAT, "planar (separate) sample layout"));
    }
    let assoc_alpha = extra.first() == Some(&1);
    let unspecified_extra = extra.first() == Some(&0);
    let mode = match (color, spp) {
        (ColorType::Gray(1), 1) => Mode::Bilevel,
        (ColorType::Gray(8), 1) => Mode::L,
        (ColorType::Gray(16), 1) if format == 2 => Mode::I,
        (ColorType::Gray(16), 1) if big_endian => Mode::I16B,
        (ColorType::Gray(16), 1) => Mode::I16,
        (ColorType::Gray(32), 1) if format == 3 => Mode::F,
        (ColorType::Gray(32), 1) => Mode::I,
        (
            ColorType::Multiband {
                bit_depth: 8,
                num_samples: 2,
            },
            2,
        ) if unspecified_extra => Mode::L,
        (
            ColorType::Multiband {
                bit_depth: 8,
                num_samples: 2,
            },
            2,
        ) if !assoc_alpha => Mode::LA,
        (ColorType::RGB(8 | 16), 3) => Mode::RGB,
        (ColorType::RGB(8 | 16) | ColorType::RGBA(8 | 16), 4) if unspecified_extra => Mode::RGB,
        (ColorType::RGBA(8 | 16), 4) => Mode::RGBA,
        (ColorType::CMYK(8), 4) => Mode::CMYK,
        (color, spp) => {
            return Err(ctx.unsupported(FORMAT, format!("{color:?} with {spp} samples per pixel")));
        }
    };
    ctx.check_size(u64::from(width), u64::from(height), mode)?;
    let result = dec.read_image().map_err(err)?;
    let (w, h, n) = (width as usize, height as usize, usize::from(spp));
    let short = || ctx.corrupt(FORMAT, None, "decoded strip data shorter than the image");
    let mut pixels = match (mode, result) {
        (Mode::Bilevel, DecodingResult::U8(packed)) => {
            let stride = w.div_ceil(8);
            if packed.len() < stride * h {
                return Err(short());
            }
            let px = (0..h)
                .flat_map(|y| (0..w).map(move |x| (y, x)))
                .map(|(y, x)| {
                    if packed[y * stride + x / 8] & (0x80 >> (x % 8)) != 0 {
                        255
                    } else {
                        0
                    }
                })
                .collect();
            Pixels::U8(px)
        }
        (_, DecodingResult::U8(v)) => {
            Pixels::U8(keep_bands(&v, n, mode.bands(), w * h).ok_or_else(short)?)
        }
        (Mode::RGB | Mode::RGBA, DecodingResult::U16(v)) => {
            let high: Vec<u8> = v.iter().map(|s| (s >> 8) as u8).collect();
            Pixels::U8(keep_bands(&high, n, mode.bands(), w * h).ok_or_else(short)?)
        }
        (Mode::I16 | Mode::I16B, DecodingResult::U16(v)) => Pixels::U16(v),
        (Mode::I, DecodingResult::I16(v)) => Pixels::I32(v.into_iter().map(i32::from).collect()),
        (Mode::I, DecodingResult::I32(v)) => Pixels::I32(v),
        (Mode::I, DecodingResult::U32(v)) => Pixels::I32(v.into_iter().map(|s| s as i32).collect()),
        (Mode::F, DecodingResult::F32(v)) => Pixels::F32(v),
        (mode, _) => {
            return Err(ctx.unsupported(FORMAT, format!("sample format {format} for mode {mode}")))
        }
    };
    if let (Mode::RGBA, true, Pixels::U8(v)) = (mode, assoc_alpha, &mut pixels) {
        // Pillow's "RGBa" unpacker: fully transparent pixels become all zero.
        v.chunks_exact_mut(4)
            .filter(|px| px[3] == 0)
            .for_each(|px| px.fill(0));
        unpremultiply(v, 4);
    }
    let mut image = Image::new(width, height, mode, pixels).map_err(|_| short())?;
    if let Some(t) = orientation.and_then(Transpose::for_exif_orientation) {
        image = image.transpose(t);
    }
    Ok(Decoded {
        image,
        orientation: None,
    })
}

/// Keep the first `keep` of `n` interleaved samples per pixel, or `None` if `v` is short.
fn keep_bands(v: &[u8], n: usize, keep: usize, pixels: usize) -> Option<Vec<u8>> {
    let v = v.get(..pixels * n)?;
    if n == keep {
        return Some(v.to_vec());
    }
    Some(
        v.chunks_exact(n)
            .flat_map(|px| px[..keep].iter().copied())
            .collect(),
    )
}
