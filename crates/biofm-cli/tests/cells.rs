//! `biofm cells` end to end: scGPT embeddings of real cells into .h5ad / .npy, kNN label
//! transfer with a held-out split, and bad input.

use biofm_formats::anndata::AnnData;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn scgpt() -> PathBuf {
    root().join("crates/biofm-models/tests/fixtures/scgpt")
}

fn pbmc68k() -> PathBuf {
    biofm_testdata::downloaded("scanpy/10x_pbmc68k_reduced.h5ad")
}

fn biofm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_biofm")).args(args).output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "biofm failed:\n{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails_with(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected failure, got success");
    assert!(err.contains(needle), "stderr does not mention `{needle}`:\n{err}");
    assert!(!err.contains("panicked"), "panic:\n{err}");
}

#[test]
fn embed_into_h5ad_matches_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cells.h5ad");
    let model = scgpt().join("tiny");
    let input = scgpt().join("celltypist_40.h5ad");
    let o = biofm(&["cells", "embed", "--model", model.to_str().unwrap(), "--input", input.to_str().unwrap(), "--seed", "1234", "--out", out.to_str().unwrap()]);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("904 of 6534 genes"), "{err}");
    let (dim, got) = AnnData::open(&out).unwrap().obsm("X_scGPT").unwrap();
    assert_eq!(dim, 32);
    let r = candle_core::safetensors::load(scgpt().join("reference.safetensors"), &candle_core::Device::Cpu).unwrap();
    let want = r["celltypist.L1200.emb"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let d = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(d <= 1e-4, "max abs {d:e}");

    // .npy output, one row per cell.
    let npy = dir.path().join("cells.npy");
    ok(&biofm(&["-q", "cells", "embed", "--model", model.to_str().unwrap(), "--input", input.to_str().unwrap(), "--seed", "1234", "--out", npy.to_str().unwrap()]));
    let (shape, data) = biofm_formats::npy::read_f32(&npy).unwrap();
    assert_eq!(shape, vec![40, 32]);
    assert_eq!(data, got);
}

#[test]
fn annotate_a_held_out_split_of_pbmc68k() {
    let model = scgpt().join("tiny");
    let o = biofm(&[
        "-q", "cells", "annotate", "--model", model.to_str().unwrap(), "--reference", pbmc68k().to_str().unwrap(), "--raw",
        "--label-col", "bulk_labels", "--split", "0.3", "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(v["query_cells"], 210);
    assert_eq!(v["reference_cells"], 490);
    let acc = v["accuracy"].as_f64().unwrap();
    let f1 = v["macro_f1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc) && (0.0..=1.0).contains(&f1));
    let counts: u64 = v["predicted_counts"].as_object().unwrap().values().map(|c| c.as_u64().unwrap()).sum();
    assert_eq!(counts, 210);
}

#[test]
fn bad_cell_inputs_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let model = scgpt().join("tiny");
    let m = model.to_str().unwrap();
    let not_h5 = dir.path().join("counts.h5ad");
    std::fs::write(&not_h5, "gene,cell\n").unwrap();
    let out = dir.path().join("o.npy");
    let o = out.to_str().unwrap();
    fails_with(&biofm(&["cells", "embed", "--model", m, "--input", not_h5.to_str().unwrap(), "--out", o]), "not an HDF5 file");
    let p = pbmc68k();
    let p = p.to_str().unwrap();
    fails_with(&biofm(&["cells", "embed", "--model", m, "--input", p, "--gene-col", "symbol", "--out", o]), "no column `symbol`");
    fails_with(&biofm(&["cells", "embed", "--model", m, "--input", p, "--gene-col", "means", "--out", o]), "none of the 765 genes");
    fails_with(&biofm(&["cells", "embed", "--model", m, "--input", p, "--layer", "counts", "--out", o]), "no layers[\"counts\"]");
    fails_with(&biofm(&["cells", "embed", "--model", m, "--input", p, "--out", dir.path().join("o.txt").to_str().unwrap()]), ".txt");
    fails_with(&biofm(&["cells", "embed", "--model", dir.path().to_str().unwrap(), "--input", p, "--out", o]), "args.json");
    fails_with(&biofm(&["cells", "annotate", "--model", m, "--reference", p, "--label-col", "cell_type", "--split", "0.3"]), "no column `cell_type`");
    fails_with(&biofm(&["cells", "annotate", "--model", m, "--reference", p, "--label-col", "bulk_labels", "--split", "1.5"]), "--split");
    assert!(!out.exists(), "nothing written on failure");
}
