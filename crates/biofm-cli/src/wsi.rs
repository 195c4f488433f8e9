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
