//! The everyday commands: models, embed, zero-shot, retrieve, inspect.

use crate::output::{print_table, Format};
use crate::{Dtype, GlobalArgs};
use anyhow::{bail, Context, Result};
use biofm_formats::{AtomicFile, EmbeddingTable};
use biofm_models::{registry, LoadOptions, Model};
use biofm_pipelines::{self as pipelines, RunOptions};
use clap::Args;
use std::path::PathBuf;

/// Options for loading and running a model.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model: a registry name (`biofm models`), hf:ORG/NAME[@REV], or a local folder.
    #[arg(long, short)]
    pub model: String,
    /// Inputs per forward pass.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    /// Numeric precision.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
}

impl ModelArgs {
    pub fn load(&self, global: &GlobalArgs) -> Result<Model> {
        let opts = LoadOptions::from_env(self.dtype.candle(), !global.quiet)?;
        Model::load(&self.model, &opts)
    }
    pub fn run_options(&self, global: &GlobalArgs, normalize: bool) -> RunOptions {
        RunOptions { batch_size: self.batch_size as usize, normalize, progress: !global.quiet }
    }
}

#[derive(Args, Debug)]
pub struct ModelsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn models(a: ModelsArgs) -> Result<()> {
    let all = registry::all()?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&all)?),
        Format::Table => {
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|e| {
                    vec![
                        e.name.clone(),
                        e.year.to_string(),
                        e.modality.clone(),
                        format!("{:?}", e.status).to_lowercase(),
                        if e.gated { format!("{} (gated)", e.license) } else { e.license.clone() },
                    ]
                })
                .collect();
            print_table(&["name", "year", "modality", "biofm", "licence"], &rows);
            println!();
            for e in &all {
                println!("{} — {} ({}; {})", e.name, e.title, e.venue, e.paper);
                println!("    weights: {}", e.source);
                if !e.tasks.is_empty() {
                    println!("    tasks:   {}", e.tasks.join(", "));
                }
                println!("    parity:  {}", e.parity);
            }
            println!("\nStatus: supported = runs end to end with parity evidence; architecture = the network runs with");
            println!("parity evidence, its model-specific pipeline is not there yet; planned = not implemented yet.");
        }
    }
    Ok(())
}

/// Where and how embeddings are written.
#[derive(Args, Debug)]
pub struct EmbedOutput {
    /// Output file: .npy, .safetensors or .jsonl (rows follow input order).
    #[arg(long, short)]
    pub out: PathBuf,
    /// L2-normalise each embedding (what zero-shot and retrieval use).
    #[arg(long)]
    pub normalize: bool,
}

impl EmbedOutput {
    /// Fails before any work if the output could not be written.
    fn check(&self) -> Result<()> {
        AtomicFile::check_writable(&self.out)?;
        biofm_formats::EmbeddingFormat::from_path(&self.out)?;
        Ok(())
    }

    fn write(&self, mut table: EmbeddingTable, model: &Model, dtype: Dtype, g: &GlobalArgs) -> Result<()> {
        table.metadata.insert("model".into(), model.name().to_string());
        table.metadata.insert("normalized".into(), self.normalize.to_string());
        table.metadata.insert("dtype".into(), format!("{dtype:?}").to_lowercase());
        table.metadata.insert("biofm_version".into(), env!("CARGO_PKG_VERSION").into());
        table.write(&self.out)?;
        if !g.quiet {
            eprintln!("wrote {} embeddings of dimension {} to {}", table.len(), table.dim, self.out.display());
        }
        Ok(())
    }
}

#[derive(Args, Debug)]
pub struct EmbedImageArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub output: EmbedOutput,
    /// Image files or folders (folders are expanded recursively in sorted order).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

pub fn embed_image(a: EmbedImageArgs, g: &GlobalArgs) -> Result<()> {
    a.output.check()?;
    let files = pipelines::inputs::expand_images(&a.inputs)?;
    let model = a.model.load(g)?;
    let table = pipelines::embed_images(&model, &files, &a.model.run_options(g, a.output.normalize))?;
    a.output.write(table, &model, a.model.dtype, g)
}

#[derive(Args, Debug)]
pub struct EmbedTextArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub output: EmbedOutput,
    /// Texts to embed.
    #[arg(long, num_args = 1.., required_unless_present = "file", conflicts_with = "file")]
    pub text: Vec<String>,
    /// A UTF-8 file with one text per line (blank lines are skipped).
    #[arg(long)]
    pub file: Option<PathBuf>,
}

pub fn embed_text(a: EmbedTextArgs, g: &GlobalArgs) -> Result<()> {
    a.output.check()?;
    let texts = match &a.file {
        Some(f) => pipelines::inputs::read_lines(f)?,
        None => a.text.clone(),
    };
    let model = a.model.load(g)?;
    let table = pipelines::embed_texts(&model, &texts, &a.model.run_options(g, a.output.normalize))?;
    a.output.write(table, &model, a.model.dtype, g)
}

#[derive(Args, Debug)]
pub struct ZeroShotArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Class names (each is put into every template).
    #[arg(long, num_args = 1.., required_unless_present = "labels_file")]
    pub labels: Vec<String>,
    /// A file with one class name per line.
    #[arg(long, conflicts_with = "labels")]
    pub labels_file: Option<PathBuf>,
    /// Prompt templates with `{}` for the class name; several are averaged as open_clip
    /// does (default: the model's own, e.g. BiomedCLIP's "this is a photo of {}").
    #[arg(long, num_args = 1..)]
    pub template: Vec<String>,
    /// How many top labels to show per image in table output.
    #[arg(long, default_value_t = 3)]
    pub top_k: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Image files or folders.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

pub fn zero_shot(a: ZeroShotArgs, g: &GlobalArgs) -> Result<()> {
    let labels = match &a.labels_file {
        Some(f) => pipelines::inputs::read_lines(f)?,
        None => a.labels.clone(),
    };
    if labels.is_empty() {
        bail!("no labels given: pass --labels A B ... or --labels-file");
    }
    let files = pipelines::inputs::expand_images(&a.inputs)?;
    let model = a.model.load(g)?;
    let templates = if a.template.is_empty() { model.default_templates() } else { a.template.clone() };
    let result = pipelines::zero_shot(&model, &files, &labels, &templates, &a.model.run_options(g, true))?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        Format::Table => {
            let k = a.top_k.clamp(1, labels.len());
            let mut rows = Vec::new();
            for r in &result.predictions {
                let mut order: Vec<usize> = (0..r.probabilities.len()).collect();
                order.sort_by(|&i, &j| r.probabilities[j].total_cmp(&r.probabilities[i]));
                let best = order.iter().take(k).map(|&i| format!("{} {:.3}", labels[i], r.probabilities[i])).collect::<Vec<_>>();
                rows.push(vec![r.input.clone(), best.join(" | ")]);
            }
            print_table(&["image", &format!("top-{k} labels (probability)")], &rows);
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct RetrieveArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Image files or folders to search (or to query with, with --query-images).
    #[arg(long, num_args = 1.., required = true)]
    pub images: Vec<PathBuf>,
    /// Texts: queries for text→image search, or the candidates for --query-images.
    #[arg(long, num_args = 1.., required_unless_present = "texts_file")]
    pub text: Vec<String>,
    /// A file with one text per line (instead of --text).
    #[arg(long, conflicts_with = "text")]
    pub texts_file: Option<PathBuf>,
    /// Search the texts for each image (image→text) instead of images for each text.
    #[arg(long)]
    pub query_images: bool,
    /// Hits per query.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn retrieve(a: RetrieveArgs, g: &GlobalArgs) -> Result<()> {
    let texts = match &a.texts_file {
        Some(f) => pipelines::inputs::read_lines(f)?,
        None => a.text.clone(),
    };
    let files = pipelines::inputs::expand_images(&a.images)?;
    let model = a.model.load(g)?;
    let direction = if a.query_images { pipelines::Direction::ImageToText } else { pipelines::Direction::TextToImage };
    let result = pipelines::retrieve(&model, &files, &texts, direction, a.top_k, &a.model.run_options(g, true))?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        Format::Table => {
            for q in &result.queries {
                println!("{}", q.query);
                let rows: Vec<Vec<String>> = q
                    .hits
                    .iter()
                    .enumerate()
                    .map(|(i, h)| vec![(i + 1).to_string(), format!("{:.4}", h.score), h.item.clone()])
                    .collect();
                print_table(&["rank", "cosine", "match"], &rows);
                println!();
            }
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A checkpoint: .safetensors, or a PyTorch .bin/.pt/.pth zip file.
    pub file: PathBuf,
}

pub fn inspect(a: InspectArgs) -> Result<()> {
    let w = biofm_weights::Weights::open(&a.file).with_context(|| format!("cannot open {}", a.file.display()))?;
    let mut total = 0usize;
    let mut rows = Vec::new();
    for k in w.keys() {
        if let Some(info) = w.info(k) {
            total += info.shape.iter().product::<usize>();
            rows.push(vec![k.to_string(), format!("{:?}", info.shape), format!("{:?}", info.dtype)]);
        }
    }
    print_table(&["tensor", "shape", "dtype"], &rows);
    println!("{} tensors, {} parameters", rows.len(), total);
    Ok(())
}
