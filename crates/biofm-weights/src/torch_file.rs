//! PyTorch checkpoints written by `torch.save`.
//!
//! * Zip format (PyTorch ≥ 1.6): `<archive>/data.pkl` (the pickled object, protocol 2 by
//!   default), `<archive>/data/<key>` (raw little-endian storage bytes, stored and 64-byte
//!   aligned), `<archive>/byteorder`, `<archive>/version`.
//! * Legacy format (`_use_new_zipfile_serialization=False`, and every file from PyTorch
//!   < 1.6): five pickles in a row (magic number, protocol version 1001, system info, the
//!   object, the sorted storage keys), then for each storage key its element count as a
//!   little-endian u64 followed by its bytes.
//!
//! Storages stay in the memory-mapped file; only the pickle is interpreted (see
//! [`crate::pickle`]), and every tensor's size, stride and offset are checked against its
//! storage here, at open time.

use crate::error::{Error, Result};
use crate::open::FileTensors;
use crate::pickle::{self, Obj, Pickle, PickleError, TensorRef};
use crate::state_dict::{self, ResolveError};
use crate::store::{Blob, Entry, TensorInfo};
use crate::zip::{ZipArchive, ZipError};
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `torch.serialization.MAGIC_NUMBER` (0x1950a86a20f9469cfc6c) as little-endian bytes.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// `torch.serialization.PROTOCOL_VERSION` of legacy files.
const LEGACY_PROTOCOL: i64 = 1001;

fn corrupt(path: &Path, offset: usize, msg: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        msg: msg.into(),
    }
}

fn unsupported(path: &Path, msg: impl Into<String>) -> Error {
    Error::Unsupported {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

fn zip_error(path: &Path) -> impl Fn(ZipError) -> Error + '_ {
    move |e| Error::Corrupt {
        path: path.to_path_buf(),
        offset: e.offset,
        msg: e.msg,
    }
}

/// Parses the pickle at `data[start..]`, where `data` begins at file offset `base`;
/// errors name `what` and the offset inside it as well as the file offset.
fn parse_pickle(path: &Path, what: &str, data: &[u8], start: usize, base: usize) -> Result<Pickle> {
    pickle::parse(data, start).map_err(|PickleError { offset, msg }| {
        corrupt(
            path,
            base + offset,
            format!("{what}, byte {}: {msg}", offset - start),
        )
    })
}

/// Opens a zip-format checkpoint mapped in `blob`.
pub(crate) fn open_zip(path: &Path, blob: Arc<Blob>) -> Result<FileTensors> {
    let bytes = blob.bytes();
    let zip = ZipArchive::parse(bytes).map_err(zip_error(path))?;
    let names = zip.names();
    let Some(pkl_name) = names
        .iter()
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
    else {
        let msg = if names.iter().any(|n| n.ends_with(".npy")) {
            "a zip archive of .npy files (numpy.savez), not a torch.save checkpoint".to_string()
        } else {
            format!("a zip archive without `<name>/data.pkl`, not a torch.save checkpoint (it holds {} entries)", names.len())
        };
        return Err(unsupported(path, msg));
    };
    let prefix = &pkl_name[..pkl_name.len() - "data.pkl".len()];
    if zip.entry(&format!("{prefix}constants.pkl")).is_some() {
        return Err(unsupported(
            path,
            "a TorchScript archive (torch.jit.save), not a state dict; in Python, load it with torch.jit.load \
             and save `model.state_dict()` with torch.save",
        ));
    }
    let read = |name: &str| -> Result<Option<Range<usize>>> {
        zip.entry(name)
            .map(|e| zip.stored_range(name, e))
            .transpose()
            .map_err(zip_error(path))
    };
    if let Some(r) = read(&format!("{prefix}byteorder"))? {
        if bytes.get(r.clone()) != Some(b"little".as_slice()) {
            return Err(unsupported(
                path,
                format!(
                    "storages are not little-endian (byteorder record: {:?})",
                    String::from_utf8_lossy(bytes.get(r).unwrap_or_default())
                ),
            ));
        }
    }
    let pkl = read(pkl_name)?.ok_or_else(|| corrupt(path, 0, format!("`{pkl_name}` vanished")))?;
    let pkl_bytes = bytes.get(pkl.clone()).unwrap_or_default();
    let p = parse_pickle(path, pkl_name, pkl_bytes, 0, pkl.start)?;
    let storage =
        |key: &str| -> Result<Option<Range<usize>>> { read(&format!("{prefix}data/{key}")) };
    entries(path, &blob, &p, |k| storage(k), &format!("{prefix}data/"))
}

/// Opens a legacy-format checkpoint mapped in `blob` (its first byte is a pickle PROTO).
pub(crate) fn open_legacy(path: &Path, blob: Arc<Blob>) -> Result<FileTensors> {
    let bytes = blob.bytes();
    let magic = parse_pickle(path, "first pickle", bytes, 0, 0)?;
    if !matches!(magic.get(magic.root), Obj::BigInt(b) if b[..] == LEGACY_MAGIC) {
        return Err(unsupported(
            path,
            "a Python pickle, but not one written by torch.save (no torch magic number)",
        ));
    }
    let proto = parse_pickle(path, "protocol pickle", bytes, magic.end, 0)?;
    match proto.get(proto.root) {
        Obj::Int(LEGACY_PROTOCOL) => {}
        o => {
            return Err(unsupported(
                path,
                format!(
                    "legacy torch.save protocol {} (expected {LEGACY_PROTOCOL})",
                    o.describe()
                ),
            ))
        }
    }
    let sys = parse_pickle(path, "system-info pickle", bytes, proto.end, 0)?;
    if let Some(le) = sys.dict_get(sys.root, "little_endian") {
        if matches!(sys.get(le), Obj::Bool(false)) {
            return Err(unsupported(
                path,
                "written on a big-endian machine; storages are not little-endian",
            ));
        }
    }
    let main = parse_pickle(path, "object pickle", bytes, sys.end, 0)?;
    let keys = parse_pickle(path, "storage-key pickle", bytes, main.end, 0)?;
    let Obj::List(key_ids) = keys.get(keys.root) else {
        return Err(corrupt(
            path,
            main.end,
            format!(
                "storage-key pickle holds a {}, not a list",
                keys.get(keys.root).describe()
            ),
        ));
    };
    // Element sizes and counts of every storage the object references.
    let declared: HashMap<&str, (usize, u64)> = main
        .objs
        .iter()
        .filter_map(|o| match o {
            Obj::Storage(s) => Some((s.key.as_str(), (s.elem_size, s.numel))),
            _ => None,
        })
        .collect();
    // Storages follow the key list in its order: u64 element count, then the bytes.
    let mut ranges = HashMap::new();
    let mut pos = keys.end;
    for &k in key_ids {
        let Obj::Str(key) = keys.get(k) else {
            return Err(corrupt(
                path,
                main.end,
                format!("storage key is a {}, not a string", keys.get(k).describe()),
            ));
        };
        let &(elem_size, numel) = declared.get(key.as_str()).ok_or_else(|| {
            corrupt(
                path,
                pos,
                format!("storage `{key}` is listed but no tensor uses it"),
            )
        })?;
        let count = bytes
            .get(pos..pos + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
            .ok_or_else(|| {
                corrupt(
                    path,
                    pos,
                    format!("file ends before the header of storage `{key}`"),
                )
            })?;
        if count != numel {
            return Err(corrupt(
                path,
                pos,
                format!("storage `{key}` holds {count} elements but the pickle declares {numel}"),
            ));
        }
        let len = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(elem_size));
        let range = len
            .and_then(|len| Some(pos + 8..(pos + 8).checked_add(len)?))
            .filter(|r| r.end <= bytes.len())
            .ok_or_else(|| {
                corrupt(path, pos, format!("storage `{key}` ({count} elements of {elem_size} bytes) runs past the end of the file ({} bytes)", bytes.len()))
            })?;
        pos = range.end;
        ranges.insert(key.clone(), range);
    }
    entries(
        path,
        &blob,
        &main,
        |k| Ok(ranges.get(k).cloned()),
        "legacy storage ",
    )
}

/// Lists the state dict's tensors as entries, each storage looked up with `storage(key)`
/// (its byte range in the file, `None` when absent; `label` prefixes keys in messages).
fn entries(
    path: &Path,
    blob: &Arc<Blob>,
    p: &Pickle,
    storage: impl Fn(&str) -> Result<Option<Range<usize>>>,
    label: &str,
) -> Result<FileTensors> {
    let resolved = state_dict::resolve(p).map_err(|e| match e {
        ResolveError::NotFound(msg) => unsupported(path, msg),
        ResolveError::Invalid(msg) => corrupt(path, 0, msg),
    })?;
    let file = Arc::new(path.to_path_buf());
    let mut out = Vec::with_capacity(resolved.tensors.len());
    for (key, t) in resolved.tensors {
        let range = storage(&t.storage.key)?.ok_or_else(|| {
            corrupt(
                path,
                0,
                format!(
                    "storage record `{label}{}` of tensor `{key}` is missing",
                    t.storage.key
                ),
            )
        })?;
        out.push((
            key.clone(),
            tensor_entry(path, &key, t, range, label, blob, &file)?,
        ));
    }
    Ok(FileTensors {
        entries: out,
        wrapper: resolved.wrapper,
    })
}

/// Checks that tensor `t` lies inside its storage (bytes `range` of the file) and makes
/// its entry.
fn tensor_entry(
    path: &Path,
    key: &str,
    t: &TensorRef,
    range: Range<usize>,
    label: &str,
    blob: &Arc<Blob>,
    file: &Arc<PathBuf>,
) -> Result<Entry> {
    let dtype = t.dtype.clone().map_err(|d| {
        unsupported(
            path,
            format!("tensor `{key}` has dtype {d}, which biofm cannot read"),
        )
    })?;
    let s = &t.storage;
    let record = format!("{label}{}", s.key);
    let bad = |msg: String| {
        corrupt(
            path,
            range.start,
            format!("tensor `{key}` (storage `{record}`): {msg}"),
        )
    };
    let mul = |a: u64, b: usize| a.checked_mul(b as u64);
    let storage_bytes = mul(s.numel, s.elem_size)
        .ok_or_else(|| bad(format!("storage size {} overflows", s.numel)))?;
    if storage_bytes > range.len() as u64 {
        return Err(bad(format!(
            "the storage declares {storage_bytes} bytes but its record holds {}",
            range.len()
        )));
    }
    // The window tensor offsets count from: the storage, or a legacy view on it.
    let (window_start, window_len) = match s.view {
        None => (0, storage_bytes),
        Some((offset, numel)) => {
            let w = mul(offset, s.elem_size).zip(mul(numel, s.elem_size));
            w.filter(|&(o, n)| o.checked_add(n).is_some_and(|end| end <= storage_bytes))
                .ok_or_else(|| {
                    bad(format!(
                        "storage view ({offset}, {numel}) exceeds its {storage_bytes}-byte storage"
                    ))
                })?
        }
    };
    let es = dtype.size();
    let span = crate::store::byte_span(&t.shape, Some(&t.strides), es);
    let start = mul(t.offset, es);
    let end = start.zip(span).and_then(|(a, b)| a.checked_add(b));
    let (Some(start), Some(end)) = (start, end) else {
        return Err(bad(format!(
            "size {:?}, stride {:?}, offset {} overflow",
            t.shape, t.strides, t.offset
        )));
    };
    if end > window_len {
        return Err(bad(format!(
            "size {:?}, stride {:?} and storage offset {} of {dtype:?} reach byte {end}, past the end of the \
             {window_len}-byte storage",
            t.shape, t.strides, t.offset
        )));
    }
    let byte_offset = range.start as u64 + window_start + start;
    let strides = (!crate::store::is_contiguous(&t.shape, &t.strides)).then(|| t.strides.clone());
    Entry::new(
        TensorInfo {
            shape: t.shape.clone(),
            dtype,
        },
        blob.clone(),
        byte_offset,
        strides,
        file.clone(),
    )
    .map_err(bad)
}
