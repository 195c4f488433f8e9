//! sentence-transformers models: `modules.json` listing a `Transformer` (an HF BERT
//! directory), a `Pooling` and optionally a `Normalize` module, as
//! sentence-transformers (6.2) loads and runs them.

use crate::source::FileSource;
use anyhow::{bail, ensure, Context, Result};
use biofm_nn::bert::{BertConfig, BertModel};
use biofm_preprocess::text::{Padding, TextTokenizer, TokenizerFiles};
use biofm_weights::Weights;
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use serde_json::Value;

/// How token embeddings become one sentence embedding (sentence-transformers
/// `Pooling`); several modes are concatenated in the order cls, max, mean,
/// mean_sqrt_len_tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolingMode {
    /// The first token (`[CLS]`).
    Cls,
    /// Element-wise maximum over real tokens.
    Max,
    /// Sum over real tokens divided by their number (clamped to 1e-9).
    Mean,
    /// Sum over real tokens divided by the square root of their number.
    MeanSqrtLen,
}

impl PoolingMode {
    fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "cls" => Self::Cls,
            "max" => Self::Max,
            "mean" => Self::Mean,
            "mean_sqrt_len_tokens" => Self::MeanSqrtLen,
            "weightedmean" | "lasttoken" => {
                bail!("pooling mode `{name}` is not supported (supported: cls, max, mean, mean_sqrt_len_tokens)")
            }
            other => bail!("unknown pooling mode `{other}`"),
        })
    }
}

/// One entry of `modules.json`.
#[derive(Debug, Deserialize)]
struct ModuleEntry {
    idx: usize,
    name: String,
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

impl ModuleEntry {
    /// The module class (`Transformer`, `Pooling`, ...) for sentence-transformers types.
    fn class(&self) -> Option<&str> {
        self.kind.strip_prefix("sentence_transformers.").and_then(|k| k.rsplit('.').next())
    }
    fn file(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.path.trim_end_matches('/'))
        }
    }
}

/// `sentence_bert_config.json` of the Transformer module.
#[derive(Debug, Default, Deserialize)]
struct SentenceBertConfig {
    #[serde(default)]
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

/// A sentence-transformers BERT encoder.
pub struct SentenceEncoder {
    tokenizer: TextTokenizer,
    bert: BertModel,
    pooling: Vec<PoolingMode>,
    normalize: bool,
    max_seq_length: usize,
    do_lower_case: bool,
    device: Device,
}

impl SentenceEncoder {
    /// Loads the model described by `modules.json` in `src`. Supported pipelines are
    /// `Transformer` (a BERT model; weights in `model.safetensors` or `pytorch_model.bin`,
    /// keys with or without a `bert.` prefix) → `Pooling` → optional `Normalize`; any
    /// other module is an error naming it.
    ///
    /// `max_seq_length` comes from `sentence_bert_config.json`, else
    /// `min(model_max_length, max_position_embeddings)` as sentence-transformers does.
    pub fn load(src: &dyn FileSource, dtype: DType, device: &Device) -> Result<Self> {
        let modules_value = src.json("modules.json")?;
        let mut modules: Vec<ModuleEntry> = serde_json::from_value(modules_value)
            .with_context(|| format!("{}: modules.json is not a list of {{idx, name, path, type}}", src.describe()))?;
        modules.sort_by_key(|m| m.idx);
        let classes: Vec<&str> = modules.iter().map(|m| m.class().unwrap_or("")).collect();
        for (m, class) in modules.iter().zip(&classes) {
            if !matches!(*class, "Transformer" | "Pooling" | "Normalize") {
                bail!(
                    "{}: module `{}` of type `{}` (path `{}`) is not supported; supported modules: Transformer, Pooling, Normalize",
                    src.describe(),
                    m.name,
                    m.kind,
                    m.path
                );
            }
        }
        let normalize = match classes.as_slice() {
            ["Transformer", "Pooling"] => false,
            ["Transformer", "Pooling", "Normalize"] => true,
            _ => bail!(
                "{}: unsupported module order {classes:?}; expected Transformer, Pooling[, Normalize]",
                src.describe()
            ),
        };
        let (tm, pm) = (&modules[0], &modules[1]);

        let config_path = src.require(&tm.file("config.json"))?;
        let cfg = BertConfig::from_file(&config_path)?;
        let st_cfg: SentenceBertConfig = match src.get(&tm.file("sentence_bert_config.json"))? {
            Some(p) => serde_json::from_value(src.json(&tm.file("sentence_bert_config.json"))?)
                .with_context(|| format!("{}: invalid sentence_bert_config.json", p.display()))?,
            None => SentenceBertConfig::default(),
        };
        let files = TokenizerFiles {
            tokenizer_json: src.get(&tm.file("tokenizer.json"))?,
            vocab_txt: src.get(&tm.file("vocab.txt"))?,
            tokenizer_config: src.get(&tm.file("tokenizer_config.json"))?,
            special_tokens_map: src.get(&tm.file("special_tokens_map.json"))?,
        };
        let tokenizer =
            TextTokenizer::load(&files).with_context(|| format!("{}: cannot load the tokenizer", src.describe()))?;
        let max_seq_length = match st_cfg.max_seq_length {
            Some(n) => n,
            None => {
                let model_max = match &files.tokenizer_config {
                    Some(_) => {
                        src.json(&tm.file("tokenizer_config.json"))?.get("model_max_length").and_then(Value::as_u64)
                    }
                    None => None,
                };
                model_max.map_or(cfg.max_position_embeddings, |m| (m as usize).min(cfg.max_position_embeddings))
            }
        };
        ensure!(
            max_seq_length <= cfg.max_position_embeddings,
            "{}: max_seq_length {max_seq_length} exceeds max_position_embeddings {}",
            src.describe(),
            cfg.max_position_embeddings
        );

        let weights_path = match src.get(&tm.file("model.safetensors"))? {
            Some(p) => p,
            None => src.get(&tm.file("pytorch_model.bin"))?.with_context(|| {
                format!(
                    "{} has neither {} nor {}",
                    src.describe(),
                    tm.file("model.safetensors"),
                    tm.file("pytorch_model.bin")
                )
            })?,
        };
        let weights = Weights::open(&weights_path)?;
        let prefix = ["", "bert."]
            .into_iter()
            .find(|p| weights.contains(&format!("{p}embeddings.word_embeddings.weight")))
            .with_context(|| {
                let sample: Vec<&str> = weights.keys().take(3).collect();
                format!(
                    "{}: no BERT embeddings (`embeddings.word_embeddings.weight`) found; keys look like {sample:?}",
                    weights_path.display()
                )
            })?;
        let root = weights.view(dtype, device);
        let vb = if prefix.is_empty() { root } else { root.pp("bert") };
        let bert = BertModel::new(&vb, &cfg)?;
        let mut allow: Vec<String> = BertModel::BUFFER_KEYS.iter().map(|k| format!("{prefix}{k}")).collect();
        allow.push("cls.".into()); // pre-training heads of BertFor* checkpoints
        weights.check_unused(&allow.iter().map(String::as_str).collect::<Vec<_>>())?;

        let pooling = parse_pooling(&src.json(&pm.file("config.json"))?, cfg.hidden_size)
            .with_context(|| format!("{}: invalid {}", src.describe(), pm.file("config.json")))?;

        Ok(Self {
            tokenizer,
            bert,
            pooling,
            normalize,
            max_seq_length,
            do_lower_case: st_cfg.do_lower_case,
            device: device.clone(),
        })
    }

    /// Length of the embeddings (hidden size times the number of pooling modes).
    pub fn dim(&self) -> usize {
        self.bert.hidden_size() * self.pooling.len()
    }

    /// Inputs longer than this many tokens (special tokens included) are truncated.
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    pub fn pooling(&self) -> &[PoolingMode] {
        &self.pooling
    }

    pub fn normalizes(&self) -> bool {
        self.normalize
    }

    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    pub fn bert(&self) -> &BertModel {
        &self.bert
    }

    /// Embeds `texts` in batches of `batch_size` (each padded to its longest text):
    /// returns `[N, dim]` f32 embeddings and, per text, whether it was truncated to
    /// [`Self::max_seq_length`] tokens. An empty list gives a `[0, dim]` tensor.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S], batch_size: usize) -> Result<(Tensor, Vec<bool>)> {
        ensure!(batch_size > 0, "batch size must be at least 1");
        if texts.is_empty() {
            return Ok((Tensor::zeros((0, self.dim()), DType::F32, &self.device)?, Vec::new()));
        }
        let mut outs = Vec::new();
        let mut truncated = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(batch_size) {
            let chunk: Vec<String> = chunk
                .iter()
                .map(|t| if self.do_lower_case { t.as_ref().to_lowercase() } else { t.as_ref().to_string() })
                .collect();
            let enc = self.tokenizer.encode_batch(&chunk, self.max_seq_length, Padding::Longest)?;
            let ids = Tensor::from_vec(enc.ids, (enc.batch, enc.len), &self.device)?;
            let mask = Tensor::from_vec(enc.attention_mask, (enc.batch, enc.len), &self.device)?;
            let hidden = self.bert.forward(&ids, &mask, None)?;
            let mut pooled = pool(&hidden, &mask, &self.pooling)?;
            if self.normalize {
                pooled = biofm_kernels::l2_normalize(&pooled)?;
            }
            outs.push(pooled);
            truncated.extend(enc.truncated);
        }
        Ok((Tensor::cat(&outs, 0)?, truncated))
    }
}

/// Reads a `1_Pooling/config.json`: the current `pooling_mode` (a name or a list) or
/// the legacy `pooling_mode_*` flags (none set means mean pooling).
fn parse_pooling(cfg: &Value, hidden: usize) -> Result<Vec<PoolingMode>> {
    let dim = cfg.get("embedding_dimension").or_else(|| cfg.get("word_embedding_dimension")).and_then(Value::as_u64);
    if let Some(d) = dim {
        ensure!(d as usize == hidden, "embedding dimension {d} does not match the transformer's hidden size {hidden}");
    }
    let modes = match cfg.get("pooling_mode") {
        Some(Value::String(s)) => vec![PoolingMode::from_name(s)?],
        Some(Value::Array(list)) => list
            .iter()
            .map(|m| m.as_str().context("pooling_mode entries must be strings").and_then(PoolingMode::from_name))
            .collect::<Result<Vec<_>>>()?,
        Some(other) => bail!("pooling_mode must be a string or a list, got {other}"),
        None => {
            let legacy = [
                ("pooling_mode_cls_token", "cls"),
                ("pooling_mode_max_tokens", "max"),
                ("pooling_mode_mean_tokens", "mean"),
                ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
                ("pooling_mode_weightedmean_tokens", "weightedmean"),
                ("pooling_mode_lasttoken", "lasttoken"),
            ];
            let active: Vec<PoolingMode> = legacy
                .iter()
                .filter(|(key, _)| cfg.get(*key).and_then(Value::as_bool).unwrap_or(false))
                .map(|(_, name)| PoolingMode::from_name(name))
                .collect::<Result<_>>()?;
            if active.is_empty() {
                vec![PoolingMode::Mean]
            } else {
                active
            }
        }
    };
    ensure!(!modes.is_empty(), "pooling_mode lists no mode");
    Ok(modes)
}

/// sentence-transformers `Pooling.forward` over `hidden` `[B, L, H]` with
/// `mask` `[B, L]` (1 = token), computed in f32; modes are concatenated.
fn pool(hidden: &Tensor, mask: &Tensor, modes: &[PoolingMode]) -> Result<Tensor> {
    let h = hidden.to_dtype(DType::F32)?;
    let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let mut outs = Vec::with_capacity(modes.len());
    for mode in modes {
        outs.push(match mode {
            PoolingMode::Cls => h.narrow(1, 0, 1)?.squeeze(1)?,
            PoolingMode::Max => {
                let keep = mask.to_dtype(DType::U8)?.unsqueeze(2)?.broadcast_as(h.shape())?;
                let neg = Tensor::full(f32::NEG_INFINITY, h.shape(), h.device())?;
                keep.where_cond(&h, &neg)?.max(1)?
            }
            PoolingMode::Mean | PoolingMode::MeanSqrtLen => {
                let sum = h.broadcast_mul(&m)?.sum(1)?;
                let count = m.sum(1)?.clamp(1e-9, f64::INFINITY)?;
                let denom = if *mode == PoolingMode::Mean { count } else { count.sqrt()? };
                sum.broadcast_div(&denom)?
            }
        });
    }
    Ok(Tensor::cat(&outs, 1)?)
}
