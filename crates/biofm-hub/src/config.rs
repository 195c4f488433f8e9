//! Hub settings from the environment, resolved exactly as `huggingface_hub` does
//! (`huggingface_hub/constants.py` and `huggingface_hub/utils/_auth.py`, version 2.4.0).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// `huggingface_hub` `_HF_DEFAULT_ENDPOINT`.
const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// `huggingface_hub` `DEFAULT_ETAG_TIMEOUT` / `DEFAULT_DOWNLOAD_TIMEOUT`, in seconds.
const DEFAULT_TIMEOUT_S: u64 = 10;
/// `huggingface_hub` `ENV_VARS_TRUE_VALUES` (compared upper-cased).
const TRUE_VALUES: [&str; 4] = ["1", "ON", "YES", "TRUE"];

/// Where the hub cache lives, which hub to talk to, with which token, and whether to talk
/// to it at all.
///
/// [`HubConfig::from_env`] reads the same environment variables as `huggingface_hub`, with
/// the same precedence (checked against `huggingface_hub` 2.4.0 `constants.py` and
/// `utils/_auth.py`):
///
/// | setting | first set of | default |
/// |---|---|---|
/// | `cache_dir` | `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub` | `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub` |
/// | `endpoint` | `HF_ENDPOINT` (trailing `/` removed) | `https://huggingface.co` |
/// | `token` | `HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN`, the file `HF_TOKEN_PATH` | file `$HF_HOME/token` |
/// | `offline` | `HF_HUB_OFFLINE`, `TRANSFORMERS_OFFLINE` is `1`/`ON`/`YES`/`TRUE` | online |
/// | `etag_timeout` | `HF_HUB_ETAG_TIMEOUT` (seconds; 0 = default) | 10 s |
/// | `download_timeout` | `HF_HUB_DOWNLOAD_TIMEOUT` (seconds; 0 = default) | 10 s |
///
/// Details that match Python: the path variables count when set even to an empty string
/// (`os.getenv(name, default)`), while the token and offline variables fall through when
/// empty (`os.environ.get(a) or os.environ.get(b)`); paths get `~` and `$VAR`/`${VAR}`
/// expanded; tokens are trimmed and have `\r`/`\n` removed, and an empty token counts as
/// none; `HF_HUB_DISABLE_IMPLICIT_TOKEN=1` sends no token. Not supported: the OIDC token
/// exchange (`HF_OIDC_RESOURCE`), Colab secrets, refreshing OAuth tokens from
/// `stored_tokens`, and the staging mode (`HUGGINGFACE_CO_STAGING`).
#[derive(Clone)]
pub struct HubConfig {
    /// The hub cache directory (holds `models--ORG--NAME/`).
    pub cache_dir: PathBuf,
    /// Base URL of the hub, without trailing `/`.
    pub endpoint: String,
    /// Access token sent as `Authorization: Bearer` to the hub (never to other hosts).
    pub token: Option<String>,
    /// Use the cache only, never the network.
    pub offline: bool,
    /// Connect/read timeout of the metadata request (HEAD).
    pub etag_timeout: Duration,
    /// Connect/per-read timeout of downloads (GET).
    pub download_timeout: Duration,
}

impl fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubConfig")
            .field("cache_dir", &self.cache_dir)
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("offline", &self.offline)
            .field("etag_timeout", &self.etag_timeout)
            .field("download_timeout", &self.download_timeout)
            .finish()
    }
}

impl HubConfig {
    /// Online access to `https://huggingface.co` without a token, using `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> HubConfig {
        HubConfig {
            cache_dir: cache_dir.into(),
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            token: None,
            offline: false,
            etag_timeout: Duration::from_secs(DEFAULT_TIMEOUT_S),
            download_timeout: Duration::from_secs(DEFAULT_TIMEOUT_S),
        }
    }

    /// Settings from the process environment (see the table on [`HubConfig`]).
    pub fn from_env() -> Result<HubConfig> {
        HubConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// Settings from `var`, which returns the value of an environment variable or `None`
    /// when it is unset. [`HubConfig::from_env`] is `from_vars(std::env::var)`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<HubConfig> {
        let var = &var;
        let hf_home = match var("HF_HOME") {
            Some(home) => home,
            None => {
                let xdg_cache = var("XDG_CACHE_HOME").unwrap_or_else(|| "~/.cache".to_owned());
                join(&xdg_cache, "huggingface")
            }
        };
        let hf_home = expand(&hf_home, var)?;
        let cache_dir = match var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")) {
            Some(dir) => dir,
            None => join(&hf_home, "hub"),
        };
        let endpoint = var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::InvalidEnv {
                var: "HF_ENDPOINT",
                value: endpoint,
                reason: "expected an http:// or https:// URL".to_owned(),
            });
        }
        let offline = first_non_empty(var, &["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
            .is_some_and(|v| TRUE_VALUES.contains(&v.to_uppercase().as_str()));
        let implicit_token_disabled = var("HF_HUB_DISABLE_IMPLICIT_TOKEN")
            .is_some_and(|v| TRUE_VALUES.contains(&v.to_uppercase().as_str()));
        let token = if implicit_token_disabled {
            None
        } else {
            match first_non_empty(var, &["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"])
                .and_then(|t| clean_token(&t))
            {
                Some(token) => Some(token),
                None => {
                    let path = var("HF_TOKEN_PATH").unwrap_or_else(|| join(&hf_home, "token"));
                    read_token_file(PathBuf::from(expand(&path, var)?))?
                }
            }
        };
        Ok(HubConfig {
            cache_dir: PathBuf::from(expand(&cache_dir, var)?),
            endpoint,
            token,
            offline,
            etag_timeout: timeout(var, "HF_HUB_ETAG_TIMEOUT")?,
            download_timeout: timeout(var, "HF_HUB_DOWNLOAD_TIMEOUT")?,
        })
    }
}

/// `os.environ.get(a) or os.environ.get(b)`: the first variable that is set and non-empty.
fn first_non_empty(var: &impl Fn(&str) -> Option<String>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| var(name).filter(|v| !v.is_empty()))
}

/// `huggingface_hub.utils._auth._clean_token`.
fn clean_token(raw: &str) -> Option<String> {
    let token = raw.replace(['\r', '\n'], "");
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// `_get_token_from_file`: a missing file means no token; an unreadable one is an error.
fn read_token_file(path: PathBuf) -> Result<Option<String>> {
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(clean_token(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read the token file", path)(e)),
    }
}

/// `_as_int(os.environ.get(name)) or DEFAULT`: unset or 0 gives the default.
fn timeout(var: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<Duration> {
    let Some(value) = var(name) else {
        return Ok(Duration::from_secs(DEFAULT_TIMEOUT_S));
    };
    match value.trim().parse::<u64>() {
        Ok(0) => Ok(Duration::from_secs(DEFAULT_TIMEOUT_S)),
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => Err(Error::InvalidEnv {
            var: name,
            value,
            reason: "expected a whole number of seconds".to_owned(),
        }),
    }
}

/// `os.path.join(base, name)` for a single relative `name`.
fn join(base: &str, name: &str) -> String {
    if base.is_empty() || base.ends_with('/') {
        format!("{base}{name}")
    } else {
        format!("{base}/{name}")
    }
}

/// `os.path.expandvars(os.path.expanduser(path))` (POSIX rules): a leading `~` or `~/`
/// becomes `$HOME` (`%USERPROFILE%` when HOME is unset), then `$NAME` and `${NAME}` are
/// replaced by set variables; unset ones are left as written.
fn expand(path: &str, var: &impl Fn(&str) -> Option<String>) -> Result<String> {
    let path = match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            let unset = || Error::InvalidEnv {
                var: "HOME",
                value: String::new(),
                reason: format!("is not set, so `{path}` cannot be expanded; set HF_HUB_CACHE"),
            };
            let home = var("HOME")
                .or_else(|| var("USERPROFILE"))
                .ok_or_else(unset)?;
            format!("{}{rest}", home.trim_end_matches('/'))
        }
        _ => path.to_owned(),
    };
    let mut out = String::with_capacity(path.len());
    let mut rest = path.as_str();
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            },
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        match var(name).filter(|_| !name.is_empty()) {
            Some(value) => out.push_str(&value),
            None => out.push_str(&rest[dollar..dollar + 1 + len]),
        }
        rest = &rest[dollar + 1 + len..];
    }
    out.push_str(rest);
    Ok(out)
}
