//! Code shared by the timm integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use biofm_weights::Weights;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Fixture directory of one tiny timm model (`tests/fixtures/timm/<name>`), failing with
/// the command that creates it when it is missing.
pub fn fixture(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/timm")
        .join(name);
    assert!(
        dir.join("config.json").is_file(),
        "missing fixture {}; create it with tools/reference/.venv/bin/python tools/reference/gen_vit_fixtures.py",
        dir.display()
    );
    dir
}

/// All tensors of a safetensors file, as f32 on the CPU.
pub fn read_all(path: &Path) -> HashMap<String, Tensor> {
    let w = Weights::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let keys: Vec<String> = w.keys().map(str::to_string).collect();
    keys.into_iter()
        .map(|k| {
            (
                k.clone(),
                w.get_unchecked(&k, DType::F32, &Device::Cpu).unwrap(),
            )
        })
        .collect()
}

/// Largest absolute difference; panics on a shape mismatch.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// A fresh, empty directory under Cargo's per-target temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("timm_tests")
        .join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Copies a fixture's config.json into a scratch directory and writes `tensors` there
/// as model.safetensors.
pub fn hub_dir_with(name: &str, fixture_name: &str, tensors: &HashMap<String, Tensor>) -> PathBuf {
    let dir = scratch_dir(name);
    std::fs::copy(
        fixture(fixture_name).join("config.json"),
        dir.join("config.json"),
    )
    .unwrap();
    candle_core::safetensors::save(tensors, dir.join("model.safetensors")).unwrap();
    dir
}
