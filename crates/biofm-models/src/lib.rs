//! Model families composed from `biofm-nn` blocks, and the model registry.

pub mod registry;
pub mod sentence_transformers;
pub mod source;
pub mod text_configs;
pub mod timm;

pub use source::FileSource;
