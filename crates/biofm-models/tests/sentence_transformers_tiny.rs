//! sentence-transformers pipeline on a tiny random BERT in the real hub layout
//! (vocab.txt-only tokenizer, `bert.`-prefixed keys), against transformers + the
//! sentence-transformers 6.2 pooling reproduced in tools/reference/gen_text_fixtures.py.

use anyhow::Result;
use biofm_models::sentence_transformers::{PoolingMode, SentenceEncoder};
use biofm_models::FileSource;
use biofm_preprocess::text::Padding;
use biofm_weights::Weights;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const TOL: f32 = 1e-4;

fn dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text/tiny_st");
    assert!(d.join("modules.json").is_file(), "{} is missing: run tools/reference/gen_text_fixtures.py", d.display());
    d
}

/// The fixture directory with some files replaced by variants.
struct Overlay {
    base: PathBuf,
    swap: HashMap<&'static str, PathBuf>,
}

impl Overlay {
    fn new(swaps: &[(&'static str, &str)]) -> Self {
        let base = dir();
        let swap = swaps.iter().map(|(name, file)| (*name, base.join("variants").join(file))).collect();
        Self { base, swap }
    }
}

impl FileSource for Overlay {
    fn get(&self, name: &str) -> Result<Option<PathBuf>> {
        match self.swap.get(name) {
            Some(p) => Ok(Some(p.clone())),
            None => self.base.get(name),
        }
    }
    fn describe(&self) -> String {
        format!("tiny sentence-transformers fixture {}", self.base.display())
    }
}

fn expected_json() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap()).unwrap()
}

fn expected(key: &str) -> Tensor {
    Weights::open(dir().join("expected.safetensors")).unwrap().get_unchecked(key, DType::F32, &Device::Cpu).unwrap()
}

fn texts() -> Vec<String> {
    expected_json()["st_texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn mean_normalized_embeddings_match_for_any_batch_size() {
    let enc = SentenceEncoder::load(&dir(), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(
        (enc.pooling(), enc.normalizes(), enc.max_seq_length(), enc.dim()),
        (&[PoolingMode::Mean][..], true, 16, 32)
    );
    let texts = texts();
    let want = expected("st.mean.normalized");
    let flags: Vec<bool> =
        expected_json()["st_truncated"].as_array().unwrap().iter().map(|b| b.as_bool().unwrap()).collect();
    assert!(flags.iter().any(|&t| t));
    for batch in [1, 2, texts.len()] {
        let (got, truncated) = enc.embed(&texts, batch).unwrap();
        let d = max_abs(&got, &want);
        println!("tiny sentence embeddings (batch {batch}) max abs diff: {d:.3e}");
        assert!(d <= TOL, "batch {batch}: {d}");
        assert_eq!(truncated, flags);
    }
    // Token ids (vocab.txt-only tokenizer, specials at non-bert-base ids).
    let ids = enc.tokenizer().encode_batch(&texts, 16, Padding::Longest).unwrap();
    for (i, want) in expected_json()["st_ids"].as_array().unwrap().iter().enumerate() {
        let want: Vec<u32> = want.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(&ids.row(i).unwrap()[..ids.lengths()[i]], &want[..], "text {i}");
    }
}

#[test]
fn every_pooling_mode_matches() {
    for (name, file) in [
        ("mean", "pooling_mean.json"),
        ("cls", "pooling_cls.json"),
        ("max", "pooling_max.json"),
        ("mean_sqrt_len_tokens", "pooling_mean_sqrt_len_tokens.json"),
        ("cls_mean", "pooling_cls_mean.json"),
    ] {
        for normalized in [false, true] {
            let mut swaps = vec![("1_Pooling/config.json", file)];
            if !normalized {
                swaps.push(("modules.json", "modules_no_normalize.json"));
            }
            let enc = SentenceEncoder::load(&Overlay::new(&swaps), DType::F32, &Device::Cpu).unwrap();
            let (got, _) = enc.embed(&texts(), 4).unwrap();
            let key = if normalized { format!("st.{name}.normalized") } else { format!("st.{name}") };
            let d = max_abs(&got, &expected(&key));
            println!("pooling {key}: max abs diff {d:.3e}");
            assert!(d <= TOL, "{key}: {d}");
        }
    }
}

#[test]
fn empty_inputs() {
    let enc = SentenceEncoder::load(&dir(), DType::F32, &Device::Cpu).unwrap();
    let none: [&str; 0] = [];
    let (e, t) = enc.embed(&none, 8).unwrap();
    assert_eq!((e.dims(), t.len()), (&[0, 32][..], 0));
    // An empty string is still [CLS] [SEP] and gets an embedding.
    let (e, _) = enc.embed(&[""], 8).unwrap();
    let d = max_abs(&e, &expected("st.mean.normalized").narrow(0, 2, 1).unwrap());
    assert!(d <= TOL, "{d}");
    assert!(enc.embed(&["x"], 0).unwrap_err().to_string().contains("batch size"));
}

#[test]
fn unsupported_modules_are_named() {
    let err = SentenceEncoder::load(&Overlay::new(&[("modules.json", "modules_dense.json")]), DType::F32, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("sentence_transformers.models.Dense") && err.contains("2_Dense"), "{err}");
}
