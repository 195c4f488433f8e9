//! Patch-feature files for whole-slide jobs, in the HDF5 layout that the pathology
//! toolkits (CLAM, TRIDENT) write and their slide-level training code reads:
//! datasets `features` (`N x D` float32) and `coords` (`N x 2` int64, level-0 x, y of
//! each patch's top-left corner), with the job's parameters as root attributes.

use anyhow::{bail, Context, Result};
use hdf5::types::VarLenUnicode;
use std::path::Path;
use std::str::FromStr;

/// What a feature file says about how it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureAttrs {
    pub encoder: String,
    /// Slide name (file name without its extension).
    pub name: String,
    /// Patch size in pixels at the target magnification.
    pub patch_size: u32,
    /// Patch size in level-0 pixels.
    pub patch_size_level0: u32,
    pub target_magnification: f64,
    pub level0_magnification: Option<f64>,
    pub level0_mpp: Option<f64>,
    pub overlap: u32,
    /// Level-0 size of the slide (0 when unknown).
    pub level0_width: u64,
    pub level0_height: u64,
}

type H5Location = hdf5::Location;

fn put_text(loc: &H5Location, k: &str, v: &str) -> Result<()> {
    loc.new_attr::<VarLenUnicode>().create(k)?.write_scalar(&VarLenUnicode::from_str(v).map_err(|e| anyhow::anyhow!("{e}"))?)?;
    Ok(())
}

/// Whole numbers as int64 (as the Python toolkits write their integer attributes),
/// others as float64.
fn put_num(loc: &H5Location, k: &str, v: f64) -> Result<()> {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        loc.new_attr::<i64>().create(k)?.write_scalar(&(v as i64))?;
    } else {
        loc.new_attr::<f64>().create(k)?.write_scalar(&v)?;
    }
    Ok(())
}

/// The `coords` dataset's attributes, as TRIDENT writes them (`patch_size_level0` is
/// what slide encoders such as TITAN read).
fn put_coords_attrs(loc: &H5Location, a: &FeatureAttrs, savetodir: &str) -> Result<()> {
    put_num(loc, "patch_size", f64::from(a.patch_size))?;
    put_num(loc, "patch_size_level0", f64::from(a.patch_size_level0))?;
    if let Some(m) = a.level0_magnification {
        put_num(loc, "level0_magnification", m)?;
    }
    put_num(loc, "target_magnification", a.target_magnification)?;
    put_num(loc, "overlap", f64::from(a.overlap))?;
    put_text(loc, "name", &a.name)?;
    put_text(loc, "savetodir", savetodir)?;
    put_num(loc, "level0_width", a.level0_width as f64)?;
    put_num(loc, "level0_height", a.level0_height as f64)?;
    Ok(())
}

/// Creates `path` through a temporary file in the same folder, renamed over it when
/// `fill` succeeds (nothing is left behind when it fails).
fn write_atomically(path: &Path, fill: impl FnOnce(&hdf5::File) -> Result<()>) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    {
        let f = hdf5::File::create(tmp.path()).with_context(|| format!("cannot write {}", tmp.path().display()))?;
        fill(&f).with_context(|| format!("cannot write {}", path.display()))?;
        f.flush()?;
    }
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn write_coords_dataset(f: &hdf5::File, coords: &[[i64; 2]], attrs: &FeatureAttrs, savetodir: &str) -> Result<()> {
    let flat: Vec<i64> = coords.iter().flat_map(|c| [c[0], c[1]]).collect();
    let d = f.new_dataset::<i64>().shape([coords.len(), 2]).create("coords")?;
    d.write_raw(&flat)?;
    put_coords_attrs(&d, attrs, savetodir)
}

fn dir_of(path: &Path) -> String {
    path.parent().map(|p| p.display().to_string()).unwrap_or_default()
}

/// Writes a patch-feature file atomically (temporary file in the same folder, then
/// rename): `features` `[N, D]` float32 with attributes `name`, `savetodir`, `encoder`;
/// `coords` `[N, 2]` int64 with the patching attributes (TRIDENT's layout); the same
/// parameters also as root attributes.
pub fn write_features(path: &Path, features: &[f32], dim: usize, coords: &[[i64; 2]], attrs: &FeatureAttrs) -> Result<()> {
    let n = coords.len();
    if dim == 0 || features.len() != n * dim {
        bail!("{} feature values do not fill [{n} patches, {dim}]", features.len());
    }
    let savetodir = dir_of(path);
    write_atomically(path, |f| {
        let d = f.new_dataset::<f32>().shape([n, dim]).create("features")?;
        d.write_raw(features)?;
        put_text(&d, "name", &attrs.name)?;
        put_text(&d, "savetodir", &savetodir)?;
        put_text(&d, "encoder", &attrs.encoder)?;
        write_coords_dataset(f, coords, attrs, &savetodir)?;
        put_text(f, "encoder", &attrs.encoder)?;
        put_num(f, "patch_size", f64::from(attrs.patch_size))?;
        put_num(f, "patch_size_level0", f64::from(attrs.patch_size_level0))?;
        put_num(f, "target_magnification", attrs.target_magnification)?;
        put_num(f, "overlap", f64::from(attrs.overlap))?;
        if let Some(m) = attrs.level0_magnification {
            put_num(f, "level0_magnification", m)?;
        }
        if let Some(m) = attrs.level0_mpp {
            f.new_attr::<f64>().create("level0_mpp")?.write_scalar(&m)?;
        }
        put_text(f, "writer", concat!("biofm ", env!("CARGO_PKG_VERSION")))?;
        Ok(())
    })
}

/// Writes a patch-coordinates file atomically: `coords` `[N, 2]` int64 with the
/// patching attributes, as TRIDENT's `patches/<slide>_patches.h5`.
pub fn write_coords(path: &Path, coords: &[[i64; 2]], attrs: &FeatureAttrs) -> Result<()> {
    let savetodir = dir_of(path);
    write_atomically(path, |f| write_coords_dataset(f, coords, attrs, &savetodir))
}

/// Writes a slide embedding (`features`, `[D]` float32) atomically, with the patch
/// features' attributes and how it was pooled.
pub fn write_slide_embedding(path: &Path, embedding: &[f32], pooling: &str, attrs: &FeatureAttrs) -> Result<()> {
    write_atomically(path, |f| {
        let d = f.new_dataset::<f32>().shape([embedding.len()]).create("features")?;
        d.write_raw(embedding)?;
        put_text(&d, "name", &attrs.name)?;
        put_text(&d, "encoder", &attrs.encoder)?;
        put_text(&d, "pooling", pooling)?;
        put_text(f, "writer", concat!("biofm ", env!("CARGO_PKG_VERSION")))?;
        Ok(())
    })
}

/// Reads a feature file: `(features, dim, coords, attrs)`.
pub fn read_features(path: &Path) -> Result<(Vec<f32>, usize, Vec<[i64; 2]>, FeatureAttrs)> {
    let f = hdf5::File::open(path).with_context(|| format!("cannot open {} as HDF5", path.display()))?;
    let feats = f.dataset("features").with_context(|| format!("{}: no `features` dataset", path.display()))?;
    let shape = feats.shape();
    if shape.len() != 2 {
        bail!("{}: `features` has shape {shape:?}, expected [N, D]", path.display());
    }
    let features: Vec<f32> = feats.read_raw()?;
    let flat: Vec<i64> = f.dataset("coords").with_context(|| format!("{}: no `coords` dataset", path.display()))?.read_raw()?;
    if flat.len() != shape[0] * 2 {
        bail!("{}: {} coordinates for {} patches", path.display(), flat.len() / 2, shape[0]);
    }
    let coords = flat.chunks_exact(2).map(|c| [c[0], c[1]]).collect();
    let cds = f.dataset("coords")?;
    let num = |k: &str| -> Option<f64> {
        let read = |a: hdf5::Attribute| a.read_scalar::<f64>().or_else(|_| a.read_scalar::<i64>().map(|v| v as f64));
        cds.attr(k).ok().and_then(|a| read(a).ok()).or_else(|| f.attr(k).ok().and_then(|a| read(a).ok()))
    };
    let text = |loc: &hdf5::Location, k: &str| loc.attr(k).and_then(|a| a.read_scalar::<VarLenUnicode>()).map(|s| s.as_str().to_string()).ok();
    let attrs = FeatureAttrs {
        encoder: text(&feats, "encoder").or_else(|| text(&f, "encoder")).unwrap_or_default(),
        name: text(&cds, "name").or_else(|| text(&feats, "name")).unwrap_or_default(),
        patch_size: num("patch_size").unwrap_or(0.0) as u32,
        patch_size_level0: num("patch_size_level0").unwrap_or(0.0) as u32,
        target_magnification: num("target_magnification").unwrap_or(0.0),
        level0_magnification: num("level0_magnification"),
        level0_mpp: f.attr("level0_mpp").and_then(|a| a.read_scalar::<f64>()).ok(),
        overlap: num("overlap").unwrap_or(0.0) as u32,
        level0_width: num("level0_width").unwrap_or(0.0) as u64,
        level0_height: num("level0_height").unwrap_or(0.0) as u64,
    };
    Ok((features, shape[1], coords, attrs))
}
