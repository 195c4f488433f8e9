//! `biofm bench`: biofm and the PyTorch reference (open_clip, scGPT, or a whole-slide
//! feature extraction route through timm) on the same model, inputs and thread count, in
//! one run, with the ratio.

use crate::demo::find_data_dir;
use crate::output::print_table;
use crate::GlobalArgs;
use anyhow::{bail, ensure, Context, Result};
use biofm_models::{LoadOptions, Model};
use biofm_preprocess::image::DecodeOptions;
use candle_core::DType;
use clap::Args;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// An open_clip model folder (with --cells: an scGPT checkpoint folder). Default: the
    /// full-size random BiomedCLIP written by `tools/reference/gen_openclip_fixtures.py
    /// --full .cache/biomedclip-random` (with --cells: `.cache/scgpt-full`, from
    /// `gen_scgpt_fixtures.py --full`).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Python of the reference environment (tools/reference/setup.sh creates it).
    #[arg(long, default_value = "tools/reference/.venv/bin/python")]
    pub python: PathBuf,
    /// Comma-separated batch sizes (default 1,8; with --cells 1,64).
    #[arg(long)]
    pub batch_sizes: Option<String>,
    /// Timed calls per engine and measurement, alternating PyTorch and biofm call by
    /// call so that both see the same machine conditions; medians are reported.
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// Untimed warm-up calls per engine and measurement.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Benchmark scGPT cell embedding instead (model default: `.cache/scgpt-full`, written
    /// by `tools/reference/gen_scgpt_fixtures.py --full .cache/scgpt-full`).
    #[arg(long)]
    pub cells: bool,
    /// With --cells: the .h5ad file whose first cells are embedded (default: scanpy's
    /// pbmc68k_reduced from scripts/fetch-test-data.sh, its raw.X).
    #[arg(long, requires = "cells")]
    pub input: Option<PathBuf>,
    /// With --cells and --input: read raw.X.
    #[arg(long, requires = "cells")]
    pub raw: bool,
    /// Benchmark whole-slide patch feature extraction on this slide instead: tissue
    /// patches through a full-size UNI-architecture encoder, biofm's `embed_patches`
    /// against the reference route (OpenSlide + Pillow/torchvision in a torch DataLoader
    /// + timm, `tools/reference/bench_wsi.py`) on the same coordinates, run by run.
    #[arg(long, conflicts_with_all = ["cells", "model"])]
    pub wsi: Option<PathBuf>,
    /// With --wsi: the UNI-architecture model folder (timm hub layout). Default:
    /// `.cache/uni-random`, written by `tools/reference/gen_uni_random.py --full .cache/uni-random`.
    #[arg(long, requires = "wsi")]
    pub encoder_weights: Option<PathBuf>,
    /// With --wsi: patch size in pixels at the target magnification (default: UNI's, 256).
    #[arg(long, requires = "wsi")]
    pub patch_size: Option<u32>,
    /// With --wsi: target magnification (default: UNI's, 20).
    #[arg(long, requires = "wsi")]
    pub mag: Option<f64>,
    /// With --wsi: patches per forward pass (both engines).
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// With --wsi: whole-slide runs per engine, alternating biofm and PyTorch run by run
    /// (after one untimed batch each); medians are reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// With --wsi: embed only the first N tissue patches.
    #[arg(long, requires = "wsi")]
    pub limit: Option<usize>,
    /// With --wsi: DataLoader worker processes on the PyTorch side (TRIDENT picks
    /// int(0.75 × cores), at least 1: 1 on 2 cores).
    #[arg(long, default_value_t = 1)]
    pub py_workers: usize,
    /// With --wsi: also time, in the same rounds, biofm's patch reading alone
    /// (read + decode + preprocess), its model alone (on patches read beforehand) and
    /// the PyTorch DataLoader alone, to show what the overlap of reading and compute buys.
    #[arg(long, requires = "wsi")]
    pub breakdown: bool,
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

/// Throughputs (calls' items per second) of one batch size.
#[derive(Default, Clone, Copy)]
struct Throughput {
    torch_img: f64,
    torch_txt_padded: f64,
    torch_txt_dynamic: f64,
    biofm_img: f64,
    biofm_txt: f64,
}

/// The worker's start-up line.
#[derive(Debug, Deserialize)]
struct PyHello {
    torch: String,
    open_clip: String,
    threads: usize,
}

/// The worker's answer to one timing request.
#[derive(Debug, Deserialize)]
struct PyTiming {
    seconds: f64,
}

/// `tools/reference/bench_openclip.py` running as a worker: the model is loaded once and
/// each request times one call.
struct PyWorker {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

/// `python SCRIPT --model DIR --threads N`: how every PyTorch bench worker starts; each
/// mode adds its own arguments.
fn worker_command(python: &std::path::Path, script: &std::path::Path, model_dir: &std::path::Path, threads: usize) -> std::process::Command {
    let mut cmd = std::process::Command::new(python);
    cmd.arg(script).arg("--model").arg(model_dir).arg("--threads").arg(threads.to_string());
    cmd
}

impl PyWorker {
    /// Starts `cmd` with piped stdin/stdout.
    fn spawn(mut cmd: std::process::Command, python: &std::path::Path) -> Result<Self> {
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", python.display()))?;
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        Ok(Self {
            child,
            stdin: stdin.context("no stdin for the PyTorch worker")?,
            stdout: std::io::BufReader::new(stdout.context("no stdout from the PyTorch worker")?),
        })
    }

    fn read_line(&mut self) -> Result<String> {
        use std::io::BufRead;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            let status = self.child.wait()?;
            bail!("the PyTorch benchmark worker exited ({status}); its messages are above");
        }
        Ok(line)
    }

    /// Seconds of one PyTorch call (`image B`, `text-padded B` or `text-dynamic B`).
    fn time(&mut self, request: &str) -> Result<f64> {
        use std::io::Write;
        writeln!(self.stdin, "{request}")?;
        self.stdin.flush()?;
        let line = self.read_line()?;
        let t: PyTiming = serde_json::from_str(&line).with_context(|| format!("unexpected reply from the PyTorch worker: {line}"))?;
        Ok(t.seconds)
    }
}

impl Drop for PyWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What both benchmarks check and parse first: the model folder (which must hold
/// `marker`), the reference Python and script, the thread count and the batch sizes.
struct Setup {
    model: PathBuf,
    script: PathBuf,
    threads: usize,
    batches: Vec<usize>,
}

fn setup(a: &BenchArgs, g: &GlobalArgs, default_model: &str, marker: &str, generator: &str, script: &str, default_batches: &str) -> Result<Setup> {
    let model = a.model.clone().unwrap_or_else(|| PathBuf::from(default_model));
    check_model(&model, marker, generator)?;
    let script = check_python(a, script)?;
    let threads = thread_count(g);
    let batches: Vec<usize> = a
        .batch_sizes
        .as_deref()
        .unwrap_or(default_batches)
        .split(',')
        .map(|s| s.trim().parse::<usize>().with_context(|| format!("bad batch size `{s}`")))
        .collect::<Result<_>>()?;
    if a.iters == 0 || batches.contains(&0) {
        bail!("--iters and batch sizes must be at least 1");
    }
    Ok(Setup { model, script, threads, batches })
}

/// Fails with the command that creates the full-size random model when `model` has no
/// `marker` file.
fn check_model(model: &std::path::Path, marker: &str, generator: &str) -> Result<()> {
    if !model.join(marker).is_file() {
        bail!(
            "{} has no {marker}. Create the full-size random model with\n  \
             tools/reference/setup.sh && tools/reference/.venv/bin/python tools/reference/{generator} --full {}",
            model.display(),
            model.display()
        );
    }
    Ok(())
}

/// Checks the reference Python and the worker script; returns the script's path.
fn check_python(a: &BenchArgs, script: &str) -> Result<PathBuf> {
    if !a.python.is_file() {
        bail!("{} not found: run tools/reference/setup.sh to create the PyTorch reference environment", a.python.display());
    }
    let script = PathBuf::from(script);
    if !script.is_file() {
        bail!("run biofm bench from the repository root ({} not found)", script.display());
    }
    Ok(script)
}

fn thread_count(g: &GlobalArgs) -> usize {
    g.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds of one call of `f`.
fn time_once<F: FnMut() -> Result<()>>(mut f: F) -> Result<f64> {
    let t0 = Instant::now();
    f()?;
    Ok(t0.elapsed().as_secs_f64())
}

/// Median seconds per call for each engine: warm-up calls, then `iters` rounds of one
/// call per engine, the order alternating from round to round.
fn paired(warmup: usize, iters: usize, engines: &mut [&mut dyn FnMut() -> Result<f64>]) -> Result<Vec<f64>> {
    for _ in 0..warmup {
        for e in engines.iter_mut() {
            e()?;
        }
    }
    Ok(paired_runs(iters, engines)?.into_iter().map(median).collect())
}

/// Seconds of every call of each engine (in round order): `iters` rounds of one call per
/// engine, the order reversed every other round.
fn paired_runs(iters: usize, engines: &mut [&mut dyn FnMut() -> Result<f64>]) -> Result<Vec<Vec<f64>>> {
    let mut times = vec![Vec::with_capacity(iters); engines.len()];
    for round in 0..iters {
        let n = engines.len();
        for j in 0..n {
            let j = if round % 2 == 0 { j } else { n - 1 - j };
            times[j].push(engines[j]()?);
        }
    }
    Ok(times)
}

pub fn run(a: BenchArgs, g: &GlobalArgs) -> Result<()> {
    if a.cells {
        return run_cells(a, g);
    }
    if let Some(slide) = a.wsi.clone() {
        return run_wsi(&a, g, &slide);
    }
    let Setup { model: model_dir, script, threads, batches } =
        setup(&a, g, ".cache/biomedclip-random", "open_clip_config.json", "gen_openclip_fixtures.py", "tools/reference/bench_openclip.py", "1,8")?;
    let data = find_data_dir(None)?;
    let images = biofm_pipelines::inputs::expand_images(&[data.join("samples")])?;
    let prompts_file = tempfile_with("biofm-bench-prompts", ".txt", &PROMPTS.join("\n"))?;
    eprintln!("loading {} in biofm and in PyTorch ...", model_dir.display());
    let model = Model::load(&model_dir.display().to_string(), &LoadOptions::from_env(DType::F32, !g.quiet)?)?;
    let mut cmd = worker_command(&a.python, &script, &model_dir, threads);
    cmd.arg("--texts-file")
        .arg(prompts_file.path())
        .arg("--images")
        .args(&images);
    let mut py = PyWorker::spawn(cmd, &a.python)?;
    let hello = py.read_line()?;
    let hello: PyHello =
        serde_json::from_str(&hello).with_context(|| format!("unexpected output from bench_openclip.py: {hello}"))?;
    if hello.threads != threads {
        bail!("PyTorch runs with {} threads instead of {threads}", hello.threads);
    }
    let versions = format!("torch {}, open_clip {}", hello.torch, hello.open_clip);

    let mut best: Vec<Throughput> = vec![Throughput::default(); batches.len()];
    for (i, &b) in batches.iter().enumerate() {
        let batch: Vec<PathBuf> = (0..b).map(|j| images[j % images.len()].clone()).collect();
        let pixels = biofm_pipelines::load_image_batch(&model, &batch, &DecodeOptions::default())?;
        eprintln!("image tower, batch {b}: {} paired calls ...", a.warmup + a.iters);
        let t = paired(
            a.warmup,
            a.iters,
            &mut [
                &mut || py.time(&format!("image {b}")),
                &mut || time_once(|| model.encode_images(&pixels).map(drop)),
            ],
        )?;
        (best[i].torch_img, best[i].biofm_img) = (b as f64 / t[0], b as f64 / t[1]);

        let texts: Vec<String> = (0..b).map(|j| PROMPTS[j % PROMPTS.len()].to_string()).collect();
        eprintln!("text tower, batch {b}: {} paired calls ...", a.warmup + a.iters);
        let py = std::cell::RefCell::new(&mut py);
        let t = paired(
            a.warmup,
            a.iters,
            &mut [
                &mut || py.borrow_mut().time(&format!("text-padded {b}")),
                &mut || py.borrow_mut().time(&format!("text-dynamic {b}")),
                &mut || time_once(|| model.encode_texts(&texts).map(drop)),
            ],
        )?;
        best[i].torch_txt_padded = b as f64 / t[0];
        best[i].torch_txt_dynamic = b as f64 / t[1];
        best[i].biofm_txt = b as f64 / t[2];
    }
    drop(py);

    let cpu = cpu_name();
    println!("Model: {} (f32), {threads} threads, {cpu}", model_dir.display());
    println!(
        "PyTorch side: {versions}. Median of {} calls per engine, PyTorch and biofm alternating call by call (after {} warm-up calls each)",
        a.iters, a.warmup
    );
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
    print_rows(&["tower", "batch", "PyTorch /s", "biofm /s", "biofm ÷ PyTorch"], &rows, a.markdown);
    Ok(())
}

/// A temporary file holding `text` (removed when dropped).
fn tempfile_with(prefix: &str, suffix: &str, text: &str) -> Result<tempfile::NamedTempFile> {
    let mut f = tempfile::Builder::new().prefix(prefix).suffix(suffix).tempfile()?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    Ok(f)
}

/// `biofm bench --cells`: scGPT's per-batch `embed_data` work (collation with binning,
/// encoder, `<cls>` output, normalisation), biofm vs the reference, paired call by call.
fn run_cells(a: BenchArgs, g: &GlobalArgs) -> Result<()> {
    use biofm_formats::anndata::{AnnData, MatrixSource};
    use biofm_models::scgpt::ScGpt;
    use biofm_preprocess::cells::{CellCollator, CellRng, CellTokens};
    use candle_core::{Device, Tensor};

    let Setup { model: model_dir, script, threads, batches } =
        setup(&a, g, ".cache/scgpt-full", "args.json", "gen_scgpt_fixtures.py", "tools/reference/bench_scgpt.py", "1,64")?;
    let (input, raw) = match &a.input {
        Some(p) => (p.clone(), a.raw),
        None => {
            let base = std::env::var_os("BIOFM_TEST_DATA").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("data/downloads"));
            (base.join("scanpy/10x_pbmc68k_reduced.h5ad"), true)
        }
    };
    let n_cells = *batches.iter().max().unwrap_or(&1);
    const MAX_LENGTH: usize = 1200;

    eprintln!("loading {} in biofm and in PyTorch ...", model_dir.display());
    let model = ScGpt::load(&model_dir, DType::F32, &Device::Cpu)?;
    let ad = AnnData::open(&input)?;
    let source = if raw { MatrixSource::Raw } else { MatrixSource::X };
    let ids: Vec<Option<u32>> = ad.gene_names(&source)?.iter().map(|gname| model.vocab.get(gname)).collect();
    let m = ad.matrix(&source)?;
    ensure!(m.shape().0 >= n_cells, "{} has {} cells, fewer than the largest batch {n_cells}", input.display(), m.shape().0);
    let rows = m.read_rows(0..n_cells)?;
    let cells: Vec<CellTokens> = (0..n_cells)
        .map(|r| {
            let (cols, vals) = rows.row(r);
            biofm_pipelines::cells::cell_tokens(&model, &ids, cols, vals)
        })
        .collect();
    let collator = CellCollator { pad_id: model.vocab.pad_id, pad_value: model.args.pad_value, n_bins: model.args.n_bins, max_length: MAX_LENGTH };

    let mut cmd = worker_command(&a.python, &script, &model_dir, threads);
    cmd.arg("--input")
        .arg(&input)
        .arg("--cells")
        .arg(n_cells.to_string())
        .arg("--max-length")
        .arg(MAX_LENGTH.to_string());
    if raw {
        cmd.arg("--raw");
    }
    let mut py = PyWorker::spawn(cmd, &a.python)?;
    let hello = py.read_line()?;
    let hello: serde_json::Value =
        serde_json::from_str(&hello).with_context(|| format!("unexpected output from bench_scgpt.py: {hello}"))?;
    if hello["threads"].as_u64() != Some(threads as u64) {
        bail!("PyTorch runs with {} threads instead of {threads}", hello["threads"]);
    }
    let versions = format!("torch {}, scgpt {}", hello["torch"].as_str().unwrap_or("?"), hello["scgpt"].as_str().unwrap_or("?"));

    let mut rows_out = Vec::new();
    for &b in &batches {
        eprintln!("cells, batch {b}: {} paired calls ...", a.warmup + a.iters);
        let embed = || -> Result<()> {
            let batch = collator.collate(cells[..b].to_vec(), &mut CellRng::new(0));
            let genes = Tensor::from_vec(batch.genes, (b, batch.len), &Device::Cpu)?;
            let values = Tensor::from_vec(batch.values, (b, batch.len), &Device::Cpu)?;
            drop(biofm_pipelines::cells::normalize_rows(&model.cell_embeddings(&genes, &values)?)?);
            Ok(())
        };
        let t = paired(
            a.warmup,
            a.iters,
            &mut [&mut || py.time(&format!("cells {b}")), &mut || time_once(embed)],
        )?;
        let (torch, ours) = (b as f64 / t[0], b as f64 / t[1]);
        rows_out.push(vec![
            format!("scGPT ({} layers, d {}), cells/s", model.args.nlayers, model.dim()),
            b.to_string(),
            format!("{torch:.2}"),
            format!("{ours:.2}"),
            format!("{:.2}×", ours / torch),
        ]);
    }
    drop(py);
    let cpu = cpu_name();
    println!("Model: {} (f32), {threads} threads, {cpu}; cells: first {n_cells} of {}{}", model_dir.display(), input.display(), if raw { " (raw.X)" } else { "" });
    println!(
        "PyTorch side: {versions}. Per call: collation (binning, padding to the batch's longest cell, max length {MAX_LENGTH}) + encoder + normalisation. \
         Median of {} calls per engine, alternating call by call (after {} warm-up calls each)",
        a.iters, a.warmup
    );
    println!();
    print_rows(&["task", "batch", "PyTorch /s", "biofm /s", "biofm ÷ PyTorch"], &rows_out, a.markdown);
    Ok(())
}

/// `biofm bench --wsi SLIDE`: whole-slide patch features through a full-size UNI
/// architecture. The tissue patch coordinates are computed once (biofm's tissue
/// detection and patch grid) and given to both engines; each timed run embeds all of
/// them: biofm's [`biofm_pipelines::wsi::embed_patches`] (reading, decoding and
/// preprocessing on a separate thread while the model encodes the previous batch) and
/// the reference route in `tools/reference/bench_wsi.py`. Both runs' features are
/// compared at the end.
fn run_wsi(a: &BenchArgs, g: &GlobalArgs, slide_path: &std::path::Path) -> Result<()> {
    use biofm_pipelines::wsi::embed_patches;
    use biofm_wsi::{detect_tissue, PatchPlan, PatchSpec, Slide, TissueOptions};
    use candle_core::Tensor;

    const DEFAULT_MODEL: &str = ".cache/uni-random";
    const MAX_ABS_DIFF: f32 = 1e-4;
    let model_dir = a.encoder_weights.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL));
    check_model(&model_dir, "config.json", "gen_uni_random.py")?;
    let script = check_python(a, "tools/reference/bench_wsi.py")?;
    let threads = thread_count(g);
    ensure!(a.repeats >= 1 && a.batch_size >= 1, "--repeats and --batch-size must be at least 1");

    eprintln!("loading {} as UNI (ViT-L/16) in biofm ...", model_dir.display());
    let encoder = Model::load_patch_encoder("uni", Some(&model_dir), &LoadOptions::from_env(DType::F32, !g.quiet)?)
        .with_context(|| format!("cannot load {} as the UNI architecture", model_dir.display()))?;
    let spec = PatchSpec {
        magnification: a.mag.unwrap_or(encoder.magnification),
        patch_size: a.patch_size.unwrap_or(encoder.patch_size),
        overlap: 0,
        min_tissue: 0.0,
    };
    let slide = Slide::open(slide_path).with_context(|| format!("cannot open {}", slide_path.display()))?;
    let plan = PatchPlan::for_slide(&slide, spec)?;
    let tissue = detect_tissue(&slide, &TissueOptions::default())?;
    let mut coords = plan.tissue_patches(&tissue.polygons());
    let all = coords.len();
    if let Some(n) = a.limit {
        coords.truncate(n);
    }
    ensure!(!coords.is_empty(), "{}: no tissue patches to embed", slide_path.display());
    let n = coords.len();
    let b = a.batch_size.min(n);
    eprintln!(
        "{}: {all} tissue patches of {} px at {}× (read {} px at level {}){}",
        slide_path.display(),
        spec.patch_size,
        spec.magnification,
        plan.patch_size_level,
        plan.level,
        if n < all { format!(", embedding the first {n}") } else { String::new() }
    );

    let spec_file = tempfile_with(
        "biofm-bench-coords",
        ".json",
        &serde_json::json!({
            "coords": coords,
            "level": plan.level,
            "read_size": plan.patch_size_level,
            "patch_size": spec.patch_size,
        })
        .to_string(),
    )?;
    let mut cmd = worker_command(&a.python, &script, &model_dir, threads);
    cmd.arg("--slide")
        .arg(slide_path)
        .arg("--coords")
        .arg(spec_file.path())
        .arg("--batch-size")
        .arg(a.batch_size.to_string())
        .arg("--workers")
        .arg(a.py_workers.to_string());
    let mut worker = PyWorker::spawn(cmd, &a.python)?;
    let hello = worker.read_line()?;
    let hello: serde_json::Value =
        serde_json::from_str(&hello).with_context(|| format!("unexpected output from bench_wsi.py: {hello}"))?;
    if hello["threads"].as_u64() != Some(threads as u64) {
        bail!("PyTorch runs with {} threads instead of {threads}", hello["threads"]);
    }
    let s = |k: &str| hello[k].as_str().unwrap_or("?").to_string();
    let versions = format!(
        "torch {}, timm {}, torchvision {}, openslide-python {} (OpenSlide {}), Pillow {}",
        s("torch"),
        s("timm"),
        s("torchvision"),
        s("openslide"),
        s("openslide_library"),
        s("pillow")
    );

    // biofm's read path as embed_patches runs it (patches of a batch in parallel), alone.
    let read_batch = |chunk: &[[i64; 2]]| biofm_pipelines::wsi::read_patch_batch(&slide, &plan, chunk, &encoder.transform);

    eprintln!("warm-up: one batch of {b} per engine ...");
    embed_patches(&slide, &plan, &coords[..b], &encoder, a.batch_size, |_| {})?;
    worker.time(&format!("run {b}"))?;

    let pre_read: Vec<Tensor> = if a.breakdown { coords.chunks(a.batch_size).map(read_batch).collect::<Result<_>>()? } else { Vec::new() };
    let mut features: Vec<f32> = Vec::new();
    let mut dim = 0;
    let rate = |t: f64| n as f64 / t;
    let mut biofm_run = || -> Result<f64> {
        let t0 = Instant::now();
        let (f, d) = embed_patches(&slide, &plan, &coords, &encoder, a.batch_size, |_| {})?;
        let t = t0.elapsed().as_secs_f64();
        (features, dim) = (f, d);
        eprintln!("  biofm    {:.3} patches/s ({t:.1} s)", rate(t));
        Ok(t)
    };
    let py = std::cell::RefCell::new(&mut worker);
    let mut torch_run = || -> Result<f64> {
        let t = py.borrow_mut().time("run")?;
        eprintln!("  PyTorch  {:.3} patches/s ({t:.1} s)", rate(t));
        Ok(t)
    };
    let mut biofm_read = || -> Result<f64> {
        let t = time_once(|| {
            for chunk in coords.chunks(a.batch_size) {
                drop(read_batch(chunk)?);
            }
            Ok(())
        })?;
        eprintln!("  biofm read only   {:.2} patches/s ({t:.2} s)", rate(t));
        Ok(t)
    };
    let mut biofm_model = || -> Result<f64> {
        let t = time_once(|| {
            for pixels in &pre_read {
                drop(encoder.model.encode_images(pixels)?);
            }
            Ok(())
        })?;
        eprintln!("  biofm model only  {:.3} patches/s ({t:.1} s)", rate(t));
        Ok(t)
    };
    let mut torch_read = || -> Result<f64> {
        let t = py.borrow_mut().time("read")?;
        eprintln!("  PyTorch DataLoader only  {:.2} patches/s ({t:.2} s)", rate(t));
        Ok(t)
    };
    eprintln!(
        "{} rounds of one whole-slide run per engine ({n} patches each){} ...",
        a.repeats,
        if a.breakdown { ", with the breakdown runs" } else { "" }
    );
    let times = if a.breakdown {
        paired_runs(a.repeats, &mut [&mut biofm_run, &mut torch_run, &mut biofm_read, &mut biofm_model, &mut torch_read])?
    } else {
        paired_runs(a.repeats, &mut [&mut biofm_run, &mut torch_run])?
    };

    // Feature agreement: the last run of each engine.
    let out = tempfile::Builder::new().prefix("biofm-bench-features").suffix(".f32").tempfile()?;
    let line = {
        use std::io::Write;
        let mut w = py.borrow_mut();
        writeln!(w.stdin, "features {}", out.path().display())?;
        w.stdin.flush()?;
        w.read_line()?
    };
    let shape: serde_json::Value = serde_json::from_str(&line).with_context(|| format!("unexpected reply from bench_wsi.py: {line}"))?;
    let bytes = std::fs::read(out.path())?;
    let reference: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    ensure!(
        shape["rows"].as_u64() == Some(n as u64) && shape["dim"].as_u64() == Some(dim as u64) && reference.len() == features.len(),
        "PyTorch made features of shape [{}, {}], biofm [{n}, {dim}]",
        shape["rows"],
        shape["dim"]
    );
    let finite = features.iter().chain(&reference).all(|v| v.is_finite());
    let max_diff = features.iter().zip(&reference).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    let max_abs = reference.iter().map(|v| v.abs()).fold(0f32, f32::max);
    drop(worker);

    let fmt_runs = |ts: &[f64]| ts.iter().map(|&t| format!("{:.3}", rate(t))).collect::<Vec<_>>().join(", ");
    let med: Vec<f64> = times.iter().map(|t| median(t.clone())).collect();
    let (ours, torch) = (rate(med[0]), rate(med[1]));
    println!(
        "Slide: {} ({n} tissue patches of {} px at {}×, read {} px at level {}{}), batch {}, {threads} threads, {}",
        slide_path.display(),
        spec.patch_size,
        spec.magnification,
        plan.patch_size_level,
        plan.level,
        if n < all { format!("; first {n} of {all}") } else { String::new() },
        a.batch_size,
        cpu_name()
    );
    println!("Model: {} as UNI (timm vit_large_patch16_224, LayerScale; f32)", model_dir.display());
    println!(
        "PyTorch side: {versions}; DataLoader with {} worker process{}. {} rounds of one whole-slide run per engine, \
         the order alternating round by round (after one untimed batch each); per-run and median patches/s",
        a.py_workers,
        if a.py_workers == 1 { "" } else { "es" },
        a.repeats
    );
    println!();
    let mut rows = vec![
        vec![
            "biofm: embed_patches (read + decode + preprocess ‖ model)".to_string(),
            fmt_runs(&times[0]),
            format!("{ours:.3}"),
        ],
        vec![
            format!("PyTorch: OpenSlide + Pillow/torchvision in a DataLoader ({} worker) + timm", a.py_workers),
            fmt_runs(&times[1]),
            format!("{torch:.3}"),
        ],
    ];
    if a.breakdown {
        rows.push(vec!["biofm: read + decode + preprocess only".into(), fmt_runs(&times[2]), format!("{:.2}", rate(med[2]))]);
        rows.push(vec!["biofm: model only (patches read beforehand)".into(), fmt_runs(&times[3]), format!("{:.3}", rate(med[3]))]);
        rows.push(vec!["PyTorch: DataLoader only (no model)".into(), fmt_runs(&times[4]), format!("{:.2}", rate(med[4]))]);
    }
    print_rows(&["engine", "runs (patches/s)", "median patches/s"], &rows, a.markdown);
    println!();
    println!("biofm ÷ PyTorch: {:.2}×", ours / torch);
    if a.breakdown {
        println!(
            "biofm reading costs {:.1}% of its model time; the pipelined run takes {:.1}% of read + model run back to back",
            100.0 * med[2] / med[3],
            100.0 * med[0] / (med[2] + med[3])
        );
    }
    println!("features [{n}, {dim}]: max |biofm − PyTorch| = {max_diff:.2e} (largest |feature| {max_abs:.2})");
    if !finite {
        bail!("non-finite features (NaN or infinity): the comparison is meaningless");
    }
    if max_diff > MAX_ABS_DIFF {
        bail!("biofm's and PyTorch's features differ by {max_diff:e} (> {MAX_ABS_DIFF:e}): the timings compare different computations");
    }
    Ok(())
}

/// The CPU model name, for the report.
fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Prints the result table, as Markdown (for docs/benchmarks.md) or aligned text.
fn print_rows(header: &[&str], rows: &[Vec<String>], markdown: bool) {
    if markdown {
        println!("| {} |", header.join(" | "));
        println!("|{}|", header.iter().map(|_| "---").collect::<Vec<_>>().join("|"));
        for r in rows {
            println!("| {} |", r.join(" | "));
        }
    } else {
        print_table(header, rows);
    }
}
