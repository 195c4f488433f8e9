//! Tissue detection on the generated test slides, whose tissue cores and their places
//! are listed in the slides' manifest.json (written by tools/testdata/make_slides.py).

use biofm_wsi::{detect_tissue, Slide, TissueOptions};
use std::path::PathBuf;

fn slides() -> PathBuf {
    biofm_testdata::slides()
}

/// Shoelace area of a closed ring.
fn area(ring: &[(f64, f64)]) -> f64 {
    let n = ring.len();
    (0..n).map(|i| ring[i].0 * ring[(i + 1) % n].1 - ring[(i + 1) % n].0 * ring[i].1).sum::<f64>() / 2.0
}

#[test]
fn finds_each_tissue_core_and_nothing_else() {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(slides().join("manifest.json")).unwrap()).unwrap();
    let cores = manifest["canvas"]["cores"].as_array().unwrap();
    assert_eq!(cores.len(), 8);
    for name in ["aperio.svs", "tiled_jpeg.tif"] {
        let s = Slide::open(&slides().join(name)).unwrap();
        let m = detect_tissue(&s, &TissueOptions::default()).unwrap();
        assert_eq!(m.level, 2, "{name}: segmented at downsample ~16");
        // The IHC core is 512 px; its centre is tissue (holes such as gland lumens are
        // filled), the blank canvas between cores is not.
        for c in cores {
            let (x, y) = (c["x"].as_f64().unwrap() + 256.0, c["y"].as_f64().unwrap() + 256.0);
            assert!(m.contains(x, y), "{name}: core centre ({x}, {y}) not detected");
            assert!(m.fraction(x - 64.0, y - 64.0, 128.0, 128.0) > 0.9, "{name}: core ({x}, {y})");
        }
        for (x, y) in [(40.0, 40.0), (1500.0, 1000.0), (2900.0, 900.0), (700.0, 2100.0)] {
            assert!(!m.contains(x, y), "{name}: background ({x}, {y}) taken for tissue");
            assert_eq!(m.fraction(x - 20.0, y - 20.0, 40.0, 40.0), 0.0, "{name}: ({x}, {y})");
        }
        let polys = m.polygons();
        assert_eq!(polys.len(), 8, "{name}: one outline per core");
        // Outlines enclose exactly the mask (clockwise rings in y-down coordinates).
        let total: f64 = polys.iter().map(|p| area(p)).sum();
        assert!((total - m.area_px()).abs() < 1e-6 * m.area_px(), "{name}: outline area {total} vs mask {}", m.area_px());
        let (w, h) = s.dimensions();
        let geo = m.to_geojson();
        assert_eq!(geo["type"], "FeatureCollection");
        for f in geo["features"].as_array().unwrap() {
            assert_eq!(f["properties"]["objectType"], "annotation");
            let ring = f["geometry"]["coordinates"][0].as_array().unwrap();
            assert!(ring.len() >= 5);
            assert_eq!(ring.first(), ring.last(), "closed ring");
            for p in ring {
                let (x, y) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
                assert!((0.0..=w as f64 + 1.0).contains(&x) && (0.0..=h as f64 + 1.0).contains(&y), "{x}, {y}");
            }
        }
    }
}

#[test]
fn otsu_splits_two_populations() {
    let mut hist = [0u64; 256];
    hist[10] = 500;
    hist[12] = 300;
    hist[200] = 100;
    hist[220] = 50;
    let t = biofm_wsi::tissue::otsu(&hist);
    assert!((12..200).contains(&t), "{t}");
}
