//! The registry's patch-encoder contracts (UNI, UNI2-h): they resolve to the networks
//! the model cards describe, their preprocessing is the reference's, and weights that
//! do not fit say which tensor and shapes differ.

use biofm_models::registry;
use biofm_models::{timm, LoadOptions, Model};
use biofm_preprocess::image::{Image, Mode, Pixels};
use candle_core::DType;
use std::path::Path;

fn contract(name: &str) -> registry::PatchEncoderContract {
    registry::find(name).unwrap().unwrap().patch_encoder.unwrap()
}

#[test]
fn uni_resolves_to_vit_large_with_layerscale() {
    let c = contract("uni");
    let spec = timm::from_name(&c.architecture, &c.timm_kwargs).unwrap();
    let v = &spec.config;
    assert_eq!((v.embed_dim, v.depth, v.num_heads, v.patch_size), (1024, 24, 16, (16, 16)));
    assert!(v.uses_layer_scale() && v.dynamic_img_size && v.num_classes == 0);
    assert_eq!(v.mlp_hidden_features(), 4096);
    assert_eq!(v.pos_embed_len(), 197);
    assert_eq!(c.embedding_dim, v.embed_dim);
    assert_eq!((c.patch_size, c.magnification), (256, 20.0));
}

#[test]
fn uni2h_resolves_to_the_model_card_network() {
    let c = contract("uni2-h");
    let spec = timm::from_name(&c.architecture, &c.timm_kwargs).unwrap();
    let v = &spec.config;
    assert_eq!((v.embed_dim, v.depth, v.num_heads, v.patch_size), (1536, 24, 24, (14, 14)));
    // SwiGLU-packed MLP: fc1 [8192, 1536], gated half-width 4096 into fc2.
    assert_eq!(v.mlp_hidden_features(), 8192);
    assert!(v.no_embed_class && v.reg_tokens == 8 && v.uses_layer_scale());
    assert_eq!(v.num_prefix_tokens(), 9);
    assert_eq!(v.pos_embed_len(), 256);
    assert_eq!(c.embedding_dim, 1536);
}

#[test]
fn contract_transform_is_resize_crop_normalise_at_224() {
    for name in ["uni", "uni2-h"] {
        let t = contract(name).transform;
        // A 256 px patch (as cut at 20x) becomes a 3 x 224 x 224 ImageNet-normalised tensor.
        let img = Image::new(256, 256, Mode::RGB, Pixels::U8(vec![128; 256 * 256 * 3])).unwrap();
        let out = t.run(img).unwrap();
        assert_eq!(out.shape, [3, 224, 224]);
        let want = (128.0 / 255.0 - 0.485) / 0.229;
        assert!((out.data[0] - want).abs() < 1e-5, "{name}: {}", out.data[0]);
    }
}

#[test]
fn weights_of_another_size_name_the_tensor_and_shapes() {
    // A tiny UNI-architecture checkpoint given as UNI's bare weights file: the contract
    // builds ViT-L, so the first tensor that differs is reported.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../biofm-pipelines/tests/fixtures/wsi_features/model/model.safetensors");
    let opts = LoadOptions::from_env(DType::F32, false).unwrap();
    let e = format!("{:#}", Model::load_patch_encoder("uni", Some(&file), &opts).err().expect("must fail"));
    assert!(e.contains("model.safetensors") && e.contains("1024") && e.contains("48"), "{e}");
    // A model without a contract cannot take --weights; names without one are listed.
    let e = format!("{:#}", Model::load_patch_encoder("biomedclip", Some(&file), &opts).err().expect("must fail"));
    assert!(e.contains("uni") && e.contains("uni2-h"), "{e}");
    let e = format!("{:#}", Model::load_patch_encoder("uni", Some(Path::new("/nonexistent/uni.bin")), &opts).err().expect("must fail"));
    assert!(e.contains("no such file"), "{e}");
}

#[test]
fn any_image_model_folder_is_a_patch_encoder_with_its_own_preprocessing() {
    let opts = LoadOptions::from_env(DType::F32, false).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // A timm hub folder: its pretrained config's transform, 256 px at 20x by default.
    let timm_dir = root.join("crates/biofm-models/tests/fixtures/timm/vit_plain");
    let e = Model::load_patch_encoder(&timm_dir.display().to_string(), None, &opts).unwrap();
    assert!(e.contract.is_none());
    assert_eq!((e.patch_size, e.magnification, e.embedding_dim()), (256, 20.0, 48));
    assert_eq!(&e.transform, e.model.image_transform().unwrap());
    // An open_clip folder (BiomedCLIP architecture): the image tower's projection.
    let clip_dir = root.join("data/models/tiny-biomedclip");
    let e = Model::load_patch_encoder(&clip_dir.display().to_string(), None, &opts).unwrap();
    assert!(e.embedding_dim() > 0);
    let img = Image::new(256, 256, Mode::RGB, Pixels::U8(vec![90; 256 * 256 * 3])).unwrap();
    let t = e.transform.run(img).unwrap();
    let x = candle_core::Tensor::from_vec(t.data, t.shape.to_vec(), &candle_core::Device::Cpu).unwrap().unsqueeze(0).unwrap();
    assert_eq!(e.model.encode_images(&x).unwrap().dims(), &[1, e.embedding_dim()]);
    // A text-only model is refused with a reason.
    let st = root.join("crates/biofm-models/tests/fixtures/text/tiny_st");
    let err = format!("{:#}", Model::load_patch_encoder(&st.display().to_string(), None, &opts).err().expect("text model"));
    assert!(err.contains("no image encoder"), "{err}");
}
