//! `ftfy.fix_text` (ftfy 6.3.1, default `TextFixerConfig`), as open_clip calls it.

use super::html::ftfy_unescape_html;
use super::mojibake::{fix_c1_controls, fix_encoding};
use unicode_normalization::UnicodeNormalization;

/// ftfy `max_decode_length`: segments are cut after this many characters.
const MAX_DECODE_LENGTH: usize = 1_000_000;

/// Port of `ftfy.fix_text(text)` with ftfy 6.3.1's default configuration.
///
/// The text is fixed line by line (segments end after `\n`). Each segment is passed
/// through the following steps, repeated until nothing changes:
///
/// 1. `unescape_html`: `&name;`, `&#NN;` and `&#xNN;` (only the `;`-terminated forms,
///    plus all-caps spellings such as `&EACUTE;`). As in ftfy ("auto" mode), this step
///    is switched off for a segment that contains `<`, and for every later segment.
/// 2. `fix_encoding`: when the `is_bad` heuristic sees mojibake, re-encode with each
///    of ftfy's single-byte codecs (Latin-1, sloppy Windows-1252/1251/1250/1253/1254/
///    1257, ISO-8859-2, MacRoman, CP437) and decode as UTF-8 (with CESU-8 and Java-null
///    variants), including `restore_byte_a0` (a space that was a U+00A0) and
///    `replace_lossy_sequences` (sequences partly lost to U+FFFD); otherwise fix
///    embedded mojibake runs (`decode_inconsistent_utf8`), Latin-1 read as
///    Windows-1252, and C1 controls.
/// 3. `fix_c1_controls`, `fix_latin_ligatures` (`ﬁ` → `fi`, `Ĳ` → `IJ`, ...),
///    `fix_character_width` (fullwidth ASCII and halfwidth katakana, U+3000 → space),
///    `uncurl_quotes`, `fix_line_breaks` (CRLF, CR, U+2028/2029, U+0085 → `\n`),
///    `remove_terminal_escapes` (`ESC [ digits/; letter`), `remove_control_chars`
///    (C0 controls except `\t\n\f\r`, DEL, U+206A-206F, U+FEFF, U+FFF9-FFFC).
/// 4. NFC normalisation.
///
/// Known differences from Python (each has a case in `tests/text_clean.rs`):
/// * Terminal escapes whose parameters use non-ASCII decimal digits (Python's `\d`
///   also matches e.g. Arabic-Indic digits) are not removed.
/// * Unicode data (NFC, case mapping, whitespace) comes from the `unicode-normalization`
///   crate and the Rust standard library, not Python 3.11's Unicode 14.0 tables:
///   characters added after Unicode 14 may normalise differently.
///
/// Not reproducible and so not handled: `fix_surrogates` (a Rust `str` cannot hold lone
/// surrogates). One `is_bad` rule uses regex `\w`, here `char::is_alphanumeric`, which
/// also accepts `Other_Alphabetic` marks that Python's `str.isalnum` rejects (e.g.
/// circled letters); no input is known where this changes the output.
pub fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut unescape_html = true;
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        if let Some((cut, _)) = rest[..end].char_indices().nth(MAX_DECODE_LENGTH) {
            end = cut;
        }
        let segment = &rest[..end];
        if unescape_html && segment.contains('<') {
            unescape_html = false;
        }
        out.push_str(&fix_segment(segment, unescape_html));
        rest = &rest[end..];
    }
    out
}

/// ftfy `fix_and_explain` without the explanation: apply every fixer until a fixed
/// point (bounded; ftfy's own loop terminates long before the bound).
fn fix_segment(segment: &str, unescape_html: bool) -> String {
    let mut text = segment.to_string();
    for _ in 0..64 {
        let orig = text.clone();
        if unescape_html {
            text = ftfy_unescape_html(&text);
        }
        text = fix_encoding(&text);
        text = fix_c1_controls(&text);
        text = fix_latin_ligatures(&text);
        text = fix_character_width(&text);
        text = uncurl_quotes(&text);
        text = fix_line_breaks(&text);
        text = remove_terminal_escapes(&text);
        text = remove_control_chars(&text);
        text = text.nfc().collect();
        if text == orig {
            break;
        }
    }
    text
}

/// ftfy `fix_latin_ligatures`: Latin typographic ligatures and legacy digraphs are
/// split into their letters (`æ`, `œ` and other intentional ligatures are kept).
fn fix_latin_ligatures(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            'Ĳ' => out.push_str("IJ"),
            'ĳ' => out.push_str("ij"),
            'ŉ' => out.push_str("ʼn"),
            'Ǳ' => out.push_str("DZ"),
            'ǲ' => out.push_str("Dz"),
            'ǳ' => out.push_str("dz"),
            'Ǆ' => out.push_str("DŽ"),
            'ǅ' => out.push_str("Dž"),
            'ǆ' => out.push_str("dž"),
            'Ǉ' => out.push_str("LJ"),
            'ǈ' => out.push_str("Lj"),
            'ǉ' => out.push_str("lj"),
            'Ǌ' => out.push_str("NJ"),
            'ǋ' => out.push_str("Nj"),
            'ǌ' => out.push_str("nj"),
            'ﬀ' => out.push_str("ff"),
            'ﬁ' => out.push_str("fi"),
            'ﬂ' => out.push_str("fl"),
            'ﬃ' => out.push_str("ffi"),
            'ﬄ' => out.push_str("ffl"),
            'ﬅ' => out.push_str("ſt"),
            'ﬆ' => out.push_str("st"),
            _ => out.push(c),
        }
    }
    out
}

/// ftfy `fix_character_width`: U+FF01..U+FFEF become their NFKC form (fullwidth ASCII,
/// halfwidth katakana and Hangul, ...) and U+3000 IDEOGRAPHIC SPACE becomes a space.
fn fix_character_width(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{3000}' => out.push(' '),
            '\u{ff01}'..='\u{ffef}' => out.extend(std::iter::once(c).nfkc()),
            _ => out.push(c),
        }
    }
    out
}

/// ftfy `uncurl_quotes`: U+02BC and U+2018-201B → `'`; U+201C-201F → `"`.
fn uncurl_quotes(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
            '\u{201c}'..='\u{201f}' => '"',
            _ => c,
        })
        .collect()
}

/// ftfy `fix_line_breaks`: CRLF, CR, U+2028, U+2029 and U+0085 become `\n`.
fn fix_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n").replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

/// ftfy `remove_terminal_escapes`: drops `ESC [ (digit | ;)* letter`.
fn remove_terminal_escapes(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\u{1b}' && chars.get(i + 1) == Some(&'[') {
            let params = chars[i + 2..].iter().take_while(|c| c.is_ascii_digit() || **c == ';').count();
            if chars.get(i + 2 + params).is_some_and(|c| c.is_ascii_alphabetic()) {
                i += 3 + params;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// ftfy `remove_control_chars`.
fn remove_control_chars(text: &str) -> String {
    text.chars()
        .filter(|c| {
            !matches!(c,
                '\u{0}'..='\u{8}' | '\u{b}' | '\u{e}'..='\u{1f}' | '\u{7f}'
                | '\u{206a}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffc}')
        })
        .collect()
}
