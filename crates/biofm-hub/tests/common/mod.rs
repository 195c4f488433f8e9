//! Test support: the fixtures recorded from huggingface_hub, cache tree listing and
//! rebuilding, and a mock of the hub's file protocol on 127.0.0.1 (std::net, HTTP/1.1).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub const TOKEN: &str = "hf_biofm_test_token";

/// A fixture from tests/fixtures/, or a failure saying how to make it.
pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read fixture {}: {e}\ncreate it with: tools/reference/.venv/bin/python \
             crates/biofm-hub/tests/fixtures/gen_hub_fixtures.py",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// One entry of a cache tree, as gen_hub_fixtures.py `tree()` records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub path: String,
    pub kind: String,
    /// Symlink target or file content.
    pub value: Option<String>,
}

impl Entry {
    pub fn from_json(v: &Value) -> Entry {
        let kind = v["kind"].as_str().unwrap().to_owned();
        let value = match kind.as_str() {
            "symlink" => Some(v["target"].as_str().unwrap().to_owned()),
            "file" => Some(v["content"].as_str().unwrap().to_owned()),
            _ => None,
        };
        Entry {
            path: v["path"].as_str().unwrap().to_owned(),
            kind,
            value,
        }
    }
}

/// Every entry under `root` (not following symlinks), sorted by path.
pub fn list_tree(root: &Path) -> Vec<Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<Entry>) {
        for item in std::fs::read_dir(dir).unwrap() {
            let path = item.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .replace('\\', "/");
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push(Entry {
                    path: rel,
                    kind: "symlink".into(),
                    value: Some(target.to_str().unwrap().to_owned()),
                });
            } else if meta.is_dir() {
                out.push(Entry {
                    path: rel,
                    kind: "dir".into(),
                    value: None,
                });
                walk(root, &path, out);
            } else {
                out.push(Entry {
                    path: rel,
                    kind: "file".into(),
                    value: Some(std::fs::read_to_string(&path).unwrap()),
                });
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Recreates a recorded cache tree under `root`.
#[cfg(unix)]
pub fn build_tree(root: &Path, entries: &[Entry]) {
    for e in entries {
        let path = root.join(&e.path);
        match e.kind.as_str() {
            "dir" => std::fs::create_dir_all(&path).unwrap(),
            "file" => {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, e.value.as_ref().unwrap()).unwrap();
            }
            "symlink" => {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(e.value.as_ref().unwrap(), &path).unwrap();
            }
            other => panic!("unknown entry kind {other}"),
        }
    }
}

/// The cache tree huggingface_hub produced for the recorded download sequence.
pub fn recorded_tree(layout: &Value) -> Vec<Entry> {
    let mut entries: Vec<Entry> = layout["tree"]
        .as_array()
        .unwrap()
        .iter()
        .map(Entry::from_json)
        .collect();
    entries.sort();
    entries
}

/// A test repository: refs, commits with their files (text content), LFS files, etags.
#[derive(Clone)]
pub struct Repo {
    pub repo_id: String,
    pub refs: BTreeMap<String, String>,
    pub commits: BTreeMap<String, BTreeMap<String, String>>,
    pub lfs: Vec<String>,
    pub etags: BTreeMap<String, String>,
    pub token: Option<String>,
}

impl Repo {
    pub fn from_json(v: &Value) -> Repo {
        let strings = |v: &Value| -> BTreeMap<String, String> {
            v.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        };
        Repo {
            repo_id: v["repo_id"].as_str().unwrap().to_owned(),
            refs: strings(&v["refs"]),
            commits: v["commits"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(c, files)| (c.clone(), strings(files)))
                .collect(),
            lfs: v["lfs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_owned())
                .collect(),
            etags: v["etags"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, m)| (k.clone(), m["etag"].as_str().unwrap().to_owned()))
                .collect(),
            token: v.get("token").and_then(|t| t.as_str()).map(str::to_owned),
        }
    }

    pub fn commit_of(&self, revision: &str) -> Option<&str> {
        match self.refs.get(revision) {
            Some(c) => Some(c),
            None => self
                .commits
                .get_key_value(revision)
                .map(|(c, _)| c.as_str()),
        }
    }
}

pub fn fixture_repos(layout: &Value) -> Vec<Repo> {
    layout["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(Repo::from_json)
        .collect()
}

/// A request the mock servers received.
#[derive(Debug, Clone)]
pub struct Request {
    pub server: &'static str,
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// Serves `handler` on a fresh 127.0.0.1 port, one thread per connection, logging requests.
pub fn serve(server: &'static str, log: Arc<Mutex<Vec<Request>>>, handler: Handler) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (log, handler) = (log.clone(), handler.clone());
            std::thread::spawn(move || answer(server, stream, &log, &*handler));
        }
    });
    port
}

fn answer(
    server: &'static str,
    stream: TcpStream,
    log: &Mutex<Vec<Request>>,
    handler: &(dyn Fn(&Request) -> Reply + Send + Sync),
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_owned());
            }
        }
    }
    let request = Request {
        server,
        method,
        path: percent_decode(&path),
        authorization,
    };
    log.lock().unwrap().push(request.clone());
    let reply = handler(&request);
    std::thread::sleep(reply.delay);
    let mut out = format!("HTTP/1.1 {} Mock\r\n", reply.status);
    if !reply
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut stream = stream;
    let _ = stream.write_all(out.as_bytes());
    if request.method != "HEAD" {
        let _ = stream.write_all(&reply.body);
    }
    let _ = stream.flush();
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Options changing how the mock hub answers.
#[derive(Clone, Default)]
pub struct MockOptions {
    /// The CDN waits this long before answering (to overlap concurrent downloads).
    pub cdn_delay: Duration,
    /// The CDN sends only half of each blob (with a matching Content-Length).
    pub cdn_truncates: bool,
}

/// The hub protocol of tests/fixtures/gen_hub_fixtures.py `MockHub`: `HEAD`/`GET
/// /{repo}/resolve/{rev}/{file}`, LFS files as a 302 to a second server (the CDN).
pub struct MockHub {
    pub hub_port: u16,
    pub cdn_port: u16,
    pub log: Arc<Mutex<Vec<Request>>>,
}

impl MockHub {
    pub fn start(repos: Vec<Repo>, options: MockOptions) -> MockHub {
        let log = Arc::new(Mutex::new(Vec::new()));
        let blobs: Arc<BTreeMap<String, Vec<u8>>> = Arc::new(
            repos
                .iter()
                .flat_map(|r| {
                    r.commits.iter().flat_map(move |(c, files)| {
                        files.iter().map(move |(f, content)| {
                            (
                                r.etags[&format!("{c}/{f}")].clone(),
                                content.clone().into_bytes(),
                            )
                        })
                    })
                })
                .collect(),
        );
        let cdn_port = serve("cdn", log.clone(), {
            let options = options.clone();
            Arc::new(move |req: &Request| {
                let etag = req.path.trim_start_matches("/blobs/");
                let Some(data) = blobs.get(etag) else {
                    return Reply::new(404);
                };
                let data = if options.cdn_truncates {
                    &data[..data.len() / 2]
                } else {
                    &data[..]
                };
                let mut reply = Reply::new(200).body(data.to_vec());
                reply.delay = options.cdn_delay;
                reply
            })
        });
        let repos: BTreeMap<String, Repo> =
            repos.into_iter().map(|r| (r.repo_id.clone(), r)).collect();
        let hub_port = serve(
            "hub",
            log.clone(),
            Arc::new(move |req: &Request| hub_reply(&repos, cdn_port, req)),
        );
        MockHub {
            hub_port,
            cdn_port,
            log,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.hub_port)
    }

    /// The requests received since the last call.
    pub fn take_requests(&self) -> Vec<Request> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

fn hub_reply(repos: &BTreeMap<String, Repo>, cdn_port: u16, req: &Request) -> Reply {
    // A renamed repository: the hub answers with a relative redirect on the same host.
    if let Some(rest) = req.path.strip_prefix("/biofm-test/old-name/") {
        return Reply::new(307).header("Location", format!("/biofm-test/tiny-model/{rest}"));
    }
    let parts: Vec<&str> = req.path.trim_start_matches('/').splitn(5, '/').collect();
    if parts.len() < 5 || parts[2] != "resolve" {
        return Reply::new(404).header("X-Error-Code", "RepoNotFound");
    }
    let Some(repo) = repos.get(&format!("{}/{}", parts[0], parts[1])) else {
        return Reply::new(404).header("X-Error-Code", "RepoNotFound");
    };
    if let Some(token) = &repo.token {
        if req.authorization.as_deref() != Some(&format!("Bearer {token}")) {
            return Reply::new(401).header("X-Error-Code", "GatedRepo");
        }
    }
    let (rev, file) = (parts[3], parts[4]);
    let Some(commit) = repo.commit_of(rev) else {
        return Reply::new(404).header("X-Error-Code", "RevisionNotFound");
    };
    let Some(content) = repo.commits[commit].get(file) else {
        return Reply::new(404)
            .header("X-Error-Code", "EntryNotFound")
            .header("X-Repo-Commit", commit);
    };
    let etag = &repo.etags[&format!("{commit}/{file}")];
    if repo.lfs.iter().any(|f| f == file) {
        return Reply::new(302)
            .header(
                "Location",
                format!("http://127.0.0.1:{cdn_port}/blobs/{etag}"),
            )
            .header("X-Repo-Commit", commit)
            .header("ETag", "\"0123456789abcdef0123456789abcdef01234567\"")
            .header("X-Linked-Etag", format!("\"{etag}\""))
            .header("X-Linked-Size", content.len().to_string());
    }
    Reply::new(200)
        .header("X-Repo-Commit", commit)
        .header("ETag", format!("\"{etag}\""))
        .body(content.as_bytes())
}

/// A port on which nothing listens.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A cache directory inside a fresh temporary directory.
pub fn temp_cache() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    (dir, cache)
}
