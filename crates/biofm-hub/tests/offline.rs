//! Offline resolution from a cache written by huggingface_hub 2.4.0: the tree recorded in
//! tests/fixtures/cache_layout.json (blobs, relative symlinks, refs/main, a second branch
//! `dev`, a tag `v1.0`, a `.no_exist` entry) is rebuilt in a temp dir and read back; plus
//! local directories and bad inputs.
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};

use biofm_hub::{Error, HubConfig, HubRepo, ModelFiles, ModelRef};
use common::{build_tree, fixture, fixture_repos, recorded_tree, temp_cache, Repo};

fn offline(cache: &Path) -> HubConfig {
    let mut config = HubConfig::new(cache);
    config.offline = true;
    config.endpoint = format!("http://127.0.0.1:{}", common::closed_port());
    config
}

fn hub_ref(repo_id: &str, revision: &str) -> ModelRef {
    ModelRef::Hub(HubRepo::new(repo_id, Some(revision)).unwrap())
}

/// The cache as huggingface_hub left it after the recorded downloads.
fn python_cache() -> (tempfile::TempDir, PathBuf, Vec<Repo>) {
    let layout = fixture("cache_layout.json");
    let (dir, cache) = temp_cache();
    build_tree(&cache, &recorded_tree(&layout));
    (dir, cache, fixture_repos(&layout))
}

#[test]
fn branches_tags_and_commit_hashes_resolve_to_the_snapshot_files() {
    let (_dir, cache, repos) = python_cache();
    let tiny = &repos[0];
    let layout = fixture("cache_layout.json");
    let mut checked = 0;
    for call in layout["calls"].as_array().unwrap() {
        let Some(rel) = call["path"].as_str() else {
            continue;
        };
        let (repo_id, rev, file) = (
            call["repo_id"].as_str().unwrap(),
            call["revision"].as_str().unwrap(),
            call["file"].as_str().unwrap(),
        );
        let repo = repos.iter().find(|r| r.repo_id == repo_id).unwrap();
        let commit = repo.commit_of(rev).unwrap();
        let files = ModelFiles::open(&hub_ref(repo_id, rev), &offline(&cache)).unwrap();
        assert_eq!(files.commit().as_deref(), Some(commit), "{repo_id}@{rev}");
        let snapshot = cache
            .join(format!("models--{}", repo_id.replace('/', "--")))
            .join("snapshots")
            .join(commit);
        assert_eq!(files.snapshot_dir(), Some(snapshot.clone()));

        let path = files
            .get(file)
            .unwrap()
            .unwrap_or_else(|| panic!("{repo_id}@{rev} {file}"));
        assert_eq!(path, cache.join(rel));
        assert!(path.starts_with(&snapshot));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            repo.commits[commit][file],
            "{repo_id}@{rev} {file}"
        );
        assert_eq!(files.require(file).unwrap(), path);
        checked += 1;
    }
    assert_eq!(checked, 9);
    // The tag and the branch really lead to different contents of config.json.
    let read = |rev: &str| {
        let files = ModelFiles::open(&hub_ref(&tiny.repo_id, rev), &offline(&cache)).unwrap();
        std::fs::read_to_string(files.require("config.json").unwrap()).unwrap()
    };
    assert_ne!(read("v1.0"), read("main"));
    assert_eq!(read("dev"), read("main"));
}

#[test]
fn default_revision_is_main() {
    let (_dir, cache, repos) = python_cache();
    let files = ModelFiles::open(
        &ModelRef::parse("hf:biofm-test/tiny-model").unwrap(),
        &offline(&cache),
    )
    .unwrap();
    assert_eq!(
        files.commit().as_deref(),
        Some(repos[0].refs["main"].as_str())
    );
    let desc = files.describe();
    assert!(
        desc.contains("hf:biofm-test/tiny-model") && desc.contains(&repos[0].refs["main"]),
        "{desc}"
    );
}

#[test]
fn no_exist_marker_means_the_repo_lacks_the_file() {
    let (_dir, cache, _) = python_cache();
    let files =
        ModelFiles::open(&hub_ref("biofm-test/tiny-model", "main"), &offline(&cache)).unwrap();
    assert_eq!(files.get("missing.json").unwrap(), None);
    let err = files.require("missing.json").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::MissingFile { .. }), "{err:?}");
    for part in ["missing.json", "hf:biofm-test/tiny-model@main", ".no_exist"] {
        assert!(msg.contains(part), "`{part}` not in: {msg}");
    }
    // The marker is per commit: at v1.0 nothing is known about missing.json.
    let v1 = ModelFiles::open(&hub_ref("biofm-test/tiny-model", "v1.0"), &offline(&cache)).unwrap();
    assert_eq!(v1.get("missing.json").unwrap(), None);
    assert!(matches!(
        v1.require("missing.json"),
        Err(Error::NotCached { .. })
    ));
}

#[test]
fn file_missing_from_the_snapshot_is_a_clear_error() {
    let (_dir, cache, _) = python_cache();
    // sub/nested.json exists in the dev branch but was never downloaded for it.
    let files =
        ModelFiles::open(&hub_ref("biofm-test/tiny-model", "dev"), &offline(&cache)).unwrap();
    // An optional lookup sees the file as absent; requiring it explains what to do.
    assert_eq!(files.get("sub/nested.json").unwrap(), None);
    let err = files.require("sub/nested.json").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::NotCached { .. }), "{err:?}");
    for part in [
        "sub/nested.json",
        "hf:biofm-test/tiny-model@dev",
        "HF_HUB_OFFLINE",
        "HF_HUB_CACHE",
        "run once",
    ] {
        assert!(msg.contains(part), "`{part}` not in: {msg}");
    }
    assert!(
        msg.contains(cache.to_str().unwrap()),
        "cache dir not in: {msg}"
    );
}

#[test]
fn missing_cache_and_unknown_revisions_fail_at_open() {
    let (_dir, cache, _) = python_cache();
    let open_err = |model: &ModelRef, cache: &Path| match ModelFiles::open(model, &offline(cache)) {
        Ok(_) => panic!("{model}: expected an error"),
        Err(e) => e,
    };

    let empty = tempfile::tempdir().unwrap();
    let err = open_err(
        &hub_ref("biofm-test/tiny-model", "main"),
        &empty.path().join("no-cache"),
    );
    let msg = err.to_string();
    assert!(matches!(err, Error::NotCached { .. }), "{err:?}");
    assert!(
        msg.contains("no-cache") && msg.contains("models--biofm-test--tiny-model"),
        "{msg}"
    );
    assert!(
        msg.contains("run once") && msg.contains("HF_HUB_CACHE"),
        "{msg}"
    );

    let err = open_err(&hub_ref("biofm-test/tiny-model", "v2.0"), &cache).to_string();
    assert!(
        err.contains("revision `v2.0`") && err.contains("refs"),
        "{err}"
    );

    let unknown_commit = "fedcba9876543210fedcba9876543210fedcba98";
    let err = open_err(&hub_ref("biofm-test/tiny-model", unknown_commit), &cache).to_string();
    assert!(
        err.contains(unknown_commit) && err.contains("snapshot"),
        "{err}"
    );
}

#[test]
fn ref_pointing_to_a_missing_snapshot_is_reported() {
    let (_dir, cache, _) = python_cache();
    let commit = "00000000000000000000000000000000000000aa";
    std::fs::write(
        cache.join("models--biofm-test--tiny-model/refs/stale"),
        commit,
    )
    .unwrap();
    let err = match ModelFiles::open(&hub_ref("biofm-test/tiny-model", "stale"), &offline(&cache)) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("revision `stale` is commit") && err.contains(commit),
        "{err}"
    );
    assert!(err.contains(&format!("snapshots/{commit}")), "{err}");
}

#[test]
fn dangling_snapshot_link_is_reported() {
    let (_dir, cache, repos) = python_cache();
    let repo = &repos[0];
    let main = &repo.refs["main"];
    let etag = &repo.etags[&format!("{main}/sub/nested.json")];
    std::fs::remove_file(
        cache
            .join("models--biofm-test--tiny-model/blobs")
            .join(etag),
    )
    .unwrap();
    let files =
        ModelFiles::open(&hub_ref("biofm-test/tiny-model", "main"), &offline(&cache)).unwrap();
    let err = files.get("sub/nested.json").unwrap_err().to_string();
    assert!(
        err.contains("broken link") && err.contains("nested.json"),
        "{err}"
    );
}

#[test]
fn unsafe_file_names_are_rejected() {
    let (_dir, cache, _) = python_cache();
    let files =
        ModelFiles::open(&hub_ref("biofm-test/tiny-model", "main"), &offline(&cache)).unwrap();
    let local_dir = tempfile::tempdir().unwrap();
    let local = ModelFiles::open(
        &ModelRef::Local(local_dir.path().to_path_buf()),
        &offline(&cache),
    )
    .unwrap();
    for name in [
        "",
        "../config.json",
        "sub/../../x",
        "/config.json",
        "a//b",
        "./config.json",
        "sub\\nested.json",
        "C:x",
    ] {
        for source in [&files, &local] {
            let err = source.get(name).unwrap_err();
            assert!(
                matches!(err, Error::InvalidFileName { .. }),
                "{name:?}: {err:?}"
            );
            assert!(err.to_string().contains(&format!("`{name}`")), "{err}");
        }
    }
}

#[test]
fn local_directories() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("1_Pooling")).unwrap();
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    std::fs::write(dir.path().join("1_Pooling/config.json"), "{}").unwrap();
    let config = offline(&dir.path().join("unused-cache"));
    let files = ModelFiles::open(&ModelRef::Local(dir.path().to_path_buf()), &config).unwrap();
    assert_eq!(
        files.get("config.json").unwrap(),
        Some(dir.path().join("config.json"))
    );
    assert_eq!(
        files.get("1_Pooling/config.json").unwrap(),
        Some(dir.path().join("1_Pooling/config.json"))
    );
    assert_eq!(files.get("tokenizer.json").unwrap(), None);
    assert_eq!(files.get("1_Pooling").unwrap(), None);
    assert_eq!(files.snapshot_dir(), Some(dir.path().to_path_buf()));
    assert_eq!(files.commit(), None);
    let msg = files.require("tokenizer.json").unwrap_err().to_string();
    assert!(
        msg.contains("tokenizer.json") && msg.contains(dir.path().to_str().unwrap()),
        "{msg}"
    );

    let open_err = |path: PathBuf| match ModelFiles::open(&ModelRef::Local(path), &config) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    };
    let missing = dir.path().join("nope");
    let msg = open_err(missing.clone());
    assert!(
        msg.contains("does not exist") && msg.contains(missing.to_str().unwrap()),
        "{msg}"
    );
    let msg = open_err(dir.path().join("config.json"));
    assert!(msg.contains("is a file, not a directory"), "{msg}");
    // A relative ORG/NAME that is not a directory hints at the hub spelling.
    let msg = open_err(PathBuf::from("no-such-org/no-such-model"));
    assert!(msg.contains("hf:no-such-org/no-such-model"), "{msg}");
}
