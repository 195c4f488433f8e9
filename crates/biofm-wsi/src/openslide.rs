//! OpenSlide as a system library, loaded when a slide first needs it (never at build or
//! start-up time), for the vendor formats the pure-Rust reader does not handle: NDPI,
//! MRXS, SCN, VMS/VMU, BIF, SVSLIDE and whatever else the installed OpenSlide opens.
//!
//! Library lookup: the file named by `BIOFM_OPENSLIDE` when that is set (and then only
//! it), else `libopenslide.so.1` (OpenSlide 4) and `libopenslide.so.0` (OpenSlide 3.4,
//! Debian's `libopenslide0`). A loaded library stays loaded for the life of the process.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

/// The environment variable naming the OpenSlide library file.
pub const LIBRARY_ENV: &str = "BIOFM_OPENSLIDE";

#[cfg(target_os = "macos")]
const DEFAULT_NAMES: &[&str] = &["libopenslide.1.dylib", "libopenslide.0.dylib"];
#[cfg(windows)]
const DEFAULT_NAMES: &[&str] = &["libopenslide-1.dll", "libopenslide-0.dll"];
#[cfg(not(any(target_os = "macos", windows)))]
const DEFAULT_NAMES: &[&str] = &["libopenslide.so.1", "libopenslide.so.0"];

// The C API (openslide.h; unchanged from OpenSlide 3.4 to 4.0 for these functions).
type OpenFn = unsafe extern "C" fn(filename: *const c_char) -> *mut c_void;
type CloseFn = unsafe extern "C" fn(osr: *mut c_void);
type GetErrorFn = unsafe extern "C" fn(osr: *mut c_void) -> *const c_char;
type GetLevelCountFn = unsafe extern "C" fn(osr: *mut c_void) -> i32;
type GetLevelDimensionsFn = unsafe extern "C" fn(osr: *mut c_void, level: i32, w: *mut i64, h: *mut i64);
type GetLevelDownsampleFn = unsafe extern "C" fn(osr: *mut c_void, level: i32) -> f64;
type GetPropertyNamesFn = unsafe extern "C" fn(osr: *mut c_void) -> *const *const c_char;
type GetPropertyValueFn = unsafe extern "C" fn(osr: *mut c_void, name: *const c_char) -> *const c_char;
type ReadRegionFn = unsafe extern "C" fn(osr: *mut c_void, dest: *mut u32, x: i64, y: i64, level: i32, w: i64, h: i64);
type GetVersionFn = unsafe extern "C" fn() -> *const c_char;

/// The resolved functions of one loaded libopenslide.
pub(crate) struct Api {
    open: OpenFn,
    close: CloseFn,
    get_error: GetErrorFn,
    get_level_count: GetLevelCountFn,
    get_level_dimensions: GetLevelDimensionsFn,
    get_level_downsample: GetLevelDownsampleFn,
    get_property_names: GetPropertyNamesFn,
    get_property_value: GetPropertyValueFn,
    read_region: ReadRegionFn,
    /// `openslide_get_version()`, e.g. "3.4.1".
    pub version: String,
    /// The file or name the library was loaded from.
    pub origin: String,
    // Keeps the functions above valid; never dropped while an `Api` is reachable.
    _library: libloading::Library,
}

/// Libraries loaded so far, by the name they were asked for. Held for the process's
/// lifetime: OpenSlide and the libraries it pulls in (GLib, cairo, ...) are not meant to
/// be unloaded and loaded again.
static LOADED: Mutex<Option<HashMap<String, Arc<Api>>>> = Mutex::new(None);

impl Api {
    /// Loads libopenslide: `library` when given, else the lookup described in the module
    /// documentation. The error lists every file tried and why it failed.
    pub fn load(library: Option<&Path>) -> Result<Arc<Api>, String> {
        let from_env = std::env::var_os(LIBRARY_ENV).filter(|v| !v.is_empty());
        let candidates: Vec<String> = match (library, &from_env) {
            (Some(p), _) => vec![p.display().to_string()],
            (None, Some(v)) => vec![Path::new(v).display().to_string()],
            (None, None) => DEFAULT_NAMES.iter().map(|s| s.to_string()).collect(),
        };
        let mut cache = LOADED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let cache = cache.get_or_insert_with(HashMap::new);
        let mut failures = Vec::new();
        for name in &candidates {
            if let Some(api) = cache.get(name) {
                return Ok(api.clone());
            }
            match Self::load_one(name) {
                Ok(api) => {
                    let api = Arc::new(api);
                    cache.insert(name.clone(), api.clone());
                    return Ok(api);
                }
                // dlerror's message usually names the file already.
                Err(e) if e.contains(name.as_str()) => failures.push(e),
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
        let source = match (library, &from_env) {
            (Some(_), _) => "the library file given".to_string(),
            (None, Some(_)) => LIBRARY_ENV.to_string(),
            (None, None) => "the default library names".to_string(),
        };
        Err(format!("libopenslide could not be loaded from {source} ({})", failures.join("; ")))
    }

    fn load_one(name: &str) -> Result<Api, String> {
        // SAFETY: loading libopenslide runs its (and its dependencies') initialisers,
        // which is what every OpenSlide user does; the file is the one the user named or
        // the system's libopenslide.
        let library = unsafe { libloading::Library::new(name) }.map_err(|e| e.to_string())?;
        // SAFETY: each symbol is declared with its C signature from openslide.h; the
        // copied function pointers stay valid because `library` lives in the same `Api`.
        unsafe {
            fn sym<T: Copy>(library: &libloading::Library, name: &str) -> Result<T, String> {
                // SAFETY: see the caller.
                unsafe { library.get::<T>(name.as_bytes()) }
                    .map(|s| *s)
                    .map_err(|e| format!("not an OpenSlide library (no `{name}`: {e})"))
            }
            let get_version: GetVersionFn = sym(&library, "openslide_get_version")?;
            let v = get_version();
            let version = if v.is_null() { "unknown".into() } else { CStr::from_ptr(v).to_string_lossy().into_owned() };
            Ok(Api {
                open: sym(&library, "openslide_open")?,
                close: sym(&library, "openslide_close")?,
                get_error: sym(&library, "openslide_get_error")?,
                get_level_count: sym(&library, "openslide_get_level_count")?,
                get_level_dimensions: sym(&library, "openslide_get_level_dimensions")?,
                get_level_downsample: sym(&library, "openslide_get_level_downsample")?,
                get_property_names: sym(&library, "openslide_get_property_names")?,
                get_property_value: sym(&library, "openslide_get_property_value")?,
                read_region: sym(&library, "openslide_read_region")?,
                version,
                origin: name.to_string(),
                _library: library,
            })
        }
    }
}

/// An open OpenSlide handle (`openslide_t *`), closed on drop.
pub(crate) struct Handle {
    api: Arc<Api>,
    osr: NonNull<c_void>,
}

// SAFETY: OpenSlide documents that an `openslide_t` "can be used concurrently from
// multiple threads without locking", provided the handle is passed between threads with
// a memory barrier, which Rust's ways of sending a value or sharing a reference across
// threads (spawn, channels, Arc, scoped threads) provide. The handle is only closed in
// `drop`, when no other reference to it exists.
unsafe impl Send for Handle {}
// SAFETY: as above; every method takes `&self` and only calls thread-safe OpenSlide
// functions.
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: `osr` came from `openslide_open` and is closed exactly once, here.
        unsafe { (self.api.close)(self.osr.as_ptr()) }
    }
}

/// A C string OpenSlide returned, copied (`None` for NULL).
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives this call.
unsafe fn string(p: *const c_char) -> Option<String> {
    // SAFETY: guaranteed by the caller.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

fn c_path(path: &Path) -> Result<CString, String> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path.to_str().ok_or("the path is not valid UTF-8")?.as_bytes().to_vec();
    CString::new(bytes).map_err(|_| "the path contains a NUL byte".to_string())
}

impl Handle {
    /// `openslide_open`. Errors: the file is not a format OpenSlide knows, or OpenSlide
    /// recognised it and failed (its message).
    pub fn open(api: Arc<Api>, path: &Path) -> Result<Handle, String> {
        let c = c_path(path)?;
        // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
        let osr = unsafe { (api.open)(c.as_ptr()) };
        let Some(osr) = NonNull::new(osr) else {
            return Err(format!(
                "OpenSlide {} does not recognise it as a slide (it reads Aperio SVS, Hamamatsu NDPI/VMS/VMU, \
                 Leica SCN, MIRAX MRXS, Sakura SVSLIDE, Trestle, Ventana BIF and generic tiled TIFF; \
                 check that the file is a complete slide)",
                api.version
            ));
        };
        let handle = Handle { api, osr };
        match handle.error() {
            None => Ok(handle),
            Some(e) => Err(format!("OpenSlide {}: {e}", handle.api.version)),
        }
    }

    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The handle's error, once OpenSlide has failed (it then stays failed).
    pub fn error(&self) -> Option<String> {
        // SAFETY: valid handle; the returned string lives as long as the handle.
        unsafe { string((self.api.get_error)(self.osr.as_ptr())) }
    }

    pub fn level_count(&self) -> i32 {
        // SAFETY: valid handle.
        unsafe { (self.api.get_level_count)(self.osr.as_ptr()) }
    }

    pub fn level_dimensions(&self, level: i32) -> (i64, i64) {
        let (mut w, mut h) = (-1i64, -1i64);
        // SAFETY: valid handle, valid out-pointers.
        unsafe { (self.api.get_level_dimensions)(self.osr.as_ptr(), level, &mut w, &mut h) };
        (w, h)
    }

    pub fn level_downsample(&self, level: i32) -> f64 {
        // SAFETY: valid handle.
        unsafe { (self.api.get_level_downsample)(self.osr.as_ptr(), level) }
    }

    /// Every property, by name.
    pub fn properties(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        // SAFETY: valid handle; OpenSlide returns a NULL-terminated array of strings owned
        // by the handle, and each value string lives as long as the handle.
        unsafe {
            let names = (self.api.get_property_names)(self.osr.as_ptr());
            if names.is_null() {
                return out;
            }
            let mut i = 0;
            while let Some(name) = string(*names.add(i)) {
                let value = string((self.api.get_property_value)(self.osr.as_ptr(), *names.add(i)));
                out.insert(name, value.unwrap_or_default());
                i += 1;
            }
        }
        out
    }

    /// `openslide_read_region` converted to straight RGBA bytes as openslide-python does.
    pub fn read_region(&self, x: i64, y: i64, level: i32, w: usize, h: usize) -> Result<Vec<u8>, String> {
        if w == 0 || h == 0 {
            return Ok(Vec::new());
        }
        let mut argb = vec![0u32; w * h];
        // SAFETY: valid handle; `argb` holds exactly `w * h` pixels as OpenSlide requires.
        unsafe { (self.api.read_region)(self.osr.as_ptr(), argb.as_mut_ptr(), x, y, level, w as i64, h as i64) };
        if let Some(e) = self.error() {
            return Err(format!("OpenSlide {}: {e}", self.api.version));
        }
        Ok(argb_to_rgba(&argb))
    }
}

/// OpenSlide's premultiplied ARGB (one native-endian `u32` per pixel) to straight RGBA
/// bytes, with openslide-python's arithmetic (`_convert.argb2rgba`), so pixels come out
/// as `OpenSlide.read_region` gives them in Python:
/// * alpha 255: the colour bytes as they are;
/// * alpha 0: the pixel is left untouched, i.e. its four bytes in memory order;
/// * otherwise each colour is `255 * c / a` in unsigned integer arithmetic, truncated to
///   8 bits (not clamped).
pub(crate) fn argb_to_rgba(argb: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(argb.len() * 4);
    for &v in argb {
        let a = v >> 24;
        let (r, g, b) = ((v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
        match a {
            0 => out.extend_from_slice(&v.to_ne_bytes()),
            255 => out.extend_from_slice(&[r as u8, g as u8, b as u8, 255]),
            _ => out.extend_from_slice(&[(255 * r / a) as u8, (255 * g / a) as u8, (255 * b / a) as u8, a as u8]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argb_conversion_follows_openslide_python() {
        let px = [
            0xFF10_2030u32, // opaque: bytes reordered
            0x0000_0000,    // transparent: zeros
            0x8040_2010,    // alpha 128: 255*64/128 = 127, 255*32/128 = 63, 255*16/128 = 31
            0x0102_0304,    // invalid premultiplication (colour > alpha): wraps to 8 bits
            0x0011_2233,    // alpha 0 with colour bits: left as stored
        ];
        let got = argb_to_rgba(&px);
        assert_eq!(&got[0..4], &[0x10, 0x20, 0x30, 255]);
        assert_eq!(&got[4..8], &[0, 0, 0, 0]);
        assert_eq!(&got[8..12], &[127, 63, 31, 128]);
        assert_eq!(&got[12..16], &[(255u32 * 2) as u8, (255u32 * 3) as u8, (255u32 * 4) as u8, 1]);
        assert_eq!(&got[16..20], &0x0011_2233u32.to_ne_bytes());
    }

    #[test]
    fn missing_library_names_what_was_tried() {
        let e = Api::load(Some(Path::new("/nonexistent/libopenslide.so.1"))).err().unwrap();
        assert!(e.contains("/nonexistent/libopenslide.so.1") && e.contains("the library file given"), "{e}");
    }
}
