//! Model families composed from `biofm-nn` blocks, and the model registry.
//!
//! * [`open_clip`]: `open_clip_config.json` models (BiomedCLIP): timm vision tower + HF
//!   text tower, zero-shot classifiers.
//! * [`timm`]: timm ViT names and the timm hub layout (UNI, UNI2-h, RETFound-style).
//! * [`scgpt`]: scGPT checkpoint folders (single-cell gene-token transformer).
//! * [`sentence_transformers`]: `modules.json` text encoders (all-MiniLM-L6-v2).
//! * [`model`]: `--model` resolution and family detection; [`registry`]: the gallery.

pub mod model;
pub mod open_clip;
pub mod registry;
pub mod scgpt;
pub mod sentence_transformers;
pub mod source;
pub mod text_configs;
pub mod timm;

pub use model::{contract_names, Family, LoadOptions, Model, Notify, PatchEncoder};
pub use source::FileSource;
