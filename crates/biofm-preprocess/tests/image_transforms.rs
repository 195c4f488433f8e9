//! The eval pipelines against open_clip 3.3 / timm 1.0.31 / torchvision 0.29 on Pillow 13:
//! the uint8 image handed to `ToTensor` must be identical, the final float32 tensor
//! within 1e-6. Real full-size samples and the whole decode zoo go through every pipeline.

mod image_common;

use biofm_preprocess::image::{
    decode_file, open_clip_eval, timm_eval, DecodeOptions, Filter, ResizeMode, TimmCropMode,
    TransformConfig,
};
use image_common::{assert_no_failures, input_path, load};
use serde_json::Value;

fn f32x3(v: &Value) -> [f32; 3] {
    let a = v.as_array().unwrap();
    [0, 1, 2].map(|i| a[i].as_f64().unwrap() as f32)
}

fn filter(name: &str) -> Filter {
    match name {
        "bilinear" => Filter::Bilinear,
        "bicubic" => Filter::Bicubic,
        other => panic!("unexpected interpolation {other}"),
    }
}

/// Build the pipeline the generator ran, from its recorded parameters.
fn pipeline(p: &Value) -> TransformConfig {
    let size = p["size"].as_u64().unwrap() as u32;
    let (mean, std) = (f32x3(&p["mean"]), f32x3(&p["std"]));
    let interp = filter(p["interpolation"].as_str().unwrap());
    match p["kind"].as_str().unwrap() {
        "open_clip" => {
            let mode = match p["resize_mode"].as_str().unwrap() {
                "shortest" => ResizeMode::Shortest,
                "longest" => ResizeMode::Longest,
                "squash" => ResizeMode::Squash,
                other => panic!("resize_mode {other}"),
            };
            open_clip_eval(size, interp, mode, mean, std)
        }
        "timm" => {
            let mode = match p["crop_mode"].as_str().unwrap() {
                "center" => TimmCropMode::Center,
                "squash" => TimmCropMode::Squash,
                "border" => TimmCropMode::Border,
                other => panic!("crop_mode {other}"),
            };
            timm_eval(size, p["crop_pct"].as_f64(), mode, interp, mean, std)
        }
        other => panic!("pipeline kind {other}"),
    }
}

#[test]
fn eval_transforms_match_reference() {
    let fx = load();
    let pipelines = fx.manifest["pipelines"].as_object().unwrap();
    let mut failures = Vec::new();
    let mut worst = 0.0f32;
    let cases = fx.list("transforms");
    for case in cases {
        let input = case["input"].as_str().unwrap();
        let name = case["pipeline"].as_str().unwrap();
        let cfg = pipeline(&pipelines[name]);
        let img = decode_file(input_path(input), &DecodeOptions::default()).expect("decode");
        let label = format!("{input} [{name}]");
        let prepared = match cfg.prepare(img.clone()) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{label}: {e}"));
                continue;
            }
        };
        let (w, h) = prepared.size();
        if let Err(e) = fx.compare(
            &case["u8"],
            &[h as usize, w as usize, 3],
            &prepared.to_le_bytes(),
        ) {
            failures.push(format!("{label}: uint8 image: {e}"));
        }
        if let Some(rows) = case["f32_rows"].as_array() {
            let t = cfg.run(img).expect("run");
            let [c, th, tw] = t.shape;
            let rows: Vec<usize> = rows.iter().map(|r| r.as_u64().unwrap() as usize).collect();
            let picked: Vec<f32> = (0..c)
                .flat_map(|ch| rows.iter().map(move |&r| (ch, r)))
                .flat_map(|(ch, r)| t.data[(ch * th + r) * tw..(ch * th + r + 1) * tw].to_vec())
                .collect();
            match fx.compare_f32(&case["f32"], &[c, rows.len(), tw], &picked, 1e-6) {
                Ok(d) => worst = worst.max(d),
                Err(e) => failures.push(format!("{label}: float32 tensor: {e}")),
            }
        }
    }
    println!("max abs diff of the float32 tensors: {worst:e}");
    assert_no_failures("transform", cases.len(), &failures);
}

#[test]
fn pipeline_config_deserialises_from_json() {
    let json = r#"{"ops": [
        {"op": "convert_rgb"},
        {"op": "resize", "size": {"shortest": 224}, "filter": "bilinear"},
        {"op": "center_crop", "height": 224, "width": 224},
        {"op": "to_tensor_normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    ]}"#;
    let cfg: TransformConfig = serde_json::from_str(json).unwrap();
    let uni = timm_eval(
        224,
        Some(1.0),
        TimmCropMode::Center,
        Filter::Bilinear,
        [0.485, 0.456, 0.406],
        [0.229, 0.224, 0.225],
    );
    assert_eq!(cfg, uni);
    let img = decode_file(input_path("sample:ihc.png"), &DecodeOptions::default()).unwrap();
    let t = cfg.run(img).unwrap();
    assert_eq!(t.shape, [3, 224, 224]);
    assert_eq!(t.data.len(), 3 * 224 * 224);
}

#[test]
fn to_tensor_needs_rgb_and_comes_last() {
    let img = decode_file(input_path("sample:cell.png"), &DecodeOptions::default()).unwrap();
    let no_convert: TransformConfig = serde_json::from_str(
        r#"{"ops": [{"op": "to_tensor_normalize", "mean": [0, 0, 0], "std": [1, 1, 1]}]}"#,
    )
    .unwrap();
    let err = no_convert.run(img.clone()).unwrap_err();
    assert!(
        err.to_string().contains("needs an RGB image, got mode L"),
        "{err}"
    );
    let misplaced: TransformConfig = serde_json::from_str(
        r#"{"ops": [{"op": "to_tensor_normalize", "mean": [0, 0, 0], "std": [1, 1, 1]}, {"op": "convert_rgb"}]}"#,
    )
    .unwrap();
    assert!(misplaced.run(img).is_err());
}
