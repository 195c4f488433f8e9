//! Model building blocks, each implemented once and configured.
//!
//! Every block is built from a [`View`](biofm_weights::View) whose key paths mirror the
//! reference checkpoint (`vb.pp("blocks").pp(i).pp("attn")`), in the spirit of candle:
//! the Rust struct tree follows the PyTorch module tree, so a key in an error message
//! points straight at the code that asked for it.
//!
//! Compute goes through `biofm-kernels`, never through ad-hoc op chains, so that kernel
//! improvements apply to every model.

pub mod bert;
pub mod layers;
pub mod pos_embed;
pub mod transformer;
pub mod vit;

pub use layers::{Attention, LayerNorm, Linear, Mlp, MlpKind};
pub use transformer::{EncoderLayerConfig, TransformerEncoderLayer};
