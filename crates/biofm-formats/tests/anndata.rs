//! The AnnData reader against files written by anndata 0.12 (current encoding; fixtures
//! from tools/reference/gen_anndata_fixtures.py, with what anndata read back recorded in
//! expected.json) and against scanpy's real pbmc68k_reduced (legacy encoding; fetched by
//! scripts/fetch-test-data.sh, facts in expected_pbmc68k.json).

use biofm_formats::anndata::{write_obsm_copy, AnnData, Column, MatrixSource};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/anndata")
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn opt_strings(v: &Value) -> Vec<Option<String>> {
    v.as_array().unwrap().iter().map(|s| s.as_str().map(str::to_string)).collect()
}

fn dense(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32)).collect()
}

fn check_column(file: &str, table: &str, name: &str, got: &Column, want: &Value) {
    let ctx = format!("{file}: {table}.{name}");
    let values = &want["values"];
    match want["kind"].as_str().unwrap() {
        "categorical" => match got {
            Column::Categorical { codes, categories, ordered } => {
                let want_codes: Vec<i64> = want["codes"].as_array().unwrap().iter().map(|c| c.as_i64().unwrap()).collect();
                assert_eq!(codes, &want_codes, "{ctx}");
                assert_eq!(categories, &strings(&want["categories"]), "{ctx}");
                assert_eq!(*ordered, want["ordered"].as_bool().unwrap(), "{ctx}");
                assert_eq!(got.to_strings(), opt_strings(values), "{ctx}");
            }
            other => panic!("{ctx}: expected categorical, got {other:?}"),
        },
        "string" => assert_eq!(got, &Column::Str(opt_strings(values)), "{ctx}"),
        "float" => match got {
            Column::Float(v) => {
                let w: Vec<f32> = values.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
                assert_eq!(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), w, "{ctx}");
            }
            other => panic!("{ctx}: expected float, got {other:?}"),
        },
        "int" => {
            let w: Vec<i64> = values.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
            assert_eq!(got, &Column::Int(w), "{ctx}");
        }
        "bool" => {
            let w: Vec<bool> = values.as_array().unwrap().iter().map(|x| x.as_bool().unwrap()).collect();
            assert_eq!(got, &Column::Bool(w), "{ctx}");
        }
        "nullable-integer" => {
            let w: Vec<Option<i64>> = values.as_array().unwrap().iter().map(Value::as_i64).collect();
            assert_eq!(got, &Column::NullableInt(w), "{ctx}");
        }
        "nullable-boolean" => {
            let w: Vec<Option<bool>> = values.as_array().unwrap().iter().map(Value::as_bool).collect();
            assert_eq!(got, &Column::NullableBool(w), "{ctx}");
        }
        k => panic!("{ctx}: unknown kind {k}"),
    }
}

fn check_matrix(ad: &AnnData, source: &MatrixSource, want: &Value, ctx: &str) {
    let m = ad.matrix(source).unwrap();
    let shape: Vec<usize> = want["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
    assert_eq!(m.shape(), (shape[0], shape[1]), "{ctx}: {source}");
    let all = dense(&want["dense"]);
    assert_eq!(m.read_rows(0..shape[0]).unwrap().to_dense(), all, "{ctx}: {source}");
    // A block in the middle, and an empty block.
    let (a, b) = (shape[0] / 3, shape[0] / 3 + 4);
    assert_eq!(m.read_rows(a..b).unwrap().to_dense(), all[a * shape[1]..b * shape[1]], "{ctx}: {source} rows {a}..{b}");
    assert_eq!(m.read_rows(a..a).unwrap().n_rows(), 0);
    assert!(m.read_rows(0..shape[0] + 1).is_err(), "{ctx}: reading past the end must fail");
}

fn check_file(name: &str, want: &Value) {
    let ad = AnnData::open(&fixtures().join(name)).unwrap();
    assert!(!ad.is_legacy());
    assert_eq!(ad.n_obs(), want["n_obs"].as_u64().unwrap() as usize);
    assert_eq!(ad.n_vars(), want["n_vars"].as_u64().unwrap() as usize);
    for (table, cols) in [("obs", ad.obs_columns().unwrap()), ("var", ad.var_columns().unwrap())] {
        let t = &want[table];
        assert_eq!(cols, strings(&t["column_order"]), "{name}: {table} columns");
        for (col, w) in t["columns"].as_object().unwrap() {
            let got = if table == "obs" { ad.obs_column(col).unwrap() } else { ad.var_column(col).unwrap() };
            check_column(name, table, col, &got, w);
        }
    }
    assert_eq!(ad.obs_names().unwrap(), strings(&want["obs"]["index"]));
    assert_eq!(ad.var_names().unwrap(), strings(&want["var"]["index"]));
    check_matrix(&ad, &MatrixSource::X, &want["X"], name);
    let layers = want["layers"].as_object().cloned().unwrap_or_default();
    assert_eq!(ad.layers().unwrap(), layers.keys().cloned().collect::<Vec<_>>(), "{name}: layers");
    for (l, w) in &layers {
        check_matrix(&ad, &MatrixSource::Layer(l.clone()), w, name);
    }
    if want["raw"].is_object() {
        assert!(ad.has_raw());
        assert_eq!(ad.gene_names(&MatrixSource::Raw).unwrap(), strings(&want["raw"]["var"]["index"]));
        check_matrix(&ad, &MatrixSource::Raw, &want["raw"]["X"], name);
    } else {
        assert!(!ad.has_raw());
        let e = ad.matrix(&MatrixSource::Raw).err().expect("no raw").to_string();
        assert!(e.contains("no raw.X"), "{e}");
    }
}

#[test]
fn current_encoding_dense_csr_csc() {
    let e = expected();
    for name in ["dense.h5ad", "csr.h5ad", "csc.h5ad"] {
        check_file(name, &e["files"][name]);
    }
}

#[test]
fn gzip_compressed_file_reads_like_the_uncompressed_one() {
    let e = expected();
    assert_eq!(e["files"]["csr_gzip.h5ad"]["same_content_as"], "csr.h5ad");
    check_file("csr_gzip.h5ad", &e["files"]["csr.h5ad"]);
}

#[test]
fn bad_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("cells.h5ad");
    std::fs::write(&text, "cell,gene\n1,2\n").unwrap();
    let e = AnnData::open(&text).err().unwrap().to_string();
    assert!(e.contains("not an HDF5 file") && e.contains("cells.h5ad"), "{e}");

    let bytes = std::fs::read(fixtures().join("csr.h5ad")).unwrap();
    let truncated = dir.path().join("truncated.h5ad");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let e = format!("{:#}", AnnData::open(&truncated).err().unwrap());
    assert!(e.contains("truncated.h5ad"), "{e}");

    let e = AnnData::open(dir.path()).err().unwrap().to_string();
    assert!(e.contains("is a directory"), "{e}");
    let e = AnnData::open(&dir.path().join("missing.h5ad")).err().unwrap().to_string();
    assert!(e.contains("missing.h5ad"), "{e}");

    let ad = AnnData::open(&fixtures().join("csr.h5ad")).unwrap();
    let e = ad.obs_column("celltype").err().unwrap().to_string();
    assert!(e.contains("no column `celltype`") && e.contains("cell_type"), "{e}");
    let e = ad.matrix(&MatrixSource::Layer("spliced".into())).err().unwrap().to_string();
    assert!(e.contains("spliced") && e.contains("counts"), "{e}");
}

#[test]
fn obsm_is_written_into_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixtures().join("csr.h5ad");
    let before = std::fs::read(&input).unwrap();
    let out = dir.path().join("with_emb.h5ad");
    let ad = AnnData::open(&input).unwrap();
    let n = ad.n_obs();
    drop(ad);
    let data: Vec<f32> = (0..n * 3).map(|i| i as f32 * 0.5 - 1.0).collect();
    write_obsm_copy(&input, &out, "X_test", 3, &data).unwrap();
    assert_eq!(std::fs::read(&input).unwrap(), before, "the input must not change");
    let ad = AnnData::open(&out).unwrap();
    assert!(ad.obsm_keys().unwrap().contains(&"X_test".to_string()));
    assert_eq!(ad.obsm("X_test").unwrap(), (3, data.clone()));
    // Everything else is still there.
    assert_eq!(ad.obs_names().unwrap(), AnnData::open(&input).unwrap().obs_names().unwrap());
    // Replacing the key works; a wrong row count is an error and leaves nothing behind.
    let data2: Vec<f32> = data.iter().map(|x| x + 1.0).collect();
    write_obsm_copy(&out, &out, "X_test", 3, &data2).unwrap();
    assert_eq!(AnnData::open(&out).unwrap().obsm("X_test").unwrap().1, data2);
    let bad = dir.path().join("bad.h5ad");
    assert!(write_obsm_copy(&input, &bad, "X_test", 3, &data[..6]).is_err());
    assert!(!bad.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}

fn pbmc68k() -> PathBuf {
    biofm_testdata::downloaded("scanpy/10x_pbmc68k_reduced.h5ad")
}

#[test]
fn legacy_pbmc68k_reduced() {
    let e: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected_pbmc68k.json")).unwrap()).unwrap();
    let ad = AnnData::open(&pbmc68k()).unwrap();
    assert!(ad.is_legacy());
    assert_eq!(ad.n_obs(), 700);
    assert_eq!(ad.n_vars(), 765);
    assert_eq!(ad.obs_names().unwrap()[..5].to_vec(), strings(&e["obs_names_first5"]));
    let var = ad.var_names().unwrap();
    assert_eq!(var[..5].to_vec(), strings(&e["var_names_first5"]));
    assert_eq!(var[760..].to_vec(), strings(&e["var_names_last5"]));
    assert_eq!(ad.obs_columns().unwrap(), strings(&e["obs_columns"]));
    assert_eq!(ad.var_columns().unwrap(), strings(&e["var_columns"]));
    let labels = ad.obs_column("bulk_labels").unwrap();
    match &labels {
        Column::Categorical { categories, .. } => assert_eq!(categories, &strings(&e["bulk_labels_categories"])),
        other => panic!("bulk_labels: {other:?}"),
    }
    let labels = labels.to_strings();
    assert_eq!(labels[..10].iter().map(|l| l.clone().unwrap()).collect::<Vec<_>>(), strings(&e["bulk_labels_first10"]));
    for (label, count) in e["bulk_labels_value_counts"].as_object().unwrap() {
        let n = labels.iter().filter(|l| l.as_deref() == Some(label.as_str())).count();
        assert_eq!(n as u64, count.as_u64().unwrap(), "{label}");
    }
    match ad.obs_column("phase").unwrap() {
        Column::Categorical { categories, .. } => assert_eq!(categories, strings(&e["phase_categories"])),
        other => panic!("phase: {other:?}"),
    }
    let n_genes: Vec<i64> = e["n_genes_first5"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
    match ad.obs_column("n_genes").unwrap() {
        Column::Int(v) => assert_eq!(v[..5].to_vec(), n_genes),
        other => panic!("n_genes: {other:?}"),
    }
    match ad.obs_column("n_counts").unwrap() {
        Column::Float(v) => {
            let w: Vec<f64> = e["n_counts_first5"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            assert_eq!(v[..5].to_vec(), w);
        }
        other => panic!("n_counts: {other:?}"),
    }
    match ad.var_column("highly_variable").unwrap() {
        Column::Bool(v) => assert_eq!(v.iter().filter(|&&b| b).count() as u64, e["highly_variable_count"].as_u64().unwrap()),
        other => panic!("highly_variable: {other:?}"),
    }

    let x = ad.matrix(&MatrixSource::X).unwrap().read_rows(0..700).unwrap().to_dense();
    for p in e["X_values"].as_array().unwrap() {
        let (r, c) = (p["row"].as_u64().unwrap() as usize, p["col"].as_u64().unwrap() as usize);
        assert_eq!(x[r * 765 + c], p["value"].as_f64().unwrap() as f32, "X[{r}, {c}]");
    }
    let sum: f64 = x.iter().map(|&v| v as f64).sum();
    assert!((sum - e["X_sum_f64"].as_f64().unwrap()).abs() < 1e-6 * sum.abs().max(1.0), "X sum {sum}");

    let raw = ad.matrix(&MatrixSource::Raw).unwrap().read_rows(0..700).unwrap();
    assert_eq!(raw.data.len() as u64, e["raw_X_nnz"].as_u64().unwrap());
    let indptr: Vec<u64> = raw.indptr[..5].iter().map(|&p| p as u64).collect();
    let want: Vec<u64> = e["raw_X_indptr_first5"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
    assert_eq!(indptr, want);
    let rd = raw.to_dense();
    for p in e["raw_X_values"].as_array().unwrap() {
        let (r, c) = (p["row"].as_u64().unwrap() as usize, p["col"].as_u64().unwrap() as usize);
        assert_eq!(rd[r * 765 + c], p["value"].as_f64().unwrap() as f32, "raw.X[{r}, {c}]");
    }
    let sum: f64 = raw.data.iter().map(|&v| v as f64).sum();
    assert!((sum - e["raw_X_sum_f64"].as_f64().unwrap()).abs() < 1e-6 * sum, "raw.X sum {sum}");
    assert_eq!(ad.gene_names(&MatrixSource::Raw).unwrap(), var);

    // Embeddings written into a copy of a legacy file keep the legacy obsm entries.
    let keys = ad.obsm_keys().unwrap();
    assert_eq!(keys, vec!["X_pca".to_string(), "X_umap".to_string()]);
    let pca = ad.obsm("X_pca").unwrap();
    assert_eq!(pca.0, 50);
    drop(ad);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pbmc_emb.h5ad");
    let emb: Vec<f32> = (0..700 * 4).map(|i| (i % 7) as f32).collect();
    write_obsm_copy(&pbmc68k(), &out, "X_scGPT", 4, &emb).unwrap();
    let ad2 = AnnData::open(&out).unwrap();
    assert_eq!(ad2.obsm("X_scGPT").unwrap(), (4, emb));
    assert_eq!(ad2.obsm("X_pca").unwrap(), pca);
    assert_eq!(ad2.obs_column("bulk_labels").unwrap().to_strings(), labels);
}
