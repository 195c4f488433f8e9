//! The fast kernels against PyTorch 2.15 results, from
//! `tests/fixtures/kernels.safetensors` (made by `tools/reference/gen_kernel_fixtures.py`).

mod common;

use biofm_kernels::{activation, attention, erf, layer_norm, linear, linear_act, softmax_last_dim, Activation};
use candle_core::{DType, Device, Tensor};
use common::{assert_close, values};
use std::collections::HashMap;

fn fixtures() -> HashMap<String, Tensor> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kernels.safetensors");
    assert!(
        path.exists(),
        "missing {}; create it with: tools/reference/.venv/bin/python tools/reference/gen_kernel_fixtures.py",
        path.display()
    );
    candle_core::safetensors::load(&path, &Device::Cpu).unwrap()
}

fn get<'a>(f: &'a HashMap<String, Tensor>, name: &str) -> &'a Tensor {
    f.get(name)
        .unwrap_or_else(|| panic!("fixture tensor {name} missing; regenerate the fixtures"))
}

#[test]
fn activations_match_pytorch() {
    let f = fixtures();
    let x = get(&f, "act.x");
    let xs = values(x);
    for (act, key) in [
        (Activation::Gelu, "act.gelu"),
        (Activation::GeluTanh, "act.gelu_tanh"),
        (Activation::QuickGelu, "act.quick_gelu"),
        (Activation::Silu, "act.silu"),
        (Activation::Relu, "act.relu"),
    ] {
        let got = values(&activation(x, act).unwrap());
        let want = values(get(&f, key));
        let mut max_diff = 0f64;
        for ((&x, &g), &w) in xs.iter().zip(&got).zip(&want) {
            let d = (g as f64 - w as f64).abs();
            // Both sides are within ~1e-7 |x| of exact; PyTorch's (1 + erf/tanh) cancels
            // for negative x, so the bound scales with |x| there.
            assert!(
                d <= 1e-6 * (w as f64).abs() + 2e-7 * (x as f64).abs(),
                "{act:?}({x}): {g} vs torch {w}"
            );
            max_diff = max_diff.max(d);
        }
        println!("{act:?}: max |diff| vs torch {max_diff:.2e}");
    }
}

#[test]
fn gelu_and_erf_match_pytorch_float64() {
    let f = fixtures();
    let x = get(&f, "act.x");
    let xs = values(x);
    let gelu = values(&activation(x, Activation::Gelu).unwrap());
    let erf_out = values(&erf(x).unwrap());
    let gelu64 = get(&f, "act.gelu_f64").to_vec1::<f64>().unwrap();
    let erf64 = get(&f, "act.erf_f64").to_vec1::<f64>().unwrap();
    for i in 0..xs.len() {
        let x = xs[i] as f64;
        assert!(
            (erf_out[i] as f64 - erf64[i]).abs() <= 1e-7,
            "erf({x}): {} vs {}",
            erf_out[i],
            erf64[i]
        );
        let tol = 0.5 * x.abs() * 1e-7 + f32::EPSILON as f64 * gelu64[i].abs();
        assert!(
            (gelu[i] as f64 - gelu64[i]).abs() <= tol,
            "gelu({x}): {} vs {}",
            gelu[i],
            gelu64[i]
        );
    }
}

#[test]
fn linear_layer_norm_softmax_match_pytorch() {
    let f = fixtures();
    let (x, w, b) = (get(&f, "linear.x"), get(&f, "linear.weight"), get(&f, "linear.bias"));
    let d = assert_close(
        "linear",
        &linear(x, w, Some(b)).unwrap(),
        get(&f, "linear.out"),
        1e-5,
        1e-5,
    );
    println!("linear: max |diff| vs torch {d:.2e}");
    let fused = linear_act(x, w, Some(b), Activation::Relu).unwrap();
    assert_close("linear_act", &fused, &get(&f, "linear.out").relu().unwrap(), 1e-5, 1e-5);

    let (x, w, b) = (
        get(&f, "layer_norm.x"),
        get(&f, "layer_norm.weight"),
        get(&f, "layer_norm.bias"),
    );
    let ours = layer_norm(x, w, Some(b), 1e-6).unwrap();
    let d = assert_close("layer_norm", &ours, get(&f, "layer_norm.out"), 1e-5, 1e-5);
    // The row offset by 1000 costs PyTorch's f32 kernel ~5e-6 against float64; the
    // shifted two-pass statistics stay at f32 rounding level.
    let d64 = assert_close(
        "layer_norm vs f64",
        &ours.to_dtype(DType::F64).unwrap(),
        get(&f, "layer_norm.out_f64"),
        0.0,
        2e-6,
    );
    println!("layer_norm: max |diff| vs torch {d:.2e}, vs torch float64 {d64:.2e}");

    let x = get(&f, "softmax.x");
    let d = assert_close(
        "softmax",
        &softmax_last_dim(x).unwrap(),
        get(&f, "softmax.out"),
        1e-5,
        1e-7,
    );
    println!("softmax: max |diff| vs torch {d:.2e}");
}

#[test]
fn attention_matches_pytorch_sdpa() {
    let f = fixtures();
    let qkv = get(&f, "attention.qkv");
    let d = qkv.dim(2).unwrap() / 3;
    let (q, k, v) = (
        qkv.narrow(2, 0, d).unwrap(),
        qkv.narrow(2, d, d).unwrap(),
        qkv.narrow(2, 2 * d, d).unwrap(),
    );
    let bias = get(&f, "attention.bias");
    assert_eq!(bias.dtype(), DType::F32);
    let heads = 4;
    let out = attention(&q, &k, &v, heads, ((d / heads) as f64).powf(-0.5), Some(bias)).unwrap();
    let diff = assert_close("attention", &out, get(&f, "attention.out"), 1e-5, 1e-5);
    println!("attention: max |diff| vs torch {diff:.2e}");
}
