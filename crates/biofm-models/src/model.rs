//! `--model` → a loaded model: registry names, hub repositories and local folders,
//! with the family detected from the files the folder holds.

use crate::open_clip::{self, OpenClip};
use crate::sentence_transformers::SentenceEncoder;
use crate::timm::{self, TimmVit};
use crate::registry::PatchEncoderContract;
use crate::{registry, FileSource};
use anyhow::{bail, Context, Result};
use biofm_hub::{HubConfig, ModelFiles, ModelRef};
use biofm_preprocess::image::{timm_eval, Filter, TimmCropMode, TransformConfig};
use candle_core::{DType, Device, Tensor};
use serde_json::Map;
use std::path::{Path, PathBuf};
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

/// A model ready to embed whole-slide patches, with what the pipeline needs to know.
pub struct PatchEncoder {
    pub model: Model,
    /// The registry contract, for encoders that have one.
    pub contract: Option<PatchEncoderContract>,
    /// Patch → tensor preprocessing.
    pub transform: TransformConfig,
    /// Default patch size and magnification.
    pub patch_size: u32,
    pub magnification: f64,
    /// Weight and activation dtype the model was loaded in.
    pub dtype: DType,
}

impl PatchEncoder {
    pub fn model_dtype(&self) -> DType {
        self.dtype
    }

    /// Width of the patch embeddings.
    pub fn embedding_dim(&self) -> usize {
        match &self.model.family {
            Family::Timm(m) => m.model.num_features(),
            Family::OpenClip(m) => m.embed_dim(),
            Family::SentenceTransformers(_) => 0,
        }
    }
}

/// Registry names with a patch-encoder contract.
pub fn contract_names() -> Result<Vec<String>> {
    Ok(registry::all()?.into_iter().filter(|e| e.patch_encoder.is_some()).map(|e| e.name).collect())
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
        Self::from_source_with(src, opts, &Map::new())
    }

    /// [`Model::from_source`], with `timm.create_model` keyword arguments applied on
    /// top of a timm hub configuration.
    fn from_source_with(src: &dyn FileSource, opts: &LoadOptions, timm_overrides: &Map<String, serde_json::Value>) -> Result<Self> {
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
            let m = timm::load(src, timm_overrides, dtype, dev)?;
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

    /// Loads a whole-slide patch encoder: a registry name with a patch-encoder
    /// contract (`uni`, `uni2-h`), optionally with its weights from `weights` (a
    /// downloaded hub folder, or the bare checkpoint file, which is built as the
    /// contract's timm architecture); or any image model (`biomedclip`, a timm folder,
    /// `hf:...`), whose own preprocessing is used and whose patch size and magnification
    /// default to 256 px at 20×.
    pub fn load_patch_encoder(spec: &str, weights: Option<&Path>, opts: &LoadOptions) -> Result<PatchEncoder> {
        let entry = registry::find(spec)?;
        let contract = entry.as_ref().and_then(|e| e.patch_encoder.clone());
        let Some(contract) = contract else {
            if let Some(w) = weights {
                bail!(
                    "--weights {} needs an encoder with a built-in contract ({}); to use a model folder, pass it as the encoder",
                    w.display(),
                    contract_names()?.join(", ")
                );
            }
            let model = Self::load(spec, opts)?;
            if !model.has_image_tower() {
                bail!("`{spec}` has no image encoder, so it cannot embed patches");
            }
            let transform = model.image_transform()?.clone();
            return Ok(PatchEncoder { model, contract: None, transform, patch_size: 256, magnification: 20.0, dtype: opts.dtype });
        };
        let hint = match &entry {
            Some(e) if e.gated => format!(
                "{} is gated on the Hugging Face hub ({}): accept its terms there and set HF_TOKEN, or download \
                 the weights yourself and pass them with --weights (the folder, or the checkpoint file)",
                e.source.trim_start_matches("hf:"),
                e.license
            ),
            _ => "pass downloaded weights with --weights".to_string(),
        };
        let mut model = match weights {
            None => (|| -> Result<Self> {
                let mut files = ModelFiles::open(
                    &ModelRef::parse_with_registry(spec, |name| {
                        registry::find(name).ok().flatten().filter(|e| e.source.starts_with("hf:")).map(|e| e.source)
                    })?,
                    &opts.hub,
                )?;
                if let Some(n) = &opts.notify {
                    let n = n.clone();
                    files = files.with_log(move |m| n(m));
                }
                Self::from_source_with(&files, opts, &contract.timm_kwargs)
            })()
            .context(hint)?,
            Some(w) if w.is_dir() => {
                let files = ModelFiles::open(&ModelRef::Local(w.to_path_buf()), &opts.hub)?;
                if files.get("config.json")?.is_some() {
                    Self::from_source_with(&files, opts, &contract.timm_kwargs)?
                } else {
                    let file = timm::WEIGHT_FILES
                        .iter()
                        .find_map(|name| files.get(name).transpose())
                        .transpose()?
                        .with_context(|| format!("{} has neither config.json nor a weights file ({})", w.display(), timm::WEIGHT_FILES.join(", ")))?;
                    Self::from_bare_checkpoint(&file, &contract, opts)?
                }
            }
            Some(w) if w.is_file() => Self::from_bare_checkpoint(w, &contract, opts)?,
            Some(w) => bail!("--weights {}: no such file or folder", w.display()),
        };
        model.name = spec.to_string();
        model.image_transform = Some(contract.transform.clone());
        let transform = contract.transform.clone();
        let (patch_size, magnification) = (contract.patch_size, contract.magnification);
        Ok(PatchEncoder { model, contract: Some(contract), transform, patch_size, magnification, dtype: opts.dtype })
    }

    /// Builds the contract's timm architecture with `timm_kwargs` and loads a bare
    /// state dict into it (strict; the position embedding is resampled if its grid
    /// differs, as timm's pretrained loading does).
    fn from_bare_checkpoint(file: &Path, contract: &PatchEncoderContract, opts: &LoadOptions) -> Result<Self> {
        let spec = timm::from_name(&contract.architecture, &contract.timm_kwargs)?;
        let weights = biofm_weights::Weights::open(file)?;
        let vb = weights.view(opts.dtype, &opts.device);
        let model = biofm_nn::vit::VisionTransformer::new(
            &vb,
            &spec.config,
            biofm_nn::vit::PosEmbedLoad::Resample { source_img_size: Some(spec.source_img_size) },
        )
        .with_context(|| format!("loading {} as timm `{}`", file.display(), contract.architecture))?;
        weights.check_unused(&[])?;
        Ok(Self {
            name: file.display().to_string(),
            family: Family::Timm(TimmVit { spec, model }),
            image_transform: Some(contract.transform.clone()),
            templates: vec!["{}".into()],
        })
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
