//! Write-then-rename output files.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file written under a temporary name next to its destination and renamed over it
/// by [`AtomicFile::commit`]. Dropped without commit, the temporary file is removed.
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file in `dest`'s directory. Fails early, with the path in
    /// the message, when the directory is missing or not writable.
    pub fn create(dest: &Path) -> Result<Self> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if dest.is_dir() {
            bail!("output path {} is a directory; give a file name", dest.display());
        }
        if !dir.is_dir() {
            bail!("cannot write {}: directory {} does not exist", dest.display(), dir.display());
        }
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(&dir)
            .with_context(|| format!("cannot write {}: directory {} is not writable", dest.display(), dir.display()))?;
        Ok(Self { tmp, dest: dest.to_path_buf() })
    }

    /// Checks that `dest` could be written, without leaving anything behind.
    pub fn check_writable(dest: &Path) -> Result<()> {
        Self::create(dest).map(drop)
    }

    pub fn writer(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    /// Flushes to disk and renames over the destination.
    pub fn commit(mut self) -> Result<()> {
        self.tmp.as_file_mut().flush()?;
        self.tmp.as_file().sync_all().with_context(|| format!("cannot write {}", self.dest.display()))?;
        let dest = self.dest.clone();
        self.tmp.persist(&dest).with_context(|| format!("cannot move the finished output to {}", dest.display()))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tmp.as_file_mut().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.as_file_mut().flush()
    }
}
