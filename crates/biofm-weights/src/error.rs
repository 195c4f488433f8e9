use candle_core::DType;
use std::path::PathBuf;

/// Errors from opening checkpoints and fetching tensors. Messages name the file, the
/// key and the shapes involved so a user can tell what is wrong without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A damaged file: truncated, inconsistent records, tensors outside their storage.
    /// `offset` is a byte offset in the file; messages about a pickle also give the
    /// offset inside it.
    #[error("{path}: corrupt or unsupported checkpoint at byte offset {offset}: {msg}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        msg: String,
    },
    /// A well-formed file biofm does not read (unknown format, TorchScript, a pickled
    /// module, compressed storages, unreadable dtypes); the message says how to convert it.
    #[error("{path}: unsupported checkpoint format: {msg}")]
    Unsupported { path: PathBuf, msg: String },
    #[error("tensor `{key}` is missing from the checkpoint ({source_desc}){hint}")]
    Missing {
        key: String,
        source_desc: String,
        hint: String,
    },
    #[error("tensor `{key}` has shape {found:?} in the checkpoint but the model expects {expected:?} ({source_desc})")]
    ShapeMismatch {
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
        source_desc: String,
    },
    #[error("the checkpoint ({source_desc}) has {} tensor(s) the model does not use: {}", keys.len(), preview(keys))]
    Unexpected {
        keys: Vec<String>,
        source_desc: String,
    },
    /// The same key in two files of [`Weights::open_many`](crate::Weights::open_many).
    #[error("tensor `{key}` appears in both {} and {}", first.display(), second.display())]
    Duplicate {
        key: String,
        first: PathBuf,
        second: PathBuf,
    },
    /// Memory for a materialised tensor could not be reserved.
    #[error("tensor `{key}` of shape {shape:?} does not fit in memory as {dtype:?}")]
    Alloc {
        key: String,
        shape: Vec<usize>,
        dtype: DType,
    },
    #[error("key rule error: {0}")]
    Rule(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

fn preview(keys: &[String]) -> String {
    const MAX: usize = 12;
    let mut s = keys
        .iter()
        .take(MAX)
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > MAX {
        s.push_str(&format!(", ... ({} more)", keys.len() - MAX));
    }
    s
}
