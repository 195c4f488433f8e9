//! Format detection: every checkpoint is memory-mapped once and dispatched on its first
//! bytes, whatever its file extension (some `.pt` files hold safetensors, some `.bin`
//! files hold legacy pickles).

use crate::error::{Error, Result};
use crate::store::{Blob, Entry};
use std::path::Path;
use std::sync::Arc;

/// The tensors of one file, and the wrapper key path their state dict sat under.
pub(crate) struct FileTensors {
    pub entries: Vec<(String, Entry)>,
    pub wrapper: Option<String>,
}

/// Opens a checkpoint file of any supported format and lists its tensors.
pub(crate) fn open_any(path: &Path) -> Result<FileTensors> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    // SAFETY: the file is opened read-only; like every mmap-based loader we assume it is
    // not truncated by another process while mapped.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    let blob = Arc::new(Blob::Mmap(mmap));
    let head = blob.bytes();
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return crate::torch_file::open_zip(path, blob);
    }
    // Pickle PROTO opcode: the legacy torch.save format starts with a pickled magic number.
    if head.first() == Some(&0x80) {
        return crate::torch_file::open_legacy(path, blob);
    }
    if head.get(257..262) == Some(b"ustar".as_slice()) {
        return Err(Error::Unsupported {
            path: path.to_path_buf(),
            msg: "a tar archive: the tar-based torch.save format of PyTorch < 0.4 is not supported; convert it \
                  in Python with `torch.save(torch.load(f), f2)`"
                .into(),
        });
    }
    if head.get(8) == Some(&b'{') {
        return Ok(FileTensors {
            entries: crate::safetensors_file::open(path, blob)?,
            wrapper: None,
        });
    }
    Err(Error::Unsupported {
        path: path.to_path_buf(),
        msg: format!(
            "not a safetensors file or a torch.save checkpoint (zip or legacy pickle); first bytes {:02x?}",
            &head[..head.len().min(16)]
        ),
    })
}
