//! ftfy's mojibake heuristic (`ftfy.badness.is_bad`, ftfy 6.3.1): character categories
//! and the short sequences of them that are far more likely to be mojibake than text.

use super::is_python_space;

// Character categories (ftfy `MOJIBAKE_CATEGORIES`), as bits.
const COMMON: u16 = 1 << 0;
const C1: u16 = 1 << 1;
const BAD: u16 = 1 << 2;
const LAW: u16 = 1 << 3;
const CURRENCY: u16 = 1 << 4;
const START_PUNCT: u16 = 1 << 5;
const END_PUNCT: u16 = 1 << 6;
const NUMERIC: u16 = 1 << 7;
const KAOMOJI: u16 = 1 << 8;
const UPPER_ACCENTED: u16 = 1 << 9;
const LOWER_ACCENTED: u16 = 1 << 10;
const UPPER_COMMON: u16 = 1 << 11;
const LOWER_COMMON: u16 = 1 << 12;
const BOX: u16 = 1 << 13;

type Ranges = &'static [(char, char)];

/// Members of each category as inclusive code point ranges.
#[rustfmt::skip]
const CATEGORIES: [(u16, Ranges); 14] = [
    (COMMON, &[('\u{a0}', '\u{a0}'), ('\u{ad}', '\u{ad}'), ('\u{b4}', '\u{b4}'), ('\u{b7}', '\u{b7}'), ('\u{2013}', '\u{2015}'), ('\u{2019}', '\u{2019}'), ('\u{2026}', '\u{2026}')]),
    (C1, &[('\u{80}', '\u{9f}')]),
    (
        BAD,
        &[
            ('\u{a4}', '\u{a4}'), ('\u{a6}', '\u{a6}'), ('\u{a8}', '\u{a8}'), ('\u{aa}', '\u{aa}'), ('\u{ac}', '\u{ac}'),
            ('\u{af}', '\u{af}'), ('\u{b8}', '\u{b8}'), ('\u{ba}', '\u{ba}'), ('\u{192}', '\u{192}'), ('\u{2c6}', '\u{2c7}'),
            ('\u{2d8}', '\u{2d8}'), ('\u{2db}', '\u{2dc}'), ('\u{2020}', '\u{2021}'), ('\u{2030}', '\u{2030}'),
            ('\u{2310}', '\u{2310}'), ('\u{25ca}', '\u{25ca}'), ('\u{fffd}', '\u{fffd}'),
        ],
    ),
    (LAW, &[('\u{a7}', '\u{a7}'), ('\u{b6}', '\u{b6}')]),
    (CURRENCY, &[('\u{a2}', '\u{a3}'), ('\u{a5}', '\u{a5}'), ('\u{20a7}', '\u{20a7}'), ('\u{20ac}', '\u{20ac}')]),
    (
        START_PUNCT,
        &[
            ('\u{a1}', '\u{a1}'), ('\u{a9}', '\u{a9}'), ('\u{ab}', '\u{ab}'), ('\u{bf}', '\u{bf}'), ('\u{384}', '\u{385}'),
            ('\u{2018}', '\u{2018}'), ('\u{201a}', '\u{201a}'), ('\u{201c}', '\u{201c}'), ('\u{201e}', '\u{201e}'),
            ('\u{2022}', '\u{2022}'), ('\u{2039}', '\u{2039}'), ('\u{f8ff}', '\u{f8ff}'),
        ],
    ),
    (END_PUNCT, &[('\u{ae}', '\u{ae}'), ('\u{bb}', '\u{bb}'), ('\u{2dd}', '\u{2dd}'), ('\u{201d}', '\u{201d}'), ('\u{203a}', '\u{203a}'), ('\u{2122}', '\u{2122}')]),
    (
        NUMERIC,
        &[
            ('\u{b1}', '\u{b3}'), ('\u{b5}', '\u{b5}'), ('\u{b9}', '\u{b9}'), ('\u{bc}', '\u{be}'), ('\u{d7}', '\u{d7}'),
            ('\u{f7}', '\u{f7}'), ('\u{2044}', '\u{2044}'), ('\u{2116}', '\u{2116}'), ('\u{2202}', '\u{2202}'),
            ('\u{2206}', '\u{2206}'), ('\u{220f}', '\u{220f}'), ('\u{2211}', '\u{2211}'), ('\u{221a}', '\u{221a}'),
            ('\u{221e}', '\u{221e}'), ('\u{2229}', '\u{2229}'), ('\u{222b}', '\u{222b}'), ('\u{2248}', '\u{2248}'),
            ('\u{2260}', '\u{2261}'), ('\u{2264}', '\u{2265}'),
        ],
    ),
    (
        KAOMOJI,
        &[
            ('\u{b0}', '\u{b0}'), ('\u{d2}', '\u{d6}'), ('\u{d9}', '\u{dc}'), ('\u{f2}', '\u{f6}'), ('\u{f8}', '\u{fc}'),
            ('\u{14c}', '\u{14c}'), ('\u{150}', '\u{150}'), ('\u{16a}', '\u{16a}'), ('\u{172}', '\u{172}'),
        ],
    ),
    (
        UPPER_ACCENTED,
        &[
            ('\u{c0}', '\u{d1}'), ('\u{d8}', '\u{d8}'), ('\u{dc}', '\u{dd}'), ('\u{100}', '\u{100}'), ('\u{102}', '\u{102}'),
            ('\u{104}', '\u{104}'), ('\u{106}', '\u{106}'), ('\u{10c}', '\u{10c}'), ('\u{10e}', '\u{10e}'),
            ('\u{110}', '\u{110}'), ('\u{112}', '\u{112}'), ('\u{116}', '\u{116}'), ('\u{118}', '\u{118}'),
            ('\u{11a}', '\u{11a}'), ('\u{11e}', '\u{11e}'), ('\u{122}', '\u{122}'), ('\u{12a}', '\u{12a}'),
            ('\u{130}', '\u{130}'), ('\u{136}', '\u{136}'), ('\u{139}', '\u{139}'), ('\u{13b}', '\u{13b}'),
            ('\u{13d}', '\u{13d}'), ('\u{141}', '\u{141}'), ('\u{143}', '\u{143}'), ('\u{145}', '\u{145}'),
            ('\u{147}', '\u{147}'), ('\u{152}', '\u{152}'), ('\u{158}', '\u{158}'), ('\u{15a}', '\u{15a}'),
            ('\u{15e}', '\u{15e}'), ('\u{160}', '\u{160}'), ('\u{162}', '\u{162}'), ('\u{164}', '\u{164}'),
            ('\u{16e}', '\u{16e}'), ('\u{170}', '\u{170}'), ('\u{178}', '\u{179}'), ('\u{17b}', '\u{17b}'),
            ('\u{17d}', '\u{17d}'), ('\u{490}', '\u{490}'),
        ],
    ),
    (
        LOWER_ACCENTED,
        &[
            ('\u{df}', '\u{f1}'), ('\u{fc}', '\u{fc}'), ('\u{101}', '\u{101}'), ('\u{103}', '\u{103}'), ('\u{105}', '\u{105}'),
            ('\u{107}', '\u{107}'), ('\u{10d}', '\u{10d}'), ('\u{10f}', '\u{10f}'), ('\u{111}', '\u{111}'),
            ('\u{113}', '\u{113}'), ('\u{117}', '\u{117}'), ('\u{119}', '\u{119}'), ('\u{11b}', '\u{11b}'),
            ('\u{11f}', '\u{11f}'), ('\u{123}', '\u{123}'), ('\u{12b}', '\u{12b}'), ('\u{12f}', '\u{12f}'),
            ('\u{137}', '\u{137}'), ('\u{13a}', '\u{13a}'), ('\u{13c}', '\u{13c}'), ('\u{13e}', '\u{13e}'),
            ('\u{142}', '\u{142}'), ('\u{153}', '\u{153}'), ('\u{155}', '\u{155}'), ('\u{15b}', '\u{15b}'),
            ('\u{15f}', '\u{15f}'), ('\u{161}', '\u{161}'), ('\u{165}', '\u{165}'), ('\u{17a}', '\u{17a}'),
            ('\u{17c}', '\u{17c}'), ('\u{17e}', '\u{17e}'), ('\u{491}', '\u{491}'), ('\u{fb01}', '\u{fb02}'),
        ],
    ),
    (
        UPPER_COMMON,
        &[
            ('\u{de}', '\u{de}'), ('\u{386}', '\u{386}'), ('\u{388}', '\u{38a}'), ('\u{38c}', '\u{38c}'),
            ('\u{38e}', '\u{38f}'), ('\u{391}', '\u{3ab}'), ('\u{401}', '\u{42f}'),
        ],
    ),
    (LOWER_COMMON, &[('\u{3ac}', '\u{3c9}'), ('\u{430}', '\u{45f}')]),
    (
        BOX,
        &[
            ('\u{2502}', '\u{2502}'), ('\u{250c}', '\u{250c}'), ('\u{2510}', '\u{2510}'), ('\u{2518}', '\u{2518}'),
            ('\u{251c}', '\u{251c}'), ('\u{2524}', '\u{2524}'), ('\u{252c}', '\u{252c}'), ('\u{253c}', '\u{253c}'),
            ('\u{2550}', '\u{256c}'), ('\u{2580}', '\u{2580}'), ('\u{2584}', '\u{2584}'), ('\u{2588}', '\u{2588}'),
            ('\u{258c}', '\u{258c}'), ('\u{2590}', '\u{2593}'),
        ],
    ),
];

fn categories(c: char) -> u16 {
    if c.is_ascii() {
        return 0;
    }
    CATEGORIES
        .iter()
        .filter(|(_, ranges)| ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c)))
        .fold(0, |acc, (bit, _)| acc | bit)
}

/// One position of a pattern.
#[derive(Clone, Copy)]
enum El {
    /// In any of the categories, or one of the listed characters.
    Set(u16, &'static str),
    /// Regex `\s` (Python `str.isspace`).
    Space,
    /// Regex `\w`: alphanumeric or `_`.
    Word,
    /// Regex `.`: anything but `\n`.
    NotNewline,
    /// `[^A-Za-z]`.
    NotAsciiLetter,
}

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LETTERS_SPACE: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ";
const LOWER_PUNCT: &str = "abcdefghijklmnopqrstuvwxyz.,?!";

const fn cat(bits: u16) -> El {
    El::Set(bits, "")
}
const fn chars(s: &'static str) -> El {
    El::Set(0, s)
}

const ACCENTED: u16 = LOWER_ACCENTED | UPPER_ACCENTED;
const ARABIC_1252: El = El::Set(COMMON | CURRENCY | BAD | NUMERIC | START_PUNCT, "ŸŠ®°µ»");

/// ftfy's `BADNESS_RE` alternatives; `true` marks the one anchored at the start (`^`).
/// (`[a-z]\s?[ÃÂ][ ]` is split into its two lengths.)
#[rustfmt::skip]
const PATTERNS: &[(bool, &[El])] = &[
    (false, &[cat(C1)]),
    (false, &[cat(BAD | ACCENTED | BOX | START_PUNCT | END_PUNCT | CURRENCY | NUMERIC | LAW), cat(BAD)]),
    (false, &[chars(LETTERS), cat(LOWER_COMMON | UPPER_COMMON), cat(BAD)]),
    (false, &[cat(BAD), cat(ACCENTED | BOX | START_PUNCT | END_PUNCT | CURRENCY | NUMERIC | LAW)]),
    (false, &[cat(LOWER_ACCENTED | LOWER_COMMON | BOX | END_PUNCT | CURRENCY | NUMERIC), cat(UPPER_ACCENTED)]),
    (false, &[cat(BOX | END_PUNCT | CURRENCY | NUMERIC), cat(LOWER_ACCENTED)]),
    (false, &[cat(LOWER_ACCENTED | BOX | END_PUNCT), cat(CURRENCY)]),
    (false, &[El::Space, cat(UPPER_ACCENTED), cat(CURRENCY)]),
    (false, &[cat(UPPER_ACCENTED | BOX), cat(NUMERIC | LAW)]),
    (false, &[cat(ACCENTED | BOX | CURRENCY | END_PUNCT), cat(START_PUNCT), cat(NUMERIC)]),
    (false, &[cat(ACCENTED | CURRENCY | NUMERIC | BOX | LAW), cat(END_PUNCT), cat(START_PUNCT)]),
    (false, &[cat(CURRENCY | NUMERIC | BOX), cat(START_PUNCT)]),
    (false, &[chars(LOWER), cat(UPPER_ACCENTED), cat(START_PUNCT | CURRENCY)]),
    (false, &[cat(BOX), cat(KAOMOJI)]),
    (false, &[cat(ACCENTED | CURRENCY | NUMERIC | START_PUNCT | END_PUNCT | LAW), cat(BOX)]),
    (false, &[cat(BOX), cat(END_PUNCT)]),
    (false, &[cat(ACCENTED), cat(START_PUNCT | END_PUNCT), El::Word]),
    // The ligature œ not followed by an unaccented Latin letter.
    (false, &[chars("Œœ"), El::NotAsciiLetter]),
    // Degree signs after capital letters.
    (false, &[cat(UPPER_ACCENTED), chars("°")]),
    // Common Windows-1252 two-character mojibake.
    (false, &[chars("ÂÃÎÐ"), El::Set(START_PUNCT | END_PUNCT, "€œŠš¢£Ÿž\u{a0}\u{ad}®©°·»–—´")]),
    (false, &[chars("×"), chars("²³")]),
    // Windows-1252 mojibake of Arabic words (four characters).
    (false, &[chars("ØÙ"), ARABIC_1252, chars("ØÙ"), ARABIC_1252]),
    // Windows-1252 mojibake starting 3-byte South Asian letters.
    (false, &[chars("à"), chars("²µ¹¼½¾")]),
    // MacRoman mojibake.
    (false, &[chars("√"), chars("±∂†≠®™´≤≥¥µø")]),
    (false, &[chars("≈"), chars("°¢")]),
    (false, &[chars("‚"), chars("Ä"), chars("ìîïòôúùû†°¢π")]),
    (false, &[chars("‚"), chars("âó"), chars("àä°ê")]),
    // Windows-1251 mojibake of U+2000-range characters, Latin-1 and Cyrillic.
    (false, &[chars("в"), chars("Ђ")]),
    (false, &[chars("ВГРС"), El::Set(C1 | BAD | START_PUNCT | END_PUNCT | CURRENCY, "°µ"), chars("ВГРС")]),
    (false, &[chars("Г"), chars("ў"), chars("В"), chars("Ђ"), chars("В"), El::NotNewline, chars(LETTERS_SPACE)]),
    // Windows-1252 encodings of 'à', 'á' and U+A0 itself.
    (false, &[chars("Ã"), chars("\u{a0}¡")]),
    (false, &[chars(LOWER), chars("ÃÂ"), chars(" ")]),
    (false, &[chars(LOWER), El::Space, chars("ÃÂ"), chars(" ")]),
    (true, &[chars("ÃÂ"), chars(" ")]),
    (false, &[El::Set(END_PUNCT, LOWER_PUNCT), chars("Â"), El::Set(START_PUNCT | END_PUNCT, " ")]),
    // Windows-1253 mojibake.
    (false, &[chars("β"), chars("€"), chars("™\u{a0}Ά\u{ad}®°")]),
    (false, &[chars("ΒΓΞΟ"), El::Set(C1 | BAD | START_PUNCT | END_PUNCT | CURRENCY, "°"), chars("ΒΓΞΟ")]),
    // Windows-1257 mojibake.
    (false, &[chars("ā"), chars("€")]),
];

impl El {
    fn matches(self, c: char, cats: u16) -> bool {
        match self {
            El::Set(bits, list) => cats & bits != 0 || list.contains(c),
            El::Space => is_python_space(c),
            El::Word => c.is_alphanumeric() || c == '_',
            El::NotNewline => c != '\n',
            El::NotAsciiLetter => !c.is_ascii_alphabetic(),
        }
    }
}

/// ftfy `is_bad`: whether any mojibake-looking sequence occurs in `text`.
pub(super) fn is_bad(text: &str) -> bool {
    let chars: Vec<(char, u16)> = text.chars().map(|c| (c, categories(c))).collect();
    (0..chars.len()).any(|i| {
        PATTERNS.iter().any(|(anchored, pat)| {
            (!anchored || i == 0)
                && i + pat.len() <= chars.len()
                && pat.iter().zip(&chars[i..]).all(|(el, &(c, cats))| el.matches(c, cats))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::is_bad;

    #[test]
    fn detects_mojibake_not_text() {
        assert!(is_bad("cafÃ©"));
        assert!(is_bad("â€œquotedâ€\u{9d}"));
        assert!(!is_bad("café naïve 37 °C ± 2 µm ≥ 5"));
    }
}
