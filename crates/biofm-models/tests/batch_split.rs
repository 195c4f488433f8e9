//! `Model::encode_images` splits a large batch into one slice per compute thread
//! (data parallelism). Its rows must match open_clip's reference outputs for the same
//! images, and the same images encoded one at a time. A separate test binary, because it
//! fixes the process-wide thread count to 2.

use biofm_models::{LoadOptions, Model};
use biofm_preprocess::image::{decode_file, DecodeOptions};
use candle_core::{DType, Device, Tensor};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn split_batch_matches_reference_and_single_images() {
    biofm_kernels::init_threads(Some(2));
    assert_eq!(biofm_kernels::num_threads(), 2);
    let dir = root().join("data/models/tiny-biomedclip");
    let model = Model::load(&dir.display().to_string(), &LoadOptions::from_env(DType::F32, false).unwrap()).unwrap();
    let reference = root().join("crates/biofm-models/tests/fixtures/open_clip/tiny_biomedclip_reference");
    let r = candle_core::safetensors::load(reference.with_extension("safetensors"), &Device::Cpu).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reference.with_extension("json")).unwrap()).unwrap();
    let names: Vec<&str> = meta["images"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let transform = model.image_transform().unwrap();
    let pixels: Vec<Tensor> = names
        .iter()
        .map(|n| {
            let img = decode_file(&root().join("data/samples").join(n), &DecodeOptions::default()).unwrap();
            let t = transform.run(img).unwrap();
            Tensor::from_vec(t.data, t.shape.to_vec(), &Device::Cpu).unwrap()
        })
        .collect();
    // Five images (odd: the two slices differ in size), references repeated to match.
    let order: Vec<usize> = (0..5).map(|i| i % names.len()).collect();
    let batch = Tensor::stack(&order.iter().map(|&i| pixels[i].clone()).collect::<Vec<_>>(), 0).unwrap();
    let expected = Tensor::stack(
        &order.iter().map(|&i| r["image_features"].get(i).unwrap()).collect::<Vec<_>>(),
        0,
    )
    .unwrap();
    let split = model.encode_images(&batch).unwrap();
    let d = max_abs(&split, &expected);
    assert!(d <= 1e-4, "split batch vs open_clip: max abs {d:e}");
    for (row, &i) in order.iter().enumerate() {
        let one = model.encode_images(&pixels[i].unsqueeze(0).unwrap()).unwrap();
        let d = max_abs(&split.get(row).unwrap(), &one.get(0).unwrap());
        assert!(d <= 1e-5, "row {row}: split batch vs single image: max abs {d:e}");
    }
}
