//! Where the test suite finds the generated test slides (built by
//! `scripts/fetch-test-data.sh`): `$BIOFM_TEST_DATA/slides`, else `data/downloads/slides`
//! in the workspace. For tests only.

use std::path::PathBuf;

/// The test-slide folder; panics with the command that builds it when it is missing.
pub fn slides_dir() -> PathBuf {
    let base = std::env::var_os("BIOFM_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/downloads")));
    let dir = base.join("slides");
    assert!(
        dir.join("manifest.json").is_file() && dir.join("aperio.svs").is_file(),
        "{} is missing: run scripts/fetch-test-data.sh",
        dir.display()
    );
    dir
}
