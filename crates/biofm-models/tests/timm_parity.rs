//! Parity of the timm ViT against timm 1.0.31 on tiny random models saved in the timm
//! hub layout (fixtures from tools/reference/gen_vit_fixtures.py): every run of
//! `io.safetensors` is fed through `forward_features`, `forward_head(pre_logits)` and
//! `forward` and compared with timm's outputs (f32, max abs <= 1e-4).

mod timm_common;

use biofm_models::timm;
use candle_core::{DType, Device, Tensor};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use timm_common::{fixture, max_abs_diff, read_all};

const TOL: f32 = 1e-4;

/// Loads the fixture once per override set and checks every run; returns the number of
/// runs checked.
fn check_fixture(name: &str) -> usize {
    let dir = fixture(name);
    let io = read_all(&dir.join("io.safetensors"));
    let run_overrides: Map<String, Value> =
        match std::fs::read_to_string(dir.join("overrides.json")) {
            Ok(text) => serde_json::from_str(&text).unwrap(),
            Err(_) => Map::new(),
        };
    let runs: BTreeSet<&str> = io.keys().filter_map(|k| k.strip_suffix(".input")).collect();
    assert!(!runs.is_empty(), "{name}: io.safetensors has no runs");
    for run in &runs {
        let overrides = match run_overrides.get(*run) {
            Some(Value::Object(o)) => o.clone(),
            _ => Map::new(),
        };
        let loaded = timm::load(dir.as_path(), &overrides, DType::F32, &Device::Cpu)
            .unwrap_or_else(|e| panic!("{name}/{run}: {e:#}"));
        check_run(name, run, &loaded.model, &io);
    }
    runs.len()
}

fn check_run(
    name: &str,
    run: &str,
    model: &biofm_nn::vit::VisionTransformer,
    io: &HashMap<String, Tensor>,
) {
    let get = |what: &str| io.get(&format!("{run}.{what}"));
    let input = get("input").unwrap();
    let features = model
        .forward_features(input)
        .unwrap_or_else(|e| panic!("{name}/{run}: {e:#}"));
    let d_feat = max_abs_diff(&features, get("features").unwrap());
    let pre = model.forward_head(&features, true).unwrap();
    let d_pre = max_abs_diff(&pre, get("pre_logits").unwrap());
    let out = model.forward(input).unwrap();
    // Without a classifier timm's head is nn.Identity: the output is the pre-logits.
    let expected_out = get("logits").or(get("pre_logits")).unwrap();
    let d_out = max_abs_diff(&out, expected_out);
    println!(
        "{name}/{run}: input {:?} features {d_feat:.2e} pre_logits {d_pre:.2e} output {d_out:.2e}",
        input.dims()
    );
    for (what, d) in [
        ("features", d_feat),
        ("pre_logits", d_pre),
        ("output", d_out),
    ] {
        assert!(d <= TOL, "{name}/{run}: {what} differ from timm by {d:e}");
    }
}

#[test]
fn plain_class_token_vit() {
    // native 48x48, plus a reload at img_size 32: pos_embed resampled 3x3 -> 2x2 at load.
    assert_eq!(check_fixture("vit_plain"), 2);
}

#[test]
fn layer_scale_avg_pool_fc_norm() {
    check_fixture("vit_layerscale_avg");
}

#[test]
fn uni2_style_swiglu_registers_no_embed_class() {
    // native 42x42, dynamic 56x28, and a reload at img_size [28, 14].
    assert_eq!(check_fixture("vit_uni2_style"), 3);
}

#[test]
fn classifier_head_without_class_token() {
    check_fixture("vit_head");
}

#[test]
fn dynamic_img_size_resampling_and_padding() {
    // 32x32 native, 48x40 and 16x48 (resampled pos_embed), 37x21 (padded to 40x24).
    assert_eq!(check_fixture("vit_dynamic"), 4);
}

#[test]
fn pre_norm_registers_avgmax_quick_gelu() {
    check_fixture("vit_pre_norm");
}

#[test]
fn num_classes_zero_drops_the_classifier() {
    // open_clip builds timm trunks with num_classes=0: the checkpoint's head is ignored
    // and forward() returns the pooled pre-logits.
    let dir = fixture("vit_head");
    let io = read_all(&dir.join("io.safetensors"));
    let overrides: Map<String, Value> = serde_json::from_str(r#"{"num_classes": 0}"#).unwrap();
    let loaded = timm::load(dir.as_path(), &overrides, DType::F32, &Device::Cpu).unwrap();
    assert!(loaded.model.head.is_none());
    let out = loaded.model.forward(&io["native.input"]).unwrap();
    let d = max_abs_diff(&out, &io["native.pre_logits"]);
    assert!(d <= TOL, "{d:e}");
}

#[test]
fn spec_build_matches_hub_loading() {
    // Strict construction from the resolved spec (load_state_dict semantics) gives the
    // same model as hub loading when the grids agree.
    let dir = fixture("vit_uni2_style");
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let spec = timm::from_hub_config(&cfg, &Map::new()).unwrap();
    let weights = biofm_weights::Weights::open(dir.join("model.safetensors")).unwrap();
    let model = spec.build(&weights.view(DType::F32, &Device::Cpu)).unwrap();
    weights.check_unused(&[]).unwrap();
    let io = read_all(&dir.join("io.safetensors"));
    let d = max_abs_diff(
        &model.forward_features(&io["tall.input"]).unwrap(),
        &io["tall.features"],
    );
    assert!(d <= TOL, "{d:e}");
    assert_eq!(spec.pretrained_cfg.mean, vec![0.5, 0.5, 0.5]);
    assert_eq!(spec.config.reg_tokens, 4);
    assert_eq!(model.config().mlp_layer, biofm_nn::MlpKind::GluPacked);
}

#[test]
fn global_pool_none_keeps_every_token() {
    // global_pool="" (no fc_norm by default): forward_head returns forward_features.
    let dir = fixture("vit_plain");
    let io = read_all(&dir.join("io.safetensors"));
    let overrides: Map<String, Value> = serde_json::from_str(r#"{"global_pool": ""}"#).unwrap();
    let loaded = timm::load(dir.as_path(), &overrides, DType::F32, &Device::Cpu).unwrap();
    let features = loaded.model.forward_features(&io["native.input"]).unwrap();
    let pooled = loaded.model.forward_head(&features, true).unwrap();
    assert_eq!(pooled.dims(), io["native.features"].dims());
    let d = max_abs_diff(&pooled, &io["native.features"]);
    assert!(d <= TOL, "{d:e}");
}
