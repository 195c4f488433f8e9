use crate::error::{Error, Result};
use crate::rules::KeyRules;
use candle_core::{DType, Device, Tensor};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Element type as stored in the checkpoint (little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredDType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U64,
    U32,
    U16,
    U8,
    /// One byte per element, non-zero meaning `true` (torch.bool).
    Bool,
}

impl StoredDType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 | Self::U64 => 8,
            Self::F32 | Self::I32 | Self::U32 => 4,
            Self::F16 | Self::BF16 | Self::I16 | Self::U16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }

    /// The candle dtype holding these values unchanged, if candle has one.
    pub fn candle_dtype(self) -> Option<DType> {
        Some(match self {
            Self::F64 => DType::F64,
            Self::F32 => DType::F32,
            Self::F16 => DType::F16,
            Self::BF16 => DType::BF16,
            Self::I64 => DType::I64,
            Self::I32 => DType::I32,
            Self::I16 => DType::I16,
            Self::U32 => DType::U32,
            Self::U8 => DType::U8,
            Self::I8 | Self::U64 | Self::U16 | Self::Bool => return None,
        })
    }
}

/// Shape and dtype of one stored tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub shape: Vec<usize>,
    pub dtype: StoredDType,
}

/// Bytes backing tensors: a memory-mapped checkpoint file.
pub(crate) enum Blob {
    Mmap(memmap2::Mmap),
}

impl Blob {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Blob::Mmap(m) => m,
        }
    }
}

/// Bytes spanned by a tensor of `shape` with element `strides` (row-major contiguous when
/// `None`) and `elem_size`-byte elements: one past its furthest element. `None` on overflow.
pub(crate) fn byte_span(
    shape: &[usize],
    strides: Option<&[usize]>,
    elem_size: usize,
) -> Option<u64> {
    if shape.contains(&0) {
        return Some(0);
    }
    let last = match strides {
        // Row-major: the last element is at numel - 1.
        None => {
            shape
                .iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d as u64))?
                - 1
        }
        Some(strides) => shape.iter().zip(strides).try_fold(0u64, |acc, (&d, &s)| {
            acc.checked_add((d as u64 - 1).checked_mul(s as u64)?)
        })?,
    };
    last.checked_add(1)?.checked_mul(elem_size as u64)
}

/// Whether `strides` describe the row-major layout of `shape` (dimensions of size 1 may
/// have any stride, as in torch's `is_contiguous`).
pub(crate) fn is_contiguous(shape: &[usize], strides: &[usize]) -> bool {
    if shape.contains(&0) {
        return true;
    }
    let mut expected = 1usize;
    for (&d, &s) in shape.iter().zip(strides).rev() {
        if d != 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(d);
    }
    true
}

/// Where a tensor's elements live: `shape`/`strides` in elements, starting at
/// `byte_offset` in `blob`, little-endian. Constructed only through [`Entry::new`], which
/// guarantees every element lies inside the blob.
pub(crate) struct Entry {
    pub info: TensorInfo,
    pub blob: Arc<Blob>,
    pub byte_offset: usize,
    /// Element strides; `None` means row-major contiguous.
    pub strides: Option<Vec<usize>>,
    pub file: Arc<PathBuf>,
}

impl Entry {
    /// Checks that the tensor's elements lie inside `blob`; the error says why not.
    pub(crate) fn new(
        info: TensorInfo,
        blob: Arc<Blob>,
        byte_offset: u64,
        strides: Option<Vec<usize>>,
        file: Arc<PathBuf>,
    ) -> std::result::Result<Self, String> {
        let span = byte_span(&info.shape, strides.as_deref(), info.dtype.size());
        let end = span.and_then(|s| s.checked_add(byte_offset));
        match end {
            Some(end) if end <= blob.bytes().len() as u64 => {}
            _ => {
                return Err(format!(
                    "{:?} tensor of shape {:?} at byte {byte_offset} runs past the end of the {}-byte file",
                    info.dtype,
                    info.shape,
                    blob.bytes().len()
                ))
            }
        }
        // Fits in the blob, so it fits in usize.
        let byte_offset = byte_offset as usize;
        Ok(Self {
            info,
            blob,
            byte_offset,
            strides,
            file,
        })
    }
}

/// A checkpoint: every tensor of one or more files, by key.
///
/// Opening reads only headers (the safetensors JSON, the zip central directory and the
/// pickle): tensor data stays in the memory-mapped files until [`Weights::get`] copies
/// one tensor out, converting its dtype.
pub struct Weights {
    entries: BTreeMap<String, Entry>,
    used: Mutex<BTreeSet<String>>,
    desc: String,
    wrapper: Option<String>,
}

impl Weights {
    /// Opens one checkpoint file; the format is detected from its first bytes:
    /// safetensors, a `torch.save` zip archive (PyTorch ≥ 1.6) or a legacy `torch.save`
    /// pickle. For PyTorch files the state dict is found as described at
    /// [`STATE_DICT_WRAPPER_KEYS`](crate::STATE_DICT_WRAPPER_KEYS).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_many(&[path.as_ref()])
    }

    /// Opens several files (e.g. sharded safetensors) as one set of weights. A key present
    /// in two files is an error naming both.
    pub fn open_many<P: AsRef<Path>>(paths: &[P]) -> Result<Self> {
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        let mut names = Vec::new();
        let mut wrapper = None;
        for p in paths {
            let p = p.as_ref();
            names.push(p.display().to_string());
            let opened = crate::open::open_any(p)?;
            wrapper = wrapper.or(opened.wrapper);
            for (k, e) in opened.entries {
                if let Some(first) = entries.get(&k) {
                    return Err(Error::Duplicate {
                        key: k,
                        first: first.file.to_path_buf(),
                        second: p.to_path_buf(),
                    });
                }
                entries.insert(k, e);
            }
        }
        Ok(Self {
            entries,
            used: Mutex::new(BTreeSet::new()),
            desc: names.join(", "),
            wrapper,
        })
    }

    /// Human-readable description of where these weights came from (file names).
    pub fn source(&self) -> &str {
        &self.desc
    }

    /// The key path of the wrapper dict the state dict was found under (`"state_dict"`,
    /// `"model"`, `"teacher.module"`, ...), or `None` when the tensors were at the top
    /// level. With several files, the first file's wrapper that is not `None`.
    pub fn wrapper(&self) -> Option<&str> {
        self.wrapper.as_deref()
    }

    /// Renames, drops and selects keys with `rules`. Two keys mapping to the same name is
    /// an error naming both, and leaves the weights unchanged.
    pub fn apply_rules(&mut self, rules: &KeyRules) -> Result<()> {
        let mut origin: BTreeMap<String, String> = BTreeMap::new();
        for k in self.entries.keys() {
            if let Some(nk) = rules.map_key(k) {
                if let Some(other) = origin.insert(nk.clone(), k.clone()) {
                    return Err(Error::Rule(format!(
                        "keys `{other}` and `{k}` both map to `{nk}`"
                    )));
                }
            }
        }
        let mut old = std::mem::take(&mut self.entries);
        self.entries = origin
            .into_iter()
            .filter_map(|(nk, k)| old.remove(&k).map(|e| (nk, e)))
            .collect();
        Ok(())
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// All keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(|s| s.as_str())
    }
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }
    /// Stored shape and dtype of `key`.
    pub fn info(&self, key: &str) -> Option<&TensorInfo> {
        self.entries.get(key).map(|e| &e.info)
    }

    /// Fetches `key` as a tensor of `dtype` on `device`, checking it has `shape`.
    ///
    /// Values are converted as torch's `Tensor.to(dtype)` converts them on CPU: floats
    /// round to nearest even (f64 to f16/bf16 going through f32, as c10 does), floats to
    /// integers truncate, integers narrow by wrapping, bool is 0/1.
    pub fn get(&self, key: &str, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        let e = self.entry(key)?;
        if e.info.shape != shape {
            return Err(Error::ShapeMismatch {
                key: key.to_string(),
                expected: shape.to_vec(),
                found: e.info.shape.clone(),
                source_desc: self.desc.clone(),
            });
        }
        self.materialise(key, e, dtype, device)
    }

    /// Fetches `key` whatever its shape (for tensors whose shape defines the model, such
    /// as position embeddings that may be resampled).
    pub fn get_unchecked(&self, key: &str, dtype: DType, device: &Device) -> Result<Tensor> {
        let e = self.entry(key)?;
        self.materialise(key, e, dtype, device)
    }

    fn entry(&self, key: &str) -> Result<&Entry> {
        self.entries.get(key).ok_or_else(|| Error::Missing {
            key: key.to_string(),
            source_desc: self.desc.clone(),
            hint: self.similar_hint(key),
        })
    }

    fn materialise(&self, key: &str, e: &Entry, dtype: DType, device: &Device) -> Result<Tensor> {
        if let Ok(mut u) = self.used.lock() {
            u.insert(key.to_string());
        }
        crate::convert::to_tensor(key, e, dtype, device)
    }

    /// Keys never fetched so far.
    pub fn unused(&self) -> Vec<String> {
        let used = self.used.lock().map(|u| u.clone()).unwrap_or_default();
        self.entries
            .keys()
            .filter(|k| !used.contains(*k))
            .cloned()
            .collect()
    }

    /// Errors if any key was never fetched (the "unexpected keys" of PyTorch's
    /// `load_state_dict(strict=True)`), apart from those matching a pattern of `allow`:
    /// an exact key, a prefix ending in `.`, or `*suffix`.
    pub fn check_unused(&self, allow: &[&str]) -> Result<()> {
        let keys: Vec<String> = self
            .unused()
            .into_iter()
            .filter(|k| !allow.iter().any(|a| crate::rules::key_matches(a, k)))
            .collect();
        if keys.is_empty() {
            Ok(())
        } else {
            Err(Error::Unexpected {
                keys,
                source_desc: self.desc.clone(),
            })
        }
    }

    /// A view rooted at `prefix` (like `VarBuilder::pp`), producing `dtype` on `device`.
    pub fn view(&self, dtype: DType, device: &Device) -> View<'_> {
        View {
            w: self,
            prefix: String::new(),
            dtype,
            device: device.clone(),
        }
    }

    /// Up to three keys resembling `key`: those ending in the same component, else those
    /// sharing the longest prefix with it; or a sample of the keys present.
    fn similar_hint(&self, key: &str) -> String {
        if self.entries.is_empty() {
            return "; the checkpoint holds no tensors".into();
        }
        let last = key.rsplit('.').next().unwrap_or(key);
        let common = |k: &str| {
            k.bytes()
                .zip(key.bytes())
                .take_while(|(a, b)| a == b)
                .count()
        };
        let mut cands: Vec<&str> = self
            .entries
            .keys()
            .map(String::as_str)
            .filter(|k| k.rsplit('.').next() == Some(last))
            .collect();
        if cands.is_empty() {
            cands = self
                .entries
                .keys()
                .map(String::as_str)
                .filter(|k| common(k) > 0)
                .collect();
        }
        // Longest shared prefix first; ties in key order (the sort is stable).
        cands.sort_by_key(|k| std::cmp::Reverse(common(k)));
        cands.truncate(3);
        if cands.is_empty() {
            let sample: Vec<&str> = self.entries.keys().take(3).map(String::as_str).collect();
            format!("; checkpoint keys look like: {}", sample.join(", "))
        } else {
            format!("; similar keys present: {}", cands.join(", "))
        }
    }
}

/// A prefixed view into [`Weights`]; model code mirrors the checkpoint's key paths with
/// [`View::pp`].
#[derive(Clone)]
pub struct View<'a> {
    w: &'a Weights,
    prefix: String,
    dtype: DType,
    device: Device,
}

impl<'a> View<'a> {
    /// Descends into `name` (`"blocks"`, `"0"`, `"attn"`...).
    pub fn pp(&self, name: impl std::fmt::Display) -> View<'a> {
        View {
            prefix: self.key(&name.to_string()),
            ..self.clone()
        }
    }
    /// The full checkpoint key of `name` under this view.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{}", self.prefix, name)
        }
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// The dtype tensors are produced in.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn weights(&self) -> &'a Weights {
        self.w
    }
    /// Same view, producing tensors of `dtype`.
    pub fn with_dtype(&self, dtype: DType) -> View<'a> {
        View {
            dtype,
            ..self.clone()
        }
    }
    pub fn contains(&self, name: &str) -> bool {
        self.w.contains(&self.key(name))
    }
    /// Shape of `name` in the checkpoint, if present.
    pub fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.w.info(&self.key(name)).map(|i| i.shape.clone())
    }
    /// [`Weights::get`] of `name` under this view.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.w.get(&self.key(name), shape, self.dtype, &self.device)
    }
    /// Like [`View::get`], but `Ok(None)` when `name` is absent.
    pub fn get_opt(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        if self.contains(name) {
            self.get(name, shape).map(Some)
        } else {
            Ok(None)
        }
    }
    /// [`Weights::get_unchecked`] of `name` under this view.
    pub fn get_unchecked(&self, name: &str) -> Result<Tensor> {
        self.w
            .get_unchecked(&self.key(name), self.dtype, &self.device)
    }
}
