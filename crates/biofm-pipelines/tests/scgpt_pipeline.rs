//! scGPT's input pipeline and the whole `embed_cells` route against the reference
//! (`scgpt` 0.2.4 `embed_data` route after `np.random.seed(1234); torch.manual_seed(1234)`,
//! tools/reference/gen_scgpt_fixtures.py) on real cells: scanpy's pbmc68k_reduced
//! (`raw.X`, every 7th cell) and 40 cells of celltypist's raw-count sample.

use biofm_formats::anndata::{AnnData, MatrixSource};
use biofm_models::scgpt::ScGpt;
use biofm_pipelines::cells::{cell_tokens, classification_scores, embed_cells, knn_transfer, CellEmbedOptions};
use biofm_preprocess::cells::{bin_edges, digitize, CellCollator, CellRng, CellTokens, Mt19937};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const SEED: u32 = 1234;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../biofm-models/tests/fixtures/scgpt")
}

fn reference() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join("reference.safetensors"), &Device::Cpu).unwrap()
}

fn model() -> ScGpt {
    ScGpt::load(&fixtures().join("tiny"), DType::F32, &Device::Cpu).unwrap()
}

fn pbmc68k() -> PathBuf {
    biofm_testdata::downloaded("scanpy/10x_pbmc68k_reduced.h5ad")
}

fn v<T: candle_core::WithDType>(t: &Tensor) -> Vec<T> {
    t.flatten_all().unwrap().to_vec1::<T>().unwrap()
}

#[test]
fn binning_and_random_draws_equal_numpy() {
    let r = reference();
    for ds in ["pbmc68k", "celltypist"] {
        let values: Vec<f32> = v(&r[&format!("{ds}.values")]);
        let offsets: Vec<i64> = v(&r[&format!("{ds}.offsets")]);
        let bins: Vec<f64> = v(&r[&format!("{ds}.bins")]);
        let left: Vec<u8> = v(&r[&format!("{ds}.left")]);
        let right: Vec<u8> = v(&r[&format!("{ds}.right")]);
        let rand: Vec<f64> = v(&r[&format!("{ds}.rand")]);
        let mut rng = Mt19937::new(SEED);
        let mut ties = 0;
        for c in 0..offsets.len() - 1 {
            let (a, b) = (offsets[c] as usize, offsets[c + 1] as usize);
            let edges = bin_edges(&values[a..b], 51);
            assert_eq!(edges, bins[c * 50..(c + 1) * 50], "{ds} cell {c}: bin edges");
            for i in a..b {
                assert_eq!(digitize(values[i] as f64, &edges, false), left[i] as i64, "{ds} value {i}: left");
                assert_eq!(digitize(values[i] as f64, &edges, true), right[i] as i64, "{ds} value {i}: right");
                assert_eq!(rng.next_f64(), rand[i], "{ds} draw {i}");
                ties += (left[i] != right[i]) as usize;
            }
        }
        assert!(ties > 1000, "{ds}: the fixture must exercise tie-breaking ({ties} ties)");
    }
}

#[test]
fn collated_batches_equal_the_reference() {
    let r = reference();
    let model = model();
    let ad = AnnData::open(&pbmc68k()).unwrap();
    let genes = ad.gene_names(&MatrixSource::Raw).unwrap();
    let ids: Vec<Option<u32>> = genes.iter().map(|g| model.vocab.get(g)).collect();
    let rows: Vec<i32> = v(&r["pbmc68k.cell_rows"]);
    let m = ad.matrix(&MatrixSource::Raw).unwrap();
    let cells: Vec<CellTokens> = rows
        .iter()
        .map(|&row| {
            let block = m.read_rows(row as usize..row as usize + 1).unwrap();
            let (cols, vals) = block.row(0);
            cell_tokens(&model, &ids, cols, vals)
        })
        .collect();
    for max_length in [1200, 64] {
        let run = format!("pbmc68k.L{max_length}");
        let collator = CellCollator { pad_id: model.vocab.pad_id, pad_value: -2.0, n_bins: 51, max_length };
        let mut rng = CellRng::new(SEED);
        for (b, chunk) in cells.chunks(64).enumerate() {
            let batch = collator.collate(chunk.to_vec(), &mut rng);
            let want_genes: Vec<u32> = v::<i32>(&r[&format!("{run}.batch{b}.gene")]).into_iter().map(|g| g as u32).collect();
            let want_expr: Vec<f32> = v(&r[&format!("{run}.batch{b}.expr")]);
            assert_eq!(batch.genes, want_genes, "{run} batch {b}: gene ids");
            assert_eq!(batch.values, want_expr, "{run} batch {b}: binned values");
        }
    }
}

#[test]
fn embed_cells_matches_the_reference_end_to_end() {
    let r = reference();
    let model = model();
    let ad = AnnData::open(&fixtures().join("celltypist_40.h5ad")).unwrap();
    // Batch size 8: cells are regrouped by length into five batches; the draws and the
    // results must not change.
    for (max_length, batch_size) in [(1200, 64), (64, 64), (1200, 8), (64, 3)] {
        let opts = CellEmbedOptions { max_length, seed: SEED, batch_size, ..Default::default() };
        let e = embed_cells(&model, &ad, &opts).unwrap();
        assert_eq!(e.genes_matched, 904);
        assert_eq!(e.subsampled_cells, if max_length == 64 { 40 } else { 0 });
        let got = Tensor::from_vec(e.data, (40, e.dim), &Device::Cpu).unwrap();
        let want = &r[&format!("celltypist.L{max_length}.emb")];
        let d = (got - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(d <= 1e-4, "celltypist L{max_length} batch {batch_size}: max abs {d:e}");
        eprintln!("celltypist L{max_length} batch {batch_size}: max abs {d:e}");
    }
    // Another seed changes the tie-breaking, so the embeddings move (a little).
    let other = embed_cells(&model, &ad, &CellEmbedOptions { seed: 7, ..Default::default() }).unwrap();
    let want: Vec<f32> = v(&r["celltypist.L1200.emb"]);
    assert_ne!(other.data, want);
}

#[test]
fn bad_gene_names_are_clear_errors() {
    let model = model();
    let ad = AnnData::open(&fixtures().join("celltypist_40.h5ad")).unwrap();
    let e = embed_cells(&model, &ad, &CellEmbedOptions { gene_col: Some("no_such".into()), ..Default::default() })
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no column `no_such`"), "{e}");
    // pbmc68k's X is scaled (negative values); its var column `n_counts` holds numbers,
    // none of which is a gene symbol.
    let ad = AnnData::open(&pbmc68k()).unwrap();
    let e = embed_cells(&model, &ad, &CellEmbedOptions { gene_col: Some("n_counts".into()), ..Default::default() })
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("none of the 765 genes") && e.contains("--gene-col"), "{e}");
    let e = embed_cells(&model, &ad, &CellEmbedOptions { max_length: 1, ..Default::default() }).err().unwrap().to_string();
    assert!(e.contains("max length"), "{e}");
    // Scaled X is embedded (as the reference would) but counted as negative.
    let opts = CellEmbedOptions { batch_size: 128, ..Default::default() };
    let scaled = embed_cells(&model, &ad, &opts).unwrap();
    assert_eq!(scaled.cells_with_negative_values, 700);
}

#[test]
fn knn_transfer_and_scores() {
    // Two well separated groups; the query point near group "b".
    let reference = [1.0, 0.0, 0.9, 0.1, 0.0, 1.0, 0.1, 0.9, 0.2, 0.8];
    let labels: Vec<String> = ["a", "a", "b", "b", "b"].iter().map(|s| s.to_string()).collect();
    let t = knn_transfer(&reference, &labels, &[0.05, 1.0, 1.0, 0.02], 2, 3).unwrap();
    assert_eq!(t.labels, vec!["b".to_string(), "a".to_string()]);
    assert_eq!(t.confidence, vec![1.0, 2.0 / 3.0]);
    // scikit-learn: f1_score(["x","x","y","z"], ["x","y","y","y"], average="macro")
    // = mean(F1_x = 2/3, F1_y = 1/2, F1_z = 0) = 0.3888...
    let truth: Vec<String> = ["x", "x", "y", "z"].iter().map(|s| s.to_string()).collect();
    let pred: Vec<String> = ["x", "y", "y", "y"].iter().map(|s| s.to_string()).collect();
    let s = classification_scores(&truth, &pred).unwrap();
    assert!((s.accuracy - 0.5).abs() < 1e-12);
    assert!((s.macro_f1 - (2.0 / 3.0 + 0.5) / 3.0).abs() < 1e-12, "{}", s.macro_f1);
}

/// A minimal current-encoding .h5ad with a dense X, written with libhdf5.
fn write_h5ad(path: &Path, genes: &[&str], cells: &[&str], x: &[f32]) {
    use hdf5::types::VarLenUnicode;
    use std::str::FromStr;
    let f = hdf5::File::create(path).unwrap();
    let attr = |loc: &hdf5::Location, k: &str, v: &str| {
        loc.new_attr::<VarLenUnicode>().create(k).unwrap().write_scalar(&VarLenUnicode::from_str(v).unwrap()).unwrap();
    };
    attr(&f, "encoding-type", "anndata");
    attr(&f, "encoding-version", "0.1.0");
    for (name, index) in [("obs", cells), ("var", genes)] {
        let g = f.create_group(name).unwrap();
        attr(&g, "encoding-type", "dataframe");
        attr(&g, "encoding-version", "0.2.0");
        attr(&g, "_index", "_index");
        let v: Vec<VarLenUnicode> = index.iter().map(|s| VarLenUnicode::from_str(s).unwrap()).collect();
        g.new_dataset_builder().with_data(&v).create("_index").unwrap();
    }
    let ds = f.new_dataset::<f32>().shape([cells.len(), genes.len()]).create("X").unwrap();
    ds.write_raw(x).unwrap();
    attr(&ds, "encoding-type", "array");
    attr(&ds, "encoding-version", "0.2.0");
}

#[test]
fn nan_values_fail_and_empty_cells_are_reported() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let genes = ["CD3D", "MS4A1", "NOT_A_GENE", "LYZ"];
    assert!(model.vocab.get("CD3D").is_some() && model.vocab.get("LYZ").is_some() && model.vocab.get("NOT_A_GENE").is_none());
    // cell_b expresses only a gene outside the vocabulary: embedded from <cls> alone.
    let ok_file = dir.path().join("ok.h5ad");
    write_h5ad(&ok_file, &genes, &["cell_a", "cell_b"], &[3.0, 0.0, 1.0, 2.0, 0.0, 0.0, 5.0, 0.0]);
    let e = embed_cells(&model, &AnnData::open(&ok_file).unwrap(), &CellEmbedOptions::default()).unwrap();
    assert_eq!(e.genes_matched, 3);
    assert_eq!(e.empty_cells, vec!["cell_b".to_string()]);
    assert!(e.data.iter().all(|v| v.is_finite()));

    let nan_file = dir.path().join("nan.h5ad");
    write_h5ad(&nan_file, &genes, &["cell_a", "cell_b"], &[3.0, f32::NAN, 1.0, 2.0, 0.0, 1.0, 0.0, 4.0]);
    let err = embed_cells(&model, &AnnData::open(&nan_file).unwrap(), &CellEmbedOptions::default()).err().unwrap().to_string();
    assert!(err.contains("NaN") && err.contains("cell_a") && err.contains("MS4A1"), "{err}");
}
