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
    #[error("{path}: corrupt or unsupported checkpoint at byte offset {offset}: {msg}")]
    Corrupt { path: PathBuf, offset: u64, msg: String },
    #[error("{path}: unsupported checkpoint format: {msg}")]
    Unsupported { path: PathBuf, msg: String },
    #[error("tensor `{key}` is missing from the checkpoint ({source_desc}){hint}")]
    Missing { key: String, source_desc: String, hint: String },
    #[error("tensor `{key}` has shape {found:?} in the checkpoint but the model expects {expected:?} ({source_desc})")]
    ShapeMismatch { key: String, expected: Vec<usize>, found: Vec<usize>, source_desc: String },
    #[error("the checkpoint ({source_desc}) has {} tensor(s) the model does not use: {}", keys.len(), preview(keys))]
    Unexpected { keys: Vec<String>, source_desc: String },
    #[error("key rule error: {0}")]
    Rule(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

fn preview(keys: &[String]) -> String {
    const MAX: usize = 12;
    let mut s = keys.iter().take(MAX).map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    if keys.len() > MAX {
        s.push_str(&format!(", ... ({} more)", keys.len() - MAX));
    }
    s
}
