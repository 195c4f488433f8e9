//! Tokenisation against HF transformers / open_clip outputs (fixtures written by
//! tools/reference/gen_text_fixtures.py) and bad-input handling.

use biofm_preprocess::text::{open_clip_clean, Padding, TextError, TextTokenizer, TokenizerFiles, WordPieceConfig};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/text/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; create it with tools/reference/gen_text_fixtures.py"));
    serde_json::from_str(&text).unwrap()
}

fn tiny_vocab() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../biofm-models/tests/fixtures/text/tiny_st/vocab.txt")
}

fn minilm_dir() -> PathBuf {
    biofm_testdata::downloaded_dir_of("all-MiniLM-L6-v2/tokenizer.json")
}

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

#[test]
fn wordpiece_from_vocab_matches_hf_for_every_setting() {
    let fx = fixture("wordpiece_cases.json");
    let texts: Vec<&str> = fx["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    for case in fx["cases"].as_array().unwrap() {
        let c = &case["config"];
        let cfg = WordPieceConfig {
            do_lower_case: c["do_lower_case"].as_bool().unwrap(),
            strip_accents: c["strip_accents"].as_bool(),
            tokenize_chinese_chars: c["tokenize_chinese_chars"].as_bool().unwrap(),
            ..WordPieceConfig::default()
        };
        let tok = TextTokenizer::from_vocab(&tiny_vocab(), &cfg).unwrap();
        let enc = tok.encode_batch(&texts, 512, Padding::Longest).unwrap();
        for (i, want) in case["ids"].as_array().unwrap().iter().enumerate() {
            let n = enc.lengths()[i];
            assert_eq!(&enc.row(i).unwrap()[..n], &ids_of(want)[..], "config {c}, text {:?}", texts[i]);
        }
        // Padding uses the pad id from the vocabulary (1 here, not bert-base's 0).
        assert_eq!(tok.pad_id(), 1);
        let short = enc.lengths().iter().position(|&n| n < enc.len).unwrap();
        assert_eq!(enc.row(short).unwrap()[enc.len - 1], 1);
    }
}

fn check_open_clip_ids(tok: &TextTokenizer, what: &str) {
    let fx = fixture("minilm_tokens.json");
    let ctx = fx["context_length"].as_u64().unwrap() as usize;
    let texts: Vec<String> =
        fx["texts"].as_array().unwrap().iter().map(|t| open_clip_clean(t.as_str().unwrap())).collect();
    let enc = tok.encode_batch(&texts, ctx, Padding::MaxLength).unwrap();
    assert_eq!((enc.batch, enc.len), (texts.len(), ctx));
    let sep = tok.token_to_id("[SEP]").unwrap();
    for (i, want) in fx["ids"].as_array().unwrap().iter().enumerate() {
        assert_eq!(enc.row(i).unwrap(), &ids_of(want)[..], "{what}: text {i} {:?}", texts[i]);
        let truncated = fx["truncated"][i].as_bool().unwrap();
        assert_eq!(enc.truncated[i], truncated, "{what}: truncation flag of text {i}");
        if truncated {
            assert_eq!(enc.row(i).unwrap()[ctx - 1], sep, "a truncated text still ends with [SEP]");
        }
    }
    assert!(enc.truncated.iter().any(|&t| t), "the fixture must exercise truncation");
}

#[test]
fn open_clip_hf_tokenizer_ids_from_tokenizer_json() {
    let dir = minilm_dir();
    let files = TokenizerFiles {
        tokenizer_json: Some(dir.join("tokenizer.json")),
        tokenizer_config: Some(dir.join("tokenizer_config.json")),
        special_tokens_map: Some(dir.join("special_tokens_map.json")),
        ..Default::default()
    };
    check_open_clip_ids(&TextTokenizer::load(&files).unwrap(), "tokenizer.json");
}

#[test]
fn open_clip_hf_tokenizer_ids_from_vocab_txt() {
    let dir = minilm_dir();
    let files = TokenizerFiles {
        vocab_txt: Some(dir.join("vocab.txt")),
        tokenizer_config: Some(dir.join("tokenizer_config.json")),
        ..Default::default()
    };
    check_open_clip_ids(&TextTokenizer::load(&files).unwrap(), "vocab.txt");
}

#[test]
fn empty_inputs() {
    let tok = TextTokenizer::from_vocab(&tiny_vocab(), &WordPieceConfig::default()).unwrap();
    let enc = tok.encode_batch(&[""], 8, Padding::Longest).unwrap();
    let (cls, sep) = (tok.token_to_id("[CLS]").unwrap(), tok.token_to_id("[SEP]").unwrap());
    assert_eq!(enc.ids, vec![cls, sep]);
    assert_eq!(enc.attention_mask, vec![1, 1]);
    assert_eq!(enc.truncated, vec![false]);
    let none: [&str; 0] = [];
    let enc = tok.encode_batch(&none, 8, Padding::MaxLength).unwrap();
    assert_eq!((enc.batch, enc.ids.len()), (0, 0));
}

#[test]
fn bad_inputs_give_clear_errors() {
    let tok = TextTokenizer::from_vocab(&tiny_vocab(), &WordPieceConfig::default()).unwrap();
    let err = tok.encode_batch(&["cell"], 2, Padding::MaxLength).unwrap_err();
    assert!(matches!(err, TextError::Usage(_)) && err.to_string().contains("maximum length 2"), "{err}");

    let cfg = WordPieceConfig { pad_token: "<pad>".into(), ..WordPieceConfig::default() };
    let err = TextTokenizer::from_vocab(&tiny_vocab(), &cfg).unwrap_err().to_string();
    assert!(err.contains("`<pad>`") && err.contains("vocab.txt"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("vocab.txt");
    std::fs::write(&bad, b"[PAD]\n[UNK]\n\xff\xfe\n").unwrap();
    let err = TextTokenizer::from_vocab(&bad, &WordPieceConfig::default()).unwrap_err().to_string();
    assert!(err.contains("not UTF-8") && err.contains("byte offset 12"), "{err}");

    let json = dir.path().join("tokenizer.json");
    std::fs::write(&json, b"{\"model\": 3}").unwrap();
    let files = TokenizerFiles { tokenizer_json: Some(json.clone()), ..Default::default() };
    let err = TextTokenizer::load(&files).err().unwrap().to_string();
    assert!(err.contains(&json.display().to_string()) && err.contains("tokenizer.json"), "{err}");

    let err = TextTokenizer::load(&TokenizerFiles::default()).err().unwrap().to_string();
    assert!(err.contains("no tokenizer.json or vocab.txt"), "{err}");
}
