//! open_clip text cleaning against the real Python packages: `ftfy.fix_text` (ftfy
//! 6.3.1) and open_clip's `_clean_whitespace` (open_clip 3.3), on the strings in
//! `tests/fixtures/text/clean_cases.json` (written by tools/reference/gen_text_fixtures.py).

use biofm_preprocess::text::{basic_clean, fix_text, open_clip_clean, python_html_unescape, whitespace_clean};
use serde_json::Value;

/// Cases where the port knowingly differs from Python: `(case name, reason)`. Each must
/// still differ (checked below), so this list cannot go stale.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "terminal_escape_arabic_digits",
        "ftfy's terminal-escape regex uses Python's `\\d`, which also matches non-ASCII decimal digits; the port accepts ASCII digits only",
    ),
    (
        "unicode16_composition",
        "NFC uses the unicode-normalization crate's newer Unicode tables: characters added after Unicode 14 (Python 3.11) compose",
    ),
];

struct Case {
    name: String,
    input: String,
    fix_text: String,
    clean: String,
}

fn cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/text/clean_cases.json");
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}; create it with tools/reference/gen_text_fixtures.py"));
    let v: Value = serde_json::from_str(&text).unwrap();
    let s = |c: &Value, k: &str| c[k].as_str().unwrap_or_else(|| panic!("{k} missing")).to_string();
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case { name: s(c, "name"), input: s(c, "input"), fix_text: s(c, "fix_text"), clean: s(c, "clean") })
        .collect()
}

fn known(name: &str) -> bool {
    KNOWN_DIFFERENCES.iter().any(|(n, _)| *n == name)
}

fn check(what: &str, f: fn(&str) -> String, expected: fn(&Case) -> &str) {
    let all = cases();
    assert!(all.len() >= 60, "expected the full case list, got {}", all.len());
    let failures: Vec<String> = all
        .iter()
        .filter(|c| !known(&c.name))
        .filter_map(|c| {
            let got = f(&c.input);
            (got != expected(c))
                .then(|| format!("{}: input {:?}\n  python {:?}\n  rust   {:?}", c.name, c.input, expected(c), got))
        })
        .collect();
    assert!(failures.is_empty(), "{what} differs from Python in {} case(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn fix_text_matches_ftfy() {
    check("fix_text", fix_text, |c| &c.fix_text);
}

#[test]
fn open_clip_clean_matches_open_clip() {
    check("open_clip_clean", open_clip_clean, |c| &c.clean);
}

#[test]
fn known_differences_still_differ() {
    let all = cases();
    for (name, reason) in KNOWN_DIFFERENCES {
        let c = all.iter().find(|c| c.name == *name).unwrap_or_else(|| panic!("no case {name}"));
        assert_ne!(
            open_clip_clean(&c.input),
            c.clean,
            "{name} now matches Python; remove it from KNOWN_DIFFERENCES ({reason})"
        );
    }
}

#[test]
fn clean_composes_as_open_clip_does() {
    // Expected values from open_clip 3.3 / Python 3.11: basic_clean strips,
    // whitespace_clean collapses, and after ftfy (which leaves entities alone in text
    // containing `<`) html.unescape runs exactly twice.
    assert_eq!(basic_clean("  a \t b  "), "a \t b");
    assert_eq!(whitespace_clean(" a \u{a0}\u{3000} b\n"), "a b");
    assert_eq!(python_html_unescape("&amp;amp;lt;"), "&amp;lt;");
    assert_eq!(basic_clean("<p> &amp;amp;lt; </p>"), "<p> &lt; </p>");
}
