//! Pipelines: embedding, zero-shot classification and retrieval over many inputs, in
//! batches, with progress bars. Modality-specific work (decoding, tokenising) happens
//! here; the models only see tensors and strings.

pub mod cells;
pub mod inputs;
pub mod wsi;

use anyhow::{ensure, Context, Result};
use biofm_formats::EmbeddingTable;
use biofm_models::{open_clip, Model};
use biofm_preprocess::image::{decode_file, DecodeOptions};
use candle_core::{DType, Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;

/// How a pipeline runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Inputs per forward pass.
    pub batch_size: usize,
    /// L2-normalise embeddings.
    pub normalize: bool,
    /// Show progress bars and notes on stderr.
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { batch_size: 8, normalize: false, progress: false }
    }
}

fn bar(len: usize, what: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template(&format!(
        "{{spinner}} {what} {{bar:30}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta_precise}}, {{per_sec}}]"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb
}

/// Decodes and preprocesses one batch of images in parallel → `[B, 3, H, W]`.
pub fn load_image_batch(model: &Model, files: &[PathBuf], decode: &DecodeOptions) -> Result<Tensor> {
    let transform = model.image_transform()?;
    let tensors: Vec<Tensor> = files
        .par_iter()
        .map(|f| -> Result<Tensor> {
            let img = decode_file(f, decode)?;
            let t = transform.run(img).with_context(|| format!("cannot preprocess {}", f.display()))?;
            Ok(Tensor::from_vec(t.data, t.shape.to_vec(), &Device::Cpu)?)
        })
        .collect::<Result<_>>()?;
    Ok(Tensor::stack(&tensors, 0)?)
}

fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(t.to_dtype(DType::F32)?.to_vec2::<f32>()?)
}

/// Embeds image files: one row per file, in order.
pub fn embed_images(model: &Model, files: &[PathBuf], opts: &RunOptions) -> Result<EmbeddingTable> {
    let emb = image_embeddings(model, files, opts, opts.normalize)?;
    let mut table = EmbeddingTable::new(emb.dim(1)?);
    for (f, row) in files.iter().zip(rows(&emb)?) {
        table.push(f.display().to_string(), &row)?;
    }
    Ok(table)
}

/// `[N, D]` image embeddings, optionally L2-normalised.
pub fn image_embeddings(model: &Model, files: &[PathBuf], opts: &RunOptions, normalize: bool) -> Result<Tensor> {
    ensure!(!files.is_empty(), "no images to embed");
    ensure!(opts.batch_size > 0, "batch size must be at least 1");
    model.image_transform()?;
    let pb = bar(files.len(), "images", opts.progress);
    let decode = DecodeOptions::default();
    let mut out = Vec::new();
    for chunk in files.chunks(opts.batch_size) {
        let pixels = load_image_batch(model, chunk, &decode)?;
        let mut emb = model.encode_images(&pixels)?;
        if normalize {
            emb = open_clip::normalize(&emb)?;
        }
        out.push(emb.to_dtype(DType::F32)?);
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    Ok(Tensor::cat(&out, 0)?)
}

/// `[N, D]` text embeddings (optionally L2-normalised) and the indices of texts that
/// were truncated to the model's context length.
pub fn text_embeddings(model: &Model, texts: &[String], opts: &RunOptions, normalize: bool) -> Result<(Tensor, Vec<usize>)> {
    ensure!(!texts.is_empty(), "no texts to embed");
    ensure!(opts.batch_size > 0, "batch size must be at least 1");
    let pb = bar(texts.len(), "texts", opts.progress);
    let mut out = Vec::new();
    let mut truncated = Vec::new();
    for (b, chunk) in texts.chunks(opts.batch_size).enumerate() {
        let (mut emb, cut) = model.encode_texts(chunk)?;
        if normalize {
            emb = open_clip::normalize(&emb)?;
        }
        truncated.extend(cut.iter().enumerate().filter(|(_, c)| **c).map(|(i, _)| b * opts.batch_size + i));
        out.push(emb.to_dtype(DType::F32)?);
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    if opts.progress && !truncated.is_empty() {
        let ctx = model.context_length().unwrap_or(0);
        let list: Vec<String> = truncated.iter().take(10).map(|i| (i + 1).to_string()).collect();
        eprintln!(
            "note: {} text(s) longer than the model's {ctx}-token context were truncated, as the reference does \
             (text number {}{})",
            truncated.len(),
            list.join(", "),
            if truncated.len() > 10 { ", ..." } else { "" }
        );
    }
    Ok((Tensor::cat(&out, 0)?, truncated))
}

/// Embeds texts: one row per text, in order.
pub fn embed_texts(model: &Model, texts: &[String], opts: &RunOptions) -> Result<EmbeddingTable> {
    let (emb, _) = text_embeddings(model, texts, opts, opts.normalize)?;
    let mut table = EmbeddingTable::new(emb.dim(1)?);
    for (t, row) in texts.iter().zip(rows(&emb)?) {
        table.push(t.clone(), &row)?;
    }
    Ok(table)
}

/// Zero-shot result for one image.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub input: String,
    /// The most probable label.
    pub label: String,
    /// One probability per label, in label order.
    pub probabilities: Vec<f32>,
}

/// Zero-shot classification of many images.
#[derive(Debug, Clone, Serialize)]
pub struct ZeroShot {
    pub model: String,
    pub labels: Vec<String>,
    pub templates: Vec<String>,
    pub predictions: Vec<Prediction>,
}

/// open_clip zero-shot: a classifier from `labels` × `templates` (mean of normalised
/// prompt embeddings per label), then `softmax(exp(logit_scale) · img · W)`.
pub fn zero_shot(model: &Model, files: &[PathBuf], labels: &[String], templates: &[String], opts: &RunOptions) -> Result<ZeroShot> {
    ensure!(!labels.is_empty(), "no labels given");
    let (scale, bias) = model
        .logit_scale()
        .with_context(|| format!("model `{}` is not an image-text model; zero-shot needs one (e.g. biomedclip)", model.name()))?;
    let text_opts = RunOptions { progress: false, ..opts.clone() };
    let encode = |t: &[String]| text_embeddings(model, t, &text_opts, false).map(|(e, _)| e);
    let classifier = open_clip::zero_shot_classifier(&encode, labels, templates)?;
    let img = image_embeddings(model, files, opts, true)?;
    let probs = rows(&open_clip::zero_shot_probs(&img, &classifier, scale, bias)?)?;
    let predictions = files
        .iter()
        .zip(probs)
        .map(|(f, p)| {
            let best = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
            Prediction { input: f.display().to_string(), label: labels[best].clone(), probabilities: p }
        })
        .collect();
    Ok(ZeroShot { model: model.name().to_string(), labels: labels.to_vec(), templates: templates.to_vec(), predictions })
}

/// Which way retrieval searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// For each text, the closest images.
    TextToImage,
    /// For each image, the closest texts.
    ImageToText,
}

/// One retrieved item.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub item: String,
    /// Cosine similarity of the normalised embeddings.
    pub score: f32,
}

/// Hits for one query, best first.
#[derive(Debug, Clone, Serialize)]
pub struct Query {
    pub query: String,
    pub hits: Vec<Hit>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Retrieval {
    pub model: String,
    pub direction: Direction,
    pub queries: Vec<Query>,
}

/// Image↔text retrieval by cosine similarity of normalised embeddings.
pub fn retrieve(
    model: &Model,
    files: &[PathBuf],
    texts: &[String],
    direction: Direction,
    top_k: usize,
    opts: &RunOptions,
) -> Result<Retrieval> {
    ensure!(top_k > 0, "--top-k must be at least 1");
    ensure!(!texts.is_empty(), "no texts given");
    ensure!(
        model.has_image_tower() && model.has_text_tower(),
        "model `{}` does not embed both images and texts; retrieval needs an image-text model (e.g. biomedclip)",
        model.name()
    );
    let img = image_embeddings(model, files, opts, true)?;
    let (txt, _) = text_embeddings(model, texts, opts, true)?;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let (queries, items, sim) = match direction {
        Direction::TextToImage => (texts.to_vec(), names, open_clip::similarity(&txt, &img)?),
        Direction::ImageToText => (names, texts.to_vec(), open_clip::similarity(&img, &txt)?),
    };
    let sim = rows(&sim)?;
    let queries = queries
        .into_iter()
        .zip(sim)
        .map(|(q, s)| {
            let mut order: Vec<usize> = (0..s.len()).collect();
            order.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
            let hits = order.into_iter().take(top_k).map(|i| Hit { item: items[i].clone(), score: s[i] }).collect();
            Query { query: q, hits }
        })
        .collect();
    Ok(Retrieval { model: model.name().to_string(), direction, queries })
}
