//! Checkpoint loading for biofm: safetensors (memory-mapped) and PyTorch checkpoints
//! (`.bin/.pt/.pth` zip pickles), read without Python and without executing pickle code.
//!
//! A [`Weights`] is a flat map from key to a lazily materialised tensor. Model code asks
//! for each tensor by key with the shape it expects ([`Weights::get`] or a [`View`]); a
//! missing key or a wrong shape is an error naming the key and both shapes. After a model
//! is built, [`Weights::check_unused`] reports checkpoint tensors the model never asked
//! for (the "unexpected keys" of `load_state_dict(strict=True)`).
//!
//! Key remapping is data ([`KeyRules`]): strip prefixes such as `module.`, drop stale
//! entries such as `position_ids`, rename substrings.

mod convert;
mod error;
mod open;
mod rules;
mod safetensors_file;
mod store;

pub use error::{Error, Result};
pub use rules::KeyRules;
pub use store::{StoredDType, TensorInfo, View, Weights};
