//! Vectorised activations and `erf` against the candle-op oracle and against
//! high-precision (f64 series) reference values.

mod common;

use biofm_kernels::{activation, erf, naive, Activation};
use candle_core::{Device, Tensor};
use common::{values, Rng};

const ALL: [Activation; 5] = [
    Activation::Gelu,
    Activation::GeluTanh,
    Activation::QuickGelu,
    Activation::Silu,
    Activation::Relu,
];

/// erf(x) in f64 from `2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))`, a
/// series of positive terms (no cancellation), accurate to ~1e-15 relative for |x| <= 7.
/// Beyond that erf rounds to +-1 in f64 anyway.
fn erf_f64(x: f64) -> f64 {
    if x.abs() > 7.0 {
        return x.signum();
    }
    let (mut term, mut sum, mut n) = (x, x, 0.0);
    while term.abs() > 1e-17 * sum.abs() {
        n += 1.0;
        term *= 2.0 * x * x / (2.0 * n + 1.0);
        sum += term;
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
}

fn gelu_f64(x: f64) -> f64 {
    0.5 * x * (1.0 + erf_f64(x / std::f64::consts::SQRT_2))
}

fn grid(lo: f32, hi: f32, n: usize) -> Vec<f32> {
    (0..n).map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32).collect()
}

fn run(xs: &[f32], f: impl Fn(&Tensor) -> candle_core::Result<Tensor>) -> Vec<f32> {
    values(&f(&Tensor::from_slice(xs, xs.len(), &Device::Cpu).unwrap()).unwrap())
}

#[test]
fn series_reference_matches_known_values() {
    // Tabulated erf values (Abramowitz & Stegun table 7.1 / any CAS).
    for (x, want) in [
        (0.5, 0.520_499_877_813_046_5),
        (1.0, 0.842_700_792_949_714_9),
        (2.0, 0.995_322_265_018_952_7),
        (4.0, 0.999_999_984_582_742_1),
    ] {
        assert!(
            (erf_f64(x) - want).abs() < 1e-15,
            "erf_f64({x}) = {} vs {want}",
            erf_f64(x)
        );
        assert!((erf_f64(-x) + want).abs() < 1e-15);
    }
}

#[test]
fn erf_matches_f64_reference_within_1e7() {
    let mut xs = grid(-6.0, 6.0, 240_001);
    xs.extend([
        4.0,
        -4.0,
        3.9,
        -3.9,
        1e-30,
        -1e-30,
        1e-10,
        1e-5,
        -1e-3,
        0.0,
        0.899_999_9,
        0.9,
        9.99,
        10.0,
        1e10,
    ]);
    let got = run(&xs, erf);
    let mut max_err = 0f64;
    for (&x, &y) in xs.iter().zip(&got) {
        let want = erf_f64(x as f64);
        let err = (y as f64 - want).abs();
        // Absolute accuracy everywhere, and relative accuracy (a few ulps) near 0.
        assert!(err <= 1e-7, "erf({x}) = {y}, reference {want}, error {err:e}");
        assert!(
            err <= 3.0 * f32::EPSILON as f64 * want.abs().max(1e-38),
            "erf({x}) = {y}: relative error vs {want}"
        );
        max_err = max_err.max(err);
    }
    println!("max |erf error| vs f64 series: {max_err:.2e}");
    assert_eq!(run(&[4.0, -4.0, 0.0], erf), vec![1.0, -1.0, 0.0]);
}

#[test]
fn gelu_matches_f64_reference() {
    let mut rng = Rng::new(1);
    let mut xs = grid(-12.0, 12.0, 100_001);
    xs.extend((0..10_000).map(|_| rng.normal(3.0)));
    let got = run(&xs, |t| activation(t, Activation::Gelu));
    for (&x, &y) in xs.iter().zip(&got) {
        let want = gelu_f64(x as f64);
        // erf is accurate to 1e-7 absolute, so gelu to 0.5|x| 1e-7, plus the final rounding.
        let tol = 0.5 * (x as f64).abs() * 1e-7 + f32::EPSILON as f64 * want.abs();
        assert!((y as f64 - want).abs() <= tol, "gelu({x}) = {y}, reference {want}");
    }
}

#[test]
fn activations_match_naive_on_random_shapes() {
    let mut rng = Rng::new(2);
    for dims in [&[3, 7, 100][..], &[1, 197, 36], &[2, 257, 13], &[1, 1, 1], &[5]] {
        let x = rng.tensor(dims, 3.0);
        for act in ALL {
            let fast = activation(&x, act).unwrap();
            let slow = naive::activation(&x, act).unwrap();
            let xs = values(&x);
            let (a, b) = (values(&fast), values(&slow));
            for ((&x, &a), &b) in xs.iter().zip(&a).zip(&b) {
                // Relative to the result, plus |x| * 2e-7 where the oracle itself cancels
                // (1 + erf, 1 + tanh for negative x).
                let tol = 1e-6 * (b as f64).abs() + 2e-7 * (x as f64).abs();
                assert!(
                    ((a - b) as f64).abs() <= tol,
                    "{act:?}({x}) = {a}, naive {b} (dims {dims:?})"
                );
            }
        }
    }
}

#[test]
fn activations_extreme_values() {
    let xs = [
        0.0,
        -0.0,
        1e-30,
        -1e-30,
        30.0,
        -30.0,
        100.0,
        -100.0,
        1e3,
        -1e3,
        1e30,
        -1e30,
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    for act in ALL {
        let fast = run(&xs, |t| activation(t, act));
        let slow = run(&xs, |t| naive::activation(t, act));
        for ((&x, &a), &b) in xs.iter().zip(&fast).zip(&slow) {
            let same =
                a == b || (a.is_nan() && b.is_nan()) || ((a - b).abs() as f64) <= 1e-6 * (b.abs() as f64) + 1e-37;
            assert!(same, "{act:?}({x}) = {a}, naive {b}");
        }
        // NaN propagates (as in PyTorch).
        assert!(run(&[f32::NAN], |t| activation(t, act))[0].is_nan(), "{act:?}(NaN)");
    }
    assert!(run(&[f32::NAN], erf)[0].is_nan());
    // Large inputs: exact identities.
    assert_eq!(
        run(&[1e3, -1e3, 50.0], |t| activation(t, Activation::Gelu)),
        vec![1e3, -0.0, 50.0]
    );
    assert_eq!(run(&[1e3, -1e3], |t| activation(t, Activation::Silu)), vec![1e3, -0.0]);
}

#[test]
fn strided_input_matches_naive() {
    let mut rng = Rng::new(3);
    // The gate half of a packed GLU projection: a `narrow` of the last dim.
    let packed = rng.tensor(&[2, 9, 2 * 19], 2.0);
    let gate = packed.narrow(2, 0, 19).unwrap();
    assert!(!gate.is_contiguous());
    let transposed = rng.tensor(&[5, 11], 2.0).t().unwrap();
    for x in [gate, transposed] {
        for act in ALL {
            common::assert_close(
                &format!("{act:?}"),
                &activation(&x, act).unwrap(),
                &naive::activation(&x, act).unwrap(),
                1e-6,
                1e-6,
            );
        }
    }
}
