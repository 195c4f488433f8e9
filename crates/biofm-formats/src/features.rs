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
    /// Patch size in pixels at the target magnification.
    pub patch_size: u32,
    /// Patch size in level-0 pixels.
    pub patch_size_level0: u32,
    pub target_magnification: f64,
    pub level0_magnification: Option<f64>,
    pub level0_mpp: Option<f64>,
    pub overlap: u32,
}

/// Writes `path` atomically (temporary file in the same folder, then rename).
pub fn write_features(path: &Path, features: &[f32], dim: usize, coords: &[[i64; 2]], attrs: &FeatureAttrs) -> Result<()> {
    let n = coords.len();
    if dim == 0 || features.len() != n * dim {
        bail!("{} feature values do not fill [{n} patches, {dim}]", features.len());
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".biofm-")
        .suffix(".h5.partial")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    {
        let f = hdf5::File::create(tmp.path()).with_context(|| format!("cannot write {}", tmp.path().display()))?;
        f.new_dataset::<f32>().shape([n, dim]).create("features")?.write_raw(features)?;
        let flat: Vec<i64> = coords.iter().flat_map(|c| [c[0], c[1]]).collect();
        f.new_dataset::<i64>().shape([n, 2]).create("coords")?.write_raw(&flat)?;
        let text = |k: &str, v: &str| -> Result<()> {
            f.new_attr::<VarLenUnicode>().create(k)?.write_scalar(&VarLenUnicode::from_str(v).map_err(|e| anyhow::anyhow!("{e}"))?)?;
            Ok(())
        };
        let num = |k: &str, v: f64| -> Result<()> {
            f.new_attr::<f64>().create(k)?.write_scalar(&v)?;
            Ok(())
        };
        text("encoder", &attrs.encoder)?;
        num("patch_size", attrs.patch_size as f64)?;
        num("patch_size_level0", attrs.patch_size_level0 as f64)?;
        num("target_magnification", attrs.target_magnification)?;
        num("overlap", attrs.overlap as f64)?;
        if let Some(m) = attrs.level0_magnification {
            num("level0_magnification", m)?;
        }
        if let Some(m) = attrs.level0_mpp {
            num("level0_mpp", m)?;
        }
        text("writer", concat!("biofm ", env!("CARGO_PKG_VERSION")))?;
        f.flush()?;
    }
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
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
    let num = |k: &str| f.attr(k).and_then(|a| a.read_scalar::<f64>()).ok();
    let attrs = FeatureAttrs {
        encoder: f.attr("encoder").and_then(|a| a.read_scalar::<VarLenUnicode>()).map(|s| s.as_str().to_string()).unwrap_or_default(),
        patch_size: num("patch_size").unwrap_or(0.0) as u32,
        patch_size_level0: num("patch_size_level0").unwrap_or(0.0) as u32,
        target_magnification: num("target_magnification").unwrap_or(0.0),
        level0_magnification: num("level0_magnification"),
        level0_mpp: num("level0_mpp"),
        overlap: num("overlap").unwrap_or(0.0) as u32,
    };
    Ok((features, shape[1], coords, attrs))
}
