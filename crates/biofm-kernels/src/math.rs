//! Branch-free `f32` lane functions (exp, erf, activations) and the row kernels built on
//! them. Everything here is `#[inline(always)]` and generic over [`MulAdd`], so that
//! [`crate::simd::run`] compiles it once per instruction set (see `simd.rs`).
//!
//! Accuracy (measured by the tests against f64 references):
//! * `exp`: Cody–Waite reduction `x = n ln2 + r`, degree-7 Taylor polynomial on
//!   `|r| <= ln2/2` (truncation 5e-9 relative), scaling by `2^n` in two steps so that
//!   results stay accurate into the subnormal range; max error 0.65 ulp for normal results.
//! * `erf`: `|z| < 0.9`: `z (2/sqrt(pi) + z^2 Q(z^2))`; `|z| >= 0.9`:
//!   `1 - exp(-z^2) G(1/(1 + |z|/2))`. The coefficients are near-minimax fits made by
//!   `scripts/fit_erf.py`; max abs error 7.7e-8 (<= 1.3 ulp of the result) in that
//!   script's simulation of the f32 evaluation, 6.3e-8 on the tests' grid.

use crate::simd::{MulAdd, SimdFn};
use std::mem::MaybeUninit;

/// A unary element-wise operation with a vectorised lane function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unary {
    Act(crate::Activation),
    Erf,
}

/// Horner evaluation of `c[0] + c[1] x + ... + c[N-1] x^(N-1)`.
#[inline(always)]
fn poly<M: MulAdd, const N: usize>(x: f32, c: &[f32; N]) -> f32 {
    let mut acc = c[N - 1];
    for &ci in c[..N - 1].iter().rev() {
        acc = M::mul_add(acc, x, ci);
    }
    acc
}

/// `2^n` for `n` in `[-126, 127]`, built from the exponent bits.
#[inline(always)]
fn pow2i(n: i32) -> f32 {
    f32::from_bits((n.wrapping_add(127) as u32) << 23)
}

/// `if x > hi { hi } else if x < lo { lo } else { x }`; NaN passes through.
#[inline(always)]
fn clamp_keep_nan(x: f32, lo: f32, hi: f32) -> f32 {
    let x = if x < lo { lo } else { x };
    if x > hi {
        hi
    } else {
        x
    }
}

const EXP_TAYLOR: [f32; 8] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
];
/// `ln 2` split so that `n * LN2_HI` is exact for `|n| < 512`.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;

/// `e^x` (NaN in, NaN out; overflows to `inf` above ~88.72, underflows through the
/// subnormals to 0 below ~-103.97).
#[inline(always)]
pub(crate) fn exp<M: MulAdd>(x: f32) -> f32 {
    // Adding 1.5 * 2^23 rounds to an integer, which then sits in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let x = clamp_keep_nan(x, -104.0, 89.0);
    let t = M::mul_add(x, std::f32::consts::LOG2_E, MAGIC);
    let n = t - MAGIC;
    let r = M::mul_add(n, -LN2_HI, x);
    let r = M::mul_add(n, -LN2_LO, r);
    let p = poly::<M, 8>(r, &EXP_TAYLOR);
    // n in [-150, 129]: apply 2^n as 2^(n/2) * 2^(n - n/2) so neither factor overflows.
    let ni = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let n1 = ni >> 1;
    p * pow2i(n1) * pow2i(ni.wrapping_sub(n1))
}

const ERF_SPLIT: f32 = 0.9;
/// `2/sqrt(pi)` as the f32 nearest to it plus the f32 nearest to the remainder.
const TWO_OVER_SQRT_PI_HI: f32 = std::f32::consts::FRAC_2_SQRT_PI;
const TWO_OVER_SQRT_PI_LO: f32 = -5.863_538_3e-8;
const ERF_SMALL_Q: [f32; 5] = [
    -0.376_125_57,
    0.112_823_8,
    -0.026_785_672,
    0.005_020_305,
    -0.000_612_775_04,
];
const ERFC_T0: f32 = 0.498_673_74;
const ERFC_LARGE: [f32; 8] = [
    0.254_264_27,
    0.851_811_05,
    0.964_119_6,
    0.631_504,
    0.061_191_678,
    -0.223_181_16,
    -0.054_494_172,
    0.116_695_136,
];

/// `(erf(z), 1 + erf(z))`, the second without cancellation for negative `z`.
#[inline(always)]
fn erf_and_one_plus<M: MulAdd>(z: f32) -> (f32, f32) {
    let a = z.abs();
    let z2 = z * z;
    let y = z2 * poly::<M, 5>(z2, &ERF_SMALL_Q);
    let small = M::mul_add(z, TWO_OVER_SQRT_PI_HI, z * (y + TWO_OVER_SQRT_PI_LO));
    let t = 1.0 / M::mul_add(a, 0.5, 1.0);
    let erfc_a = exp::<M>(-z2) * poly::<M, 8>(t - ERFC_T0, &ERFC_LARGE);
    // erfc(10) = 2e-45: flush, so that e.g. gelu(-inf) = -inf * 0 = NaN as in PyTorch.
    let erfc_a = if a >= 10.0 { 0.0 } else { erfc_a };
    if a < ERF_SPLIT {
        (small, 1.0 + small)
    } else if z > 0.0 {
        (1.0 - erfc_a, 2.0 - erfc_a)
    } else {
        (erfc_a - 1.0, erfc_a)
    }
}

/// `erf(z)`.
#[inline(always)]
pub(crate) fn erf<M: MulAdd>(z: f32) -> f32 {
    erf_and_one_plus::<M>(z).0
}

/// Exact GELU, `x/2 (1 + erf(x / sqrt 2))` (`torch.nn.GELU()`).
#[inline(always)]
pub(crate) fn gelu<M: MulAdd>(x: f32) -> f32 {
    (x * 0.5) * erf_and_one_plus::<M>(x * std::f32::consts::FRAC_1_SQRT_2).1
}

/// `x * sigmoid(t) = x / (1 + e^-t)`.
#[inline(always)]
fn x_sigmoid<M: MulAdd>(x: f32, t: f32) -> f32 {
    x / (1.0 + exp::<M>(-t))
}

/// tanh GELU, `x/2 (1 + tanh(y))` with `y = sqrt(2/pi) x (1 + 0.044715 x^2)`, evaluated
/// as the identical `x sigmoid(2y)`, which has no cancellation for negative `x`.
#[inline(always)]
pub(crate) fn gelu_tanh<M: MulAdd>(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let y = SQRT_2_OVER_PI * x * M::mul_add(0.044_715 * x, x, 1.0);
    x_sigmoid::<M>(x, 2.0 * y)
}

/// CLIP's QuickGELU, `x sigmoid(1.702 x)`.
#[inline(always)]
pub(crate) fn quick_gelu<M: MulAdd>(x: f32) -> f32 {
    x_sigmoid::<M>(x, 1.702 * x)
}

/// SiLU, `x sigmoid(x)`.
#[inline(always)]
pub(crate) fn silu<M: MulAdd>(x: f32) -> f32 {
    x_sigmoid::<M>(x, x)
}

/// ReLU, `max(x, 0)`; NaN passes through as in PyTorch.
#[inline(always)]
pub(crate) fn relu<M: MulAdd>(x: f32) -> f32 {
    if x < 0.0 {
        0.0
    } else {
        x
    }
}

/// Where a [`UnaryMap`] reads and writes.
pub(crate) enum Io<'a> {
    InPlace(&'a mut [f32]),
    /// From `src` into the (uninitialised) `dst` of the same length.
    Copy(&'a [f32], &'a mut [MaybeUninit<f32>]),
}

/// Applies `f` to every element; instantiated once per lane function so each loop
/// vectorises.
#[inline(always)]
fn map(io: Io, f: impl Fn(f32) -> f32) {
    match io {
        Io::InPlace(data) => data.iter_mut().for_each(|x| *x = f(*x)),
        Io::Copy(src, dst) => dst.iter_mut().zip(src).for_each(|(d, &s)| {
            d.write(f(s));
        }),
    }
}

/// Applies a [`Unary`] element-wise.
pub(crate) struct UnaryMap<'a> {
    pub op: Unary,
    pub io: Io<'a>,
}

impl SimdFn for UnaryMap<'_> {
    type Output = ();
    #[inline(always)]
    fn call<M: MulAdd>(self) {
        use crate::Activation as A;
        let io = self.io;
        match self.op {
            Unary::Act(A::Gelu) => map(io, gelu::<M>),
            Unary::Act(A::GeluTanh) => map(io, gelu_tanh::<M>),
            Unary::Act(A::QuickGelu) => map(io, quick_gelu::<M>),
            Unary::Act(A::Silu) => map(io, silu::<M>),
            Unary::Act(A::Relu) => map(io, relu::<M>),
            Unary::Erf => map(io, erf::<M>),
        }
    }
}

const LANES: usize = 16;

/// Folds `map(x)` over `xs` with `combine`, in `LANES` independent accumulators (which
/// vectorises; the summation order is lane-wise, then across lanes).
#[inline(always)]
fn fold_lanes(xs: &[f32], init: f32, map: impl Fn(f32) -> f32, combine: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; LANES];
    let chunks = xs.chunks_exact(LANES);
    let mut tail = init;
    for &x in chunks.remainder() {
        tail = combine(tail, map(x));
    }
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = combine(*a, map(x));
        }
    }
    acc.iter().fold(tail, |r, &a| combine(r, a))
}

/// Numerically stable softmax of the first `row_len` entries of each `row_stride`-long
/// row of `data`, in place: `e^(x - max) / sum`, normalised by one reciprocal per row.
pub(crate) struct SoftmaxRows<'a> {
    pub data: &'a mut [f32],
    pub row_len: usize,
    pub row_stride: usize,
}

impl SimdFn for SoftmaxRows<'_> {
    type Output = ();
    #[inline(always)]
    fn call<M: MulAdd>(self) {
        for row in self.data.chunks_mut(self.row_stride) {
            let row = &mut row[..self.row_len];
            let max = fold_lanes(row, f32::NEG_INFINITY, |x| x, f32::max);
            let mut acc = [0f32; LANES];
            let mut chunks = row.chunks_exact_mut(LANES);
            for c in &mut chunks {
                for (a, x) in acc.iter_mut().zip(c) {
                    *x = exp::<M>(*x - max);
                    *a += *x;
                }
            }
            let mut sum = 0f32;
            for x in chunks.into_remainder() {
                *x = exp::<M>(*x - max);
                sum += *x;
            }
            let inv = 1.0 / acc.iter().fold(sum, |s, &a| s + a);
            for x in row.iter_mut() {
                *x *= inv;
            }
        }
    }
}

/// LayerNorm of each row of `data`, in place, with mean and (biased) variance from a
/// shifted two-pass scheme: a first pass gives a rough mean `m0`; the second sums
/// `d = x - m0` and `d^2` (small, exactly formed numbers), so `mean = m0 + E[d]` and
/// `var = E[d^2] - E[d]^2` keep full f32 accuracy even when |mean| >> std. Then
/// `y = ((x - m0) - E[d]) * rsqrt(var + eps) * weight + bias`.
pub(crate) struct LayerNormRows<'a> {
    pub data: &'a mut [f32],
    pub weight: &'a [f32],
    /// Same length as `weight` (zeros when the layer has no bias).
    pub bias: &'a [f32],
    pub eps: f32,
}

impl SimdFn for LayerNormRows<'_> {
    type Output = ();
    #[inline(always)]
    fn call<M: MulAdd>(self) {
        let n = self.weight.len();
        let inv_n = 1.0 / n as f32;
        let add = |a: f32, b: f32| a + b;
        for x in self.data.chunks_exact_mut(n) {
            let m0 = fold_lanes(x, 0.0, |v| v, add) * inv_n;
            let md = fold_lanes(x, 0.0, |v| v - m0, add) * inv_n;
            let var = (fold_lanes(x, 0.0, |v| (v - m0) * (v - m0), add) * inv_n - md * md).max(0.0);
            let rstd = 1.0 / (var + self.eps).sqrt();
            for ((x, &w), &b) in x.iter_mut().zip(self.weight).zip(self.bias) {
                *x = M::mul_add(((*x - m0) - md) * rstd, w, b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{Fused, Unfused};

    /// The portable (unfused) and FMA instantiations must agree to a few ulps times the
    /// condition number of the function (exp of an argument that grows like |x|^3 for
    /// tanh-GELU), so the path not selected on this machine is exercised here.
    #[test]
    fn unfused_matches_fused() {
        let xs: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.003 + 0.0007).collect();
        type Lane = fn(f32) -> f32;
        let funcs: [(&str, Lane, Lane); 6] = [
            ("exp", exp::<Fused>, exp::<Unfused>),
            ("erf", erf::<Fused>, erf::<Unfused>),
            ("gelu", gelu::<Fused>, gelu::<Unfused>),
            ("gelu_tanh", gelu_tanh::<Fused>, gelu_tanh::<Unfused>),
            ("quick_gelu", quick_gelu::<Fused>, quick_gelu::<Unfused>),
            ("silu", silu::<Fused>, silu::<Unfused>),
        ];
        for (name, f, u) in funcs {
            for &x in &xs {
                let (a, b) = (f(x), u(x));
                let cond = 1.0 + 2.0 * x.abs() + x * x + 0.2 * x.abs().powi(3);
                let tol = 4.0 * f32::EPSILON * cond * a.abs() + 1e-37;
                assert!((a - b).abs() <= tol, "{name}({x}): fused {a} vs unfused {b}");
            }
        }
    }

    #[test]
    fn exp_is_within_one_ulp() {
        let mut worst = 0f64;
        for i in -870_000..=887_000 {
            let x = i as f32 * 1e-4;
            let (got, want) = (exp::<Fused>(x) as f64, (x as f64).exp());
            if want < f32::MIN_POSITIVE as f64 {
                continue;
            }
            let ulp = f32::EPSILON as f64 * want;
            worst = worst.max((got - want).abs() / ulp);
        }
        assert!(worst <= 1.0, "exp error {worst} ulp");
    }

    #[test]
    fn exp_special_values() {
        assert!(exp::<Fused>(f32::NAN).is_nan());
        assert_eq!(exp::<Fused>(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp::<Fused>(-200.0), 0.0);
        assert_eq!(exp::<Fused>(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp::<Fused>(89.0), f32::INFINITY);
        assert_eq!(exp::<Fused>(0.0), 1.0);
        // Largest finite result and a subnormal one.
        let big = exp::<Fused>(88.7);
        assert!(big.is_finite() && (big as f64 / (88.7f32 as f64).exp() - 1.0).abs() < 3e-7);
        let sub = exp::<Fused>(-100.0);
        assert!(sub > 0.0 && sub < f32::MIN_POSITIVE);
        // Within one subnormal step of the correctly rounded value.
        assert!((sub - (-100f64).exp() as f32).abs() <= f32::from_bits(1));
    }
}
