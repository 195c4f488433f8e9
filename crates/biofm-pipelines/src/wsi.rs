//! Whole-slide jobs: slides → tissue → patches → patch features, over a folder,
//! resumable and shareable between processes.
//!
//! Layout of a job directory (TRIDENT's, so its tools read the results as is):
//!
//! ```text
//! <job>/contours_geojson/<slide>.geojson        tissue outlines (QuPath)
//! <job>/contours/<slide>.png                    thumbnail with the outlines drawn
//! <job>/<mag>x_<size>px_<overlap>px_overlap/
//!     patches/<slide>_patches.h5                coords [N, 2] int64 + attributes
//!     features_<encoder>/<slide>.h5             features [N, D] float32 + coords
//!     features_<encoder>/_status/<slide>.json   done / failed (with the reason)
//!     features_<encoder>/_locks/<slide>.lock    held while a process works on it
//!     slide_features_mean_<encoder>/<slide>.h5  mean-pooled slide embedding (option)
//! ```
//!
//! A slide is done when its feature file exists; files are written under temporary
//! names and renamed, so a killed run leaves no half-written results. A process claims
//! a slide by creating its lock file (content first, then an atomic hard link to the
//! lock name) and refreshes the lock's
//! modification time while it works; a lock whose process is gone (same host) or that
//! has not been refreshed for `stale_after` is taken over.

use anyhow::{bail, Context, Result};
use biofm_formats::features::{write_coords, write_features, write_slide_embedding, FeatureAttrs};
use biofm_models::PatchEncoder;
use biofm_wsi::{detect_tissue, PatchPlan, PatchSpec, Slide, SlideOverrides, TissueOptions};
use candle_core::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// File extensions read as slides when a folder is given.
pub const SLIDE_EXTENSIONS: &[&str] =
    &["svs", "tif", "tiff", "ndpi", "mrxs", "scn", "vms", "vmu", "bif", "svslide", "png", "jpg", "jpeg"];

/// The slides among `inputs`: files as given; folders expanded to the files with a
/// slide extension in them (sorted by path), and in their subfolders too when
/// `recursive` (e.g. one folder per slide, as the GDC client downloads TCGA slides).
pub fn discover_slides(inputs: &[PathBuf], recursive: bool) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for f in entries {
            if f.is_dir() {
                if recursive {
                    walk(&f, recursive, out)?;
                }
            } else if f
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| SLIDE_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()))
            {
                out.push(f);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            walk(p, recursive, &mut out)?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            bail!("{}: no such slide file or folder", p.display());
        }
    }
    Ok(out)
}

/// The slide name used for output files: the file name without its extension
/// (`.ome.tif` counts as one, as the reference toolkit names them).
pub fn slide_name(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "slide".into());
    let lower = stem.to_ascii_lowercase();
    match lower.strip_suffix(".ome") {
        Some(base) if !base.is_empty() => stem[..base.len()].to_string(),
        _ => stem,
    }
}

/// `<mag>x_<size>px_<overlap>px_overlap`.
pub fn patch_dir_name(spec: &PatchSpec) -> String {
    let mag = if spec.magnification.fract() == 0.0 { format!("{}", spec.magnification as i64) } else { format!("{}", spec.magnification) };
    format!("{mag}x_{}px_{}px_overlap", spec.patch_size, spec.overlap)
}

/// Per-slide mpp / magnification from a CSV with a header naming `slide` (file name or
/// name without extension), `mpp` and/or `magnification` columns.
pub fn read_overrides_csv(path: &Path) -> Result<BTreeMap<String, SlideOverrides>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().with_context(|| format!("{} is empty", path.display()))?;
    let cols: Vec<String> = header.split(',').map(|c| c.trim().to_ascii_lowercase()).collect();
    let find = |names: &[&str]| cols.iter().position(|c| names.contains(&c.as_str()));
    let slide_col = find(&["slide", "wsi", "slide_id", "filename"])
        .with_context(|| format!("{}: the header needs a `slide` column (got: {header})", path.display()))?;
    let mpp_col = find(&["mpp"]);
    let mag_col = find(&["magnification", "mag", "objective_power"]);
    if mpp_col.is_none() && mag_col.is_none() {
        bail!("{}: the header needs an `mpp` and/or `magnification` column (got: {header})", path.display());
    }
    let mut out = BTreeMap::new();
    for (i, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |c: Option<usize>| -> Result<Option<f64>> {
            match c.and_then(|c| cells.get(c)).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => {
                    let x: f64 = v.parse().with_context(|| format!("{} line {}: `{v}` is not a number", path.display(), i + 1))?;
                    if !(x > 0.0 && x.is_finite()) {
                        bail!("{} line {}: {x} must be positive", path.display(), i + 1);
                    }
                    Ok(Some(x))
                }
            }
        };
        let slide = cells.get(slide_col).filter(|s| !s.is_empty()).with_context(|| format!("{} line {}: no slide name", path.display(), i + 1))?;
        out.insert(slide.to_string(), SlideOverrides { mpp: get(mpp_col)?, objective_power: get(mag_col)? });
    }
    Ok(out)
}

/// How a job runs.
#[derive(Debug, Clone)]
pub struct JobOptions {
    pub spec: PatchSpec,
    pub tissue: TissueOptions,
    /// Name used in `features_<encoder>` and the files' `encoder` attribute.
    pub encoder_name: String,
    pub batch_size: usize,
    /// Keep going after a slide fails (it is reported and retried by the next run).
    pub continue_on_error: bool,
    /// Also write the mean of each slide's patch features.
    pub slide_embedding: bool,
    /// Per-slide mpp / magnification, keyed by file name or slide name.
    pub overrides: BTreeMap<String, SlideOverrides>,
    /// mpp for every slide without one (and without an override).
    pub default_mpp: Option<f64>,
    /// A lock not refreshed for this long is taken over.
    pub stale_after: Duration,
    pub progress: bool,
}

/// What happened to one slide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SlideOutcome {
    Done { patches: usize, seconds: f64 },
    /// Finished before (its feature file exists).
    Skipped,
    /// Another process holds the slide's lock.
    Busy { holder: String },
    Failed { reason: String },
}

/// The per-slide record in `_status/<slide>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlideStatus {
    pub slide: String,
    pub path: String,
    #[serde(flatten)]
    pub outcome: SlideOutcome,
    pub host: String,
    pub pid: u32,
    /// Seconds since the Unix epoch.
    pub time: f64,
}

/// Totals of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobSummary {
    pub done: usize,
    pub skipped: usize,
    pub busy: usize,
    pub failed: usize,
    pub patches: usize,
    pub seconds: f64,
}

/// The folders of one job.
#[derive(Debug, Clone)]
pub struct JobDirs {
    pub root: PathBuf,
    pub patches: PathBuf,
    pub features: PathBuf,
    pub slide_features: PathBuf,
    pub status: PathBuf,
    pub locks: PathBuf,
    pub geojson: PathBuf,
    pub contours: PathBuf,
}

impl JobDirs {
    pub fn new(root: &Path, spec: &PatchSpec, encoder: &str) -> Self {
        let sub = root.join(patch_dir_name(spec));
        let features = sub.join(format!("features_{encoder}"));
        Self {
            root: root.to_path_buf(),
            patches: sub.join("patches"),
            slide_features: sub.join(format!("slide_features_mean_{encoder}")),
            status: features.join("_status"),
            locks: features.join("_locks"),
            features,
            geojson: root.join("contours_geojson"),
            contours: root.join("contours"),
        }
    }

    pub fn features_file(&self, name: &str) -> PathBuf {
        self.features.join(format!("{name}.h5"))
    }

    fn create(&self) -> Result<()> {
        for d in [&self.patches, &self.features, &self.status, &self.locks, &self.geojson, &self.contours] {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        Ok(())
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[derive(Debug, Serialize, Deserialize)]
struct LockInfo {
    host: String,
    pid: u32,
    time: f64,
}

/// A claimed slide. Dropping it removes the lock file.
pub struct SlideLock {
    path: PathBuf,
    file: std::fs::File,
    last_touch: Instant,
}

impl SlideLock {
    /// Refreshes the lock's modification time (at most every few seconds).
    pub fn touch(&mut self) {
        if self.last_touch.elapsed() >= Duration::from_secs(5) {
            let _ = self.file.set_modified(SystemTime::now());
            self.last_touch = Instant::now();
        }
    }
}

impl Drop for SlideLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Result of trying to claim a slide.
pub enum Claim {
    Acquired(SlideLock),
    /// Held by a live process: who.
    Held(String),
}

/// Claims `name` in `locks`, taking over a stale lock (its process is gone on this
/// host, or it was not refreshed for `stale_after`). `recovered` is called when a
/// stale lock was taken over.
pub fn claim(locks: &Path, name: &str, stale_after: Duration, mut recovered: impl FnMut(&str)) -> Result<Claim> {
    let path = locks.join(format!("{name}.lock"));
    let me = LockInfo { host: hostname(), pid: std::process::id(), time: now_secs() };
    for _ in 0..3 {
        // The lock appears with its content in one step: written under a private name,
        // then hard-linked to the lock name, which fails if the lock exists (atomic on
        // local and network file systems), so a process killed at any moment never
        // leaves an empty lock behind.
        let tmp = locks.join(format!(".{name}.lock.{}.{}.tmp", me.pid, now_secs()));
        let mut file = std::fs::File::create(&tmp).with_context(|| format!("cannot write in {}", locks.display()))?;
        serde_json::to_writer(&mut file, &me)?;
        file.flush()?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => return Ok(Claim::Acquired(SlideLock { path, file, last_touch: Instant::now() })),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create lock {}", path.display())),
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let info: Option<LockInfo> = serde_json::from_str(&text).ok();
        let age = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        let holder = info.as_ref().map_or_else(|| "an unknown process".to_string(), |i| format!("pid {} on {}", i.pid, i.host));
        let dead_here = info.as_ref().is_some_and(|i| i.host == me.host && i.pid != me.pid && !Path::new(&format!("/proc/{}", i.pid)).exists());
        // A lock without readable content was not written by a running biofm.
        let unreadable = info.is_none() && age > Duration::from_secs(60);
        let stale = dead_here || unreadable || age > stale_after;
        if !stale {
            return Ok(Claim::Held(holder));
        }
        // Move the stale lock aside under a unique name; only one process wins.
        let aside = locks.join(format!(".{name}.stale.{}.{}", me.pid, now_secs()));
        if std::fs::rename(&path, &aside).is_ok() {
            let _ = std::fs::remove_file(&aside);
            recovered(&holder);
        }
    }
    Ok(Claim::Held("another process (the lock changed hands repeatedly)".into()))
}

/// Removes temporary files a killed process left for `name` in `dir`.
fn remove_partials(dir: &Path, file_name: &str) {
    let prefix = format!(".{file_name}.");
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&prefix) && n.ends_with(".partial") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Reads, resizes and preprocesses the patches at `coords` (in parallel) into one
/// `[N, 3, H, W]` batch.
pub fn read_patch_batch(
    slide: &Slide,
    plan: &PatchPlan,
    coords: &[[i64; 2]],
    transform: &biofm_preprocess::image::TransformConfig,
) -> Result<Tensor> {
    let tensors: Vec<Tensor> = coords
        .par_iter()
        .map(|&[x, y]| -> Result<Tensor> {
            let img = plan.read_patch(slide, x, y).with_context(|| format!("patch at ({x}, {y})"))?;
            let t = transform.run(img).with_context(|| format!("cannot preprocess the patch at ({x}, {y})"))?;
            Ok(Tensor::from_vec(t.data, t.shape.to_vec(), &Device::Cpu)?)
        })
        .collect::<Result<_>>()?;
    Ok(Tensor::stack(&tensors, 0)?)
}

/// Patch features of `coords` on `slide`: `[N, D]` row-major, and `D`. Patches are
/// read and preprocessed on a separate thread (in parallel within a batch) while the
/// previous batch is encoded; `on_batch` gets the number of patches done so far.
pub fn embed_patches(
    slide: &Slide,
    plan: &PatchPlan,
    coords: &[[i64; 2]],
    encoder: &PatchEncoder,
    batch_size: usize,
    mut on_batch: impl FnMut(usize),
) -> Result<(Vec<f32>, usize)> {
    let batch_size = batch_size.max(1);
    let read_batch = |chunk: &[[i64; 2]]| read_patch_batch(slide, plan, chunk, &encoder.transform);
    let mut out: Vec<f32> = Vec::new();
    let mut dim = 0;
    let mut done = 0;
    std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Tensor>>(1);
        s.spawn(move || {
            for chunk in coords.chunks(batch_size) {
                if tx.send(read_batch(chunk)).is_err() {
                    break;
                }
            }
        });
        for batch in rx {
            let pixels = batch?;
            let n = pixels.dim(0)?;
            let pixels = pixels.to_dtype(encoder.model_dtype())?;
            let emb = encoder.model.encode_images(&pixels)?.to_dtype(candle_core::DType::F32)?;
            dim = emb.dim(1)?;
            out.extend(emb.flatten_all()?.to_vec1::<f32>()?);
            done += n;
            on_batch(done);
        }
        Ok(())
    })?;
    Ok((out, dim))
}

/// Runs the job over `slides`; `report` is called once per slide with its outcome.
pub fn run_job(
    slides: &[PathBuf],
    job: &Path,
    encoder: &PatchEncoder,
    opts: &JobOptions,
    mut report: impl FnMut(&Path, &SlideOutcome),
) -> Result<JobSummary> {
    let mut seen: BTreeMap<String, &Path> = BTreeMap::new();
    for p in slides {
        if let Some(first) = seen.insert(slide_name(p), p) {
            bail!(
                "{} and {} would both write `{}`: slide names (file names without extension) must be unique in a job",
                first.display(),
                p.display(),
                slide_name(p)
            );
        }
    }
    let dirs = JobDirs::new(job, &opts.spec, &opts.encoder_name);
    dirs.create()?;
    let started = Instant::now();
    let mut summary = JobSummary::default();
    let overall = if opts.progress { ProgressBar::new(slides.len() as u64) } else { ProgressBar::hidden() };
    overall.set_style(
        ProgressStyle::with_template("{spinner} slides {pos}/{len} {bar:20} patches {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for path in slides {
        let name = slide_name(path);
        let outcome = if dirs.features_file(&name).exists() {
            SlideOutcome::Skipped
        } else {
            match claim(&dirs.locks, &name, opts.stale_after, |holder| {
                if opts.progress {
                    overall.suspend(|| eprintln!("note: {name}: took over a stale lock from {holder}"));
                }
                remove_partials(&dirs.features, &format!("{name}.h5"));
                remove_partials(&dirs.patches, &format!("{name}_patches.h5"));
                remove_partials(&dirs.slide_features, &format!("{name}.h5"));
            })? {
                Claim::Held(holder) => SlideOutcome::Busy { holder },
                Claim::Acquired(mut lock) => {
                    // Finished by another process between the check and the claim?
                    if dirs.features_file(&name).exists() {
                        SlideOutcome::Skipped
                    } else {
                        let t0 = Instant::now();
                        let r = process_slide(path, &name, &dirs, encoder, opts, &mut lock, &overall, summary.patches, started);
                        match r {
                            Ok(patches) => SlideOutcome::Done { patches, seconds: t0.elapsed().as_secs_f64() },
                            Err(e) => SlideOutcome::Failed { reason: format!("{e:#}") },
                        }
                    }
                }
            }
        };
        match &outcome {
            SlideOutcome::Done { patches, .. } => {
                summary.done += 1;
                summary.patches += patches;
            }
            SlideOutcome::Skipped => summary.skipped += 1,
            SlideOutcome::Busy { .. } => summary.busy += 1,
            SlideOutcome::Failed { .. } => summary.failed += 1,
        }
        if matches!(outcome, SlideOutcome::Done { .. } | SlideOutcome::Failed { .. }) {
            let status = SlideStatus {
                slide: name.clone(),
                path: path.display().to_string(),
                outcome: outcome.clone(),
                host: hostname(),
                pid: std::process::id(),
                time: now_secs(),
            };
            write_status(&dirs.status.join(format!("{name}.json")), &status)?;
        }
        overall.inc(1);
        overall.suspend(|| report(path, &outcome));
        if let SlideOutcome::Failed { reason } = &outcome {
            if !opts.continue_on_error {
                overall.finish_and_clear();
                bail!("{}: {reason}\n(use --continue-on-error to go on past failed slides)", path.display());
            }
        }
    }
    overall.finish_and_clear();
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn write_status(path: &Path, status: &SlideStatus) -> Result<()> {
    let mut f = biofm_formats::AtomicFile::create(path)?;
    serde_json::to_writer_pretty(f.writer(), status)?;
    f.commit()
}

#[allow(clippy::too_many_arguments)]
fn process_slide(
    path: &Path,
    name: &str,
    dirs: &JobDirs,
    encoder: &PatchEncoder,
    opts: &JobOptions,
    lock: &mut SlideLock,
    overall: &ProgressBar,
    patches_before: usize,
    job_started: Instant,
) -> Result<usize> {
    let mut slide = Slide::open(path)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let over = opts.overrides.get(&file_name).or_else(|| opts.overrides.get(name)).copied();
    if let Some(o) = over {
        slide.apply_overrides(o);
    } else if slide.mpp().is_none() {
        if let Some(m) = opts.default_mpp {
            slide.apply_overrides(SlideOverrides { mpp: Some(m), objective_power: None });
        }
    }
    let plan = PatchPlan::for_slide(&slide, opts.spec)?;
    let tissue = detect_tissue(&slide, &opts.tissue)?;
    lock.touch();
    let rings = tissue.polygons();
    write_json_atomic(&dirs.geojson.join(format!("{name}.geojson")), &tissue.to_geojson())?;
    write_png_atomic(&dirs.contours.join(format!("{name}.png")), tissue.width as u32, tissue.height as u32, &tissue.overlay())?;
    let coords = plan.tissue_patches(&rings);
    let (w, h) = slide.dimensions();
    let attrs = FeatureAttrs {
        encoder: opts.encoder_name.clone(),
        name: name.to_string(),
        patch_size: opts.spec.patch_size,
        patch_size_level0: plan.patch_size_level0() as u32,
        target_magnification: opts.spec.magnification,
        level0_magnification: Some(plan.level0_magnification),
        level0_mpp: slide.mpp().map(|m| m.0),
        overlap: opts.spec.overlap,
        level0_width: w,
        level0_height: h,
    };
    write_coords(&dirs.patches.join(format!("{name}_patches.h5")), &coords, &attrs)?;
    let n = coords.len();
    let (features, dim) = if n == 0 {
        (Vec::new(), encoder.embedding_dim())
    } else {
        embed_patches(&slide, &plan, &coords, encoder, opts.batch_size, |done| {
            lock.touch();
            let total = patches_before + done;
            let rate = total as f64 / job_started.elapsed().as_secs_f64().max(1e-9);
            overall.set_message(format!("{total} ({name}: {done}/{n}) {rate:.1}/s"));
        })?
    };
    if dim == 0 {
        bail!("the encoder's embedding width is unknown and the slide has no tissue patches");
    }
    if opts.slide_embedding {
        let mut mean = vec![0f32; dim];
        if n > 0 {
            let mut acc = vec![0f64; dim];
            for row in features.chunks_exact(dim) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += f64::from(v);
                }
            }
            for (m, a) in mean.iter_mut().zip(acc) {
                *m = (a / n as f64) as f32;
            }
        }
        write_slide_embedding(&dirs.slide_features.join(format!("{name}.h5")), &mean, "mean", &attrs)?;
    }
    // The feature file last: its existence marks the slide done.
    write_features(&dirs.features_file(name), &features, dim, &coords, &attrs)?;
    Ok(n)
}

fn write_json_atomic(path: &Path, v: &serde_json::Value) -> Result<()> {
    let mut f = biofm_formats::AtomicFile::create(path)?;
    serde_json::to_writer(f.writer(), v)?;
    f.commit()
}

fn write_png_atomic(path: &Path, w: u32, h: u32, rgb: &[u8]) -> Result<()> {
    let mut f = biofm_formats::AtomicFile::create(path)?;
    {
        let mut enc = png::Encoder::new(f.writer(), w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()?.write_image_data(rgb)?;
    }
    f.commit()
}
