//! Format detection.

use crate::error::{Error, Result};
use crate::store::Entry;
use std::path::Path;

/// Opens a checkpoint file of any supported format and lists its tensors.
pub(crate) fn open_any(path: &Path) -> Result<Vec<(String, Entry)>> {
    let mut head = [0u8; 16];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        f.read(&mut head).map_err(|source| Error::Io { path: path.to_path_buf(), source })?
    };
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Err(Error::Unsupported {
            path: path.to_path_buf(),
            msg: "PyTorch zip checkpoints are not readable yet".into(),
        });
    }
    if n >= 9 && head[8] == b'{' {
        return crate::safetensors_file::open(path);
    }
    Err(Error::Unsupported {
        path: path.to_path_buf(),
        msg: format!("not a safetensors file or a PyTorch zip checkpoint (first bytes {:02x?})", head),
    })
}
