//! `biofm demo`: the main job on bundled real images with the bundled small model.

use crate::output::print_table;
use crate::GlobalArgs;
use anyhow::{bail, Result};
use biofm_models::{LoadOptions, Model};
use biofm_pipelines::{self as pipelines, Direction, RunOptions};
use candle_core::DType;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The repository's data folder (holds samples/ and models/); found automatically
    /// when biofm runs from the repository.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Where to write the demo's embedding files.
    #[arg(long, default_value = "target/biofm-demo")]
    pub out_dir: PathBuf,
}

const LABELS: &[&str] = &[
    "immunohistochemistry of colonic glands",
    "fundus photograph of the retina",
    "phase-contrast microscopy of a cell",
    "chest CT scan",
    "brain MRI",
];

/// Finds the repository's `data/` folder: the current directory, or above the binary
/// (`target/release/biofm` → `../../data`).
pub fn find_data_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = explicit {
        return Ok(d.to_path_buf());
    }
    let mut candidates = vec![PathBuf::from("data")];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).map(|a| a.join("data")));
    }
    candidates
        .into_iter()
        .find(|d| d.join("samples").is_dir() && d.join("models").is_dir())
        .ok_or_else(|| anyhow::anyhow!("cannot find the bundled data folder (data/samples, data/models): run from the repository root or pass --data"))
}

pub fn run(a: DemoArgs, g: &GlobalArgs) -> Result<()> {
    let data = find_data_dir(a.data.as_deref())?;
    let model_dir = data.join("models/tiny-biomedclip");
    let samples = data.join("samples");
    if !model_dir.join("open_clip_config.json").is_file() {
        bail!("the bundled demo model is missing from {}", model_dir.display());
    }
    let files = pipelines::inputs::expand_images(&[samples.clone()])?;
    let model_spec = model_dir.display().to_string();

    println!("biofm demo");
    println!("==========");
    println!("Model:  {model_spec}");
    println!("        a BiomedCLIP-architecture open_clip model (timm ViT + BERT) at toy size with RANDOM");
    println!("        weights: it shows the pipeline end to end; its predictions mean nothing.");
    println!("Images: {} real images in {} (IHC, fundus, microscopy; see data/README.md)", files.len(), samples.display());
    println!();

    let opts = LoadOptions::from_env(DType::F32, !g.quiet)?;
    let t0 = std::time::Instant::now();
    let model = Model::load(&model_spec, &opts)?;
    let run = RunOptions { batch_size: 8, normalize: true, progress: !g.quiet };

    let labels: Vec<String> = LABELS.iter().map(|s| s.to_string()).collect();
    let templates = vec!["this is a photo of {}".to_string()];
    let zs = pipelines::zero_shot(&model, &files, &labels, &templates, &run)?;
    println!("1. Zero-shot classification (template \"{}\")", templates[0]);
    let rows: Vec<Vec<String>> = zs
        .predictions
        .iter()
        .map(|p| {
            let best = p.probabilities.iter().copied().fold(f32::MIN, f32::max);
            vec![short(&p.input), p.label.clone(), format!("{best:.3}")]
        })
        .collect();
    print_table(&["image", "top label", "probability"], &rows);
    println!();

    std::fs::create_dir_all(&a.out_dir)?;
    let img_out = a.out_dir.join("image_embeddings.npy");
    let mut table = pipelines::embed_images(&model, &files, &run)?;
    table.metadata.insert("model".into(), model_spec.clone());
    table.write(&img_out)?;
    let txt_out = a.out_dir.join("label_embeddings.jsonl");
    let txt = pipelines::embed_texts(&model, &labels, &run)?;
    txt.write(&txt_out)?;
    println!("2. Embeddings: {} image rows × {} dims → {}", table.len(), table.dim, img_out.display());
    println!("               {} text rows × {} dims → {}", txt.len(), txt.dim, txt_out.display());
    println!();

    let queries = vec!["fundus photograph of the retina".to_string(), "immunohistochemistry of colonic glands".to_string()];
    let r = pipelines::retrieve(&model, &files, &queries, Direction::TextToImage, 2, &run)?;
    println!("3. Retrieval: top-2 images per text");
    for q in &r.queries {
        let hits: Vec<String> = q.hits.iter().map(|h| format!("{} ({:.3})", short(&h.item), h.score)).collect();
        println!("   \"{}\" → {}", q.query, hits.join(", "));
    }
    println!();
    println!("Done in {:.1} s.", t0.elapsed().as_secs_f64());
    println!();
    println!("The same commands with the real BiomedCLIP weights (784 MB, downloaded once into your Hugging Face");
    println!("cache, or used offline if you already have them there):");
    println!("  biofm zero-shot --model biomedclip --labels 'adenocarcinoma histopathology' 'brain MRI' 'chest X-ray' {}", samples.display());
    println!("  biofm embed image --model biomedclip --normalize --out embeddings.npy {}", samples.display());
    println!("  biofm retrieve --model biomedclip --images {} --text 'fundus photograph'", samples.display());
    Ok(())
}

fn short(p: &str) -> String {
    Path::new(p).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| p.to_string())
}
