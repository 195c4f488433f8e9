//! Whole-slide images: pyramidal TIFF and BigTIFF (tiled; JPEG, deflate, LZW or
//! uncompressed tiles), Aperio SVS (MPP and AppMag from the ImageDescription) and
//! OME-TIFF (SubIFD pyramids, PhysicalSizeX/Y) in pure Rust; vendor formats (NDPI, MRXS,
//! SCN, ...) through the system's OpenSlide, loaded at run time; single PNG/JPEG images
//! as one-level slides. All behind one [`Slide`] interface with OpenSlide's conventions:
//! level-0 coordinates, per-level downsamples, `best_level_for_downsample`, RGBA
//! `read_region` (transparent outside the image), thumbnails. JPEG tiles are decoded by
//! libjpeg-turbo, as OpenSlide does. [`tissue`] segments tissue on a low-resolution level
//! (saturation + Otsu) and exports outlines as GeoJSON; [`patching`] lays out patch grids
//! at a target magnification as the reference toolkit (TRIDENT) does.

mod codec;
mod openslide;
mod plain;
pub mod error;
pub mod patching;
pub mod slide;
pub mod tiff;
pub mod thumbnail;
pub mod tissue;

pub use error::WsiError;
pub use patching::{PatchPlan, PatchSpec};
pub use slide::{Level, Slide, SlideOverrides};
pub use slide::SlideBackend;
pub use tissue::{detect_tissue, TissueMask, TissueOptions};
