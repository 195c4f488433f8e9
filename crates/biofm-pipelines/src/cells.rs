//! Single-cell pipelines: scGPT cell embeddings from an AnnData file, and kNN label
//! transfer between embedded datasets.

use crate::bar;
use anyhow::{bail, ensure, Context, Result};
use biofm_formats::anndata::{AnnData, MatrixSource};
use biofm_models::scgpt::ScGpt;
use biofm_preprocess::cells::{CellCollator, CellRng, CellTokens};
use candle_core::{Device, Tensor};

/// How `embed_cells` reads and embeds a file.
#[derive(Debug, Clone)]
pub struct CellEmbedOptions {
    /// `var` column with the gene symbols (`None`: the `var` index).
    pub gene_col: Option<String>,
    /// Which matrix holds the expression values.
    pub source: MatrixSource,
    /// Maximum tokens per cell including `<cls>` (the reference's `max_length`, 1200).
    pub max_length: usize,
    /// Cells per forward pass.
    pub batch_size: usize,
    /// Seed of the bin tie-breaking and gene subsampling streams.
    pub seed: u32,
    /// L2-normalise the embeddings (the reference `embed_data` does).
    pub normalize: bool,
    pub progress: bool,
}

impl Default for CellEmbedOptions {
    fn default() -> Self {
        Self {
            gene_col: None,
            source: MatrixSource::X,
            max_length: 1200,
            batch_size: 64,
            seed: 0,
            normalize: true,
            progress: false,
        }
    }
}

/// Embeddings and what the input pipeline saw.
#[derive(Debug, Clone)]
pub struct CellEmbeddings {
    pub cell_names: Vec<String>,
    pub dim: usize,
    /// `[cells, dim]`, row-major.
    pub data: Vec<f32>,
    pub genes_total: usize,
    pub genes_matched: usize,
    /// Cells with no expressed gene from the vocabulary (embedded from `<cls>` alone).
    pub empty_cells: Vec<String>,
    /// Cells with more expressed genes than fit, subsampled.
    pub subsampled_cells: usize,
    /// Cells with at least one negative value.
    pub cells_with_negative_values: usize,
}

/// One cell's tokens as the reference's dataset builds them: `<cls>` with value
/// `pad_value`, then every non-zero value of a vocabulary gene in column order. `ids` maps
/// the matrix's columns to vocabulary ids; `cols`/`vals` are the row's stored entries.
pub fn cell_tokens(model: &ScGpt, ids: &[Option<u32>], cols: &[u32], vals: &[f32]) -> CellTokens {
    let mut t = CellTokens { genes: vec![model.vocab.cls_id], values: vec![model.args.pad_value] };
    for (&c, &v) in cols.iter().zip(vals) {
        if let (Some(id), true) = (ids[c as usize], v != 0.0) {
            t.genes.push(id);
            t.values.push(v);
        }
    }
    t
}

/// Embeds every cell of `ad` with `model`, as the reference `embed_data` does.
pub fn embed_cells(model: &ScGpt, ad: &AnnData, opts: &CellEmbedOptions) -> Result<CellEmbeddings> {
    ensure!(opts.batch_size > 0, "batch size must be at least 1");
    ensure!(opts.max_length >= 2, "max length must be at least 2 (the <cls> token and one gene)");
    let path = ad.path().display().to_string();
    let genes: Vec<Option<String>> = match &opts.gene_col {
        Some(col) => ad.gene_column(&opts.source, col)?,
        None => ad.gene_names(&opts.source)?.into_iter().map(Some).collect(),
    };
    let ids: Vec<Option<u32>> = genes.iter().map(|g| g.as_deref().and_then(|g| model.vocab.get(g))).collect();
    let matched = ids.iter().filter(|i| i.is_some()).count();
    let where_genes = match &opts.gene_col {
        Some(c) => format!("var column `{c}`"),
        None => "the var index".to_string(),
    };
    if matched == 0 {
        let sample: Vec<&str> = genes.iter().flatten().take(5).map(String::as_str).collect();
        let columns = ad.gene_columns(&opts.source).unwrap_or_default();
        bail!(
            "{path}: none of the {} genes in {where_genes} (e.g. {sample:?}) is in the model's vocabulary. \
             scGPT vocabularies use gene symbols (e.g. CD3D, MS4A1); if these are Ensembl ids, pass --gene-col \
             with the column holding symbols (var columns: {columns:?})",
            genes.len()
        );
    }
    let m = ad.matrix(&opts.source)?;
    let (n_cells, n_genes) = m.shape();
    ensure!(n_genes == ids.len(), "{path}: {} has {n_genes} genes but {where_genes} has {}", opts.source, ids.len());
    let cell_names = ad.obs_names()?;
    let collator = CellCollator {
        pad_id: model.vocab.pad_id,
        pad_value: model.args.pad_value,
        n_bins: model.args.n_bins,
        max_length: opts.max_length,
    };
    let mut rng = CellRng::new(opts.seed);
    let dim = model.dim();
    let mut out = CellEmbeddings {
        cell_names: cell_names.clone(),
        dim,
        data: Vec::with_capacity(n_cells * dim),
        genes_total: genes.len(),
        genes_matched: matched,
        empty_cells: Vec::new(),
        subsampled_cells: 0,
        cells_with_negative_values: 0,
    };
    let pb = bar(n_cells, "cells", opts.progress);
    // Cells are prepared (binned, subsampled) in file order, so the random draws are the
    // reference's; a block of prepared cells is then batched by length, so each batch
    // pads to similar lengths (padding is masked: it changes no result, only the work).
    let block = opts.batch_size * 8;
    let mut start = 0;
    while start < n_cells {
        let end = (start + block).min(n_cells);
        let rows = m.read_rows(start..end)?;
        let mut cells = Vec::with_capacity(end - start);
        for r in 0..rows.n_rows() {
            let cell = start + r;
            let (cols, vals) = rows.row(r);
            let mut negative = false;
            for (&c, &v) in cols.iter().zip(vals) {
                if ids[c as usize].is_none() {
                    continue;
                }
                if v.is_nan() {
                    bail!(
                        "{path}: {} has NaN for cell `{}`, gene `{}`: fill or drop missing values first",
                        opts.source,
                        cell_names[cell],
                        genes[c as usize].as_deref().unwrap_or("?")
                    );
                }
                negative |= v < 0.0;
            }
            let t = cell_tokens(model, &ids, cols, vals);
            if t.genes.len() == 1 {
                out.empty_cells.push(cell_names[cell].clone());
            }
            if t.genes.len() > opts.max_length {
                out.subsampled_cells += 1;
            }
            out.cells_with_negative_values += negative as usize;
            cells.push(collator.prepare(t, &mut rng));
        }
        let mut order: Vec<usize> = (0..cells.len()).collect();
        order.sort_by_key(|&i| cells[i].genes.len());
        let mut rows_out = vec![0f32; cells.len() * dim];
        for idx in order.chunks(opts.batch_size) {
            let group: Vec<CellTokens> = idx.iter().map(|&i| cells[i].clone()).collect();
            let batch = collator.pad(&group);
            let b = idx.len();
            let genes_t = Tensor::from_vec(batch.genes, (b, batch.len), &Device::Cpu)?;
            let values_t = Tensor::from_vec(batch.values, (b, batch.len), &Device::Cpu)?;
            let mut emb = model.cell_embeddings(&genes_t, &values_t).with_context(|| format!("{path}: cells {start}..{end}"))?;
            if opts.normalize {
                emb = normalize_rows(&emb)?;
            }
            for (row, &i) in emb.to_vec2::<f32>()?.into_iter().zip(idx) {
                rows_out[i * dim..(i + 1) * dim].copy_from_slice(&row);
            }
            pb.inc(b as u64);
        }
        out.data.extend(rows_out);
        start = end;
    }
    pb.finish_and_clear();
    Ok(out)
}

/// `x / np.linalg.norm(x, axis=1, keepdims=True)`, as scGPT's `embed_data` normalises
/// (no eps, unlike `F.normalize`).
pub fn normalize_rows(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(1)?.sqrt()?;
    Ok(x.broadcast_div(&norm)?)
}

/// kNN label transfer result for each query cell.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelTransfer {
    pub labels: Vec<String>,
    /// Fraction of the k nearest reference cells that carry the predicted label.
    pub confidence: Vec<f32>,
}

/// Labels each query cell by majority vote of its `k` nearest reference cells (cosine
/// similarity of the embeddings, as scGPT's reference-mapping tutorial does with
/// faiss); ties go to the label with the larger summed similarity, then the
/// alphabetically first. Rows need not be normalised.
pub fn knn_transfer(reference: &[f32], ref_labels: &[String], query: &[f32], dim: usize, k: usize) -> Result<LabelTransfer> {
    ensure!(dim > 0 && k > 0, "k and the embedding width must be at least 1");
    ensure!(reference.len() == ref_labels.len() * dim, "{} reference labels for {} embedding values", ref_labels.len(), reference.len());
    ensure!(query.len() % dim == 0, "query embeddings do not have width {dim}");
    ensure!(!ref_labels.is_empty(), "the reference has no labelled cells");
    let unit = |v: &[f32]| -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| if n > 0.0 { x / n } else { 0.0 }).collect()
    };
    let refs: Vec<Vec<f32>> = reference.chunks(dim).map(unit).collect();
    let k = k.min(refs.len());
    let mut labels = Vec::new();
    let mut confidence = Vec::new();
    for q in query.chunks(dim) {
        let q = unit(q);
        let mut sims: Vec<(f32, usize)> =
            refs.iter().enumerate().map(|(i, r)| (r.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>(), i)).collect();
        sims.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut votes: std::collections::BTreeMap<&str, (usize, f32)> = Default::default();
        for &(s, i) in &sims[..k] {
            let e = votes.entry(ref_labels[i].as_str()).or_default();
            e.0 += 1;
            e.1 += s;
        }
        let (best, (n, _)) = votes
            .iter()
            .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(a.1 .1.total_cmp(&b.1 .1)).then(b.0.cmp(a.0)))
            .map(|(l, v)| (*l, *v))
            .expect("k >= 1");
        labels.push(best.to_string());
        confidence.push(n as f32 / k as f32);
    }
    Ok(LabelTransfer { labels, confidence })
}

/// Accuracy and macro-F1 (scikit-learn's `f1_score(average="macro")`: unweighted mean
/// over every label in the truth or the predictions, F1 = 0 where undefined).
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub n: usize,
}

pub fn classification_scores(truth: &[String], predicted: &[String]) -> Result<Scores> {
    ensure!(truth.len() == predicted.len(), "{} true labels for {} predictions", truth.len(), predicted.len());
    ensure!(!truth.is_empty(), "no labelled cells to score");
    let correct = truth.iter().zip(predicted).filter(|(a, b)| a == b).count();
    let mut labels: Vec<&String> = truth.iter().chain(predicted).collect();
    labels.sort();
    labels.dedup();
    let mut f1_sum = 0.0;
    for l in &labels {
        let tp = truth.iter().zip(predicted).filter(|(t, p)| t == l && p == l).count() as f64;
        let fp = truth.iter().zip(predicted).filter(|(t, p)| t != l && p == l).count() as f64;
        let fn_ = truth.iter().zip(predicted).filter(|(t, p)| t == l && p != l).count() as f64;
        let denom = 2.0 * tp + fp + fn_;
        f1_sum += if denom > 0.0 { 2.0 * tp / denom } else { 0.0 };
    }
    Ok(Scores { accuracy: correct as f64 / truth.len() as f64, macro_f1: f1_sum / labels.len() as f64, n: truth.len() })
}
