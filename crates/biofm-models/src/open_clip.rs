//! open_clip models from the hub layout (`open_clip_config.json` + weights), as
//! `open_clip.create_model_from_pretrained("hf-hub:..." | "local-dir:...")` builds them
//! (open_clip 3.3).
//!
//! Supported towers are the ones BiomedCLIP uses (`CustomTextCLIP`): a timm vision
//! trunk (`vision_cfg.timm_model_name`) with open_clip's `TimmModel` head, and an HF
//! text transformer (`text_cfg.hf_model_name`, a BERT) with open_clip's `HFTextEncoder`
//! pooler and projection. Native open_clip towers (`layers`/`width` configs) are
//! reported as unsupported.
//!
//! Where a tower's configuration comes from:
//! * vision: `timm_model_name` is a timm name (`vit_base_patch16_224`), `local-dir:DIR`
//!   (a timm `config.json` folder, relative to the model directory — open_clip and timm
//!   resolve it relative to the working directory), or `hf-hub:ORG/NAME`;
//! * text: `hf_model_name` is looked up in the built-in configs (BiomedBERT, which
//!   BiomedCLIP's files leave out), then as a folder relative to the model directory,
//!   then as a hub repository in the HF cache.
//!   The tokenizer is the model directory's own (`tokenizer.json` / `vocab.txt`, as the
//!   BiomedCLIP repository ships), else `hf_tokenizer_name` resolved the same way.

use crate::text_configs::known_text_config;
use crate::{timm, FileSource};
use anyhow::{bail, ensure, Context, Result};
use biofm_kernels::{self as k, Activation};
use biofm_nn::bert::{BertConfig, BertModel};
use biofm_nn::vit::VisionTransformer;
use biofm_nn::{Linear, Mlp, MlpKind};
use biofm_preprocess::image::{open_clip_eval, Filter, ResizeMode, TransformConfig};
use biofm_preprocess::text::{open_clip_clean, Encoded, Padding, TextTokenizer, TokenizerFiles};
use biofm_weights::{KeyRules, View, Weights};
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// Checkpoint names in open_clip's order of preference (`_find_checkpoint_in_dir`).
pub const WEIGHT_FILES: &[&str] = &[
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
    "model.safetensors",
    "pytorch_model.bin",
    "pytorch_model.pth",
    "model.pth",
];

const OPENAI_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
const OPENAI_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// Resolves files that live outside the model directory (an HF text config or
/// tokenizer named by repository): `(repo_or_dir, file) -> local path`.
pub type ExternalFiles<'a> = &'a dyn Fn(&str, &str) -> Result<Option<PathBuf>>;

#[derive(Debug, Deserialize)]
struct OpenClipJson {
    model_cfg: ModelCfg,
    #[serde(default)]
    preprocess_cfg: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct ModelCfg {
    embed_dim: usize,
    vision_cfg: VisionCfg,
    text_cfg: TextCfg,
    #[serde(default)]
    init_logit_bias: Option<f64>,
}

/// `CLIPVisionCfg`, the fields that matter for timm towers (open_clip's defaults).
#[derive(Debug, Deserialize)]
struct VisionCfg {
    timm_model_name: Option<String>,
    #[serde(default = "default_timm_pool")]
    timm_pool: String,
    #[serde(default = "default_timm_proj")]
    timm_proj: String,
    #[serde(default)]
    timm_proj_bias: bool,
    #[serde(default = "default_image_size")]
    image_size: Value,
    #[serde(flatten)]
    _rest: Map<String, Value>,
}

/// `CLIPTextCfg`, the fields that matter for HF towers (open_clip's defaults).
#[derive(Debug, Deserialize)]
struct TextCfg {
    hf_model_name: Option<String>,
    hf_tokenizer_name: Option<String>,
    #[serde(default = "default_hf_proj")]
    hf_proj_type: Option<String>,
    #[serde(default = "default_hf_pooler")]
    hf_pooler_type: String,
    #[serde(default = "default_context_length")]
    context_length: usize,
    #[serde(default)]
    tokenizer_kwargs: Map<String, Value>,
    #[serde(flatten)]
    _rest: Map<String, Value>,
}

fn default_timm_pool() -> String {
    "avg".into()
}
fn default_timm_proj() -> String {
    "linear".into()
}
fn default_image_size() -> Value {
    json!(224)
}
fn default_hf_proj() -> Option<String> {
    Some("mlp".into())
}
fn default_hf_pooler() -> String {
    "mean_pooler".into()
}
fn default_context_length() -> usize {
    77
}

/// open_clip's `TimmModel.head`.
#[derive(Debug, Clone)]
enum VisualHead {
    /// `proj=''` / `'none'`: the trunk's own classifier (or nothing) is the output.
    None,
    /// `proj='linear'`: `head.proj`.
    Linear(Linear),
    /// `proj='mlp'`: timm `Mlp(width, 2·embed, embed)` at `head.mlp`.
    Mlp(Mlp),
}

/// open_clip's HF text poolers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextPooler {
    /// `mean_pooler`: mean of the unmasked tokens.
    Mean,
    /// `cls_pooler`: the transformer's `pooler_output` (dense + tanh on `[CLS]`).
    ClsPoolerOutput,
    /// `cls_last_hidden_state_pooler`: `last_hidden_state[:, 0]`.
    ClsLastHidden,
}

/// `HFTextEncoder.proj`.
#[derive(Debug, Clone)]
enum TextProj {
    Identity,
    Linear(Linear),
    /// `Linear(d, (d+out)/2, bias=False) → GELU → Linear(.., out, bias=False)`.
    Mlp(Mlp),
}

/// An open_clip `CustomTextCLIP` with a timm vision tower and an HF BERT text tower.
#[derive(Debug)]
pub struct OpenClip {
    trunk: VisionTransformer,
    visual_head: VisualHead,
    text: BertModel,
    pooler: TextPooler,
    text_proj: TextProj,
    tokenizer: TextTokenizer,
    context_length: usize,
    embed_dim: usize,
    logit_scale: f32,
    logit_bias: Option<f32>,
    transform: TransformConfig,
    device: Device,
}

impl OpenClip {
    /// Loads an open_clip model directory (`open_clip_config.json` + a checkpoint from
    /// [`WEIGHT_FILES`]) with strict key checking. `external` resolves HF configs and
    /// tokenizers named by repository (the hub cache); pass `None` to use only built-in
    /// and local files.
    pub fn load(src: &dyn FileSource, dtype: DType, device: &Device, external: Option<ExternalFiles>) -> Result<Self> {
        let raw = src.json("open_clip_config.json")?;
        let cfg: OpenClipJson = serde_json::from_value(raw)
            .with_context(|| format!("{}: open_clip_config.json has no valid `model_cfg`", src.describe()))?;
        let m = &cfg.model_cfg;

        // ---- vision tower spec (timm) ----
        let timm_name = m.vision_cfg.timm_model_name.as_deref().with_context(|| {
            format!(
                "{}: only timm vision towers (`vision_cfg.timm_model_name`) are supported, as in BiomedCLIP; \
                 native open_clip vision towers are not yet",
                src.describe()
            )
        })?;
        let pool = m.vision_cfg.timm_pool.as_str();
        if matches!(pool, "abs_attn" | "rot_attn") {
            bail!("{}: timm_pool `{pool}` (attention pooling heads) is not supported", src.describe());
        }
        let proj = m.vision_cfg.timm_proj.as_str();
        let extra_proj = matches!(proj, "linear" | "mlp");
        if !extra_proj && !matches!(proj, "" | "none") {
            bail!("{}: unknown timm_proj `{proj}` (expected linear, mlp, none or empty)", src.describe());
        }
        // TimmModel: with an extra projection the trunk is created with its defaults and
        // `reset_classifier(0, global_pool=pool)` follows; otherwise the trunk's own
        // classifier (num_classes = embed_dim, or 0 for 'none') is the projection.
        let mut overrides = Map::new();
        if extra_proj {
            overrides.insert("num_classes".into(), json!(0));
        } else {
            overrides.insert("num_classes".into(), json!(if proj == "none" { 0 } else { m.embed_dim }));
            overrides.insert("global_pool".into(), json!(pool));
        }
        let mut spec = timm_spec(src, timm_name, &overrides, external)?;
        if extra_proj && !pool.is_empty() {
            // reset_classifier changes only the pooling: norm/fc_norm stay as built.
            spec.config.fc_norm = Some(spec.config.uses_fc_norm());
            spec.config.global_pool = serde_json::from_value(json!(pool))
                .with_context(|| format!("{}: unknown timm_pool `{pool}`", src.describe()))?;
        }

        // ---- text tower spec (HF BERT) ----
        let hf_name = m.text_cfg.hf_model_name.as_deref().with_context(|| {
            format!(
                "{}: only HF text towers (`text_cfg.hf_model_name`) are supported, as in BiomedCLIP; \
                 native open_clip text towers are not yet",
                src.describe()
            )
        })?;
        ensure!(
            m.text_cfg.tokenizer_kwargs.is_empty(),
            "{}: text_cfg.tokenizer_kwargs {:?} are not supported",
            src.describe(),
            m.text_cfg.tokenizer_kwargs
        );
        let bert_cfg = text_config(src, hf_name, external)?;
        let pooler = match m.text_cfg.hf_pooler_type.as_str() {
            "mean_pooler" => TextPooler::Mean,
            "cls_pooler" => TextPooler::ClsPoolerOutput,
            "cls_last_hidden_state_pooler" => TextPooler::ClsLastHidden,
            other => bail!(
                "{}: hf_pooler_type `{other}` is not supported (mean_pooler, cls_pooler, cls_last_hidden_state_pooler)",
                src.describe()
            ),
        };
        let tokenizer = load_tokenizer(src, m.text_cfg.hf_tokenizer_name.as_deref().unwrap_or(hf_name), external)?;
        let context_length = m.text_cfg.context_length;
        ensure!(
            context_length <= bert_cfg.max_position_embeddings,
            "{}: context_length {context_length} exceeds the text model's {} positions",
            src.describe(),
            bert_cfg.max_position_embeddings
        );

        // ---- weights ----
        let weights_path = WEIGHT_FILES
            .iter()
            .find_map(|n| src.get(n).transpose())
            .transpose()?
            .with_context(|| format!("{} has no checkpoint (looked for {})", src.describe(), WEIGHT_FILES.join(", ")))?;
        let mut weights = Weights::open(&weights_path)?;
        // open_clip's load_checkpoint: strip DataParallel's `module.`, drop the stale
        // position_ids buffer older transformers saved.
        if weights.keys().next().is_some_and(|k| k.starts_with("module.")) {
            weights.apply_rules(&KeyRules::new().strip_prefix("module."))?;
        }
        let vb = weights.view(dtype, device);
        let ctx = |what: &str| format!("{}: building the {what} from {}", src.describe(), weights_path.display());

        let trunk = spec.build(&vb.pp("visual").pp("trunk")).with_context(|| ctx("vision tower"))?;
        let width = trunk.num_features();
        let hv = vb.pp("visual").pp("head");
        let visual_head = match proj {
            "linear" => VisualHead::Linear(Linear::new(&hv.pp("proj"), width, m.embed_dim, m.vision_cfg.timm_proj_bias)?),
            "mlp" => VisualHead::Mlp(
                mlp_with_biases(&hv.pp("mlp"), width, 2 * m.embed_dim, m.embed_dim, m.vision_cfg.timm_proj_bias)
                    .with_context(|| ctx("vision projection"))?,
            ),
            _ => VisualHead::None,
        };

        let tb = vb.pp("text");
        let text = BertModel::new(&tb.pp("transformer"), &bert_cfg).with_context(|| ctx("text tower"))?;
        if pooler == TextPooler::ClsPoolerOutput && !text.has_pooler() {
            bail!("{}: hf_pooler_type cls_pooler needs `text.transformer.pooler.dense` weights", src.describe());
        }
        let d = bert_cfg.hidden_size;
        let text_proj = match m.text_cfg.hf_proj_type.as_deref() {
            None if d == m.embed_dim => TextProj::Identity,
            Some("linear") => TextProj::Linear(Linear::new(&tb.pp("proj"), d, m.embed_dim, false)?),
            Some("mlp") => TextProj::Mlp(Mlp::new(
                &tb.pp("proj"),
                ("0", "2"),
                d,
                (d + m.embed_dim) / 2,
                m.embed_dim,
                Activation::Gelu,
                MlpKind::Plain,
                false,
            )?),
            other => bail!(
                "{}: hf_proj_type {other:?} with width {d} and embed_dim {} is not supported",
                src.describe(),
                m.embed_dim
            ),
        };

        let scalar = |key: &str| -> Result<f32> {
            let t = vb.get_unchecked(key)?.to_dtype(DType::F32)?.flatten_all()?;
            ensure!(t.elem_count() == 1, "`{key}` should hold one value, found shape {:?}", t.dims());
            Ok(t.to_vec1::<f32>()?[0])
        };
        let logit_scale = scalar("logit_scale")?;
        let logit_bias = if m.init_logit_bias.is_some() || weights.contains("logit_bias") {
            Some(scalar("logit_bias")?)
        } else {
            None
        };
        let mut allow: Vec<String> = BertModel::BUFFER_KEYS.iter().map(|k| format!("text.transformer.{k}")).collect();
        if pooler != TextPooler::ClsPoolerOutput {
            // open_clip builds BertModel(add_pooling_layer=False) for other poolers.
            allow.push("text.transformer.pooler.".into());
        }
        weights
            .check_unused(&allow.iter().map(String::as_str).collect::<Vec<_>>())
            .with_context(|| format!("{}: checkpoint and open_clip_config.json disagree", src.describe()))?;

        let transform = preprocess(&cfg.preprocess_cfg, &m.vision_cfg.image_size)
            .with_context(|| format!("{}: invalid preprocess_cfg", src.describe()))?;

        Ok(Self {
            trunk,
            visual_head,
            text,
            pooler,
            text_proj,
            tokenizer,
            context_length,
            embed_dim: m.embed_dim,
            logit_scale,
            logit_bias,
            transform,
            device: device.clone(),
        })
    }

    /// Width of the joint embedding space.
    pub fn embed_dim(&self) -> usize {
        self.embed_dim
    }
    /// Maximum tokens per text (longer texts are truncated as open_clip does).
    pub fn context_length(&self) -> usize {
        self.context_length
    }
    /// `logit_scale` as stored (a log); zero-shot multiplies by its exponential.
    pub fn logit_scale(&self) -> f32 {
        self.logit_scale
    }
    pub fn logit_bias(&self) -> Option<f32> {
        self.logit_bias
    }
    /// The eval transform open_clip would build for this model.
    pub fn transform(&self) -> &TransformConfig {
        &self.transform
    }
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// `model.encode_image(pixels)`: `[B, 3, H, W]` → `[B, embed_dim]` (not normalised).
    pub fn encode_image(&self, pixels: &Tensor) -> Result<Tensor> {
        let feats = self.trunk.forward(pixels)?;
        match &self.visual_head {
            VisualHead::None => Ok(feats),
            VisualHead::Linear(l) => l.forward(&feats),
            VisualHead::Mlp(m) => m.forward(&feats),
        }
    }

    /// open_clip's `HFTokenizer`: clean (ftfy + HTML unescape + whitespace), tokenise,
    /// truncate to the context length. Padding is `Longest` for speed; open_clip pads to
    /// the context length, which gives the same embeddings because padding is masked.
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S], padding: Padding) -> Result<Encoded> {
        let cleaned: Vec<String> = texts.iter().map(|t| open_clip_clean(t.as_ref())).collect();
        Ok(self.tokenizer.encode_batch(&cleaned, self.context_length, padding)?)
    }

    /// `model.encode_text(ids)` for an already tokenised batch. The attention mask is
    /// `ids != pad_token_id`, as `HFTextEncoder` computes it.
    pub fn encode_tokens(&self, enc: &Encoded) -> Result<Tensor> {
        let ids = Tensor::from_vec(enc.ids.clone(), (enc.batch, enc.len), &self.device)?;
        let pad = self.text.config().pad_token_id as u32;
        let mask: Vec<f32> = enc.ids.iter().map(|&i| if i == pad { 0.0 } else { 1.0 }).collect();
        let mask = Tensor::from_vec(mask, (enc.batch, enc.len), &self.device)?;
        let hidden = self.text.forward(&ids, &mask, None)?;
        let pooled = match self.pooler {
            TextPooler::ClsLastHidden => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            TextPooler::ClsPoolerOutput => self.text.pool(&hidden)?.context("text tower has no pooler")?,
            TextPooler::Mean => {
                let m = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
                let sum = hidden.broadcast_mul(&m)?.sum(1)?;
                sum.broadcast_div(&m.sum(1)?)?
            }
        };
        match &self.text_proj {
            TextProj::Identity => Ok(pooled),
            TextProj::Linear(l) => l.forward(&pooled),
            TextProj::Mlp(m) => m.forward(&pooled),
        }
    }

    /// Cleans, tokenises and encodes `texts` (not normalised). Also returns which texts
    /// were truncated to the context length.
    pub fn encode_text<S: AsRef<str>>(&self, texts: &[S]) -> Result<(Tensor, Vec<bool>)> {
        let enc = self.tokenize(texts, Padding::Longest)?;
        Ok((self.encode_tokens(&enc)?, enc.truncated.clone()))
    }
}

/// timm `Mlp(in, hidden, out, bias=(True, proj_bias))` with GELU, keys `fc1`/`fc2`.
fn mlp_with_biases(vb: &View, d_in: usize, hidden: usize, out: usize, proj_bias: bool) -> Result<Mlp> {
    let fc1 = Linear::new(&vb.pp("fc1"), d_in, hidden, true)?;
    let fc2 = Linear::new(&vb.pp("fc2"), hidden, out, proj_bias)?;
    Ok(Mlp { fc1, fc2, act: Activation::Gelu, kind: MlpKind::Plain })
}

/// Resolves `vision_cfg.timm_model_name` to a timm ViT spec.
fn timm_spec(
    src: &dyn FileSource,
    name: &str,
    overrides: &Map<String, Value>,
    external: Option<ExternalFiles>,
) -> Result<timm::TimmVitSpec> {
    if let Some(dir) = name.strip_prefix("local-dir:") {
        let rel = format!("{}/config.json", dir.trim_end_matches('/'));
        let cfg = src.json(&rel).with_context(|| format!("timm_model_name `{name}`"))?;
        return timm::from_hub_config(&cfg, overrides).with_context(|| format!("timm_model_name `{name}`"));
    }
    if let Some(repo) = name.strip_prefix("hf-hub:") {
        let ext = external.with_context(|| format!("timm_model_name `{name}` needs the hub cache"))?;
        let path = ext(repo, "config.json")?.with_context(|| format!("hf-hub repository {repo} has no config.json"))?;
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let cfg: Value = serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
        return timm::from_hub_config(&cfg, overrides).with_context(|| format!("timm_model_name `{name}`"));
    }
    timm::from_name(name, overrides)
}

/// The HF text model's config: built-in, a folder beside the model, or the hub cache.
fn text_config(src: &dyn FileSource, name: &str, external: Option<ExternalFiles>) -> Result<BertConfig> {
    if let Some(cfg) = known_text_config(name) {
        return Ok(cfg);
    }
    let local = format!("{}/config.json", name.trim_end_matches('/'));
    if let Some(p) = src.get(&local)? {
        return BertConfig::from_file(&p);
    }
    if let Some(ext) = external {
        if let Some(p) = ext(name, "config.json")? {
            return BertConfig::from_file(&p);
        }
    }
    bail!(
        "{}: cannot find the configuration of text model `{name}`: it is not built in, there is no \
         `{local}` beside the model, and it is not in the Hugging Face cache",
        src.describe()
    )
}

/// The tokenizer: the model directory's own files, else `name` beside the model or in
/// the hub cache.
fn load_tokenizer(src: &dyn FileSource, name: &str, external: Option<ExternalFiles>) -> Result<TextTokenizer> {
    let local = |prefix: &str| -> Result<TokenizerFiles> {
        let f = |n: &str| src.get(&format!("{prefix}{n}"));
        Ok(TokenizerFiles {
            tokenizer_json: f("tokenizer.json")?,
            vocab_txt: f("vocab.txt")?,
            tokenizer_config: f("tokenizer_config.json")?,
            special_tokens_map: f("special_tokens_map.json")?,
        })
    };
    let has = |f: &TokenizerFiles| f.tokenizer_json.is_some() || f.vocab_txt.is_some();
    let mut files = local("")?;
    if !has(&files) {
        files = local(&format!("{}/", name.trim_end_matches('/')))?;
    }
    if !has(&files) {
        if let Some(ext) = external {
            files = TokenizerFiles {
                tokenizer_json: ext(name, "tokenizer.json")?,
                vocab_txt: ext(name, "vocab.txt")?,
                tokenizer_config: ext(name, "tokenizer_config.json")?,
                special_tokens_map: ext(name, "special_tokens_map.json")?,
            };
        }
    }
    ensure!(
        has(&files),
        "{}: no tokenizer found (tokenizer.json or vocab.txt in the model folder, in `{name}/`, or in the HF cache for `{name}`)",
        src.describe()
    );
    TextTokenizer::load(&files).with_context(|| format!("{}: cannot load the tokenizer", src.describe()))
}

/// open_clip's `PreprocessCfg` (defaults, overlaid with `preprocess_cfg`, size from the
/// vision tower's `image_size`) as an eval transform.
fn preprocess(cfg: &Map<String, Value>, image_size: &Value) -> Result<TransformConfig> {
    let size = match image_size {
        Value::Array(a) if a.len() == 2 => {
            let h = a[0].as_u64().context("image_size must be integers")?;
            let w = a[1].as_u64().context("image_size must be integers")?;
            (h as u32, w as u32)
        }
        v => {
            let s = v.as_u64().with_context(|| format!("image_size must be an integer or [h, w], got {v}"))? as u32;
            (s, s)
        }
    };
    let triple = |key: &str, default: [f32; 3]| -> Result<[f32; 3]> {
        match cfg.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => {
                let a: Vec<f32> = serde_json::from_value(v.clone()).with_context(|| format!("`{key}` must be 3 numbers"))?;
                match a.as_slice() {
                    [x] => Ok([*x; 3]),
                    [x, y, z] => Ok([*x, *y, *z]),
                    _ => bail!("`{key}` must have 1 or 3 values, got {}", a.len()),
                }
            }
        }
    };
    let mean = triple("mean", OPENAI_MEAN)?;
    let std = triple("std", OPENAI_STD)?;
    let filter = match cfg.get("interpolation").and_then(Value::as_str).unwrap_or("bicubic") {
        "bicubic" => Filter::Bicubic,
        "bilinear" => Filter::Bilinear,
        "nearest" => Filter::Nearest,
        "lanczos" => Filter::Lanczos,
        other => bail!("unknown interpolation `{other}`"),
    };
    let mode = match cfg.get("resize_mode").and_then(Value::as_str).unwrap_or("shortest") {
        "shortest" => ResizeMode::Shortest,
        "longest" => ResizeMode::Longest,
        "squash" => ResizeMode::Squash,
        other => bail!("unknown resize_mode `{other}`"),
    };
    if let Some(fill) = cfg.get("fill_color").and_then(Value::as_f64) {
        ensure!(fill == 0.0, "fill_color {fill} is not supported (only 0)");
    }
    Ok(open_clip_eval(size, filter, mode, mean, std))
}

/// L2-normalised rows (`F.normalize(x, dim=-1)`).
pub fn normalize(x: &Tensor) -> Result<Tensor> {
    Ok(k::l2_normalize(&x.to_dtype(DType::F32)?)?)
}

/// open_clip `build_zero_shot_classifier`: for each class, the normalised text
/// embeddings of every template (with `{}` replaced by the class name) are averaged and
/// re-normalised. Returns `[embed_dim, classes]`.
pub fn zero_shot_classifier(
    encode: &dyn Fn(&[String]) -> Result<Tensor>,
    classnames: &[String],
    templates: &[String],
) -> Result<Tensor> {
    ensure!(!classnames.is_empty(), "no class names");
    ensure!(!templates.is_empty(), "no prompt templates");
    for t in templates {
        ensure!(t.contains("{}"), "template `{t}` has no `{{}}` placeholder for the class name");
    }
    let mut cols = Vec::with_capacity(classnames.len());
    for c in classnames {
        let texts: Vec<String> = templates.iter().map(|t| t.replace("{}", c)).collect();
        let emb = normalize(&encode(&texts)?)?;
        let mean = emb.mean(0)?;
        let norm = mean.sqr()?.sum_all()?.sqrt()?;
        cols.push(mean.broadcast_div(&norm)?);
    }
    Ok(Tensor::stack(&cols, 1)?)
}

/// Zero-shot probabilities: `softmax(exp(logit_scale) · img @ classifier (+ bias))`
/// for L2-normalised image embeddings `[N, D]`.
pub fn zero_shot_probs(image_emb: &Tensor, classifier: &Tensor, logit_scale: f32, logit_bias: Option<f32>) -> Result<Tensor> {
    let mut logits = (image_emb.matmul(classifier)? * f64::from(logit_scale).exp())?;
    if let Some(b) = logit_bias {
        logits = (logits + f64::from(b))?;
    }
    Ok(k::softmax_last_dim(&logits.contiguous()?)?.to_dtype(DType::F32)?)
}

/// Cosine similarity matrix of two L2-normalised sets, `[A, B]`.
pub fn similarity(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(a.matmul(&b.t()?)?.to_dtype(DType::F32)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn model_is_send_and_sync() {
        fn f<T: Send + Sync>() {}
        f::<super::OpenClip>();
    }
}
