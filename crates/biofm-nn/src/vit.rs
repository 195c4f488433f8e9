//! timm `VisionTransformer` (timm 1.0.31, `timm/models/vision_transformer.py`): one
//! configurable implementation for plain ViTs (BiomedCLIP, CONCH, UNI, UNI2-h,
//! RETFound, ...).
//!
//! The struct tree mirrors timm's module tree, so checkpoint keys map one to one:
//! `patch_embed.proj`, `cls_token`, `reg_token`, `pos_embed`, `norm_pre`,
//! `blocks.{i}.{norm1, attn.{qkv, proj}, ls1.gamma, norm2, mlp.{fc1, fc2}, ls2.gamma}`,
//! `norm`, `fc_norm`, `head`.

use crate::layers::{Attention, LayerNorm, Linear, Mlp, MlpKind};
use crate::pos_embed::resample_abs_pos_embed;
use anyhow::{bail, Context, Result};
use biofm_kernels::Activation;
use biofm_weights::View;
use candle_core::{Tensor, D};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// LayerNorm epsilon of timm's ViT (`timm.layers.LayerNorm`, eps 1e-6).
pub const LAYER_NORM_EPS: f64 = 1e-6;

/// timm arguments that only matter for training (dropout rates, init schemes); they
/// are accepted and ignored, as at eval time in timm.
const TRAINING_ONLY_ARGS: &[&str] = &[
    "drop_rate",
    "pos_drop_rate",
    "patch_drop_rate",
    "proj_drop_rate",
    "attn_drop_rate",
    "drop_path_rate",
    "weight_init",
    "fix_init",
];

/// timm arguments that select other layer classes; only their defaults (absent or
/// `null`) are supported.
const UNSUPPORTED_LAYER_ARGS: &[&str] = &[
    "norm_layer",
    "embed_norm_layer",
    "embed_layer",
    "block_fn",
    "attn_layer",
];

/// Pooling of the token sequence in `forward_head` (timm `global_pool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum GlobalPool {
    /// `""`: no pooling, `forward_head` keeps all tokens.
    #[serde(rename = "")]
    None,
    /// `"token"`: the class token (`x[:, 0]`).
    #[serde(rename = "token")]
    Token,
    /// `"avg"`: mean over the patch tokens.
    #[serde(rename = "avg")]
    Avg,
    /// `"avgmax"`: `0.5 * (max + mean)` over the patch tokens.
    #[serde(rename = "avgmax")]
    AvgMax,
    /// `"max"`: max over the patch tokens.
    #[serde(rename = "max")]
    Max,
}

/// timm `pos_embed` argument: learned absolute position embedding or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PosEmbedType {
    #[serde(rename = "learn")]
    Learn,
    #[serde(rename = "none", alias = "")]
    None,
}

/// Constructor arguments of timm's `VisionTransformer`, with timm's names and defaults.
///
/// Deserialise with [`VitConfig::from_json`], which also accepts the forms timm configs
/// use (`img_size: 224` or `[224, 224]`, `act_layer: "silu"` or `"torch.nn.SiLU"`,
/// `mlp_layer: "timm.layers.SwiGLUPacked"`...), ignores training-only arguments, and
/// rejects unknown or unsupported ones.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VitConfig {
    /// Image size `(h, w)` the position embedding is laid out for.
    #[serde(deserialize_with = "de_pair")]
    pub img_size: (usize, usize),
    /// Patch size `(h, w)` (conv kernel = stride).
    #[serde(deserialize_with = "de_pair")]
    pub patch_size: (usize, usize),
    pub in_chans: usize,
    /// Classifier outputs; 0 means no `head` (`nn.Identity`).
    pub num_classes: usize,
    pub global_pool: GlobalPool,
    pub embed_dim: usize,
    pub depth: usize,
    pub num_heads: usize,
    /// MLP hidden width is `int(embed_dim * mlp_ratio)` (for SwiGLUPacked that is the
    /// width of `fc1`'s output; `fc2` takes half of it).
    pub mlp_ratio: f64,
    pub qkv_bias: bool,
    /// Per-head q/k LayerNorm: not supported (rejected by [`VitConfig::validate`]).
    pub qk_norm: bool,
    /// LayerNorm before `attn.proj`: not supported.
    pub scale_attn_norm: bool,
    /// LayerNorm inside the MLP: not supported.
    pub scale_mlp_norm: bool,
    /// Bias of `attn.proj`, `mlp.fc1` and `mlp.fc2`.
    pub proj_bias: bool,
    /// LayerScale (`ls1.gamma`, `ls2.gamma`) when set and non-zero.
    pub init_values: Option<f64>,
    pub class_token: bool,
    pub pos_embed: PosEmbedType,
    /// Position embedding covers only the patches and is added before the prefix
    /// (class + register) tokens are concatenated.
    pub no_embed_class: bool,
    pub reg_tokens: usize,
    /// `norm_pre` after the embeddings; also removes the patch-embedding conv bias.
    pub pre_norm: bool,
    pub final_norm: bool,
    /// LayerNorm after pooling instead of before it; `None` = timm's automatic choice
    /// (`global_pool` in `avg`, `avgmax`, `max`).
    pub fc_norm: Option<bool>,
    /// Pool over all tokens instead of only the patch tokens.
    pub pool_include_prefix: bool,
    /// Accept any input size divisible by the patch size, resampling the position
    /// embedding per forward.
    pub dynamic_img_size: bool,
    /// Zero-pad inputs on the right/bottom to a multiple of the patch size.
    pub dynamic_img_pad: bool,
    #[serde(deserialize_with = "de_act_layer")]
    pub act_layer: Activation,
    #[serde(deserialize_with = "de_mlp_layer")]
    pub mlp_layer: MlpKind,
}

impl Default for VitConfig {
    /// timm `VisionTransformer.__init__` defaults (a ViT-B/16 at 224 with 1000 classes).
    fn default() -> Self {
        Self {
            img_size: (224, 224),
            patch_size: (16, 16),
            in_chans: 3,
            num_classes: 1000,
            global_pool: GlobalPool::Token,
            embed_dim: 768,
            depth: 12,
            num_heads: 12,
            mlp_ratio: 4.0,
            qkv_bias: true,
            qk_norm: false,
            scale_attn_norm: false,
            scale_mlp_norm: false,
            proj_bias: true,
            init_values: None,
            class_token: true,
            pos_embed: PosEmbedType::Learn,
            no_embed_class: false,
            reg_tokens: 0,
            pre_norm: false,
            final_norm: true,
            fc_norm: None,
            pool_include_prefix: false,
            dynamic_img_size: false,
            dynamic_img_pad: false,
            act_layer: Activation::Gelu,
            mlp_layer: MlpKind::Plain,
        }
    }
}

impl VitConfig {
    /// Builds a config from timm keyword arguments (a JSON object such as a hub
    /// `config.json`'s `model_args`). `null` values mean "default" (timm drops `None`
    /// kwargs), training-only arguments are ignored, unknown arguments are an error.
    /// The result is validated.
    pub fn from_json(args: &Value) -> Result<Self> {
        let obj = args
            .as_object()
            .with_context(|| format!("ViT arguments must be a JSON object, got {args}"))?;
        let mut kept = Map::new();
        for (key, value) in obj {
            if value.is_null() || TRAINING_ONLY_ARGS.contains(&key.as_str()) {
                continue;
            }
            if UNSUPPORTED_LAYER_ARGS.contains(&key.as_str()) {
                bail!("timm argument `{key}` = {value} is not supported (only timm's default layer is)");
            }
            kept.insert(key.clone(), value.clone());
        }
        let cfg: VitConfig =
            serde_json::from_value(Value::Object(kept)).context("invalid timm ViT arguments")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the combination of arguments: what timm asserts, and the options this
    /// implementation does not support.
    // `%` rather than `is_multiple_of`, which needs Rust 1.87 (workspace MSRV is 1.85).
    #[allow(clippy::manual_is_multiple_of)]
    pub fn validate(&self) -> Result<()> {
        let unsupported = [
            (self.qk_norm, "qk_norm"),
            (self.scale_attn_norm, "scale_attn_norm"),
            (self.scale_mlp_norm, "scale_mlp_norm"),
        ];
        for (set, name) in unsupported {
            if set {
                bail!("timm ViT option `{name}=True` is not supported");
            }
        }
        let (ph, pw) = self.patch_size;
        let (h, w) = self.img_size;
        if ph == 0 || pw == 0 {
            bail!("patch_size must be positive, got {ph}x{pw}");
        }
        if h == 0 || w == 0 || h % ph != 0 || w % pw != 0 {
            bail!("img_size {h}x{w} is not a positive multiple of patch_size {ph}x{pw}");
        }
        if self.in_chans == 0 || self.embed_dim == 0 {
            bail!("in_chans and embed_dim must be positive");
        }
        if self.num_heads == 0 || self.embed_dim % self.num_heads != 0 {
            bail!(
                "embed_dim {} is not divisible by num_heads {}",
                self.embed_dim,
                self.num_heads
            );
        }
        if self.global_pool == GlobalPool::Token && !self.class_token {
            bail!("global_pool='token' needs the class token (class_token=True)");
        }
        let hidden = self.mlp_hidden_features();
        if hidden == 0 || (self.mlp_layer == MlpKind::GluPacked && hidden % 2 != 0) {
            bail!(
                "MLP hidden width int({} * {}) = {hidden} is invalid for {:?}",
                self.embed_dim,
                self.mlp_ratio,
                self.mlp_layer
            );
        }
        Ok(())
    }

    /// Patch grid `(h, w)` of `img_size` (the grid the position embedding is laid out on).
    pub fn grid_size(&self) -> (usize, usize) {
        (
            self.img_size.0 / self.patch_size.0,
            self.img_size.1 / self.patch_size.1,
        )
    }

    /// Class token (if any) plus register tokens.
    pub fn num_prefix_tokens(&self) -> usize {
        usize::from(self.class_token) + self.reg_tokens
    }

    /// `int(embed_dim * mlp_ratio)`, computed in f64 as Python does.
    pub fn mlp_hidden_features(&self) -> usize {
        (self.embed_dim as f64 * self.mlp_ratio) as usize
    }

    /// Whether LayerScale is used (`init_values` set and non-zero, as timm tests it).
    pub fn uses_layer_scale(&self) -> bool {
        self.init_values.is_some_and(|v| v != 0.0)
    }

    /// timm's `use_fc_norm`: explicit `fc_norm`, else true for avg/avgmax/max pooling.
    pub fn uses_fc_norm(&self) -> bool {
        self.fc_norm.unwrap_or(matches!(
            self.global_pool,
            GlobalPool::Avg | GlobalPool::AvgMax | GlobalPool::Max
        ))
    }

    /// Prefix tokens that have a position in `pos_embed`.
    fn num_pos_prefix_tokens(&self) -> usize {
        if self.no_embed_class {
            0
        } else {
            self.num_prefix_tokens()
        }
    }

    /// Rows of `pos_embed` for the configured grid.
    pub fn pos_embed_len(&self) -> usize {
        let (gh, gw) = self.grid_size();
        gh * gw + self.num_pos_prefix_tokens()
    }
}

/// Parses a timm `act_layer` value: timm's registry names (`"gelu"`, `"gelu_tanh"`,
/// `"quick_gelu"`, `"silu"`, `"swish"`, `"relu"`, case-insensitive) or a class path as
/// written in configs (`"torch.nn.SiLU"`, `"nn.GELU"`, `"timm.layers.QuickGELU"`,
/// `"<class 'torch.nn.modules.activation.SiLU'>"`).
pub fn parse_act_layer(name: &str) -> Result<Activation> {
    let short = class_name(name).to_ascii_lowercase();
    let canonical = match short.as_str() {
        "quickgelu" => "quick_gelu",
        "gelutanh" => "gelu_tanh",
        other => other,
    };
    Activation::from_config_name(canonical).with_context(|| {
        format!("unsupported act_layer `{name}` (supported: gelu, gelu_tanh, quick_gelu, silu/swish, relu, or their torch/timm class names)")
    })
}

/// Parses a timm `mlp_layer` value: `Mlp` (default) or `SwiGLUPacked`, as a bare name
/// in any case (`"swiglupacked"`, `"swiglu_packed"`) or a class path
/// (`"timm.layers.SwiGLUPacked"`, `"timm.layers.mlp.Mlp"`).
///
/// Note that timm's ViT passes its own `act_layer` (default GELU) to the MLP, so
/// `SwiGLUPacked` only gates with SiLU when `act_layer` says so, as UNI2-h does.
pub fn parse_mlp_layer(name: &str) -> Result<MlpKind> {
    match class_name(name).to_ascii_lowercase().replace('_', "").as_str() {
        "mlp" => Ok(MlpKind::Plain),
        "swiglupacked" => Ok(MlpKind::GluPacked),
        _ => bail!("unsupported mlp_layer `{name}` (supported: Mlp, SwiGLUPacked, e.g. \"timm.layers.SwiGLUPacked\")"),
    }
}

/// `"<class 'torch.nn.modules.activation.SiLU'>"` / `"torch.nn.SiLU"` -> `"SiLU"`.
fn class_name(name: &str) -> &str {
    let trimmed = name.trim();
    let trimmed = trimmed
        .strip_prefix("<class '")
        .and_then(|s| s.strip_suffix("'>"))
        .unwrap_or(trimmed);
    trimmed.rsplit('.').next().unwrap_or(trimmed)
}

fn de_pair<'de, De: Deserializer<'de>>(d: De) -> std::result::Result<(usize, usize), De::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        One(usize),
        Two([usize; 2]),
    }
    let size = Size::deserialize(d)
        .map_err(|_| serde::de::Error::custom("expected an integer or [h, w]"))?;
    Ok(match size {
        Size::One(s) => (s, s),
        Size::Two([h, w]) => (h, w),
    })
}

fn de_act_layer<'de, De: Deserializer<'de>>(d: De) -> std::result::Result<Activation, De::Error> {
    let s = String::deserialize(d)?;
    parse_act_layer(&s).map_err(|e| serde::de::Error::custom(format!("{e:#}")))
}

fn de_mlp_layer<'de, De: Deserializer<'de>>(d: De) -> std::result::Result<MlpKind, De::Error> {
    let s = String::deserialize(d)?;
    parse_mlp_layer(&s).map_err(|e| serde::de::Error::custom(format!("{e:#}")))
}

/// How a checkpoint `pos_embed` is matched to the model's patch grid at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PosEmbedLoad {
    /// `model.load_state_dict(state_dict, strict=True)`: the shape must match.
    Strict,
    /// timm pretrained loading (`checkpoint_filter_fn`): a checkpoint grid that differs
    /// from the model's is resampled (bicubic, antialiased). `source_img_size` is the
    /// image size the checkpoint was made for (timm takes it from the source config);
    /// it gives the source grid when it accounts for every position, otherwise the
    /// source grid is assumed square.
    Resample {
        source_img_size: Option<(usize, usize)>,
    },
}

/// `PatchEmbed`: a `patch x patch` conv with stride `patch`, computed as im2col +
/// [`biofm_kernels::linear`] (the conv is exactly a matmul over non-overlapping
/// patches, and the linear kernel is the optimised path).
#[derive(Debug, Clone)]
pub struct PatchEmbed {
    /// `proj.weight` reshaped to `[embed_dim, in_chans * ph * pw]`, `proj.bias`.
    pub proj: Linear,
    pub patch_size: (usize, usize),
}

impl PatchEmbed {
    fn new(vb: &View, cfg: &VitConfig) -> Result<Self> {
        let (ph, pw) = cfg.patch_size;
        let (c, d) = (cfg.in_chans, cfg.embed_dim);
        let vb = vb.pp("proj");
        let weight = vb
            .get("weight", &[d, c, ph, pw])?
            .reshape((d, c * ph * pw))?;
        let bias = if cfg.pre_norm {
            None
        } else {
            Some(vb.get("bias", &[d])?)
        };
        Ok(Self {
            proj: Linear { weight, bias },
            patch_size: cfg.patch_size,
        })
    }

    /// `[B, C, H, W]` with `H`, `W` multiples of the patch size -> `[B, H/ph * W/pw, D]`
    /// (patches in row-major order, as `conv(x).flatten(2).transpose(1, 2)`).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let (ph, pw) = self.patch_size;
        let (gh, gw) = (h / ph, w / pw);
        let patches = x
            .reshape(vec![b, c, gh, ph, gw, pw])?
            .permute([0, 2, 4, 1, 3, 5])?
            .contiguous()?
            .reshape((b, gh * gw, c * ph * pw))?;
        self.proj.forward(&patches)
    }
}

/// timm `Block`: pre-norm attention and MLP residual branches with optional LayerScale.
#[derive(Debug, Clone)]
pub struct Block {
    pub norm1: LayerNorm,
    pub attn: Attention,
    /// `ls1.gamma`.
    pub ls1: Option<Tensor>,
    pub norm2: LayerNorm,
    pub mlp: Mlp,
    /// `ls2.gamma`.
    pub ls2: Option<Tensor>,
}

impl Block {
    fn new(vb: &View, cfg: &VitConfig) -> Result<Self> {
        let d = cfg.embed_dim;
        let layer_scale = |name: &str| -> Result<Option<Tensor>> {
            Ok(if cfg.uses_layer_scale() {
                Some(vb.pp(name).get("gamma", &[d])?)
            } else {
                None
            })
        };
        Ok(Self {
            norm1: LayerNorm::new(&vb.pp("norm1"), d, LAYER_NORM_EPS)?,
            attn: Attention::new(
                &vb.pp("attn"),
                ("qkv", "proj"),
                d,
                cfg.num_heads,
                cfg.qkv_bias,
                cfg.proj_bias,
            )?,
            ls1: layer_scale("ls1")?,
            norm2: LayerNorm::new(&vb.pp("norm2"), d, LAYER_NORM_EPS)?,
            mlp: Mlp::new(
                &vb.pp("mlp"),
                ("fc1", "fc2"),
                d,
                cfg.mlp_hidden_features(),
                d,
                cfg.act_layer,
                cfg.mlp_layer,
                cfg.proj_bias,
            )?,
            ls2: layer_scale("ls2")?,
        })
    }

    /// `x + ls1(attn(norm1(x)))`, then `x + ls2(mlp(norm2(x)))`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // Without LayerScale the residual add is fused into the output projections.
        let x = match &self.ls1 {
            None => self.attn.forward_residual(&self.norm1.forward(x)?, None, x)?,
            Some(g) => (x + self.attn.forward(&self.norm1.forward(x)?, None)?.broadcast_mul(g)?)?,
        };
        let h = self.norm2.forward(&x)?;
        Ok(match &self.ls2 {
            None => self.mlp.forward_residual(&h, &x)?,
            Some(g) => (&x + self.mlp.forward(&h)?.broadcast_mul(g)?)?,
        })
    }
}

/// timm `VisionTransformer` (inference).
#[derive(Debug, Clone)]
pub struct VisionTransformer {
    cfg: VitConfig,
    pub patch_embed: PatchEmbed,
    /// `cls_token` `[1, 1, D]`.
    pub cls_token: Option<Tensor>,
    /// `reg_token` `[1, R, D]`.
    pub reg_token: Option<Tensor>,
    /// `pos_embed` `[1, pos_embed_len, D]`, on the configured grid.
    pub pos_embed: Option<Tensor>,
    pub norm_pre: Option<LayerNorm>,
    pub blocks: Vec<Block>,
    pub norm: Option<LayerNorm>,
    pub fc_norm: Option<LayerNorm>,
    pub head: Option<Linear>,
}

impl VisionTransformer {
    /// Builds the model from `vb` (keys as in timm's `state_dict()`), checking every
    /// shape. `pos_embed` is matched according to `pos_embed_load`.
    pub fn new(vb: &View, cfg: &VitConfig, pos_embed_load: PosEmbedLoad) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.embed_dim;
        let patch_embed = PatchEmbed::new(&vb.pp("patch_embed"), cfg)?;
        let cls_token = if cfg.class_token {
            Some(vb.get("cls_token", &[1, 1, d])?)
        } else {
            None
        };
        let reg_token = if cfg.reg_tokens > 0 {
            Some(vb.get("reg_token", &[1, cfg.reg_tokens, d])?)
        } else {
            None
        };
        let pos_embed = match cfg.pos_embed {
            PosEmbedType::Learn => Some(load_pos_embed(vb, cfg, pos_embed_load)?),
            PosEmbedType::None => None,
        };
        let norm = |name: &str| LayerNorm::new(&vb.pp(name), d, LAYER_NORM_EPS);
        let norm_pre = if cfg.pre_norm {
            Some(norm("norm_pre")?)
        } else {
            None
        };
        let blocks = (0..cfg.depth)
            .map(|i| Block::new(&vb.pp("blocks").pp(i), cfg))
            .collect::<Result<Vec<_>>>()?;
        let use_fc_norm = cfg.uses_fc_norm();
        let final_norm = if cfg.final_norm && !use_fc_norm {
            Some(norm("norm")?)
        } else {
            None
        };
        let fc_norm = if cfg.final_norm && use_fc_norm {
            Some(norm("fc_norm")?)
        } else {
            None
        };
        let head = if cfg.num_classes > 0 {
            Some(Linear::new(&vb.pp("head"), d, cfg.num_classes, true)?)
        } else {
            None
        };
        Ok(Self {
            cfg: cfg.clone(),
            patch_embed,
            cls_token,
            reg_token,
            pos_embed,
            norm_pre,
            blocks,
            norm: final_norm,
            fc_norm,
            head,
        })
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &VitConfig {
        &self.cfg
    }

    /// Width of `forward_head(.., pre_logits=true)` (timm `num_features`).
    pub fn num_features(&self) -> usize {
        self.cfg.embed_dim
    }

    /// timm `forward_features`: pixels `[B, C, H, W]` -> tokens `[B, prefix + patches, D]`
    /// after the final `norm` (class token, then registers, then patches).
    ///
    /// Without `dynamic_img_size` the input must have the configured `img_size`; with it,
    /// any size divisible by the patch size (or any size with `dynamic_img_pad`), and the
    /// position embedding is resampled to the input's grid.
    pub fn forward_features(&self, pixels: &Tensor) -> Result<Tensor> {
        let x = self.check_and_pad(pixels)?;
        let x = x.to_dtype(self.patch_embed.proj.weight.dtype())?;
        let (b, _, h, w) = x.dims4()?;
        let grid = (h / self.cfg.patch_size.0, w / self.cfg.patch_size.1);
        let patches = self.patch_embed.forward(&x)?;

        let d = self.cfg.embed_dim;
        let mut prefix = Vec::new();
        for token in [&self.cls_token, &self.reg_token].into_iter().flatten() {
            prefix.push(token.broadcast_as((b, token.dim(1)?, d))?.contiguous()?);
        }
        let concat = |x: Tensor| -> Result<Tensor> {
            if prefix.is_empty() {
                return Ok(x);
            }
            let mut parts = prefix.clone();
            parts.push(x);
            Ok(Tensor::cat(&parts, 1)?)
        };
        let mut x = match &self.pos_embed {
            None => concat(patches)?,
            Some(pos) => {
                let pos = if self.cfg.dynamic_img_size && grid != self.cfg.grid_size() {
                    resample_abs_pos_embed(
                        pos,
                        grid,
                        Some(self.cfg.grid_size()),
                        self.cfg.num_pos_prefix_tokens(),
                    )?
                } else {
                    pos.clone()
                };
                if self.cfg.no_embed_class {
                    concat(patches.broadcast_add(&pos)?)?
                } else {
                    concat(patches)?.broadcast_add(&pos)?
                }
            }
        };
        if let Some(n) = &self.norm_pre {
            x = n.forward(&x)?;
        }
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        if let Some(n) = &self.norm {
            x = n.forward(&x)?;
        }
        Ok(x)
    }

    /// timm `forward_head`: pools `features` (`[B, N, D]` from [`forward_features`]) per
    /// `global_pool`, applies `fc_norm`, then the classifier unless `pre_logits`.
    /// Returns `[B, D]` / `[B, num_classes]`, or `[B, N, D]` / `[B, N, num_classes]` when
    /// `global_pool` is `""`. Without a head (`num_classes = 0`) the logits are the
    /// pre-logits, as with timm's `nn.Identity` head.
    ///
    /// [`forward_features`]: Self::forward_features
    pub fn forward_head(&self, features: &Tensor, pre_logits: bool) -> Result<Tensor> {
        let (_, n, d) = features
            .dims3()
            .context("forward_head expects features [B, N, D]")?;
        if d != self.cfg.embed_dim {
            bail!(
                "forward_head: features have width {d}, the model {}",
                self.cfg.embed_dim
            );
        }
        let skip = if self.cfg.pool_include_prefix {
            0
        } else {
            self.cfg.num_prefix_tokens()
        };
        let pooled_tokens = || -> Result<Tensor> {
            if n <= skip {
                bail!(
                    "forward_head: {n} tokens leave nothing to pool after {skip} prefix token(s)"
                );
            }
            Ok(features.narrow(1, skip, n - skip)?)
        };
        let mut x = match self.cfg.global_pool {
            GlobalPool::None => features.clone(),
            GlobalPool::Token => features.narrow(1, 0, 1)?.squeeze(1)?,
            GlobalPool::Avg => pooled_tokens()?.mean(1)?,
            GlobalPool::Max => pooled_tokens()?.max(1)?,
            GlobalPool::AvgMax => {
                let t = pooled_tokens()?;
                ((t.max(1)? + t.mean(1)?)? * 0.5)?
            }
        };
        if let Some(n) = &self.fc_norm {
            x = n.forward(&x)?;
        }
        match (&self.head, pre_logits) {
            (Some(head), false) => head.forward(&x),
            _ => Ok(x),
        }
    }

    /// timm `forward`: `forward_head(forward_features(pixels))`.
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        self.forward_head(&self.forward_features(pixels)?, false)
    }

    /// Validates the input shape as timm's `PatchEmbed` does and applies
    /// `dynamic_img_pad` (zeros on the right and bottom).
    fn check_and_pad(&self, pixels: &Tensor) -> Result<Tensor> {
        let dims = pixels.dims();
        let &[_, c, h, w] = dims else {
            bail!("expected pixels of shape [batch, channels, height, width], got {dims:?}");
        };
        if c != self.cfg.in_chans {
            bail!(
                "the model takes {} input channel(s), the pixels have {c} (shape {dims:?})",
                self.cfg.in_chans
            );
        }
        let (ph, pw) = self.cfg.patch_size;
        if !self.cfg.dynamic_img_size {
            let (eh, ew) = self.cfg.img_size;
            if (h, w) != (eh, ew) {
                bail!("input is {h}x{w} but the model takes {eh}x{ew} images (timm would need dynamic_img_size=True)");
            }
            return Ok(pixels.clone());
        }
        if self.cfg.dynamic_img_pad {
            let (pad_h, pad_w) = ((ph - h % ph) % ph, (pw - w % pw) % pw);
            return Ok(pixels.pad_with_zeros(D::Minus1, 0, pad_w)?.pad_with_zeros(
                D::Minus2,
                0,
                pad_h,
            )?);
        }
        if h % ph != 0 || w % pw != 0 || h == 0 || w == 0 {
            bail!("input is {h}x{w}, which is not a multiple of the patch size {ph}x{pw} (timm would need dynamic_img_pad=True)");
        }
        Ok(pixels.clone())
    }
}

/// Loads `pos_embed`, resampling it as timm's `checkpoint_filter_fn` does when asked to.
fn load_pos_embed(vb: &View, cfg: &VitConfig, how: PosEmbedLoad) -> Result<Tensor> {
    let expected = [1, cfg.pos_embed_len(), cfg.embed_dim];
    let source_img_size = match how {
        PosEmbedLoad::Strict => return Ok(vb.get("pos_embed", &expected)?),
        PosEmbedLoad::Resample { source_img_size } => source_img_size,
    };
    let key = vb.key("pos_embed");
    let found = vb.shape_of("pos_embed");
    let tokens = match found.as_deref() {
        None => return Ok(vb.get("pos_embed", &expected)?), // reports the missing key
        Some(&[1, n, dd]) if dd == cfg.embed_dim => n,
        Some(other) => bail!("tensor `{key}` has shape {other:?} in the checkpoint but the model expects {expected:?}"),
    };
    let prefix = cfg.num_pos_prefix_tokens();
    if tokens <= prefix {
        bail!(
            "tensor `{key}` has shape {:?}: no grid positions after {prefix} prefix token(s)",
            [1, tokens, cfg.embed_dim]
        );
    }
    // timm get_pretrained_grid_size: the source image size over the checkpoint's patch
    // kernel, kept only if it accounts for every grid position.
    let kernel = vb.pp("patch_embed").pp("proj").shape_of("weight");
    let old_size = match (source_img_size, kernel.as_deref()) {
        (Some((sh, sw)), Some(&[_, _, kh, kw])) if kh > 0 && kw > 0 => {
            Some((sh / kh, sw / kw)).filter(|(gh, gw)| gh * gw == tokens - prefix)
        }
        _ => None,
    };
    let pos = vb.get_unchecked("pos_embed")?;
    let grid = cfg.grid_size();
    if tokens == expected[1] && old_size.is_none_or(|old| old == grid) {
        return Ok(pos);
    }
    resample_abs_pos_embed(&pos, grid, old_size, prefix).with_context(|| {
        format!(
            "cannot resample `{key}` {:?} to the model's {:?}",
            [1, tokens, cfg.embed_dim],
            expected
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_timm_vit_base() {
        let cfg = VitConfig::from_json(&json!({})).unwrap();
        assert_eq!(cfg, VitConfig::default());
        assert_eq!(cfg.grid_size(), (14, 14));
        assert_eq!(cfg.pos_embed_len(), 197);
        assert_eq!(cfg.mlp_hidden_features(), 3072);
        assert!(!cfg.uses_fc_norm());
    }

    #[test]
    fn config_forms_used_by_timm_hub_files() {
        let cfg = VitConfig::from_json(&json!({
            "img_size": [224, 154], "patch_size": 14, "embed_dim": 1536, "num_heads": 24,
            "mlp_ratio": 5.33334, "mlp_layer": "timm.layers.SwiGLUPacked", "act_layer": "torch.nn.SiLU",
            "init_values": 1e-5, "reg_tokens": 8, "no_embed_class": true, "dynamic_img_size": true,
            "drop_path_rate": 0.1, "fc_norm": null, "global_pool": ""
        }))
        .unwrap();
        assert_eq!(cfg.img_size, (224, 154));
        assert_eq!(cfg.patch_size, (14, 14));
        assert_eq!(cfg.mlp_layer, MlpKind::GluPacked);
        assert_eq!(cfg.act_layer, Activation::Silu);
        assert_eq!(cfg.mlp_hidden_features(), 8192);
        assert_eq!(cfg.num_prefix_tokens(), 9);
        assert_eq!(cfg.pos_embed_len(), 16 * 11);
        assert_eq!(cfg.global_pool, GlobalPool::None);
    }

    #[test]
    fn layer_name_spellings() {
        for s in [
            "silu",
            "SiLU",
            "swish",
            "torch.nn.SiLU",
            "nn.SiLU",
            "<class 'torch.nn.modules.activation.SiLU'>",
        ] {
            assert_eq!(parse_act_layer(s).unwrap(), Activation::Silu, "{s}");
        }
        for (s, a) in [
            ("gelu", Activation::Gelu),
            ("torch.nn.GELU", Activation::Gelu),
            ("gelu_tanh", Activation::GeluTanh),
            ("timm.layers.QuickGELU", Activation::QuickGelu),
            ("relu", Activation::Relu),
        ] {
            assert_eq!(parse_act_layer(s).unwrap(), a, "{s}");
        }
        for s in [
            "swiglupacked",
            "SwiGLUPacked",
            "swiglu_packed",
            "timm.layers.SwiGLUPacked",
            "timm.layers.mlp.SwiGLUPacked",
        ] {
            assert_eq!(parse_mlp_layer(s).unwrap(), MlpKind::GluPacked, "{s}");
        }
        assert_eq!(parse_mlp_layer("timm.layers.Mlp").unwrap(), MlpKind::Plain);
        assert!(parse_act_layer("tanhshrink").is_err());
        let e = parse_mlp_layer("SwiGLU").unwrap_err().to_string();
        assert!(e.contains("SwiGLU") && e.contains("supported"), "{e}");
    }

    #[test]
    fn bad_arguments_are_rejected_with_their_name() {
        let err = |v: Value| format!("{:#}", VitConfig::from_json(&v).unwrap_err());
        assert!(err(json!({"qk_norm": true})).contains("qk_norm"));
        assert!(err(json!({"embde_dim": 8})).contains("embde_dim"));
        assert!(err(json!({"norm_layer": "rmsnorm"})).contains("norm_layer"));
        assert!(err(json!({"global_pool": "map"})).contains("map"));
        assert!(err(json!({"class_token": false})).contains("class token"));
        assert!(err(json!({"img_size": 100})).contains("multiple of patch_size"));
        assert!(err(json!({"embed_dim": 100})).contains("num_heads"));
        assert!(err(
            json!({"mlp_layer": "swiglupacked", "embed_dim": 12, "num_heads": 3, "mlp_ratio": 1.25})
        )
        .contains("hidden"));
        assert!(err(json!([1, 2])).contains("JSON object"));
    }

    #[test]
    fn fc_norm_follows_pooling_unless_set() {
        let cfg = |v: Value| VitConfig::from_json(&v).unwrap();
        assert!(cfg(json!({"global_pool": "avg"})).uses_fc_norm());
        assert!(cfg(json!({"global_pool": "avgmax"})).uses_fc_norm());
        assert!(cfg(json!({"global_pool": "max"})).uses_fc_norm());
        assert!(!cfg(json!({"global_pool": "avg", "fc_norm": false})).uses_fc_norm());
        assert!(cfg(json!({"global_pool": "token", "fc_norm": true})).uses_fc_norm());
        assert!(!cfg(json!({"init_values": 0.0})).uses_layer_scale());
    }
}
