//! HTML character references, decoded the way Python's `html.unescape` and ftfy's
//! `unescape_html` do.

use super::charmaps::SLOPPY_WINDOWS_1252;
use std::collections::HashMap;
use std::sync::OnceLock;

/// WHATWG named character references, `name<TAB>hex code points` per line.
const HTML5_TSV: &str = include_str!("html5_entities.tsv");

struct Entities {
    /// Python's `html.entities.html5`: names with and without the trailing `;`.
    html5: HashMap<&'static str, String>,
    /// ftfy's `HTML_ENTITIES`: `&name;` for every `;`-terminated name, plus the
    /// upper-cased spelling of all-lower-case names when that spelling means nothing
    /// else to `html.unescape` (so `&EACUTE;` decodes to `É`).
    ftfy: HashMap<String, String>,
}

fn entities() -> &'static Entities {
    static TABLE: OnceLock<Entities> = OnceLock::new();
    TABLE.get_or_init(|| {
        let html5: HashMap<&'static str, String> = HTML5_TSV
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (name, cps) = l.split_once('\t')?;
                let value = cps
                    .split(' ')
                    .map(|h| u32::from_str_radix(h, 16).ok().and_then(char::from_u32))
                    .collect::<Option<String>>()?;
                Some((name, value))
            })
            .collect();
        let mut ftfy = HashMap::new();
        for (name, value) in &html5 {
            if !name.ends_with(';') {
                continue;
            }
            ftfy.insert(format!("&{name}"), value.clone());
            if *name == name.to_lowercase() {
                let upper = format!("&{}", name.to_uppercase());
                if unescape_with(&upper, &html5) == upper {
                    ftfy.insert(upper, value.to_uppercase());
                }
            }
        }
        Entities { html5, ftfy }
    })
}

/// Python's `html.unescape` (3.11): decodes `&name;`, `&#123;` and `&#x7b;`, including
/// the HTML5 legacy forms without `;` (`&amp`, `&copy`) and the longest-prefix rule
/// (`&ampxyz;` → `&xyz;`); invalid numeric references follow the HTML5 rules
/// (`&#0;` → U+FFFD, `&#128;` → `€`, `&#1;` → nothing).
pub fn python_html_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    unescape_with(s, &entities().html5)
}

fn unescape_with(s: &str, html5: &HashMap<&'static str, String>) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '&' {
            if let Some((len, rep)) = charref(&chars[i + 1..], html5) {
                out.push_str(&rep);
                i += 1 + len;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Matches Python's `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)` right
/// after a `&`; returns the matched length (in chars) and its replacement.
fn charref(rest: &[char], html5: &HashMap<&'static str, String>) -> Option<(usize, String)> {
    let run = |from: usize, ok: &dyn Fn(char) -> bool, max: usize| {
        rest.iter().skip(from).take(max).take_while(|c| ok(**c)).count()
    };
    let semi = |at: usize| usize::from(rest.get(at) == Some(&';'));
    if rest.first() == Some(&'#') {
        let dec = run(1, &|c| c.is_ascii_digit(), usize::MAX);
        if dec > 0 {
            let num = parse_radix(&rest[1..1 + dec], 10);
            return Some((1 + dec + semi(1 + dec), numeric_ref(num)));
        }
        if matches!(rest.get(1), Some('x' | 'X')) {
            let hex = run(2, &|c| c.is_ascii_hexdigit(), usize::MAX);
            if hex > 0 {
                let num = parse_radix(&rest[2..2 + hex], 16);
                return Some((2 + hex + semi(2 + hex), numeric_ref(num)));
            }
        }
        return None;
    }
    let n = run(0, &|c| !matches!(c, '\t' | '\n' | '\u{0c}' | ' ' | '<' | '&' | '#' | ';'), 32);
    if n == 0 {
        return None;
    }
    let len = n + semi(n);
    let name: String = rest[..len].iter().collect();
    if let Some(v) = html5.get(name.as_str()) {
        return Some((len, v.clone()));
    }
    // The longest prefix (at least 2 chars, shorter than the whole) that is a legacy
    // entity name, the rest kept verbatim.
    for x in (2..len).rev() {
        let prefix: String = rest[..x].iter().collect();
        if let Some(v) = html5.get(prefix.as_str()) {
            let tail: String = rest[x..len].iter().collect();
            return Some((len, format!("{v}{tail}")));
        }
    }
    Some((len, format!("&{name}")))
}

/// Parses digits; values beyond U+10FFFF saturate (they all decode to U+FFFD).
fn parse_radix(digits: &[char], radix: u32) -> u64 {
    digits.iter().fold(0u64, |acc, c| {
        let d = c.to_digit(radix).unwrap_or(0) as u64;
        acc.saturating_mul(radix as u64).saturating_add(d).min(0x1_0000_0000)
    })
}

/// Python's `_replace_charref` for numeric references.
fn numeric_ref(num: u64) -> String {
    match num {
        0 => "\u{fffd}".into(),
        0x0d => "\r".into(),
        0x80..=0x9f => SLOPPY_WINDOWS_1252[(num - 0x80) as usize].to_string(),
        0xd800..=0xdfff => "\u{fffd}".into(),
        n if n > 0x10ffff => "\u{fffd}".into(),
        0x01..=0x08 | 0x0b | 0x0e..=0x1f | 0x7f | 0xfdd0..=0xfdef => String::new(),
        n if n & 0xfffe == 0xfffe => String::new(),
        n => char::from_u32(n as u32).map(String::from).unwrap_or_default(),
    }
}

/// ftfy's `unescape_html`: decodes only `&`, optional `#`, 1-24 ASCII letters/digits
/// and `;` — the unambiguous references, plus all-caps spellings of lower-case names.
/// A numeric reference is decoded only when `html.unescape` consumes all of it.
pub(super) fn ftfy_unescape_html(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let table = &entities().ftfy;
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '&' {
            let hash = usize::from(chars.get(i + 1) == Some(&'#'));
            let start = i + 1 + hash;
            let n = chars[start..].iter().take(25).take_while(|c| c.is_ascii_alphanumeric()).count();
            if (1..=24).contains(&n) && chars.get(start + n) == Some(&';') {
                let entity: String = chars[i..=start + n].iter().collect();
                let rep = if let Some(v) = table.get(&entity) {
                    v.clone()
                } else if hash == 1 {
                    let decoded = python_html_unescape(&entity);
                    if decoded.contains(';') {
                        entity
                    } else {
                        decoded
                    }
                } else {
                    entity
                };
                out.push_str(&rep);
                i = start + n + 1;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_complete() {
        // Python 3.11 `len(html.entities.html5)`.
        assert_eq!(entities().html5.len(), 2231);
        assert_eq!(entities().html5["amp;"], "&");
        assert_eq!(entities().html5["NotEqualTilde;"], "\u{2242}\u{338}");
    }
}
