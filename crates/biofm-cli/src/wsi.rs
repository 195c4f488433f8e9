//! `biofm wsi`: whole-slide images.

use crate::output::print_table;
use anyhow::{Context, Result};
use biofm_wsi::Slide;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum WsiCommand {
    /// Levels, tile layout, microns per pixel and magnification of slides.
    Info(InfoArgs),
    /// Tissue detection: outlines as GeoJSON (QuPath: File > Import objects) and a
    /// thumbnail PNG with the outlines drawn, per slide.
    Segment(SegmentArgs),
    /// The whole job over a folder of slides: tissue → patches at a target
    /// magnification → patch features (HDF5 per slide, TRIDENT's layout). Resumable;
    /// several processes or machines can share one job folder.
    Run(RunArgs),
    /// Per-slide state of a job folder (all processes' results): done, failed with the
    /// reason, in progress (locked), with totals.
    Status(StatusArgs),
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Job folder given to `biofm wsi run --job`.
    pub job: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The entries of `dir` that `keep` accepts, sorted; none when `dir` cannot be read.
fn sorted_paths(dir: &std::path::Path, keep: impl Fn(&std::path::Path) -> bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| keep(p)).collect())
        .unwrap_or_default();
    out.sort();
    out
}

pub fn status(a: StatusArgs) -> Result<()> {
    let mut rows = Vec::new();
    let mut all = Vec::new();
    let mut totals = std::collections::BTreeMap::<String, usize>::new();
    let mut found = false;
    if !a.job.is_dir() {
        anyhow::bail!("cannot read the job folder {}: not a folder", a.job.display());
    }
    for sub in sorted_paths(&a.job, |p| p.is_dir()) {
        for f in sorted_paths(&sub, |p| p.is_dir() && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("features_"))) {
            found = true;
            let setting = format!("{}/{}", sub.file_name().unwrap_or_default().to_string_lossy(), f.file_name().unwrap_or_default().to_string_lossy());
            for e in sorted_paths(&f.join("_status"), |p| p.extension().is_some_and(|x| x == "json")) {
                let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&e)?)
                    .with_context(|| format!("{} is not a status file", e.display()))?;
                let slide = v["slide"].as_str().unwrap_or_default().to_string();
                // A status says "failed" but the feature file exists: a later run did it.
                let mut state = v["state"].as_str().unwrap_or("?").to_string();
                if state == "failed" && f.join(format!("{slide}.h5")).is_file() {
                    state = "done".into();
                }
                *totals.entry(state.clone()).or_default() += 1;
                let detail = match state.as_str() {
                    "done" => format!("{} patches, {:.1} s", v["patches"].as_u64().unwrap_or(0), v["seconds"].as_f64().unwrap_or(0.0)),
                    _ => v["reason"].as_str().unwrap_or_default().replace('\n', " "),
                };
                rows.push(vec![setting.clone(), slide, state, format!("{} (pid {})", v["host"].as_str().unwrap_or("?"), v["pid"]), detail]);
                all.push(v);
            }
            for l in sorted_paths(&f.join("_locks"), |p| p.extension().is_some_and(|x| x == "lock")) {
                let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&l).unwrap_or_default()).unwrap_or_default();
                let slide = l.file_stem().unwrap_or_default().to_string_lossy().into_owned();
                *totals.entry("in progress".into()).or_default() += 1;
                let age = std::fs::metadata(&l).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).map_or(0, |d| d.as_secs());
                rows.push(vec![
                    setting.clone(),
                    slide.clone(),
                    "in progress".into(),
                    format!("{} (pid {})", v["host"].as_str().unwrap_or("?"), v["pid"]),
                    format!("lock refreshed {age} s ago"),
                ]);
                all.push(serde_json::json!({"slide": slide, "state": "in_progress", "host": v["host"], "pid": v["pid"], "lock_age_s": age}));
            }
        }
    }
    if !found {
        anyhow::bail!("{} has no <mag>x_<size>px_<overlap>px_overlap/features_<encoder>/ folder: is it a `biofm wsi run` job?", a.job.display());
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    print_table(&["setting", "slide", "state", "by", "detail"], &rows);
    let summary: Vec<String> = totals.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!("{}", summary.join(", "));
    Ok(())
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Slide folder(s) or files.
    #[arg(long, required = true, num_args = 1..)]
    pub slides: Vec<PathBuf>,
    /// Also look for slides in subfolders of the slide folders (e.g. one folder per slide).
    #[arg(long)]
    pub recursive: bool,
    /// Job folder (results go to <job>/<mag>x_<size>px_<overlap>px_overlap/features_<encoder>/).
    #[arg(long)]
    pub job: PathBuf,
    /// Patch encoder: `uni`, `uni2-h` (patch size, magnification and preprocessing come
    /// with them), `biomedclip`, a timm / open_clip model folder, or hf:ORG/NAME.
    #[arg(long)]
    pub encoder: String,
    /// Weights for a named encoder: its downloaded hub folder or the checkpoint file
    /// (e.g. UNI's pytorch_model.bin).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Target magnification (default: the encoder's, else 20).
    #[arg(long)]
    pub mag: Option<f64>,
    /// Patch size in pixels at the target magnification (default: the encoder's, else 256).
    #[arg(long)]
    pub patch_size: Option<u32>,
    /// Overlap between neighbouring patches, in pixels at the target magnification.
    #[arg(long, default_value_t = 0)]
    pub overlap: u32,
    /// Keep patches with at least this fraction of tissue (0: any patch touching tissue).
    #[arg(long, default_value_t = 0.0)]
    pub min_tissue: f64,
    /// Patches per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Go on past slides that fail (each is reported; the exit status is still non-zero).
    #[arg(long)]
    pub continue_on_error: bool,
    /// Also write each slide's mean patch embedding (slide_features_mean_<encoder>/).
    #[arg(long)]
    pub slide_embedding: bool,
    /// CSV with per-slide `slide,mpp[,magnification]` (slide = file name or name without extension).
    #[arg(long)]
    pub overrides: Option<PathBuf>,
    /// Microns per pixel for slides that record none (and have no override).
    #[arg(long)]
    pub mpp: Option<f64>,
    /// Take over a slide's lock when it was not refreshed for this many seconds
    /// (locks of processes that died on this host are taken over at once).
    #[arg(long, default_value_t = 600)]
    pub stale_lock_after: u64,
    /// Tissue detection: pyramid level closest to this downsample.
    #[arg(long, default_value_t = 32.0)]
    pub tissue_downsample: f64,
    /// Tissue detection: drop pieces smaller than this many µm².
    #[arg(long, default_value_t = 10_000.0)]
    pub min_area: f64,
    /// Precision.
    #[arg(long, value_enum, default_value_t = crate::Dtype::F32)]
    pub dtype: crate::Dtype,
}

pub fn run(a: RunArgs, g: &crate::GlobalArgs) -> Result<()> {
    use biofm_pipelines::wsi::{discover_slides, read_overrides_csv, run_job, JobDirs, JobOptions, SlideOutcome};
    let slides = discover_slides(&a.slides, a.recursive)?;
    if slides.is_empty() {
        anyhow::bail!("no slides found in {:?} (looked for {})", a.slides, biofm_pipelines::wsi::SLIDE_EXTENSIONS.join(", "));
    }
    if let Some(m) = a.mpp {
        anyhow::ensure!(m > 0.0 && m.is_finite(), "--mpp must be a positive number, got {m}");
    }
    let overrides = match &a.overrides {
        Some(p) => read_overrides_csv(p)?,
        None => Default::default(),
    };
    let opts = biofm_models::LoadOptions::from_env(a.dtype.candle(), !g.quiet)?;
    let encoder = biofm_models::Model::load_patch_encoder(&a.encoder, a.weights.as_deref(), &opts)
        .with_context(|| format!("cannot load the patch encoder `{}`", a.encoder))?;
    let encoder_name = encoder_dir_name(&a.encoder);
    let spec = biofm_wsi::PatchSpec {
        magnification: a.mag.unwrap_or(encoder.magnification),
        patch_size: a.patch_size.unwrap_or(encoder.patch_size),
        overlap: a.overlap,
        min_tissue: a.min_tissue,
    };
    let job_opts = JobOptions {
        spec,
        tissue: biofm_wsi::TissueOptions { downsample: a.tissue_downsample, min_area_um2: a.min_area, ..Default::default() },
        encoder_name: encoder_name.clone(),
        batch_size: a.batch_size,
        continue_on_error: a.continue_on_error,
        slide_embedding: a.slide_embedding,
        overrides,
        default_mpp: a.mpp,
        stale_after: std::time::Duration::from_secs(a.stale_lock_after),
        progress: !g.quiet,
    };
    let dirs = JobDirs::new(&a.job, &spec, &encoder_name);
    if !g.quiet {
        eprintln!(
            "{} slides, {} px patches at {}x (overlap {} px, min tissue {}), encoder {} ({}-d) -> {}",
            slides.len(),
            spec.patch_size,
            spec.magnification,
            spec.overlap,
            spec.min_tissue,
            a.encoder,
            encoder.embedding_dim(),
            dirs.features.display()
        );
    }
    let summary = run_job(&slides, &a.job, &encoder, &job_opts, |path, outcome| {
        let name = biofm_pipelines::wsi::slide_name(path);
        match outcome {
            SlideOutcome::Done { patches, seconds } => {
                println!("done     {name}  {patches} patches  {seconds:.1} s  ({:.1} patches/s)", *patches as f64 / seconds.max(1e-9))
            }
            SlideOutcome::Skipped => println!("skipped  {name}  (already done)"),
            SlideOutcome::Busy { holder } => println!("busy     {name}  (being processed by {holder})"),
            SlideOutcome::Failed { reason } => println!("failed   {name}  {}", reason.replace('\n', " ")),
        }
    })?;
    if !g.quiet {
        eprintln!(
            "{} done, {} skipped, {} busy elsewhere, {} failed; {} patches in {:.1} s ({:.1} patches/s)",
            summary.done,
            summary.skipped,
            summary.busy,
            summary.failed,
            summary.patches,
            summary.seconds,
            summary.patches as f64 / summary.seconds.max(1e-9)
        );
    }
    if summary.failed > 0 {
        anyhow::bail!("{} slide(s) failed; see {} for the reasons", summary.failed, dirs.status.display());
    }
    Ok(())
}

/// The encoder's name in the job layout: the registry name, or a folder's name.
fn encoder_dir_name(spec: &str) -> String {
    let p = std::path::Path::new(spec);
    let base = if p.exists() {
        p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| spec.to_string())
    } else {
        spec.trim_start_matches("hf:").replace('/', "_")
    };
    base.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

#[derive(Args, Debug)]
pub struct SegmentArgs {
    /// Slide files.
    #[arg(required = true)]
    pub slides: Vec<PathBuf>,
    /// Output folder (`<slide>.geojson`, `<slide>_tissue.png`).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Segment at the pyramid level closest to this downsample.
    #[arg(long, default_value_t = 32.0)]
    pub downsample: f64,
    /// Drop tissue pieces smaller than this many µm².
    #[arg(long, default_value_t = 10_000.0)]
    pub min_area: f64,
}

pub fn segment(a: SegmentArgs, quiet: bool) -> Result<()> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let opts = biofm_wsi::TissueOptions { downsample: a.downsample, min_area_um2: a.min_area, ..Default::default() };
    for path in &a.slides {
        let s = Slide::open(path).with_context(|| format!("{}", path.display()))?;
        let m = biofm_wsi::detect_tissue(&s, &opts).with_context(|| format!("{}", path.display()))?;
        let stem = path.file_stem().and_then(|x| x.to_str()).unwrap_or("slide").to_string();
        let geo = a.out.join(format!("{stem}.geojson"));
        let geojson = m.to_geojson();
        let mut f = biofm_formats::AtomicFile::create(&geo)?;
        serde_json::to_writer(f.writer(), &geojson)?;
        f.commit()?;
        let png_path = a.out.join(format!("{stem}_tissue.png"));
        let mut f = biofm_formats::AtomicFile::create(&png_path)?;
        {
            let mut enc = png::Encoder::new(f.writer(), m.width as u32, m.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.write_header()?.write_image_data(&m.overlay())?;
        }
        f.commit()?;
        if !quiet {
            let pieces = geojson["features"].as_array().map_or(0, Vec::len);
            let area = m.area_px() * s.mpp().map(|(x, y)| x * y * 1e-6).unwrap_or(0.0);
            let (w, h) = s.dimensions();
            let share = m.area_px() / (w as f64 * h as f64) * 100.0;
            eprintln!(
                "{}: {pieces} tissue pieces, {share:.1}% of the slide{} (level {}, Otsu threshold {} on saturation) -> {}, {}",
                path.display(),
                if area > 0.0 { format!(", {area:.2} mm²") } else { String::new() },
                m.level,
                m.threshold,
                geo.display(),
                png_path.display()
            );
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Slide files (pyramidal TIFF / BigTIFF, Aperio SVS, OME-TIFF).
    #[arg(required = true)]
    pub slides: Vec<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn info(a: InfoArgs) -> Result<()> {
    let mut all = Vec::new();
    for path in &a.slides {
        let s = Slide::open(path).with_context(|| format!("{}", path.display()))?;
        if a.json {
            all.push(serde_json::json!({
                "path": path.display().to_string(),
                "vendor": s.vendor(), "backend": s.backend().to_string(),
                "mpp": s.mpp().map(|(x, y)| [x, y]),
                "objective_power": s.objective_power(),
                "levels": s.levels().iter().map(|l| serde_json::json!({
                    "width": l.width, "height": l.height, "downsample": l.downsample,
                    "tile": [l.tile_width, l.tile_height], "compression": l.compression(),
                })).collect::<Vec<_>>(),
                "properties": s.properties(),
            }));
            continue;
        }
        let (w, h) = s.dimensions();
        println!("{}: {} slide, {w} x {h} px, reader: {}", path.display(), s.vendor(), s.backend());
        match s.mpp() {
            Some((x, y)) => println!("  microns per pixel: {x} x {y}"),
            None => println!("  microns per pixel: unknown (give it with an mpp override)"),
        }
        if let Some(m) = s.objective_power() {
            println!("  objective magnification: {m}x");
        }
        let rows: Vec<Vec<String>> = s
            .levels()
            .iter()
            .enumerate()
            .map(|(i, l)| {
                vec![
                    i.to_string(),
                    format!("{} x {}", l.width, l.height),
                    format!("{:.4}", l.downsample),
                    format!("{} x {}", l.tile_width, l.tile_height),
                    l.compression(),
                ]
            })
            .collect();
        print_table(&["level", "size", "downsample", "tile", "compression"], &rows);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(())
}
