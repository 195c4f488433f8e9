//! Image decoding and eval transforms that reproduce Pillow 13 + torchvision 0.29 bit for bit.
//!
//! * [`decode_file`] / [`decode_bytes`] give what `PIL.Image.open(...)` gives: the same
//!   [`Mode`] (`"L"`, `"RGB"`, `"P"` + palette, `"I;16"`, `"F"`, ...), size and pixel values.
//!   JPEG goes through the system libjpeg-turbo (TurboJPEG API), the library Pillow
//!   bundles, so the IDCT and upsampling match; PNG, TIFF and BMP are unpacked the way
//!   Pillow's plugins unpack them.
//! * [`Image::convert_rgb`] is `Image.convert("RGB")`, [`Image::resize`] is
//!   `Image.resize(size, filter)` (Pillow's fixed-point separable resampler, including its
//!   mode special cases), [`Image::crop`] / [`Image::pad`] / [`Image::transpose`] are the
//!   matching PIL geometry operations.
//! * [`TransformConfig`] is a serde-deserialisable eval pipeline (torchvision `Resize`,
//!   `CenterCrop`, open_clip / timm `ResizeKeepRatio` + `CenterCropOrPad`, `ToTensor` +
//!   `Normalize`) with constructors for the open_clip and timm eval transforms.

mod bmp;
mod convert;
mod decode;
mod error;
mod exif;
mod geometry;
mod jpeg;
mod png;
mod resample;
mod tiff;
mod transforms;

pub use decode::{decode_bytes, decode_file, DecodeOptions, MAX_IMAGE_PIXELS};
pub use jpeg::decode_rgb as decode_jpeg_rgb;
pub use error::ImageError;
pub use geometry::Transpose;
pub use resample::Filter;
pub use transforms::{
    open_clip_eval, timm_eval, HeightWidth, ImageTensor, Op, ResizeMode, ResizeSize, TimmCropMode,
    TransformConfig,
};

/// A PIL image mode: how many bands a pixel has and how each band is stored.
///
/// The names are PIL's (see [`Mode::pil_name`]); `La` and `RGBa` are the premultiplied
/// modes Pillow uses internally while resizing images with alpha.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `"1"`: bilevel, stored as one byte per pixel holding 0 or 255 (as PIL stores it).
    Bilevel,
    /// `"L"`: 8-bit grey.
    L,
    /// `"LA"`: 8-bit grey + alpha.
    LA,
    /// `"La"`: 8-bit grey + alpha, grey premultiplied by alpha.
    La,
    /// `"P"`: 8-bit palette indices; see [`Image::palette`].
    P,
    /// `"RGB"`: 3 × 8 bits.
    RGB,
    /// `"RGBA"`: 4 × 8 bits, straight alpha.
    RGBA,
    /// `"RGBa"`: 4 × 8 bits, colour premultiplied by alpha.
    RGBa,
    /// `"CMYK"`: 4 × 8 bits.
    CMYK,
    /// `"I;16"`: unsigned 16-bit grey (little-endian in PIL's memory).
    I16,
    /// `"I;16B"`: unsigned 16-bit grey from a big-endian file; same values as `I16`.
    I16B,
    /// `"I"`: signed 32-bit grey.
    I,
    /// `"F"`: 32-bit float grey.
    F,
}

impl Mode {
    /// The PIL mode string, e.g. `"RGB"`, `"I;16"`, `"1"`.
    pub fn pil_name(self) -> &'static str {
        match self {
            Mode::Bilevel => "1",
            Mode::L => "L",
            Mode::LA => "LA",
            Mode::La => "La",
            Mode::P => "P",
            Mode::RGB => "RGB",
            Mode::RGBA => "RGBA",
            Mode::RGBa => "RGBa",
            Mode::CMYK => "CMYK",
            Mode::I16 => "I;16",
            Mode::I16B => "I;16B",
            Mode::I => "I",
            Mode::F => "F",
        }
    }

    /// Number of bands (`len(im.getbands())`).
    pub fn bands(self) -> usize {
        match self {
            Mode::LA | Mode::La => 2,
            Mode::RGB => 3,
            Mode::RGBA | Mode::RGBa | Mode::CMYK => 4,
            _ => 1,
        }
    }

    /// The sample storage of this mode.
    pub fn sample_kind(self) -> SampleKind {
        match self {
            Mode::I16 | Mode::I16B => SampleKind::U16,
            Mode::I => SampleKind::I32,
            Mode::F => SampleKind::F32,
            _ => SampleKind::U8,
        }
    }

    /// Bytes one pixel occupies in [`Pixels`].
    pub fn bytes_per_pixel(self) -> usize {
        let sample = match self.sample_kind() {
            SampleKind::U8 => 1,
            SampleKind::U16 => 2,
            SampleKind::I32 | SampleKind::F32 => 4,
        };
        sample * self.bands()
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.pil_name())
    }
}

/// Storage type of one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleKind {
    /// `u8` samples (modes 1, L, LA, La, P, RGB, RGBA, RGBa, CMYK).
    U8,
    /// `u16` samples (I;16, I;16B).
    U16,
    /// `i32` samples (I).
    I32,
    /// `f32` samples (F).
    F32,
}

/// Pixel samples, row-major, bands interleaved (HWC), one element per sample.
#[derive(Clone, Debug, PartialEq)]
pub enum Pixels {
    /// 8-bit samples.
    U8(Vec<u8>),
    /// 16-bit samples (native values).
    U16(Vec<u16>),
    /// 32-bit signed samples.
    I32(Vec<i32>),
    /// 32-bit float samples.
    F32(Vec<f32>),
}

impl Pixels {
    fn kind(&self) -> SampleKind {
        match self {
            Pixels::U8(_) => SampleKind::U8,
            Pixels::U16(_) => SampleKind::U16,
            Pixels::I32(_) => SampleKind::I32,
            Pixels::F32(_) => SampleKind::F32,
        }
    }

    fn len(&self) -> usize {
        match self {
            Pixels::U8(v) => v.len(),
            Pixels::U16(v) => v.len(),
            Pixels::I32(v) => v.len(),
            Pixels::F32(v) => v.len(),
        }
    }
}

/// A `"P"` image's palette: 256 RGB entries, as Pillow keeps it (entries past the file's
/// palette are black, `ImagingPaletteNew` zero-fills).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Palette {
    entries: Box<[[u8; 3]; 256]>,
    len: usize,
}

impl Palette {
    /// A palette from packed RGB triplets (at most 256 are used).
    pub fn from_rgb(rgb: &[u8]) -> Palette {
        let mut entries = Box::new([[0u8; 3]; 256]);
        let len = (rgb.len() / 3).min(256);
        for (entry, c) in entries.iter_mut().zip(rgb.chunks_exact(3)) {
            entry.copy_from_slice(c);
        }
        Palette { entries, len }
    }

    /// Colour of palette index `i`.
    pub fn rgb(&self, i: u8) -> [u8; 3] {
        self.entries[usize::from(i)]
    }

    /// Number of entries the file defined.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the file defined no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// `im.info["transparency"]` as the PNG plugin sets it (kept as metadata; `convert("RGB")`
/// ignores it, as Pillow does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transparency {
    /// One transparent grey value (modes 1, L, I;16) or palette index (mode P).
    Value(u16),
    /// One transparent RGB colour (mode RGB).
    Rgb([u16; 3]),
    /// One alpha byte per palette entry (mode P).
    PaletteAlpha(Vec<u8>),
}

/// An image in a PIL mode. Cheap to inspect; all operations return new images.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    width: u32,
    height: u32,
    mode: Mode,
    pixels: Pixels,
    palette: Option<Palette>,
    transparency: Option<Transparency>,
}

impl Image {
    /// Wrap pixel samples; they must match `mode`'s sample type and `width × height × bands`.
    pub fn new(width: u32, height: u32, mode: Mode, pixels: Pixels) -> Result<Image, ImageError> {
        let want = width as usize * height as usize * mode.bands();
        if pixels.kind() != mode.sample_kind() || pixels.len() != want {
            return Err(ImageError::InvalidArgument(format!(
                "mode {mode} {width}x{height} needs {want} {:?} samples, got {} {:?} samples",
                mode.sample_kind(),
                pixels.len(),
                pixels.kind()
            )));
        }
        Ok(Image {
            width,
            height,
            mode,
            pixels,
            palette: None,
            transparency: None,
        })
    }

    /// Attach a palette (for mode `P`).
    pub fn with_palette(mut self, palette: Palette) -> Image {
        self.palette = Some(palette);
        self
    }

    /// Attach transparency metadata.
    pub fn with_transparency(mut self, transparency: Option<Transparency>) -> Image {
        self.transparency = transparency;
        self
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// `(width, height)`, like PIL's `im.size`.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The PIL mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The samples (row-major, bands interleaved).
    pub fn pixels(&self) -> &Pixels {
        &self.pixels
    }

    /// The palette of a `P` image.
    pub fn palette(&self) -> Option<&Palette> {
        self.palette.as_ref()
    }

    /// `info["transparency"]`, where the file had one.
    pub fn transparency(&self) -> Option<&Transparency> {
        self.transparency.as_ref()
    }

    /// The samples as little-endian bytes, in the layout of `numpy.asarray(im)` (mode
    /// `"1"` as 0/255 bytes).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match &self.pixels {
            Pixels::U8(v) => v.clone(),
            Pixels::U16(v) => v.iter().flat_map(|s| s.to_le_bytes()).collect(),
            Pixels::I32(v) => v.iter().flat_map(|s| s.to_le_bytes()).collect(),
            Pixels::F32(v) => v.iter().flat_map(|s| s.to_le_bytes()).collect(),
        }
    }

    /// 8-bit samples, if this mode stores bytes.
    pub fn as_u8(&self) -> Option<&[u8]> {
        match &self.pixels {
            Pixels::U8(v) => Some(v),
            _ => None,
        }
    }

    /// A new image of the same mode, palette and metadata with other pixels.
    fn with_pixels(&self, width: u32, height: u32, pixels: Pixels) -> Image {
        Image {
            width,
            height,
            mode: self.mode,
            pixels,
            palette: self.palette.clone(),
            transparency: self.transparency.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_sample_count_and_type() {
        assert!(Image::new(2, 1, Mode::RGB, Pixels::U8(vec![0; 6])).is_ok());
        let err = Image::new(2, 1, Mode::RGB, Pixels::U8(vec![0; 5])).unwrap_err();
        assert!(err.to_string().contains("needs 6"), "{err}");
        assert!(Image::new(1, 1, Mode::F, Pixels::U8(vec![0])).is_err());
    }

    #[test]
    fn palette_entries_past_the_file_are_black() {
        let p = Palette::from_rgb(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(p.len(), 2);
        assert_eq!(p.rgb(1), [4, 5, 6]);
        assert_eq!(p.rgb(2), [0, 0, 0]);
    }
}
