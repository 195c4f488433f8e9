//! Text cleaning and tokenisation, matching open_clip and HF transformers.
//!
//! * [`open_clip_clean`] is open_clip's default text cleaning for `HFTokenizer`
//!   (`clean="whitespace"`, open_clip 3.3): [`basic_clean`] (`ftfy.fix_text`, then
//!   `html.unescape` twice, then `strip`) followed by [`whitespace_clean`].
//! * [`fix_text`] ports `ftfy.fix_text` (ftfy 6.3.1, default configuration); see its
//!   docs for the exact list of what is and is not reproduced.
//! * [`TextTokenizer`] wraps the HF `tokenizers` crate: a `tokenizer.json`, or a BERT
//!   WordPiece tokenizer built from `vocab.txt` + `tokenizer_config.json`, with batch
//!   encoding, HF-style truncation and padding, and per-text truncation flags.

mod badness;
mod charmaps;
mod ftfy;
mod html;
mod mojibake;
mod tokenizer;

use std::path::PathBuf;

pub use ftfy::fix_text;
pub use html::python_html_unescape;
pub use tokenizer::{Encoded, Padding, TextTokenizer, TokenizerFiles, WordPieceConfig};

/// Errors from loading tokenizers and encoding text; messages name the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
    #[error("{0}")]
    Tokenizer(String),
    #[error("{0}")]
    Usage(String),
}

/// open_clip `basic_clean`: `ftfy.fix_text(text)`, then `html.unescape` applied twice,
/// then `str.strip()`.
pub fn basic_clean(text: &str) -> String {
    let fixed = fix_text(text);
    let unescaped = python_html_unescape(&python_html_unescape(&fixed));
    unescaped.trim_matches(is_python_space).to_string()
}

/// open_clip `whitespace_clean`: `" ".join(text.split())`, i.e. runs of whitespace (as
/// Python's `str.isspace` defines it) become one space, and leading/trailing whitespace
/// is removed.
pub fn whitespace_clean(text: &str) -> String {
    text.split(is_python_space).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// open_clip's default cleaning for HF tokenizers (`clean="whitespace"`, the function
/// `_clean_whitespace`): `whitespace_clean(basic_clean(text))`. No lower-casing; the
/// tokenizer's own normaliser does that.
pub fn open_clip_clean(text: &str) -> String {
    whitespace_clean(&basic_clean(text))
}

/// Python's `str.isspace` (what `str.split()`, `str.strip()` and regex `\s` use):
/// Unicode `White_Space` plus the information separators U+001C..U+001F.
pub(crate) fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}
