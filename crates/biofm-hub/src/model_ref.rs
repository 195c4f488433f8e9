//! The `--model` string: a local directory, `hf:ORG/NAME[@REV]` (or open_clip's
//! `hf-hub:ORG/NAME[@REV]`), or a registry name resolved by a caller-provided hook.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// The forms a model reference may take, shown in parse errors.
pub const ACCEPTED_FORMS: &str =
    "  DIR                     a local directory holding the model files \
(write ./DIR for a directory in the current directory)\n  \
hf:ORG/NAME             a Hugging Face hub repository, branch main\n  \
hf:ORG/NAME@REV         the same at a branch, tag or 40-hex commit hash\n  \
hf-hub:ORG/NAME[@REV]   the same (open_clip / timm spelling)\n  \
NAME                    a model name known to the model registry";

/// Longest namespace or repository name the hub accepts (`huggingface_hub` `REPO_ID_REGEX`).
const MAX_NAME_LEN: usize = 96;

/// The branch a hub reference without `@REV` means (`huggingface_hub` `DEFAULT_REVISION`).
pub(crate) const DEFAULT_REVISION: &str = "main";

/// Where a model's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// A directory on disk holding the model files (`config.json`, weights, ...).
    Local(PathBuf),
    /// A repository on the Hugging Face hub.
    Hub(HubRepo),
}

/// A Hugging Face hub model repository `ORG/NAME` at an optional revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRepo {
    repo_id: String,
    revision: Option<String>,
}

impl ModelRef {
    /// Parses `hf:ORG/NAME[@REV]` / `hf-hub:ORG/NAME[@REV]` into [`ModelRef::Hub`]; anything
    /// else is a local path ([`ModelRef::Local`], checked when the model is opened).
    ///
    /// Repository names follow `huggingface_hub.utils.validate_repo_id` (characters
    /// `[A-Za-z0-9_.-]`, at most 96 per part, no `--` or `..`, no leading/trailing `-`/`.`,
    /// no `.git` suffix); unlike it, the `ORG/` namespace is required.
    pub fn parse(input: &str) -> Result<ModelRef> {
        if input.is_empty() {
            return Err(invalid(input, "empty model reference"));
        }
        match hub_spec(input) {
            Some(spec) => parse_hub(input, spec).map(ModelRef::Hub),
            None => Ok(ModelRef::Local(PathBuf::from(input))),
        }
    }

    /// Like [`ModelRef::parse`], but a bare name (only `[A-Za-z0-9_.-]`, no path separator,
    /// no `hf:` prefix) is first offered to `registry`, which returns the reference it stands
    /// for (`hf:ORG/NAME@REV` or a path) or `None` if it does not know the name. A known name
    /// wins over a same-named directory in the current directory (write `./NAME` for that).
    pub fn parse_with_registry(
        input: &str,
        registry: impl FnOnce(&str) -> Option<String>,
    ) -> Result<ModelRef> {
        if hub_spec(input).is_none() && is_bare_name(input) {
            if let Some(resolved) = registry(input) {
                return ModelRef::parse(&resolved);
            }
        }
        ModelRef::parse(input)
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelRef::Local(path) => write!(f, "{}", path.display()),
            ModelRef::Hub(repo) => repo.fmt(f),
        }
    }
}

impl HubRepo {
    /// A validated hub repository reference; `revision` `None` means branch `main`.
    pub fn new(repo_id: &str, revision: Option<&str>) -> Result<HubRepo> {
        let spec = match revision {
            Some(rev) => format!("{repo_id}@{rev}"),
            None => repo_id.to_owned(),
        };
        parse_hub(&format!("hf:{spec}"), &spec)
    }

    /// `ORG/NAME`.
    pub fn repo_id(&self) -> &str {
        &self.repo_id
    }

    /// The revision asked for: the `@REV` part, or `main`.
    pub fn revision(&self) -> &str {
        self.revision.as_deref().unwrap_or(DEFAULT_REVISION)
    }

    /// Whether the revision is a full commit hash, which never moves
    /// (`huggingface_hub` `REGEX_COMMIT_HASH`: exactly 40 lowercase hex digits).
    pub fn revision_is_commit(&self) -> bool {
        is_commit_hash(self.revision())
    }
}

impl fmt::Display for HubRepo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hf:{}", self.repo_id)?;
        match &self.revision {
            Some(rev) => write!(f, "@{rev}"),
            None => Ok(()),
        }
    }
}

/// `40 lowercase hex digits`, the only form `huggingface_hub` treats as a commit hash.
pub(crate) fn is_commit_hash(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The part after a `hf:` / `hf-hub:` prefix, if the input has one.
fn hub_spec(input: &str) -> Option<&str> {
    input
        .strip_prefix("hf:")
        .or_else(|| input.strip_prefix("hf-hub:"))
}

fn is_bare_name(input: &str) -> bool {
    !input.is_empty()
        && input != "."
        && input != ".."
        && input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn invalid(input: &str, reason: impl Into<String>) -> Error {
    Error::InvalidRef {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

fn parse_hub(input: &str, spec: &str) -> Result<HubRepo> {
    if spec.starts_with("//") {
        return Err(invalid(input, "write hf:ORG/NAME, without `//`"));
    }
    let (repo_id, revision) = match spec.split_once('@') {
        Some((repo_id, rev)) => (repo_id, Some(rev)),
        None => (spec, None),
    };
    let Some((org, name)) = repo_id.split_once('/') else {
        return Err(invalid(
            input,
            format!("expected ORG/NAME, got `{repo_id}`"),
        ));
    };
    for (what, part) in [("organisation", org), ("repository name", name)] {
        check_name_part(part)
            .map_err(|reason| invalid(input, format!("{what} `{part}` {reason}")))?;
    }
    if name.ends_with(".git") {
        return Err(invalid(
            input,
            format!("repository name `{name}` cannot end in `.git`"),
        ));
    }
    if let Some(rev) = revision {
        check_revision(rev)
            .map_err(|reason| invalid(input, format!("revision `{rev}` {reason}")))?;
    }
    Ok(HubRepo {
        repo_id: repo_id.to_owned(),
        revision: revision.map(str::to_owned),
    })
}

/// One part of `ORG/NAME`, with `huggingface_hub.utils.validate_repo_id`'s rules.
fn check_name_part(part: &str) -> Result<(), &'static str> {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = part.as_bytes();
    match (bytes.first(), bytes.last()) {
        (None, _) | (_, None) => Err("is empty"),
        _ if part.contains('/') => Err("contains `/` (expected exactly ORG/NAME)"),
        _ if bytes.len() > MAX_NAME_LEN => Err("is longer than 96 characters"),
        _ if !bytes.iter().all(|&b| is_word(b) || b == b'-' || b == b'.') => {
            Err("may only contain letters, digits, `-`, `_` and `.`")
        }
        (Some(&first), Some(&last)) if !is_word(first) || !is_word(last) => {
            Err("cannot start or end with `-` or `.`")
        }
        _ if part.contains("--") || part.contains("..") => Err("cannot contain `--` or `..`"),
        _ => Ok(()),
    }
}

/// A branch, tag or commit: it becomes a path under `refs/`, so it must not escape it.
fn check_revision(rev: &str) -> Result<(), &'static str> {
    if rev.is_empty() {
        return Err("is empty");
    }
    if rev
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "\\:?*[~^".contains(c))
    {
        return Err("contains a character not allowed in git branch or tag names");
    }
    if rev
        .split('/')
        .any(|seg| seg.is_empty() || seg.starts_with('.'))
    {
        return Err("has an empty path segment or one starting with `.`");
    }
    Ok(())
}
