//! scGPT against the reference `scgpt` 0.2.4 package (tools/reference/gen_scgpt_fixtures.py):
//! a tiny random-weight checkpoint in the published folder layout, fed the exact
//! collated inputs (gene ids, binned values) the reference built from real cells
//! (pbmc68k_reduced `raw.X`, celltypist raw counts); f32 outputs within 1e-4.

use biofm_models::scgpt::ScGpt;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scgpt")
}

fn reference() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join("reference.safetensors"), &Device::Cpu).unwrap()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn check_model(model: &ScGpt, r: &HashMap<String, Tensor>) {
    let mut worst = 0f32;
    let runs: Vec<&str> = ["pbmc68k.L1200", "pbmc68k.L64", "celltypist.L1200", "celltypist.L64"]
        .into_iter()
        .filter(|run| r.contains_key(&format!("{run}.cls")))
        .collect();
    assert!(!runs.is_empty(), "no reference runs");
    for run in runs {
        let cls = &r[&format!("{run}.cls")];
        let emb = &r[&format!("{run}.emb")];
        let mut row = 0;
        for batch in 0.. {
            let Some(genes) = r.get(&format!("{run}.batch{batch}.gene")) else { break };
            let expr = &r[&format!("{run}.batch{batch}.expr")];
            let mask = r[&format!("{run}.batch{batch}.padding_mask")].to_dtype(DType::U32).unwrap();
            let genes = genes.to_dtype(DType::I64).unwrap().to_dtype(DType::U32).unwrap();
            // The padding mask the reference used is exactly `gene == <pad>`.
            let pad = genes.eq(model.vocab.pad_id).unwrap().to_dtype(DType::U32).unwrap();
            assert_eq!(pad.to_vec2::<u32>().unwrap(), mask.to_vec2::<u32>().unwrap(), "{run} batch {batch}");
            let b = genes.dim(0).unwrap();
            let out = model.cell_embeddings(&genes, expr).unwrap();
            let d = max_abs(&out, &cls.narrow(0, row, b).unwrap());
            assert!(d <= 1e-4, "{run} batch {batch}: cls max abs {d:e}");
            let n = out.broadcast_div(&out.sqr().unwrap().sum_keepdim(1).unwrap().sqrt().unwrap()).unwrap();
            let dn = max_abs(&n, &emb.narrow(0, row, b).unwrap());
            assert!(dn <= 1e-4, "{run} batch {batch}: normalised max abs {dn:e}");
            if let Some(first2) = r.get(&format!("{run}.batch{batch}.output_first2")) {
                let full = model.encode(&genes.narrow(0, 0, 2).unwrap(), &expr.narrow(0, 0, 2).unwrap()).unwrap();
                let df = max_abs(&full, first2);
                assert!(df <= 1e-4, "{run} batch {batch}: full encoder output max abs {df:e}");
            }
            worst = worst.max(d).max(dn);
            row += b;
        }
        assert_eq!(row, cls.dim(0).unwrap(), "{run}: every cell compared");
    }
    eprintln!("scGPT: worst max abs difference {worst:e}");
}

#[test]
fn tiny_scgpt_matches_reference() {
    let model = ScGpt::load(&fixtures().join("tiny"), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(model.vocab.len(), 1030);
    assert_eq!((model.vocab.pad_id, model.vocab.cls_id), (1027, 1028));
    check_model(&model, &reference());
}

#[test]
fn flash_attention_key_names_load_the_same_model() {
    let dir = fixtures().join("tiny");
    let model = ScGpt::load_with_weights(&dir, Some(&dir.join("best_model_flash_keys.pt")), DType::F32, &Device::Cpu).unwrap();
    check_model(&model, &reference());
}

#[test]
fn bad_checkpoint_folders_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let e = format!("{:#}", ScGpt::load(tmp.path(), DType::F32, &Device::Cpu).err().unwrap());
    assert!(e.contains("args.json"), "{e}");

    // args.json that disagrees with the weights: one layer too many.
    let src = fixtures().join("tiny");
    for f in ["best_model.pt", "vocab.json"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    let mut args: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(src.join("args.json")).unwrap()).unwrap();
    args["nlayers"] = 3.into();
    std::fs::write(tmp.path().join("args.json"), args.to_string()).unwrap();
    let e = format!("{:#}", ScGpt::load(tmp.path(), DType::F32, &Device::Cpu).err().unwrap());
    assert!(e.contains("transformer_encoder.layers.2"), "{e}");

    // Wrong width: the error names a key and both shapes.
    args["nlayers"] = 2.into();
    args["embsize"] = 64.into();
    std::fs::write(tmp.path().join("args.json"), args.to_string()).unwrap();
    let e = format!("{:#}", ScGpt::load(tmp.path(), DType::F32, &Device::Cpu).err().unwrap());
    assert!(e.contains("encoder.embedding.weight") && e.contains("64") && e.contains("32"), "{e}");

    // Missing vocabulary.
    std::fs::remove_file(tmp.path().join("vocab.json")).unwrap();
    let e = format!("{:#}", ScGpt::load(tmp.path(), DType::F32, &Device::Cpu).err().unwrap());
    assert!(e.contains("vocab.json"), "{e}");
}

/// The full-size configuration (12 layers, d 512, the 60,694-gene census vocabulary),
/// random weights, all 700 pbmc68k cells: written by
/// `gen_scgpt_fixtures.py --full DIR` (~210 MB, not committed). Run with
/// `BIOFM_FULL_SCGPT=DIR cargo test --release -p biofm-models --test scgpt_parity -- --ignored`.
#[test]
#[ignore]
fn full_size_scgpt_matches_reference() {
    let dir = PathBuf::from(std::env::var("BIOFM_FULL_SCGPT").expect("set BIOFM_FULL_SCGPT to the --full folder"));
    let model = ScGpt::load(&dir, DType::F32, &Device::Cpu).unwrap();
    let r = candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu).unwrap();
    check_model(&model, &r);
}
