//! Reference implementations built from plain candle ops. They define the semantics
//! the fast kernels must reproduce and serve as the oracle in tests.

use super::Activation;
use candle_core::{DType, Result, Tensor, D};

/// [`crate::activation`] from candle ops (`gelu_erf`, `gelu`, `silu`, `relu`, ...).
pub fn activation(x: &Tensor, act: Activation) -> Result<Tensor> {
    match act {
        Activation::Gelu => x.gelu_erf(),
        Activation::GeluTanh => x.gelu(),
        Activation::QuickGelu => x.broadcast_mul(&candle_nn_sigmoid(&(x * 1.702)?)?),
        Activation::Silu => x.silu(),
        Activation::Relu => x.relu(),
    }
}

fn candle_nn_sigmoid(x: &Tensor) -> Result<Tensor> {
    // 1 / (1 + exp(-x))
    (x.neg()?.exp()? + 1.0)?.recip()
}

/// [`crate::linear`] as candle `matmul` with `weight.t()` plus a broadcast bias add.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let inner = *dims
        .last()
        .ok_or_else(|| candle_core::Error::Msg("linear: scalar input".into()))?;
    let rows: usize = dims[..dims.len() - 1].iter().product();
    let x2 = x.reshape((rows, inner))?;
    let mut y = x2.matmul(&weight.t()?)?;
    if let Some(b) = bias {
        y = y.broadcast_add(b)?;
    }
    let mut out_dims = dims;
    let last = out_dims.len() - 1;
    out_dims[last] = weight.dim(0)?;
    y.reshape(out_dims)
}

/// [`crate::layer_norm`] from candle reductions (computed in f32 for any input dtype).
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, eps: f64) -> Result<Tensor> {
    let dtype = x.dtype();
    let xf = x.to_dtype(DType::F32)?;
    let mean = xf.mean_keepdim(D::Minus1)?;
    let centered = xf.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centered.broadcast_div(&(var + eps)?.sqrt()?)?;
    let mut y = normed.broadcast_mul(&weight.to_dtype(DType::F32)?)?;
    if let Some(b) = bias {
        y = y.broadcast_add(&b.to_dtype(DType::F32)?)?;
    }
    y.to_dtype(dtype)
}

/// [`crate::softmax_last_dim`] as `exp(x - max) / sum` from candle ops.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?;
    let e = x.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&s)
}

/// [`crate::attention`] with heads split into `[B, H, N, hd]` contiguous copies and two
/// batched matmuls.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    scale: f64,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let (b, nq, d) = q.dims3()?;
    let (_, nk, _) = k.dims3()?;
    if d % heads != 0 {
        return Err(candle_core::Error::Msg(format!(
            "attention: dim {d} not divisible by {heads} heads"
        )));
    }
    let hd = d / heads;
    let split =
        |t: &Tensor, n: usize| -> Result<Tensor> { t.reshape((b, n, heads, hd))?.transpose(1, 2)?.contiguous() };
    let qh = (split(q, nq)? * scale)?;
    let kh = split(k, nk)?;
    let vh = split(v, nk)?;
    let mut logits = qh.matmul(&kh.t()?)?;
    if let Some(bias) = bias {
        logits = logits.broadcast_add(bias)?;
    }
    let p = softmax_last_dim(&logits)?;
    p.matmul(&vh)?.transpose(1, 2)?.reshape((b, nq, d))
}
