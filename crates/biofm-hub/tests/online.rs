//! Downloads against a mock of the hub's file protocol on 127.0.0.1 (a hub listener and a
//! second "CDN" listener on another port): the same requests and the same cache tree as
//! huggingface_hub 2.4.0 produced for the same sequence (tests/fixtures/cache_layout.json),
//! the token never leaving the hub, `.no_exist`, no requests for cached files, concurrent
//! downloads, cache fallback when the hub fails, and timeouts.
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use biofm_hub::{Error, HubConfig, HubRepo, ModelFiles, ModelRef};
use common::{
    fixture, fixture_repos, list_tree, recorded_tree, temp_cache, MockHub, MockOptions, Repo, TOKEN,
};

fn online(cache: &Path, endpoint: &str, token: Option<&str>) -> HubConfig {
    let mut config = HubConfig::new(cache);
    config.endpoint = endpoint.to_owned();
    config.token = token.map(str::to_owned);
    config
}

fn hub_ref(repo_id: &str, revision: &str) -> ModelRef {
    ModelRef::Hub(HubRepo::new(repo_id, Some(revision)).unwrap())
}

/// Opens a model with notes collected into the returned vector.
fn open(model: &ModelRef, config: &HubConfig) -> (ModelFiles, Arc<Mutex<Vec<String>>>) {
    let notes = Arc::new(Mutex::new(Vec::new()));
    let sink = notes.clone();
    let files = ModelFiles::open(model, config)
        .unwrap()
        .with_log(move |m| sink.lock().unwrap().push(m.to_owned()));
    (files, notes)
}

fn repos() -> Vec<Repo> {
    fixture_repos(&fixture("cache_layout.json"))
}

fn start(options: MockOptions) -> MockHub {
    MockHub::start(repos(), options)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn same_requests_and_same_cache_tree_as_huggingface_hub() {
    let layout = fixture("cache_layout.json");
    let hub = start(MockOptions::default());
    let (_dir, cache) = temp_cache();
    let config = online(&cache, &hub.endpoint(), Some(TOKEN));
    for call in layout["calls"].as_array().unwrap() {
        let (repo_id, rev, file) = (
            call["repo_id"].as_str().unwrap(),
            call["revision"].as_str().unwrap(),
            call["file"].as_str().unwrap(),
        );
        let what = format!("{repo_id}@{rev} {file}");
        // One ModelFiles per call, like one hf_hub_download call each.
        let (files, notes) = open(&hub_ref(repo_id, rev), &config);
        let got = files.get(file).unwrap_or_else(|e| panic!("{what}: {e}"));
        match call["path"].as_str() {
            Some(rel) => assert_eq!(got, Some(cache.join(rel)), "{what}"),
            None => assert_eq!(got, None, "{what}: huggingface_hub found it missing"),
        }
        assert!(
            notes.lock().unwrap().is_empty(),
            "{what}: {:?}",
            notes.lock().unwrap()
        );

        let ours: Vec<String> = hub
            .take_requests()
            .iter()
            .map(|r| {
                let path = r.path.replace(&hub.cdn_port.to_string(), "<CDN_PORT>");
                format!(
                    "{} {} {path} auth={}",
                    r.server,
                    r.method,
                    r.authorization.is_some()
                )
            })
            .collect();
        let python: Vec<String> = call["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} auth={}",
                    r["server"].as_str().unwrap(),
                    r["method"].as_str().unwrap(),
                    r["path"].as_str().unwrap(),
                    r["auth"].as_bool().unwrap()
                )
            })
            .collect();
        assert_eq!(
            ours, python,
            "{what}: requests differ from huggingface_hub's"
        );
    }

    let ours = list_tree(&cache);
    let python = recorded_tree(&layout);
    let without_tag_text = |entries: &[common::Entry]| -> Vec<common::Entry> {
        entries
            .iter()
            .cloned()
            .map(|mut e| {
                if e.path == "CACHEDIR.TAG" {
                    assert!(e
                        .value
                        .as_deref()
                        .unwrap()
                        .starts_with("Signature: 8a477f597d28d172789f06886806bc55\n"));
                    e.value = None;
                }
                e
            })
            .collect()
    };
    assert_eq!(without_tag_text(&ours), without_tag_text(&python));
}

#[test]
fn token_goes_to_the_hub_but_not_to_the_cdn() {
    let hub = start(MockOptions::default());
    let (_dir, cache) = temp_cache();
    let (files, _) = open(
        &hub_ref("biofm-test/gated-model", "main"),
        &online(&cache, &hub.endpoint(), Some(TOKEN)),
    );
    let path = files.require("model.safetensors").unwrap();
    assert_eq!(
        read(&path),
        repos()[1].commits[&repos()[1].refs["main"]]["model.safetensors"]
    );
    let requests = hub.take_requests();
    let bearer = format!("Bearer {TOKEN}");
    let to = |server: &str| {
        requests
            .iter()
            .filter(|r| r.server == server)
            .collect::<Vec<_>>()
    };
    assert_eq!(to("hub").len(), 1);
    assert_eq!(to("cdn").len(), 1);
    assert_eq!(to("hub")[0].authorization.as_deref(), Some(bearer.as_str()));
    assert_eq!(
        to("cdn")[0].authorization,
        None,
        "token forwarded to another host"
    );
}

#[test]
fn redirects_on_the_hub_keep_the_token() {
    let hub = start(MockOptions::default());
    let (_dir, cache) = temp_cache();
    let config = online(&cache, &hub.endpoint(), Some(TOKEN));
    let (files, _) = open(&hub_ref("biofm-test/old-name", "main"), &config);
    let path = files.require("config.json").unwrap();
    let repo = &repos()[0];
    assert_eq!(read(&path), repo.commits[&repo.refs["main"]]["config.json"]);
    // Cached under the name asked for, as huggingface_hub does.
    assert!(
        path.starts_with(cache.join("models--biofm-test--old-name/snapshots")),
        "{}",
        path.display()
    );
    let requests: Vec<String> = hub
        .take_requests()
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.authorization.is_some()))
        .collect();
    assert_eq!(
        requests,
        [
            "HEAD /biofm-test/old-name/resolve/main/config.json true",
            "HEAD /biofm-test/tiny-model/resolve/main/config.json true",
            "GET /biofm-test/tiny-model/resolve/main/config.json true",
        ]
    );
}

#[test]
fn model_files_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<ModelFiles>();
}

#[test]
fn gated_repo_without_or_with_a_wrong_token_explains_access() {
    let hub = start(MockOptions::default());
    for token in [None, Some("hf_wrong")] {
        let (_dir, cache) = temp_cache();
        let (files, _) = open(
            &hub_ref("biofm-test/gated-model", "main"),
            &online(&cache, &hub.endpoint(), token),
        );
        let err = files.get("config.json").unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(&err, Error::Unavailable { online, .. } if matches!(**online, Error::Gated { status: 401, .. })),
            "{err:?}"
        );
        for part in [
            "HTTP 401",
            "gated",
            "Request access",
            "HF_TOKEN",
            &format!("{}/biofm-test/gated-model", hub.endpoint()),
        ] {
            assert!(msg.contains(part), "`{part}` not in: {msg}");
        }
        assert_eq!(
            msg.contains("a token was sent and refused"),
            token.is_some(),
            "{msg}"
        );
        assert!(!cache.join("models--biofm-test--gated-model/blobs").exists());
    }
}

#[test]
fn gated_repo_cached_earlier_is_used_without_a_token() {
    let hub = start(MockOptions::default());
    let (_dir, cache) = temp_cache();
    let model = hub_ref("biofm-test/gated-model", "main");
    let (files, _) = open(&model, &online(&cache, &hub.endpoint(), Some(TOKEN)));
    let cached = files.require("config.json").unwrap();

    let (files, notes) = open(&model, &online(&cache, &hub.endpoint(), None));
    assert_eq!(files.require("config.json").unwrap(), cached);
    let notes = notes.lock().unwrap().clone();
    assert!(
        notes.len() == 1
            && notes[0].contains("HTTP 401")
            && notes[0].contains("using the hub cache"),
        "{notes:?}"
    );
}

#[test]
fn unknown_repo_and_unknown_revision() {
    let hub = start(MockOptions::default());
    let (_dir, cache) = temp_cache();
    let config = online(&cache, &hub.endpoint(), None);
    let (files, _) = open(&hub_ref("nobody/nothing", "main"), &config);
    let msg = files.get("config.json").unwrap_err().to_string();
    assert!(
        msg.contains("repository not found (or private/gated without a token)"),
        "{msg}"
    );
    assert!(
        msg.contains("hf:nobody/nothing@main") && msg.contains("not in the local cache"),
        "{msg}"
    );

    let (files, _) = open(&hub_ref("biofm-test/tiny-model", "no-such-branch"), &config);
    let err = files.get("config.json").unwrap_err();
    assert!(matches!(err, Error::RevisionNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("`no-such-branch`"), "{err}");
}

#[test]
fn cached_files_need_no_request() {
    let hub = start(MockOptions::default());
    let (_dir, cache) = temp_cache();
    let config = online(&cache, &hub.endpoint(), None);
    let (files, _) = open(&hub_ref("biofm-test/tiny-model", "main"), &config);
    let first = files.require("config.json").unwrap();
    assert_eq!(hub.take_requests().len(), 2, "HEAD + GET");
    let commit = files.commit().unwrap();
    assert_eq!(
        files.snapshot_dir(),
        Some(
            cache
                .join("models--biofm-test--tiny-model/snapshots")
                .join(&commit)
        )
    );

    // Same ModelFiles: the commit is pinned and the file is in its snapshot.
    assert_eq!(files.require("config.json").unwrap(), first);
    assert!(hub.take_requests().is_empty());
    // A 404 is remembered in .no_exist.
    assert_eq!(files.get("missing.json").unwrap(), None);
    assert_eq!(hub.take_requests().len(), 1);
    assert!(cache
        .join("models--biofm-test--tiny-model/.no_exist")
        .join(&commit)
        .join("missing.json")
        .is_file());
    assert_eq!(files.get("missing.json").unwrap(), None);
    assert!(hub.take_requests().is_empty());

    // Offline, or online pinned to the commit: no request at all.
    let mut offline = config.clone();
    offline.offline = true;
    for (model, config) in [
        (hub_ref("biofm-test/tiny-model", "main"), &offline),
        (hub_ref("biofm-test/tiny-model", &commit), &config),
    ] {
        let (files, _) = open(&model, config);
        assert_eq!(files.require("config.json").unwrap(), first);
        assert_eq!(files.get("missing.json").unwrap(), None);
    }
    assert!(hub.take_requests().is_empty());
}

#[test]
fn concurrent_downloads_of_one_file_share_one_blob() {
    let hub = start(MockOptions {
        cdn_delay: Duration::from_millis(300),
        ..MockOptions::default()
    });
    let (_dir, cache) = temp_cache();
    let config = online(&cache, &hub.endpoint(), None);
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (config, barrier) = (config.clone(), barrier.clone());
            std::thread::spawn(move || {
                let (files, _) = open(&hub_ref("biofm-test/tiny-model", "main"), &config);
                barrier.wait();
                files.require("model.safetensors").unwrap()
            })
        })
        .collect();
    let paths: Vec<PathBuf> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(paths[0], paths[1]);
    let repo = &repos()[0];
    let expected = &repo.commits[&repo.refs["main"]]["model.safetensors"];
    assert_eq!(&read(&paths[0]), expected);

    let blobs: Vec<String> = std::fs::read_dir(cache.join("models--biofm-test--tiny-model/blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        blobs,
        vec![repo.etags[&format!("{}/model.safetensors", repo.refs["main"])].clone()]
    );
    let requests = hub.take_requests();
    assert_eq!(
        requests.iter().filter(|r| r.server == "hub").count(),
        2,
        "one HEAD each"
    );
    assert_eq!(
        requests.iter().filter(|r| r.server == "cdn").count(),
        1,
        "the lock lets one thread download"
    );
}

#[test]
fn progress_reports_bytes_up_to_the_size() {
    let hub = start(MockOptions::default());
    let (_dir, cache) = temp_cache();
    let (files, _) = open(
        &hub_ref("biofm-test/tiny-model", "main"),
        &online(&cache, &hub.endpoint(), None),
    );
    let seen = Mutex::new(Vec::new());
    let path = files
        .get_with_progress("model.safetensors", &|done, total| {
            seen.lock().unwrap().push((done, total))
        })
        .unwrap()
        .unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.first(), Some(&(0, Some(size))));
    assert_eq!(seen.last(), Some(&(size, Some(size))));
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
}

#[test]
fn truncated_download_leaves_nothing_behind() {
    let hub = start(MockOptions {
        cdn_truncates: true,
        ..MockOptions::default()
    });
    let (_dir, cache) = temp_cache();
    let (files, _) = open(
        &hub_ref("biofm-test/tiny-model", "main"),
        &online(&cache, &hub.endpoint(), None),
    );
    let msg = files.get("model.safetensors").unwrap_err().to_string();
    assert!(
        msg.contains("download ended after 1500 of 3000 bytes"),
        "{msg}"
    );
    let repo_dir = cache.join("models--biofm-test--tiny-model");
    assert_eq!(
        std::fs::read_dir(repo_dir.join("blobs")).unwrap().count(),
        0,
        "partial blob left"
    );
    let snapshot = repo_dir.join("snapshots").join(&repos()[0].refs["main"]);
    assert!(!snapshot.join("model.safetensors").exists());
}

#[test]
fn unreachable_hub_falls_back_to_the_cache_with_a_note() {
    let hub = start(MockOptions::default());
    let (_dir, cache) = temp_cache();
    let (files, _) = open(
        &hub_ref("biofm-test/tiny-model", "main"),
        &online(&cache, &hub.endpoint(), None),
    );
    let cached = files.require("config.json").unwrap();

    let down = format!("http://127.0.0.1:{}", common::closed_port());
    let (files, notes) = open(
        &hub_ref("biofm-test/tiny-model", "main"),
        &online(&cache, &down, None),
    );
    assert_eq!(files.require("config.json").unwrap(), cached);
    let notes = notes.lock().unwrap().clone();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("cannot reach") && notes[0].contains("using the hub cache"),
        "{notes:?}"
    );

    // Not cached: an optional lookup sees it as absent; requiring it reports both
    // failures, without trying the network again.
    let start = Instant::now();
    assert_eq!(files.get("sub/nested.json").unwrap(), None);
    let err = files.require("sub/nested.json").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(
        msg.contains("not retried") && msg.contains("sub/nested.json"),
        "{msg}"
    );
    assert!(msg.contains("not in the local cache either"), "{msg}");
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn silent_hub_times_out_instead_of_hanging() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            keep.lock().unwrap().push(stream);
        }
    });
    let (_dir, cache) = temp_cache();
    let mut config = online(&cache, &endpoint, None);
    config.etag_timeout = Duration::from_millis(500);
    let (files, _) = open(&hub_ref("biofm-test/tiny-model", "main"), &config);
    let start = Instant::now();
    let err = files.get("config.json").unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    let msg = err.to_string();
    assert!(
        msg.contains("cannot reach") && msg.to_lowercase().contains("timeout"),
        "{msg}"
    );
    assert!(
        msg.contains("not in the hub cache") && msg.contains(cache.to_str().unwrap()),
        "{msg}"
    );
}

#[test]
fn endpoint_that_is_not_a_hub_is_reported() {
    // Answers 200 without X-Repo-Commit / ETag, like a captive portal or a wrong HF_ENDPOINT.
    let log = Arc::new(Mutex::new(Vec::new()));
    let port = common::serve(
        "hub",
        log,
        Arc::new(|_| common::Reply::new(200).body("<html>hello</html>")),
    );
    let (_dir, cache) = temp_cache();
    let (files, _) = open(
        &hub_ref("biofm-test/tiny-model", "main"),
        &online(&cache, &format!("http://127.0.0.1:{port}"), None),
    );
    let msg = files.get("config.json").unwrap_err().to_string();
    assert!(
        msg.contains("no X-Repo-Commit header") && msg.contains("HF_ENDPOINT"),
        "{msg}"
    );
    assert!(!cache.join("models--biofm-test--tiny-model/blobs").exists());
}
