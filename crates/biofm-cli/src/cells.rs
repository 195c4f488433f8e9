//! `biofm cells`: scGPT cell embeddings and kNN label transfer on AnnData files.

use crate::GlobalArgs;
use anyhow::{bail, ensure, Context, Result};
use biofm_formats::anndata::{write_obsm_copy, AnnData, MatrixSource};
use biofm_formats::{AtomicFile, EmbeddingFormat, EmbeddingTable};
use biofm_models::scgpt::ScGpt;
use biofm_pipelines::cells::{classification_scores, embed_cells, knn_transfer, CellEmbedOptions, CellEmbeddings};
use candle_core::{DType, Device};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum CellsCommand {
    /// Embed every cell of an .h5ad file with scGPT (as scGPT's `embed_data`).
    Embed(EmbedArgs),
    /// Transfer labels from a labelled reference to query cells by kNN in scGPT space.
    Annotate(AnnotateArgs),
}

/// How cells are read and embedded (shared by `embed` and `annotate`).
#[derive(Args, Debug, Clone)]
pub struct CellInputArgs {
    /// scGPT checkpoint folder (best_model.pt, args.json, vocab.json).
    #[arg(long)]
    pub model: PathBuf,
    /// `var` column holding gene symbols (default: the `var` index).
    #[arg(long)]
    pub gene_col: Option<String>,
    /// Read expression values from `raw.X` (with `raw.var` as genes) instead of `X`.
    #[arg(long, conflicts_with = "layer")]
    pub raw: bool,
    /// Read expression values from `layers[NAME]` instead of `X`.
    #[arg(long)]
    pub layer: Option<String>,
    /// Maximum tokens per cell including <cls>; cells with more expressed genes are
    /// randomly subsampled (seeded), as the reference does.
    #[arg(long, default_value_t = 1200)]
    pub max_length: usize,
    /// Seed of the random bin tie-breaking and gene subsampling. The numbers equal the
    /// reference's after `np.random.seed(SEED); torch.manual_seed(SEED)`.
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// Cells per forward pass.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
}

impl CellInputArgs {
    fn options(&self, g: &GlobalArgs) -> CellEmbedOptions {
        CellEmbedOptions {
            gene_col: self.gene_col.clone(),
            source: match (&self.layer, self.raw) {
                (Some(l), _) => MatrixSource::Layer(l.clone()),
                (None, true) => MatrixSource::Raw,
                (None, false) => MatrixSource::X,
            },
            max_length: self.max_length,
            batch_size: self.batch_size,
            seed: self.seed,
            normalize: true,
            progress: !g.quiet,
        }
    }

    fn load(&self, g: &GlobalArgs) -> Result<ScGpt> {
        if !g.quiet {
            eprintln!("loading scGPT from {} ...", self.model.display());
        }
        ScGpt::load(&self.model, DType::F32, &Device::Cpu)
    }
}

#[derive(Args, Debug)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub cells: CellInputArgs,
    /// Input AnnData file.
    #[arg(long)]
    pub input: PathBuf,
    /// Output: .npy, .safetensors or .jsonl (one row per cell, obs order), or .h5ad (a
    /// copy of the input with the embeddings in obsm).
    #[arg(long, short)]
    pub out: PathBuf,
    /// obsm key for .h5ad output.
    #[arg(long, default_value = "X_scGPT")]
    pub obsm_key: String,
}

fn is_h5ad(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("h5ad"))
}

fn report(e: &CellEmbeddings, path: &Path, g: &GlobalArgs) {
    if g.quiet {
        return;
    }
    eprintln!(
        "{}: {} cells; {} of {} genes are in the model's vocabulary",
        path.display(),
        e.cell_names.len(),
        e.genes_matched,
        e.genes_total
    );
    if !e.empty_cells.is_empty() {
        eprintln!(
            "warning: {} cells express no vocabulary gene and were embedded from <cls> alone (e.g. {:?}); consider filtering them",
            e.empty_cells.len(),
            &e.empty_cells[..e.empty_cells.len().min(3)]
        );
    }
    if e.cells_with_negative_values > 0 {
        eprintln!(
            "warning: {} cells have negative values: the matrix looks scaled or centred. scGPT expects counts or \
             log-normalised values; use --raw or --layer if the file has them",
            e.cells_with_negative_values
        );
    }
    if e.subsampled_cells > 0 {
        eprintln!("note: {} cells express more genes than --max-length and were subsampled (seeded)", e.subsampled_cells);
    }
}

pub fn embed(a: EmbedArgs, g: &GlobalArgs) -> Result<()> {
    AtomicFile::check_writable(&a.out)?;
    if !is_h5ad(&a.out) {
        EmbeddingFormat::from_path(&a.out)?;
    }
    let model = a.cells.load(g)?;
    let ad = AnnData::open(&a.input)?;
    let e = embed_cells(&model, &ad, &a.cells.options(g))?;
    report(&e, &a.input, g);
    drop(ad);
    if is_h5ad(&a.out) {
        write_obsm_copy(&a.input, &a.out, &a.obsm_key, e.dim, &e.data)?;
        if !g.quiet {
            eprintln!("wrote {} with obsm[{:?}] ({} × {})", a.out.display(), a.obsm_key, e.cell_names.len(), e.dim);
        }
        return Ok(());
    }
    let mut table = EmbeddingTable::new(e.dim);
    for (i, name) in e.cell_names.iter().enumerate() {
        table.push(name.clone(), &e.data[i * e.dim..(i + 1) * e.dim])?;
    }
    table.metadata.insert("model".into(), a.cells.model.display().to_string());
    table.metadata.insert("normalized".into(), "true".into());
    table.metadata.insert("seed".into(), a.cells.seed.to_string());
    table.metadata.insert("max_length".into(), a.cells.max_length.to_string());
    table.metadata.insert("biofm_version".into(), env!("CARGO_PKG_VERSION").into());
    table.write(&a.out)?;
    if !g.quiet {
        eprintln!("wrote {} embeddings of dimension {} to {}", table.len(), table.dim, a.out.display());
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct AnnotateArgs {
    #[command(flatten)]
    pub cells: CellInputArgs,
    /// Labelled reference AnnData file.
    #[arg(long)]
    pub reference: PathBuf,
    /// obs column of the reference with the labels.
    #[arg(long)]
    pub label_col: String,
    /// Query AnnData file. Without it, --split holds out part of the reference as query.
    #[arg(long, required_unless_present = "split")]
    pub query: Option<PathBuf>,
    /// Hold out this fraction of the reference cells (seeded) as the query, to evaluate.
    #[arg(long, conflicts_with = "query")]
    pub split: Option<f64>,
    /// obs column of the query with true labels, to report accuracy and macro-F1
    /// (default: --label-col when the query has it).
    #[arg(long)]
    pub query_label_col: Option<String>,
    /// Neighbours that vote.
    #[arg(long, short, default_value_t = 10)]
    pub k: usize,
    /// Write per-cell predictions (CSV: cell, predicted, confidence[, true]).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn labels_of(ad: &AnnData, col: &str) -> Result<Vec<Option<String>>> {
    Ok(ad.obs_column(col)?.to_strings())
}

pub fn annotate(a: AnnotateArgs, g: &GlobalArgs) -> Result<()> {
    if let Some(out) = &a.out {
        AtomicFile::check_writable(out)?;
    }
    if let Some(f) = a.split {
        ensure!(f > 0.0 && f < 1.0, "--split must be between 0 and 1 (the held-out fraction), got {f}");
    }
    let model = a.cells.load(g)?;
    let opts = a.cells.options(g);
    let ref_ad = AnnData::open(&a.reference)?;
    let ref_labels = labels_of(&ref_ad, &a.label_col)?;
    let ref_emb = embed_cells(&model, &ref_ad, &opts)?;
    report(&ref_emb, &a.reference, g);
    let dim = ref_emb.dim;

    // (reference rows, query rows, query true labels)
    let (ref_idx, query_names, query_emb, truth): (Vec<usize>, Vec<String>, Vec<f32>, Option<Vec<Option<String>>>) =
        match &a.query {
            Some(q) => {
                let q_ad = AnnData::open(q)?;
                let q_emb = embed_cells(&model, &q_ad, &opts)?;
                report(&q_emb, q, g);
                let col = a.query_label_col.clone().or_else(|| {
                    q_ad.obs_columns().ok().filter(|c| c.contains(&a.label_col)).map(|_| a.label_col.clone())
                });
                let truth = col.map(|c| labels_of(&q_ad, &c)).transpose()?;
                ((0..ref_labels.len()).collect(), q_emb.cell_names, q_emb.data, truth)
            }
            None => {
                let frac = a.split.expect("clap requires --query or --split");
                let n = ref_labels.len();
                let mut rng = biofm_preprocess::cells::CellRng::new(a.cells.seed);
                let perm = rng.torch_randperm(n);
                let n_query = ((n as f64) * frac).round().max(1.0) as usize;
                ensure!(n_query < n, "--split {frac} leaves no reference cells");
                let mut q: Vec<usize> = perm[..n_query].to_vec();
                q.sort_unstable();
                let mut r: Vec<usize> = perm[n_query..].to_vec();
                r.sort_unstable();
                let names = q.iter().map(|&i| ref_emb.cell_names[i].clone()).collect();
                let emb = q.iter().flat_map(|&i| ref_emb.data[i * dim..(i + 1) * dim].to_vec()).collect();
                let truth = Some(q.iter().map(|&i| ref_labels[i].clone()).collect());
                (r, names, emb, truth)
            }
        };
    // Reference cells without a label do not vote.
    let (mut ref_rows, mut ref_lab) = (Vec::new(), Vec::new());
    for &i in &ref_idx {
        if let Some(l) = &ref_labels[i] {
            ref_rows.extend_from_slice(&ref_emb.data[i * dim..(i + 1) * dim]);
            ref_lab.push(l.clone());
        }
    }
    if ref_lab.is_empty() {
        bail!("{}: obs column `{}` has no labels", a.reference.display(), a.label_col);
    }
    let t = knn_transfer(&ref_rows, &ref_lab, &query_emb, dim, a.k)?;

    if let Some(out) = &a.out {
        let mut f = AtomicFile::create(out)?;
        let w = f.writer();
        writeln!(w, "cell,predicted,confidence{}", if truth.is_some() { ",true" } else { "" })?;
        for (i, name) in query_names.iter().enumerate() {
            write!(w, "{},{},{:.4}", csv_field(name), csv_field(&t.labels[i]), t.confidence[i])?;
            if let Some(tr) = &truth {
                write!(w, ",{}", csv_field(tr[i].as_deref().unwrap_or("")))?;
            }
            writeln!(w)?;
        }
        f.commit().with_context(|| format!("cannot write {}", out.display()))?;
    }

    let scores = match &truth {
        Some(tr) => {
            let (mut tt, mut pp) = (Vec::new(), Vec::new());
            for (i, l) in tr.iter().enumerate() {
                if let Some(l) = l {
                    tt.push(l.clone());
                    pp.push(t.labels[i].clone());
                }
            }
            (!tt.is_empty()).then(|| classification_scores(&tt, &pp)).transpose()?
        }
        None => None,
    };
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for l in &t.labels {
        *counts.entry(l.as_str()).or_default() += 1;
    }
    let mean_conf = t.confidence.iter().map(|&c| c as f64).sum::<f64>() / t.confidence.len().max(1) as f64;
    if a.json {
        let v = serde_json::json!({
            "query_cells": query_names.len(),
            "reference_cells": ref_lab.len(),
            "k": a.k,
            "predicted_counts": counts,
            "mean_confidence": mean_conf,
            "accuracy": scores.as_ref().map(|s| s.accuracy),
            "macro_f1": scores.as_ref().map(|s| s.macro_f1),
            "scored_cells": scores.as_ref().map(|s| s.n),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("query cells: {}  reference cells: {}  k: {}", query_names.len(), ref_lab.len(), a.k);
        println!("mean confidence: {mean_conf:.3}");
        if let Some(s) = &scores {
            println!("accuracy: {:.4}  macro-F1: {:.4}  (over {} labelled query cells)", s.accuracy, s.macro_f1, s.n);
        }
        println!("predicted labels:");
        for (l, n) in &counts {
            println!("  {n:>6}  {l}");
        }
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
