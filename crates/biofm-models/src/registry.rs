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
