//! Lists a checkpoint's tensors and times opening it and materialising every tensor.
//!
//! `cargo run --release -p biofm-weights --example inspect -- <file>... [--quiet] [--open-only]`
//!
//! `--quiet` prints only the summary; `--open-only` skips materialising the tensors.

use biofm_weights::Weights;
use candle_core::{DType, Device};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quiet = args.iter().any(|a| a == "--quiet");
    let open_only = args.iter().any(|a| a == "--open-only");
    let files: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    if files.is_empty() {
        return Err("usage: inspect <checkpoint>... [--quiet] [--open-only]".into());
    }
    let t0 = Instant::now();
    let w = Weights::open_many(&files)?;
    let open = t0.elapsed();
    let mut params = 0usize;
    for k in w.keys() {
        let info = w.info(k).ok_or("key vanished")?;
        params += info.shape.iter().product::<usize>();
        if !quiet {
            println!("{k}\t{:?}\t{:?}", info.dtype, info.shape);
        }
    }
    print!(
        "{} tensors, {params} parameters, wrapper {:?}; open {:.2} ms",
        w.len(),
        w.wrapper(),
        open.as_secs_f64() * 1e3
    );
    if !open_only {
        let t1 = Instant::now();
        for k in w.keys() {
            w.get_unchecked(k, DType::F32, &Device::Cpu)?;
        }
        print!(
            ", all tensors as f32 {:.1} ms",
            t1.elapsed().as_secs_f64() * 1e3
        );
    }
    println!();
    Ok(())
}
