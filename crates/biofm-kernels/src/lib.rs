//! Compute kernels for biofm's CPU path.
//!
//! Every model block calls these functions instead of composing candle ops itself, so a
//! faster kernel helps every model at once. Each public function has the semantics of
//! the PyTorch op it replaces (noted per function); `naive` holds straightforward
//! candle-op versions used as the test oracle.
//!
//! Tensors are candle tensors. The fast paths cover contiguous `f32` CPU tensors; other
//! dtypes/devices fall back to the candle-op versions.

use candle_core::{DType, Result, Tensor, D};

pub mod naive;

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

/// Applies `act` element-wise.
pub fn activation(x: &Tensor, act: Activation) -> Result<Tensor> {
    naive::activation(x, act)
}

/// `torch.nn.functional.linear`: `x @ weight.T + bias`, with `x` of shape `[..., in]`
/// and `weight` of shape `[out, in]` (PyTorch layout). Returns `[..., out]`.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    naive::linear(x, weight, bias)
}

/// `torch.nn.functional.layer_norm` over the last dimension.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, eps: f64) -> Result<Tensor> {
    naive::layer_norm(x, weight, bias, eps)
}

/// Softmax over the last dimension (`torch.softmax(x, -1)`).
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    naive::softmax_last_dim(x)
}

/// Multi-head scaled dot-product attention, heads packed in the last dimension.
///
/// `q`: `[B, Nq, D]`, `k` and `v`: `[B, Nk, D]` with `D = heads * head_dim`; they may be
/// strided views (e.g. `narrow` of a packed qkv projection). `bias`, if given, is added to
/// the attention logits and must broadcast to `[B, heads, Nq, Nk]` (use
/// [`key_padding_bias`] for padding masks). Returns `[B, Nq, D]` with heads concatenated
/// in the same order, i.e. what `out_proj` consumes.
///
/// Equivalent to PyTorch `softmax((q * scale) @ k.T + bias) @ v` per head.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    scale: f64,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    naive::attention(q, k, v, heads, scale, bias)
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

/// Sets the number of compute threads for this process (kernels and GEMM). Call once,
/// early, before any compute; later calls are ignored. `None` uses all cores.
pub fn init_threads(n: Option<usize>) {
    let n = n.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    // candle's GEMM reads RAYON_NUM_THREADS; rayon's global pool is built here.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // SAFETY: called at start-up before other threads read the environment.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
}
