//! Preprocessing that reproduces the reference pipelines bit for bit where the
//! reference is deterministic: PIL-compatible image decoding and mode conversion,
//! Pillow's fixed-point resampler, torchvision-style crops and normalisation, and
//! text cleaning + tokenisation as open_clip / HF transformers do it, and scGPT's cell
//! input pipeline (binning, subsampling, padding) with its random streams reproduced.

pub mod cells;
pub mod image;
pub mod text;
