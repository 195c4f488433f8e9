//! timm models: registered ViT names and the HF hub layout (`config.json` + weights).
//!
//! Model resolution follows timm 1.0.31's `create_model`: a registered architecture
//! (`vit_base_patch16_224`, ...) supplies base arguments and a default pretrained
//! config; a hub `config.json` adds `model_args`; caller overrides win over both; and
//! the pretrained config fills in `num_classes`, `in_chans` and, for fixed-size models,
//! `img_size` when nothing else set them (`_update_default_model_kwargs`). The table
//! of names is data (`timm/vit_models.json`), covering the plain
//! `vit_{size}_patch{p}_{res}` models timm registers.

use crate::FileSource;
use anyhow::{anyhow, bail, Context, Result};
use biofm_nn::vit::{PosEmbedLoad, VisionTransformer, VitConfig};
use biofm_weights::{View, Weights};
use candle_core::{DType, Device};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Weight files of a timm hub directory, in timm's order of preference
/// (`timm.models._hub._PREFERRED_FILES`, native-checkpoint part).
pub const WEIGHT_FILES: &[&str] = &[
    "model.safetensors",
    "pytorch_model.bin",
    "pytorch_model.pth",
    "model.pth",
];

/// The preprocessing part of timm's `PretrainedCfg`, with timm's defaults.
///
/// timm's eval transform (`create_transform(**resolve_data_config(...))`) resizes the
/// shorter side to `floor(size / crop_pct)` with `interpolation` and centre-crops to
/// `input_size[1..]` (`crop_mode = "center"`; `"squash"` resizes without keeping the
/// aspect ratio), then normalises with `mean`/`std`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct PretrainedCfg {
    /// Pretrained tag (`augreg2_in21k_ft_in1k`, ...), if any.
    pub tag: Option<String>,
    /// `(channels, height, width)`.
    pub input_size: [usize; 3],
    pub fixed_input_size: bool,
    /// PIL resampling filter name: `bicubic`, `bilinear`, `nearest`...
    pub interpolation: String,
    pub crop_pct: f64,
    /// `center`, `squash` or `border`.
    pub crop_mode: String,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// Classes of the checkpoint's classifier (timm allows negative = unknown).
    pub num_classes: i64,
    /// Module name of the classifier (`head`), if declared.
    pub classifier: Option<String>,
}

impl Default for PretrainedCfg {
    /// timm `PretrainedCfg()` defaults.
    fn default() -> Self {
        Self {
            tag: None,
            input_size: [3, 224, 224],
            fixed_input_size: false,
            interpolation: "bicubic".into(),
            crop_pct: 0.875,
            crop_mode: "center".into(),
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
            num_classes: 1000,
            classifier: None,
        }
    }
}

/// One registered architecture: its entrypoint's base arguments and default pretrained
/// config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisteredVit {
    args: Map<String, Value>,
    pretrained_cfg: PretrainedCfg,
}

fn registry() -> Result<&'static BTreeMap<String, RegisteredVit>> {
    static TABLE: OnceLock<std::result::Result<BTreeMap<String, RegisteredVit>, String>> =
        OnceLock::new();
    TABLE
        .get_or_init(|| {
            serde_json::from_str(include_str!("timm/vit_models.json")).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| anyhow!("the built-in timm ViT table is invalid: {e}"))
}

/// Names of the timm ViT architectures this crate knows, sorted.
pub fn vit_names() -> Result<Vec<&'static str>> {
    Ok(registry()?.keys().map(String::as_str).collect())
}

/// Looks up an architecture name, optionally with timm's `.tag` suffix (only the
/// default tag, whose preprocessing config is in the table, is accepted).
fn lookup(name: &str) -> Result<(&'static str, &'static RegisteredVit)> {
    let table = registry()?;
    let (arch, tag) = match name.split_once('.') {
        Some((a, t)) => (a, Some(t)),
        None => (name, None),
    };
    let Some((key, entry)) = table.get_key_value(arch) else {
        bail!(
            "unknown timm ViT architecture `{arch}`; closest known names: {}",
            closest(arch, table.keys()).join(", ")
        );
    };
    if let Some(tag) = tag {
        if entry.pretrained_cfg.tag.as_deref() != Some(tag) {
            bail!(
                "timm model `{name}`: only the default pretrained tag `{}` of `{arch}` is known",
                entry.pretrained_cfg.tag.as_deref().unwrap_or("")
            );
        }
    }
    Ok((key.as_str(), entry))
}

/// The five names closest to `name` by edit distance.
fn closest<'a>(name: &str, names: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    let mut scored: Vec<(usize, &str)> = names
        .map(|n| (edit_distance(name, n), n.as_str()))
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, n)| n).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A resolved timm ViT: architecture, constructor arguments and pretrained config.
#[derive(Debug, Clone, PartialEq)]
pub struct TimmVitSpec {
    pub architecture: String,
    pub config: VitConfig,
    pub pretrained_cfg: PretrainedCfg,
    /// Image size the checkpoint was made for (timm's source `img_size`), used to
    /// recover its position-embedding grid when loading pretrained weights.
    pub source_img_size: (usize, usize),
}

/// `timm.create_model(name, **overrides)` without a hub directory: the registered
/// architecture's arguments and default pretrained config, with `overrides` (timm
/// keyword arguments, e.g. `{"num_classes": 0}` as open_clip passes) on top.
pub fn from_name(name: &str, overrides: &Map<String, Value>) -> Result<TimmVitSpec> {
    let (architecture, entry) = lookup(name)?;
    let pretrained_cfg = entry.pretrained_cfg.clone();
    let config = resolve_config(entry, &pretrained_cfg, &Map::new(), overrides)
        .with_context(|| format!("timm model `{name}`"))?;
    let [_, h, w] = pretrained_cfg.input_size;
    Ok(TimmVitSpec {
        architecture: architecture.to_string(),
        config,
        pretrained_cfg,
        source_img_size: (h, w),
    })
}

/// Resolves a hub `config.json` (already parsed) as timm's
/// `create_model("hf-hub:...", **overrides)` does (`_parse_model_cfg`): the legacy
/// single-dict layout is accepted, the top-level `num_classes` overrides the
/// pretrained config's, and `model_args` describe the saved weights.
pub fn from_hub_config(config: &Value, overrides: &Map<String, Value>) -> Result<TimmVitSpec> {
    let obj = config
        .as_object()
        .context("config.json must hold a JSON object")?;
    let name = obj
        .get("architecture")
        .and_then(Value::as_str)
        .context("config.json has no \"architecture\" string")?;
    let (architecture, entry) = lookup(name)?;
    let pcfg_value = match obj.get("pretrained_cfg") {
        Some(v) => v.clone(),
        None => {
            let mut legacy = obj.clone();
            legacy.remove("architecture");
            legacy.remove("num_features");
            legacy.remove("model_args");
            Value::Object(legacy)
        }
    };
    let mut pretrained_cfg: PretrainedCfg =
        serde_json::from_value(pcfg_value).context("config.json: invalid \"pretrained_cfg\"")?;
    if let Some(n) = obj.get("num_classes") {
        pretrained_cfg.num_classes = n
            .as_i64()
            .with_context(|| format!("config.json: \"num_classes\" must be an integer, got {n}"))?;
    }
    let model_args = match obj.get("model_args") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => bail!("config.json: \"model_args\" must be an object, got {other}"),
    };
    if model_args.get("dynamic_img_size").and_then(Value::as_bool) == Some(true) {
        pretrained_cfg.fixed_input_size = false;
    }
    if let Some(c) = model_args.get("in_chans").and_then(Value::as_u64) {
        pretrained_cfg.input_size[0] = c as usize;
    }
    let source_img = match model_args.get("img_size") {
        None | Some(Value::Null) => None,
        Some(v) => Some(image_size(v).context("config.json: invalid model_args.img_size")?),
    };
    if let (Some((h, w)), true) = (source_img, pretrained_cfg.fixed_input_size) {
        pretrained_cfg.input_size = [pretrained_cfg.input_size[0], h, w];
    }
    let [_, h, w] = pretrained_cfg.input_size;
    let config = resolve_config(entry, &pretrained_cfg, &model_args, overrides)
        .with_context(|| format!("timm model `{architecture}` from config.json"))?;
    Ok(TimmVitSpec {
        architecture: architecture.to_string(),
        config,
        pretrained_cfg,
        source_img_size: source_img.unwrap_or((h, w)),
    })
}

impl TimmVitSpec {
    /// Builds the model from `vb` with strict key and shape matching, as
    /// `model.load_state_dict(state_dict, strict=True)` after `create_model(...)`
    /// (no position-embedding resampling). Check unused keys with
    /// [`Weights::check_unused`] afterwards.
    pub fn build(&self, vb: &View) -> Result<VisionTransformer> {
        VisionTransformer::new(vb, &self.config, PosEmbedLoad::Strict)
            .with_context(|| format!("building timm `{}`", self.architecture))
    }
}

/// An image size given as `224` or `[h, w]`.
fn image_size(v: &Value) -> Result<(usize, usize)> {
    let as_usize = |x: &Value| x.as_u64().map(|n| n as usize);
    match v {
        Value::Array(a) if a.len() == 2 => match (as_usize(&a[0]), as_usize(&a[1])) {
            (Some(h), Some(w)) => Ok((h, w)),
            _ => bail!("expected [h, w] integers, got {v}"),
        },
        _ => as_usize(v)
            .map(|s| (s, s))
            .with_context(|| format!("expected an integer or [h, w], got {v}")),
    }
}

/// Merges arguments in timm's precedence: caller overrides (nulls dropped, as
/// `create_model` does) > hub `model_args` > the architecture's base arguments, then
/// fills `num_classes`, `in_chans` and (fixed-size models) `img_size` from the
/// pretrained config where still unset.
fn resolve_config(
    entry: &RegisteredVit,
    pretrained_cfg: &PretrainedCfg,
    model_args: &Map<String, Value>,
    overrides: &Map<String, Value>,
) -> Result<VitConfig> {
    let mut args = entry.args.clone();
    args.extend(model_args.iter().map(|(k, v)| (k.clone(), v.clone())));
    args.extend(
        overrides
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    if pretrained_cfg.num_classes >= 0 {
        args.entry("num_classes")
            .or_insert(json!(pretrained_cfg.num_classes));
    }
    let [c, h, w] = pretrained_cfg.input_size;
    args.entry("in_chans").or_insert(json!(c));
    if pretrained_cfg.fixed_input_size {
        args.entry("img_size").or_insert(json!([h, w]));
    }
    VitConfig::from_json(&Value::Object(args))
}

/// A timm ViT loaded from a hub directory, with the pretrained config that defines its
/// preprocessing.
#[derive(Debug, Clone)]
pub struct TimmVit {
    pub spec: TimmVitSpec,
    pub model: VisionTransformer,
}

/// Loads a timm hub directory (`config.json` + `model.safetensors` or
/// `pytorch_model.bin`, see [`WEIGHT_FILES`]) as
/// `timm.create_model("hf-hub:...", pretrained=True, **overrides)` does:
///
/// * a checkpoint `pos_embed` on a different grid than the model's is resampled
///   (timm's `checkpoint_filter_fn`; e.g. when `overrides` change `img_size`);
/// * when the model's `num_classes` differs from the checkpoint's, the classifier
///   weights are dropped; this is only supported for `num_classes = 0` (timm would
///   initialise a new classifier at random);
/// * every other checkpoint tensor must be used (strict loading).
pub fn load(
    source: &(impl FileSource + ?Sized),
    overrides: &Map<String, Value>,
    dtype: DType,
    device: &Device,
) -> Result<TimmVit> {
    let config = source.json("config.json")?;
    let spec = from_hub_config(&config, overrides)
        .with_context(|| format!("{}: cannot resolve the timm model", source.describe()))?;
    let weights_path = WEIGHT_FILES
        .iter()
        .find_map(|name| source.get(name).transpose())
        .transpose()?
        .with_context(|| {
            format!(
                "{} has no weights file (looked for {})",
                source.describe(),
                WEIGHT_FILES.join(", ")
            )
        })?;
    let weights = Weights::open(&weights_path)?;

    // timm's load_pretrained: the classifier is discarded when the class count changes;
    // checkpoint_filter_fn drops legacy `pre_logits` layers.
    let mut allow_unused = vec!["pre_logits.".to_string()];
    let num_classes = spec.config.num_classes as i64;
    if let Some(classifier) = &spec.pretrained_cfg.classifier {
        if num_classes != spec.pretrained_cfg.num_classes {
            if num_classes > 0 {
                bail!(
                    "{}: num_classes = {num_classes} differs from the checkpoint's {}; only num_classes = 0 \
                     (no classifier) can be used with a different class count",
                    source.describe(),
                    spec.pretrained_cfg.num_classes
                );
            }
            allow_unused.push(format!("{classifier}.weight"));
            allow_unused.push(format!("{classifier}.bias"));
        }
    }
    let vb = weights.view(dtype, device);
    let model = VisionTransformer::new(
        &vb,
        &spec.config,
        PosEmbedLoad::Resample {
            source_img_size: Some(spec.source_img_size),
        },
    )
    .with_context(|| {
        format!(
            "loading {} as timm `{}`",
            weights.source(),
            spec.architecture
        )
    })?;
    let allow: Vec<&str> = allow_unused.iter().map(String::as_str).collect();
    weights.check_unused(&allow)?;
    Ok(TimmVit { spec, model })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_and_names_are_plain_vits() {
        let names = vit_names().unwrap();
        assert_eq!(names.len(), 20);
        assert!(names
            .iter()
            .all(|n| n.starts_with("vit_") && n.contains("_patch")));
    }

    #[test]
    fn unknown_names_list_close_ones() {
        let e = format!(
            "{:#}",
            from_name("vit_base_patch16_244", &Map::new()).unwrap_err()
        );
        assert!(e.contains("vit_base_patch16_224"), "{e}");
        let e = format!(
            "{:#}",
            from_name("vit_base_patch16_224.nope", &Map::new()).unwrap_err()
        );
        assert!(e.contains("augreg2_in21k_ft_in1k"), "{e}");
        assert!(from_name("vit_base_patch16_224.augreg2_in21k_ft_in1k", &Map::new()).is_ok());
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
