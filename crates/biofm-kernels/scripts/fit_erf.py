"""Fits the polynomial coefficients used by the vectorised `erf` in src/math.rs.

Run on demand (numpy only), e.g. with the reference venv:

    tools/reference/.venv/bin/python crates/biofm-kernels/scripts/fit_erf.py

Two pieces, each a near-minimax fit (Lawson's iteratively reweighted least squares on
Chebyshev-distributed points, relative error, f64 targets from Python's `math.erf`):

* |z| < 0.9:  erf(z) = z * (2/sqrt(pi) + z^2 * Q(z^2)), Q of degree 4 in z^2; the
  leading coefficient is kept exact as an f32 hi + lo pair, which brings the f32
  evaluation to <= 1 ulp.
* |z| >= 0.9: erfc(|z|) = exp(-z^2) * G(t - T0), t = 1 / (1 + |z| / 2), G of degree 7,
  fitted for |z| in [0.9, 4.5] (beyond 4.5 erfc < 2e-10, so extrapolation error is
  irrelevant in absolute terms).

The coefficients are rounded to f32 and the whole f32 evaluation (FMA Horner, the
range-reduced exp of src/math.rs) is simulated to report the achieved max abs error.
"""
import math

import numpy as np

SPLIT = 0.9
UPPER = 4.5
SMALL_TERMS = 6
LARGE_DEGREE = 7


def lawson(y, basis, scale, iters=60):
    """Minimax-like fit of y by basis columns, error measured relative to `scale`."""
    w = np.full(len(y), 1.0 / len(y))
    for _ in range(iters):
        sw = np.sqrt(w) / scale
        c, *_ = np.linalg.lstsq(basis * sw[:, None], y * sw, rcond=None)
        e = np.abs(basis @ c - y) / scale
        w = w * e
        w /= w.sum()
    return c, float(np.max(np.abs(basis @ c - y) / scale))


def cheb_points(lo, hi, n=1500):
    t = np.cos(np.pi * (np.arange(n) + 0.5) / n)
    return (lo + hi) / 2 + (hi - lo) / 2 * t


def f32(x):
    return np.float32(x)


def fma32(a, b, c):
    # a*b of two f32 is exact in f64; one f64 rounding, then to f32.
    return (np.float64(a) * np.float64(b) + np.float64(c)).astype(np.float32)


def horner32(coeffs, x):
    acc = np.full_like(x, coeffs[-1], dtype=np.float32)
    for c in coeffs[-2::-1]:
        acc = fma32(acc, x, np.float32(c))
    return acc


def exp32(x):
    """Simulates math.rs `exp` (Cody-Waite reduction, degree-7 Taylor, two-step scale)."""
    x = np.clip(x, f32(-104.0), f32(89.0)).astype(np.float32)
    magic = f32(12582912.0)
    t = fma32(x, f32(1.44269504), magic)
    n = (t - magic).astype(np.float32)
    r = fma32(n, f32(-0.693145752), x)
    r = fma32(n, f32(-1.42860677e-06), r)
    taylor = [1.0 / math.factorial(i) for i in range(8)]
    p = horner32([f32(c) for c in taylor], r)
    ni = n.astype(np.int64)
    n1 = ni >> 1
    n2 = ni - n1
    return (p * np.exp2(n1.astype(np.float32)) * np.exp2(n2.astype(np.float32))).astype(np.float32)


def main():
    a0 = 2 / math.sqrt(math.pi)
    z = cheb_points(1e-4, SPLIT)
    ratio = np.array([math.erf(v) / v for v in z])
    small, err_small = lawson(
        (ratio - a0) / z**2, np.stack([z ** (2 * i) for i in range(SMALL_TERMS - 1)], 1), ratio / z**2
    )
    t_lo, t_hi = 1 / (1 + UPPER / 2), 1 / (1 + SPLIT / 2)
    t0 = (t_lo + t_hi) / 2
    t = cheb_points(t_lo, t_hi)
    zl = 2 / t - 2
    g = np.array([math.erfc(v) * math.exp(v * v) for v in zl])
    large, err_large = lawson(g, np.stack([(t - t0) ** i for i in range(LARGE_DEGREE + 1)], 1), g)
    print(f"fit rel. error: small {err_small:.3e}, large {err_large:.3e}")
    a0_hi = f32(a0)
    a0_lo = f32(a0 - float(a0_hi))
    small32 = [f32(c) for c in small]
    large32 = [f32(c) for c in large]
    print(f"const ERF_SPLIT: f32 = {SPLIT};")
    print(f"const TWO_OVER_SQRT_PI_HI: f32 = {float(a0_hi)!r};")
    print(f"const TWO_OVER_SQRT_PI_LO: f32 = {float(a0_lo)!r};")
    print(f"const ERFC_T0: f32 = {float(f32(t0))!r};")
    print("const ERF_SMALL_Q: [f32; %d] = [%s];" % (len(small32), ", ".join(repr(float(c)) for c in small32)))
    print("const ERFC_LARGE: [f32; %d] = [%s];" % (len(large32), ", ".join(repr(float(c)) for c in large32)))

    # Simulated f32 evaluation over a dense grid.
    zs = np.linspace(-6.0, 6.0, 400_001).astype(np.float32)
    a = np.abs(zs)
    z2 = (zs * zs).astype(np.float32)
    y = (z2 * horner32(small32, z2)).astype(np.float32)
    p_small = fma32(zs, a0_hi, (zs * (y + a0_lo).astype(np.float32)).astype(np.float32))
    ac = np.minimum(a, f32(10.0))
    tt = (f32(1.0) / fma32(ac, f32(0.5), f32(1.0))).astype(np.float32)
    gval = horner32(large32, (tt - f32(t0)).astype(np.float32))
    erfc_a = (exp32(-(ac * ac).astype(np.float32)) * gval).astype(np.float32)
    big = np.copysign((f32(1.0) - erfc_a).astype(np.float32), zs)
    approx = np.where(a < f32(SPLIT), p_small, big)
    exact = np.array([math.erf(float(v)) for v in zs])
    print(f"simulated f32 erf max abs error on [-6, 6]: {np.max(np.abs(approx - exact)):.3e}")
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    print(f"simulated f32 erf max error in ulps of the result: {np.max(np.abs(approx - exact) / ulp):.3f}")


if __name__ == "__main__":
    main()
