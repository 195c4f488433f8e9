//! HF `BertModel` parity on a tiny random BERT (hidden 32, 2 layers, 4 heads, perturbed
//! biases and norms) built and run by transformers in tools/reference/gen_text_fixtures.py.
//! The checkpoint stores its keys under `bert.` plus a stale `position_ids` buffer.

use biofm_nn::bert::{BertConfig, BertModel};
use biofm_weights::Weights;
use candle_core::{DType, Device, Tensor};
use std::path::{Path, PathBuf};

const TOL: f32 = 1e-4;

fn dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../biofm-models/tests/fixtures/text/tiny_st");
    assert!(
        d.join("model.safetensors").is_file(),
        "{} is missing: run tools/reference/gen_text_fixtures.py",
        d.display()
    );
    d
}

fn load() -> (BertModel, Weights) {
    let cfg = BertConfig::from_file(&dir().join("config.json")).unwrap();
    let w = Weights::open(dir().join("model.safetensors")).unwrap();
    let model = BertModel::new(&w.view(DType::F32, &Device::Cpu).pp("bert"), &cfg).unwrap();
    (model, w)
}

fn expected() -> Weights {
    Weights::open(dir().join("expected.safetensors")).unwrap()
}

fn get(w: &Weights, key: &str, dtype: DType) -> Tensor {
    w.get_unchecked(key, dtype, &Device::Cpu).unwrap()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn matches_hf_with_padding_and_token_types() {
    let (model, w) = load();
    let exp = expected();
    let ids = get(&exp, "block.input_ids", DType::U32);
    let mask = get(&exp, "block.attention_mask", DType::U32);
    let tt = get(&exp, "block.token_type_ids", DType::U32);

    let hidden = model.forward(&ids, &mask, None).unwrap();
    let d = max_abs(&hidden, &get(&exp, "block.last_hidden_state", DType::F32));
    println!("tiny BERT last_hidden_state max abs diff: {d:.3e}");
    assert!(d <= TOL, "last_hidden_state differs by {d}");

    let pooled = model.pool(&hidden).unwrap().expect("the tiny checkpoint has a pooler");
    let d = max_abs(&pooled, &get(&exp, "block.pooler_output", DType::F32));
    println!("tiny BERT pooler_output max abs diff: {d:.3e}");
    assert!(d <= TOL, "pooler_output differs by {d}");

    let hidden_tt = model.forward(&ids, &mask, Some(&tt)).unwrap();
    let d = max_abs(&hidden_tt, &get(&exp, "block.last_hidden_state_tt", DType::F32));
    println!("tiny BERT last_hidden_state (token types) max abs diff: {d:.3e}");
    assert!(d <= TOL, "last_hidden_state with token_type_ids differs by {d}");
    assert!(max_abs(&hidden, &hidden_tt) > 1e-3, "token types must matter");

    // Strict loading: only the stale buffer is left over.
    let allow: Vec<String> = BertModel::BUFFER_KEYS.iter().map(|k| format!("bert.{k}")).collect();
    w.check_unused(&allow.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
}

#[test]
fn dynamic_padding_matches_full_padding() {
    let (model, _) = load();
    let exp = expected();
    let ids = get(&exp, "block.input_ids", DType::U32);
    let mask = get(&exp, "block.attention_mask", DType::U32);
    let batch = model.forward(&ids, &mask, None).unwrap();
    let lens: Vec<u32> = mask.sum(1).unwrap().to_vec1().unwrap();
    let max_pos = model.config().max_position_embeddings;
    for (i, &n) in lens.iter().enumerate() {
        let n = n as usize;
        let row = ids.narrow(0, i, 1).unwrap().narrow(1, 0, n).unwrap();
        // Unpadded, and padded to max_position_embeddings with the pad id.
        let alone = model.forward(&row, &Tensor::ones((1, n), DType::U32, &Device::Cpu).unwrap(), None).unwrap();
        let pad = Tensor::full(model.config().pad_token_id, (1, max_pos - n), &Device::Cpu).unwrap();
        let long = Tensor::cat(&[&row, &pad], 1).unwrap();
        let long_mask = Tensor::cat(
            &[
                Tensor::ones((1, n), DType::U32, &Device::Cpu).unwrap(),
                Tensor::zeros((1, max_pos - n), DType::U32, &Device::Cpu).unwrap(),
            ],
            1,
        )
        .unwrap();
        let full = model.forward(&long, &long_mask, None).unwrap().narrow(1, 0, n).unwrap();
        let padded = batch.narrow(0, i, 1).unwrap().narrow(1, 0, n).unwrap();
        let (d1, d2) = (max_abs(&alone, &padded), max_abs(&alone, &full));
        println!("row {i} (len {n}): unpadded vs batch {d1:.2e}, unpadded vs max-length {d2:.2e}");
        assert!(d1 <= 1e-5 && d2 <= 1e-5, "padding changed row {i}: {d1} / {d2}");
    }
}

fn config_json(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("config.json")).unwrap()).unwrap();
    edit(&mut v);
    v.to_string()
}

type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;

#[test]
fn bad_configs_are_rejected_with_the_reason() {
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|v| drop(v.as_object_mut().unwrap().remove("hidden_size"))), "missing field `hidden_size`"),
        (
            Box::new(|v| v["position_embedding_type"] = "relative_key".into()),
            "position_embedding_type `relative_key` is not supported",
        ),
        (Box::new(|v| v["hidden_act"] = "mish".into()), "hidden_act `mish` is not supported"),
        (Box::new(|v| v["model_type"] = "roberta".into()), "model_type `roberta` is not supported"),
        (Box::new(|v| v["num_attention_heads"] = 5.into()), "not divisible by num_attention_heads 5"),
        (Box::new(|v| v["vocab_size"] = "many".into()), "field `vocab_size` must be a non-negative integer"),
    ];
    for (edit, want) in cases {
        let err = BertConfig::from_json_str(&config_json(edit), "test/config.json").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(want) && msg.contains("test/config.json"), "expected {want:?} in {msg:?}");
    }
    // HF defaults fill the optional fields.
    let cfg = BertConfig::from_json_str(
        &config_json(|v| {
            let o = v.as_object_mut().unwrap();
            for k in ["hidden_act", "layer_norm_eps", "pad_token_id", "position_embedding_type"] {
                o.remove(k);
            }
        }),
        "defaults",
    )
    .unwrap();
    assert_eq!((cfg.hidden_act.as_str(), cfg.layer_norm_eps, cfg.pad_token_id), ("gelu", 1e-12, 0));
}

#[test]
fn weights_that_disagree_with_the_config_name_key_and_shapes() {
    let cfg = BertConfig::from_json_str(&config_json(|v| v["intermediate_size"] = 48.into()), "edited").unwrap();
    let w = Weights::open(dir().join("model.safetensors")).unwrap();
    let err = format!("{:#}", BertModel::new(&w.view(DType::F32, &Device::Cpu).pp("bert"), &cfg).unwrap_err());
    assert!(
        err.contains("bert.encoder.layer.0.intermediate.dense.weight")
            && err.contains("[64, 32]")
            && err.contains("[48, 32]"),
        "{err}"
    );
    // Wrong prefix: the missing key is named.
    let cfg = BertConfig::from_file(&dir().join("config.json")).unwrap();
    let err =
        format!("{:#}", BertModel::new(&w.view(DType::F32, &Device::Cpu).pp("text.transformer"), &cfg).unwrap_err());
    assert!(err.contains("text.transformer.embeddings.word_embeddings.weight"), "{err}");
}

#[test]
fn bad_inputs_are_rejected() {
    let (model, _) = load();
    let cfg = model.config().clone();
    let dev = Device::Cpu;
    let ids = Tensor::new(&[[4u32, cfg.vocab_size as u32, 3]], &dev).unwrap();
    let mask = Tensor::ones((1, 3), DType::U32, &dev).unwrap();
    let err = model.forward(&ids, &mask, None).unwrap_err().to_string();
    assert!(err.contains(&format!("token id {} is out of range", cfg.vocab_size)), "{err}");

    let n = cfg.max_position_embeddings + 1;
    let ids = Tensor::full(5u32, (1, n), &dev).unwrap();
    let err = model.forward(&ids, &Tensor::ones((1, n), DType::U32, &dev).unwrap(), None).unwrap_err().to_string();
    assert!(err.contains("exceeds max_position_embeddings"), "{err}");

    let ids = Tensor::new(&[[4u32, 5, 3]], &dev).unwrap();
    let err = model.forward(&ids, &Tensor::ones((1, 2), DType::U32, &dev).unwrap(), None).unwrap_err().to_string();
    assert!(err.contains("attention_mask has shape"), "{err}");
    let tt = Tensor::new(&[[0u32, 2, 0]], &dev).unwrap();
    let err = model.forward(&ids, &mask, Some(&tt)).unwrap_err().to_string();
    assert!(err.contains("token type id 2 is out of range"), "{err}");
}
