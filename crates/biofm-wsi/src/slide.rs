//! A whole-slide image: pyramid levels, metadata, `read_region` with OpenSlide's
//! conventions (level-0 coordinates, RGBA, transparent outside the image).
//!
//! Three readers sit behind [`Slide`]: the pure-Rust TIFF reader (pyramidal TIFF /
//! BigTIFF, Aperio SVS, OME-TIFF), OpenSlide loaded at run time for the vendor formats
//! (NDPI, MRXS, SCN, VMS/VMU, BIF, SVSLIDE, ...), and single images (PNG, JPEG, BMP) as
//! one-level slides. [`Slide::open`] picks one from the file name's extension.

use crate::codec::{compression_name, TileFormat};
use crate::error::WsiError;
use crate::openslide;
use crate::plain::PlainImage;
use crate::tiff::{tag, Ifd, TiffFile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One pyramid level.
#[derive(Debug, Clone)]
pub struct Level {
    pub width: u64,
    pub height: u64,
    /// OpenSlide's definition: the mean of the width and height ratios to level 0.
    pub downsample: f64,
    pub tile_width: u64,
    pub tile_height: u64,
    source: LevelSource,
}

/// Where a level's pixels come from.
#[derive(Debug, Clone)]
enum LevelSource {
    /// Tiles of a TIFF directory, decoded here.
    Tiff { fmt: TileFormat, offsets: Vec<u64>, counts: Vec<u64>, tiles_across: u64 },
    /// Whatever OpenSlide reads.
    OpenSlide,
    /// A decoded image file (its format).
    Image(&'static str),
}

impl Level {
    /// The tiles' compression, by name ("via OpenSlide" for slides OpenSlide reads; the
    /// file format for single images).
    pub fn compression(&self) -> String {
        match &self.source {
            LevelSource::Tiff { fmt, .. } => compression_name(fmt.compression),
            LevelSource::OpenSlide => "via OpenSlide".into(),
            LevelSource::Image(format) => (*format).into(),
        }
    }
}

/// Which reader serves a slide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlideBackend {
    /// The pure-Rust TIFF reader (pyramidal TIFF / BigTIFF, Aperio SVS, OME-TIFF).
    Tiff,
    /// libopenslide, loaded at run time.
    OpenSlide,
    /// A single image (PNG, JPEG, BMP) decoded into memory, as one level.
    Image,
}

impl std::fmt::Display for SlideBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SlideBackend::Tiff => "tiff",
            SlideBackend::OpenSlide => "openslide",
            SlideBackend::Image => "image",
        })
    }
}

/// The reader behind a [`Slide`].
enum Reader {
    /// The memory-mapped file, read by the pure-Rust TIFF reader.
    Tiff(memmap2::Mmap),
    OpenSlide(openslide::Handle),
    Image(PlainImage),
}

/// How [`Slide::open`] reads a file, from its extension.
#[derive(Debug, PartialEq)]
enum Kind {
    Tiff,
    Image,
    Vendor,
}

fn kind_of(path: &Path) -> Kind {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "tif" | "tiff" | "svs" | "tf8" | "btf" | "ptif" => Kind::Tiff,
        "png" | "jpg" | "jpeg" | "bmp" => Kind::Image,
        _ => Kind::Vendor,
    }
}

/// An open slide. Safe to share between threads (`Send + Sync`) whatever its reader.
pub struct Slide {
    path: PathBuf,
    reader: Reader,
    levels: Vec<Level>,
    vendor: String,
    mpp: Option<(f64, f64)>,
    objective_power: Option<f64>,
    properties: BTreeMap<String, String>,
}

/// Where a slide's microns per pixel and magnification come from when the file lacks
/// them (or to override them).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SlideOverrides {
    pub mpp: Option<f64>,
    pub objective_power: Option<f64>,
}

impl Slide {
    /// Opens a slide, choosing the reader from the file name's extension:
    /// * `.tif`, `.tiff`, `.svs`, `.tf8`, `.btf`, `.ptif`: the pure-Rust reader
    ///   (pyramidal TIFF / BigTIFF, Aperio SVS, OME-TIFF);
    /// * `.png`, `.jpg`, `.jpeg`, `.bmp`: a single image as a one-level slide, without
    ///   microns per pixel (give them with [`Slide::apply_overrides`]);
    /// * anything else (`.ndpi`, `.mrxs`, `.scn`, `.vms`, `.vmu`, `.bif`, `.svslide`,
    ///   ...): OpenSlide, see [`Slide::open_with_openslide`].
    pub fn open(path: &Path) -> Result<Self, WsiError> {
        match kind_of(path) {
            Kind::Tiff => Self::open_tiff(path),
            Kind::Image => Self::open_image(path),
            Kind::Vendor => Self::open_with_openslide(path),
        }
    }

    /// Opens any slide OpenSlide reads through the system's libopenslide, loaded now:
    /// the file named by the `BIOFM_OPENSLIDE` environment variable when it is set, else
    /// `libopenslide.so.1` or `libopenslide.so.0`. Also reads TIFF variants the pure-Rust
    /// reader rejects (e.g. Aperio SVS with JPEG 2000 tiles). Regions are OpenSlide's,
    /// converted to straight RGBA exactly as openslide-python converts them; unlike the
    /// pure-Rust reader, OpenSlide interpolates reads at fractional level positions.
    pub fn open_with_openslide(path: &Path) -> Result<Self, WsiError> {
        Self::open_openslide(path, None)
    }

    /// [`Slide::open_with_openslide`] with the given libopenslide file instead of the
    /// lookup.
    pub fn open_with_openslide_library(path: &Path, library: &Path) -> Result<Self, WsiError> {
        Self::open_openslide(path, Some(library))
    }

    fn open_openslide(path: &Path, library: Option<&Path>) -> Result<Self, WsiError> {
        let file = path.display();
        std::fs::metadata(path).map_err(|e| WsiError::Other(format!("cannot open {file}: {e}")))?;
        let api = openslide::Api::load(library).map_err(|why| {
            WsiError::Other(format!(
                "cannot read {file}: this slide format is read through OpenSlide, but {why}. Install it \
                 (`apt-get install libopenslide0` on Debian/Ubuntu) or set {} to the path of libopenslide.so",
                openslide::LIBRARY_ENV
            ))
        })?;
        let handle = openslide::Handle::open(api, path).map_err(|e| WsiError::Other(format!("cannot read {file}: {e}")))?;
        let bad = |what: String| WsiError::Other(format!("cannot read {file}: OpenSlide reports {what}"));
        let count = handle.level_count();
        if count < 1 {
            return Err(bad(format!("{count} pyramid levels")));
        }
        let mut properties = handle.properties();
        let mut levels = Vec::with_capacity(count as usize);
        for i in 0..count {
            let (w, h) = handle.level_dimensions(i);
            let downsample = handle.level_downsample(i);
            if w <= 0 || h <= 0 || !downsample.is_finite() || downsample < 1.0 - 1e-9 {
                return Err(bad(format!("level {i} of {w}x{h} pixels with downsample {downsample}")));
            }
            let tile = |k: &str| {
                properties.get(&format!("openslide.level[{i}].tile-{k}")).and_then(|v| v.parse::<u64>().ok()).filter(|&v| v > 0)
            };
            levels.push(Level {
                width: w as u64,
                height: h as u64,
                downsample,
                // Without a tile size from OpenSlide, 256 (reads need not follow it).
                tile_width: tile("width").unwrap_or(256),
                tile_height: tile("height").unwrap_or(256),
                source: LevelSource::OpenSlide,
            });
        }
        let positive = |p: &BTreeMap<String, String>, k: &str| {
            p.get(k).and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| *v > 0.0 && v.is_finite())
        };
        let vendor = properties.get("openslide.vendor").cloned().unwrap_or_else(|| "unknown".into());
        let mut mpp = match (positive(&properties, "openslide.mpp-x"), positive(&properties, "openslide.mpp-y")) {
            (Some(x), Some(y)) => Some((x, y)),
            (Some(m), None) | (None, Some(m)) => Some((m, m)),
            (None, None) => None,
        };
        // OpenSlide 4 reports a generic TIFF's mpp from its resolution tags (unit
        // centimetre or inch), 3.4 (Debian's libopenslide0) does not: apply the same rule
        // to the `tiff.*` properties so the answer does not depend on the library version.
        if mpp.is_none() && vendor == "generic-tiff" {
            let microns_per_unit = match properties.get("tiff.ResolutionUnit").map(String::as_str) {
                Some("centimeter") => Some(10_000.0),
                Some("inch") => Some(25_400.0),
                _ => None,
            };
            if let (Some(u), Some(x), Some(y)) = (microns_per_unit, positive(&properties, "tiff.XResolution"), positive(&properties, "tiff.YResolution")) {
                mpp = Some((u / x, u / y));
                properties.insert("openslide.mpp-x".into(), (u / x).to_string());
                properties.insert("openslide.mpp-y".into(), (u / y).to_string());
            }
        }
        let objective_power = positive(&properties, "openslide.objective-power");
        properties.insert("biofm.openslide-version".into(), handle.api().version.clone());
        properties.insert("biofm.openslide-library".into(), handle.api().origin.clone());
        Ok(Self { path: path.to_path_buf(), reader: Reader::OpenSlide(handle), levels, vendor, mpp, objective_power, properties })
    }

    /// Opens a single image (PNG, JPEG, BMP; TIFF by content) as a one-level slide: no
    /// microns per pixel or magnification until [`Slide::apply_overrides`] gives them.
    pub fn open_image(path: &Path) -> Result<Self, WsiError> {
        let img = PlainImage::open(path)?;
        let vendor = img.format.to_ascii_lowercase();
        let levels = vec![Level {
            width: img.width,
            height: img.height,
            downsample: 1.0,
            tile_width: img.width,
            tile_height: img.height,
            source: LevelSource::Image(img.format),
        }];
        let mut properties = BTreeMap::new();
        properties.insert("openslide.vendor".into(), vendor.clone());
        properties.insert("openslide.level-count".into(), "1".into());
        properties.insert("biofm.image-mode".into(), img.mode.into());
        Ok(Self { path: path.to_path_buf(), reader: Reader::Image(img), levels, vendor, mpp: None, objective_power: None, properties })
    }

    /// Opens a pyramidal TIFF / BigTIFF (generic tiled TIFF, Aperio SVS, OME-TIFF) with the
    /// pure-Rust reader, whatever the extension.
    pub fn open_tiff(path: &Path) -> Result<Self, WsiError> {
        let file = std::fs::File::open(path).map_err(|e| WsiError::Other(format!("cannot open {}: {e}", path.display())))?;
        // SAFETY: read-only mapping; the slide files are not modified while open (as
        // with OpenSlide, a file truncated underneath is the user's problem).
        let data = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| WsiError::Other(format!("cannot map {}: {e}", path.display())))?;
        let tiff = TiffFile::parse(&data)?;
        let first = &tiff.ifds[0];
        let description = first.ascii(tag::IMAGE_DESCRIPTION).unwrap_or("").to_string();
        let mut properties = BTreeMap::new();
        if !description.is_empty() {
            properties.insert("tiff.ImageDescription".to_string(), description.clone());
        }
        // Levels: a SubIFD pyramid under the first image (OME-TIFF), else every tiled
        // image of the main chain (generic pyramidal TIFF, SVS: the thumbnail, label and
        // macro images are stripped, so they drop out).
        let aperio = description.starts_with("Aperio");
        let candidates: Vec<&Ifd> = if first.is_tiled() && first.sub_ifds.iter().any(Ifd::is_tiled) {
            std::iter::once(first).chain(first.sub_ifds.iter().filter(|i| i.is_tiled())).collect()
        } else if aperio {
            // OpenSlide's aperio reader: every tiled directory is a level (the
            // thumbnail, label and macro images are stripped).
            tiff.ifds.iter().filter(|i| i.is_tiled()).collect()
        } else {
            // OpenSlide's generic-tiff reader: the first directory, then tiled
            // directories marked as reduced-resolution images (NewSubfileType bit 0).
            tiff.ifds
                .iter()
                .enumerate()
                .filter(|(k, i)| i.is_tiled() && (*k == 0 || i.uint(tag::NEW_SUBFILE_TYPE).unwrap_or(0) & 1 == 1))
                .map(|(_, i)| i)
                .collect()
        };
        if candidates.is_empty() {
            return Err(WsiError::Unsupported(format!(
                "{}: no tiled image in the file: whole-slide readers need a tiled pyramid (convert strips with e.g. \
                 `vips tiffsave --tile --pyramid`, or read a single image with `Slide::open_image`)",
                path.display()
            )));
        }
        // Levels this reader cannot decode may still be read by OpenSlide (e.g. Aperio's
        // JPEG 2000): say so, without switching readers behind the caller's back.
        let mut levels = candidates.into_iter().map(level_of).collect::<Result<Vec<_>, _>>().map_err(|e| match e {
            WsiError::Unsupported(m) => WsiError::Unsupported(format!(
                "{}: {m}; OpenSlide may read it: open it with `Slide::open_with_openslide`",
                path.display()
            )),
            e => e,
        })?;
        levels.sort_by(|a, b| b.width.cmp(&a.width).then(b.height.cmp(&a.height)));
        let (w0, h0) = (levels[0].width as f64, levels[0].height as f64);
        for l in &mut levels {
            l.downsample = (w0 / l.width as f64 + h0 / l.height as f64) / 2.0;
        }

        let (vendor, mpp, objective_power) = if aperio {
            let mut mpp = None;
            let mut mag = None;
            for part in description.split('|').skip(1) {
                if let Some((k, v)) = part.split_once('=') {
                    let (k, v) = (k.trim(), v.trim());
                    properties.insert(format!("aperio.{k}"), v.to_string());
                    match k {
                        "MPP" => mpp = v.parse::<f64>().ok().filter(|x| *x > 0.0),
                        "AppMag" => mag = v.parse::<f64>().ok().filter(|x| *x > 0.0),
                        _ => {}
                    }
                }
            }
            ("aperio", mpp.map(|m| (m, m)), mag)
        } else if description.contains("<OME") {
            ("ome-tiff", ome_physical_size(&description), None)
        } else {
            ("generic-tiff", resolution_mpp(first), None)
        };
        properties.insert("openslide.vendor".into(), vendor.into());
        if let Some((x, y)) = mpp {
            properties.insert("openslide.mpp-x".into(), x.to_string());
            properties.insert("openslide.mpp-y".into(), y.to_string());
        }
        if let Some(m) = objective_power {
            properties.insert("openslide.objective-power".into(), m.to_string());
        }
        properties.insert("openslide.level-count".into(), levels.len().to_string());
        Ok(Self { path: path.to_path_buf(), reader: Reader::Tiff(data), levels, vendor: vendor.into(), mpp, objective_power, properties })
    }

    /// Which reader serves this slide.
    pub fn backend(&self) -> SlideBackend {
        match self.reader {
            Reader::Tiff(_) => SlideBackend::Tiff,
            Reader::OpenSlide(_) => SlideBackend::OpenSlide,
            Reader::Image(_) => SlideBackend::Image,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn vendor(&self) -> &str {
        &self.vendor
    }

    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// `(width, height)` of level 0.
    pub fn dimensions(&self) -> (u64, u64) {
        (self.levels[0].width, self.levels[0].height)
    }

    /// Microns per pixel at level 0 `(x, y)`, from the file (or an override).
    pub fn mpp(&self) -> Option<(f64, f64)> {
        self.mpp
    }

    /// Scanner objective magnification (e.g. 20 or 40), from the file or an override.
    pub fn objective_power(&self) -> Option<f64> {
        self.objective_power
    }

    /// OpenSlide-style properties (`openslide.*`, `aperio.*`, `tiff.ImageDescription`).
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// Replaces the file's mpp / magnification (per-slide CSV overrides).
    pub fn apply_overrides(&mut self, o: SlideOverrides) {
        if let Some(m) = o.mpp {
            self.mpp = Some((m, m));
            self.properties.insert("openslide.mpp-x".into(), m.to_string());
            self.properties.insert("openslide.mpp-y".into(), m.to_string());
        }
        if let Some(p) = o.objective_power {
            self.objective_power = Some(p);
            self.properties.insert("openslide.objective-power".into(), p.to_string());
        }
    }

    /// OpenSlide's `get_best_level_for_downsample`: the largest level whose downsample
    /// is at most `downsample` (level 0 below 1).
    pub fn best_level_for_downsample(&self, downsample: f64) -> usize {
        if downsample < self.levels[0].downsample {
            return 0;
        }
        for (i, l) in self.levels.iter().enumerate().skip(1) {
            if downsample < l.downsample {
                return i - 1;
            }
        }
        self.levels.len() - 1
    }

    fn level(&self, level: usize) -> Result<&Level, WsiError> {
        self.levels.get(level).ok_or_else(|| {
            WsiError::Other(format!("{}: level {level} does not exist ({} levels)", self.path.display(), self.levels.len()))
        })
    }

    /// RGBA pixels of the `w x h` region of `level` whose top-left corner is `(x, y)` in
    /// level-0 coordinates; pixels outside the image are transparent `(0, 0, 0, 0)`.
    /// Alpha is straight (not premultiplied), as openslide-python returns it; slides read
    /// by the TIFF reader are opaque or all-zero, so both conventions agree there.
    pub fn read_region(&self, x: i64, y: i64, level: usize, w: u64, h: u64) -> Result<Vec<u8>, WsiError> {
        let l = self.level(level)?;
        if w.saturating_mul(h) > 1 << 30 {
            return Err(WsiError::Other(format!("region {w}x{h} is too large")));
        }
        let (w, h) = (w as usize, h as usize);
        match &self.reader {
            Reader::Tiff(_) => {}
            Reader::OpenSlide(handle) => {
                return handle
                    .read_region(x, y, level as i32, w, h)
                    .map_err(|e| WsiError::Other(format!("{}: region {w}x{h} at ({x}, {y}) of level {level}: {e}", self.path.display())));
            }
            Reader::Image(img) => return Ok(img.read_region(x, y, w, h)),
        }
        let mut out = vec![0u8; w * h * 4];
        // Level coordinates of the region's corner.
        let lx = (x as f64 / l.downsample).floor() as i64;
        let ly = (y as f64 / l.downsample).floor() as i64;
        let (tw, th) = (l.tile_width as i64, l.tile_height as i64);
        let x_end = lx.saturating_add(w as i64).min(l.width as i64);
        let y_end = ly.saturating_add(h as i64).min(l.height as i64);
        if x_end <= lx.max(0) || y_end <= ly.max(0) {
            return Ok(out);
        }
        let (tx0, ty0) = (lx.max(0) / tw, ly.max(0) / th);
        let (tx1, ty1) = ((x_end - 1) / tw, (y_end - 1) / th);
        for ty in ty0..=ty1 {
            for tx in tx0..=tx1 {
                let Some(tile) = self.tile(level, tx as u64, ty as u64)? else { continue };
                // Intersection of this tile with the region, in level coordinates.
                let (ax, ay) = ((tx * tw).max(lx), (ty * th).max(ly));
                let (bx, by) = (((tx + 1) * tw).min(x_end), ((ty + 1) * th).min(y_end));
                for py in ay..by {
                    let src = (((py - ty * th) * tw + (ax - tx * tw)) * 3) as usize;
                    let dst = (((py - ly) as usize * w) + (ax - lx) as usize) * 4;
                    let n = (bx - ax) as usize;
                    for i in 0..n {
                        out[dst + i * 4..dst + i * 4 + 3].copy_from_slice(&tile[src + i * 3..src + i * 3 + 3]);
                        out[dst + i * 4 + 3] = 255;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Decoded RGB pixels of one tile (`tile_width * tile_height`); `None` for a sparse
    /// tile (no data in the file), which reads as transparent like OpenSlide's. For
    /// slides OpenSlide reads and single images, the tile's region read as by
    /// [`Slide::read_region`] with the alpha dropped (zeros outside the image).
    pub fn tile(&self, level: usize, tx: u64, ty: u64) -> Result<Option<Vec<u8>>, WsiError> {
        let l = self.level(level)?;
        let (tw, th) = (l.tile_width, l.tile_height);
        let LevelSource::Tiff { fmt, offsets, counts, tiles_across } = &l.source else {
            let (lx, ly) = (tx.saturating_mul(tw), ty.saturating_mul(th));
            let x = (lx as f64 * l.downsample).round() as i64;
            let y = (ly as f64 * l.downsample).round() as i64;
            let rgba = self.read_region(x, y, level, tw, th)?;
            return Ok(Some(rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect()));
        };
        let Reader::Tiff(data) = &self.reader else {
            return Err(WsiError::Other(format!("{}: level {level} has TIFF tiles but no TIFF file", self.path.display())));
        };
        let index = ty.saturating_mul(*tiles_across).saturating_add(tx) as usize;
        let (offset, len) = (offsets.get(index).copied().unwrap_or(0), counts.get(index).copied().unwrap_or(0));
        let err = |message: String| WsiError::Tile { level, index, offset, len, message };
        if len == 0 {
            return Ok(None);
        }
        let end = offset.checked_add(len).filter(|&e| e <= data.len() as u64).ok_or_else(|| {
            err(format!("the tile runs past the end of the file ({} bytes): the file is truncated", data.len()))
        })?;
        fmt.decode(&data[offset as usize..end as usize]).map(Some).map_err(err)
    }
}

fn level_of(ifd: &Ifd) -> Result<Level, WsiError> {
    let need = |t: u16, name: &str| {
        ifd.uint(t).ok_or_else(|| WsiError::Corrupt { offset: ifd.offset, message: format!("tiled image without {name}") })
    };
    let (width, height) = (need(tag::IMAGE_WIDTH, "ImageWidth")?, need(tag::IMAGE_LENGTH, "ImageLength")?);
    let (tw, th) = (need(tag::TILE_WIDTH, "TileWidth")?, need(tag::TILE_LENGTH, "TileLength")?);
    if width == 0 || height == 0 || tw == 0 || th == 0 || tw > 1 << 14 || th > 1 << 14 {
        return Err(WsiError::Corrupt { offset: ifd.offset, message: format!("image {width}x{height} with tiles {tw}x{th}") });
    }
    let offsets = ifd.uints(tag::TILE_OFFSETS).unwrap_or(&[]).to_vec();
    let counts = ifd.uints(tag::TILE_BYTE_COUNTS).unwrap_or(&[]).to_vec();
    let tiles_across = width.div_ceil(tw);
    let n_tiles = tiles_across * height.div_ceil(th);
    if (offsets.len() as u64) < n_tiles || (counts.len() as u64) < n_tiles {
        return Err(WsiError::Corrupt {
            offset: ifd.offset,
            message: format!("{n_tiles} tiles but {} offsets and {} byte counts", offsets.len(), counts.len()),
        });
    }
    let bits = ifd.uint(tag::BITS_PER_SAMPLE).unwrap_or(1);
    if bits != 8 {
        return Err(WsiError::Unsupported(format!("{bits} bits per sample (8 supported)")));
    }
    if ifd.uint(tag::PLANAR_CONFIG).unwrap_or(1) != 1 {
        return Err(WsiError::Unsupported("planar (separate-plane) sample layout".into()));
    }
    let fmt = TileFormat {
        compression: ifd.uint(tag::COMPRESSION).unwrap_or(1) as u16,
        photometric: ifd.uint(tag::PHOTOMETRIC).unwrap_or(2) as u16,
        samples: ifd.uint(tag::SAMPLES_PER_PIXEL).unwrap_or(1) as usize,
        predictor: ifd.uint(tag::PREDICTOR).unwrap_or(1) as u16,
        tile_w: tw as usize,
        tile_h: th as usize,
        jpeg_tables: ifd.bytes(tag::JPEG_TABLES).map(<[u8]>::to_vec),
    };
    fmt.check().map_err(|m| WsiError::Unsupported(format!("level {width}x{height}: {m} (compression {})", compression_name(fmt.compression))))?;
    Ok(Level {
        width,
        height,
        downsample: 1.0,
        tile_width: tw,
        tile_height: th,
        source: LevelSource::Tiff { fmt, offsets, counts, tiles_across },
    })
}

/// Microns per pixel from TIFF resolution tags (OpenSlide's generic-tiff rule: unit
/// centimetre or inch; none without a unit).
fn resolution_mpp(ifd: &Ifd) -> Option<(f64, f64)> {
    let microns_per_unit = match ifd.uint(tag::RESOLUTION_UNIT)? {
        2 => 25_400.0,
        3 => 10_000.0,
        _ => return None,
    };
    let (x, y) = (ifd.real(tag::X_RESOLUTION)?, ifd.real(tag::Y_RESOLUTION)?);
    (x > 0.0 && y > 0.0).then(|| (microns_per_unit / x, microns_per_unit / y))
}

/// `PhysicalSizeX/Y` (micrometres, the OME default unit) from OME-XML.
fn ome_physical_size(xml: &str) -> Option<(f64, f64)> {
    let attr = |name: &str| -> Option<f64> {
        let i = xml.find(&format!("{name}=\""))? + name.len() + 2;
        xml[i..].split('"').next()?.parse().ok()
    };
    let unit_ok = |name: &str| -> bool {
        match xml.find(&format!("{name}Unit=\"")) {
            None => true,
            Some(i) => xml[i + name.len() + 6..].starts_with("µm") || xml[i + name.len() + 6..].starts_with("um"),
        }
    };
    let (x, y) = (attr("PhysicalSizeX")?, attr("PhysicalSizeY")?);
    (x > 0.0 && y > 0.0 && unit_ok("PhysicalSizeX")).then_some((x, y))
}
