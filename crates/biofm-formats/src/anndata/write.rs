//! Writing embeddings into a copy of an `.h5ad` file.

use super::{lowlevel, AnnData};
use anyhow::{bail, Context, Result};
use hdf5::types::VarLenUnicode;
use std::path::Path;
use std::str::FromStr;

fn set_str_attr(obj: &hdf5::Location, name: &str, value: &str) -> Result<()> {
    if obj.attr(name).is_ok() {
        obj.delete_attr(name)?;
    }
    obj.new_attr::<VarLenUnicode>()
        .create(name)?
        .write_scalar(&VarLenUnicode::from_str(value).map_err(|e| anyhow::anyhow!("{e}"))?)?;
    Ok(())
}

/// Writes `input` with `obsm[key]` = `data` (`[n_obs, dim]`, row-major) to `output`
/// (which may be `input` itself): the file is copied to a temporary file beside
/// `output`, modified there and renamed into place, so `output` is never half-written.
/// An existing `obsm[key]` is replaced. A legacy compound `obsm` table is rewritten as
/// the current group-of-arrays layout (its entries kept), which anndata reads in both.
pub fn write_obsm_copy(input: &Path, output: &Path, key: &str, dim: usize, data: &[f32]) -> Result<()> {
    if key.is_empty() || key.contains('/') {
        bail!("obsm key `{key}` must be non-empty and contain no `/`");
    }
    let ad = AnnData::open(input)?;
    let n_obs = ad.n_obs();
    if data.len() != n_obs * dim {
        bail!("{} values for obsm[{key:?}] do not fill [{n_obs} cells, {dim}]", data.len());
    }
    // Entries of a legacy compound obsm, to carry over.
    let legacy_obsm: Vec<(String, usize, Vec<f64>)> = match ad.file().dataset("obsm") {
        Ok(ds) => lowlevel::compound_fields(&ds)?
            .into_iter()
            .filter(|f| f != key)
            .map(|f| {
                let (w, v) = lowlevel::read_compound_array_field(&ds, &f)?;
                Ok((f, w, v))
            })
            .collect::<Result<_>>()
            .with_context(|| format!("{}: reading the legacy obsm table", input.display()))?,
        Err(_) => Vec::new(),
    };
    drop(ad);

    let dir = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".biofm-")
        .suffix(".h5ad.partial")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    std::fs::copy(input, tmp.path()).with_context(|| format!("cannot copy {} to {}", input.display(), dir.display()))?;
    {
        let f = hdf5::File::open_rw(tmp.path()).with_context(|| format!("cannot reopen the copy of {}", input.display()))?;
        if f.dataset("obsm").is_ok() {
            f.unlink("obsm")?;
        }
        let obsm = match f.group("obsm") {
            Ok(g) => g,
            Err(_) => f.create_group("obsm")?,
        };
        set_str_attr(&obsm, "encoding-type", "dict")?;
        set_str_attr(&obsm, "encoding-version", "0.1.0")?;
        for (name, w, values) in &legacy_obsm {
            let ds = obsm.new_dataset::<f64>().shape([n_obs, *w]).create(name.as_str())?;
            ds.write_raw(values)?;
            set_str_attr(&ds, "encoding-type", "array")?;
            set_str_attr(&ds, "encoding-version", "0.2.0")?;
        }
        if obsm.link_exists(key) {
            obsm.unlink(key)?;
        }
        let ds = obsm.new_dataset::<f32>().shape([n_obs, dim]).create(key)?;
        ds.write_raw(data)?;
        set_str_attr(&ds, "encoding-type", "array")?;
        set_str_attr(&ds, "encoding-version", "0.2.0")?;
        f.flush()?;
    }
    tmp.persist(output).map_err(|e| e.error).with_context(|| format!("cannot write {}", output.display()))?;
    Ok(())
}
