//! The pure-Rust slide reader against OpenSlide 4.0.1 (openslide-bin, the reader the
//! reference pathology pipelines use) on slides built from real IHC tissue pixels by
//! tools/testdata/make_slides.py (run by scripts/fetch-test-data.sh). OpenSlide's answers
//! were recorded by tools/reference/gen_wsi_fixtures.py in tests/fixtures/wsi.

use biofm_wsi::Slide;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wsi")
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap()).unwrap()
}

fn slides() -> PathBuf {
    biofm_testdata::slides()
}

/// The test slides must be the ones OpenSlide read.
fn check_slide_bytes(name: &str, e: &Value) {
    let bytes = std::fs::read(slides().join(name)).unwrap();
    let sha = format!("{:x}", Sha256::digest(&bytes));
    assert_eq!(sha, e["slides"][name].as_str().unwrap(), "{name}: not the slide the fixtures were made from");
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// Slides OpenSlide reads the way we do (OME-TIFF is checked separately: OpenSlide
/// ignores its SubIFD pyramid and OME metadata).
const SAME_AS_OPENSLIDE: [&str; 5] = ["tiled_jpeg.tif", "aperio.svs", "bigtiff_lzw.tif", "tiled_raw.tif", "no_mpp.tif"];

#[test]
fn structure_and_metadata_match_openslide() {
    let e = expected();
    for name in SAME_AS_OPENSLIDE {
        check_slide_bytes(name, &e);
        let o = &e["per_slide"][name]["openslide"];
        let s = Slide::open(&slides().join(name)).unwrap();
        assert_eq!(s.vendor(), o["vendor"].as_str().unwrap(), "{name}");
        let dims: Vec<(u64, u64)> =
            o["level_dimensions"].as_array().unwrap().iter().map(|d| (d[0].as_u64().unwrap(), d[1].as_u64().unwrap())).collect();
        assert_eq!(s.levels().iter().map(|l| (l.width, l.height)).collect::<Vec<_>>(), dims, "{name}");
        let ds: Vec<f64> = s.levels().iter().map(|l| l.downsample).collect();
        assert_eq!(ds, nums(&o["level_downsamples"]), "{name}");
        let mpp = o["mpp_x"].as_str().map(|m| m.parse::<f64>().unwrap());
        assert_eq!(s.mpp().map(|m| m.0), mpp, "{name}: mpp");
        let power = o["objective_power"].as_str().map(|m| m.parse::<f64>().unwrap());
        assert_eq!(s.objective_power(), power, "{name}: objective power");
        for pair in o["best_level_for_downsample"].as_array().unwrap() {
            let (d, l) = (pair[0].as_f64().unwrap(), pair[1].as_u64().unwrap() as usize);
            assert_eq!(s.best_level_for_downsample(d), l, "{name}: best level for {d}");
        }
        if name == "aperio.svs" {
            for (k, v) in o["properties"].as_object().unwrap() {
                if k.starts_with("aperio.") {
                    assert_eq!(s.properties().get(k), Some(&v.as_str().unwrap().to_string()), "{name}: {k}");
                }
            }
        }
    }
}

#[test]
fn regions_match_openslide_pixel_for_pixel() {
    let e = expected();
    let mut compared = 0;
    for name in SAME_AS_OPENSLIDE.into_iter().chain(["corrupt_tile.tif"]) {
        let s = Slide::open(&slides().join(name)).unwrap();
        for r in e["per_slide"][name]["reads"].as_array().unwrap() {
            let rname = r["name"].as_str().unwrap();
            let loc = r["location"].as_array().unwrap();
            let level = r["level"].as_u64().unwrap() as usize;
            let ds = s.levels()[level].downsample;
            let fractional = [&loc[0], &loc[1]].iter().any(|v| (v.as_f64().unwrap() / ds).fract() != 0.0);
            if fractional {
                // OpenSlide paints a read whose level position is fractional (location /
                // downsample) with cairo's bilinear filter; we read whole pixels from
                // floor(location / downsample) (documented limitation).
                assert!(rname.starts_with("fractional") || rname.starts_with("edge_l2"), "{name} {rname}");
                continue;
            }
            let size = r["size"].as_array().unwrap();
            let got = s.read_region(
                loc[0].as_i64().unwrap(),
                loc[1].as_i64().unwrap(),
                level,
                size[0].as_u64().unwrap(),
                size[1].as_u64().unwrap(),
            );
            if let Some(err) = r["error"].as_str() {
                let msg = got.err().unwrap_or_else(|| panic!("{name} {rname}: expected an error like OpenSlide's `{err}`")).to_string();
                assert!(msg.contains("tile") && msg.contains("byte offset"), "{name} {rname}: {msg}");
                continue;
            }
            let got = got.unwrap_or_else(|err| panic!("{name} {rname}: {err}"));
            let w = size[0].as_u64().unwrap() as usize;
            for p in r["samples"].as_array().unwrap() {
                let p: Vec<u64> = p.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
                let i = (p[1] as usize * w + p[0] as usize) * 4;
                let want: Vec<u8> = p[2..6].iter().map(|&v| v as u8).collect();
                assert_eq!(&got[i..i + 4], &want[..], "{name} {rname}: pixel ({}, {})", p[0], p[1]);
            }
            assert_eq!(format!("{:x}", Sha256::digest(&got)), r["sha256"].as_str().unwrap(), "{name} {rname}: RGBA bytes differ");
            if let Some(f) = r["file"].as_str() {
                assert_eq!(got, std::fs::read(fixtures().join(f)).unwrap(), "{name} {rname}");
            }
            compared += 1;
        }
    }
    assert!(compared > 60, "only {compared} regions compared");
}

#[test]
fn ome_tiff_pyramid_and_physical_size() {
    let e = expected();
    check_slide_bytes("ome.ome.tif", &e);
    let s = Slide::open(&slides().join("ome.ome.tif")).unwrap();
    assert_eq!(s.vendor(), "ome-tiff");
    assert_eq!(s.mpp(), Some((0.25, 0.25)));
    // Levels: the main image and its SubIFDs, as tifffile lists them.
    let t = &e["per_slide"]["ome.ome.tif"]["tifffile"];
    let page = &t["pages"][0];
    let mut shapes = vec![(page["shape"][1].as_u64().unwrap(), page["shape"][0].as_u64().unwrap())];
    for sub in page["subifds"].as_array().unwrap() {
        shapes.push((sub["shape"][1].as_u64().unwrap(), sub["shape"][0].as_u64().unwrap()));
    }
    assert_eq!(s.levels().iter().map(|l| (l.width, l.height)).collect::<Vec<_>>(), shapes);
    // Level 0 pixels equal OpenSlide's (which reads the main image only).
    for r in e["per_slide"]["ome.ome.tif"]["reads"].as_array().unwrap() {
        if r["level"] != 0 || r.get("error").is_some() || r["name"].as_str().unwrap().starts_with("fractional") {
            continue;
        }
        let (loc, size) = (&r["location"], &r["size"]);
        let got = s
            .read_region(loc[0].as_i64().unwrap(), loc[1].as_i64().unwrap(), 0, size[0].as_u64().unwrap(), size[1].as_u64().unwrap())
            .unwrap();
        assert_eq!(format!("{:x}", Sha256::digest(&got)), r["sha256"].as_str().unwrap(), "ome {}", r["name"]);
    }
}

#[test]
fn broken_slides_give_clear_errors() {
    // Truncated: tiles past the cut fail with the tile, its byte offset and "truncated".
    let truncated = slides().join("truncated.svs");
    match Slide::open(&truncated) {
        Err(e) => assert!(e.to_string().contains("truncated") || e.to_string().contains("offset"), "{e}"),
        Ok(s) => {
            let (w, h) = s.dimensions();
            let e = s.read_region(0, 0, 0, w, h).unwrap_err().to_string();
            assert!(e.contains("truncated") && e.contains("byte offset"), "{e}");
        }
    }
    // No resolution: mpp unknown, overridable.
    let mut s = Slide::open(&slides().join("no_mpp.tif")).unwrap();
    assert_eq!(s.mpp(), None);
    s.apply_overrides(biofm_wsi::SlideOverrides { mpp: Some(0.5), objective_power: Some(20.0) });
    assert_eq!((s.mpp(), s.objective_power()), (Some((0.5, 0.5)), Some(20.0)));

    let dir = tempfile::tempdir().unwrap();
    let not_tiff = dir.path().join("slide.svs");
    std::fs::write(&not_tiff, b"PK\x03\x04 not a slide").unwrap();
    let e = Slide::open(&not_tiff).err().unwrap().to_string();
    assert!(e.contains("not a TIFF"), "{e}");
    let header_only = dir.path().join("cut.tif");
    let bytes = std::fs::read(slides().join("tiled_jpeg.tif")).unwrap();
    std::fs::write(&header_only, &bytes[..64]).unwrap();
    let e = Slide::open(&header_only).err().unwrap().to_string();
    assert!(e.contains("byte offset") && e.contains("truncated"), "{e}");
    // A stripped (untiled) image is not a slide.
    let png_like = dir.path().join("plain.tif");
    let e = Slide::open(&slides().join("missing.tif")).err().unwrap().to_string();
    assert!(e.contains("missing.tif"), "{e}");
    let _ = png_like;
}

#[test]
fn thumbnail_matches_openslide_get_thumbnail() {
    let e = expected();
    let t = &e["per_slide"]["aperio.svs"]["thumbnail_256"];
    let s = Slide::open(&slides().join("aperio.svs")).unwrap();
    let th = s.thumbnail(256, 256).unwrap();
    let want_size = nums(&t["size"]);
    assert_eq!((th.width() as f64, th.height() as f64), (want_size[0], want_size[1]));
    let sha = format!("{:x}", Sha256::digest(th.as_u8().unwrap()));
    if sha != t["sha256_rgb"].as_str().unwrap() {
        let png = biofm_preprocess::image::decode_file(&fixtures().join("thumbnail_aperio.png"), &Default::default()).unwrap();
        let want = png.as_u8().unwrap();
        let diff = th.as_u8().unwrap().iter().zip(want).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
        panic!("thumbnail differs from OpenSlide's by up to {diff} grey levels");
    }
}
