//! `--model` → a loaded model: registry names, hub repositories and local folders,
//! with the family detected from the files the folder holds.

use crate::open_clip::{self, OpenClip};
use crate::sentence_transformers::SentenceEncoder;
use crate::timm::{self, TimmVit};
use crate::{registry, FileSource};
use anyhow::{bail, Context, Result};
use biofm_hub::{HubConfig, ModelFiles, ModelRef};
use biofm_preprocess::image::{timm_eval, Filter, TimmCropMode, TransformConfig};
use candle_core::{DType, Device, Tensor};
use serde_json::Map;
use std::path::PathBuf;
use std::sync::Arc;

impl FileSource for ModelFiles {
    fn get(&self, name: &str) -> Result<Option<PathBuf>> {
        Ok(ModelFiles::get(self, name)?)
    }
    fn describe(&self) -> String {
        ModelFiles::describe(self)
    }
}

/// Called with a note to show the user (cache fallbacks, downloads).
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

/// How models are loaded.
#[derive(Clone)]
pub struct LoadOptions {
    pub dtype: DType,
    pub device: Device,
    pub hub: HubConfig,
    /// Receives notes for the user; `None` keeps quiet.
    pub notify: Option<Notify>,
}

impl LoadOptions {
    /// CPU, the given dtype, the hub configuration from the environment (`HF_HOME`,
    /// `HF_HUB_CACHE`, `HF_TOKEN`, `HF_HUB_OFFLINE`...); notes go to stderr when
    /// `verbose`.
    pub fn from_env(dtype: DType, verbose: bool) -> Result<Self> {
        let notify: Option<Notify> = if verbose { Some(Arc::new(|m: &str| eprintln!("note: {m}"))) } else { None };
        Ok(Self { dtype, device: Device::Cpu, hub: HubConfig::from_env()?, notify })
    }
}

/// The model families biofm loads.
pub enum Family {
    /// `open_clip_config.json`: image and text towers in a joint space.
    OpenClip(OpenClip),
    /// `modules.json`: a sentence-transformers text encoder.
    SentenceTransformers(SentenceEncoder),
    /// timm `config.json` (`architecture`): an image encoder.
    Timm(TimmVit),
}

/// A loaded model with what the pipelines need: towers, transform, prompt defaults.
pub struct Model {
    name: String,
    family: Family,
    image_transform: Option<TransformConfig>,
    templates: Vec<String>,
}

impl Model {
    /// Loads `spec`: a registry name (`biomedclip`), `hf:ORG/NAME[@REV]`, or a local
    /// folder.
    pub fn load(spec: &str, opts: &LoadOptions) -> Result<Self> {
        let entry = registry::find(spec)?;
        let model_ref = ModelRef::parse_with_registry(spec, |name| {
            registry::find(name).ok().flatten().filter(|e| e.source.starts_with("hf:")).map(|e| e.source)
        })?;
        if let (Some(e), ModelRef::Local(p)) = (&entry, &model_ref) {
            if !p.exists() {
                bail!("model `{}` ({}) cannot be loaded by biofm yet: {}", e.name, e.title, e.source);
            }
        }
        let mut files = ModelFiles::open(&model_ref, &opts.hub)?;
        if let Some(n) = &opts.notify {
            let n = n.clone();
            files = files.with_log(move |m| n(m));
        }
        let mut model = Self::from_source(&files, opts)?;
        model.name = spec.to_string();
        if let Some(e) = entry {
            if !e.templates.is_empty() {
                model.templates = e.templates;
            }
        }
        Ok(model)
    }

    /// Loads a model from its files, detecting the family.
    pub fn from_source(src: &dyn FileSource, opts: &LoadOptions) -> Result<Self> {
        let (dtype, dev) = (opts.dtype, &opts.device);
        let external = |repo: &str, file: &str| -> Result<Option<PathBuf>> {
            let r = ModelRef::parse(&format!("hf:{repo}"))?;
            let f = ModelFiles::open(&r, &opts.hub)?;
            Ok(f.get(file)?)
        };
        let (family, image_transform) = if src.get("open_clip_config.json")?.is_some() {
            let m = OpenClip::load(src, dtype, dev, Some(&external))?;
            let t = m.transform().clone();
            (Family::OpenClip(m), Some(t))
        } else if src.get("modules.json")?.is_some() {
            (Family::SentenceTransformers(SentenceEncoder::load(src, dtype, dev)?), None)
        } else if let Some(p) = src.get("config.json")? {
            let cfg = src.json("config.json")?;
            if cfg.get("architecture").is_none() {
                bail!(
                    "{}: {} is not a timm config (no \"architecture\"); for an HF text model, use its \
                     sentence-transformers layout (modules.json)",
                    src.describe(),
                    p.display()
                );
            }
            let m = timm::load(src, &Map::new(), dtype, dev)?;
            let t = timm_transform(&m.spec.pretrained_cfg)?;
            (Family::Timm(m), Some(t))
        } else {
            bail!(
                "{} has no model configuration: expected open_clip_config.json (open_clip), modules.json \
                 (sentence-transformers) or config.json (timm)",
                src.describe()
            );
        };
        Ok(Self { name: src.describe(), family, image_transform, templates: vec!["{}".into()] })
    }

    /// The name the model was loaded by.
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn family(&self) -> &Family {
        &self.family
    }
    /// Zero-shot prompt templates to use when the user gives none.
    pub fn default_templates(&self) -> Vec<String> {
        self.templates.clone()
    }

    pub fn has_image_tower(&self) -> bool {
        matches!(self.family, Family::OpenClip(_) | Family::Timm(_))
    }
    pub fn has_text_tower(&self) -> bool {
        matches!(self.family, Family::OpenClip(_) | Family::SentenceTransformers(_))
    }

    /// The preprocessing the reference applies to images for this model.
    pub fn image_transform(&self) -> Result<&TransformConfig> {
        self.image_transform.as_ref().with_context(|| format!("model `{}` has no image encoder", self.name))
    }

    /// Image embeddings `[B, D]` (not normalised) for preprocessed pixels `[B, 3, H, W]`.
    ///
    /// On the CPU in f32, a batch of at least two images per compute thread is split into
    /// one slice per thread, each encoded with single-threaded kernels
    /// ([`biofm_kernels::data_parallel`]); rows are the same up to float rounding.
    pub fn encode_images(&self, pixels: &Tensor) -> Result<Tensor> {
        let threads = biofm_kernels::num_threads();
        let batch = pixels.dim(0).unwrap_or(0);
        if threads > 1 && batch >= 2 * threads && pixels.dtype() == DType::F32 && pixels.device().is_cpu() {
            let parts = biofm_kernels::data_parallel(threads, |i| {
                let (start, end) = (i * batch / threads, (i + 1) * batch / threads);
                self.encode_images_serial(&pixels.narrow(0, start, end - start)?)
            })?;
            return Ok(Tensor::cat(&parts, 0)?);
        }
        self.encode_images_serial(pixels)
    }

    fn encode_images_serial(&self, pixels: &Tensor) -> Result<Tensor> {
        match &self.family {
            Family::OpenClip(m) => m.encode_image(pixels),
            Family::Timm(m) => m.model.forward(pixels),
            Family::SentenceTransformers(_) => bail!("model `{}` has no image encoder (it embeds text)", self.name),
        }
    }

    /// Text embeddings `[B, D]` and which texts were truncated to the model's context.
    /// open_clip models return raw projections; sentence-transformers models apply their
    /// own pooling (and normalisation, if their pipeline has it).
    pub fn encode_texts(&self, texts: &[String]) -> Result<(Tensor, Vec<bool>)> {
        match &self.family {
            Family::OpenClip(m) => m.encode_text(texts),
            Family::SentenceTransformers(m) => m.embed(texts, texts.len().max(1)),
            Family::Timm(_) => bail!("model `{}` has no text encoder (it embeds images)", self.name),
        }
    }

    /// Maximum tokens per text, if the model embeds text.
    pub fn context_length(&self) -> Option<usize> {
        match &self.family {
            Family::OpenClip(m) => Some(m.context_length()),
            Family::SentenceTransformers(m) => Some(m.max_seq_length()),
            Family::Timm(_) => None,
        }
    }

    /// `(logit_scale, logit_bias)` for zero-shot, if the model is contrastive.
    pub fn logit_scale(&self) -> Option<(f32, Option<f32>)> {
        match &self.family {
            Family::OpenClip(m) => Some((m.logit_scale(), m.logit_bias())),
            _ => None,
        }
    }
}

/// timm's eval transform for a pretrained config.
fn timm_transform(p: &timm::PretrainedCfg) -> Result<TransformConfig> {
    let filter = match p.interpolation.as_str() {
        "bicubic" => Filter::Bicubic,
        "bilinear" => Filter::Bilinear,
        "nearest" => Filter::Nearest,
        "lanczos" => Filter::Lanczos,
        "box" => Filter::Box,
        "hamming" => Filter::Hamming,
        other => bail!("unknown interpolation `{other}` in the timm pretrained config"),
    };
    let mode = match p.crop_mode.as_str() {
        "center" => TimmCropMode::Center,
        "squash" => TimmCropMode::Squash,
        "border" => TimmCropMode::Border,
        other => bail!("unknown crop_mode `{other}` in the timm pretrained config"),
    };
    let three = |v: &[f64], what: &str| -> Result<[f32; 3]> {
        match v {
            [a, b, c] => Ok([*a as f32, *b as f32, *c as f32]),
            [a] => Ok([*a as f32; 3]),
            _ => bail!("the timm pretrained config's {what} must have 1 or 3 values"),
        }
    };
    let [c, h, w] = p.input_size;
    if c != 3 {
        bail!("timm models with {c} input channels are not supported by the image pipelines");
    }
    Ok(timm_eval((h as u32, w as u32), Some(p.crop_pct), mode, filter, three(&p.mean, "mean")?, three(&p.std, "std")?))
}

/// Re-exports for pipelines that post-process embeddings.
pub use open_clip::{normalize, similarity, zero_shot_classifier, zero_shot_probs};
