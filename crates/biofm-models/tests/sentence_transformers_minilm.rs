//! The real all-MiniLM-L6-v2 (fetched by scripts/fetch-test-data.sh) on real PubMed
//! sentences, against transformers + sentence-transformers-style mean pooling
//! (fixtures written by tools/reference/gen_text_fixtures.py).

use biofm_models::sentence_transformers::SentenceEncoder;
use biofm_preprocess::text::Padding;
use biofm_weights::Weights;
use candle_core::{DType, Device, Tensor};
use std::path::{Path, PathBuf};

const TOL: f32 = 1e-4;

fn model_dir() -> PathBuf {
    biofm_testdata::downloaded_dir_of("all-MiniLM-L6-v2/model.safetensors")
}

fn fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text").join(name);
    assert!(p.is_file(), "{} is missing: run tools/reference/gen_text_fixtures.py", p.display());
    p
}

fn meta() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("minilm_expected.json")).unwrap()).unwrap()
}

fn expected(key: &str) -> Tensor {
    Weights::open(fixture("minilm_expected.safetensors")).unwrap().get_unchecked(key, DType::F32, &Device::Cpu).unwrap()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn sentences() -> Vec<String> {
    meta()["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

#[test]
fn token_ids_and_truncation_match_hf() {
    let enc = SentenceEncoder::load(&model_dir(), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(enc.max_seq_length(), 256);
    let m = meta();
    let batch = enc.tokenizer().encode_batch(&sentences(), enc.max_seq_length(), Padding::Longest).unwrap();
    for (i, want) in m["ids"].as_array().unwrap().iter().enumerate() {
        let want: Vec<u32> = want.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(&batch.row(i).unwrap()[..batch.lengths()[i]], &want[..], "sentence {i}");
        assert_eq!(batch.truncated[i], m["truncated"][i].as_bool().unwrap(), "truncation flag of sentence {i}");
    }
}

#[test]
fn embeddings_match_sentence_transformers() {
    let enc = SentenceEncoder::load(&model_dir(), DType::F32, &Device::Cpu).unwrap();
    let texts = sentences();
    let want = expected("embeddings");
    let (batched, truncated) = enc.embed(&texts, 8).unwrap();
    let d = max_abs(&batched, &want);
    println!("all-MiniLM-L6-v2 normalised embeddings (batches of 8) max abs diff: {d:.3e}");
    assert!(d <= TOL, "embeddings differ by {d}");
    assert_eq!(truncated.iter().filter(|&&t| t).count(), 1);

    // Dynamic padding: one text per batch (no padding) vs the whole list in one batch.
    let (single, _) = enc.embed(&texts, 1).unwrap();
    let (whole, _) = enc.embed(&texts, texts.len()).unwrap();
    let d = max_abs(&single, &whole);
    println!("all-MiniLM-L6-v2 batch 1 vs batch {}: max abs diff {d:.3e}", texts.len());
    assert!(d <= 1e-5, "padding changed embeddings by {d}");
}

#[test]
fn last_hidden_state_matches_hf() {
    let enc = SentenceEncoder::load(&model_dir(), DType::F32, &Device::Cpu).unwrap();
    let texts = sentences();
    let which = meta()["hidden_state_sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect::<Vec<_>>();
    assert_eq!(which.len(), 2);
    for i in which {
        let b = enc.tokenizer().encode_batch(&texts[i..=i], 256, Padding::Longest).unwrap();
        let ids = Tensor::from_vec(b.ids, (1, b.len), &Device::Cpu).unwrap();
        let mask = Tensor::from_vec(b.attention_mask, (1, b.len), &Device::Cpu).unwrap();
        let h = enc.bert().forward(&ids, &mask, None).unwrap().squeeze(0).unwrap();
        let d = max_abs(&h, &expected(&format!("last_hidden_state.{i}")));
        println!("all-MiniLM-L6-v2 last_hidden_state of sentence {i} ({} tokens): max abs diff {d:.3e}", b.len);
        assert!(d <= TOL, "sentence {i}: {d}");
    }
}
