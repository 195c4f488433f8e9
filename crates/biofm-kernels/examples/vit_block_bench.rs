//! Times each kernel and a ViT-B/16 forward (timm `vit_base_patch16_224` shapes, random
//! weights), candle-op oracle (`naive`) vs fast kernels, interleaved, medians reported.
//!
//! ```text
//! cargo run --release -p biofm-kernels --example vit_block_bench -- [--threads 2] [--batch 1,8] [--iters 5]
//!     [--ops 0] [--naive 0]
//! ```
//! Compare with `tools/reference/bench_kernels.py` (same shapes in PyTorch).

use biofm_kernels::{self as k, naive, Activation};
use candle_core::{Device, Result, Tensor};
use std::time::Instant;

const DIM: usize = 768;
const HEADS: usize = 12;
const MLP: usize = 3072;
const DEPTH: usize = 12;
const TOKENS: usize = 197;
const PATCHES: usize = 196;
const PATCH_IN: usize = 3 * 16 * 16;
const CLASSES: usize = 1000;

/// Deterministic pseudo-random tensor (values in about [-scale, scale]).
fn rand(dims: &[usize], scale: f32, seed: &mut u64) -> Result<Tensor> {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| {
            *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((*seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect();
    Tensor::from_vec(v, dims, &Device::Cpu)
}

struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Linear {
    fn new(out: usize, inp: usize, seed: &mut u64) -> Result<Self> {
        Ok(Self {
            w: rand(&[out, inp], (1.0 / inp as f32).sqrt(), seed)?,
            b: rand(&[out], 0.02, seed)?,
        })
    }
}

struct Norm {
    w: Tensor,
    b: Tensor,
}

impl Norm {
    fn new(seed: &mut u64) -> Result<Self> {
        Ok(Self {
            w: (rand(&[DIM], 0.1, seed)? + 1.0)?,
            b: rand(&[DIM], 0.02, seed)?,
        })
    }
}

struct Block {
    norm1: Norm,
    qkv: Linear,
    proj: Linear,
    norm2: Norm,
    fc1: Linear,
    fc2: Linear,
}

struct Vit {
    patch: Linear,
    cls_pos: Tensor,
    blocks: Vec<Block>,
    norm: Norm,
    head: Linear,
}

impl Vit {
    fn new() -> Result<Self> {
        let seed = &mut 7u64;
        let blocks = (0..DEPTH)
            .map(|_| {
                Ok(Block {
                    norm1: Norm::new(seed)?,
                    qkv: Linear::new(3 * DIM, DIM, seed)?,
                    proj: Linear::new(DIM, DIM, seed)?,
                    norm2: Norm::new(seed)?,
                    fc1: Linear::new(MLP, DIM, seed)?,
                    fc2: Linear::new(DIM, MLP, seed)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            patch: Linear::new(DIM, PATCH_IN, seed)?,
            cls_pos: rand(&[1, TOKENS, DIM], 0.02, seed)?,
            blocks,
            norm: Norm::new(seed)?,
            head: Linear::new(CLASSES, DIM, seed)?,
        })
    }
}

/// The kernel set a forward pass runs with.
#[derive(Clone, Copy, PartialEq)]
enum Impl {
    Naive,
    Fast,
}

fn ln(i: Impl, x: &Tensor, n: &Norm) -> Result<Tensor> {
    match i {
        Impl::Naive => naive::layer_norm(x, &n.w, Some(&n.b), 1e-6),
        Impl::Fast => k::layer_norm(x, &n.w, Some(&n.b), 1e-6),
    }
}

fn lin(i: Impl, x: &Tensor, l: &Linear) -> Result<Tensor> {
    match i {
        Impl::Naive => naive::linear(x, &l.w, Some(&l.b)),
        Impl::Fast => k::linear(x, &l.w, Some(&l.b)),
    }
}

fn block(i: Impl, x: &Tensor, b: &Block) -> Result<Tensor> {
    let qkv = lin(i, &ln(i, x, &b.norm1)?, &b.qkv)?;
    let (q, kk, v) = (
        qkv.narrow(2, 0, DIM)?,
        qkv.narrow(2, DIM, DIM)?,
        qkv.narrow(2, 2 * DIM, DIM)?,
    );
    let scale = ((DIM / HEADS) as f64).powf(-0.5);
    let a = match i {
        Impl::Naive => naive::attention(&q, &kk, &v, HEADS, scale, None)?,
        Impl::Fast => k::attention(&q, &kk, &v, HEADS, scale, None)?,
    };
    let x = residual(i, &a, &b.proj, x)?;
    let h = ln(i, &x, &b.norm2)?;
    let h = match i {
        Impl::Naive => naive::activation(&naive::linear(&h, &b.fc1.w, Some(&b.fc1.b))?, Activation::Gelu)?,
        Impl::Fast => k::linear_act(&h, &b.fc1.w, Some(&b.fc1.b), Activation::Gelu)?,
    };
    residual(i, &h, &b.fc2, &x)
}

/// `x + l(h)`.
fn residual(i: Impl, h: &Tensor, l: &Linear, x: &Tensor) -> Result<Tensor> {
    match i {
        Impl::Naive => x + naive::linear(h, &l.w, Some(&l.b))?,
        Impl::Fast => k::linear_residual(h, &l.w, Some(&l.b), x),
    }
}

/// Full forward from already patchified pixels `[B, 196, 768]`: patch embedding as a
/// linear, cls token + position embedding, 12 blocks, final norm, head on the cls token.
fn forward(i: Impl, vit: &Vit, patches: &Tensor) -> Result<Tensor> {
    let b = patches.dim(0)?;
    let x = lin(i, patches, &vit.patch)?;
    let cls = Tensor::zeros((b, 1, DIM), x.dtype(), x.device())?;
    let mut x = Tensor::cat(&[&cls, &x], 1)?.broadcast_add(&vit.cls_pos)?;
    for blk in &vit.blocks {
        x = block(i, &x, blk)?;
    }
    let x = ln(i, &x, &vit.norm)?;
    lin(i, &x.narrow(1, 0, 1)?, &vit.head)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median milliseconds of `iters` runs of `f` after one warm-up.
fn median_ms(iters: usize, mut f: impl FnMut() -> Result<Tensor>) -> Result<f64> {
    f()?;
    let mut t = Vec::new();
    for _ in 0..iters {
        let start = Instant::now();
        f()?;
        t.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(t))
}

/// Runs `naive` and `fast` alternately (`iters` times each after one warm-up) and
/// returns their median milliseconds.
fn time_pair(
    iters: usize,
    mut naive: impl FnMut() -> Result<Tensor>,
    mut fast: impl FnMut() -> Result<Tensor>,
) -> Result<(f64, f64)> {
    naive()?;
    fast()?;
    let (mut tn, mut tf) = (Vec::new(), Vec::new());
    for _ in 0..iters {
        let t = Instant::now();
        naive()?;
        tn.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        fast()?;
        tf.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok((median(tn), median(tf)))
}

fn report(name: &str, per_forward: usize, (n, f): (f64, f64)) {
    println!(
        "{name:<28} naive {n:9.2} ms  fast {f:9.2} ms  x{:5.2}   per forward ({per_forward}x): naive {:8.1} ms fast {:8.1} ms",
        n / f,
        n * per_forward as f64,
        f * per_forward as f64
    );
}

struct Args {
    threads: usize,
    batches: Vec<usize>,
    iters: usize,
    /// Time the individual kernels too (`--ops 0` times only the forward passes).
    ops: bool,
    /// Time the candle-op forward too (`--naive 0` times only the fast one).
    naive: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        threads: 2,
        batches: vec![1, 8],
        iters: 5,
        ops: true,
        naive: true,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or("");
        match pair[0].as_str() {
            "--threads" => a.threads = value.parse().unwrap_or(a.threads),
            "--iters" => a.iters = value.parse::<usize>().unwrap_or(a.iters).max(1),
            "--batch" => a.batches = value.split(',').filter_map(|s| s.parse().ok()).collect(),
            "--ops" => a.ops = value != "0",
            "--naive" => a.naive = value != "0",
            other => eprintln!("ignoring unknown argument {other}"),
        }
    }
    a
}

/// Per-kernel timings at batch `b` (shapes of one ViT-B/16 block).
fn time_kernels(b: usize, iters: usize, vit: &Vit, seed: &mut u64) -> Result<()> {
    let b0 = &vit.blocks[0];
    let x = rand(&[b, TOKENS, DIM], 1.0, seed)?;
    let h = rand(&[b, TOKENS, MLP], 2.0, seed)?;
    let logits = rand(&[b, HEADS, TOKENS, TOKENS], 3.0, seed)?;
    let qkv = rand(&[b, TOKENS, 3 * DIM], 1.0, seed)?;
    let (q, kk, v) = (
        qkv.narrow(2, 0, DIM)?,
        qkv.narrow(2, DIM, DIM)?,
        qkv.narrow(2, 2 * DIM, DIM)?,
    );
    let scale = 0.125;
    report(
        "gelu [B,197,3072]",
        DEPTH,
        time_pair(
            iters,
            || naive::activation(&h, Activation::Gelu),
            || k::activation(&h, Activation::Gelu),
        )?,
    );
    report(
        "layer_norm [B,197,768]",
        2 * DEPTH + 1,
        time_pair(
            iters,
            || ln(Impl::Naive, &x, &b0.norm1),
            || ln(Impl::Fast, &x, &b0.norm1),
        )?,
    );
    report(
        "softmax [B,12,197,197]",
        DEPTH,
        time_pair(
            iters,
            || naive::softmax_last_dim(&logits),
            || k::softmax_last_dim(&logits),
        )?,
    );
    report(
        "attention (packed qkv)",
        DEPTH,
        time_pair(
            iters,
            || naive::attention(&q, &kk, &v, HEADS, scale, None),
            || k::attention(&q, &kk, &v, HEADS, scale, None),
        )?,
    );
    report(
        "linear qkv 768->2304",
        DEPTH,
        time_pair(iters, || lin(Impl::Naive, &x, &b0.qkv), || lin(Impl::Fast, &x, &b0.qkv))?,
    );
    report(
        "linear proj 768->768",
        DEPTH,
        time_pair(
            iters,
            || lin(Impl::Naive, &x, &b0.proj),
            || lin(Impl::Fast, &x, &b0.proj),
        )?,
    );
    report(
        "linear fc1 768->3072",
        DEPTH,
        time_pair(iters, || lin(Impl::Naive, &x, &b0.fc1), || lin(Impl::Fast, &x, &b0.fc1))?,
    );
    report(
        "fc1 + gelu (linear_act)",
        DEPTH,
        time_pair(
            iters,
            || naive::activation(&naive::linear(&x, &b0.fc1.w, Some(&b0.fc1.b))?, Activation::Gelu),
            || k::linear_act(&x, &b0.fc1.w, Some(&b0.fc1.b), Activation::Gelu),
        )?,
    );
    report(
        "linear fc2 3072->768",
        DEPTH,
        time_pair(iters, || lin(Impl::Naive, &h, &b0.fc2), || lin(Impl::Fast, &h, &b0.fc2))?,
    );
    report(
        "one block",
        DEPTH,
        time_pair(iters, || block(Impl::Naive, &x, b0), || block(Impl::Fast, &x, b0))?,
    );

    Ok(())
}

fn main() -> Result<()> {
    let Args {
        threads,
        batches,
        iters,
        ops,
        naive,
    } = parse_args();
    k::init_threads(Some(threads));
    println!(
        "threads {} (rayon {}, candle {})",
        threads,
        rayon::current_num_threads(),
        candle_core::utils::get_num_threads()
    );
    let vit = Vit::new()?;
    let mut seed = 99u64;
    for &b in &batches {
        println!("\n== batch {b}: tokens {TOKENS}, M = {} rows ==", b * TOKENS);
        if ops {
            time_kernels(b, iters, &vit, &mut seed)?;
        }
        let patches = rand(&[b, PATCHES, PATCH_IN], 1.0, &mut seed)?;
        if !naive {
            let f = median_ms(iters, || forward(Impl::Fast, &vit, &patches))?;
            println!(
                "ViT-B/16 forward (batch {b}): fast {f:.1} ms = {:.2} img/s",
                b as f64 / f * 1e3
            );
            continue;
        }
        let (n, f) = time_pair(
            iters,
            || forward(Impl::Naive, &vit, &patches),
            || forward(Impl::Fast, &vit, &patches),
        )?;
        let diff = (forward(Impl::Naive, &vit, &patches)? - forward(Impl::Fast, &vit, &patches)?)?
            .abs()?
            .flatten_all()?
            .max(0)?;
        println!(
            "ViT-B/16 forward (batch {b}): naive {n:.1} ms = {:.2} img/s, fast {f:.1} ms = {:.2} img/s (x{:.2}); max |logit diff| {:.2e}",
            b as f64 / n * 1e3,
            b as f64 / f * 1e3,
            n / f,
            diff.to_scalar::<f32>()?
        );
    }
    Ok(())
}
