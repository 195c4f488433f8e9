//! One repository's folder in the Hugging Face hub cache, laid out as `huggingface_hub`
//! 2.4.0 lays it out (`file_download.py`: `repo_folder_name`, `_hf_hub_download_to_cache_dir`,
//! `_get_pointer_path`, `_create_symlink`, `_cache_commit_hash_for_specific_revision`,
//! `try_to_load_from_cache`, `_get_metadata_or_catch_error` for `.no_exist`).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model_ref::is_commit_hash;

/// Start of a `CACHEDIR.TAG` file (Cache Directory Tagging Specification), which
/// `huggingface_hub` also writes so that backup tools skip the cache.
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag: the Hugging Face hub cache.\n\
# For information about cache directory tags, see https://bford.info/cachedir/\n";

/// What the cache knows about one file at one commit.
pub(crate) enum Cached {
    /// The file, as its path under `snapshots/<commit>/`.
    File(PathBuf),
    /// A `.no_exist/<commit>/<file>` marker: the repository does not have the file.
    NoExist(PathBuf),
    /// Not in the cache; the text says what was looked for.
    Missing(String),
    /// In the cache but unusable (a broken link, a directory); the text says what.
    Broken(String),
}

/// `<cache>/models--{org}--{name}` and its lock folder `<cache>/.locks/models--{org}--{name}`.
pub(crate) struct RepoCache {
    cache_dir: PathBuf,
    folder: String,
}

impl RepoCache {
    /// `repo_folder_name`: `models--` + the repo id with `/` replaced by `--`.
    pub(crate) fn new(cache_dir: &Path, repo_id: &str) -> RepoCache {
        RepoCache {
            cache_dir: cache_dir.to_path_buf(),
            folder: format!("models--{}", repo_id.replace('/', "--")),
        }
    }

    pub(crate) fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    pub(crate) fn root(&self) -> PathBuf {
        self.cache_dir.join(&self.folder)
    }

    pub(crate) fn snapshot_dir(&self, commit: &str) -> PathBuf {
        self.root().join("snapshots").join(commit)
    }

    fn pointer(&self, commit: &str, file: &str) -> PathBuf {
        join_segments(self.snapshot_dir(commit), file)
    }

    fn no_exist(&self, commit: &str, file: &str) -> PathBuf {
        join_segments(self.root().join(".no_exist").join(commit), file)
    }

    fn ref_path(&self, revision: &str) -> PathBuf {
        join_segments(self.root().join("refs"), revision)
    }

    /// The commit a revision stands for in the cache: a commit hash is itself, a branch or
    /// tag is the content of `refs/<revision>`. `Err` says what is missing.
    pub(crate) fn resolve(&self, revision: &str) -> Result<String, String> {
        let root = self.root();
        if !root.is_dir() {
            return Err(format!(
                "not in the hub cache: {} does not exist (cache directory {})",
                root.display(),
                self.cache_dir.display()
            ));
        }
        if is_commit_hash(revision) {
            return Ok(revision.to_owned());
        }
        let ref_path = self.ref_path(revision);
        let commit = fs::read_to_string(&ref_path).map_err(|e| {
            format!(
                "revision `{revision}` is not in the hub cache: cannot read {}: {e}",
                ref_path.display()
            )
        })?;
        let commit = commit.trim();
        if !is_safe_component(commit) {
            return Err(format!(
                "{} does not hold a commit hash: {commit:?}",
                ref_path.display()
            ));
        }
        Ok(commit.to_owned())
    }

    /// `try_to_load_from_cache` at a known commit: a `.no_exist` marker first, then the
    /// snapshot entry (which must lead to a file; a dangling link is reported).
    pub(crate) fn lookup(&self, commit: &str, file: &str) -> Cached {
        let marker = self.no_exist(commit, file);
        if marker.is_file() {
            return Cached::NoExist(marker);
        }
        let pointer = self.pointer(commit, file);
        match fs::metadata(&pointer) {
            Ok(meta) if meta.is_file() => Cached::File(pointer),
            Ok(_) => Cached::Broken(format!("{} is not a file", pointer.display())),
            Err(_) if pointer.symlink_metadata().is_ok() => Cached::Broken(format!(
                "{} is a broken link (its blob is gone); delete it to download the file again",
                pointer.display()
            )),
            Err(_) if !self.snapshot_dir(commit).is_dir() => Cached::Missing(format!(
                "snapshot {} does not exist",
                self.snapshot_dir(commit).display()
            )),
            Err(_) => Cached::Missing(format!("{} does not exist", pointer.display())),
        }
    }

    /// `_cache_commit_hash_for_specific_revision`: record `refs/<revision>` = `commit` unless
    /// the revision is the commit itself or the ref already says so.
    pub(crate) fn write_ref(&self, revision: &str, commit: &str) -> Result<()> {
        let path = self.ref_path(revision);
        if revision == commit || fs::read_to_string(&path).is_ok_and(|c| c == commit) {
            return Ok(());
        }
        write_atomic(&path, commit.as_bytes())
    }

    /// Records that the repository has no `file` at `commit` (an empty marker file).
    pub(crate) fn mark_no_exist(&self, commit: &str, file: &str) -> Result<()> {
        let path = self.no_exist(commit, file);
        if path.is_file() {
            return Ok(());
        }
        write_atomic(&path, b"")
    }

    /// Puts a file into the cache: under the per-blob lock `.locks/<folder>/<etag>.lock`
    /// (the lock `huggingface_hub` takes, so Python and us never download the same blob at
    /// once), `fill(file, its path)` writes `blobs/<etag>` unless it is already there (through a temporary
    /// file renamed into place), then `snapshots/<commit>/<file>` is made a relative symlink
    /// to it. Returns the snapshot path.
    pub(crate) fn install(
        &self,
        etag: &str,
        commit: &str,
        file: &str,
        fill: impl FnOnce(&mut File, &Path) -> Result<()>,
    ) -> Result<PathBuf> {
        let blobs = self.root().join("blobs");
        let blob = blobs.join(etag);
        let pointer = self.pointer(commit, file);
        let lock_path = self
            .cache_dir
            .join(".locks")
            .join(&self.folder)
            .join(format!("{etag}.lock"));
        for dir in [Some(blobs.as_path()), pointer.parent(), lock_path.parent()]
            .into_iter()
            .flatten()
        {
            fs::create_dir_all(dir).map_err(Error::io("create the cache directory", dir))?;
        }
        // Best effort, as in huggingface_hub: the tag only helps backup tools.
        let tag = self.cache_dir.join("CACHEDIR.TAG");
        if !tag.exists() {
            let _ = write_atomic(&tag, CACHEDIR_TAG.as_bytes());
        }

        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(Error::io("open the lock file", &lock_path))?;
        lock.lock().map_err(Error::io("lock", &lock_path))?;

        if !blob.is_file() {
            let mut tmp = temp_builder(&format!("{etag}."), ".incomplete")
                .tempfile_in(&blobs)
                .map_err(Error::io("create a temporary file in", &blobs))?;
            let path = tmp.path().to_path_buf();
            fill(tmp.as_file_mut(), &path)?;
            tmp.as_file()
                .sync_all()
                .map_err(Error::io("write", &path))?;
            tmp.persist(&blob)
                .map_err(|e| Error::io("move the download to", &blob)(e.error))?;
        }
        if !pointer.is_file() {
            link_to_blob(&blob, &pointer, etag, file)?;
        }
        Ok(pointer)
    }
}

/// A commit hash or ETag from the server is used as a file name: it must be one plain path
/// component.
pub(crate) fn is_safe_component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', ':', '\0'])
}

/// `dir` joined with a `/`-separated relative name.
fn join_segments(dir: PathBuf, name: &str) -> PathBuf {
    name.split('/')
        .fold(dir, |path, segment| path.join(segment))
}

/// Temporary files with the permissions of a normally created file (0o666 minus umask on
/// Unix; tempfile's default 0o600 would hide blobs from other users of a shared cache).
fn temp_builder<'a>(prefix: &'a str, suffix: &'a str) -> tempfile::Builder<'a, 'a> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix).suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    builder
}

/// Writes `bytes` to `path` through a temporary file in the same directory, renamed into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(Error::io("create the cache directory", dir))?;
    let mut tmp = temp_builder(".", ".tmp")
        .tempfile_in(dir)
        .map_err(Error::io("create a temporary file in", dir))?;
    tmp.write_all(bytes)
        .map_err(Error::io("write", tmp.path().to_path_buf()))?;
    tmp.persist(path)
        .map_err(|e| Error::io("write", path)(e.error))?;
    Ok(())
}

/// Makes `pointer` (`snapshots/<commit>/<file>`) lead to `blob`: a relative symlink
/// `../../blobs/<etag>` (one more `../` per subdirectory of `file`), created under a
/// temporary name and renamed into place. Where symlinks are unavailable the blob is
/// copied, as `huggingface_hub` does on Windows without developer mode.
fn link_to_blob(blob: &Path, pointer: &Path, etag: &str, file: &str) -> Result<()> {
    let dir = pointer.parent().unwrap_or(Path::new("."));
    let target = format!("{}blobs/{etag}", "../".repeat(file.split('/').count() + 1));
    let tmp = temp_builder(".", ".tmp")
        .make_in(dir, |at| make_link(&target, blob, at))
        .map_err(Error::io("create a snapshot entry in", dir))?;
    tmp.persist(pointer)
        .map_err(|e| Error::io("create the snapshot entry", pointer)(e.error))?;
    Ok(())
}

#[cfg(unix)]
fn make_link(target: &str, _blob: &Path, at: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}

#[cfg(not(unix))]
fn make_link(_target: &str, blob: &Path, at: &Path) -> std::io::Result<()> {
    fs::copy(blob, at).map(|_| ())
}
