//! A single image (PNG, JPEG, BMP) as a one-level slide, decoded once with the
//! PIL-compatible decoders of `biofm-preprocess` (JPEG through libjpeg-turbo).

use crate::error::WsiError;
use biofm_preprocess::image::{decode_bytes, DecodeOptions, Mode};
use std::path::Path;

/// A decoded image held in memory.
pub(crate) struct PlainImage {
    pub width: u64,
    pub height: u64,
    /// `"PNG"`, `"JPEG"`, `"BMP"` or `"TIFF"`, from the magic bytes.
    pub format: &'static str,
    /// The PIL mode the file decoded to (`"RGB"`, `"L"`, `"RGBA"`, ...).
    pub mode: &'static str,
    /// 3 (opaque RGB) or 4 (RGBA with the file's straight alpha).
    channels: usize,
    pixels: Vec<u8>,
}

fn format_of(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "PNG"
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "JPEG"
    } else if bytes.starts_with(b"BM") {
        "BMP"
    } else {
        "TIFF"
    }
}

impl PlainImage {
    /// Decodes `path` as `PIL.Image.open` does (no EXIF rotation). Images with alpha
    /// (`RGBA`, `LA`) keep it; every other mode becomes opaque RGB as `convert("RGB")`.
    pub fn open(path: &Path) -> Result<PlainImage, WsiError> {
        let fail = |e: String| WsiError::Other(format!("cannot read {} as an image slide: {e}", path.display()));
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        // A slide-sized image is not a decompression bomb: no pixel-count limit, only the
        // decoder's byte budget for the decoded pixels.
        let opts = DecodeOptions { max_image_pixels: None, ..Default::default() };
        // The decoder's errors already start with the file name.
        let img = decode_bytes(&bytes, &path.display().to_string(), &opts)
            .map_err(|e| WsiError::Other(format!("cannot read image slide {e}")))?;
        let format = format_of(&bytes);
        drop(bytes);
        let mode = img.mode().pil_name();
        let (w, h) = (img.width() as u64, img.height() as u64);
        let bytes_of = |im: &biofm_preprocess::image::Image| {
            im.as_u8().map(<[u8]>::to_vec).ok_or_else(|| fail(format!("mode {mode} has no 8-bit samples")))
        };
        let (channels, pixels) = match img.mode() {
            Mode::RGBA => (4, bytes_of(&img)?),
            Mode::LA => (4, bytes_of(&img)?.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect()),
            _ => (3, bytes_of(&img.convert_rgb())?),
        };
        if pixels.len() as u64 != w * h * channels as u64 {
            return Err(fail(format!("{} bytes decoded for {w}x{h} pixels", pixels.len())));
        }
        Ok(PlainImage { width: w, height: h, format, mode, channels, pixels })
    }

    /// RGBA of the `w x h` region at `(x, y)`; outside the image transparent zeros.
    pub fn read_region(&self, x: i64, y: i64, w: usize, h: usize) -> Vec<u8> {
        let mut out = vec![0u8; w * h * 4];
        let (x0, y0) = (x.max(0), y.max(0));
        let x1 = x.saturating_add(w as i64).min(self.width as i64);
        let y1 = y.saturating_add(h as i64).min(self.height as i64);
        if x1 <= x0 || y1 <= y0 {
            return out;
        }
        let c = self.channels;
        let n = (x1 - x0) as usize;
        for py in y0..y1 {
            let src = (py as usize * self.width as usize + x0 as usize) * c;
            let dst = ((py - y) as usize * w + (x0 - x) as usize) * 4;
            let (src, dst) = (&self.pixels[src..src + n * c], &mut out[dst..dst + n * 4]);
            if c == 4 {
                dst.copy_from_slice(src);
            } else {
                for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
                    d[..3].copy_from_slice(s);
                    d[3] = 255;
                }
            }
        }
        out
    }
}
