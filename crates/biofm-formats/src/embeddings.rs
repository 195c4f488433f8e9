//! Embedding tables: one row per input, in input order.

use crate::atomic::AtomicFile;
use crate::npy;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Output formats for embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingFormat {
    /// NumPy `float32` matrix `[N, D]`; row order = input order.
    Npy,
    /// safetensors with tensor `embeddings` `[N, D]`; metadata holds the input names
    /// (`inputs`, a JSON list) and run details.
    Safetensors,
    /// JSON Lines: `{"input": ..., "embedding": [...]}` per row.
    Jsonl,
}

impl EmbeddingFormat {
    /// Picks the format from the file extension.
    pub fn from_path(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref() {
            Some("npy") => Ok(Self::Npy),
            Some("safetensors") => Ok(Self::Safetensors),
            Some("jsonl") | Some("ndjson") => Ok(Self::Jsonl),
            _ => bail!(
                "cannot tell the output format of {}: use a .npy, .safetensors or .jsonl extension",
                path.display()
            ),
        }
    }
}

/// Rows of embeddings with the name of the input each came from.
#[derive(Debug, Clone, Default)]
pub struct EmbeddingTable {
    pub inputs: Vec<String>,
    pub dim: usize,
    /// Row-major `[inputs.len(), dim]`.
    pub data: Vec<f32>,
    /// Provenance stored where the format allows (model, dtype, normalisation...).
    pub metadata: BTreeMap<String, String>,
}

impl EmbeddingTable {
    pub fn new(dim: usize) -> Self {
        Self { dim, ..Default::default() }
    }

    pub fn push(&mut self, input: impl Into<String>, row: &[f32]) -> Result<()> {
        if row.len() != self.dim {
            bail!("embedding row has {} values, expected {}", row.len(), self.dim);
        }
        self.inputs.push(input.into());
        self.data.extend_from_slice(row);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.inputs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Writes the table atomically in the format implied by `path`'s extension.
    pub fn write(&self, path: &Path) -> Result<()> {
        self.write_as(path, EmbeddingFormat::from_path(path)?)
    }

    pub fn write_as(&self, path: &Path, format: EmbeddingFormat) -> Result<()> {
        let mut f = AtomicFile::create(path)?;
        match format {
            EmbeddingFormat::Npy => npy::write_f32(&mut f, &[self.len(), self.dim], &self.data)?,
            EmbeddingFormat::Safetensors => {
                let bytes: Vec<u8> = self.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                let view = safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    vec![self.len(), self.dim],
                    &bytes,
                )
                .context("building the safetensors view")?;
                let mut meta: std::collections::HashMap<String, String> =
                    self.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                meta.insert("inputs".into(), serde_json::to_string(&self.inputs)?);
                let out = safetensors::serialize([("embeddings", view)], Some(meta))
                    .context("serialising safetensors")?;
                f.write_all(&out)?;
            }
            EmbeddingFormat::Jsonl => {
                let mut w = std::io::BufWriter::new(&mut f);
                for (i, input) in self.inputs.iter().enumerate() {
                    let line = serde_json::json!({ "input": input, "embedding": self.row(i) });
                    serde_json::to_writer(&mut w, &line)?;
                    w.write_all(b"\n")?;
                }
                w.flush()?;
            }
        }
        f.commit().with_context(|| format!("writing {}", path.display()))
    }

    /// Reads a table written by [`EmbeddingTable::write`] (npy rows are named by index).
    pub fn read(path: &Path) -> Result<Self> {
        match EmbeddingFormat::from_path(path)? {
            EmbeddingFormat::Npy => {
                let (shape, data) = npy::read_f32(path)?;
                if shape.len() != 2 {
                    bail!("{}: expected a 2-D [N, D] array, found shape {shape:?}", path.display());
                }
                Ok(Self { inputs: (0..shape[0]).map(|i| i.to_string()).collect(), dim: shape[1], data, metadata: BTreeMap::new() })
            }
            EmbeddingFormat::Safetensors => {
                let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
                let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
                    .with_context(|| format!("{} is not a safetensors file", path.display()))?;
                let st = safetensors::SafeTensors::deserialize(&bytes)
                    .with_context(|| format!("{} is not a safetensors file", path.display()))?;
                let t = st.tensor("embeddings").with_context(|| format!("{} has no `embeddings` tensor", path.display()))?;
                if t.dtype() != safetensors::Dtype::F32 || t.shape().len() != 2 {
                    bail!("{}: `embeddings` must be a 2-D F32 tensor", path.display());
                }
                let (n, dim) = (t.shape()[0], t.shape()[1]);
                let data = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                let mut metadata: BTreeMap<String, String> = meta.metadata().clone().unwrap_or_default().into_iter().collect();
                let inputs = match metadata.remove("inputs") {
                    Some(s) => serde_json::from_str(&s).with_context(|| format!("{}: bad `inputs` metadata", path.display()))?,
                    None => (0..n).map(|i| i.to_string()).collect(),
                };
                Ok(Self { inputs, dim, data, metadata })
            }
            EmbeddingFormat::Jsonl => {
                let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
                let mut t = Self::default();
                for (ln, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    let v: serde_json::Value = serde_json::from_str(line)
                        .with_context(|| format!("{}:{}: invalid JSON", path.display(), ln + 1))?;
                    let input = v.get("input").and_then(|s| s.as_str()).unwrap_or_default().to_string();
                    let emb: Vec<f32> = v
                        .get("embedding")
                        .and_then(|e| e.as_array())
                        .with_context(|| format!("{}:{}: no `embedding` array", path.display(), ln + 1))?
                        .iter()
                        .map(|x| x.as_f64().map(|f| f as f32))
                        .collect::<Option<_>>()
                        .with_context(|| format!("{}:{}: non-numeric embedding value", path.display(), ln + 1))?;
                    if t.dim == 0 && t.inputs.is_empty() {
                        t.dim = emb.len();
                    }
                    t.push(input, &emb).with_context(|| format!("{}:{}", path.display(), ln + 1))?;
                }
                Ok(t)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> EmbeddingTable {
        let mut t = EmbeddingTable::new(3);
        t.push("a.png", &[0.1, -2.5, 3.0e-7]).unwrap();
        t.push("b/c.jpg", &[1.0, 0.0, -1.0]).unwrap();
        t.metadata.insert("model".into(), "m".into());
        t
    }

    #[test]
    fn roundtrip_every_format() {
        let dir = tempfile::tempdir().unwrap();
        for ext in ["npy", "safetensors", "jsonl"] {
            let p = dir.path().join(format!("out.{ext}"));
            table().write(&p).unwrap();
            let back = EmbeddingTable::read(&p).unwrap();
            assert_eq!(back.data, table().data, "{ext}");
            assert_eq!(back.dim, 3);
            if ext != "npy" {
                assert_eq!(back.inputs, table().inputs, "{ext}");
            }
        }
        // Nothing but the three outputs is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    #[test]
    fn bad_paths_fail_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let err = table().write(&dir.path().join("missing/out.npy")).unwrap_err();
        assert!(format!("{err:#}").contains("does not exist"), "{err:#}");
        assert!(table().write(&dir.path().join("out.txt")).is_err());
        assert!(table().write(dir.path()).is_err());
        let mut t = EmbeddingTable::new(2);
        assert!(t.push("x", &[1.0]).is_err());
    }
}
