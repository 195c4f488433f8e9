//! Errors of model resolution. Every message names the reference, file, directory or URL
//! involved and, where the user can do something about it, what to do.

use std::path::PathBuf;

use crate::model_ref::ACCEPTED_FORMS;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while resolving a model or one of its files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `--model` string is neither a directory path nor a well-formed hub reference.
    #[error("invalid model reference `{input}`: {reason}\naccepted forms:\n{ACCEPTED_FORMS}")]
    InvalidRef { input: String, reason: String },

    /// A file name that cannot be used inside a model repository (absolute, `..`, ...).
    #[error("invalid file name `{name}` for {model}: {reason}")]
    InvalidFileName {
        model: String,
        name: String,
        reason: String,
    },

    /// An environment variable holds a value that cannot be used.
    #[error("environment variable {var}={value:?}: {reason}")]
    InvalidEnv {
        var: &'static str,
        value: String,
        reason: String,
    },

    /// A local model directory that does not exist or is not a directory.
    #[error("model directory {}: {reason}", path.display())]
    LocalDir { path: PathBuf, reason: String },

    /// Offline (`HF_HUB_OFFLINE`) and the cache does not hold what was asked for.
    #[error(
        "{model}: {detail}\nHF_HUB_OFFLINE is set, so nothing is downloaded: run once with network \
         access and without HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE to download it, or set \
         HF_HUB_CACHE to a cache directory that has it"
    )]
    NotCached { model: String, detail: String },

    /// The hub could not be used and the cache does not hold the file either.
    #[error("{online}\nthe file is not in the local cache either: {cache}")]
    Unavailable { online: Box<Error>, cache: String },

    /// [`crate::ModelFiles::require`] on a file the model does not have.
    #[error("{model} has no file `{file}` ({tried})")]
    MissingFile {
        model: String,
        file: String,
        tried: String,
    },

    /// A filesystem operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// HTTP 401/403: the repository is gated or private and the request had no (valid) token.
    #[error(
        "{model}: access denied (HTTP {status}) at {url}: the repository is gated or private. \
         Request access on the model page {page} (logged in to the hub), then set HF_TOKEN to an \
         access token of that account{}",
        if *token_sent { " (a token was sent and refused: check that it has read access to this repository)" } else { "" }
    )]
    Gated {
        model: String,
        url: String,
        page: String,
        status: u16,
        token_sent: bool,
    },

    /// HTTP 404 for the repository itself.
    #[error(
        "{model}: repository not found (or private/gated without a token) at {url}; check the \
         ORG/NAME spelling, or set HF_TOKEN if the repository is private or gated"
    )]
    RepoNotFound { model: String, url: String },

    /// HTTP 404 for a revision (branch, tag or commit) of an existing repository.
    #[error("{model}: revision `{revision}` not found on the hub ({url})")]
    RevisionNotFound {
        model: String,
        revision: String,
        url: String,
    },

    /// The hub could not be reached (DNS, connection refused, timeout, broken transfer).
    #[error("cannot reach {url}: {reason}")]
    Network { url: String, reason: String },

    /// An HTTP status the hub protocol does not explain (5xx, 429, ...).
    #[error("{url}: unexpected HTTP status {status}")]
    Http { url: String, status: u16 },

    /// A response that does not follow the hub protocol (missing headers, short body).
    #[error("{url}: {reason}")]
    BadResponse { url: String, reason: String },

    /// The hub has the file but downloading it failed. Unlike a failure to ask the hub,
    /// this is never treated as "the file is absent".
    #[error(transparent)]
    Download(Box<Error>),
}

impl Error {
    /// Errors after which `huggingface_hub` looks for the file in the cache before giving up:
    /// connection problems, unexpected statuses and 401/403/404 for the repository
    /// (`_get_metadata_or_catch_error` + `_hf_hub_download_to_cache_dir`). A missing revision
    /// or a local filesystem error is final.
    pub(crate) fn allows_cache_fallback(&self) -> bool {
        matches!(
            self,
            Error::Gated { .. }
                | Error::RepoNotFound { .. }
                | Error::Network { .. }
                | Error::Http { .. }
                | Error::BadResponse { .. }
        )
    }

    /// The hub is unreachable: later files of the same model skip the network.
    pub(crate) fn is_network(&self) -> bool {
        matches!(self, Error::Network { .. })
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}
