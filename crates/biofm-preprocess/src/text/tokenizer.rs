//! Batch tokenisation with HF `tokenizers`, padded and truncated as HF transformers does.

use super::TextError;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tokenizers::{PostProcessor, Tokenizer, TruncationDirection};

/// How a batch is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// To the longest encoding in the batch (HF `padding=True` / `"longest"`).
    Longest,
    /// To `max_len` (HF `padding="max_length"`, what open_clip uses).
    MaxLength,
}

/// A tokenised, padded batch. `ids` and `attention_mask` are row-major `[batch, len]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    /// 1 for real tokens (special tokens included), 0 for padding.
    pub attention_mask: Vec<u32>,
    pub batch: usize,
    pub len: usize,
    /// Per input: whether tokens were cut to fit `max_len`.
    pub truncated: Vec<bool>,
}

impl Encoded {
    /// Token ids of row `i`, padding included.
    pub fn row(&self, i: usize) -> Option<&[u32]> {
        self.ids.get(i * self.len..(i + 1) * self.len)
    }
    /// Number of real (unpadded) tokens of each row.
    pub fn lengths(&self) -> Vec<usize> {
        self.attention_mask
            .chunks(self.len.max(1))
            .take(self.batch)
            .map(|m| m.iter().filter(|&&x| x != 0).count())
            .collect()
    }
}

/// The files a tokenizer can be loaded from (HF layout). `tokenizer.json` wins when
/// present, as in HF transformers; otherwise a BERT WordPiece tokenizer is built from
/// `vocab.txt` and the settings in `tokenizer_config.json`.
#[derive(Debug, Clone, Default)]
pub struct TokenizerFiles {
    pub tokenizer_json: Option<PathBuf>,
    pub vocab_txt: Option<PathBuf>,
    pub tokenizer_config: Option<PathBuf>,
    pub special_tokens_map: Option<PathBuf>,
}

/// Settings of HF `BertTokenizer`, with its defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordPieceConfig {
    pub do_lower_case: bool,
    /// `None`: strip accents exactly when lower-casing (HF's default).
    pub strip_accents: Option<bool>,
    pub tokenize_chinese_chars: bool,
    pub unk_token: String,
    pub sep_token: String,
    pub pad_token: String,
    pub cls_token: String,
    pub mask_token: String,
}

impl Default for WordPieceConfig {
    fn default() -> Self {
        Self {
            do_lower_case: true,
            strip_accents: None,
            tokenize_chinese_chars: true,
            unk_token: "[UNK]".into(),
            sep_token: "[SEP]".into(),
            pad_token: "[PAD]".into(),
            cls_token: "[CLS]".into(),
            mask_token: "[MASK]".into(),
        }
    }
}

/// `tokenizer_config.json` and `special_tokens_map.json`, parsed.
struct TokenizerSettings {
    config: Value,
    special_map: Value,
}

impl TokenizerSettings {
    fn read(files: &TokenizerFiles) -> Result<Self, TextError> {
        let load = |p: &Option<PathBuf>| p.as_deref().map(read_json).transpose().map(|v| v.unwrap_or(Value::Null));
        Ok(Self { config: load(&files.tokenizer_config)?, special_map: load(&files.special_tokens_map)? })
    }

    /// A special token's text: `tokenizer_config.json` first, then
    /// `special_tokens_map.json`; either may hold a string or an `AddedToken` object.
    fn special(&self, key: &str) -> Option<String> {
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        self.config.get(key).and_then(text).or_else(|| self.special_map.get(key).and_then(text))
    }

    fn wordpiece(&self) -> WordPieceConfig {
        let d = WordPieceConfig::default();
        let flag = |key: &str, default: bool| self.config.get(key).and_then(Value::as_bool).unwrap_or(default);
        WordPieceConfig {
            do_lower_case: flag("do_lower_case", d.do_lower_case),
            strip_accents: self.config.get("strip_accents").and_then(Value::as_bool),
            tokenize_chinese_chars: flag("tokenize_chinese_chars", d.tokenize_chinese_chars),
            unk_token: self.special("unk_token").unwrap_or(d.unk_token),
            sep_token: self.special("sep_token").unwrap_or(d.sep_token),
            pad_token: self.special("pad_token").unwrap_or(d.pad_token),
            cls_token: self.special("cls_token").unwrap_or(d.cls_token),
            mask_token: self.special("mask_token").unwrap_or(d.mask_token),
        }
    }
}

fn read_json(path: &Path) -> Result<Value, TextError> {
    let text = std::fs::read_to_string(path).map_err(|source| TextError::Io { path: path.to_path_buf(), source })?;
    serde_json::from_str(&text)
        .map_err(|e| TextError::Invalid { path: path.to_path_buf(), msg: format!("not valid JSON: {e}") })
}

/// A tokenizer that encodes batches the way HF transformers does with
/// `tokenizer(texts, max_length=L, truncation=True, padding=...)`.
pub struct TextTokenizer {
    inner: Tokenizer,
    pad_id: u32,
    /// Special tokens the post-processor adds to one sequence (2 for BERT).
    n_special: usize,
    source: PathBuf,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("source", &self.source)
            .field("vocab_size", &self.vocab_size())
            .field("pad_id", &self.pad_id)
            .finish()
    }
}

impl TextTokenizer {
    /// Loads from HF tokenizer files (see [`TokenizerFiles`]).
    pub fn load(files: &TokenizerFiles) -> Result<Self, TextError> {
        let settings = TokenizerSettings::read(files)?;
        match (&files.tokenizer_json, &files.vocab_txt) {
            (Some(path), _) => {
                let inner = Tokenizer::from_file(path).map_err(|e| TextError::Invalid {
                    path: path.clone(),
                    msg: format!("not a valid tokenizer.json: {e}"),
                })?;
                let from_json = inner.get_padding().map(|p| p.pad_token.clone());
                let pad = settings.special("pad_token").or(from_json).unwrap_or_else(|| "[PAD]".into());
                Self::from_tokenizer(inner, &pad, path.clone())
            }
            (None, Some(vocab)) => Self::from_vocab(vocab, &settings.wordpiece()),
            (None, None) => Err(TextError::Usage("no tokenizer.json or vocab.txt to build a tokenizer from".into())),
        }
    }

    /// Builds HF `BertTokenizer` from a WordPiece `vocab.txt` (one token per line, id =
    /// line number): `BertNormalizer` (clean text, Chinese characters, accents, lower
    /// case per `cfg`), `BertPreTokenizer`, WordPiece with `##` continuations and at most
    /// 100 characters per word, and `[CLS] ... [SEP]` around each text. Special token ids
    /// are looked up in the vocabulary.
    pub fn from_vocab(vocab_path: &Path, cfg: &WordPieceConfig) -> Result<Self, TextError> {
        let invalid = |msg: String| TextError::Invalid { path: vocab_path.to_path_buf(), msg };
        let bytes =
            std::fs::read(vocab_path).map_err(|source| TextError::Io { path: vocab_path.to_path_buf(), source })?;
        let text = String::from_utf8(bytes)
            .map_err(|e| invalid(format!("not UTF-8 (byte offset {})", e.utf8_error().valid_up_to())))?;
        // Python's text mode reads \r\n and \r as \n; `load_vocab` strips only "\n".
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        if text.is_empty() {
            return Err(invalid("empty vocabulary".into()));
        }
        let mut vocab = serde_json::Map::new();
        for (i, token) in text.strip_suffix('\n').unwrap_or(&text).split('\n').enumerate() {
            vocab.insert(token.to_string(), json!(i));
        }
        let id = |tok: &str| -> Result<u32, TextError> {
            vocab
                .get(tok)
                .and_then(Value::as_u64)
                .map(|v| v as u32)
                .ok_or_else(|| invalid(format!("special token `{tok}` is not in the vocabulary")))
        };
        let special = |tok: &str, id: u32| {
            json!({"id": id, "content": tok, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": true})
        };
        let mut added = Vec::new();
        for tok in [&cfg.unk_token, &cfg.sep_token, &cfg.pad_token, &cfg.cls_token] {
            added.push(special(tok, id(tok)?));
        }
        // The mask token is optional: it only matters for texts that contain it.
        if let Ok(mask_id) = id(&cfg.mask_token) {
            added.push(special(&cfg.mask_token, mask_id));
        }
        let (sep_id, cls_id) = (id(&cfg.sep_token)?, id(&cfg.cls_token)?);
        let spec = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": {"type": "BertNormalizer", "clean_text": true,
                           "handle_chinese_chars": cfg.tokenize_chinese_chars,
                           "strip_accents": cfg.strip_accents, "lowercase": cfg.do_lower_case},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {"type": "BertProcessing", "sep": [cfg.sep_token, sep_id], "cls": [cfg.cls_token, cls_id]},
            "decoder": null,
            "model": {"type": "WordPiece", "unk_token": cfg.unk_token, "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "vocab": vocab},
        });
        let inner: Tokenizer =
            serde_json::from_value(spec).map_err(|e| invalid(format!("cannot build a WordPiece tokenizer: {e}")))?;
        Self::from_tokenizer(inner, &cfg.pad_token, vocab_path.to_path_buf())
    }

    fn from_tokenizer(mut inner: Tokenizer, pad_token: &str, source: PathBuf) -> Result<Self, TextError> {
        // Truncation and padding are applied per call, as HF transformers overrides the
        // settings stored in tokenizer.json.
        inner.with_padding(None);
        inner.with_truncation(None).map_err(|e| TextError::Invalid { path: source.clone(), msg: e.to_string() })?;
        let pad_id = inner.token_to_id(pad_token).ok_or_else(|| TextError::Invalid {
            path: source.clone(),
            msg: format!("pad token `{pad_token}` is not in the vocabulary"),
        })?;
        let n_special = inner.get_post_processor().map_or(0, |p| p.added_tokens(false));
        Ok(Self { inner, pad_id, n_special, source })
    }

    /// Id of the padding token (read from the vocabulary, never assumed).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Id of `token`, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Size of the vocabulary including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The file this tokenizer was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Encodes `texts` with special tokens, truncated to `max_len` tokens and padded with
    /// the pad id, as HF `tokenizer(texts, max_length=max_len, truncation=True,
    /// padding=...)` does: a text longer than `max_len` keeps its first
    /// `max_len - 2` tokens between `[CLS]` and `[SEP]` (so the last token is still
    /// `[SEP]`) and is flagged in [`Encoded::truncated`]. An empty string encodes to
    /// `[CLS] [SEP]`; an empty list gives an empty batch.
    pub fn encode_batch<S: AsRef<str>>(
        &self,
        texts: &[S],
        max_len: usize,
        padding: Padding,
    ) -> Result<Encoded, TextError> {
        if max_len <= self.n_special {
            return Err(TextError::Usage(format!(
                "maximum length {max_len} leaves no room for text next to the {} special tokens",
                self.n_special
            )));
        }
        let budget = max_len - self.n_special;
        let mut rows = Vec::with_capacity(texts.len());
        let mut truncated = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let fail = |e: tokenizers::Error| {
                TextError::Tokenizer(format!("cannot tokenize text {i} with {}: {e}", self.source.display()))
            };
            let mut enc = self.inner.encode_fast(text.as_ref(), false).map_err(fail)?;
            let cut = enc.len() > budget;
            if cut {
                enc.truncate(budget, 0, TruncationDirection::Right);
            }
            let enc = self.inner.post_process(enc, None, true).map_err(fail)?;
            rows.push(enc.get_ids().to_vec());
            truncated.push(cut);
        }
        let len = match padding {
            Padding::MaxLength => max_len,
            Padding::Longest => rows.iter().map(Vec::len).max().unwrap_or(0),
        };
        let mut ids = Vec::with_capacity(rows.len() * len);
        let mut attention_mask = Vec::with_capacity(rows.len() * len);
        for (i, row) in rows.iter().enumerate() {
            if row.len() > len {
                return Err(TextError::Tokenizer(format!(
                    "{}: text {i} encodes to {} tokens, more than the maximum length {len}",
                    self.source.display(),
                    row.len()
                )));
            }
            ids.extend_from_slice(row);
            ids.resize(ids.len() + len - row.len(), self.pad_id);
            attention_mask.extend(std::iter::repeat_n(1, row.len()));
            attention_mask.extend(std::iter::repeat_n(0, len - row.len()));
        }
        Ok(Encoded { ids, attention_mask, batch: rows.len(), len, truncated })
    }
}
