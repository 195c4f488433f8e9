use serde::Deserialize;

/// Key remapping rules, applied in order: unwrap, strip prefixes, renames, drops.
///
/// Rules are data (serde-deserialisable) so model families can ship them in their
/// configuration instead of code.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyRules {
    /// Prefixes removed from every key that has them, e.g. `"module."` (DataParallel).
    pub strip_prefixes: Vec<String>,
    /// Substring renames `(from, to)`, applied to every key in order.
    pub renames: Vec<(String, String)>,
    /// Keys to drop: an exact key, or a suffix when it starts with `*`
    /// (e.g. `"*embeddings.position_ids"`).
    pub drop: Vec<String>,
    /// Keep only keys under this prefix and remove it (e.g. `"visual."`).
    pub select_prefix: Option<String>,
}

impl KeyRules {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn strip_prefix(mut self, p: impl Into<String>) -> Self {
        self.strip_prefixes.push(p.into());
        self
    }
    pub fn rename(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.renames.push((from.into(), to.into()));
        self
    }
    pub fn drop_key(mut self, k: impl Into<String>) -> Self {
        self.drop.push(k.into());
        self
    }
    pub fn select(mut self, prefix: impl Into<String>) -> Self {
        self.select_prefix = Some(prefix.into());
        self
    }

    /// Maps one key; `None` means the key is dropped.
    pub fn map_key(&self, key: &str) -> Option<String> {
        let mut k = key.to_string();
        if let Some(p) = &self.select_prefix {
            k = k.strip_prefix(p.as_str())?.to_string();
        }
        for p in &self.strip_prefixes {
            if let Some(rest) = k.strip_prefix(p.as_str()) {
                k = rest.to_string();
            }
        }
        for (from, to) in &self.renames {
            if k.contains(from.as_str()) {
                k = k.replace(from.as_str(), to);
            }
        }
        for d in &self.drop {
            let hit = match d.strip_prefix('*') {
                Some(suffix) => k.ends_with(suffix),
                None => &k == d,
            };
            if hit {
                return None;
            }
        }
        Some(k)
    }
}
