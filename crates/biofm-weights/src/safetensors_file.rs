//! safetensors: an 8-byte little-endian header length, a JSON header, then raw data.

use crate::error::{Error, Result};
use crate::store::{Blob, Entry, StoredDType, TensorInfo};
use std::path::Path;
use std::sync::Arc;

pub(crate) fn open(path: &Path) -> Result<Vec<(String, Entry)>> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    // SAFETY: the file is opened read-only; like every mmap-based loader we assume it is
    // not truncated by another process while mapped.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let corrupt = |offset: u64, msg: String| Error::Corrupt { path: path.to_path_buf(), offset, msg };
    if mmap.len() < 8 {
        return Err(corrupt(0, format!("file is {} bytes, too short for a safetensors header", mmap.len())));
    }
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&mmap[..8]);
    let hlen = u64::from_le_bytes(len_bytes);
    let data_start = 8u64.checked_add(hlen).filter(|&e| e <= mmap.len() as u64).ok_or_else(|| {
        corrupt(0, format!("header length {hlen} exceeds the file size {}", mmap.len()))
    })? as usize;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&mmap[8..data_start])
        .map_err(|e| corrupt(8 + e.column() as u64, format!("invalid JSON header: {e}")))?;
    let data_len = mmap.len() - data_start;
    let blob = Arc::new(Blob::Mmap(mmap));
    let file = Arc::new(path.to_path_buf());
    let mut out = Vec::with_capacity(header.len());
    for (name, v) in header {
        if name == "__metadata__" {
            continue;
        }
        let bad = |msg: &str| corrupt(8, format!("tensor `{name}`: {msg}"));
        let dtype = match v.get("dtype").and_then(|d| d.as_str()) {
            Some("F64") => StoredDType::F64,
            Some("F32") => StoredDType::F32,
            Some("F16") => StoredDType::F16,
            Some("BF16") => StoredDType::BF16,
            Some("I64") => StoredDType::I64,
            Some("I32") => StoredDType::I32,
            Some("I16") => StoredDType::I16,
            Some("I8") => StoredDType::I8,
            Some("U8") => StoredDType::U8,
            Some("BOOL") => StoredDType::Bool,
            Some(other) => return Err(bad(&format!("unsupported dtype {other}"))),
            None => return Err(bad("no dtype")),
        };
        let shape: Vec<usize> = v
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| bad("no shape"))?
            .iter()
            .map(|d| d.as_u64().map(|x| x as usize).ok_or_else(|| bad("non-integer dimension")))
            .collect::<Result<_>>()?;
        let offs = v.get("data_offsets").and_then(|s| s.as_array()).ok_or_else(|| bad("no data_offsets"))?;
        let (begin, end) = match (offs.first().and_then(|x| x.as_u64()), offs.get(1).and_then(|x| x.as_u64())) {
            (Some(b), Some(e)) if b <= e && e as usize <= data_len => (b as usize, e as usize),
            _ => return Err(bad(&format!("data_offsets {offs:?} outside the {data_len}-byte data section"))),
        };
        let numel: usize = shape.iter().product();
        if numel * dtype.size() != end - begin {
            return Err(bad(&format!(
                "shape {shape:?} of {dtype:?} needs {} bytes but data_offsets span {}",
                numel * dtype.size(),
                end - begin
            )));
        }
        out.push((
            name,
            Entry {
                info: TensorInfo { shape, dtype },
                blob: blob.clone(),
                byte_offset: data_start + begin,
                strides: None,
                file: file.clone(),
            },
        ));
    }
    Ok(out)
}
