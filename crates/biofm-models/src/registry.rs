//! The model gallery: every seed model, what biofm supports today and the evidence.
//!
//! The table is data (`registry/models.json`), embedded in the binary.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// How far biofm's support for a model goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Runs end to end with parity evidence against the reference implementation.
    Supported,
    /// The network architecture runs with parity evidence; the model-specific
    /// pipeline (e.g. whole-slide jobs) is not there yet.
    Architecture,
    /// Not implemented yet.
    Planned,
    /// Cannot be implemented: weights not published.
    Unavailable,
}

/// One gallery entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub title: String,
    pub year: u16,
    pub venue: String,
    pub modality: String,
    pub paper: String,
    /// `hf:org/name` or a description of where the weights come from.
    pub source: String,
    pub family: String,
    pub license: String,
    pub gated: bool,
    pub status: Status,
    pub tasks: Vec<String>,
    /// Default zero-shot prompt templates (`{}` is the class name).
    #[serde(default)]
    pub templates: Vec<String>,
    pub parity: String,
    /// How the model is used as a whole-slide patch encoder, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_encoder: Option<PatchEncoderContract>,
}

/// A patch encoder's contract with the whole-slide pipeline, as its reference toolkit
/// applies it: what patches it expects, how they are preprocessed, how the network is
/// built. Users pick the encoder by name and get all of this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchEncoderContract {
    /// Patch side in pixels at `magnification`.
    pub patch_size: u32,
    /// Target magnification of the patches (10 / magnification µm per pixel).
    pub magnification: f64,
    /// The timm architecture the checkpoint is built as.
    pub architecture: String,
    /// Keyword arguments the reference passes to `timm.create_model`, on top of the
    /// hub configuration (also used to build a bare checkpoint file).
    #[serde(default)]
    pub timm_kwargs: serde_json::Map<String, serde_json::Value>,
    /// Patch → tensor preprocessing.
    pub transform: biofm_preprocess::image::TransformConfig,
    /// Embedding width.
    pub embedding_dim: usize,
    /// The precision the reference toolkit runs the encoder in (biofm computes in f32
    /// unless asked otherwise).
    pub reference_precision: String,
    /// Where the contract comes from.
    pub reference: String,
}

const MODELS_JSON: &str = include_str!("registry/models.json");

/// Every gallery entry, in display order.
pub fn all() -> Result<Vec<Entry>> {
    serde_json::from_str(MODELS_JSON).context("the built-in model gallery is malformed")
}

/// Looks a registry name up (case-insensitive).
pub fn find(name: &str) -> Result<Option<Entry>> {
    Ok(all()?.into_iter().find(|e| e.name.eq_ignore_ascii_case(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gallery_parses_and_names_are_unique() {
        let all = all().unwrap();
        assert!(all.len() >= 12);
        let mut names: Vec<_> = all.iter().map(|e| e.name.to_lowercase()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        // Entries that claim support must say where the weights come from.
        for e in all.iter().filter(|e| e.status == Status::Supported) {
            assert!(e.source.starts_with("hf:") || e.source.starts_with("local folder"), "{}", e.name);
        }
        assert!(find("BiomedCLIP").unwrap().is_some());
        assert!(find("nope").unwrap().is_none());
    }
}
