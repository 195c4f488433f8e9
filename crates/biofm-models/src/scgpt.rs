//! scGPT (`scgpt.model.TransformerModel`, as `scgpt.tasks.cell_emb.embed_data` builds
//! it) for cell embeddings.
//!
//! Checkpoint folder: `best_model.pt` (a torch state dict), `args.json`, `vocab.json`.
//! Keys used: `encoder.embedding.weight [V, D]`, `encoder.enc_norm.*` (GeneEncoder),
//! `value_encoder.{linear1 [D, 1], linear2 [D, D], norm}` (ContinuousValueEncoder),
//! `transformer_encoder.layers.{i}.*` (post-norm `nn.TransformerEncoderLayer`, ReLU).
//! Flash-attention checkpoints (`self_attn.Wqkv.*`, `self_attn._impl.*`) are renamed as
//! the reference's `load_pretrained` does. The training heads (`decoder`,
//! `cls_decoder`, `mvc_decoder`, ...) are not needed for embeddings and are skipped.
//!
//! Forward (`_encode`): `enc_norm(embedding(genes)) + value_encoder(values)`, where the
//! value encoder is `norm(linear2(relu(linear1(min(x, 512)))))`, then the encoder layers
//! with the `<pad>` positions masked as keys. The cell embedding is the output at
//! position 0 (`<cls>`); `embed_data` then L2-normalises it.

use anyhow::{bail, ensure, Context, Result};
use biofm_kernels::{self as k, Activation};
use biofm_nn::{EncoderLayerConfig, LayerNorm, Mlp, MlpKind, TransformerEncoderLayer};
use biofm_weights::{KeyRules, Weights};
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The `args.json` fields the model and its input pipeline use.
#[derive(Debug, Clone, Deserialize)]
pub struct ScGptArgs {
    pub embsize: usize,
    pub nheads: usize,
    pub d_hid: usize,
    pub nlayers: usize,
    #[serde(default = "default_pad_token")]
    pub pad_token: String,
    #[serde(default = "default_pad_value")]
    pub pad_value: f32,
    #[serde(default = "default_n_bins")]
    pub n_bins: usize,
    #[serde(default)]
    pub input_emb_style: Option<String>,
    #[serde(default)]
    pub cell_emb_style: Option<String>,
    #[serde(default)]
    pub pre_norm: Option<bool>,
}

fn default_pad_token() -> String {
    "<pad>".into()
}
fn default_pad_value() -> f32 {
    -2.0
}
fn default_n_bins() -> usize {
    51
}

/// `ContinuousValueEncoder`'s clamp.
const MAX_VALUE: f64 = 512.0;
const LN_EPS: f64 = 1e-5;
/// Checkpoint names tried in order.
pub const WEIGHT_FILES: [&str; 3] = ["best_model.pt", "model.safetensors", "best_model.safetensors"];

/// The gene vocabulary (`vocab.json`: gene symbol -> id).
#[derive(Debug, Clone)]
pub struct GeneVocab {
    ids: HashMap<String, u32>,
    pub pad_id: u32,
    pub cls_id: u32,
    size: usize,
}

impl GeneVocab {
    /// Reads `vocab.json`. Like the reference's `GeneVocab.from_file` + `embed_data`,
    /// `<pad>`, `<cls>` and `<eoc>` are appended when missing.
    pub fn from_file(path: &Path, pad_token: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let raw: HashMap<String, i64> =
            serde_json::from_str(&text).with_context(|| format!("{}: expected a JSON object gene -> id", path.display()))?;
        let mut ids = HashMap::with_capacity(raw.len() + 3);
        for (g, id) in raw {
            let id = u32::try_from(id).with_context(|| format!("{}: gene `{g}` has id {id}", path.display()))?;
            ids.insert(g, id);
        }
        let mut size = ids.values().map(|&v| v as usize + 1).max().unwrap_or(0);
        for special in [pad_token, "<cls>", "<eoc>"] {
            if !ids.contains_key(special) {
                ids.insert(special.to_string(), size as u32);
                size += 1;
            }
        }
        Ok(Self { pad_id: ids[pad_token], cls_id: ids["<cls>"], ids, size })
    }

    pub fn get(&self, gene: &str) -> Option<u32> {
        self.ids.get(gene).copied()
    }

    /// Number of ids (the embedding table's rows).
    pub fn len(&self) -> usize {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

/// A loaded scGPT model.
pub struct ScGpt {
    pub args: ScGptArgs,
    pub vocab: GeneVocab,
    gene_embedding: Tensor,
    enc_norm: LayerNorm,
    value_mlp: Mlp,
    value_norm: LayerNorm,
    layers: Vec<TransformerEncoderLayer>,
    dir: PathBuf,
}

impl ScGpt {
    /// Loads a checkpoint folder (`best_model.pt`, `args.json`, `vocab.json`).
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        Self::load_with_weights(dir, None, dtype, device)
    }

    /// Like [`ScGpt::load`], with an explicit weights file.
    pub fn load_with_weights(dir: &Path, weights: Option<&Path>, dtype: DType, device: &Device) -> Result<Self> {
        if !dir.is_dir() {
            bail!(
                "{}: not a folder. scGPT checkpoints (best_model.pt, args.json, vocab.json) are published by the \
                 authors on Google Drive (see github.com/bowang-lab/scGPT, \"Pretrained scGPT Model Zoo\"); \
                 download one (e.g. whole-human) and pass its folder",
                dir.display()
            );
        }
        let args_path = dir.join("args.json");
        let args: ScGptArgs = serde_json::from_str(
            &std::fs::read_to_string(&args_path)
                .with_context(|| format!("{}: no args.json (an scGPT checkpoint folder has best_model.pt, args.json, vocab.json)", dir.display()))?,
        )
        .with_context(|| format!("{}: invalid scGPT args", args_path.display()))?;
        if let Some(style) = args.input_emb_style.as_deref() {
            ensure!(style == "continuous", "{}: input_emb_style `{style}` is not supported (only `continuous`)", args_path.display());
        }
        if let Some(style) = args.cell_emb_style.as_deref() {
            ensure!(style == "cls", "{}: cell_emb_style `{style}` is not supported (only `cls`)", args_path.display());
        }
        ensure!(args.n_bins >= 3, "{}: n_bins {} is too small", args_path.display(), args.n_bins);
        let vocab = GeneVocab::from_file(&dir.join("vocab.json"), &args.pad_token)?;

        let weights_path = match weights {
            Some(p) => p.to_path_buf(),
            None => WEIGHT_FILES
                .iter()
                .map(|n| dir.join(n))
                .find(|p| p.is_file())
                .with_context(|| format!("{}: no checkpoint (looked for {})", dir.display(), WEIGHT_FILES.join(", ")))?,
        };
        let mut w = Weights::open(&weights_path)?;
        // The reference's load_pretrained: flash-attn names to PyTorch MHA names.
        w.apply_rules(
            &KeyRules::new()
                .strip_prefix("module.")
                .rename("self_attn._impl.", "self_attn.")
                .rename("self_attn.Wqkv.", "self_attn.in_proj_"),
        )?;
        let ctx = || format!("{}: checkpoint and args.json/vocab.json disagree", weights_path.display());
        let vb = w.view(dtype, device);
        let d = args.embsize;
        let v_rows = vb.shape_of("encoder.embedding.weight").map(|s| s[0]).unwrap_or(0);
        ensure!(
            v_rows >= vocab.len(),
            "{}: the gene embedding has {v_rows} rows but vocab.json needs {} ids",
            weights_path.display(),
            vocab.len()
        );
        let gene_embedding = vb.pp("encoder.embedding").get("weight", &[v_rows, d]).with_context(ctx)?;
        let enc_norm = LayerNorm::new(&vb.pp("encoder.enc_norm"), d, LN_EPS).with_context(ctx)?;
        let ve = vb.pp("value_encoder");
        let value_mlp =
            Mlp::new(&ve, ("linear1", "linear2"), 1, d, d, Activation::Relu, MlpKind::Plain, true).with_context(ctx)?;
        let value_norm = LayerNorm::new(&ve.pp("norm"), d, LN_EPS).with_context(ctx)?;
        let cfg = EncoderLayerConfig {
            d_model: d,
            nhead: args.nheads,
            dim_feedforward: args.d_hid,
            activation: Activation::Relu,
            norm_first: args.pre_norm.unwrap_or(false),
            layer_norm_eps: LN_EPS,
        };
        let layers = (0..args.nlayers)
            .map(|i| TransformerEncoderLayer::new(&vb.pp("transformer_encoder.layers").pp(i), &cfg))
            .collect::<Result<Vec<_>>>()
            .with_context(ctx)?;
        if w.contains(&format!("transformer_encoder.layers.{}.norm1.weight", args.nlayers)) {
            bail!("{}: the checkpoint has more than nlayers = {} encoder layers", weights_path.display(), args.nlayers);
        }
        // Heads and buffers that embeddings do not use.
        w.check_unused(&[
            "decoder.",
            "cls_decoder.",
            "mvc_decoder.",
            "grad_reverse_discriminator.",
            "batch_encoder.",
            "dsbn.",
            "bn.",
            "flag_encoder.",
            "*.num_batches_tracked",
        ])
        .with_context(ctx)?;
        Ok(Self { args, vocab, gene_embedding, enc_norm, value_mlp, value_norm, layers, dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn dim(&self) -> usize {
        self.args.embsize
    }

    /// Encoder output `[B, L, D]` for gene ids `[B, L]` (u32) and values `[B, L]` (f32);
    /// positions whose gene is `<pad>` are masked as keys.
    pub fn encode(&self, genes: &Tensor, values: &Tensor) -> Result<Tensor> {
        let (b, l) = genes.dims2().context("genes must be [batch, length]")?;
        ensure!(values.dims() == [b, l], "values have shape {:?}, genes {:?}", values.dims(), [b, l]);
        let genes = genes.to_dtype(DType::U32)?;
        let rows = self.gene_embedding.dim(0)?;
        if b * l > 0 {
            let max = genes.flatten_all()?.max(0)?.to_scalar::<u32>()? as usize;
            ensure!(max < rows, "gene id {max} is out of range ({rows} embedding rows)");
        }
        let dtype = self.gene_embedding.dtype();
        let d = self.dim();
        let g = self.gene_embedding.index_select(&genes.flatten_all()?, 0)?.reshape((b, l, d))?;
        let g = self.enc_norm.forward(&g)?;
        let x = values.to_dtype(DType::F32)?.clamp(f64::NEG_INFINITY, MAX_VALUE)?.to_dtype(dtype)?.unsqueeze(2)?;
        let v = self.value_norm.forward(&self.value_mlp.forward(&x)?)?;
        let mut h = (g + v)?;
        let mask = genes.ne(self.vocab.pad_id)?;
        let bias = k::key_padding_bias(&mask)?.to_dtype(dtype)?;
        for layer in &self.layers {
            h = layer.forward(&h, Some(&bias))?;
        }
        Ok(h)
    }

    /// Cell embeddings `[B, D]` (f32, not normalised): the `<cls>` position's output.
    pub fn cell_embeddings(&self, genes: &Tensor, values: &Tensor) -> Result<Tensor> {
        Ok(self.encode(genes, values)?.narrow(1, 0, 1)?.squeeze(1)?.to_dtype(DType::F32)?)
    }
}
