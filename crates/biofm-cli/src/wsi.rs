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
                "vendor": s.vendor(),
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
        println!("{}: {} slide, {w} x {h} px", path.display(), s.vendor());
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
