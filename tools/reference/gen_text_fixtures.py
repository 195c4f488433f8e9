#!/usr/bin/env python3
"""Reference data for the text side: open_clip text cleaning (ftfy), WordPiece
tokenisation, HF ``BertModel`` and the sentence-transformers pipeline.

Writes (paths relative to the repository root):

* ``crates/biofm-preprocess/src/text/html5_entities.tsv`` and ``.../charmaps.rs``: the
  WHATWG HTML5 named character references (as listed by Python's ``html.entities.html5``)
  and the byte 0x80-0xFF columns of the single-byte codecs ftfy 6.3.1 tries when it
  repairs mojibake (Python's codec tables; ``sloppy-`` codecs decode bytes that the
  base codec leaves undefined as Latin-1). Data, not code: the cleaning port reads them.
* ``crates/biofm-preprocess/tests/fixtures/text/clean_cases.json``: tricky strings with
  their ``ftfy.fix_text`` and open_clip ``_clean_whitespace`` (= ``whitespace_clean(
  basic_clean(x))``, the default ``clean="whitespace"`` of ``HFTokenizer``) outputs.
* ``crates/biofm-preprocess/tests/fixtures/text/wordpiece_cases.json``: token ids from HF
  ``BertTokenizer`` built from the tiny vocabulary under several normaliser settings.
* ``crates/biofm-preprocess/tests/fixtures/text/minilm_tokens.json``: open_clip
  ``HFTokenizer`` ids (clean + tokenise, 64-token context) with the real
  all-MiniLM-L6-v2 tokenizer.
* ``crates/biofm-models/tests/fixtures/text/tiny_st/``: a tiny random BERT (hidden 32,
  2 layers, 4 heads, perturbed biases and norms) in HF layout (keys under ``bert.``
  plus a stale ``position_ids``), its vocab-only tokenizer, a sentence-transformers
  layout around it, and ``expected.safetensors`` / ``expected.json`` with HF outputs.
* ``crates/biofm-models/tests/fixtures/text/minilm_expected.{json,safetensors}``: the
  real all-MiniLM-L6-v2 on ~20 real PubMed sentences (biopython 1.88 sdist test
  records): token ids, masks, ``last_hidden_state`` of two sentences, and normalised
  mean-pooled embeddings.

sentence-transformers is not installed: its pipeline (as in sentence-transformers 6.2.0:
tokenise with ``padding=True, truncation="longest_first"`` at ``max_seq_length``, mean /
cls / max / mean_sqrt_len pooling over the attention mask, ``F.normalize``) is reproduced
below with plain torch.

Usage (from the repository root; needs scripts/fetch-test-data.sh to have run):
    tools/reference/.venv/bin/python tools/reference/gen_text_fixtures.py \
        [--biopython-sdist biopython-1.88.tar.gz]
Without ``--biopython-sdist`` the sdist is fetched with ``pip download``.
"""

import argparse
import html
import html.entities
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import ftfy  # noqa: E402
import ftfy.bad_codecs  # noqa: E402,F401  (registers the sloppy codecs)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import open_clip  # noqa: E402
import transformers  # noqa: E402
from open_clip.tokenizer import HFTokenizer, _clean_whitespace  # noqa: E402

PRE_SRC = ROOT / "crates/biofm-preprocess/src/text"
PRE_FIX = ROOT / "crates/biofm-preprocess/tests/fixtures/text"
MOD_FIX = ROOT / "crates/biofm-models/tests/fixtures/text"
TINY = MOD_FIX / "tiny_st"
MINILM = Path(os.environ.get("BIOFM_TEST_DATA", ROOT / "data" / "downloads")) / "all-MiniLM-L6-v2"

# The encodings ftfy.chardata.CHARMAP_ENCODINGS lists, in its order (latin-1 excluded:
# it is the identity on bytes 0x80-0xFF).
CHARMAPS = [
    ("SLOPPY_WINDOWS_1252", "sloppy-windows-1252"),
    ("SLOPPY_WINDOWS_1251", "sloppy-windows-1251"),
    ("SLOPPY_WINDOWS_1250", "sloppy-windows-1250"),
    ("SLOPPY_WINDOWS_1253", "sloppy-windows-1253"),
    ("SLOPPY_WINDOWS_1254", "sloppy-windows-1254"),
    ("SLOPPY_WINDOWS_1257", "sloppy-windows-1257"),
    ("ISO_8859_2", "iso-8859-2"),
    ("MACROMAN", "macroman"),
    ("CP437", "cp437"),
]


def to_json(obj, indent=0):
    """JSON with one line per object member or nested list, and flat lists on one line."""
    pad = " " * (indent + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{pad}{json.dumps(k)}: {to_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(obj, list) and any(isinstance(v, (list, dict)) for v in obj):
        return "[\n" + ",\n".join(pad + to_json(v, indent + 1) for v in obj) + "\n" + " " * indent + "]"
    return json.dumps(obj, ensure_ascii=False)


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(to_json(obj) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_text(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_safetensors(path, tensors):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------
# Data tables
# --------------------------------------------------------------------------------------


def gen_tables():
    lines = [
        "# WHATWG HTML5 named character references: name (with or without the trailing ';')",
        "# TAB code points (hex). Source: Python 3.11 html.entities.html5. Generated by",
        "# tools/reference/gen_text_fixtures.py.",
    ]
    for name, value in sorted(html.entities.html5.items()):
        lines.append(name + "\t" + " ".join(f"{ord(c):X}" for c in value))
    write_text(PRE_SRC / "html5_entities.tsv", "\n".join(lines) + "\n")

    out = [
        "//! Bytes 0x80..=0xFF of the single-byte codecs that ftfy 6.3.1 tries when it repairs",
        "//! mojibake, as Python's codecs decode them (`sloppy-` codecs: bytes the base codec",
        "//! leaves undefined decode as Latin-1). Generated by tools/reference/gen_text_fixtures.py;",
        "//! do not edit.",
        "",
    ]
    for const, enc in CHARMAPS:
        chars = bytes(range(0x80, 0x100)).decode(enc)
        assert len(chars) == 128
        out.append(f"/// `{enc}`.")
        out.append("#[rustfmt::skip]")
        out.append(f"pub(super) const {const}: [char; 128] = [")
        for row in range(16):
            cells = ", ".join(f"'\\u{{{ord(c):04x}}}'" for c in chars[row * 8 : row * 8 + 8])
            out.append(f"    {cells},")
        out.append("];")
        out.append("")
    write_text(PRE_SRC / "charmaps.rs", "\n".join(out))


# --------------------------------------------------------------------------------------
# Text cleaning
# --------------------------------------------------------------------------------------

CLEAN_CASES = [
    # Real-looking biomedical phrases with symbols that must pass through untouched.
    ("micro_sign", "Cells were treated with 5 µM cisplatin (10 µg/mL) for 24 h."),
    ("greek_mu", "Scale bar = 50 μm; incubation at 37 °C."),
    ("plus_minus", "Mean age was 54.3 ± 12.1 years (range 18–90)."),
    ("trademark", "Stained with Alexa Fluor™ 488 and imaged on a Zeiss LSM 880®."),
    ("ge_le", "Patients aged ≥ 18 years with eGFR ≤ 30 mL/min/1.73 m² were excluded."),
    ("greek_letters", "TNF-α, IL-1β and IFN-γ levels; α-synuclein aggregates; Δψm loss."),
    ("em_en_dash", "The effect—though small—was significant (p = 0.03; 95% CI 1.2–3.4)."),
    ("unicode_hyphen", "anti‐PD‐1 therapy (U+2010 hyphens) and non‑breaking hyphen"),
    ("curly_quotes", "So-called “triple-negative” breast cancer; the patient’s ‘baseline’ scan."),
    ("prime_marks", "5′-UTR and 3′ end; 2″ lesion; ‹angle› «guillemets» „low‟"),
    ("modifier_apostrophe", "Hawaiʻi and Crohnʼs disease"),
    ("ligatures", "ﬁbrosis, ﬂuorescence, eﬀusion, ﬃrm, ﬄuent, ﬆain, Ĳssel, ǆ"),
    ("fullwidth", "ＣＯＶＩＤ－１９ ｐａｔｉｅｎｔｓ（ｎ＝１２３）"),
    ("halfwidth_katakana", "ﾀｰﾝ and ｶﾞ"),
    ("ideographic_space", "lung\u3000adenocarcinoma"),
    ("nbsp", "10\u00a0mg/kg\u00a0i.v. and 5\u202fmL"),
    ("thin_spaces", "1\u2009000 cells\u2002per\u2003well"),
    ("zero_width", "gene\u200bname and soft\u00adhyphen and joiner\u200d!"),
    ("bom", "\ufeffAbstract: background"),
    ("control_chars", "bad\x00byte\x07bell\x08back\x0bvt\x1bx and \x7fdel"),
    ("ansi_escape", "\x1b[1;31mERROR\x1b[0m: sample failed QC"),
    ("crlf", "Line one\r\nLine two\rLine three"),
    ("unicode_line_seps", "para one\u2028line\u2029para two"),
    ("tabs_and_runs", "  \t leading   and\ttrailing \n\n whitespace  "),
    ("c1_ellipsis", "The results\x85 were inconclusive"),
    ("c1_controls", "range 10\x9620 and \x93quoted\x94 and \x80 5"),
    ("c1_undefined", "byte \x81 and \x8d stay"),
    ("html_basic", "Tumour &amp; stroma, p &lt; 0.05, &gt;2 cm, &quot;grade 3&quot;"),
    ("html_double", "Results: p &amp;lt; 0.001 and &amp;amp; so on"),
    ("html_named_symbols", "&micro;g, 37&deg;C, &plusmn;SD, &alpha;&beta;&gamma;, &ge;18, &nbsp;x"),
    ("html_numeric", "&#956;m, &#x3B1;-helix, &#8805; 5, &#X3b2;, &#0;, &#128;, &#x110000;"),
    ("html_uppercase", "P&EACUTE;REZ and BUNDESSTRA&SZLIG;E and &NTILDE; &nTILDE;"),
    ("html_no_semicolon", "AT&T, R&D, &amp and &copy 2020 and &lt3 and &ampxyz;"),
    ("html_with_tag", "<b>bold</b> &amp; &lt;i&gt; stays for ftfy"),
    ("html_tag_later_line", "first &amp; line\nsecond < line &amp;\nthird &eacute; line"),
    ("html_unknown_entity", "&notanentity; &Amp; &AMP; &foo"),
    ("html_long_entity", "&" + "a" * 30 + "; and &" + "b" * 40),
    ("html_semicolon_inside", "&#12a; and &#x41; and &#65"),
    ("combining_nfc", "nai\u0308ve cafe\u0301 and Ångström (A\u030angstro\u0308m)"),
    ("precomposed", "naïve café Ångström Müller Søren"),
    ("mojibake_utf8_latin1", "Ã©tude of the cafÃ© effect"),
    ("mojibake_quotes", "â€œquotedâ€\x9d and itâ€™s"),
    ("mojibake_quotes_lossy", "â€œquotedâ€� text"),
    ("mojibake_degree", "37 Â°C and 5 Âµg and Â± 2"),
    ("mojibake_dash", "10â€“20 mg and aâ€”b"),
    ("mojibake_umlaut", "Ã¼ber die MÃ¼ller-Zellen"),
    ("mojibake_nbsp_space", "voilÃ le travail"),
    ("mojibake_a_grave", "Ã la mode"),
    ("mojibake_cyrillic", "Ð¿Ñ€Ð¸Ð²ÐµÑ‚"),
    ("mojibake_greek", "Î± and Î²-catenin"),
    ("mojibake_mixed", "naïve cafÃ© and ≥ 5 Â°C"),
    ("mojibake_double", "ÃƒÂ©"),
    ("mojibake_euro", "costs 5 â‚¬ per test"),
    ("mojibake_emoji", "great ðŸ‘\x8d job"),
    ("mojibake_sloppy_1252", "aâ€\x9dx"),
    ("mojibake_cesu8", "\u00ed\u00a0\u00bd\u00ed\u00b2\u00a9 and nul \u00c0\u0080 end"),
    ("mojibake_windows_1251", "РїСЂРёРІРµС‚ РјРёСЂ"),
    ("mojibake_macroman", "caf√© and √ºber"),
    ("mojibake_cp437", "caf\u251c\u2310 ok"),
    ("legit_accents", "Università degli Studi and São Paulo and Zürich"),
    ("legit_latin1_symbols", "© 2018 ® ¼ ½ ¾ § ¶ × ÷ ¬ ¦"),
    ("legit_kaomoji", "¯\\_(ツ)_/¯"),
    ("cjk", "肺癌 细胞 and 한국어 and 日本語"),
    ("math_symbols", "∑ x² ≈ ∞, √2, ∂f/∂x, ∫, ≠, ≡, ‰"),
    ("emoji", "patients 😀 and 🧬 DNA"),
    ("arabic_hebrew", "مرحبا and שלום"),
    ("empty", ""),
    ("only_spaces", " \t\n "),
    # Known differences (listed in tests/text_clean.rs): Python's `\d` also accepts
    # non-ASCII decimal digits inside terminal escapes, and Python 3.11's Unicode 14 NFC
    # does not compose characters added in Unicode 16 (U+105D2 U+0307 -> U+105C9).
    ("terminal_escape_arabic_digits", "\x1b[\u06631mred\x1b[0m text"),
    ("unicode16_composition", "Todhri \U000105d2\u0307 letter"),
    ("long_mixed_line", "Background: ﬁbrosis (n = 12) — “severe” &amp; Ã© at 37 °C ±2\n second line"),
]


# Cases the Rust port knowingly cleans differently (see tests/text_clean.rs); they are
# left out of the tokenizer fixture, which tests tokenisation, not cleaning.
KNOWN_CLEAN_DIFFERENCES = {"terminal_escape_arabic_digits", "unicode16_composition"}


def gen_clean_cases():
    cases = []
    for name, text in CLEAN_CASES:
        cases.append({
            "name": name,
            "input": text,
            "fix_text": ftfy.fix_text(text),
            "clean": _clean_whitespace(text),
        })
    write_json(PRE_FIX / "clean_cases.json", {
        "source": f"ftfy {ftfy.__version__}, open_clip {open_clip.__version__} "
                  "open_clip.tokenizer._clean_whitespace",
        "cases": cases,
    })
    return cases


# --------------------------------------------------------------------------------------
# Tiny vocabulary, WordPiece settings
# --------------------------------------------------------------------------------------


def tiny_vocab():
    # Specials deliberately not at bert-base positions (101/102/0).
    vocab = ["[UNK]", "[PAD]", "[MASK]", "[SEP]", "[CLS]"]
    vocab += list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab += list(".,;:()[]-/%+=<>'\"!?&*#")
    vocab += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    vocab += [
        "the", "of", "and", "in", "with", "to", "was", "were", "is", "for", "by", "at",
        "cell", "cells", "tumor", "tumour", "cancer", "patients", "expression", "protein",
        "gene", "blood", "lactate", "lung", "disease", "risk", "telomere", "length", "mm",
        "##ing", "##ed", "##tion", "##al", "##ly", "##er", "##ic", "##ous", "##ity",
        "syn", "##uc", "##lein", "alpha", "beta", "stain", "dna", "rna", "mri", "ct",
        "α", "β", "γ", "μ", "µ", "°", "±", "≥", "癌", "细", "胞", "肺",
        "The", "Cell", "DNA", "Cancer", "##C", "##A", "T",
        "é", "##é", "café", "caf", "ü", "über", "muller", "müller", "##ü",
    ]
    assert len(vocab) == len(set(vocab))
    return vocab


WORDPIECE_TEXTS = [
    "The cells expression",
    "Tumour cells in blood: 5 mm, 37 °C ± 2",
    "Café über Müller",
    "α-synuclein and β cells",
    "肺癌细胞 in the lung",
    "DNA Cancer Cell",
    "unknownword xyzzy",
    "",
    "   ",
    "naïve  \t tabs\nnewline",
    "the [MASK] cell [SEP] [mask]",
    "x" * 120,
]

WORDPIECE_CONFIGS = [
    {"do_lower_case": True, "strip_accents": None, "tokenize_chinese_chars": True},
    {"do_lower_case": False, "strip_accents": None, "tokenize_chinese_chars": True},
    {"do_lower_case": True, "strip_accents": False, "tokenize_chinese_chars": True},
    {"do_lower_case": False, "strip_accents": True, "tokenize_chinese_chars": True},
    {"do_lower_case": True, "strip_accents": None, "tokenize_chinese_chars": False},
]


def gen_wordpiece_cases(vocab_path):
    out = []
    for cfg in WORDPIECE_CONFIGS:
        tok = transformers.BertTokenizer(vocab=str(vocab_path), **cfg)
        ids = tok(WORDPIECE_TEXTS).input_ids
        out.append({"config": cfg, "ids": ids})
    write_json(PRE_FIX / "wordpiece_cases.json", {
        "source": f"transformers {transformers.__version__} BertTokenizer(vocab=tiny_st/vocab.txt, **config)",
        "texts": WORDPIECE_TEXTS,
        "cases": out,
    })


# --------------------------------------------------------------------------------------
# Real PubMed sentences (biopython 1.88 sdist, Tests/Medline and Tests/Entrez)
# --------------------------------------------------------------------------------------


def load_biopython_tests(sdist):
    if sdist is None:
        tmp = Path(tempfile.mkdtemp(prefix="biopython-sdist-"))
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        "biopython==1.88", "-d", str(tmp)], check=True)
        sdist = next(tmp.glob("biopython-1.88.tar.gz"))
    files = {}
    with tarfile.open(sdist) as tf:
        for m in tf.getmembers():
            for sub in ("Tests/Medline/", "Tests/Entrez/"):
                if sub in m.name and m.isfile():
                    files[m.name.split("Tests/", 1)[1]] = tf.extractfile(m).read().decode("utf-8")
    return files


def collapse(s):
    return " ".join(s.split())


def medline_field(text, pmid, field):
    """Value of one MEDLINE field (continuation lines joined) of the record `pmid`."""
    records = re.split(r"\n(?=PMID- )", text.strip())
    for rec in records:
        if rec.startswith(f"PMID- {pmid}"):
            m = re.search(rf"^{field:<4}- (.*(?:\n {{6}}.*)*)", rec, re.M)
            return collapse(m.group(1))
    raise KeyError((pmid, field))


def xml_texts(text, tag):
    root = ET.fromstring(text)
    return [collapse("".join(el.itertext())) for el in root.iter(tag)]


def sentences(paragraph):
    return re.split(r"(?<=[.?!])\s+(?=[A-Z(])", paragraph)


def pubmed_sentences(files):
    e = lambda name: files["Entrez/" + name]  # noqa: E731
    m = lambda name: files["Medline/" + name]  # noqa: E731
    out = [
        medline_field(m("pubmed_result1.txt"), "12230038", "TI"),
        medline_field(m("pubmed_result2.txt"), "16403221", "TI"),
        medline_field(m("pubmed_result2.txt"), "16377612", "TI"),
        sentences(medline_field(m("pubmed_result3.txt"), "23039619", "AB"))[0],
        sentences(medline_field(m("pubmed_result3.txt"), "23039619", "AB"))[2],
        xml_texts(e("pubmed1.xml"), "ArticleTitle")[1],
        sentences(xml_texts(e("pubmed1.xml"), "AbstractText")[0])[1],
        xml_texts(e("pubmed2.xml"), "ArticleTitle")[0],
        sentences(xml_texts(e("pubmed2.xml"), "AbstractText")[0])[3],
        xml_texts(e("pubmed2.xml"), "Affiliation")[0],
        xml_texts(e("pubmed4.xml"), "ArticleTitle")[0],
        sentences(xml_texts(e("pubmed4.xml"), "AbstractText")[2])[2],
        sentences(xml_texts(e("pubmed5.xml"), "AbstractText")[1])[3],
        xml_texts(e("pubmed5.xml"), "CopyrightInformation")[0],
        xml_texts(e("pubmed6.xml"), "ArticleTitle")[0],
        # The splitter breaks this sentence at an inline MathML formula; rejoin it.
        " ".join(sentences(xml_texts(e("pubmed6.xml"), "AbstractText")[0])[4:6]),
        xml_texts(e("pubmed5.xml"), "ArticleTitle")[0],
        xml_texts(e("pubmed6.xml"), "AbstractText")[0],  # whole abstract: > 256 tokens
        xml_texts(e("pubmed7.xml"), "ArticleTitle")[0],
        sentences(xml_texts(e("pubmed7.xml"), "AbstractText")[0])[0],
    ]
    return out


# --------------------------------------------------------------------------------------
# sentence-transformers pipeline in plain torch (sentence-transformers 6.2.0 semantics)
# --------------------------------------------------------------------------------------


def st_pool(hidden, mask, mode):
    m = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "cls":
        idx = mask.to(torch.int).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0]), idx]
    if mode == "max":
        return hidden.masked_fill(m == 0, float("-inf")).max(dim=1).values
    s = (hidden * m).sum(dim=1)
    n = torch.clamp(m.sum(dim=1), min=1e-9)
    return s / n if mode == "mean" else s / torch.sqrt(n)


# --------------------------------------------------------------------------------------
# Tiny BERT + sentence-transformers layout
# --------------------------------------------------------------------------------------

TINY_TEXTS = [
    "The cells",
    "tumour cell expression in blood",
    "",
    "Café 癌 α-synuclein",
    "the lung cancer patients were stained with dna and rna mri and ct for the risk of disease",
    "  Cancer Cell  ",
]
TINY_MAX_SEQ = 16
POOLING_VARIANTS = {
    "mean": {"word_embedding_dimension": 32, "pooling_mode_cls_token": False,
             "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
             "pooling_mode_mean_sqrt_len_tokens": False},
    "cls": {"embedding_dimension": 32, "pooling_mode": "cls"},
    "max": {"word_embedding_dimension": 32, "pooling_mode_max_tokens": True},
    "mean_sqrt_len_tokens": {"embedding_dimension": 32, "pooling_mode": ["mean_sqrt_len_tokens"]},
    "cls_mean": {"word_embedding_dimension": 32, "pooling_mode_cls_token": True,
                 "pooling_mode_mean_tokens": True},
}


def perturb_(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("LayerNorm.weight"):
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
            elif "embeddings" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)


def gen_tiny():
    vocab = tiny_vocab()
    TINY.mkdir(parents=True, exist_ok=True)
    write_text(TINY / "vocab.txt", "\n".join(vocab) + "\n")
    write_json(TINY / "tokenizer_config.json", {
        "tokenizer_class": "BertTokenizer", "do_lower_case": True, "strip_accents": None,
        "tokenize_chinese_chars": True, "unk_token": "[UNK]", "sep_token": "[SEP]",
        "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]", "model_max_length": 512,
    })
    cfg = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, hidden_act="gelu", layer_norm_eps=1e-12, max_position_embeddings=40,
        type_vocab_size=2, pad_token_id=1,
    )
    gen = torch.Generator().manual_seed(20240617)
    model = transformers.BertModel(cfg).eval()
    perturb_(model, gen)
    cfg.architectures = ["BertModel"]
    cfg_dict = cfg.to_diff_dict()
    cfg_dict.pop("transformers_version", None)
    cfg_dict.pop("dtype", None)
    cfg_dict.pop("torch_dtype", None)
    write_json(TINY / "config.json", cfg_dict)
    # Keys under `bert.` (as in BertFor* checkpoints) plus a stale position_ids buffer.
    state = {"bert." + k: v for k, v in model.state_dict().items()}
    state["bert.embeddings.position_ids"] = torch.arange(40, dtype=torch.int64)[None]
    write_safetensors(TINY / "model.safetensors", state)
    write_json(TINY / "sentence_bert_config.json", {"max_seq_length": TINY_MAX_SEQ, "do_lower_case": False})
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    write_json(TINY / "modules.json", modules)
    write_json(TINY / "1_Pooling/config.json", POOLING_VARIANTS["mean"])
    for name, pc in POOLING_VARIANTS.items():
        write_json(TINY / "variants" / f"pooling_{name}.json", pc)
    write_json(TINY / "variants/modules_no_normalize.json", modules[:2])
    write_json(TINY / "variants/modules_dense.json", modules[:2] + [
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}])

    # Reload the files exactly as HF does (prefix stripping, stale key ignored).
    loaded, info = transformers.AutoModel.from_pretrained(str(TINY), output_loading_info=True)
    loaded = loaded.eval()
    assert not info["missing_keys"], info
    tok = transformers.AutoTokenizer.from_pretrained(str(TINY))
    assert tok.pad_token_id == 1 and tok.cls_token_id == 4 and tok.sep_token_id == 3

    tensors, meta = {}, {}
    # Block-level: a padded batch with token types and a hand-made mask.
    gen2 = torch.Generator().manual_seed(7)
    lens = [12, 7, 3]
    ids = torch.full((3, 12), 1, dtype=torch.int64)
    mask = torch.zeros((3, 12), dtype=torch.int64)
    for i, n in enumerate(lens):
        ids[i, :n] = torch.randint(5, len(vocab), (n,), generator=gen2)
        mask[i, :n] = 1
    tt = torch.zeros_like(ids)
    tt[0, 6:] = 1
    tt[1, 4:7] = 1
    with torch.no_grad():
        out = loaded(input_ids=ids, attention_mask=mask)
        out_tt = loaded(input_ids=ids, attention_mask=mask, token_type_ids=tt)
    tensors.update({
        "block.input_ids": ids.to(torch.int64), "block.attention_mask": mask, "block.token_type_ids": tt,
        "block.last_hidden_state": out.last_hidden_state, "block.pooler_output": out.pooler_output,
        "block.last_hidden_state_tt": out_tt.last_hidden_state,
    })

    # sentence-transformers level.
    enc = tok(TINY_TEXTS, padding=True, truncation="longest_first", max_length=TINY_MAX_SEQ, return_tensors="pt")
    full = tok(TINY_TEXTS).input_ids
    with torch.no_grad():
        hidden = loaded(input_ids=enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
    meta["st_texts"] = TINY_TEXTS
    meta["st_ids"] = [[int(t) for t, k in zip(row, mrow) if k] for row, mrow in zip(enc.input_ids, enc.attention_mask)]
    meta["st_truncated"] = [len(f) > TINY_MAX_SEQ for f in full]
    for name, pc in POOLING_VARIANTS.items():
        modes = [name] if name != "cls_mean" else ["cls", "mean"]
        pooled = torch.cat([st_pool(hidden, enc.attention_mask, m) for m in modes], dim=-1)
        tensors[f"st.{name}"] = pooled
        tensors[f"st.{name}.normalized"] = F.normalize(pooled, p=2, dim=1)
    write_safetensors(TINY / "expected.safetensors", tensors)
    write_json(TINY / "expected.json", {
        "source": f"transformers {transformers.__version__}, torch {torch.__version__}; "
                  "pooling as sentence-transformers 6.2.0",
        **meta,
    })


# --------------------------------------------------------------------------------------
# Real all-MiniLM-L6-v2
# --------------------------------------------------------------------------------------


def gen_minilm(sents):
    if not (MINILM / "model.safetensors").is_file():
        sys.exit(f"{MINILM} is missing: run scripts/fetch-test-data.sh")
    tok = transformers.AutoTokenizer.from_pretrained(str(MINILM))
    model = transformers.AutoModel.from_pretrained(str(MINILM)).eval()
    max_seq = json.loads((MINILM / "sentence_bert_config.json").read_text())["max_seq_length"]

    # vocab.txt-only loading must give the same ids as tokenizer.json.
    with tempfile.TemporaryDirectory() as d:
        for f in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
            (Path(d) / f).write_bytes((MINILM / f).read_bytes())
        tok_vocab = transformers.AutoTokenizer.from_pretrained(d)

    ids, truncated, emb = [], [], []
    hidden_keep = {}
    for i, s in enumerate(sents):
        enc = tok([s], padding=True, truncation="longest_first", max_length=max_seq, return_tensors="pt")
        assert enc.input_ids.tolist() == tok_vocab([s], truncation=True, max_length=max_seq).input_ids
        full = tok(s).input_ids
        with torch.no_grad():
            h = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
        emb.append(F.normalize(st_pool(h, enc.attention_mask, "mean"), p=2, dim=1)[0])
        ids.append(enc.input_ids[0].tolist())
        truncated.append(len(full) > max_seq)
        if len(hidden_keep) < 2 and 12 <= len(ids[-1]) <= 24:
            hidden_keep[i] = h[0]
    assert any(truncated), "no sentence exceeds max_seq_length"
    tensors = {"embeddings": torch.stack(emb)}
    for i, h in hidden_keep.items():
        tensors[f"last_hidden_state.{i}"] = h
    write_safetensors(MOD_FIX / "minilm_expected.safetensors", tensors)
    write_json(MOD_FIX / "minilm_expected.json", {
        "source": f"transformers {transformers.__version__}, torch {torch.__version__}: AutoTokenizer + "
                  "AutoModel on all-MiniLM-L6-v2, one sentence per batch, mean pooling + L2 "
                  "normalisation as sentence-transformers 6.2.0; sentences from the biopython 1.88 "
                  "sdist (Tests/Medline, Tests/Entrez PubMed records)",
        "max_seq_length": max_seq,
        "sentences": sents,
        "ids": ids,
        "truncated": truncated,
        "hidden_state_sentences": sorted(hidden_keep),
    })

    # open_clip HFTokenizer (clean + tokenise, padding to the context length).
    ctx = 64
    oc = HFTokenizer(str(MINILM), context_length=ctx)
    texts = sents + [text for name, text in CLEAN_CASES if name not in KNOWN_CLEAN_DIFFERENCES]
    oc_ids = oc(texts).tolist()
    cleaned = [_clean_whitespace(t) for t in texts]
    oc_trunc = [len(tok(c).input_ids) > ctx for c in cleaned]
    write_json(PRE_FIX / "minilm_tokens.json", {
        "source": f"open_clip {open_clip.__version__} HFTokenizer(all-MiniLM-L6-v2, context_length={ctx}), "
                  f"transformers {transformers.__version__}",
        "context_length": ctx,
        "texts": texts,
        "ids": oc_ids,
        "truncated": oc_trunc,
    })


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--biopython-sdist", type=Path, help="biopython-1.88.tar.gz (default: pip download)")
    args = ap.parse_args()
    torch.manual_seed(0)
    gen_tables()
    gen_clean_cases()
    gen_tiny()
    gen_wordpiece_cases(TINY / "vocab.txt")
    files = load_biopython_tests(args.biopython_sdist)
    gen_minilm(pubmed_sentences(files))
    print("text fixtures written")


if __name__ == "__main__":
    main()
