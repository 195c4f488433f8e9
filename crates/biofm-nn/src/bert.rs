//! HF transformers `BertModel` (encoder only), with HF's key names and numerics:
//! post-LayerNorm blocks, absolute position embeddings, token-type embeddings, an
//! additive padding mask, and the optional `pooler` (`tanh(dense(h[:, 0]))`).
//!
//! Keys, relative to the view the model is built from (`""` for plain HF checkpoints,
//! `"bert"` for `BertFor*` checkpoints, `"text.transformer"` inside open_clip
//! BiomedCLIP): `embeddings.{word,position,token_type}_embeddings.weight`,
//! `embeddings.LayerNorm`, `encoder.layer.{i}.attention.self.{query,key,value}`,
//! `encoder.layer.{i}.attention.output.{dense,LayerNorm}`,
//! `encoder.layer.{i}.intermediate.dense`, `encoder.layer.{i}.output.{dense,LayerNorm}`,
//! optional `pooler.dense`.

use crate::layers::{Attention, LayerNorm, Linear, Mlp, MlpKind};
use anyhow::{bail, ensure, Context, Result};
use biofm_kernels::{self as k, Activation};
use biofm_weights::View;
use candle_core::{DType, Tensor, D};
use serde_json::Value;
use std::path::Path;

/// Architecture of a BERT encoder, read from an HF `config.json`.
///
/// The size fields are required. Fields HF's `BertConfig` commonly omits take HF's
/// defaults: `hidden_act` "gelu", `layer_norm_eps` 1e-12, `pad_token_id` 0 (also when
/// null), `position_embedding_type` "absolute". Other fields are ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub hidden_act: String,
    pub layer_norm_eps: f64,
    pub pad_token_id: u32,
    pub position_embedding_type: String,
    /// HF `model_type`; when present it must be `"bert"` (RoBERTa-style models number
    /// positions differently and would silently give wrong results).
    pub model_type: Option<String>,
}

impl BertConfig {
    /// Parses and validates a `config.json` text; `origin` names it in errors.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text).with_context(|| format!("{origin}: not valid JSON"))?;
        Self::from_json_value(&value, origin)
    }

    /// Reads, parses and validates a `config.json` file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_json_str(&text, &path.display().to_string())
    }

    /// Reads the fields of a parsed `config.json` and validates them; errors name the
    /// field and `origin`.
    pub fn from_json_value(value: &Value, origin: &str) -> Result<Self> {
        let parse = || -> Result<Self> {
            let obj = value.as_object().context("the config is not a JSON object")?;
            let size = |key: &str| -> Result<usize> {
                let v = obj.get(key).with_context(|| format!("missing field `{key}`"))?;
                v.as_u64()
                    .map(|n| n as usize)
                    .with_context(|| format!("field `{key}` must be a non-negative integer, got {v}"))
            };
            let text = |key: &str, default: &str| -> Result<String> {
                match obj.get(key) {
                    None => Ok(default.to_string()),
                    Some(v) => v
                        .as_str()
                        .map(str::to_string)
                        .with_context(|| format!("field `{key}` must be a string, got {v}")),
                }
            };
            let layer_norm_eps = match obj.get("layer_norm_eps") {
                None => 1e-12,
                Some(v) => v.as_f64().with_context(|| format!("field `layer_norm_eps` must be a number, got {v}"))?,
            };
            let pad_token_id = match obj.get("pad_token_id") {
                None | Some(Value::Null) => 0,
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .with_context(|| format!("field `pad_token_id` must be a token id, got {v}"))?,
            };
            let model_type = match obj.get("model_type") {
                None | Some(Value::Null) => None,
                Some(_) => Some(text("model_type", "")?),
            };
            Ok(Self {
                hidden_size: size("hidden_size")?,
                num_hidden_layers: size("num_hidden_layers")?,
                num_attention_heads: size("num_attention_heads")?,
                intermediate_size: size("intermediate_size")?,
                vocab_size: size("vocab_size")?,
                max_position_embeddings: size("max_position_embeddings")?,
                type_vocab_size: size("type_vocab_size")?,
                hidden_act: text("hidden_act", "gelu")?,
                layer_norm_eps,
                pad_token_id,
                position_embedding_type: text("position_embedding_type", "absolute")?,
                model_type,
            })
        };
        let cfg = parse().with_context(|| format!("{origin}: invalid BERT config"))?;
        cfg.validate().with_context(|| format!("{origin}: unsupported BERT config"))?;
        Ok(cfg)
    }

    /// Checks that this implementation supports the configuration.
    pub fn validate(&self) -> Result<()> {
        if let Some(mt) = &self.model_type {
            ensure!(mt == "bert", "model_type `{mt}` is not supported (only `bert`)");
        }
        ensure!(
            self.position_embedding_type == "absolute",
            "position_embedding_type `{}` is not supported (only `absolute`)",
            self.position_embedding_type
        );
        self.activation()?;
        for (name, v) in [
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("vocab_size", self.vocab_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            ensure!(v > 0, "{name} must be positive");
        }
        ensure!(
            self.hidden_size.checked_rem(self.num_attention_heads) == Some(0),
            "hidden_size {} is not divisible by num_attention_heads {}",
            self.hidden_size,
            self.num_attention_heads
        );
        ensure!(self.layer_norm_eps > 0.0, "layer_norm_eps must be positive");
        Ok(())
    }

    /// The feed-forward activation named by `hidden_act`.
    pub fn activation(&self) -> Result<Activation> {
        Activation::from_config_name(&self.hidden_act)
            .with_context(|| format!("hidden_act `{}` is not supported", self.hidden_act))
    }
}

/// `BertEmbeddings`: word + token type + absolute position embeddings, then LayerNorm.
#[derive(Debug, Clone)]
struct BertEmbeddings {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    norm: LayerNorm,
}

/// One `BertLayer`: self-attention (the checkpoint's separate `query`/`key`/`value`
/// projections packed into one at load), then the feed-forward block, each followed by
/// residual + LayerNorm (post-LN).
#[derive(Debug, Clone)]
struct BertLayer {
    attn: Attention,
    attn_norm: LayerNorm,
    mlp: Mlp,
    out_norm: LayerNorm,
}

/// HF `BertModel`.
#[derive(Debug, Clone)]
pub struct BertModel {
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
    pooler: Option<Linear>,
    config: BertConfig,
}

impl BertModel {
    /// Buffers that HF checkpoints may store but that carry no weights (for
    /// `Weights::check_unused`, relative to the model's prefix).
    pub const BUFFER_KEYS: [&'static str; 2] = ["embeddings.position_ids", "embeddings.token_type_ids"];

    /// Builds the model from `vb` (rooted at the BERT module). Shapes are checked
    /// against `cfg`; `pooler.dense` is loaded when the checkpoint has it.
    pub fn new(vb: &View, cfg: &BertConfig) -> Result<Self> {
        cfg.validate()?;
        let (h, eps) = (cfg.hidden_size, cfg.layer_norm_eps);
        let e = vb.pp("embeddings");
        let embeddings = BertEmbeddings {
            word: e.pp("word_embeddings").get("weight", &[cfg.vocab_size, h])?,
            position: e.pp("position_embeddings").get("weight", &[cfg.max_position_embeddings, h])?,
            token_type: e.pp("token_type_embeddings").get("weight", &[cfg.type_vocab_size, h])?,
            norm: LayerNorm::new(&e.pp("LayerNorm"), h, eps)?,
        };
        let act = cfg.activation()?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let l = vb.pp("encoder").pp("layer").pp(i);
                let attn = l.pp("attention");
                let s = attn.pp("self");
                Ok(BertLayer {
                    attn: Attention::from_separate(
                        Linear::new(&s.pp("query"), h, h, true)?,
                        Linear::new(&s.pp("key"), h, h, true)?,
                        Linear::new(&s.pp("value"), h, h, true)?,
                        Linear::new(&attn.pp("output").pp("dense"), h, h, true)?,
                        cfg.num_attention_heads,
                    )?,
                    attn_norm: LayerNorm::new(&attn.pp("output").pp("LayerNorm"), h, eps)?,
                    mlp: Mlp::new(
                        &l,
                        ("intermediate.dense", "output.dense"),
                        h,
                        cfg.intermediate_size,
                        h,
                        act,
                        MlpKind::Plain,
                        true,
                    )?,
                    out_norm: LayerNorm::new(&l.pp("output").pp("LayerNorm"), h, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let pooler = if vb.contains("pooler.dense.weight") {
            Some(Linear::new(&vb.pp("pooler").pp("dense"), h, h, true)?)
        } else {
            None
        };
        Ok(Self { embeddings, layers, pooler, config: cfg.clone() })
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    pub fn has_pooler(&self) -> bool {
        self.pooler.is_some()
    }

    /// `last_hidden_state` `[B, L, H]` for `input_ids` `[B, L]` (u32), `attention_mask`
    /// `[B, L]` (1 = token, 0 = padding; any dtype) and optional `token_type_ids`
    /// `[B, L]` (u32; all zeros when absent, as HF does).
    ///
    /// Padding keys get an additive `f32::MIN` logit bias (HF's dtype-min mask), so
    /// real tokens' outputs do not depend on how much padding follows them.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: Option<&Tensor>,
    ) -> Result<Tensor> {
        let cfg = &self.config;
        let (b, l) = input_ids.dims2().context("input_ids must be [batch, length]")?;
        ensure!(
            attention_mask.dims() == [b, l],
            "attention_mask has shape {:?}, input_ids {:?}",
            attention_mask.dims(),
            [b, l]
        );
        ensure!(
            l <= cfg.max_position_embeddings,
            "sequence length {l} exceeds max_position_embeddings {}",
            cfg.max_position_embeddings
        );
        let ids = input_ids.to_dtype(DType::U32)?;
        check_ids(&ids, cfg.vocab_size, "token id", "vocab_size")?;
        let emb = &self.embeddings;
        let mut x = emb.word.index_select(&ids.flatten_all()?, 0)?.reshape((b, l, cfg.hidden_size))?;
        let types = match token_type_ids {
            Some(tt) => {
                ensure!(tt.dims() == [b, l], "token_type_ids has shape {:?}, input_ids {:?}", tt.dims(), [b, l]);
                let tt = tt.to_dtype(DType::U32)?;
                check_ids(&tt, cfg.type_vocab_size, "token type id", "type_vocab_size")?;
                emb.token_type.index_select(&tt.flatten_all()?, 0)?.reshape((b, l, cfg.hidden_size))?
            }
            None => emb.token_type.narrow(0, 0, 1)?.unsqueeze(0)?.broadcast_as((b, l, cfg.hidden_size))?,
        };
        x = (x + types)?;
        x = x.broadcast_add(&emb.position.narrow(0, 0, l)?.unsqueeze(0)?)?;
        x = emb.norm.forward(&x)?;

        let bias = k::key_padding_bias(attention_mask)?.to_dtype(x.dtype())?;
        for layer in &self.layers {
            x = layer.attn_norm.forward(&layer.attn.forward_residual(&x, Some(&bias), &x)?)?;
            x = layer.out_norm.forward(&layer.mlp.forward_residual(&x, &x)?)?;
        }
        Ok(x)
    }

    /// HF `BertPooler`: `tanh(dense(last_hidden_state[:, 0]))` `[B, H]`; `None` when the
    /// checkpoint has no pooler.
    pub fn pool(&self, last_hidden_state: &Tensor) -> Result<Option<Tensor>> {
        let Some(dense) = &self.pooler else { return Ok(None) };
        let first = last_hidden_state.narrow(1, 0, 1)?.squeeze(1)?;
        Ok(Some(dense.forward(&first)?.tanh()?))
    }
}

/// Errors (instead of an out-of-bounds gather) when an id is not below `limit`.
fn check_ids(ids: &Tensor, limit: usize, what: &str, field: &str) -> Result<()> {
    if ids.elem_count() == 0 {
        return Ok(());
    }
    let max = ids.flatten_all()?.max(D::Minus1)?.to_scalar::<u32>()? as usize;
    if max >= limit {
        bail!("{what} {max} is out of range ({field} is {limit})");
    }
    Ok(())
}
