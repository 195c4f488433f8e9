//! Slide errors: each names what is wrong and where.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum WsiError {
    #[error("not a TIFF file: {0}")]
    NotTiff(String),
    #[error("corrupt TIFF structure at byte offset {offset}: {message}")]
    Corrupt { offset: u64, message: String },
    #[error("unsupported slide: {0}")]
    Unsupported(String),
    #[error("tile {index} of level {level} (byte offset {offset}, {len} bytes): {message}")]
    Tile { level: usize, index: usize, offset: u64, len: u64, message: String },
    #[error("{0}")]
    Other(String),
}
