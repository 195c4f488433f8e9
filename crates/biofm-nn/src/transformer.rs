//! PyTorch `nn.TransformerEncoderLayer` (batch-first, inference), the plain encoder block
//! of scGPT and SleepFM.
//!
//! Keys (relative to the layer): `self_attn.in_proj_weight [3D, D]`,
//! `self_attn.in_proj_bias [3D]`, `self_attn.out_proj.{weight, bias}`,
//! `linear1.{weight [F, D], bias}`, `linear2.{weight [D, F], bias}`, `norm1`, `norm2`.
//! Post-norm (`norm_first=False`, PyTorch's default):
//! `x = norm1(x + sa(x)); x = norm2(x + linear2(act(linear1(x))))`; pre-norm:
//! `x = x + sa(norm1(x)); x = x + ff(norm2(x))`.

use crate::layers::{Attention, LayerNorm, Linear, Mlp, MlpKind};
use anyhow::{bail, Result};
use biofm_kernels::Activation;
use biofm_weights::View;
use candle_core::Tensor;

/// Shape and options of one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderLayerConfig {
    pub d_model: usize,
    pub nhead: usize,
    pub dim_feedforward: usize,
    pub activation: Activation,
    pub norm_first: bool,
    pub layer_norm_eps: f64,
}

#[derive(Debug, Clone)]
pub struct TransformerEncoderLayer {
    attn: Attention,
    ff: Mlp,
    norm1: LayerNorm,
    norm2: LayerNorm,
    norm_first: bool,
}

impl TransformerEncoderLayer {
    pub fn new(vb: &View, cfg: &EncoderLayerConfig) -> Result<Self> {
        let d = cfg.d_model;
        if cfg.nhead == 0 || d % cfg.nhead != 0 {
            bail!("{}: d_model {d} is not divisible by {} heads", vb.prefix(), cfg.nhead);
        }
        let sa = vb.pp("self_attn");
        let qkv = Linear { weight: sa.get("in_proj_weight", &[3 * d, d])?, bias: sa.get_opt("in_proj_bias", &[3 * d])? };
        let proj = Linear::new(&sa.pp("out_proj"), d, d, sa.contains("out_proj.bias"))?;
        let attn = Attention { qkv, proj, heads: cfg.nhead, scale: ((d / cfg.nhead) as f64).powf(-0.5) };
        let ff = Mlp::new(vb, ("linear1", "linear2"), d, cfg.dim_feedforward, d, cfg.activation, MlpKind::Plain, true)?;
        Ok(Self {
            attn,
            ff,
            norm1: LayerNorm::new(&vb.pp("norm1"), d, cfg.layer_norm_eps)?,
            norm2: LayerNorm::new(&vb.pp("norm2"), d, cfg.layer_norm_eps)?,
            norm_first: cfg.norm_first,
        })
    }

    /// `x`: `[B, N, D]`; `bias`: additive attention-logit bias broadcastable to
    /// `[B, heads, N, N]` (e.g. [`biofm_kernels::key_padding_bias`] of a key padding mask).
    pub fn forward(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        if self.norm_first {
            let x = self.attn.forward_residual(&self.norm1.forward(x)?, bias, x)?;
            self.ff.forward_residual(&self.norm2.forward(&x)?, &x)
        } else {
            let x = self.norm1.forward(&self.attn.forward_residual(x, bias, x)?)?;
            self.norm2.forward(&self.ff.forward_residual(&x, &x)?)
        }
    }
}
