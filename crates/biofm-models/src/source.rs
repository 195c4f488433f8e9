//! Access to a model's files, wherever they live.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// A set of model files addressed by relative name (`config.json`,
/// `1_Pooling/config.json`, ...): a local directory or a hub snapshot.
pub trait FileSource {
    /// The file's local path, or `None` if the model does not have it.
    fn get(&self, name: &str) -> Result<Option<PathBuf>>;
    /// Human-readable location for messages.
    fn describe(&self) -> String;
    /// The file's local path, or an error naming the file and the model.
    fn require(&self, name: &str) -> Result<PathBuf> {
        self.get(name)?.with_context(|| format!("{} has no file `{name}`", self.describe()))
    }
    /// Reads and parses a JSON file.
    fn json(&self, name: &str) -> Result<serde_json::Value> {
        let p = self.require(name)?;
        let text = std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", p.display()))
    }
}

impl FileSource for Path {
    fn get(&self, name: &str) -> Result<Option<PathBuf>> {
        let p = self.join(name);
        Ok(if p.is_file() { Some(p) } else { None })
    }
    fn describe(&self) -> String {
        format!("model directory {}", self.display())
    }
}

impl FileSource for PathBuf {
    fn get(&self, name: &str) -> Result<Option<PathBuf>> {
        self.as_path().get(name)
    }
    fn describe(&self) -> String {
        self.as_path().describe()
    }
}
