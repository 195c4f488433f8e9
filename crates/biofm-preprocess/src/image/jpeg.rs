//! JPEG through the system libjpeg-turbo (TurboJPEG API, Debian `libturbojpeg0-dev`).
//!
//! Pillow decodes JPEG with libjpeg-turbo using the library defaults: accurate integer
//! IDCT (`JDCT_ISLOW`), fancy upsampling, block smoothing for progressive files. TurboJPEG
//! with no flags uses the same defaults, so the pixels are identical; pure-Rust decoders
//! (zune-jpeg, jpeg-decoder) differ by up to 4 grey levels on the same files.
//!
//! Modes as `JpegImagePlugin`: 1 component → `L`, 3 → `RGB`, 4 → `CMYK` decoded as
//! `"CMYK;I"` (Adobe inverted convention, which Pillow always assumes).

use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};

use super::decode::{Ctx, Decoded};
use super::exif::jpeg_orientation;
use super::{Image, Mode, Pixels};

type TjHandle = *mut c_void;

const TJPF_RGB: c_int = 0;
const TJPF_GRAY: c_int = 6;
const TJPF_CMYK: c_int = 11;
const TJCS_GRAY: c_int = 2;
const TJCS_CMYK: c_int = 3;
const TJCS_YCCK: c_int = 4;
const TJERR_WARNING: c_int = 0;

#[link(name = "turbojpeg")]
extern "C" {
    fn tjInitDecompress() -> TjHandle;
    fn tjDecompressHeader3(
        handle: TjHandle,
        jpeg_buf: *const u8,
        jpeg_size: c_ulong,
        width: *mut c_int,
        height: *mut c_int,
        jpeg_subsamp: *mut c_int,
        jpeg_colorspace: *mut c_int,
    ) -> c_int;
    fn tjDecompress2(
        handle: TjHandle,
        jpeg_buf: *const u8,
        jpeg_size: c_ulong,
        dst_buf: *mut u8,
        width: c_int,
        pitch: c_int,
        height: c_int,
        pixel_format: c_int,
        flags: c_int,
    ) -> c_int;
    fn tjGetErrorStr2(handle: TjHandle) -> *mut c_char;
    fn tjGetErrorCode(handle: TjHandle) -> c_int;
    fn tjDestroy(handle: TjHandle) -> c_int;
}

/// Owns a TurboJPEG decompressor (one per decode; TurboJPEG handles are not thread-safe).
struct Decompressor(TjHandle);

impl Decompressor {
    fn new() -> Option<Decompressor> {
        // SAFETY: tjInitDecompress has no preconditions; a null return means failure.
        let handle = unsafe { tjInitDecompress() };
        (!handle.is_null()).then_some(Decompressor(handle))
    }

    /// The last error message and whether it was only a warning.
    fn last_error(&self) -> (String, bool) {
        // SAFETY: the handle is valid; tjGetErrorStr2 returns a NUL-terminated string
        // owned by the handle (or a static one), valid until the next call.
        let message = unsafe {
            let s = tjGetErrorStr2(self.0);
            if s.is_null() {
                "unknown TurboJPEG error".to_string()
            } else {
                CStr::from_ptr(s).to_string_lossy().into_owned()
            }
        };
        // SAFETY: valid handle.
        let warning = unsafe { tjGetErrorCode(self.0) } == TJERR_WARNING;
        (message, warning)
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the handle came from tjInitDecompress and is destroyed once.
        unsafe {
            tjDestroy(self.0);
        }
    }
}

/// Decode a JPEG file as `Image.open` does.
pub(super) fn decode(data: &[u8], ctx: &Ctx) -> Result<Decoded, super::ImageError> {
    let tj = Decompressor::new()
        .ok_or_else(|| ctx.corrupt("JPEG", None, "cannot initialise libjpeg-turbo"))?;
    let size = c_ulong::try_from(data.len())
        .map_err(|_| ctx.unsupported("JPEG", "file larger than 4 GiB"))?;
    let (mut width, mut height, mut subsamp, mut colorspace) = (0, 0, 0, 0);
    // SAFETY: `data` is valid for `size` bytes; the out-pointers are valid c_ints.
    let rc = unsafe {
        tjDecompressHeader3(
            tj.0,
            data.as_ptr(),
            size,
            &mut width,
            &mut height,
            &mut subsamp,
            &mut colorspace,
        )
    };
    if rc != 0 {
        let (message, _) = tj.last_error();
        return Err(ctx.corrupt("JPEG", None, message));
    }
    let (mode, pixel_format) = match colorspace {
        TJCS_GRAY => (Mode::L, TJPF_GRAY),
        TJCS_CMYK | TJCS_YCCK => (Mode::CMYK, TJPF_CMYK),
        _ => (Mode::RGB, TJPF_RGB),
    };
    ctx.check_size(width.max(0) as u64, height.max(0) as u64, mode)?;
    let w = width as usize;
    let h = height as usize;
    let pitch = w * mode.bands();
    let pitch_c = c_int::try_from(pitch).map_err(|_| ctx.unsupported("JPEG", "row too wide"))?;
    let mut pixels = vec![0u8; pitch * h];
    // SAFETY: `pixels` holds `pitch * height` bytes, exactly what TurboJPEG writes for this
    // width, pitch, height and pixel format; `data` is valid for `size` bytes.
    let rc = unsafe {
        tjDecompress2(
            tj.0,
            data.as_ptr(),
            size,
            pixels.as_mut_ptr(),
            width,
            pitch_c,
            height,
            pixel_format,
            0,
        )
    };
    if rc != 0 {
        let (message, warning) = tj.last_error();
        // libjpeg recovers from most corruption with a warning and Pillow keeps such
        // images; a truncated file is an error in Pillow ("image file is truncated").
        if !warning || message.starts_with("Premature end of JPEG file") {
            return Err(ctx.corrupt("JPEG", None, message));
        }
    }
    if mode == Mode::CMYK {
        pixels.iter_mut().for_each(|v| *v = 255 - *v);
    }
    let image = Image::new(width as u32, height as u32, mode, Pixels::U8(pixels))?;
    Ok(Decoded {
        image,
        orientation: jpeg_orientation(data),
    })
}

/// Decodes a JPEG stream (e.g. a whole-slide tile) to interleaved RGB with libjpeg-turbo's
/// defaults, as OpenSlide and Pillow decode: `(width, height, pixels)`. Greyscale is
/// expanded to RGB. Corrupt or truncated data is an error with libjpeg's message
/// (warnings about recoverable corruption are errors here too: a tile is all or nothing).
pub fn decode_rgb(data: &[u8]) -> Result<(usize, usize, Vec<u8>), String> {
    let tj = Decompressor::new().ok_or("cannot initialise libjpeg-turbo")?;
    let size = c_ulong::try_from(data.len()).map_err(|_| "JPEG stream larger than 4 GiB".to_string())?;
    let (mut width, mut height, mut subsamp, mut colorspace) = (0, 0, 0, 0);
    // SAFETY: `data` is valid for `size` bytes; the out-pointers are valid c_ints.
    let rc = unsafe { tjDecompressHeader3(tj.0, data.as_ptr(), size, &mut width, &mut height, &mut subsamp, &mut colorspace) };
    if rc != 0 {
        return Err(tj.last_error().0);
    }
    if colorspace == TJCS_CMYK || colorspace == TJCS_YCCK {
        return Err("CMYK JPEG tiles are not supported".into());
    }
    let (w, h) = (width.max(0) as usize, height.max(0) as usize);
    if w == 0 || h == 0 || w.saturating_mul(h) > 1 << 28 {
        return Err(format!("unusable JPEG size {w}x{h}"));
    }
    let mut pixels = vec![0u8; w * h * 3];
    // SAFETY: `pixels` holds width*3*height bytes, what TurboJPEG writes for TJPF_RGB with
    // this pitch; `data` is valid for `size` bytes.
    let rc = unsafe { tjDecompress2(tj.0, data.as_ptr(), size, pixels.as_mut_ptr(), width, (w * 3) as c_int, height, TJPF_RGB, 0) };
    if rc != 0 {
        return Err(tj.last_error().0);
    }
    Ok((w, h, pixels))
}
