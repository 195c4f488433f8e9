//! Runtime selection between an AVX2+FMA build and a portable build of the same code.
//!
//! Kernel bodies are written once as plain Rust loops over `f32` lanes, generic over
//! [`MulAdd`] and marked `#[inline(always)]`. [`run`] instantiates them inside a
//! `#[target_feature(enable = "avx2,fma")]` function when the CPU supports it, where LLVM
//! vectorises the loops to 8-wide AVX2 with hardware FMA; elsewhere the portable
//! instantiation runs (hardware FMA where the target always has it, e.g. aarch64).

/// How `a * b + c` is evaluated inside a kernel.
pub(crate) trait MulAdd: Copy {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// Hardware fused multiply-add (one rounding).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fused;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// Separate multiply and add (two roundings), for targets without FMA, where
/// `f32::mul_add` would be a slow library call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unfused;

impl MulAdd for Unfused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// A kernel body generic over the multiply-add flavour. Implementations must mark
/// `call` `#[inline(always)]` (and everything it calls), so that it is compiled with the
/// target features of the function [`run`] picks.
pub(crate) trait SimdFn {
    type Output;
    fn call<M: MulAdd>(self) -> Self::Output;
}

/// Runs `f` with the best instruction set available on this CPU.
pub(crate) fn run<F: SimdFn>(f: F) -> F::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { run_avx2_fma(f) };
        }
    }
    run_portable(f)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2_fma<F: SimdFn>(f: F) -> F::Output {
    f.call::<Fused>()
}

/// The build without runtime-detected features; also used by tests to check that the
/// portable instantiation agrees with the vectorised one.
pub(crate) fn run_portable<F: SimdFn>(f: F) -> F::Output {
    if cfg!(any(target_arch = "aarch64", target_feature = "fma")) {
        f.call::<Fused>()
    } else {
        f.call::<Unfused>()
    }
}
