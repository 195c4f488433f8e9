//! `resample_abs_pos_embed` against timm/PyTorch (`F.interpolate(mode="bicubic",
//! antialias=True)` on the patch grid, prefix tokens kept): up- and downsampling,
//! square and non-square grids, one dimension unchanged, 1x1 grids, one-row and
//! one-column outputs, the no-resample path and timm's square default.
//! Fixtures: tools/reference/gen_vit_fixtures.py.

use biofm_nn::pos_embed::resample_abs_pos_embed;
use biofm_weights::Weights;
use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vit");
    assert!(
        dir.join("pos_embed_resample.json").is_file(),
        "missing {}/pos_embed_resample.json; create it with tools/reference/.venv/bin/python tools/reference/gen_vit_fixtures.py",
        dir.display()
    );
    dir
}

fn pair(v: &Value) -> (usize, usize) {
    (
        v[0].as_u64().unwrap() as usize,
        v[1].as_u64().unwrap() as usize,
    )
}

#[test]
fn matches_torch_antialiased_bicubic() {
    let dir = fixture_dir();
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("pos_embed_resample.json")).unwrap(),
    )
    .unwrap();
    let w = Weights::open(dir.join("pos_embed_resample.safetensors")).unwrap();
    let get = |k: &str| w.get_unchecked(k, DType::F32, &Device::Cpu).unwrap();
    let cases = meta["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    let mut worst = 0f32;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let old = if case["old_size"].is_null() {
            None
        } else {
            Some(pair(&case["old_size"]))
        };
        let new = pair(&case["new_size"]);
        let prefix = case["num_prefix_tokens"].as_u64().unwrap() as usize;
        let input = get(&format!("{name}.input"));
        let expected = get(&format!("{name}.output"));
        let out = resample_abs_pos_embed(&input, new, old, prefix).unwrap();
        assert_eq!(out.dims(), expected.dims(), "{name}");
        let diff = (&out - &expected)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap();
        let diff = diff.to_scalar::<f32>().unwrap();
        println!(
            "{name}: {:?} -> {new:?} (prefix {prefix}): max abs diff {diff:.3e}",
            old
        );
        assert!(diff <= 1e-6, "{name}: max abs diff {diff:e}");
        worst = worst.max(diff);
    }
    println!("worst: {worst:.3e}");
}

#[test]
fn prefix_tokens_are_kept_and_dtype_is_preserved() {
    let pe = Tensor::arange(0f32, (2 + 16) as f32 * 3.0, &Device::Cpu)
        .unwrap()
        .reshape((1, 2 + 16, 3))
        .unwrap();
    let pe16 = pe.to_dtype(DType::F16).unwrap();
    let out = resample_abs_pos_embed(&pe16, (2, 3), Some((4, 4)), 2).unwrap();
    assert_eq!(out.dtype(), DType::F16);
    assert_eq!(out.dims(), &[1, 2 + 6, 3]);
    let head: Vec<f32> = out
        .narrow(1, 0, 2)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(head, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
}

#[test]
fn token_counts_that_are_not_a_grid_are_errors() {
    let pe = Tensor::zeros((1, 1 + 10, 4), DType::F32, &Device::Cpu).unwrap();
    let err = format!(
        "{:#}",
        resample_abs_pos_embed(&pe, (4, 4), None, 1).unwrap_err()
    );
    assert!(
        err.contains("10 grid positions") && err.contains("3x3"),
        "{err}"
    );
    let err = format!(
        "{:#}",
        resample_abs_pos_embed(&pe, (4, 4), Some((2, 4)), 1).unwrap_err()
    );
    assert!(err.contains("2x4"), "{err}");
    let bad = Tensor::zeros((2, 5, 4), DType::F32, &Device::Cpu).unwrap();
    assert!(resample_abs_pos_embed(&bad, (2, 2), None, 1).is_err());
}
