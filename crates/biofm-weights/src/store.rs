use crate::error::{Error, Result};
use crate::rules::KeyRules;
use candle_core::{DType, Device, Tensor};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Element type as stored in the checkpoint.
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
    U8,
    Bool,
}

impl StoredDType {
    pub fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }
}

/// Shape and dtype of one stored tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub shape: Vec<usize>,
    pub dtype: StoredDType,
}

/// Bytes backing one or more tensors: a memory-mapped file or an owned buffer.
pub(crate) enum Blob {
    Mmap(memmap2::Mmap),
    #[allow(dead_code)]
    Owned(Vec<u8>),
}

impl Blob {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Blob::Mmap(m) => m,
            Blob::Owned(v) => v,
        }
    }
}

/// Where a tensor's elements live: `shape`/`strides` in elements, starting at
/// `byte_offset` in `blob`, little-endian.
pub(crate) struct Entry {
    pub info: TensorInfo,
    pub blob: Arc<Blob>,
    pub byte_offset: usize,
    /// Element strides; `None` means row-major contiguous.
    pub strides: Option<Vec<usize>>,
    pub file: Arc<PathBuf>,
}

/// A checkpoint: every tensor of one or more files, by key.
pub struct Weights {
    entries: BTreeMap<String, Entry>,
    used: Mutex<BTreeSet<String>>,
    desc: String,
}

impl Weights {
    pub(crate) fn from_entries(entries: BTreeMap<String, Entry>, desc: String) -> Self {
        Self { entries, used: Mutex::new(BTreeSet::new()), desc }
    }

    /// Opens one checkpoint file; the format is detected from its first bytes.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_many(&[path.as_ref()])
    }

    /// Opens several files (e.g. sharded safetensors) as one set of weights. A key present
    /// in two files is an error.
    pub fn open_many<P: AsRef<Path>>(paths: &[P]) -> Result<Self> {
        let mut entries = BTreeMap::new();
        let mut names = Vec::new();
        for p in paths {
            let p = p.as_ref();
            names.push(p.display().to_string());
            for (k, e) in crate::open::open_any(p)? {
                if entries.contains_key(&k) {
                    return Err(Error::Corrupt {
                        path: p.to_path_buf(),
                        offset: 0,
                        msg: format!("tensor `{k}` also appears in an earlier file"),
                    });
                }
                entries.insert(k, e);
            }
        }
        Ok(Self::from_entries(entries, names.join(", ")))
    }

    /// Human-readable description of where these weights came from (file names).
    pub fn source(&self) -> &str {
        &self.desc
    }

    /// Applies key rules; two keys mapping to the same name is an error.
    pub fn apply_rules(&mut self, rules: &KeyRules) -> Result<()> {
        let old = std::mem::take(&mut self.entries);
        for (k, e) in old {
            if let Some(nk) = rules.map_key(&k) {
                if self.entries.contains_key(&nk) {
                    return Err(Error::Rule(format!("keys collide after remapping: `{k}` -> `{nk}`")));
                }
                self.entries.insert(nk, e);
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(|s| s.as_str())
    }
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }
    pub fn info(&self, key: &str) -> Option<&TensorInfo> {
        self.entries.get(key).map(|e| &e.info)
    }

    /// Fetches `key` as a tensor of `dtype` on `device`, checking it has `shape`.
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
        self.entries.keys().filter(|k| !used.contains(*k)).cloned().collect()
    }

    /// Errors if any key was never fetched, apart from those matching `allow` (exact keys,
    /// or prefixes ending in `.`, or `*suffix`).
    pub fn check_unused(&self, allow: &[&str]) -> Result<()> {
        let keys: Vec<String> = self
            .unused()
            .into_iter()
            .filter(|k| {
                !allow.iter().any(|a| {
                    if let Some(suffix) = a.strip_prefix('*') {
                        k.ends_with(suffix)
                    } else if a.ends_with('.') {
                        k.starts_with(a)
                    } else {
                        k == a
                    }
                })
            })
            .collect();
        if keys.is_empty() {
            Ok(())
        } else {
            Err(Error::Unexpected { keys, source_desc: self.desc.clone() })
        }
    }

    /// A view rooted at `prefix` (like `VarBuilder::pp`), producing `dtype` on `device`.
    pub fn view(&self, dtype: DType, device: &Device) -> View<'_> {
        View { w: self, prefix: String::new(), dtype, device: device.clone() }
    }

    fn similar_hint(&self, key: &str) -> String {
        // Suggest keys that share the last component, or the longest shared prefix.
        let last = key.rsplit('.').next().unwrap_or(key);
        let parent = key.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
        let mut cands: Vec<&str> = self
            .entries
            .keys()
            .filter(|k| k.ends_with(last) && (parent.is_empty() || k.contains(parent.rsplit('.').next().unwrap_or(""))))
            .map(|s| s.as_str())
            .take(3)
            .collect();
        if cands.is_empty() {
            cands = self.entries.keys().filter(|k| k.ends_with(&format!(".{last}"))).map(|s| s.as_str()).take(3).collect();
        }
        if cands.is_empty() {
            if self.entries.is_empty() {
                return "; the checkpoint holds no tensors".into();
            }
            let sample: Vec<&str> = self.entries.keys().take(3).map(|s| s.as_str()).collect();
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
        let prefix = if self.prefix.is_empty() { name.to_string() } else { format!("{}.{}", self.prefix, name) };
        View { w: self.w, prefix, dtype: self.dtype, device: self.device.clone() }
    }
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
        View { dtype, ..self.clone() }
    }
    pub fn contains(&self, name: &str) -> bool {
        self.w.contains(&self.key(name))
    }
    /// Shape of `name` in the checkpoint, if present.
    pub fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.w.info(&self.key(name)).map(|i| i.shape.clone())
    }
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.w.get(&self.key(name), shape, self.dtype, &self.device)
    }
    pub fn get_opt(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        if self.contains(name) {
            self.get(name, shape).map(Some)
        } else {
            Ok(None)
        }
    }
    pub fn get_unchecked(&self, name: &str) -> Result<Tensor> {
        self.w.get_unchecked(&self.key(name), self.dtype, &self.device)
    }
}
