//! [`ModelFiles`]: a model's files by relative name, from a local directory or from a hub
//! repository (cache first, downloading into the cache when online).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::cache::{Cached, RepoCache};
use crate::config::HubConfig;
use crate::error::{Error, Result};
use crate::http::{Hub, Remote};
use crate::model_ref::{HubRepo, ModelRef};

/// A model's files, addressed by their name inside the model (`config.json`,
/// `1_Pooling/config.json`, ...).
///
/// For a hub repository this follows `huggingface_hub.hf_hub_download` into its cache:
///
/// * offline ([`HubConfig::offline`]): the revision is resolved through `refs/<revision>`
///   (a 40-hex commit is used as is) when the model is opened, then every file comes from
///   `snapshots/<commit>/`; a `.no_exist/<commit>/<file>` marker means the repository has no
///   such file (`Ok(None)`).
/// * online: a `HEAD` per file not yet cached at the pinned commit tells the commit and
///   blob id; the blob is downloaded once into `blobs/` and linked from `snapshots/`,
///   `refs/<revision>` is updated, and a 404 for the file is recorded in `.no_exist`. The
///   first answer pins the commit, so all files of one `ModelFiles` come from the same
///   snapshot and files already cached there need no request.
/// * if the hub cannot be used (no network, timeout, 5xx, 401/403/404 for the repository),
///   the cached file is used instead, with a note through the log callback
///   ([`ModelFiles::with_log`]); after a network failure the remaining files are taken from
///   the cache without retrying the network.
pub struct ModelFiles {
    source: Source,
    log: Box<dyn Fn(&str) + Send + Sync>,
}

enum Source {
    Local(PathBuf),
    Hub(Box<HubFiles>),
}

struct HubFiles {
    repo: HubRepo,
    cache: RepoCache,
    /// `None` when offline.
    hub: Option<Hub>,
    state: Mutex<HubState>,
}

#[derive(Default, Clone)]
struct HubState {
    /// The commit all files come from, once known.
    commit: Option<String>,
    /// Why the hub was given up on, after a network failure.
    unreachable: Option<String>,
}

/// The outcome of looking for one file.
enum Found {
    File(PathBuf),
    /// The model does not have the file; the text says how that is known.
    Absent(String),
    /// The cache lacks the file and the hub cannot be asked (offline or unreachable):
    /// an optional file is treated as absent, a required one fails with this error.
    Uncached(Error),
}

impl ModelFiles {
    /// Opens a model. A local path must be an existing directory. A hub repository needs no
    /// network here; offline, its revision must already be in the cache (`refs/` or a
    /// commit hash) with a snapshot directory, else the error names the cache directory
    /// searched and how to fill it.
    pub fn open(model: &ModelRef, config: &HubConfig) -> Result<ModelFiles> {
        let source = match model {
            ModelRef::Local(dir) => Source::Local(open_local(dir)?),
            ModelRef::Hub(repo) => Source::Hub(Box::new(HubFiles::open(repo, config)?)),
        };
        Ok(ModelFiles {
            source,
            log: Box::new(|message| eprintln!("note: {message}")),
        })
    }

    /// Replaces where notes go (default: standard error), e.g. "the hub could not be
    /// reached, using the cached copy".
    pub fn with_log(mut self, log: impl Fn(&str) + Send + Sync + 'static) -> ModelFiles {
        self.log = Box::new(log);
        self
    }

    /// The local path of `name`, or `None` if the model does not have that file.
    pub fn get(&self, name: &str) -> Result<Option<PathBuf>> {
        self.get_with_progress(name, &|_, _| {})
    }

    /// [`ModelFiles::get`], reporting download progress as `(bytes so far, total if known)`.
    pub fn get_with_progress(
        &self,
        name: &str,
        progress: &dyn Fn(u64, Option<u64>),
    ) -> Result<Option<PathBuf>> {
        Ok(match self.find(name, progress)? {
            Found::File(path) => Some(path),
            Found::Absent(_) | Found::Uncached(_) => None,
        })
    }

    /// The local path of `name`; if the model does not have it, the error names the file,
    /// the model and what was tried.
    pub fn require(&self, name: &str) -> Result<PathBuf> {
        match self.find(name, &|_, _| {})? {
            Found::File(path) => Ok(path),
            Found::Absent(tried) => Err(Error::MissingFile {
                model: self.describe(),
                file: name.to_owned(),
                tried,
            }),
            Found::Uncached(error) => Err(error),
        }
    }

    /// Where the files come from, for messages: `model directory DIR` or
    /// `hf:ORG/NAME@REV (commit C, hub cache DIR)`.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Local(dir) => format!("model directory {}", dir.display()),
            Source::Hub(hub) => {
                let commit = hub
                    .state()
                    .commit
                    .map(|c| format!("commit {c}, "))
                    .unwrap_or_default();
                format!(
                    "{} ({commit}hub cache {})",
                    hub.repo,
                    hub.cache.cache_dir().display()
                )
            }
        }
    }

    /// The directory holding the files: the local directory, or the hub snapshot
    /// `models--ORG--NAME/snapshots/<commit>` once the commit is known (always offline;
    /// online after the first file). A snapshot only lists the files fetched so far: use
    /// [`ModelFiles::get`] to fetch by name.
    pub fn snapshot_dir(&self) -> Option<PathBuf> {
        match &self.source {
            Source::Local(dir) => Some(dir.clone()),
            Source::Hub(hub) => hub.state().commit.map(|c| hub.cache.snapshot_dir(&c)),
        }
    }

    /// The hub commit the files come from, once known; `None` for a local directory.
    pub fn commit(&self) -> Option<String> {
        match &self.source {
            Source::Local(_) => None,
            Source::Hub(hub) => hub.state().commit,
        }
    }

    fn find(&self, name: &str, progress: &dyn Fn(u64, Option<u64>)) -> Result<Found> {
        check_file_name(name).map_err(|reason| Error::InvalidFileName {
            model: self.describe(),
            name: name.to_owned(),
            reason: reason.to_owned(),
        })?;
        match &self.source {
            Source::Local(dir) => find_local(dir, name),
            Source::Hub(hub) => hub.find(name, progress, &*self.log),
        }
    }
}

fn open_local(dir: &Path) -> Result<PathBuf> {
    let not_dir = |reason: String| Error::LocalDir {
        path: dir.to_path_buf(),
        reason,
    };
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(dir.to_path_buf()),
        Ok(_) => Err(not_dir(
            "is a file, not a directory: pass the directory that holds the model files \
             (config.json, weights, tokenizer)"
                .to_owned(),
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let hint = match dir.to_str().and_then(|s| HubRepo::new(s, None).ok()) {
                Some(repo) => format!("; for the Hugging Face hub repository write {repo}"),
                None => String::new(),
            };
            Err(not_dir(format!("does not exist{hint}")))
        }
        Err(e) => Err(Error::io("read", dir)(e)),
    }
}

fn find_local(dir: &Path, name: &str) -> Result<Found> {
    let path = name
        .split('/')
        .fold(dir.to_path_buf(), |p, segment| p.join(segment));
    match fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(Found::File(path)),
        Ok(_) => Ok(Found::Absent(format!("{} is not a file", path.display()))),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Ok(Found::Absent(format!("looked for {}", path.display())))
        }
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

/// A file name inside a repository: `/`-separated, relative, without `.`/`..` segments
/// (`huggingface_hub` `_validate_relative_filename` rejects `..`, absolute, drive and UNC
/// paths; `\` and `:` are refused too as they cannot be portable file names).
fn check_file_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("is empty")
    } else if name.starts_with('/') {
        Err("is an absolute path; give the name inside the model, e.g. config.json")
    } else if name.contains(['\\', ':', '\0']) {
        Err("contains `\\`, `:` or NUL; use `/` between directories")
    } else if name
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        Err("has an empty, `.` or `..` path segment")
    } else {
        Ok(())
    }
}

impl HubFiles {
    fn open(repo: &HubRepo, config: &HubConfig) -> Result<HubFiles> {
        let cache = RepoCache::new(&config.cache_dir, repo.repo_id());
        let commit = if config.offline {
            let not_cached = |detail: String| Error::NotCached {
                model: repo.to_string(),
                detail,
            };
            let commit = cache.resolve(repo.revision()).map_err(not_cached)?;
            let snapshot = cache.snapshot_dir(&commit);
            if !snapshot.is_dir() {
                return Err(not_cached(format!(
                    "revision `{}` is commit {commit}, but its snapshot {} does not exist",
                    repo.revision(),
                    snapshot.display()
                )));
            }
            Some(commit)
        } else {
            repo.revision_is_commit()
                .then(|| repo.revision().to_owned())
        };
        Ok(HubFiles {
            repo: repo.clone(),
            cache,
            hub: (!config.offline).then(|| Hub::new(config)),
            state: Mutex::new(HubState {
                commit,
                unreachable: None,
            }),
        })
    }

    fn state(&self) -> HubState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update(&self, change: impl FnOnce(&mut HubState)) {
        change(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Pins `commit` unless a commit is pinned already.
    fn pin(&self, commit: &str) {
        self.update(|s| {
            s.commit.get_or_insert_with(|| commit.to_owned());
        });
    }

    fn find(
        &self,
        name: &str,
        progress: &dyn Fn(u64, Option<u64>),
        log: &dyn Fn(&str),
    ) -> Result<Found> {
        let state = self.state();
        let mut missing = None;
        if let Some(commit) = &state.commit {
            match self.cache.lookup(commit, name) {
                Cached::File(path) => return Ok(Found::File(path)),
                Cached::NoExist(marker) => {
                    return Ok(Found::Absent(no_exist_note(commit, &marker)))
                }
                Cached::Missing(what) => missing = Some(what),
                Cached::Broken(what) if self.hub.is_none() => {
                    return Err(Error::NotCached {
                        model: self.repo.to_string(),
                        detail: format!("`{name}` is not usable in the hub cache: {what}"),
                    })
                }
                Cached::Broken(what) => missing = Some(what),
            }
        }
        // Offline, `open` pinned the commit, so the cache has been asked above.
        let Some(hub) = &self.hub else {
            return Ok(Found::Uncached(Error::NotCached {
                model: self.repo.to_string(),
                detail: format!(
                    "`{name}` is not in the hub cache: {}",
                    missing.unwrap_or_default()
                ),
            }));
        };
        let revision = state.commit.as_deref().unwrap_or(self.repo.revision());
        if let Some(reason) = state.unreachable {
            let error = Error::Network {
                url: hub.file_url(self.repo.repo_id(), revision, name),
                reason: format!("not retried after an earlier failure ({reason})"),
            };
            return self.fallback(name, error, log);
        }
        match self.fetch(hub, name, revision, progress, log) {
            Err(e) if e.allows_cache_fallback() => self.fallback(name, e, log),
            result => result,
        }
    }

    /// Asks the hub about `name` at `revision` and brings it into the cache.
    fn fetch(
        &self,
        hub: &Hub,
        name: &str,
        revision: &str,
        progress: &dyn Fn(u64, Option<u64>),
        log: &dyn Fn(&str),
    ) -> Result<Found> {
        let model = self.repo.to_string();
        match hub.metadata(&model, self.repo.repo_id(), revision, name)? {
            Remote::NoFile { commit } => {
                let url = hub.file_url(self.repo.repo_id(), revision, name);
                let Some(commit) = commit else {
                    return Ok(Found::Absent(format!("the hub answered 404 for {url}")));
                };
                self.pin(&commit);
                // As in huggingface_hub, failing to record the 404 does not fail the lookup.
                if let Err(e) = self
                    .cache
                    .mark_no_exist(&commit, name)
                    .and_then(|()| self.cache.write_ref(revision, &commit))
                {
                    log(&format!(
                        "{model}: could not record that `{name}` does not exist: {e}"
                    ));
                }
                Ok(Found::Absent(format!(
                    "the hub answered 404 for {url} (commit {commit})"
                )))
            }
            Remote::File(meta) => {
                self.pin(&meta.commit);
                if let Cached::File(path) = self.cache.lookup(&meta.commit, name) {
                    // Best effort: a read-only cache that has the file is fine.
                    let _ = self.cache.write_ref(revision, &meta.commit);
                    return Ok(Found::File(path));
                }
                self.cache.write_ref(revision, &meta.commit)?;
                let path =
                    self.cache
                        .install(&meta.etag, &meta.commit, name, |out, out_path| {
                            hub.download(&meta.download_url, meta.size, out, out_path, progress)
                                .map(|_| ())
                        })
                        .map_err(|e| Error::Download(Box::new(e)))?;
                Ok(Found::File(path))
            }
        }
    }

    /// The hub failed with `error`: use the cache if it has the answer (with a note),
    /// else report both.
    fn fallback(&self, name: &str, error: Error, log: &dyn Fn(&str)) -> Result<Found> {
        if error.is_network() {
            self.update(|s| {
                s.unreachable.get_or_insert_with(|| error.to_string());
            });
        }
        let unavailable = |cache: String, error: Error| Error::Unavailable {
            online: Box::new(error),
            cache,
        };
        let commit = match self.state().commit {
            Some(commit) => commit,
            None => match self.cache.resolve(self.repo.revision()) {
                Ok(commit) => commit,
                Err(detail) => return Err(unavailable(detail, error)),
            },
        };
        let found = match self.cache.lookup(&commit, name) {
            Cached::File(path) => Found::File(path),
            Cached::NoExist(marker) => Found::Absent(no_exist_note(&commit, &marker)),
            // Whether the hub has the file is unknown: optional probes see it as absent.
            Cached::Missing(what) => return Ok(Found::Uncached(unavailable(what, error))),
            Cached::Broken(what) => return Err(unavailable(what, error)),
        };
        self.pin(&commit);
        log(&format!(
            "{}: {error}\nusing the hub cache instead ({}, commit {commit})",
            self.repo,
            self.cache.root().display()
        ));
        Ok(found)
    }
}

fn no_exist_note(commit: &str, marker: &Path) -> String {
    format!(
        "the hub reported it missing at commit {commit}, recorded in {}",
        marker.display()
    )
}
