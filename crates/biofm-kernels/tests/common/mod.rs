//! Test utilities shared by the kernel tests: a deterministic RNG, tensor builders and
//! tolerance checks.
#![allow(dead_code)] // each test binary uses a subset

use candle_core::{Device, Tensor};

/// SplitMix64: deterministic, dependency-free random numbers for test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Approximately normal (sum of uniforms), mean 0, std `std`.
    pub fn normal(&mut self, std: f32) -> f32 {
        let s: f32 = (0..4).map(|_| self.uniform()).sum();
        s * std * (3.0f32 / 4.0).sqrt()
    }

    pub fn tensor(&mut self, dims: &[usize], std: f32) -> Tensor {
        let n = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|_| self.normal(std)).collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }
}

pub fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .unwrap()
        .to_dtype(candle_core::DType::F32)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

/// Asserts `fast` matches `reference` elementwise: `|a - b| <= atol + rtol |b|`, with
/// NaN matching NaN and equal infinities matching. Returns the max abs difference.
pub fn assert_close(what: &str, fast: &Tensor, reference: &Tensor, rtol: f64, atol: f64) -> f64 {
    assert_eq!(fast.dims(), reference.dims(), "{what}: shape");
    assert_eq!(fast.dtype(), reference.dtype(), "{what}: dtype");
    let (a, b) = (values(fast), values(reference));
    let mut max_diff = 0f64;
    for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
        if x.is_nan() || y.is_nan() || x.is_infinite() || y.is_infinite() {
            assert!(x.is_nan() && y.is_nan() || x == y, "{what}[{i}]: {x} vs reference {y}");
            continue;
        }
        let d = (x as f64 - y as f64).abs();
        assert!(
            d <= atol + rtol * (y as f64).abs(),
            "{what}[{i}]: {x} vs reference {y} (diff {d:e})"
        );
        max_diff = max_diff.max(d);
    }
    max_diff
}

/// Tolerance relative to the reference's largest magnitude (for sums whose rounding
/// depends on the summation order): `|a - b| <= rel * max|b|`.
pub fn assert_close_scaled(what: &str, fast: &Tensor, reference: &Tensor, rel: f64) -> f64 {
    let scale = values(reference).iter().fold(0f64, |m, &v| m.max((v as f64).abs()));
    assert_close(what, fast, reference, 0.0, rel * scale.max(f64::MIN_POSITIVE))
}
