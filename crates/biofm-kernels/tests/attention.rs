//! Fused attention against the candle-op oracle: packed (strided) q/k/v views, odd
//! head sizes, query blocking, cross-attention and every supported bias shape.

mod common;

use biofm_kernels::{attention, key_padding_bias, naive};
use candle_core::{DType, Device, Tensor};
use common::{assert_close_scaled, values, Rng};

/// Packed qkv projection output `[b, n, 3d]` split into strided views, as the model code does.
fn packed_qkv(rng: &mut Rng, b: usize, n: usize, d: usize) -> (Tensor, Tensor, Tensor) {
    let qkv = rng.tensor(&[b, n, 3 * d], 1.0);
    let q = qkv.narrow(2, 0, d).unwrap();
    let k = qkv.narrow(2, d, d).unwrap();
    let v = qkv.narrow(2, 2 * d, d).unwrap();
    (q, k, v)
}

fn check(what: &str, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, bias: Option<&Tensor>) {
    let d = q.dim(2).unwrap();
    let scale = ((d / heads) as f64).powf(-0.5);
    let fast = attention(q, k, v, heads, scale, bias).unwrap();
    let slow = naive::attention(q, k, v, heads, scale, bias).unwrap();
    assert_close_scaled(what, &fast, &slow, 1e-6);
}

#[test]
fn self_attention_packed_views() {
    let mut rng = Rng::new(40);
    // (batch, tokens, width, heads): head dims 64, 12, 16, 1, 7; N over the 128-query block.
    for (b, n, d, h) in [
        (2, 197, 768, 12),
        (3, 7, 36, 3),
        (1, 257, 80, 5),
        (1, 1, 64, 1),
        (2, 130, 14, 2),
    ] {
        let (q, k, v) = packed_qkv(&mut rng, b, n, d);
        assert!(n == 1 || !q.is_contiguous());
        check(&format!("b{b} n{n} d{d} h{h}"), &q, &k, &v, h, None);
    }
}

#[test]
fn cross_attention_contiguous_inputs() {
    let mut rng = Rng::new(41);
    let q = rng.tensor(&[3, 5, 24], 1.0);
    let k = rng.tensor(&[3, 9, 24], 1.0);
    let v = rng.tensor(&[3, 9, 24], 1.0);
    check("cross", &q, &k, &v, 4, None);
    // Transposed layouts (last-dim stride != 1).
    let qt = rng.tensor(&[3, 24, 5], 1.0).transpose(1, 2).unwrap();
    check("cross transposed q", &qt, &k, &v, 2, None);
}

#[test]
fn key_padding_masks_with_variable_lengths() {
    let mut rng = Rng::new(42);
    let (b, n, d, h) = (3, 7, 36, 3);
    let (q, k, v) = packed_qkv(&mut rng, b, n, d);
    // Lengths 7, 4 and 1: the last sequence has every key padded but the first.
    let lens = [7usize, 4, 1];
    let mask: Vec<u8> = lens
        .iter()
        .flat_map(|&l| (0..n).map(move |j| u8::from(j < l)))
        .collect();
    let mask = Tensor::from_vec(mask, (b, n), &Device::Cpu).unwrap();
    let bias = key_padding_bias(&mask).unwrap();
    assert_eq!(bias.dims(), &[b, 1, 1, n]);
    check("padding mask", &q, &k, &v, h, Some(&bias));
    // With one key left, every query of sequence 2 returns that key's value.
    let out = attention(&q, &k, &v, h, 0.5, Some(&bias)).unwrap();
    let got = values(&out.get(2).unwrap());
    let v0 = values(&v.get(2).unwrap().get(0).unwrap());
    for i in 0..n {
        for j in 0..d {
            assert!((got[i * d + j] - v0[j]).abs() < 1e-6, "query {i} col {j}");
        }
    }
}

#[test]
fn full_and_broadcast_biases() {
    let mut rng = Rng::new(43);
    let (b, n, d, h) = (2, 11, 40, 4);
    let (q, k, v) = packed_qkv(&mut rng, b, n, d);
    // Per (batch, head, query, key); shared relative-position bias [1, h, n, n]; [n, n];
    // a per-query column bias [b, 1, n, 1] (stride 0 along keys).
    let full = rng.tensor(&[b, h, n, n], 2.0);
    let rel = rng.tensor(&[1, h, n, n], 2.0);
    let square = rng.tensor(&[n, n], 2.0);
    let column = rng.tensor(&[b, 1, n, 1], 2.0);
    let transposed = rng.tensor(&[b, h, n, n], 2.0).transpose(2, 3).unwrap();
    for (name, bias) in [
        ("full", full),
        ("rel", rel),
        ("square", square),
        ("column", column),
        ("transposed", transposed),
    ] {
        check(name, &q, &k, &v, h, Some(&bias));
    }
}

#[test]
fn large_logits_stay_finite() {
    let mut rng = Rng::new(44);
    let (q, k, v) = packed_qkv(&mut rng, 1, 33, 16);
    let q = (q * 300.0).unwrap();
    let out = attention(&q, &k, &v, 2, 0.25, None).unwrap();
    assert!(values(&out).iter().all(|x| x.is_finite()));
    check("large logits", &q, &k, &v, 2, None);
}

#[test]
fn bias_must_broadcast() {
    let mut rng = Rng::new(45);
    let (q, k, v) = packed_qkv(&mut rng, 2, 5, 8);
    let bad = Tensor::zeros((3, 1, 1, 5), DType::F32, &Device::Cpu).unwrap();
    let err = attention(&q, &k, &v, 2, 1.0, Some(&bad)).unwrap_err().to_string();
    assert!(err.contains("[2, 2, 5, 5]") && err.contains("[3, 1, 1, 5]"), "{err}");
}
