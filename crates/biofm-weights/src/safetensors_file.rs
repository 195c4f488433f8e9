//! safetensors: an 8-byte little-endian header length, a JSON header, then raw data.

use crate::error::{Error, Result};
use crate::store::{Blob, Entry, StoredDType, TensorInfo};
use std::path::Path;
use std::sync::Arc;

/// Lists the tensors of the safetensors file mapped in `blob`.
pub(crate) fn open(path: &Path, blob: Arc<Blob>) -> Result<Vec<(String, Entry)>> {
    let bytes = blob.bytes();
    let corrupt = |offset: u64, msg: String| Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        msg,
    };
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(bytes.get(..8).ok_or_else(|| {
        corrupt(
            0,
            format!(
                "file is {} bytes, too short for a safetensors header",
                bytes.len()
            ),
        )
    })?);
    let hlen = u64::from_le_bytes(len_bytes);
    let header_bytes = usize::try_from(hlen)
        .ok()
        .and_then(|h| bytes.get(8..8usize.checked_add(h)?))
        .ok_or_else(|| {
            corrupt(
                0,
                format!("header length {hlen} exceeds the file size {}", bytes.len()),
            )
        })?;
    let data_start = 8 + header_bytes.len();
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header_bytes)
            .map_err(|e| corrupt(8 + e.column() as u64, format!("invalid JSON header: {e}")))?;
    let data_len = (bytes.len() - data_start) as u64;
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
            Some("U64") => StoredDType::U64,
            Some("U32") => StoredDType::U32,
            Some("U16") => StoredDType::U16,
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
            .map(|d| {
                d.as_u64()
                    .and_then(|x| usize::try_from(x).ok())
                    .ok_or_else(|| bad("invalid dimension"))
            })
            .collect::<Result<_>>()?;
        let offs = v
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .ok_or_else(|| bad("no data_offsets"))?;
        let (begin, end) = match (
            offs.first().and_then(|x| x.as_u64()),
            offs.get(1).and_then(|x| x.as_u64()),
        ) {
            (Some(b), Some(e)) if b <= e && e <= data_len => (b, e),
            _ => {
                return Err(bad(&format!(
                    "data_offsets {offs:?} outside the {data_len}-byte data section"
                )))
            }
        };
        let needed = crate::store::byte_span(&shape, None, dtype.size());
        if needed != Some(end - begin) {
            return Err(bad(&format!(
                "shape {shape:?} of {dtype:?} needs {} bytes but data_offsets span {}",
                needed.map_or("too many".to_string(), |n| n.to_string()),
                end - begin
            )));
        }
        let entry = Entry::new(
            TensorInfo { shape, dtype },
            blob.clone(),
            data_start as u64 + begin,
            None,
            file.clone(),
        )
        .map_err(|msg| bad(&msg))?;
        out.push((name, entry));
    }
    Ok(out)
}
