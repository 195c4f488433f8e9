//! timm names resolve to what timm 1.0.31 builds: for every plain registered ViT name
//! (and the override sets used by BiomedCLIP, CONCH, UNI, UNI2-h, RETFound),
//! `tests/fixtures/timm/registry.json` records the architecture of the model timm
//! creates and its pretrained config; `TimmVitSpec::from_name` must agree field by field.

mod timm_common;

use biofm_kernels::Activation;
use biofm_models::timm;
use biofm_nn::vit::GlobalPool;
use biofm_nn::MlpKind;
use serde_json::{Map, Value};
use std::path::Path;

fn registry() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/timm/registry.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("missing {}; create it with tools/reference/.venv/bin/python tools/reference/gen_vit_fixtures.py", path.display())
    });
    let v: Value = serde_json::from_str(&text).unwrap();
    v["models"].as_array().unwrap().clone()
}

fn pool_name(p: GlobalPool) -> &'static str {
    match p {
        GlobalPool::None => "",
        GlobalPool::Token => "token",
        GlobalPool::Avg => "avg",
        GlobalPool::AvgMax => "avgmax",
        GlobalPool::Max => "max",
    }
}

fn act_class(a: Activation) -> &'static str {
    match a {
        Activation::Gelu => "GELU",
        Activation::GeluTanh => "GELUTanh",
        Activation::QuickGelu => "QuickGELU",
        Activation::Silu => "SiLU",
        Activation::Relu => "ReLU",
    }
}

#[test]
fn names_resolve_like_timm() {
    let entries = registry();
    assert!(
        entries.len() >= 25,
        "registry.json has {} entries",
        entries.len()
    );
    let mut plain = 0;
    for e in &entries {
        let name = e["name"].as_str().unwrap();
        let overrides: Map<String, Value> = e["overrides"].as_object().unwrap().clone();
        plain += usize::from(overrides.is_empty());
        let ctx = format!("{name} {}", Value::Object(overrides.clone()));
        let spec = timm::from_name(name, &overrides).unwrap_or_else(|err| panic!("{ctx}: {err:#}"));
        let c = &spec.config;
        let m = &e["model"];
        let hidden = c.mlp_hidden_features();
        let fc2_in = if c.mlp_layer == MlpKind::GluPacked {
            hidden / 2
        } else {
            hidden
        };
        let checks: Vec<(&str, Value, Value)> = vec![
            (
                "img_size",
                m["img_size"].clone(),
                serde_json::json!([c.img_size.0, c.img_size.1]),
            ),
            (
                "patch_size",
                m["patch_size"].clone(),
                serde_json::json!([c.patch_size.0, c.patch_size.1]),
            ),
            ("in_chans", m["in_chans"].clone(), c.in_chans.into()),
            (
                "num_classes",
                m["num_classes"].clone(),
                c.num_classes.into(),
            ),
            (
                "global_pool",
                m["global_pool"].clone(),
                pool_name(c.global_pool).into(),
            ),
            ("embed_dim", m["embed_dim"].clone(), c.embed_dim.into()),
            ("depth", m["depth"].clone(), c.depth.into()),
            ("num_heads", m["num_heads"].clone(), c.num_heads.into()),
            ("mlp_fc1_out", m["mlp_fc1_out"].clone(), hidden.into()),
            ("mlp_fc2_in", m["mlp_fc2_in"].clone(), fc2_in.into()),
            (
                "mlp_layer",
                m["mlp_layer"].clone(),
                if c.mlp_layer == MlpKind::GluPacked {
                    "GluMlp"
                } else {
                    "Mlp"
                }
                .into(),
            ),
            (
                "act_layer",
                m["act_layer"].clone(),
                act_class(c.act_layer).into(),
            ),
            ("qkv_bias", m["qkv_bias"].clone(), c.qkv_bias.into()),
            (
                "layer_scale",
                m["layer_scale"].clone(),
                c.uses_layer_scale().into(),
            ),
            (
                "class_token",
                m["class_token"].clone(),
                c.class_token.into(),
            ),
            ("reg_tokens", m["reg_tokens"].clone(), c.reg_tokens.into()),
            (
                "no_embed_class",
                m["no_embed_class"].clone(),
                c.no_embed_class.into(),
            ),
            (
                "pos_embed_len",
                m["pos_embed_len"].clone(),
                c.pos_embed_len().into(),
            ),
            ("patch_bias", m["patch_bias"].clone(), (!c.pre_norm).into()),
            ("norm_pre", m["norm_pre"].clone(), c.pre_norm.into()),
            (
                "norm",
                m["norm"].clone(),
                (c.final_norm && !c.uses_fc_norm()).into(),
            ),
            (
                "fc_norm",
                m["fc_norm"].clone(),
                (c.final_norm && c.uses_fc_norm()).into(),
            ),
            ("head", m["head"].clone(), (c.num_classes > 0).into()),
            (
                "dynamic_img_size",
                m["dynamic_img_size"].clone(),
                c.dynamic_img_size.into(),
            ),
        ];
        for (field, timm_value, ours) in checks {
            assert_eq!(ours, timm_value, "{ctx}: {field}");
        }
        let p = &e["pretrained_cfg"];
        let pc = &spec.pretrained_cfg;
        assert_eq!(pc.tag.as_deref(), p["tag"].as_str(), "{ctx}: tag");
        assert_eq!(
            serde_json::json!(pc.input_size),
            p["input_size"],
            "{ctx}: input_size"
        );
        assert_eq!(
            pc.fixed_input_size,
            p["fixed_input_size"].as_bool().unwrap(),
            "{ctx}"
        );
        assert_eq!(
            pc.interpolation,
            p["interpolation"].as_str().unwrap(),
            "{ctx}"
        );
        assert_eq!(pc.crop_pct, p["crop_pct"].as_f64().unwrap(), "{ctx}");
        assert_eq!(pc.crop_mode, p["crop_mode"].as_str().unwrap(), "{ctx}");
        assert_eq!(serde_json::json!(pc.mean), p["mean"], "{ctx}: mean");
        assert_eq!(serde_json::json!(pc.std), p["std"], "{ctx}: std");
        assert_eq!(pc.num_classes, p["num_classes"].as_i64().unwrap(), "{ctx}");
    }
    // Every plain name timm registers is in the built-in table, and nothing else.
    let known = timm::vit_names().unwrap();
    assert_eq!(plain, known.len());
    for e in entries
        .iter()
        .filter(|e| e["overrides"].as_object().unwrap().is_empty())
    {
        assert!(known.contains(&e["name"].as_str().unwrap()));
    }
}

#[test]
fn unknown_name_lists_closest_known_names() {
    let err = format!(
        "{:#}",
        timm::from_name("vit_large_patch16_256", &Map::new()).unwrap_err()
    );
    assert!(
        err.contains("vit_large_patch16_256") && err.contains("vit_large_patch16_224"),
        "{err}"
    );
    let err = format!(
        "{:#}",
        timm::from_name("resnet50", &Map::new()).unwrap_err()
    );
    assert!(
        err.contains("unknown timm ViT architecture `resnet50`"),
        "{err}"
    );
}

#[test]
fn overrides_are_validated() {
    let bad: Map<String, Value> = serde_json::from_str(r#"{"qk_norm": true}"#).unwrap();
    let err = format!(
        "{:#}",
        timm::from_name("vit_small_patch16_224", &bad).unwrap_err()
    );
    assert!(
        err.contains("qk_norm") && err.contains("vit_small_patch16_224"),
        "{err}"
    );
    let typo: Map<String, Value> = serde_json::from_str(r#"{"num_head": 4}"#).unwrap();
    let err = format!(
        "{:#}",
        timm::from_name("vit_small_patch16_224", &typo).unwrap_err()
    );
    assert!(err.contains("num_head"), "{err}");
}
