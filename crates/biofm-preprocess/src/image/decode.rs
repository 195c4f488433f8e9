//! Format detection, limits and the `Image.open` entry points.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::geometry::Transpose;
use super::{bmp, jpeg, png, tiff, Image, ImageError, Mode};

/// PIL's `Image.MAX_IMAGE_PIXELS` (Pillow 13): above it PIL warns, above twice it refuses.
pub const MAX_IMAGE_PIXELS: u64 = 89_478_485;

/// How to decode. The defaults reproduce `PIL.Image.open(path)` + `load()`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeOptions {
    /// Apply the EXIF / XMP orientation like `ImageOps.exif_transpose`. Off by default:
    /// `Image.open` does not rotate JPEG or PNG images and neither do the reference
    /// pipelines. (Pillow 13 always applies a TIFF file's own Orientation tag while
    /// loading, and so does this decoder, whatever this flag says.)
    pub exif_transpose: bool,
    /// Decompression-bomb guard, as PIL's `Image.MAX_IMAGE_PIXELS`: images with more than
    /// twice this many pixels are refused before any pixel memory is allocated. `None`
    /// disables the check.
    pub max_image_pixels: Option<u64>,
    /// Byte budget for the input file and for the decoded pixel buffer.
    pub max_bytes: u64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            exif_transpose: false,
            max_image_pixels: Some(MAX_IMAGE_PIXELS),
            max_bytes: 1 << 30,
        }
    }
}

/// What a format decoder hands back: the image as `Image.open` gives it, plus the
/// orientation `im.getexif()` would report (EXIF tag 0x0112, or XMP `tiff:Orientation`).
pub(super) struct Decoded {
    pub image: Image,
    pub orientation: Option<u16>,
}

/// File name and limits, shared by the format decoders.
pub(super) struct Ctx<'a> {
    pub name: &'a str,
    pub opts: &'a DecodeOptions,
}

impl Ctx<'_> {
    /// Refuse zero-sized, bomb-sized and over-budget images, from the header values, before
    /// the decoder allocates pixels.
    pub fn check_size(&self, width: u64, height: u64, mode: Mode) -> Result<(), ImageError> {
        let name = self.name.to_string();
        if width == 0 || height == 0 {
            return Err(ImageError::ZeroSize {
                name,
                width,
                height,
            });
        }
        let pixels = width.saturating_mul(height);
        if let Some(max) = self.opts.max_image_pixels {
            let limit = max.saturating_mul(2);
            if pixels > limit {
                return Err(ImageError::DecompressionBomb {
                    name,
                    width,
                    height,
                    pixels,
                    limit,
                });
            }
        }
        let bytes = pixels.saturating_mul(mode.bytes_per_pixel() as u64);
        if bytes > self.opts.max_bytes
            || u32::try_from(width).is_err()
            || u32::try_from(height).is_err()
        {
            return Err(ImageError::OverBudget {
                name,
                what: "decoded image",
                bytes,
                budget: self.opts.max_bytes,
            });
        }
        Ok(())
    }

    /// A corruption error for this file.
    pub fn corrupt(
        &self,
        format: &'static str,
        offset: Option<u64>,
        message: impl Into<String>,
    ) -> ImageError {
        ImageError::Corrupt {
            name: self.name.to_string(),
            format,
            offset,
            message: message.into(),
        }
    }

    /// An unsupported-feature error for this file.
    pub fn unsupported(&self, format: &'static str, what: impl Into<String>) -> ImageError {
        ImageError::Unsupported {
            name: self.name.to_string(),
            format,
            what: what.into(),
        }
    }
}

/// `PIL.Image.open(path)` followed by `load()`: reads the file and decodes it.
pub fn decode_file(path: impl AsRef<Path>, opts: &DecodeOptions) -> Result<Image, ImageError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let io = |source| ImageError::Io {
        name: name.clone(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > opts.max_bytes {
        return Err(ImageError::OverBudget {
            name,
            what: "file",
            bytes: len,
            budget: opts.max_bytes,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    decode_bytes(&bytes, &name, opts)
}

/// Decode an in-memory file; `name` is used in error messages. The format comes from the
/// magic bytes, never from the name.
pub fn decode_bytes(bytes: &[u8], name: &str, opts: &DecodeOptions) -> Result<Image, ImageError> {
    if bytes.len() as u64 > opts.max_bytes {
        return Err(ImageError::OverBudget {
            name: name.to_string(),
            what: "file",
            bytes: bytes.len() as u64,
            budget: opts.max_bytes,
        });
    }
    let ctx = Ctx { name, opts };
    let decoded = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        png::decode(bytes, &ctx)?
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        jpeg::decode(bytes, &ctx)?
    } else if [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"]
        .iter()
        .any(|m| bytes.starts_with(*m))
    {
        tiff::decode(bytes, &ctx)?
    } else if bytes.starts_with(b"BM") {
        bmp::decode(bytes, &ctx)?
    } else {
        let magic = bytes
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(ImageError::UnknownFormat {
            name: name.to_string(),
            magic: if magic.is_empty() {
                "empty file".into()
            } else {
                magic
            },
        });
    };
    let image = decoded.image;
    match decoded
        .orientation
        .and_then(Transpose::for_exif_orientation)
    {
        Some(t) if opts.exif_transpose => Ok(image.transpose(t)),
        _ => Ok(image),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_format_names_file_and_magic() {
        let err = decode_bytes(b"GIF89a\x01\x00", "x.png", &DecodeOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("x.png: unknown image format"), "{msg}");
        assert!(msg.contains("47 49 46 38"), "{msg}");
        let err = decode_bytes(b"", "empty.jpg", &DecodeOptions::default()).unwrap_err();
        assert!(err.to_string().contains("empty file"), "{err}");
    }

    #[test]
    fn size_checks_follow_pil() {
        let opts = DecodeOptions {
            max_image_pixels: Some(100),
            ..DecodeOptions::default()
        };
        let ctx = Ctx {
            name: "f",
            opts: &opts,
        };
        // PIL only refuses above twice MAX_IMAGE_PIXELS.
        assert!(ctx.check_size(20, 10, Mode::L).is_ok());
        assert!(matches!(
            ctx.check_size(20, 11, Mode::L),
            Err(ImageError::DecompressionBomb { limit: 200, .. })
        ));
        assert!(matches!(
            ctx.check_size(0, 11, Mode::L),
            Err(ImageError::ZeroSize { .. })
        ));
        let opts = DecodeOptions {
            max_image_pixels: None,
            max_bytes: 1000,
            ..DecodeOptions::default()
        };
        let ctx = Ctx {
            name: "f",
            opts: &opts,
        };
        assert!(ctx.check_size(1000, 1, Mode::L).is_ok());
        assert!(matches!(
            ctx.check_size(1000, 1, Mode::RGB),
            Err(ImageError::OverBudget { bytes: 3000, .. })
        ));
    }

    #[test]
    fn byte_budget_applies_to_the_input() {
        let opts = DecodeOptions {
            max_bytes: 4,
            ..DecodeOptions::default()
        };
        let err = decode_bytes(b"\x89PNG\r\n\x1a\n", "big.png", &opts).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::OverBudget {
                    what: "file",
                    bytes: 8,
                    ..
                }
            ),
            "{err}"
        );
    }
}
