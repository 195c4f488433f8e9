//! Compute kernels for biofm's CPU path.
//!
//! Every model block calls these functions instead of composing candle ops itself, so a
//! faster kernel helps every model at once. Each public function has the semantics of
//! the PyTorch op it replaces (noted per function); `naive` holds straightforward
//! candle-op versions used as the test oracle.
//!
//! Tensors are candle tensors. The fast paths cover `f32` CPU tensors (strided views are
//! read through their strides where that is free, otherwise made contiguous first); other
//! dtypes/devices fall back to the candle-op versions. The vectorised kernels are plain
//! Rust compiled twice, for AVX2+FMA (picked at run time) and portably.

use candle_core::{DType, Result, Tensor, D};
use linear::Epilogue;
use math::{Io, LayerNormRows, SoftmaxRows, Unary, UnaryMap};

mod attention;
mod cpu;
mod linear;
mod math;
pub mod naive;
mod simd;

/// Element-wise activations, named as in the reference code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `torch.nn.GELU()` / `F.gelu(x)`: exact, `0.5 x (1 + erf(x / sqrt 2))`.
    Gelu,
    /// `F.gelu(x, approximate="tanh")`.
    GeluTanh,
    /// CLIP's `x * sigmoid(1.702 x)`.
    QuickGelu,
    /// `torch.nn.SiLU()`: `x * sigmoid(x)`.
    Silu,
    /// `torch.nn.ReLU()`.
    Relu,
}

impl Activation {
    /// Parses the activation names used in HF/timm configs (`"gelu"`, `"gelu_new"`,
    /// `"quick_gelu"`, `"silu"`/`"swish"`, `"relu"`).
    pub fn from_config_name(name: &str) -> Option<Self> {
        match name {
            "gelu" | "gelu_erf" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_tanh" | "gelu_fast" => Some(Self::GeluTanh),
            "quick_gelu" => Some(Self::QuickGelu),
            "silu" | "swish" => Some(Self::Silu),
            "relu" => Some(Self::Relu),
            _ => None,
        }
    }
}

/// Applies `act` element-wise (the PyTorch module named on each [`Activation`]).
///
/// `f32` CPU tensors take a vectorised kernel. Exact GELU uses a polynomial `erf` with
/// max abs error 7.7e-8 (<= 1.3 ulp), so `gelu(x)` is within `0.5 |x| 1e-7` plus one
/// rounding of the exact value; the sigmoid-based ones (tanh-GELU as the identical
/// `x sigmoid(2y)`, QuickGELU, SiLU) use a ~1 ulp `exp`. Other dtypes use candle ops.
pub fn activation(x: &Tensor, act: Activation) -> Result<Tensor> {
    unary(x, Unary::Act(act))
}

/// `torch.erf`, element-wise (see [`activation`] for accuracy).
pub fn erf(x: &Tensor) -> Result<Tensor> {
    unary(x, Unary::Erf)
}

fn unary(x: &Tensor, op: Unary) -> Result<Tensor> {
    if !cpu::is_f32_cpu(x) {
        return match op {
            Unary::Act(act) => naive::activation(x, act),
            Unary::Erf => x.erf(),
        };
    }
    let x = x.contiguous()?;
    let xd = cpu::F32Data::new(&x, "activation")?;
    let src = xd
        .contiguous()
        .ok_or_else(|| shape_err("activation", "input is not contiguous", &[&x]))?;
    let out = cpu::build(src.len(), cpu::CHUNK, |i, dst| {
        let src = &src[i * cpu::CHUNK..][..dst.len()];
        simd::run(UnaryMap {
            op,
            io: Io::Copy(src, dst),
        })
    });
    cpu::tensor(out, x.shape())
}

/// `torch.nn.functional.linear`: `x @ weight.T + bias`, with `x` of shape `[..., in]`
/// and `weight` of shape `[out, in]` (PyTorch layout). Returns `[..., out]`.
///
/// For `f32` CPU tensors this is a single GEMM over all leading dimensions (`M =
/// prod(leading dims)`), reading `weight` transposed through its strides (no copy) and
/// accumulating onto output rows pre-filled with `bias`.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    linear_impl(x, weight, bias, Epilogue::None)
}

/// `act(linear(x, weight, bias))`, with the activation applied in place on the fresh
/// GEMM output (no extra tensor), e.g. timm's `fc1` + `GELU` or BERT's intermediate.
pub fn linear_act(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, act: Activation) -> Result<Tensor> {
    linear_impl(x, weight, bias, Epilogue::Act(act))
}

/// `residual + linear(x, weight, bias)`, a transformer block's `x + proj(h)`, with the
/// residual (plus bias) pre-filled into the GEMM output: no separate add pass or tensor.
/// `residual` has the output's shape `[..., out]`.
pub fn linear_residual(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, residual: &Tensor) -> Result<Tensor> {
    linear_impl(x, weight, bias, Epilogue::Residual(residual))
}

fn linear_impl(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, epilogue: Epilogue) -> Result<Tensor> {
    let k = x
        .dims()
        .last()
        .copied()
        .ok_or_else(|| shape_err("linear", "input is a scalar", &[x]))?;
    let n = match weight.dims() {
        &[n, wk] if wk == k => n,
        _ => {
            return Err(shape_err(
                "linear",
                "weight must be [out, in] with in = input's last dim",
                &[x, weight],
            ))
        }
    };
    if let Some(b) = bias {
        if b.dims() != [n] {
            return Err(shape_err("linear", "bias must be [out]", &[weight, b]));
        }
    }
    let residual = match epilogue {
        Epilogue::Residual(r) => Some(r),
        _ => None,
    };
    if let Some(r) = residual {
        let lead = &x.dims()[..x.rank() - 1];
        if r.dims().split_last() != Some((&n, lead)) {
            return Err(shape_err(
                "linear",
                "residual must be [..., out] like the output",
                &[x, weight, r],
            ));
        }
    }
    let fast = [x, weight].into_iter().chain(bias).chain(residual).all(cpu::is_f32_cpu);
    if fast {
        return linear::linear_f32(x, weight, bias, epilogue);
    }
    let y = naive::linear(x, weight, bias)?;
    match epilogue {
        Epilogue::None => Ok(y),
        Epilogue::Act(act) => naive::activation(&y, act),
        Epilogue::Residual(r) => r + y,
    }
}

/// `torch.nn.functional.layer_norm` over the last dimension (biased variance, `eps`
/// inside the square root).
///
/// `f32` CPU tensors: per row, mean and variance in `f32` from a shifted two-pass scheme
/// (accurate even when |mean| >> std), then `(x - mean) * rsqrt(var + eps) * weight +
/// bias`; rows in parallel.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, eps: f64) -> Result<Tensor> {
    let n = x
        .dims()
        .last()
        .copied()
        .ok_or_else(|| shape_err("layer_norm", "input is a scalar", &[x]))?;
    for p in std::iter::once(weight).chain(bias) {
        if p.dims() != [n] {
            return Err(shape_err(
                "layer_norm",
                "weight and bias must be [last dim of input]",
                &[x, p],
            ));
        }
    }
    let fast = n > 0 && [x, weight].into_iter().chain(bias).all(cpu::is_f32_cpu);
    if !fast {
        return naive::layer_norm(x, weight, bias, eps);
    }
    let weight = weight.contiguous()?.to_vec1::<f32>()?;
    let bias = match bias {
        Some(b) => b.contiguous()?.to_vec1::<f32>()?,
        None => vec![0f32; n],
    };
    let eps = eps as f32;
    let rows = |c: &mut [f32]| {
        simd::run(LayerNormRows {
            data: c,
            weight: &weight,
            bias: &bias,
            eps,
        })
    };
    let out = cpu::map_copy(x, "layer_norm", n, rows)?;
    cpu::tensor(out, x.shape())
}

/// Softmax over the last dimension (`torch.softmax(x, -1)`): `exp(x - max) / sum`.
///
/// `f32` CPU tensors: vectorised rows (polynomial `exp` within ~1 ulp, one reciprocal
/// per row), rows in parallel.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let n = x.dims().last().copied().unwrap_or(0);
    if n == 0 || !cpu::is_f32_cpu(x) {
        return naive::softmax_last_dim(x);
    }
    let rows = |c: &mut [f32]| {
        simd::run(SoftmaxRows {
            data: c,
            row_len: n,
            row_stride: n,
        })
    };
    let out = cpu::map_copy(x, "softmax", n, rows)?;
    cpu::tensor(out, x.shape())
}

/// Multi-head scaled dot-product attention, heads packed in the last dimension.
///
/// `q`: `[B, Nq, D]`, `k` and `v`: `[B, Nk, D]` with `D = heads * head_dim`; they may be
/// strided views (e.g. `narrow` of a packed qkv projection). `bias`, if given, is added to
/// the attention logits and must broadcast to `[B, heads, Nq, Nk]` (use
/// [`key_padding_bias`] for padding masks). Returns `[B, Nq, D]` with heads concatenated
/// in the same order, i.e. what `out_proj` consumes.
///
/// Equivalent to PyTorch `softmax((q * scale) @ k.T + bias) @ v` per head: `q` is
/// multiplied by `scale` (as `f32`) before the product, as in timm's `Attention`.
/// `f32` CPU inputs take a fused kernel (see `attention.rs`): no copies of `k`/`v`, one
/// task per (batch, head, block of <= 256 queries), O(Nk) scratch memory per thread.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    scale: f64,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let dims = |t: &Tensor| {
        t.dims3()
            .map_err(|_| shape_err("attention", "q, k and v must be [B, N, D]", &[q, k, v]))
    };
    let ((b, nq, d), (bk, nk, dk)) = (dims(q)?, dims(k)?);
    if (bk, dk) != (b, d) || v.dims() != k.dims() {
        return Err(shape_err(
            "attention",
            "q [B, Nq, D], k and v [B, Nk, D] must agree",
            &[q, k, v],
        ));
    }
    if heads == 0 || d % heads != 0 {
        return Err(shape_err(
            "attention",
            &format!("width is not divisible by {heads} heads"),
            &[q],
        ));
    }
    let bias = bias
        .map(|t| {
            t.broadcast_as((b, heads, nq, nk)).map_err(|_| {
                shape_err(
                    "attention",
                    &format!("bias must broadcast to [{b}, {heads}, {nq}, {nk}]"),
                    &[t],
                )
            })
        })
        .transpose()?;
    if [q, k, v].into_iter().chain(bias.as_ref()).all(cpu::is_f32_cpu) {
        return attention::attention_f32(q, k, v, heads, scale as f32, bias.as_ref());
    }
    naive::attention(q, k, v, heads, scale, bias.as_ref())
}

/// A shape error naming the operation and the shapes involved.
fn shape_err(op: &str, what: &str, tensors: &[&Tensor]) -> candle_core::Error {
    let shapes: Vec<_> = tensors.iter().map(|t| format!("{:?}", t.dims())).collect();
    candle_core::Error::Msg(format!("{op}: {what} (got shapes {})", shapes.join(", ")))
}

/// Turns a key mask `[B, Nk]` (1 = attend, 0 = padding; any dtype) into an additive
/// bias `[B, 1, 1, Nk]` holding 0 or `f32::MIN`, as HF transformers does.
pub fn key_padding_bias(mask: &Tensor) -> Result<Tensor> {
    let (b, n) = mask.dims2()?;
    let keep = mask.to_dtype(DType::F32)?;
    let neg = ((1.0 - keep)? * f32::MIN as f64)?;
    neg.reshape((b, 1, 1, n))
}

/// L2-normalises along the last dimension (`F.normalize(x, dim=-1)`, eps 1e-12).
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::INFINITY)?;
    x.broadcast_div(&norm)
}

/// Number of compute threads (the size of the pool that [`init_threads`] configured).
pub fn num_threads() -> usize {
    rayon::current_num_threads()
}

/// Runs `f(0..parts)` in parallel, one part per compute thread, with the kernels inside
/// each part single-threaded: data parallelism instead of splitting every op across
/// threads. For a batch split into one slice per thread, this avoids a fork-join per op
/// and keeps each thread's activations in its own core's caches (a ViT-B/16 at batch 8
/// on 2 threads runs ~5-10% faster this way). Results are returned in part order.
pub fn data_parallel<T: Send, E: Send>(
    parts: usize,
    f: impl Fn(usize) -> std::result::Result<T, E> + Sync,
) -> std::result::Result<Vec<T>, E> {
    use rayon::prelude::*;
    (0..parts)
        .into_par_iter()
        .with_max_len(1)
        .map(|i| {
            let was = cpu::SERIAL.with(|s| s.replace(true));
            let out = f(i);
            cpu::SERIAL.with(|s| s.set(was));
            out
        })
        .collect()
}

/// Sets the number of compute threads for this process: rayon's global pool (our
/// kernels and their GEMMs) and candle's thread counts (its GEMM reads
/// `RAYON_NUM_THREADS` via `candle_core::utils::get_num_threads`, its element-wise pool
/// `CANDLE_NUM_THREADS`, falling back to `RAYON_NUM_THREADS`). `None` (or `Some(0)`)
/// keeps `RAYON_NUM_THREADS` if set, else uses all cores.
///
/// Call once, early, before any compute and before other threads exist: candle and
/// rayon read these settings once, so later calls have no effect on them.
pub fn init_threads(n: Option<usize>) {
    let from_env = || {
        std::env::var("RAYON_NUM_THREADS")
            .ok()?
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
    };
    let n = n
        .filter(|&n| n > 0)
        .or_else(from_env)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    for var in ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"] {
        // SAFETY (required from edition 2024 on): documented to be called at start-up,
        // before other threads read the environment.
        #[allow(unused_unsafe)]
        unsafe {
            std::env::set_var(var, n.to_string())
        };
    }
    let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
}
