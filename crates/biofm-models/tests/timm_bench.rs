//! Timing of a full-size `vit_base_patch16_224` built from its timm name with random
//! weights (ignored by default; parity at full size is checked through the CLI bench):
//!
//! `cargo test --release -p biofm-models --test timm_bench -- --ignored --nocapture`

mod timm_common;

use biofm_models::timm;
use biofm_nn::vit::VitConfig;
use biofm_weights::Weights;
use candle_core::{DType, Device, Tensor};
use serde_json::Map;
use std::collections::HashMap;
use std::time::Instant;

/// timm's `state_dict()` keys and shapes for a plain (no LayerScale, no registers,
/// class-token, no pre-norm) ViT.
fn timm_state_dict_shapes(c: &VitConfig) -> Vec<(String, Vec<usize>)> {
    let (d, h) = (c.embed_dim, c.mlp_hidden_features());
    let mut s = vec![
        (
            "patch_embed.proj.weight".to_string(),
            vec![d, c.in_chans, c.patch_size.0, c.patch_size.1],
        ),
        ("patch_embed.proj.bias".to_string(), vec![d]),
        ("cls_token".to_string(), vec![1, 1, d]),
        ("pos_embed".to_string(), vec![1, c.pos_embed_len(), d]),
        ("norm.weight".to_string(), vec![d]),
        ("norm.bias".to_string(), vec![d]),
        ("head.weight".to_string(), vec![c.num_classes, d]),
        ("head.bias".to_string(), vec![c.num_classes]),
    ];
    for i in 0..c.depth {
        for (name, shape) in [
            ("norm1.weight", vec![d]),
            ("norm1.bias", vec![d]),
            ("attn.qkv.weight", vec![3 * d, d]),
            ("attn.qkv.bias", vec![3 * d]),
            ("attn.proj.weight", vec![d, d]),
            ("attn.proj.bias", vec![d]),
            ("norm2.weight", vec![d]),
            ("norm2.bias", vec![d]),
            ("mlp.fc1.weight", vec![h, d]),
            ("mlp.fc1.bias", vec![h]),
            ("mlp.fc2.weight", vec![d, h]),
            ("mlp.fc2.bias", vec![d]),
        ] {
            s.push((format!("blocks.{i}.{name}"), shape));
        }
    }
    s
}

#[test]
#[ignore = "full-size timing run; use --ignored --nocapture"]
fn vit_base_patch16_224_random_weights() {
    biofm_kernels::init_threads(None);
    let spec = timm::from_name("vit_base_patch16_224", &Map::new()).unwrap();
    let path = timm_common::scratch_dir("vit_base_bench").join("model.safetensors");
    {
        let tensors: HashMap<String, Tensor> = timm_state_dict_shapes(&spec.config)
            .into_iter()
            .map(|(k, shape)| (k, Tensor::randn(0f32, 0.02, shape, &Device::Cpu).unwrap()))
            .collect();
        candle_core::safetensors::save(&tensors, &path).unwrap();
    }
    let weights = Weights::open(&path).unwrap();
    let t0 = Instant::now();
    let model = spec.build(&weights.view(DType::F32, &Device::Cpu)).unwrap();
    weights.check_unused(&[]).unwrap();
    println!(
        "vit_base_patch16_224: built in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    for batch in [1usize, 8] {
        let x = Tensor::randn(0f32, 1.0, (batch, 3, 224, 224), &Device::Cpu).unwrap();
        let out = model.forward(&x).unwrap();
        assert_eq!(out.dims(), &[batch, 1000]);
        let iters = 3;
        let t = Instant::now();
        for _ in 0..iters {
            model.forward(&x).unwrap();
        }
        let per_batch = t.elapsed().as_secs_f64() / iters as f64;
        println!(
            "batch {batch}: {:.3} s/batch, {:.2} img/s",
            per_batch,
            batch as f64 / per_batch
        );
    }
}
