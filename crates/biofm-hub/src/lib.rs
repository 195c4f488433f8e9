//! Where model files come from: a local directory, or a Hugging Face hub repository
//! resolved offline from the local HF cache and downloaded into it when allowed.
//!
//! The cache is the one `huggingface_hub` (Python) uses, with the same layout, so weights
//! downloaded by Python are reused here offline and files downloaded here are reused by
//! Python:
//!
//! ```text
//! <cache>/models--{org}--{name}/
//!     blobs/<etag>                       file contents, named by the hub's ETag
//!     snapshots/<commit>/<file>          relative symlink to ../../blobs/<etag>
//!     refs/<branch-or-tag>               text file holding the commit hash
//!     .no_exist/<commit>/<file>          empty file: the repo has no such file
//! <cache>/.locks/models--{org}--{name}/<etag>.lock
//! ```
//!
//! Entry points: [`ModelRef::parse`] for the `--model` string, [`HubConfig::from_env`] for
//! the environment, and [`ModelFiles::open`] to get at the files.

mod cache;
mod config;
mod error;
mod files;
mod http;
mod model_ref;

pub use config::HubConfig;
pub use error::{Error, Result};
pub use files::ModelFiles;
pub use model_ref::{HubRepo, ModelRef, ACCEPTED_FORMS};
