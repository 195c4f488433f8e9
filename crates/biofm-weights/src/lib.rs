//! Checkpoint loading for biofm: safetensors and PyTorch `torch.save` files (zip
//! archives and the legacy pickle format, `.bin/.pt/.pth/.ckpt`), read without Python and
//! without executing pickle code. Files are memory-mapped; opening reads only headers.
//!
//! A [`Weights`] is a flat map from key to a lazily materialised tensor. Model code asks
//! for each tensor by key with the shape it expects ([`Weights::get`] or a [`View`]); a
//! missing key or a wrong shape is an error naming the key and both shapes. After a model
//! is built, [`Weights::check_unused`] reports checkpoint tensors the model never asked
//! for (the "unexpected keys" of `load_state_dict(strict=True)`).
//!
//! PyTorch checkpoints may wrap the state dict (`{"state_dict": ..., "epoch": 3}`); it is
//! found under [`STATE_DICT_WRAPPER_KEYS`] and [`Weights::wrapper`] says where.
//!
//! Key remapping is data ([`KeyRules`]): strip prefixes such as `module.`, drop stale
//! entries such as `position_ids`, rename substrings.

mod convert;
mod error;
mod open;
mod pickle;
mod rules;
mod safetensors_file;
mod state_dict;
mod store;
mod torch_file;
mod zip;

pub use error::{Error, Result};
pub use rules::KeyRules;
pub use state_dict::STATE_DICT_WRAPPER_KEYS;
pub use store::{StoredDType, TensorInfo, View, Weights};
