//! A whole-slide image: pyramid levels, metadata, `read_region` with OpenSlide's
//! conventions (level-0 coordinates, RGBA, transparent outside the image).

use crate::codec::{compression_name, TileFormat};
use crate::error::WsiError;
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
    fmt: TileFormat,
    offsets: Vec<u64>,
    counts: Vec<u64>,
    tiles_across: u64,
}

impl Level {
    /// The tiles' compression, by name.
    pub fn compression(&self) -> String {
        compression_name(self.fmt.compression)
    }
}

/// An open slide (memory-mapped).
pub struct Slide {
    path: PathBuf,
    data: memmap2::Mmap,
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
    /// Opens a pyramidal TIFF / BigTIFF (generic tiled TIFF, Aperio SVS, OME-TIFF).
    pub fn open(path: &Path) -> Result<Self, WsiError> {
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
            return Err(WsiError::Unsupported(
                "no tiled image in the file: whole-slide readers need a tiled pyramid (convert strips with e.g. `vips tiffsave --tile --pyramid`)".into(),
            ));
        }
        let mut levels = candidates.into_iter().map(level_of).collect::<Result<Vec<_>, _>>()?;
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
        Ok(Self { path: path.to_path_buf(), data, levels, vendor: vendor.into(), mpp, objective_power, properties })
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

    /// RGBA pixels (premultiplied as OpenSlide's, i.e. opaque or all-zero) of the
    /// `w x h` region of `level` whose top-left corner is `(x, y)` in level-0
    /// coordinates; pixels outside the image are transparent `(0, 0, 0, 0)`.
    pub fn read_region(&self, x: i64, y: i64, level: usize, w: u64, h: u64) -> Result<Vec<u8>, WsiError> {
        let l = self.levels.get(level).ok_or_else(|| WsiError::Other(format!("level {level} does not exist ({} levels)", self.levels.len())))?;
        if w.saturating_mul(h) > 1 << 30 {
            return Err(WsiError::Other(format!("region {w}x{h} is too large")));
        }
        let (w, h) = (w as usize, h as usize);
        let mut out = vec![0u8; w * h * 4];
        // Level coordinates of the region's corner.
        let lx = (x as f64 / l.downsample).floor() as i64;
        let ly = (y as f64 / l.downsample).floor() as i64;
        let (tw, th) = (l.tile_width as i64, l.tile_height as i64);
        let x_end = (lx + w as i64).min(l.width as i64);
        let y_end = (ly + h as i64).min(l.height as i64);
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
    /// tile (no data in the file), which reads as transparent like OpenSlide's.
    pub fn tile(&self, level: usize, tx: u64, ty: u64) -> Result<Option<Vec<u8>>, WsiError> {
        let l = &self.levels[level];
        let index = (ty * l.tiles_across + tx) as usize;
        let (offset, len) = (l.offsets.get(index).copied().unwrap_or(0), l.counts.get(index).copied().unwrap_or(0));
        let err = |message: String| WsiError::Tile { level, index, offset, len, message };
        if len == 0 {
            return Ok(None);
        }
        let end = offset.checked_add(len).filter(|&e| e <= self.data.len() as u64).ok_or_else(|| {
            err(format!("the tile runs past the end of the file ({} bytes): the file is truncated", self.data.len()))
        })?;
        l.fmt.decode(&self.data[offset as usize..end as usize]).map(Some).map_err(err)
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
    Ok(Level { width, height, downsample: 1.0, tile_width: tw, tile_height: th, fmt, offsets, counts, tiles_across })
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
