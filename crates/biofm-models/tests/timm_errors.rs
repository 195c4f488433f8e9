//! Bad input gives a clear error (never a panic): broken hub directories, checkpoints
//! with wrong/missing/extra tensors, and pixels of the wrong size or channel count.

mod timm_common;

use biofm_models::timm;
use candle_core::{DType, Device, Tensor};
use serde_json::{Map, Value};
use timm_common::{fixture, hub_dir_with, read_all, scratch_dir};

fn load_err(dir: &std::path::Path, overrides: &str) -> String {
    let overrides: Map<String, Value> = serde_json::from_str(overrides).unwrap();
    match timm::load(dir, &overrides, DType::F32, &Device::Cpu) {
        Ok(_) => panic!("{} loaded although it is broken", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

fn assert_mentions(err: &str, parts: &[&str]) {
    for p in parts {
        assert!(err.contains(p), "error does not mention `{p}`: {err}");
    }
}

#[test]
fn missing_config_json() {
    let dir = scratch_dir("no_config");
    assert_mentions(
        &load_err(&dir, "{}"),
        &["config.json", &dir.display().to_string()],
    );
}

#[test]
fn config_json_not_json() {
    let dir = scratch_dir("bad_json");
    std::fs::write(
        dir.join("config.json"),
        "{\"architecture\": \"vit_base_patch16_224\",",
    )
    .unwrap();
    assert_mentions(&load_err(&dir, "{}"), &["config.json", "not valid JSON"]);
}

#[test]
fn config_json_unknown_architecture() {
    let dir = scratch_dir("unknown_arch");
    std::fs::write(
        dir.join("config.json"),
        r#"{"architecture": "vit_bse_patch16_224", "num_classes": 0}"#,
    )
    .unwrap();
    assert_mentions(
        &load_err(&dir, "{}"),
        &[
            "vit_bse_patch16_224",
            "closest known names",
            "vit_base_patch16_224",
        ],
    );
    std::fs::write(dir.join("config.json"), r#"{"num_classes": 0}"#).unwrap();
    assert_mentions(&load_err(&dir, "{}"), &["architecture"]);
}

#[test]
fn config_json_bad_model_args() {
    let dir = scratch_dir("bad_model_args");
    std::fs::write(
        dir.join("config.json"),
        r#"{"architecture": "vit_small_patch16_224", "model_args": {"mlp_layer": "SwiGLU"}}"#,
    )
    .unwrap();
    assert_mentions(&load_err(&dir, "{}"), &["mlp_layer", "SwiGLU"]);
}

#[test]
fn no_weights_file() {
    let dir = scratch_dir("no_weights");
    std::fs::copy(
        fixture("vit_plain").join("config.json"),
        dir.join("config.json"),
    )
    .unwrap();
    assert_mentions(
        &load_err(&dir, "{}"),
        &["model.safetensors", "pytorch_model.bin"],
    );
}

#[test]
fn weight_with_wrong_shape() {
    let mut t = read_all(&fixture("vit_plain").join("model.safetensors"));
    let key = "blocks.1.mlp.fc1.weight";
    t.insert(
        key.into(),
        Tensor::zeros((100, 48), DType::F32, &Device::Cpu).unwrap(),
    );
    let dir = hub_dir_with("wrong_shape", "vit_plain", &t);
    assert_mentions(&load_err(&dir, "{}"), &[key, "[100, 48]", "[192, 48]"]);
}

#[test]
fn pos_embed_with_wrong_width() {
    let mut t = read_all(&fixture("vit_plain").join("model.safetensors"));
    t.insert(
        "pos_embed".into(),
        Tensor::zeros((1, 10, 40), DType::F32, &Device::Cpu).unwrap(),
    );
    let dir = hub_dir_with("pos_embed_width", "vit_plain", &t);
    assert_mentions(
        &load_err(&dir, "{}"),
        &["pos_embed", "[1, 10, 40]", "[1, 10, 48]"],
    );
}

#[test]
fn pos_embed_grid_mismatch_without_resampling() {
    // Strict construction (load_state_dict semantics) does not resample: a checkpoint
    // made at 48x48 does not fit a model built for 64x64.
    let over: Map<String, Value> = serde_json::from_str(
        r#"{"embed_dim": 48, "depth": 2, "num_heads": 3, "img_size": 64, "num_classes": 0}"#,
    )
    .unwrap();
    let spec = timm::from_name("vit_base_patch16_224", &over).unwrap();
    let w = biofm_weights::Weights::open(fixture("vit_plain").join("model.safetensors")).unwrap();
    let err = format!(
        "{:#}",
        spec.build(&w.view(DType::F32, &Device::Cpu)).unwrap_err()
    );
    assert_mentions(&err, &["pos_embed", "[1, 10, 48]", "[1, 17, 48]"]);
}

#[test]
fn missing_weight() {
    let mut t = read_all(&fixture("vit_pre_norm").join("model.safetensors"));
    t.remove("blocks.1.norm2.bias").unwrap();
    let dir = hub_dir_with("missing_key", "vit_pre_norm", &t);
    assert_mentions(&load_err(&dir, "{}"), &["blocks.1.norm2.bias", "missing"]);
}

#[test]
fn unexpected_extra_weight() {
    let mut t = read_all(&fixture("vit_layerscale_avg").join("model.safetensors"));
    t.insert(
        "blocks.0.attn.q_norm.weight".into(),
        Tensor::ones(8, DType::F32, &Device::Cpu).unwrap(),
    );
    let dir = hub_dir_with("extra_key", "vit_layerscale_avg", &t);
    assert_mentions(
        &load_err(&dir, "{}"),
        &["blocks.0.attn.q_norm.weight", "does not use"],
    );
}

#[test]
fn layer_scale_weights_need_init_values() {
    // A LayerScale checkpoint loaded without init_values leaves `ls*.gamma` unused.
    let dir = fixture("vit_layerscale_avg");
    assert_mentions(
        &load_err(&dir, r#"{"init_values": 0.0}"#),
        &["ls1.gamma", "does not use"],
    );
}

#[test]
fn different_class_count_needs_num_classes_zero() {
    let dir = fixture("vit_head");
    assert_mentions(
        &load_err(&dir, r#"{"num_classes": 7}"#),
        &["num_classes = 7", "5"],
    );
}

fn model(name: &str) -> biofm_nn::vit::VisionTransformer {
    timm::load(
        fixture(name).as_path(),
        &Map::new(),
        DType::F32,
        &Device::Cpu,
    )
    .unwrap()
    .model
}

fn forward_err(m: &biofm_nn::vit::VisionTransformer, shape: &[usize]) -> String {
    let x = Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap();
    format!("{:#}", m.forward_features(&x).unwrap_err())
}

#[test]
fn input_not_divisible_by_patch_size() {
    // dynamic_img_size without dynamic_img_pad: sizes must be multiples of 14.
    let m = model("vit_uni2_style");
    assert_mentions(
        &forward_err(&m, &[1, 3, 43, 42]),
        &["43x42", "patch size 14x14"],
    );
    // a fixed-size model takes only its own size
    let m = model("vit_plain");
    assert_mentions(&forward_err(&m, &[1, 3, 32, 48]), &["32x48", "48x48"]);
}

#[test]
fn wrong_channel_count_or_rank() {
    let m = model("vit_plain");
    assert_mentions(&forward_err(&m, &[2, 1, 48, 48]), &["3 input channel", "1"]);
    assert_mentions(&forward_err(&m, &[3, 48, 48]), &["[3, 48, 48]"]);
    let feats = Tensor::zeros((1, 10, 40), DType::F32, &Device::Cpu).unwrap();
    assert_mentions(
        &format!("{:#}", m.forward_head(&feats, false).unwrap_err()),
        &["40", "48"],
    );
}

#[test]
fn weights_file_preference() {
    // model.safetensors is preferred over pytorch_model.bin (here not a checkpoint at all)
    let dir = scratch_dir("weights_preference");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("vit_plain").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("pytorch_model.bin"), b"not a checkpoint").unwrap();
    timm::load(dir.as_path(), &Map::new(), DType::F32, &Device::Cpu).unwrap();
    // without model.safetensors, pytorch_model.bin is the one read
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    assert_mentions(&load_err(&dir, "{}"), &["pytorch_model.bin"]);
}
