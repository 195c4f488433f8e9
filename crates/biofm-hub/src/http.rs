//! The hub's file protocol, as `huggingface_hub` 2.4.0 speaks it (`hf_hub_url`,
//! `get_hf_file_metadata`, `_httpx2_follow_hub_redirects_with_backoff`, `hf_raise_for_status`,
//! `http_get`): `HEAD {endpoint}/{repo}/resolve/{revision}/{file}` gives the commit
//! (`X-Repo-Commit`), the blob id (`X-Linked-Etag`, else `ETag`) and size (`X-Linked-Size`,
//! else `Content-Length`); large files answer with a redirect to a CDN, which is downloaded
//! without the token.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use ureq::http::{Response, Uri};
use ureq::{Agent, Body};

use crate::cache::is_safe_component;
use crate::config::HubConfig;
use crate::error::{Error, Result};

/// Redirects followed before giving up (`huggingface_hub` `_MAX_REDIRECTS` is also 10).
const MAX_REDIRECTS: usize = 10;
/// Hosts that get the token besides the configured endpoint (`huggingface_hub` `_HUB_ORIGINS`).
const HUB_ORIGINS: [&str; 3] = [
    "https://huggingface.co",
    "https://hf.co",
    "https://hub-ci.huggingface.co",
];
const CHUNK: usize = 1 << 20;

/// What the hub says about one file.
pub(crate) enum Remote {
    /// The file exists: where to download it and how the cache names it.
    File(FileMeta),
    /// The repository exists but has no such file at that revision (404 `EntryNotFound`);
    /// the commit, when the hub names it, is where `.no_exist` records it.
    NoFile { commit: Option<String> },
}

pub(crate) struct FileMeta {
    pub commit: String,
    pub etag: String,
    pub size: Option<u64>,
    pub download_url: String,
}

/// A client for one hub endpoint.
pub(crate) struct Hub {
    client: Agent,
    endpoint: String,
    token: Option<String>,
    hub_origins: Vec<Origin>,
    etag_timeout: Duration,
    download_timeout: Duration,
}

#[derive(Clone, Copy)]
enum Method {
    Head,
    Get,
}

type Origin = (String, String, u16);

impl Hub {
    pub(crate) fn new(config: &HubConfig) -> Hub {
        let client: Agent = Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(concat!("biofm-hub/", env!("CARGO_PKG_VERSION")))
            .accept_encoding("identity")
            .build()
            .into();
        let hub_origins = std::iter::once(config.endpoint.as_str())
            .chain(HUB_ORIGINS)
            .filter_map(origin)
            .collect();
        Hub {
            client,
            endpoint: config.endpoint.clone(),
            token: config.token.clone(),
            hub_origins,
            etag_timeout: config.etag_timeout,
            download_timeout: config.download_timeout,
        }
    }

    /// `hf_hub_url`: the revision is percent-encoded entirely, the file name keeping `/`.
    pub(crate) fn file_url(&self, repo_id: &str, revision: &str, file: &str) -> String {
        format!(
            "{}/{repo_id}/resolve/{}/{}",
            self.endpoint,
            quote(revision, false),
            quote(file, true)
        )
    }

    /// The repository's web page, where gated models are requested.
    pub(crate) fn model_page(&self, repo_id: &str) -> String {
        format!("{}/{repo_id}", self.endpoint)
    }

    /// `HEAD` on the file's resolve URL; `model` and `repo_id` are for messages.
    pub(crate) fn metadata(
        &self,
        model: &str,
        repo_id: &str,
        revision: &str,
        file: &str,
    ) -> Result<Remote> {
        let url = self.file_url(repo_id, revision, file);
        let (final_url, response, redirect_target) = self.send(Method::Head, &url, false)?;
        let status = response.status().as_u16();
        if !(response.status().is_success() || redirect_target.is_some()) {
            let error_code = header(&response, "x-error-code");
            let commit = header(&response, "x-repo-commit").filter(|c| is_safe_component(c));
            // The hub tags a missing file with `X-Error-Code: EntryNotFound` and the commit;
            // without a code, a commit still shows that the repository exists.
            let entry_missing = match error_code.as_deref() {
                Some("EntryNotFound") => true,
                None => commit.is_some(),
                Some(_) => false,
            };
            if status == 404 && entry_missing {
                return Ok(Remote::NoFile { commit });
            }
            let model = model.to_owned();
            return match (status, error_code.as_deref()) {
                (404, Some("RevisionNotFound")) => Err(Error::RevisionNotFound {
                    model,
                    revision: revision.to_owned(),
                    url,
                }),
                (401 | 403, _) | (_, Some("GatedRepo")) => Err(Error::Gated {
                    model,
                    url,
                    page: self.model_page(repo_id),
                    status,
                    token_sent: self.token.is_some(),
                }),
                (404, _) => Err(Error::RepoNotFound { model, url }),
                _ => Err(Error::Http {
                    url: final_url,
                    status,
                }),
            };
        }
        let bad = |reason: &str| Error::BadResponse {
            url: final_url.clone(),
            reason: format!("{reason}; is HF_ENDPOINT a Hugging Face hub (or a mirror of it)?"),
        };
        let commit =
            header(&response, "x-repo-commit").ok_or_else(|| bad("no X-Repo-Commit header"))?;
        let etag = header(&response, "x-linked-etag")
            .or_else(|| header(&response, "etag"))
            .map(|etag| normalize_etag(&etag))
            .ok_or_else(|| bad("no ETag header"))?;
        if !is_safe_component(&commit) || !is_safe_component(&etag) {
            return Err(bad(&format!(
                "unusable X-Repo-Commit {commit:?} or ETag {etag:?}"
            )));
        }
        let size = header(&response, "x-linked-size")
            .or_else(|| {
                redirect_target
                    .is_none()
                    .then(|| header(&response, "content-length"))
                    .flatten()
            })
            .and_then(|s| s.trim().parse().ok());
        Ok(Remote::File(FileMeta {
            commit,
            etag,
            size,
            download_url: redirect_target.unwrap_or(final_url),
        }))
    }

    /// `GET url` into `out` (at `out_path`), following redirects (the token only goes to hub
    /// hosts). Calls `progress(bytes so far, total)` and checks the length against
    /// `expected` when known.
    pub(crate) fn download(
        &self,
        url: &str,
        expected: Option<u64>,
        out: &mut impl Write,
        out_path: &Path,
        progress: &dyn Fn(u64, Option<u64>),
    ) -> Result<u64> {
        let (final_url, response, _) = self.send(Method::Get, url, true)?;
        if !response.status().is_success() {
            return Err(Error::Http {
                url: final_url,
                status: response.status().as_u16(),
            });
        }
        let total = expected
            .or_else(|| header(&response, "content-length").and_then(|s| s.trim().parse().ok()));
        let mut reader = response.into_body().into_reader();
        let mut buf = vec![0u8; CHUNK];
        let mut done = 0u64;
        progress(done, total);
        loop {
            let n = reader.read(&mut buf).map_err(|e| Error::Network {
                url: final_url.clone(),
                reason: format!("download interrupted after {done} bytes: {e}"),
            })?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])
                .map_err(Error::io("write", out_path))?;
            done += n as u64;
            progress(done, total);
        }
        match expected {
            Some(size) if size != done => Err(Error::BadResponse {
                url: final_url,
                reason: format!("download ended after {done} of {size} bytes"),
            }),
            _ => Ok(done),
        }
    }

    fn is_hub(&self, url: &str) -> bool {
        origin(url).is_some_and(|o| self.hub_origins.contains(&o))
    }

    /// Sends `method` to `url`, following redirects between hub hosts. A redirect to another
    /// host is followed (without token) when `leave_hub`, else its response is returned
    /// together with the absolute target. Returns the URL that answered.
    fn send(
        &self,
        method: Method,
        url: &str,
        leave_hub: bool,
    ) -> Result<(String, Response<Body>, Option<String>)> {
        let mut url = url.to_owned();
        for _ in 0..MAX_REDIRECTS {
            let response = self.call(method, &url)?;
            let location =
                header(&response, "location").filter(|_| response.status().is_redirection());
            let Some(location) = location else {
                return Ok((url, response, None));
            };
            let target = join_url(&url, &location);
            if !leave_hub && !self.is_hub(&target) {
                return Ok((url, response, Some(target)));
            }
            url = target;
        }
        Err(Error::Network {
            url,
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    fn call(&self, method: Method, url: &str) -> Result<Response<Body>> {
        let (request, timeout) = match method {
            Method::Head => (self.client.head(url), self.etag_timeout),
            Method::Get => (self.client.get(url), self.download_timeout),
        };
        let request = match &self.token {
            Some(token) if self.is_hub(url) => {
                request.header("Authorization", format!("Bearer {token}"))
            }
            _ => request,
        };
        request
            .config()
            .timeout_resolve(Some(timeout))
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .build()
            .call()
            .map_err(|e| Error::Network {
                url: url.to_owned(),
                reason: e.to_string(),
            })
    }
}

fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)?
        .to_str()
        .ok()
        .map(str::to_owned)
}

/// `_normalize_etag`: drop a weak-validator `W/` prefix and the quotes.
fn normalize_etag(etag: &str) -> String {
    let etag = etag.trim();
    etag.strip_prefix("W/")
        .unwrap_or(etag)
        .trim_matches('"')
        .to_owned()
}

/// `urllib.parse.quote`: percent-encode all but ASCII letters, digits and `_.-~`
/// (and `/` when `keep_slash`).
fn quote(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// (scheme, host, port) with the scheme's default port, lower-cased (`_url_origin`).
fn origin(url: &str) -> Option<Origin> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let port = uri.port_u16().or(match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some((scheme, uri.host()?.to_ascii_lowercase(), port))
}

/// Resolves a `Location` header against the URL that sent it.
fn join_url(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{}{rest}", &base[..scheme_end]);
    }
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if location.starts_with('/') {
        return format!("{}{location}", &base[..path_start]);
    }
    let path = base[path_start..].split(['?', '#']).next().unwrap_or("");
    let dir_end = path_start + path.rfind('/').map_or(0, |i| i + 1);
    if dir_end == path_start {
        format!("{}/{location}", &base[..path_start])
    } else {
        format!("{}{location}", &base[..dir_end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_urllib() {
        // urllib.parse.quote("refs/pr/1", safe="") and quote("sub dir/ü.json")
        assert_eq!(quote("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(quote("sub dir/\u{fc}.json", true), "sub%20dir/%C3%BC.json");
        assert_eq!(quote("a_b.c-d~e", false), "a_b.c-d~e");
    }

    #[test]
    fn etags_lose_weak_prefix_and_quotes() {
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag("\"abc\""), "abc");
        assert_eq!(normalize_etag("abc"), "abc");
    }

    #[test]
    fn redirect_locations_resolve_like_a_browser() {
        let base = "http://h:1/org/m/resolve/main/f.bin?x=1";
        assert_eq!(join_url(base, "https://cdn/x"), "https://cdn/x");
        assert_eq!(join_url(base, "//cdn:2/x"), "http://cdn:2/x");
        assert_eq!(join_url(base, "/api/x"), "http://h:1/api/x");
        assert_eq!(
            join_url(base, "g.bin"),
            "http://h:1/org/m/resolve/main/g.bin"
        );
        assert_eq!(join_url("http://h:1", "g"), "http://h:1/g");
    }

    #[test]
    fn origins_use_default_ports_and_lower_case() {
        assert_eq!(
            origin("https://HF.co/x"),
            Some(("https".into(), "hf.co".into(), 443))
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/a"),
            Some(("http".into(), "127.0.0.1".into(), 8080))
        );
        assert_ne!(
            origin("http://127.0.0.1:8080/a"),
            origin("http://127.0.0.1:8081/a")
        );
    }
}
