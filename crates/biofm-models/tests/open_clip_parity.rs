//! BiomedCLIP-architecture open_clip models against open_clip 3.3.0's own outputs
//! (written by tools/reference/gen_openclip_fixtures.py) on real images and prompts.
//!
//! * tiny: the committed demo model `data/models/tiny-biomedclip` (random weights);
//! * full size (ignored by default; 784 MB): set `BIOFM_FULL_BIOMEDCLIP` to the folder
//!   written by `gen_openclip_fixtures.py --full DIR` and run with `--ignored`.

use biofm_models::open_clip::{self, OpenClip};
use biofm_preprocess::image::{decode_file, DecodeOptions};
use biofm_preprocess::text::Padding;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const TOL: f32 = 1e-4;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load_reference(path: &Path) -> (HashMap<String, Tensor>, serde_json::Value) {
    let tensors = candle_core::safetensors::load(path.with_extension("safetensors"), &Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e} (regenerate with tools/reference/gen_openclip_fixtures.py)", path.display()));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path.with_extension("json")).unwrap()).unwrap();
    (tensors, meta)
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn argmax_rows(t: &Tensor) -> Vec<u32> {
    t.argmax(1).unwrap().to_vec1::<u32>().unwrap()
}

fn check(model_dir: &Path, reference: &Path) {
    let (r, meta) = load_reference(reference);
    let model = OpenClip::load(&model_dir.to_path_buf(), DType::F32, &Device::Cpu, None).unwrap();
    let mut report = Vec::new();

    // Images: decode + open_clip preprocessing + image tower.
    let mut pixels = Vec::new();
    for name in meta["images"].as_array().unwrap() {
        let path = root().join("data/samples").join(name.as_str().unwrap());
        let img = decode_file(&path, &DecodeOptions::default()).unwrap();
        let t = model.transform().run(img).unwrap();
        pixels.push(Tensor::from_vec(t.data, t.shape.to_vec(), &Device::Cpu).unwrap());
    }
    let pixels = Tensor::stack(&pixels, 0).unwrap();
    let img = model.encode_image(&pixels).unwrap();
    let d = max_abs(&img, &r["image_features"]);
    report.push(("image_features", d));
    let img_n = open_clip::normalize(&img).unwrap();
    report.push(("image_embeddings", max_abs(&img_n, &r["image_embeddings"])));

    // Texts: cleaning + tokenisation (exact ids, padded to the context as open_clip does).
    let prompts: Vec<String> = meta["prompts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
    let enc = model.tokenize(&prompts, Padding::MaxLength).unwrap();
    let ref_ids: Vec<u32> = r["token_ids"].to_dtype(DType::I64).unwrap().flatten_all().unwrap().to_vec1::<i64>().unwrap()
        .into_iter().map(|x| x as u32).collect();
    assert_eq!(enc.ids, ref_ids, "token ids differ from open_clip's");
    let last = enc.truncated.len() - 1;
    assert!(enc.truncated[last], "the long prompt must be reported as truncated");
    assert!(enc.truncated[..last].iter().all(|t| !t));

    let txt_full = model.encode_tokens(&enc).unwrap();
    report.push(("text_features (padded to context)", max_abs(&txt_full, &r["text_features"])));
    let (txt, truncated) = model.encode_text(&prompts).unwrap();
    assert_eq!(truncated, enc.truncated);
    report.push(("text_features (dynamic padding)", max_abs(&txt, &r["text_features"])));
    let txt_n = open_clip::normalize(&txt).unwrap();
    report.push(("text_embeddings", max_abs(&txt_n, &r["text_embeddings"])));

    // Zero-shot: classifier from class names x templates, then probabilities.
    let labels: Vec<String> = meta["labels"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
    let templates: Vec<String> = meta["templates"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
    let encode = |t: &[String]| model.encode_text(t).map(|(e, _)| e);
    let cls = open_clip::zero_shot_classifier(&encode, &labels, &templates).unwrap();
    report.push(("zero_shot_classifier", max_abs(&cls, &r["zero_shot_classifier"])));
    let scale = r["logit_scale"].to_vec1::<f32>().unwrap()[0];
    assert!((model.logit_scale() - scale).abs() < 1e-6);
    let probs = open_clip::zero_shot_probs(&img_n, &cls, model.logit_scale(), model.logit_bias()).unwrap();
    report.push(("zero_shot_probs", max_abs(&probs, &r["zero_shot_probs"])));
    assert_eq!(argmax_rows(&probs), argmax_rows(&r["zero_shot_probs"]), "zero-shot top-1 differs");

    for (what, d) in &report {
        println!("{:<36} max abs diff {d:.3e}", what);
    }
    for (what, d) in report {
        assert!(d <= TOL, "{what}: max abs diff {d:e} > {TOL:e}");
    }
}

#[test]
fn tiny_biomedclip_matches_open_clip() {
    check(
        &root().join("data/models/tiny-biomedclip"),
        &root().join("crates/biofm-models/tests/fixtures/open_clip/tiny_biomedclip_reference"),
    );
}

#[test]
#[ignore = "needs the 784 MB full-size model: BIOFM_FULL_BIOMEDCLIP=DIR (gen_openclip_fixtures.py --full DIR)"]
fn full_size_biomedclip_matches_open_clip() {
    let dir = PathBuf::from(std::env::var("BIOFM_FULL_BIOMEDCLIP").expect("set BIOFM_FULL_BIOMEDCLIP"));
    check(&dir, &dir.join("reference"));
}

/// Reduced precision is compared by cosine similarity with the f32 reference.
#[test]
fn tiny_biomedclip_reduced_precision_by_cosine() {
    let (r, meta) = load_reference(&root().join("crates/biofm-models/tests/fixtures/open_clip/tiny_biomedclip_reference"));
    let dir = root().join("data/models/tiny-biomedclip");
    for (dtype, min_cos) in [(DType::BF16, 0.999f32), (DType::F16, 0.9999)] {
        let model = OpenClip::load(&dir, dtype, &Device::Cpu, None).unwrap();
        let mut pixels = Vec::new();
        for name in meta["images"].as_array().unwrap() {
            let img = decode_file(&root().join("data/samples").join(name.as_str().unwrap()), &DecodeOptions::default()).unwrap();
            let t = model.transform().run(img).unwrap();
            pixels.push(Tensor::from_vec(t.data, t.shape.to_vec(), &Device::Cpu).unwrap());
        }
        let img = open_clip::normalize(&model.encode_image(&Tensor::stack(&pixels, 0).unwrap()).unwrap()).unwrap();
        let prompts: Vec<String> = meta["prompts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
        let txt = open_clip::normalize(&model.encode_text(&prompts).unwrap().0).unwrap();
        for (got, want) in [(img, &r["image_embeddings"]), (txt, &r["text_embeddings"])] {
            let cos = (got * want).unwrap().sum(1).unwrap().to_vec1::<f32>().unwrap();
            let worst = cos.iter().copied().fold(1.0f32, f32::min);
            println!("{dtype:?}: worst cosine {worst:.6}");
            assert!(worst >= min_cos, "{dtype:?}: cosine {worst} < {min_cos}");
        }
    }
}
