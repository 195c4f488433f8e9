//! `BIOFM_OPENSLIDE` names the OpenSlide library. Environment variables are
//! process-wide, so this is the only test in its binary.

use biofm_wsi::Slide;

#[test]
fn biofm_openslide_pointing_nowhere_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("biopsy.ndpi");
    std::fs::write(&path, b"II*\0 a slide would be here").unwrap();
    let lib = dir.path().join("missing").join("libopenslide.so.1");
    std::env::set_var("BIOFM_OPENSLIDE", &lib);
    let e = Slide::open(&path).err().unwrap().to_string();
    // Set, it is the only library tried: no silent fallback to the system's.
    for want in ["biopsy.ndpi", &lib.display().to_string(), "BIOFM_OPENSLIDE", "apt-get install libopenslide0"] {
        assert!(e.contains(want), "`{want}` missing from: {e}");
    }
    // The pure-Rust reader does not need the library.
    let svs = dir.path().join("missing.svs");
    let e = Slide::open(&svs).err().unwrap().to_string();
    assert!(e.contains("missing.svs") && !e.contains("OpenSlide"), "{e}");
    std::env::remove_var("BIOFM_OPENSLIDE");
}
