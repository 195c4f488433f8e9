//! File formats read and written by biofm.
//!
//! AnnData `.h5ad` (read, and embeddings written into a copy) through libhdf5, and
//! embedding matrices (`.npy`, `.safetensors`, `.jsonl`), always written to a
//! temporary file in the destination directory and renamed into place, so a crash or
//! a kill never leaves a half-written output behind.

pub mod anndata;
pub mod atomic;
pub mod embeddings;
pub mod features;
pub mod npy;

pub use atomic::AtomicFile;
pub use embeddings::{EmbeddingFormat, EmbeddingTable};
