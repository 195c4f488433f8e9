//! For tests only: the real test data that `scripts/fetch-test-data.sh` downloads and
//! builds (the all-MiniLM-L6-v2 checkpoint, scanpy's pbmc68k_reduced, the generated
//! whole-slide images) lives in `$BIOFM_TEST_DATA`, else `data/downloads` in the
//! workspace.

use std::path::PathBuf;

/// The download folder.
pub fn downloads() -> PathBuf {
    std::env::var_os("BIOFM_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/downloads")))
}

/// `rel` inside the download folder; panics with the command that fetches it when it is
/// missing.
pub fn downloaded(rel: &str) -> PathBuf {
    let p = downloads().join(rel);
    assert!(p.exists(), "{} is missing: run scripts/fetch-test-data.sh (or set BIOFM_TEST_DATA)", p.display());
    p
}

/// The folder of `rel`'s file (e.g. a model folder, checked through one of its files).
pub fn downloaded_dir_of(rel: &str) -> PathBuf {
    let p = downloaded(rel);
    p.parent().expect("a file inside a folder").to_path_buf()
}

/// The generated whole-slide test images (`tools/testdata/make_slides.py`).
pub fn slides() -> PathBuf {
    downloaded_dir_of("slides/manifest.json")
}
