//! `biofm`: run biomedical foundation models with the numbers of their reference code.

mod bench;
mod cells;
mod commands;
mod demo;
mod output;
mod wsi;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

const ABOUT: &str = "Run biomedical foundation models (BiomedCLIP, UNI, ...) on your data with the same \
numbers as their reference PyTorch code: embeddings, zero-shot labels and retrieval, on CPU, offline.";

const AFTER_HELP: &str = "\
MODELS (--model):
  a registry name      e.g. biomedclip (see `biofm models`)
  hf:ORG/NAME[@REV]    a Hugging Face hub repository, read from the local HF cache
                       (HF_HOME / HF_HUB_CACHE); downloaded into it when online
                       (HF_TOKEN for gated repositories; HF_HUB_OFFLINE=1 to never download)
  DIR                  a local folder in a published layout (open_clip, timm,
                       sentence-transformers)

EXAMPLES:
  biofm demo
  biofm zero-shot --model biomedclip --labels 'adenocarcinoma histopathology' 'brain MRI' scans/
  biofm embed image --model biomedclip --out emb.npy --normalize images/
  biofm embed text --model all-minilm-l6-v2 --out text.jsonl --file sentences.txt
  biofm retrieve --model biomedclip --images images/ --text 'chest X-ray' --top-k 5
  biofm cells embed --model scGPT_human/ --input pbmc.h5ad --out pbmc_scgpt.h5ad
  biofm cells annotate --model scGPT_human/ --reference ref.h5ad --label-col cell_type --query query.h5ad
  biofm wsi run --slides slides/ --job job/ --encoder uni --continue-on-error";

#[derive(Parser, Debug)]
#[command(name = "biofm", version, about = ABOUT, after_help = AFTER_HELP, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every command.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Compute threads (default: all cores).
    #[arg(long, global = true, env = "BIOFM_THREADS")]
    pub threads: Option<usize>,
    /// Hide progress bars and notes.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The model gallery: every supported and planned model, its licence and parity evidence.
    Models(commands::ModelsArgs),
    /// Embed images or texts into a .npy, .safetensors or .jsonl file (one row per input).
    #[command(subcommand)]
    Embed(EmbedCommand),
    /// Single-cell: scGPT cell embeddings and kNN label transfer on .h5ad files.
    #[command(subcommand)]
    Cells(cells::CellsCommand),
    /// Whole-slide images: slide metadata, tissue detection, patch-feature jobs.
    #[command(subcommand)]
    Wsi(wsi::WsiCommand),
    /// Zero-shot classification of images against text labels.
    #[command(name = "zero-shot")]
    ZeroShot(commands::ZeroShotArgs),
    /// Image↔text retrieval: top-k images for each text, or top-k texts for each image.
    Retrieve(commands::RetrieveArgs),
    /// The main job on bundled real images with a small bundled model (random weights).
    Demo(demo::DemoArgs),
    /// Compare biofm with PyTorch on the same model, inputs and thread count.
    Bench(bench::BenchArgs),
    /// List the tensors of a checkpoint file (safetensors or PyTorch) with shapes and dtypes.
    Inspect(commands::InspectArgs),
}

#[derive(Subcommand, Debug)]
enum EmbedCommand {
    /// Embed image files (folders are expanded in sorted order).
    Image(commands::EmbedImageArgs),
    /// Embed texts given with --text or one per line with --file.
    Text(commands::EmbedTextArgs),
}

/// Numeric precision for weights and activations.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dtype {
    /// 32-bit floats: matches the reference within 1e-4 (the default).
    #[default]
    F32,
    /// bfloat16 weights and activations (half the memory; compared to f32 by cosine).
    Bf16,
    /// float16 weights and activations.
    F16,
}

impl Dtype {
    pub fn candle(self) -> candle_core::DType {
        match self {
            Dtype::F32 => candle_core::DType::F32,
            Dtype::Bf16 => candle_core::DType::BF16,
            Dtype::F16 => candle_core::DType::F16,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    biofm_kernels::init_threads(cli.global.threads);
    let result = match cli.command {
        Command::Models(a) => commands::models(a),
        Command::Embed(EmbedCommand::Image(a)) => commands::embed_image(a, &cli.global),
        Command::Embed(EmbedCommand::Text(a)) => commands::embed_text(a, &cli.global),
        Command::Cells(cells::CellsCommand::Embed(a)) => cells::embed(a, &cli.global),
        Command::Cells(cells::CellsCommand::Annotate(a)) => cells::annotate(a, &cli.global),
        Command::Wsi(wsi::WsiCommand::Info(a)) => wsi::info(a),
        Command::Wsi(wsi::WsiCommand::Segment(a)) => wsi::segment(a, cli.global.quiet),
        Command::Wsi(wsi::WsiCommand::Run(a)) => wsi::run(a, &cli.global),
        Command::Wsi(wsi::WsiCommand::Status(a)) => wsi::status(a),
        Command::ZeroShot(a) => commands::zero_shot(a, &cli.global),
        Command::Retrieve(a) => commands::retrieve(a, &cli.global),
        Command::Demo(a) => demo::run(a, &cli.global),
        Command::Bench(a) => bench::run(a, &cli.global),
        Command::Inspect(a) => commands::inspect(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
