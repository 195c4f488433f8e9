use serde::Deserialize;

/// Key remapping rules, applied to each key in this order: select, strip prefixes,
/// renames, drops.
///
/// Rules are data (serde-deserialisable, unknown fields rejected) so model families can
/// ship them in their configuration instead of code. The hygiene the reference loaders do
/// by hand maps onto them directly:
///
/// | reference behaviour | rule |
/// |---|---|
/// | DataParallel / DDP checkpoints (`module.` prefix) | `strip_prefix("module.")` |
/// | Lightning / BiomedParse (`model.` prefix) | `strip_prefix("model.")` |
/// | stale buffers such as BiomedCLIP's `text.transformer.embeddings.position_ids` | `drop_key("*.position_ids")` |
/// | scGPT flash-attn names (`load_pretrained`) | `rename("self_attn._impl.", "self_attn.")`, then `rename("self_attn.Wqkv.", "self_attn.in_proj_")` |
/// | one tower of a multi-tower checkpoint (`visual.`) | `select("visual.")` |
///
/// A rule that matches no key is not an error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyRules {
    /// Prefixes removed from every key that has them, each at most once, in order (list
    /// `"module."` twice for a doubly wrapped model).
    pub strip_prefixes: Vec<String>,
    /// Substring renames `(from, to)`, applied in order to every occurrence in the key
    /// (as scGPT's `str.replace`); later renames see the result of earlier ones.
    pub renames: Vec<(String, String)>,
    /// Keys to drop, matched after the renames: an exact key, a prefix ending in `.`, or
    /// a suffix after `*` (e.g. `"*.position_ids"`).
    pub drop: Vec<String>,
    /// Keep only keys under this prefix and remove it (e.g. `"visual."`).
    pub select_prefix: Option<String>,
}

/// Whether `key` matches `pattern`: `*suffix`, `prefix.` (ends with a dot), or an exact
/// key. Shared by [`KeyRules::drop`] and [`Weights::check_unused`](crate::Weights::check_unused).
pub(crate) fn key_matches(pattern: &str, key: &str) -> bool {
    if let Some(suffix) = pattern.strip_prefix('*') {
        key.ends_with(suffix)
    } else if pattern.ends_with('.') {
        key.starts_with(pattern)
    } else {
        key == pattern
    }
}

impl KeyRules {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a prefix to strip.
    pub fn strip_prefix(mut self, p: impl Into<String>) -> Self {
        self.strip_prefixes.push(p.into());
        self
    }
    /// Adds a substring rename.
    pub fn rename(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.renames.push((from.into(), to.into()));
        self
    }
    /// Adds a drop pattern (see [`KeyRules::drop`]).
    pub fn drop_key(mut self, k: impl Into<String>) -> Self {
        self.drop.push(k.into());
        self
    }
    /// Keeps only keys under `prefix`, without it.
    pub fn select(mut self, prefix: impl Into<String>) -> Self {
        self.select_prefix = Some(prefix.into());
        self
    }

    /// Maps one key; `None` means the key is dropped (or not selected).
    pub fn map_key(&self, key: &str) -> Option<String> {
        let mut k = key;
        if let Some(p) = &self.select_prefix {
            k = k.strip_prefix(p.as_str())?;
        }
        for p in &self.strip_prefixes {
            k = k.strip_prefix(p.as_str()).unwrap_or(k);
        }
        let mut k = k.to_string();
        for (from, to) in &self.renames {
            if !from.is_empty() && k.contains(from.as_str()) {
                k = k.replace(from.as_str(), to);
            }
        }
        if self.drop.iter().any(|d| key_matches(d, &k)) {
            return None;
        }
        Some(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_parallel_and_model_prefixes() {
        let r = KeyRules::new()
            .strip_prefix("module.")
            .strip_prefix("model.");
        assert_eq!(
            r.map_key("module.model.head.weight").as_deref(),
            Some("head.weight")
        );
        assert_eq!(r.map_key("head.weight").as_deref(), Some("head.weight"));
        // Only a prefix is stripped, not an inner occurrence.
        assert_eq!(
            r.map_key("encoder.module.x").as_deref(),
            Some("encoder.module.x")
        );
    }

    #[test]
    fn drops_stale_position_ids() {
        let r = KeyRules::new().drop_key("*.position_ids");
        assert_eq!(r.map_key("text.transformer.embeddings.position_ids"), None);
        assert_eq!(
            r.map_key("text.transformer.embeddings.position_embeddings.weight")
                .as_deref(),
            Some("text.transformer.embeddings.position_embeddings.weight")
        );
        let exact = KeyRules::new().drop_key("text.transformer.embeddings.position_ids");
        assert_eq!(
            exact.map_key("text.transformer.embeddings.position_ids"),
            None
        );
        assert!(exact.map_key("visual.embeddings.position_ids").is_some());
        let prefix = KeyRules::new().drop_key("decoder.");
        assert_eq!(prefix.map_key("decoder.layers.0.w"), None);
        assert!(prefix.map_key("decoder_norm.w").is_some());
    }

    #[test]
    fn scgpt_flash_attention_renames() {
        let r = KeyRules::new()
            .rename("self_attn._impl.", "self_attn.")
            .rename("self_attn.Wqkv.", "self_attn.in_proj_");
        let m = |k: &str| r.map_key(k).unwrap();
        assert_eq!(
            m("transformer_encoder.layers.0.self_attn.Wqkv.weight"),
            "transformer_encoder.layers.0.self_attn.in_proj_weight"
        );
        assert_eq!(
            m("transformer_encoder.layers.3.self_attn._impl.Wqkv.bias"),
            "transformer_encoder.layers.3.self_attn.in_proj_bias"
        );
        assert_eq!(
            m("transformer_encoder.layers.0.self_attn._impl.out_proj.weight"),
            "transformer_encoder.layers.0.self_attn.out_proj.weight"
        );
        assert_eq!(
            m("transformer_encoder.layers.0.linear1.weight"),
            "transformer_encoder.layers.0.linear1.weight"
        );
    }

    #[test]
    fn select_then_strip_then_rename_then_drop() {
        let r = KeyRules::new()
            .select("visual.")
            .strip_prefix("trunk.")
            .rename("attn.qkv", "attn.in_proj")
            .drop_key("*.drop_me");
        assert_eq!(r.map_key("text.x"), None, "not selected");
        assert_eq!(
            r.map_key("visual.trunk.blocks.0.attn.qkv.weight")
                .as_deref(),
            Some("blocks.0.attn.in_proj.weight")
        );
        assert_eq!(r.map_key("visual.trunk.head.drop_me"), None);
    }

    #[test]
    fn deserialises_from_json_and_rejects_unknown_fields() {
        let r: KeyRules = serde_json::from_str(
            r#"{"strip_prefixes": ["module."], "renames": [["self_attn.Wqkv.", "self_attn.in_proj_"]],
                "drop": ["*.position_ids"]}"#,
        )
        .unwrap();
        assert_eq!(
            r.map_key("module.l.self_attn.Wqkv.weight").as_deref(),
            Some("l.self_attn.in_proj_weight")
        );
        assert_eq!(r.map_key("module.embeddings.position_ids"), None);
        assert!(serde_json::from_str::<KeyRules>(r#"{"strip_prefix": ["module."]}"#).is_err());
    }

    #[test]
    fn empty_rename_pattern_is_ignored() {
        let r = KeyRules::new().rename("", "x.");
        assert_eq!(r.map_key("a.b").as_deref(), Some("a.b"));
    }
}
