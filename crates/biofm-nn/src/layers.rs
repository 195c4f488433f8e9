//! Linear, LayerNorm, MLPs and multi-head self-attention with timm/PyTorch key names.

use anyhow::{bail, Result};
use biofm_kernels::{self as k, Activation};
use biofm_weights::View;
use candle_core::Tensor;

/// `torch.nn.Linear`: keys `weight [out, in]` and optional `bias [out]`.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    pub fn new(vb: &View, in_dim: usize, out_dim: usize, bias: bool) -> Result<Self> {
        let weight = vb.get("weight", &[out_dim, in_dim])?;
        let bias = if bias { Some(vb.get("bias", &[out_dim])?) } else { None };
        Ok(Self { weight, bias })
    }
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(k::linear(x, &self.weight, self.bias.as_ref())?)
    }
    /// `act(forward(x))` in one pass over the GEMM output.
    pub fn forward_act(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        Ok(k::linear_act(x, &self.weight, self.bias.as_ref(), act)?)
    }
    /// `residual + forward(x)`, with the residual added inside the GEMM.
    pub fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        Ok(k::linear_residual(x, &self.weight, self.bias.as_ref(), residual)?)
    }
    pub fn out_dim(&self) -> usize {
        self.weight.dims()[0]
    }
}

/// `torch.nn.LayerNorm` over the last dimension: keys `weight`, `bias`.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub eps: f64,
}

impl LayerNorm {
    pub fn new(vb: &View, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self { weight: vb.get("weight", &[dim])?, bias: Some(vb.get("bias", &[dim])?), eps })
    }
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(k::layer_norm(x, &self.weight, self.bias.as_ref(), self.eps)?)
    }
}

/// The MLP variants used by the seed models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlpKind {
    /// timm `Mlp` / BERT FFN: `fc2(act(fc1(x)))`.
    Plain,
    /// timm `SwiGLUPacked` (= `GluMlp`, gate first): `fc1` outputs `2h`;
    /// `fc2(act(x1) * x2)` where `x1, x2 = fc1(x).chunk(2)`.
    GluPacked,
}

/// Two-layer MLP with configurable key names (`fc1/fc2`, `c_fc/c_proj`,
/// `linear1/linear2`...).
#[derive(Debug, Clone)]
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
    pub act: Activation,
    pub kind: MlpKind,
}

impl Mlp {
    /// `hidden` is the width of `fc1`'s output (for `GluPacked`, twice the gated width).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vb: &View,
        names: (&str, &str),
        dim: usize,
        hidden: usize,
        out_dim: usize,
        act: Activation,
        kind: MlpKind,
        bias: bool,
    ) -> Result<Self> {
        let fc1 = Linear::new(&vb.pp(names.0), dim, hidden, bias)?;
        let fc2_in = match kind {
            MlpKind::Plain => hidden,
            MlpKind::GluPacked => {
                if hidden % 2 != 0 {
                    bail!("{}: packed GLU hidden width {hidden} is odd", vb.prefix());
                }
                hidden / 2
            }
        };
        let fc2 = Linear::new(&vb.pp(names.1), fc2_in, out_dim, bias)?;
        Ok(Self { fc1, fc2, act, kind })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2.forward(&self.hidden(x)?)
    }

    /// `residual + forward(x)` (a transformer block's MLP branch), fused into `fc2`.
    pub fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        self.fc2.forward_residual(&self.hidden(x)?, residual)
    }

    /// The activated hidden layer that `fc2` reads.
    fn hidden(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self.kind {
            MlpKind::Plain => self.fc1.forward_act(x, self.act)?,
            MlpKind::GluPacked => {
                let h = self.fc1.forward(x)?;
                let last = h.rank() - 1;
                let half = h.dim(last)? / 2;
                let gate = k::activation(&h.narrow(last, 0, half)?, self.act)?;
                (gate * h.narrow(last, half, half)?)?
            }
        })
    }
}

/// Multi-head self-attention with a packed `qkv` projection and an output `proj`
/// (timm `Attention`; key names configurable, e.g. `("qkv", "proj")`).
#[derive(Debug, Clone)]
pub struct Attention {
    pub qkv: Linear,
    pub proj: Linear,
    pub heads: usize,
    pub scale: f64,
}

impl Attention {
    pub fn new(vb: &View, names: (&str, &str), dim: usize, heads: usize, qkv_bias: bool, proj_bias: bool) -> Result<Self> {
        if heads == 0 || dim % heads != 0 {
            bail!("{}: width {dim} is not divisible by {heads} heads", vb.prefix());
        }
        Ok(Self {
            qkv: Linear::new(&vb.pp(names.0), dim, 3 * dim, qkv_bias)?,
            proj: Linear::new(&vb.pp(names.1), dim, dim, proj_bias)?,
            heads,
            scale: ((dim / heads) as f64).powf(-0.5),
        })
    }

    /// Packs separate q/k/v projections (HF BERT's `query`/`key`/`value`) into one
    /// `qkv` projection, so the three GEMMs run as one; the result is the same
    /// attention (q, k, v are read back as column ranges of the packed output).
    pub fn from_separate(q: Linear, k: Linear, v: Linear, proj: Linear, heads: usize) -> Result<Self> {
        let dim = q.weight.dim(1)?;
        if heads == 0 || dim % heads != 0 {
            bail!("width {dim} is not divisible by {heads} heads");
        }
        let weight = Tensor::cat(&[&q.weight, &k.weight, &v.weight], 0)?;
        let bias = match (q.bias, k.bias, v.bias) {
            (Some(a), Some(b), Some(c)) => Some(Tensor::cat(&[&a, &b, &c], 0)?),
            (None, None, None) => None,
            _ => bail!("q, k and v projections must all have biases or none"),
        };
        Ok(Self { qkv: Linear { weight, bias }, proj, heads, scale: ((dim / heads) as f64).powf(-0.5) })
    }

    /// `x`: `[B, N, D]`; `bias`: optional additive logits bias broadcastable to
    /// `[B, heads, N, N]`.
    pub fn forward(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        self.proj.forward(&self.mix(x, bias)?)
    }

    /// `residual + forward(x, bias)`, with the residual added inside `proj`'s GEMM.
    pub fn forward_residual(&self, x: &Tensor, bias: Option<&Tensor>, residual: &Tensor) -> Result<Tensor> {
        self.proj.forward_residual(&self.mix(x, bias)?, residual)
    }

    /// Attention output before `proj`: `[B, N, D]`.
    fn mix(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let d = x.dim(2)?;
        let qkv = self.qkv.forward(x)?;
        let q = qkv.narrow(2, 0, d)?;
        let kk = qkv.narrow(2, d, d)?;
        let v = qkv.narrow(2, 2 * d, d)?;
        Ok(k::attention(&q, &kk, &v, self.heads, self.scale, bias)?)
    }
}
