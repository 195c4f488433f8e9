//! `biofm wsi info` on the generated test slides (scripts/fetch-test-data.sh).

use std::path::PathBuf;
use std::process::Command;

fn slides() -> PathBuf {
    biofm_testdata::slides()
}

#[test]
fn wsi_info_reports_levels_and_resolution() {
    let svs = slides().join("aperio.svs");
    let o = Command::new(env!("CARGO_BIN_EXE_biofm")).args(["wsi", "info", "--json"]).arg(&svs).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &v[0];
    assert_eq!(s["vendor"], "aperio");
    assert_eq!(s["mpp"], serde_json::json!([0.5, 0.5]));
    assert_eq!(s["objective_power"], 20.0);
    let dims: Vec<(u64, u64)> = s["levels"].as_array().unwrap().iter().map(|l| (l["width"].as_u64().unwrap(), l["height"].as_u64().unwrap())).collect();
    assert_eq!(dims, vec![(3000, 2200), (750, 550), (187, 137)]);

    let o = Command::new(env!("CARGO_BIN_EXE_biofm")).args(["wsi", "info"]).arg(slides().join("no_mpp.tif")).output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("microns per pixel: unknown"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.svs");
    std::fs::write(&bad, b"not a slide at all").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_biofm")).args(["wsi", "info"]).arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("bad.svs") && err.contains("not a TIFF") && !err.contains("panicked"), "{err}");
}

#[test]
fn wsi_segment_writes_geojson_and_thumbnail() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_biofm"))
        .args(["wsi", "segment", "-o"])
        .arg(dir.path())
        .arg(slides().join("aperio.svs"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("8 tissue pieces"), "{err}");
    let geo: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("aperio.geojson")).unwrap()).unwrap();
    assert_eq!(geo["features"].as_array().unwrap().len(), 8);
    let png = std::fs::read(dir.path().join("aperio_tissue.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // Width and height in the IHDR: the segmentation level (187 x 137).
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 187);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 137);
}
