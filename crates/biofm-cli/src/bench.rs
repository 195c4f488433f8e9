//! `biofm bench`: biofm and PyTorch/open_clip on the same model, inputs and thread count,
//! in one run, with the ratio.

use crate::demo::find_data_dir;
use crate::output::print_table;
use crate::GlobalArgs;
use anyhow::{bail, Context, Result};
use biofm_models::{LoadOptions, Model};
use biofm_preprocess::image::DecodeOptions;
use candle_core::DType;
use clap::Args;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// An open_clip model folder. Default: the full-size random BiomedCLIP written by
    /// `tools/reference/gen_openclip_fixtures.py --full .cache/biomedclip-random`.
    #[arg(long, default_value = ".cache/biomedclip-random")]
    pub model: PathBuf,
    /// Python of the reference environment (tools/reference/setup.sh creates it).
    #[arg(long, default_value = "tools/reference/.venv/bin/python")]
    pub python: PathBuf,
    /// Comma-separated batch sizes.
    #[arg(long, default_value = "1,8")]
    pub batch_sizes: String,
    /// Timed iterations per measurement (median reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Untimed warm-up iterations per measurement.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Alternating rounds (PyTorch, biofm, PyTorch, biofm, ...); the best median of the
    /// rounds is reported for each engine, to damp machine noise.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Print the table as Markdown (for docs/benchmarks.md).
    #[arg(long)]
    pub markdown: bool,
}

const PROMPTS: &[&str] = &[
    "adenocarcinoma histopathology",
    "immunohistochemistry staining of colonic glands",
    "a fundus photograph of a normal left eye",
    "Chest X-ray showing bilateral pleural effusion",
    "phase-contrast microscopy of a single cell in saline",
    "retinal microaneurysms in diabetic retinopathy",
    "T1-weighted brain MRI with an enhancing lesion",
    "hematoxylin and eosin stained lymph node with metastatic carcinoma",
];

#[derive(Debug, Deserialize)]
struct PyOut {
    torch: String,
    open_clip: String,
    threads: usize,
    results: Vec<PyResult>,
}

#[derive(Debug, Deserialize)]
struct PyResult {
    tower: String,
    #[serde(default)]
    variant: Option<String>,
    batch: usize,
    per_second: f64,
}

#[derive(Default, Clone, Copy)]
struct Best {
    torch_img: f64,
    torch_txt_padded: f64,
    torch_txt_dynamic: f64,
    biofm_img: f64,
    biofm_txt: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<F: FnMut() -> Result<()>>(warmup: usize, iters: usize, mut f: F) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let mut ts = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t0 = Instant::now();
        f()?;
        ts.push(t0.elapsed().as_secs_f64());
    }
    Ok(median(ts))
}

pub fn run(a: BenchArgs, g: &GlobalArgs) -> Result<()> {
    if !a.model.join("open_clip_config.json").is_file() {
        bail!(
            "{} is not an open_clip model folder. Create the full-size random BiomedCLIP with\n  \
             tools/reference/setup.sh && tools/reference/.venv/bin/python tools/reference/gen_openclip_fixtures.py --full {}",
            a.model.display(),
            a.model.display()
        );
    }
    if !a.python.is_file() {
        bail!("{} not found: run tools/reference/setup.sh to create the PyTorch reference environment", a.python.display());
    }
    let threads = g.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let batches: Vec<usize> = a
        .batch_sizes
        .split(',')
        .map(|s| s.trim().parse::<usize>().with_context(|| format!("bad batch size `{s}`")))
        .collect::<Result<_>>()?;
    if a.iters == 0 || a.rounds == 0 || batches.iter().any(|&b| b == 0) {
        bail!("--iters, --rounds and batch sizes must be at least 1");
    }
    let data = find_data_dir(None)?;
    let images = biofm_pipelines::inputs::expand_images(&[data.join("samples")])?;
    let prompts_file = tempfile_with(&PROMPTS.join("\n"))?;
    let script = PathBuf::from("tools/reference/bench_openclip.py");
    if !script.is_file() {
        bail!("run biofm bench from the repository root ({} not found)", script.display());
    }

    eprintln!("loading {} ...", a.model.display());
    let model = Model::load(&a.model.display().to_string(), &LoadOptions::from_env(DType::F32, !g.quiet)?)?;
    let mut best: Vec<Best> = vec![Best::default(); batches.len()];
    let mut versions = String::new();
    for round in 0..a.rounds {
        eprintln!("round {}/{}: PyTorch ...", round + 1, a.rounds);
        let out = std::process::Command::new(&a.python)
            .arg(&script)
            .arg("--model")
            .arg(&a.model)
            .arg("--threads")
            .arg(threads.to_string())
            .arg("--batch-sizes")
            .arg(&a.batch_sizes)
            .arg("--iters")
            .arg(a.iters.to_string())
            .arg("--warmup")
            .arg(a.warmup.to_string())
            .arg("--texts-file")
            .arg(prompts_file.path())
            .arg("--images")
            .args(&images)
            .output()
            .with_context(|| format!("cannot run {}", a.python.display()))?;
        if !out.status.success() {
            bail!("the PyTorch benchmark failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        let py: PyOut = serde_json::from_slice(&out.stdout).context("unexpected output from bench_openclip.py")?;
        if py.threads != threads {
            bail!("PyTorch ran with {} threads instead of {threads}", py.threads);
        }
        versions = format!("torch {}, open_clip {}", py.torch, py.open_clip);
        for r in &py.results {
            if let Some(i) = batches.iter().position(|&b| b == r.batch) {
                let slot = match (r.tower.as_str(), r.variant.as_deref()) {
                    ("image", _) => &mut best[i].torch_img,
                    ("text", Some("dynamic padding")) => &mut best[i].torch_txt_dynamic,
                    ("text", _) => &mut best[i].torch_txt_padded,
                    _ => continue,
                };
                *slot = slot.max(r.per_second);
            }
        }

        eprintln!("round {}/{}: biofm ...", round + 1, a.rounds);
        for (i, &b) in batches.iter().enumerate() {
            let batch: Vec<PathBuf> = (0..b).map(|j| images[j % images.len()].clone()).collect();
            let pixels = biofm_pipelines::load_image_batch(&model, &batch, &DecodeOptions::default())?;
            let t = time(a.warmup, a.iters, || model.encode_images(&pixels).map(drop))?;
            best[i].biofm_img = best[i].biofm_img.max(b as f64 / t);
            let texts: Vec<String> = (0..b).map(|j| PROMPTS[j % PROMPTS.len()].to_string()).collect();
            let t = time(a.warmup, a.iters, || model.encode_texts(&texts).map(drop))?;
            best[i].biofm_txt = best[i].biofm_txt.max(b as f64 / t);
        }
    }

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    println!("Model: {} (f32), {threads} threads, {cpu}", a.model.display());
    println!("PyTorch side: {versions}; best median of {} rounds × {} iterations (after {} warm-up)", a.rounds, a.iters, a.warmup);
    println!();
    let mut rows = Vec::new();
    for (i, &b) in batches.iter().enumerate() {
        let x = best[i];
        rows.push(vec![
            "image (ViT-B/16, 224 px)".into(),
            b.to_string(),
            format!("{:.2}", x.torch_img),
            format!("{:.2}", x.biofm_img),
            format!("{:.2}×", x.biofm_img / x.torch_img),
        ]);
        rows.push(vec![
            "text (BERT-base, open_clip pads to 256)".into(),
            b.to_string(),
            format!("{:.2}", x.torch_txt_padded),
            format!("{:.2}", x.biofm_txt),
            format!("{:.2}×", x.biofm_txt / x.torch_txt_padded),
        ]);
        rows.push(vec![
            "text (BERT-base, both padded to the longest)".into(),
            b.to_string(),
            format!("{:.2}", x.torch_txt_dynamic),
            format!("{:.2}", x.biofm_txt),
            format!("{:.2}×", x.biofm_txt / x.torch_txt_dynamic),
        ]);
    }
    let header = ["tower", "batch", "PyTorch /s", "biofm /s", "biofm ÷ PyTorch"];
    if a.markdown {
        println!("| {} |", header.join(" | "));
        println!("|{}|", header.iter().map(|_| "---").collect::<Vec<_>>().join("|"));
        for r in &rows {
            println!("| {} |", r.join(" | "));
        }
    } else {
        print_table(&header, &rows);
    }
    Ok(())
}

/// A temporary file holding `text` (removed when dropped).
fn tempfile_with(text: &str) -> Result<tempfile::NamedTempFile> {
    let mut f = tempfile::Builder::new().prefix("biofm-bench-prompts").suffix(".txt").tempfile()?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    Ok(f)
}
