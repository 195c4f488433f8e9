//! Whole-slide jobs on the generated test slides: features against the reference
//! toolkit's route (TRIDENT `extract_patch_features`: OpenSlide read, PIL resize, UNI's
//! transform, timm) with a tiny random-weight UNI-architecture model; job layout,
//! resume, locks and broken slides.

use biofm_formats::features::read_features;
use biofm_models::{LoadOptions, Model, PatchEncoder};
use biofm_pipelines::wsi::{claim, run_job, Claim, JobDirs, JobOptions, SlideOutcome};
use biofm_wsi::{PatchSpec, TissueOptions};
use candle_core::DType;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn slides() -> PathBuf {
    biofm_testdata::slides()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wsi_features")
}

/// The tiny model with UNI's contract (patch size, magnification, transform, kwargs).
fn encoder() -> PatchEncoder {
    let opts = LoadOptions::from_env(DType::F32, false).unwrap();
    Model::load_patch_encoder("uni", Some(&fixtures().join("model")), &opts).unwrap()
}

fn options(spec: PatchSpec) -> JobOptions {
    JobOptions {
        spec,
        tissue: TissueOptions::default(),
        encoder_name: "uni".into(),
        batch_size: 5,
        continue_on_error: true,
        slide_embedding: false,
        overrides: Default::default(),
        default_mpp: None,
        stale_after: Duration::from_secs(600),
        progress: false,
    }
}

fn spec(mag: f64, size: u32, overlap: u32, min_tissue: f64) -> PatchSpec {
    PatchSpec { magnification: mag, patch_size: size, overlap, min_tissue }
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn features_and_coords_match_the_reference_route() {
    let enc = encoder();
    assert_eq!(enc.patch_size, 256);
    assert_eq!(enc.magnification, 20.0);
    for (slide, s, reference) in [
        ("tiled_jpeg.tif", spec(20.0, 256, 0, 0.0), "tiled_jpeg__20x_256px_0px.h5"),
        // 10x from a 20x slide: 448 px read at level 0, PIL bicubic to 224.
        ("aperio.svs", spec(10.0, 224, 0, 0.25), "aperio__10x_224px_0px.h5"),
    ] {
        let job = tempfile::tempdir().unwrap();
        let mut opts = options(s);
        opts.slide_embedding = true;
        let mut outcomes = Vec::new();
        let summary = run_job(&[slides().join(slide)], job.path(), &enc, &opts, |_, o| outcomes.push(o.clone())).unwrap();
        assert_eq!(summary.done, 1, "{slide}: {outcomes:?}");
        let dirs = JobDirs::new(job.path(), &s, "uni");
        let name = slide.split('.').next().unwrap();
        let ours = dirs.features_file(name);
        assert!(ours.starts_with(job.path().join(biofm_pipelines::wsi::patch_dir_name(&s)).join("features_uni")));
        let (f, dim, coords, attrs) = read_features(&ours).unwrap();
        let (rf, rdim, rcoords, rattrs) = read_features(&fixtures().join(reference)).unwrap();
        assert_eq!(coords, rcoords, "{slide}: coordinates differ from the reference tiling");
        assert_eq!(dim, rdim);
        let err = max_abs(&f, &rf);
        assert!(err <= 1e-4, "{slide}: features differ from the reference by {err}");
        eprintln!("{slide}: {} patches, max abs diff {err:e}", coords.len());
        // The coords attributes slide encoders read.
        assert_eq!(attrs.patch_size_level0, rattrs.patch_size_level0);
        assert_eq!(attrs.patch_size, rattrs.patch_size);
        assert_eq!(attrs.level0_magnification, rattrs.level0_magnification);
        assert_eq!(attrs.target_magnification, rattrs.target_magnification);
        assert_eq!((attrs.level0_width, attrs.level0_height), (rattrs.level0_width, rattrs.level0_height));
        assert_eq!(attrs.name, rattrs.name);
        // Side outputs: patches file, tissue outlines, slide embedding = mean of rows.
        assert!(dirs.patches.join(format!("{name}_patches.h5")).is_file());
        assert!(dirs.geojson.join(format!("{name}.geojson")).is_file());
        assert!(dirs.contours.join(format!("{name}.png")).is_file());
        let h = hdf5::File::open(dirs.slide_features.join(format!("{name}.h5"))).unwrap();
        let mean: Vec<f32> = h.dataset("features").unwrap().read_raw().unwrap();
        let n = coords.len() as f32;
        let want: Vec<f32> = (0..dim).map(|j| f.chunks_exact(dim).map(|r| r[j]).sum::<f32>() / n).collect();
        assert!(max_abs(&mean, &want) < 1e-5);
        // No lock or temporary file is left.
        assert_eq!(std::fs::read_dir(&dirs.locks).unwrap().count(), 0);
        let partials = std::fs::read_dir(&dirs.features).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".partial")).count();
        assert_eq!(partials, 0);
    }
}

#[test]
fn a_slide_without_tissue_gets_an_empty_feature_file() {
    let enc = encoder();
    let job = tempfile::tempdir().unwrap();
    let s = spec(20.0, 256, 0, 0.0);
    let summary = run_job(&[slides().join("tiled_raw.tif")], job.path(), &enc, &options(s), |_, _| {}).unwrap();
    assert_eq!(summary.done, 1);
    let (f, dim, coords, _) = read_features(&JobDirs::new(job.path(), &s, "uni").features_file("tiled_raw")).unwrap();
    assert_eq!((f.len(), dim, coords.len()), (0, 48, 0));
}

#[test]
fn broken_slides_fail_clearly_and_the_job_goes_on() {
    let enc = encoder();
    let job = tempfile::tempdir().unwrap();
    let s = spec(20.0, 256, 0, 0.0);
    let list: Vec<PathBuf> = ["truncated.svs", "no_mpp.tif", "corrupt_tile.tif", "bigtiff_lzw.tif"].iter().map(|n| slides().join(n)).collect();
    let mut seen = Vec::new();
    let summary = run_job(&list, job.path(), &enc, &options(s), |p, o| seen.push((p.to_path_buf(), o.clone()))).unwrap();
    assert_eq!((summary.done, summary.failed), (1, 3), "{seen:?}");
    let reason = |i: usize| match &seen[i].1 {
        SlideOutcome::Failed { reason } => reason.clone(),
        other => panic!("{:?}: {other:?}", seen[i].0),
    };
    assert!(reason(0).contains("truncated") || reason(0).contains("past the end"), "{}", reason(0));
    assert!(reason(1).contains("mpp") && reason(1).contains("--overrides"), "{}", reason(1));
    assert!(reason(2).contains("tile"), "{}", reason(2));
    let dirs = JobDirs::new(job.path(), &s, "uni");
    // Failed slides have a status with the reason and no feature file.
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dirs.status.join("no_mpp.json")).unwrap()).unwrap();
    assert_eq!(status["state"], "failed");
    assert!(!dirs.features_file("no_mpp").exists());
    // Without the flag the job stops at the first failure, naming the slide.
    let job2 = tempfile::tempdir().unwrap();
    let mut opts = options(s);
    opts.continue_on_error = false;
    let e = run_job(&list, job2.path(), &enc, &opts, |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("truncated.svs") && e.contains("--continue-on-error"), "{e}");
    // The mpp override fixes the slide without one; finished slides are skipped.
    let mut opts = options(s);
    opts.overrides.insert("no_mpp".into(), biofm_wsi::SlideOverrides { mpp: Some(0.5), objective_power: None });
    let mut seen = Vec::new();
    let summary = run_job(&list[1..2], job.path(), &enc, &opts, |_, o| seen.push(o.clone())).unwrap();
    assert_eq!(summary.done, 1, "{seen:?}");
    let summary = run_job(&list, job.path(), &enc, &opts, |_, _| {}).unwrap();
    assert_eq!((summary.skipped, summary.failed), (2, 2));
}

#[test]
fn locks_are_exclusive_and_stale_ones_are_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path();
    let Claim::Acquired(lock) = claim(locks, "s1", Duration::from_secs(600), |_| panic!("nothing stale")).unwrap() else {
        panic!("first claim must succeed")
    };
    // Held by a live process (this one): busy.
    assert!(matches!(claim(locks, "s1", Duration::from_secs(600), |_| {}).unwrap(), Claim::Held(_)));
    drop(lock);
    assert!(!locks.join("s1.lock").exists());
    // A lock left by a process that no longer exists on this host is taken over.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let dead = serde_json::json!({"host": host, "pid": 999_999_999u32, "time": 0.0});
    std::fs::write(locks.join("s2.lock"), dead.to_string()).unwrap();
    std::fs::write(locks.join(".s2.h5.x.partial"), b"half").unwrap();
    let mut took = false;
    assert!(matches!(claim(locks, "s2", Duration::from_secs(600), |_| took = true).unwrap(), Claim::Acquired(_)));
    assert!(took);
    // A lock from another host is respected until it is older than the limit.
    let other = serde_json::json!({"host": "elsewhere", "pid": 1, "time": 0.0});
    std::fs::write(locks.join("s3.lock"), other.to_string()).unwrap();
    assert!(matches!(claim(locks, "s3", Duration::from_secs(600), |_| {}).unwrap(), Claim::Held(h) if h.contains("elsewhere")));
    let f = std::fs::File::options().write(true).open(locks.join("s3.lock")).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600)).unwrap();
    drop(f);
    assert!(matches!(claim(locks, "s3", Duration::from_secs(600), |_| {}).unwrap(), Claim::Acquired(_)));
    // A lock without readable content (not biofm's) is respected for a minute only.
    std::fs::write(locks.join("s4.lock"), b"").unwrap();
    assert!(matches!(claim(locks, "s4", Duration::from_secs(600), |_| {}).unwrap(), Claim::Held(_)));
    let f = std::fs::File::options().write(true).open(locks.join("s4.lock")).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(120)).unwrap();
    drop(f);
    let held = claim(locks, "s4", Duration::from_secs(600), |_| {}).unwrap();
    assert!(matches!(held, Claim::Acquired(_)));
    // A claimed lock holds its owner's host and pid from the moment it exists.
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(locks.join("s4.lock")).unwrap()).unwrap();
    assert_eq!(v["pid"].as_u64().unwrap(), u64::from(std::process::id()));
    // No private temporary names are left in the lock folder.
    let stray: Vec<_> = std::fs::read_dir(locks).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().ends_with(".tmp")).collect();
    assert!(stray.is_empty(), "{stray:?}");
    drop(held);
    assert!(!locks.join("s4.lock").exists());
}

#[test]
fn slides_with_the_same_name_are_refused() {
    let enc = encoder();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(slides().join("aperio.svs"), dir.path().join("case1.svs")).unwrap();
    std::os::unix::fs::symlink(slides().join("tiled_jpeg.tif"), dir.path().join("case1.tif")).unwrap();
    let list = biofm_pipelines::wsi::discover_slides(&[dir.path().to_path_buf()], false).unwrap();
    assert_eq!(list.len(), 2);
    // Nested folders (one per slide) are searched with `recursive`.
    let nested = dir.path().join("more/case2");
    std::fs::create_dir_all(&nested).unwrap();
    std::os::unix::fs::symlink(slides().join("aperio.svs"), nested.join("case2.svs")).unwrap();
    std::fs::write(nested.join("notes.txt"), "x").unwrap();
    assert_eq!(biofm_pipelines::wsi::discover_slides(&[dir.path().to_path_buf()], false).unwrap().len(), 2);
    let all = biofm_pipelines::wsi::discover_slides(&[dir.path().to_path_buf()], true).unwrap();
    assert_eq!(all.len(), 3);
    assert!(all[2].ends_with("more/case2/case2.svs"), "{all:?}");
    let e = biofm_pipelines::wsi::discover_slides(&[dir.path().join("nope")], false).unwrap_err().to_string();
    assert!(e.contains("nope"), "{e}");
    let e = run_job(&list, &dir.path().join("job"), &enc, &options(spec(20.0, 256, 0, 0.0)), |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("case1.svs") && e.contains("case1.tif") && e.contains("unique"), "{e}");
    assert_eq!(biofm_pipelines::wsi::slide_name(Path::new("a/b.ome.tif")), "b");
    assert_eq!(biofm_pipelines::wsi::slide_name(Path::new("a/TCGA-XX.svs")), "TCGA-XX");
}

#[test]
fn bf16_features_agree_with_the_reference_by_cosine() {
    let opts = LoadOptions::from_env(DType::BF16, false).unwrap();
    let enc = Model::load_patch_encoder("uni", Some(&fixtures().join("model")), &opts).unwrap();
    let job = tempfile::tempdir().unwrap();
    let s = spec(20.0, 256, 0, 0.0);
    let summary = run_job(&[slides().join("tiled_jpeg.tif")], job.path(), &enc, &options(s), |_, _| {}).unwrap();
    assert_eq!(summary.done, 1);
    let (f, dim, _, _) = read_features(&JobDirs::new(job.path(), &s, "uni").features_file("tiled_jpeg")).unwrap();
    let (rf, _, _, _) = read_features(&fixtures().join("tiled_jpeg__20x_256px_0px.h5")).unwrap();
    let worst = f
        .chunks_exact(dim)
        .zip(rf.chunks_exact(dim))
        .map(|(a, b)| {
            let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
            let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
            dot / (na * nb)
        })
        .fold(1.0f32, f32::min);
    eprintln!("bf16 vs reference f32: worst cosine {worst}");
    assert!(worst >= 0.999, "worst per-patch cosine {worst}");
}
