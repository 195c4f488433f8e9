//! Patch grids against the reference toolkit: TRIDENT's `WSI.extract_tissue_coords`
//! (OpenSlide reader, GEOS geometry) on the generated test slides, with the tissue
//! outlines biofm detects (fixtures from tools/reference/gen_patch_fixtures.py).

use biofm_wsi::patching::level0_magnification;
use biofm_wsi::{detect_tissue, PatchPlan, PatchSpec, Slide, SlideOverrides, TissueOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn slides() -> PathBuf {
    biofm_testdata::slides()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/patching")
}

fn load() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("coords.json")).unwrap()).unwrap()
}

/// Opens a slide with the mpp the reference run was given, if any.
fn open(meta: &Value, file: &str) -> Slide {
    let mut s = Slide::open(&slides().join(file)).unwrap();
    if let Some(m) = meta["slides"][file]["mpp_override"].as_f64() {
        s.apply_overrides(SlideOverrides { mpp: Some(m), objective_power: None });
    }
    s
}

fn rings_of(geojson: &Value) -> Vec<Vec<(f64, f64)>> {
    geojson["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let ring = f["geometry"]["coordinates"][0].as_array().unwrap();
            let mut pts: Vec<(f64, f64)> = ring.iter().map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap())).collect();
            pts.pop(); // closing point
            pts
        })
        .collect()
}

#[test]
fn tissue_outlines_are_the_ones_the_fixtures_were_made_with() {
    let meta = load();
    for (file, info) in meta["slides"].as_object().unwrap() {
        let s = open(&meta, file);
        let m = detect_tissue(&s, &TissueOptions::default()).unwrap();
        let path = fixtures().join(info["tissue"].as_str().unwrap());
        let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(rings_of(&m.to_geojson()), rings_of(&want), "{file}: tissue outlines changed; regenerate the patching fixtures");
    }
}

#[test]
fn coordinates_match_the_reference_tiling() {
    let meta = load();
    let cases = meta["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    let mut compared = 0;
    for case in cases {
        let file = case["slide"].as_str().unwrap();
        let s = open(&meta, file);
        let spec = PatchSpec {
            magnification: case["target_mag"].as_f64().unwrap(),
            patch_size: case["patch_size"].as_u64().unwrap() as u32,
            overlap: case["overlap"].as_u64().unwrap() as u32,
            min_tissue: case["min_tissue_proportion"].as_f64().unwrap(),
        };
        let what = format!("{file} {spec:?}");
        let plan = PatchPlan::for_slide(&s, spec).unwrap();
        let p = &case["patcher"];
        assert_eq!(level0_magnification(&s).unwrap(), case["level0_magnification"].as_f64().unwrap(), "{what}");
        assert_eq!(plan.patch_size_src, p["patch_size_src"].as_u64().unwrap(), "{what}");
        assert_eq!(plan.overlap_src, p["overlap_src"].as_u64().unwrap(), "{what}");
        assert_eq!(plan.patch_size_level0(), case["attrs"]["patch_size_level0"].as_i64().unwrap(), "{what}");
        // OpenSlide sees the same pyramid except for OME-TIFF (it reads only the base
        // image there), so the read level is compared where the pyramids agree.
        if s.levels().len() as u64 == meta["slides"][file]["level_count"].as_u64().unwrap() {
            assert_eq!(plan.level as u64, p["level"].as_u64().unwrap(), "{what}");
            assert_eq!(plan.patch_size_level, p["patch_size_level"].as_u64().unwrap(), "{what}");
        }
        let got = match case["mask"].as_str() {
            None => plan.grid(),
            Some(geo) => {
                let g: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join(geo)).unwrap()).unwrap();
                plan.tissue_patches(&rings_of(&g))
            }
        };
        let want: Vec<[i64; 2]> =
            case["coords"].as_array().unwrap().iter().map(|c| [c[0].as_i64().unwrap(), c[1].as_i64().unwrap()]).collect();
        if got != want {
            let extra: Vec<_> = got.iter().filter(|c| !want.contains(c)).collect();
            let missing: Vec<_> = want.iter().filter(|c| !got.contains(c)).collect();
            panic!("{what}: {} patches vs the reference's {}; extra {extra:?}, missing {missing:?}", got.len(), want.len());
        }
        compared += 1;
    }
    assert_eq!(compared, cases.len());
}

#[test]
fn missing_pixel_size_says_how_to_give_it() {
    let s = Slide::open(&slides().join("no_mpp.tif")).unwrap();
    let spec = PatchSpec { magnification: 20.0, patch_size: 256, overlap: 0, min_tissue: 0.0 };
    let e = PatchPlan::for_slide(&s, spec).unwrap_err().to_string();
    assert!(e.contains("no_mpp.tif") && e.contains("--mpp") && e.contains("--overrides"), "{e}");
}

#[test]
fn patches_are_read_from_the_chosen_level_and_resized() {
    let meta = load();
    let s = open(&meta, "aperio.svs");
    // 10x from a 20x slide: 448 px at level 0 (no 2x level), resized to 224.
    let spec = PatchSpec { magnification: 10.0, patch_size: 224, overlap: 0, min_tissue: 0.0 };
    let plan = PatchPlan::for_slide(&s, spec).unwrap();
    assert_eq!((plan.level, plan.patch_size_level), (0, 448));
    let img = plan.read_patch(&s, 137, 211).unwrap();
    assert_eq!(img.size(), (224, 224));
    // Same size at 20x: the patch is exactly the region's RGB.
    let spec = PatchSpec { magnification: 20.0, patch_size: 256, overlap: 0, min_tissue: 0.0 };
    let plan = PatchPlan::for_slide(&s, spec).unwrap();
    let img = plan.read_patch(&s, 2900, 2100).unwrap();
    let rgba = s.read_region(2900, 2100, 0, 256, 256).unwrap();
    let rgb: Vec<u8> = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    assert_eq!(img.as_u8().unwrap(), &rgb[..]);
    // Past the slide's edge the pixels are black (alpha dropped, as PIL's convert does).
    assert_eq!(&img.as_u8().unwrap()[(255 * 256 + 255) * 3..], &[0, 0, 0]);
}
