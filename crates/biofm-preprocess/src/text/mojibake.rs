//! ftfy's `fix_encoding` (ftfy 6.3.1): detect UTF-8 that was decoded with a single-byte
//! codec and decode it again.

use super::badness::is_bad;
use super::charmaps::{
    CP437, ISO_8859_2, MACROMAN, SLOPPY_WINDOWS_1250, SLOPPY_WINDOWS_1251, SLOPPY_WINDOWS_1252, SLOPPY_WINDOWS_1253,
    SLOPPY_WINDOWS_1254, SLOPPY_WINDOWS_1257,
};
use std::collections::HashSet;
use std::sync::OnceLock;

/// A single-byte codec: ASCII plus a table for bytes 0x80..=0xFF (`None`: Latin-1).
struct Charmap {
    high: Option<&'static [char; 128]>,
    /// ftfy's `sloppy-*` codecs also map byte 0x1A to U+FFFD.
    sloppy: bool,
    /// Whether ftfy tries `restore_byte_a0` after encoding (all but MacRoman, where an
    /// en dash before a space would look like altered UTF-8).
    restore_a0: bool,
}

const fn sloppy(table: &'static [char; 128]) -> Charmap {
    Charmap { high: Some(table), sloppy: true, restore_a0: true }
}

const LATIN_1: Charmap = Charmap { high: None, sloppy: false, restore_a0: true };
const W1252: Charmap = sloppy(&SLOPPY_WINDOWS_1252);

/// ftfy's `CHARMAP_ENCODINGS`, in the order it tries them.
const CHARMAP_ENCODINGS: [Charmap; 10] = [
    LATIN_1,
    W1252,
    sloppy(&SLOPPY_WINDOWS_1251),
    sloppy(&SLOPPY_WINDOWS_1250),
    sloppy(&SLOPPY_WINDOWS_1253),
    sloppy(&SLOPPY_WINDOWS_1254),
    sloppy(&SLOPPY_WINDOWS_1257),
    Charmap { high: Some(&ISO_8859_2), sloppy: false, restore_a0: true },
    Charmap { high: Some(&MACROMAN), sloppy: false, restore_a0: false },
    Charmap { high: Some(&CP437), sloppy: false, restore_a0: true },
];

/// The Latin-alphabet codecs whose bytes 0x80..=0xFF make up ftfy's `UTF8_CLUES`.
const CLUE_ENCODINGS: [&[char; 128]; 6] = [
    &SLOPPY_WINDOWS_1252,
    &SLOPPY_WINDOWS_1251,
    &SLOPPY_WINDOWS_1250,
    &SLOPPY_WINDOWS_1253,
    &SLOPPY_WINDOWS_1254,
    &SLOPPY_WINDOWS_1257,
];

impl Charmap {
    fn encode_char(&self, c: char) -> Option<u8> {
        let cp = c as u32;
        if cp < 0x80 {
            return (!(self.sloppy && cp == 0x1a)).then_some(cp as u8);
        }
        if self.sloppy && c == '\u{fffd}' {
            return Some(0x1a);
        }
        match self.high {
            None => u8::try_from(cp).ok(),
            Some(table) => table.iter().position(|&h| h == c).map(|i| 0x80 + i as u8),
        }
    }

    /// `text.encode(codec)`, or `None` where ftfy's `possible_encoding` says no.
    fn encode(&self, text: &str) -> Option<Vec<u8>> {
        text.chars().map(|c| self.encode_char(c)).collect()
    }

    fn decode_byte(&self, b: u8) -> char {
        match (b, self.high) {
            (0x1a, _) if self.sloppy => '\u{fffd}',
            (0x80.., Some(table)) => table[usize::from(b - 0x80)],
            _ => char::from(b),
        }
    }
}

/// ftfy `fix_encoding`: repeats single repair steps until the text stops changing.
pub(super) fn fix_encoding(text: &str) -> String {
    let mut text = text.to_string();
    // ftfy loops until a fixed point; every step strictly shrinks or re-decodes the
    // text, so this bound is never reached in practice.
    for _ in 0..64 {
        let next = fix_encoding_step(&text);
        if next == text {
            break;
        }
        text = next;
    }
    text
}

/// ftfy `_fix_encoding_one_step_and_explain`.
fn fix_encoding_step(text: &str) -> String {
    if text.is_ascii() || !is_bad(text) {
        return text.to_string();
    }
    let mut latin1_possible = false;
    for codec in &CHARMAP_ENCODINGS {
        let Some(mut bytes) = codec.encode(text) else { continue };
        latin1_possible |= codec.high.is_none();
        if codec.restore_a0 && bytes_search(&bytes, ALTERED_UTF8) {
            bytes = restore_byte_a0(&bytes);
        }
        if codec.sloppy {
            bytes = bytes_sub(&bytes, LOSSY_UTF8, |_| "\u{fffd}".as_bytes().to_vec());
        }
        if let Some(fixed) = decode_utf8_variants(&bytes) {
            return fixed;
        }
    }
    if detector_matches(text).next().is_some() {
        let fixed = decode_inconsistent_utf8(text);
        if fixed != text {
            return fixed;
        }
    }
    // Latin-1 text holding C1 controls was probably meant as Windows-1252. (ftfy's
    // "both Latin-1 and Windows-1252 are possible: leave it" branch compares against
    // the name "windows-1252", which its list of possible codecs never contains.)
    if latin1_possible {
        if let Some(fixed) = decode_windows_1252_strict(text) {
            if fixed != text {
                return fixed;
            }
        }
    }
    if text.chars().any(is_c1) {
        return fix_c1_controls(text);
    }
    text.to_string()
}

fn is_c1(c: char) -> bool {
    ('\u{80}'..='\u{9f}').contains(&c)
}

/// ftfy `fix_c1_controls`: C1 controls become their Windows-1252 characters (bytes that
/// Windows-1252 leaves undefined stay as they are).
pub(super) fn fix_c1_controls(text: &str) -> String {
    text.chars().map(|c| if is_c1(c) { W1252.decode_byte(c as u8) } else { c }).collect()
}

/// `text.encode("latin-1").decode("windows-1252")`; `None` if a byte is undefined in
/// Windows-1252 (0x81, 0x8D, 0x8F, 0x90, 0x9D).
fn decode_windows_1252_strict(text: &str) -> Option<String> {
    text.chars()
        .map(|c| {
            let b = LATIN_1.encode_char(c)?;
            let d = W1252.decode_byte(b);
            (b < 0x80 || d as u32 != u32::from(b)).then_some(d)
        })
        .collect()
}

/// ftfy's `utf-8-variants` decoder: strict UTF-8, plus CESU-8 surrogate pairs
/// (`ED A0-AF 80-BF ED B0-BF 80-BF`) and Java's `C0 80` for U+0000.
fn decode_utf8_variants(bytes: &[u8]) -> Option<String> {
    if !bytes.iter().any(|&b| b == 0xed || b == 0xc0) {
        return String::from_utf8(bytes.to_vec()).ok();
    }
    let special = |i: usize| -> Option<(usize, char)> {
        let b = &bytes[i..];
        if b.len() >= 2 && b[0] == 0xc0 && b[1] == 0x80 {
            return Some((2, '\0'));
        }
        let cesu = b.len() >= 6
            && b[0] == 0xed
            && (0xa0..=0xaf).contains(&b[1])
            && (0x80..=0xbf).contains(&b[2])
            && b[3] == 0xed
            && (0xb0..=0xbf).contains(&b[4])
            && (0x80..=0xbf).contains(&b[5]);
        if !cesu {
            return None;
        }
        let cp = ((u32::from(b[1]) & 0x0f) << 16)
            + ((u32::from(b[2]) & 0x3f) << 10)
            + ((u32::from(b[4]) & 0x0f) << 6)
            + (u32::from(b[5]) & 0x3f)
            + 0x10000;
        char::from_u32(cp).map(|c| (6, c))
    };
    let mut out = String::with_capacity(bytes.len());
    let (mut i, mut start) = (0, 0);
    while i < bytes.len() {
        if let Some((len, c)) = special(i) {
            out.push_str(std::str::from_utf8(&bytes[start..i]).ok()?);
            out.push(c);
            i += len;
            start = i;
        } else {
            i += 1;
        }
    }
    out.push_str(std::str::from_utf8(&bytes[start..]).ok()?);
    Some(out)
}

// ---- byte-level patterns (ftfy's `ALTERED_UTF8_RE`, `LOSSY_UTF8_RE`) ----------------

/// A byte class as inclusive ranges; a pattern is a sequence of classes.
type ByteClass = &'static [(u8, u8)];
type BytePattern = &'static [ByteClass];

const B_CONT: ByteClass = &[(0x80, 0xbf)];
const B_SPACE: ByteClass = &[(0x20, 0x20)];
const B_CONT_NOT_85_A0: ByteClass = &[(0x80, 0x84), (0x86, 0x9f), (0xa1, 0xbf)];
const B_F0: ByteClass = &[(0xf0, 0xf0)];

/// UTF-8 sequences that would be valid if an `A0` byte had not become a space.
const ALTERED_UTF8: &[BytePattern] = &[
    &[&[(0xc2, 0xc3), (0xc5, 0xc5), (0xce, 0xce), (0xd0, 0xd0), (0xd9, 0xd9)], B_SPACE],
    &[&[(0xe2, 0xe3)], B_SPACE, B_CONT_NOT_85_A0],
    &[&[(0xe0, 0xe3)], B_CONT_NOT_85_A0, B_SPACE],
    &[B_F0, B_SPACE, B_CONT, B_CONT],
    &[B_F0, B_CONT, B_SPACE, B_CONT],
    &[B_F0, B_CONT, B_CONT, B_SPACE],
];

const L_SUB: ByteClass = &[(0x1a, 0x1a)];
const L_SUB_Q: ByteClass = &[(0x1a, 0x1a), (b'?', b'?')];
const L_SUB_CONT: ByteClass = &[(0x1a, 0x1a), (0x80, 0xbf)];
const L_ANY: ByteClass = &[(0x1a, 0x1a), (b'?', b'?'), (0x80, 0xbf)];
const L_ED: ByteClass = &[(0xed, 0xed)];
const L_E: ByteClass = &[(0xe0, 0xef)];
const L_F: ByteClass = &[(0xf0, 0xf4)];

/// UTF-8 (and CESU-8) sequences whose continuation bytes were lost (byte 1A stands
/// for a U+FFFD the sloppy codec produced; `?` is allowed once).
const LOSSY_UTF8: &[BytePattern] = &[
    &[&[(0xc2, 0xdf)], L_SUB],
    &[&[(0xc2, 0xc3)], &[(b'?', b'?')]],
    &[L_ED, &[(0xa0, 0xaf)], L_SUB_Q, L_ED, &[(0xb0, 0xbf)], L_ANY],
    &[L_ED, &[(0xa0, 0xaf)], L_ANY, L_ED, &[(0xb0, 0xbf)], L_SUB_Q],
    &[L_E, L_SUB_Q, L_SUB_CONT],
    &[L_E, L_SUB_CONT, L_SUB_Q],
    &[L_F, L_SUB_Q, L_SUB_CONT, L_SUB_CONT],
    &[L_F, L_SUB_CONT, L_SUB_Q, L_SUB_CONT],
    &[L_F, L_SUB_CONT, L_SUB_CONT, L_SUB_Q],
    &[L_SUB],
];

/// Length of the first alternative (in order, as a regex tries them) matching at `i`.
fn bytes_match_at(b: &[u8], i: usize, alts: &[BytePattern]) -> Option<usize> {
    alts.iter().find_map(|pat| {
        let ok = i + pat.len() <= b.len()
            && pat.iter().zip(&b[i..]).all(|(cls, &x)| cls.iter().any(|&(lo, hi)| (lo..=hi).contains(&x)));
        ok.then_some(pat.len())
    })
}

fn bytes_search(b: &[u8], alts: &[BytePattern]) -> bool {
    (0..b.len()).any(|i| bytes_match_at(b, i, alts).is_some())
}

/// `re.sub` over bytes: non-overlapping matches, left to right.
fn bytes_sub(b: &[u8], alts: &[BytePattern], rep: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match bytes_match_at(b, i, alts) {
            Some(len) => {
                out.extend(rep(&b[i..i + len]));
                i += len;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// ftfy `restore_byte_a0`: `C3 20` (not before ` `, `quele`, `quela`, `quilo`, `s `)
/// becomes `C3 A0 20` ("Ã la" is "à la"), then spaces inside [`ALTERED_UTF8`] matches
/// become `A0`.
fn restore_byte_a0(b: &[u8]) -> Vec<u8> {
    let mut grave = Vec::with_capacity(b.len() + 4);
    let mut i = 0;
    while i < b.len() {
        if b[i] == 0xc3 && b.get(i + 1) == Some(&b' ') {
            let after = &b[i + 2..];
            let excluded = [&b" "[..], b"quele", b"quela", b"quilo", b"s "].iter().any(|p| after.starts_with(p));
            if !excluded {
                grave.extend_from_slice(&[0xc3, 0xa0, b' ']);
                i += 2;
                continue;
            }
        }
        grave.push(b[i]);
        i += 1;
    }
    bytes_sub(&grave, ALTERED_UTF8, |m| m.iter().map(|&x| if x == b' ' { 0xa0 } else { x }).collect())
}

// ---- inconsistent UTF-8 (ftfy's `UTF8_DETECTOR_RE`) -----------------------------------

struct Clues {
    first_of_2: HashSet<char>,
    first_of_3: HashSet<char>,
    first_of_4: HashSet<char>,
    continuation: HashSet<char>,
    continuation_strict: HashSet<char>,
}

/// ftfy's `UTF8_CLUES`: the characters that bytes of UTF-8 sequences become in the
/// Latin-1-like codecs (lead bytes C2-DF, E0-EF, F0/F3; continuation bytes 80-BF,
/// plus a space standing for A0). The strict continuation set leaves out spaces,
/// dashes, quotes, bullets and ellipses, which also stand for themselves.
fn clues() -> &'static Clues {
    static CLUES: OnceLock<Clues> = OnceLock::new();
    CLUES.get_or_init(|| {
        let from_bytes = |bytes: &[u8]| -> HashSet<char> {
            let mut set: HashSet<char> = bytes.iter().map(|&b| char::from(b)).collect();
            for table in CLUE_ENCODINGS {
                set.extend(bytes.iter().map(|&b| table[usize::from(b - 0x80)]));
            }
            set
        };
        let lead2: Vec<u8> = (0xc2..=0xdf).collect();
        let lead3: Vec<u8> = (0xe0..=0xef).collect();
        let cont: Vec<u8> = (0x80..=0xbf).collect();
        let mut continuation = from_bytes(&cont);
        continuation.insert(' ');
        let loose = [' ', '–', '—', '―', '‘', '’', '‚', '“', '”', '„', '•', '…'];
        let continuation_strict = continuation.iter().copied().filter(|c| !loose.contains(c)).collect();
        Clues {
            first_of_2: from_bytes(&lead2),
            first_of_3: from_bytes(&lead3),
            first_of_4: from_bytes(&[0xf0, 0xf3]),
            continuation,
            continuation_strict,
        }
    })
}

/// Matches of `(?<![strict]) ([2-lead][cont] | [3-lead][cont]{2} | [4-lead][cont]{3})+`
/// as `(start, len)` in chars, scanning like `re.finditer`.
fn detector_matches(text: &str) -> impl Iterator<Item = (usize, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let cl = clues();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < chars.len() {
            let start = i;
            i += 1;
            if start > 0 && cl.continuation_strict.contains(&chars[start - 1]) {
                continue;
            }
            let mut j = start;
            loop {
                let cont = |k: usize, n: usize| {
                    chars.get(k + 1..k + 1 + n).is_some_and(|s| s.iter().all(|c| cl.continuation.contains(c)))
                };
                let step = match chars.get(j) {
                    Some(c) if cl.first_of_2.contains(c) && cont(j, 1) => 2,
                    Some(c) if cl.first_of_3.contains(c) && cont(j, 2) => 3,
                    Some(c) if cl.first_of_4.contains(c) && cont(j, 3) => 4,
                    _ => break,
                };
                j += step;
            }
            if j > start {
                i = j;
                return Some((start, j - start));
            }
        }
        None
    })
}

/// ftfy `decode_inconsistent_utf8`: fixes each detector match that is shorter than the
/// whole text and looks bad on its own.
fn decode_inconsistent_utf8(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (start, len) in detector_matches(text).collect::<Vec<_>>() {
        out.extend(&chars[pos..start]);
        let sub: String = chars[start..start + len].iter().collect();
        if len < chars.len() && is_bad(&sub) {
            out.push_str(&fix_encoding(&sub));
        } else {
            out.push_str(&sub);
        }
        pos = start + len;
    }
    out.extend(&chars[pos..]);
    out
}
