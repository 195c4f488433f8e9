//! Finding the state dict inside an unpickled checkpoint.
//!
//! `torch.save(model.state_dict())` pickles a dict of tensors, but training scripts often
//! save a dict that wraps it (`{"state_dict": ..., "epoch": 3, "optimizer": ...}`). The
//! rule, mirroring what model repositories' loaders do by hand:
//!
//! 1. a dict whose values are all tensors (non-tensor scalars such as ints or strings are
//!    allowed and skipped) is the state dict;
//! 2. otherwise the first key of [`STATE_DICT_WRAPPER_KEYS`] whose value is a dict is
//!    searched the same way, down to two levels (`{"teacher": {"module": {...}}}`).
//!
//! Nested dicts are never flattened into `.`-joined keys: a state dict is flat by
//! construction (`nn.Module.state_dict()` joins the module path itself), and a nested
//! dict of tensors is either a wrapper (resolved above) or another object (optimizer
//! state) that must not leak into the weights.

use crate::pickle::{Id, Obj, Pickle, TensorRef};
use std::collections::BTreeMap;

/// Keys under which checkpoints nest the model's state dict, in the order they are tried:
/// Lightning/MMCV/open_clip (`state_dict`), the PyTorch tutorials (`model_state_dict`),
/// timm/DeiT/MAE (`model`), DataParallel-style saves (`module`), and the names used by
/// DINO-style self-distillation and assorted training scripts.
pub const STATE_DICT_WRAPPER_KEYS: &[&str] = &[
    "state_dict",
    "model_state_dict",
    "model",
    "module",
    "net",
    "network",
    "teacher",
    "student",
    "params",
    "weights",
];

/// How many wrapper dicts deep the state dict may sit.
const MAX_WRAPPER_DEPTH: usize = 2;

/// The state dict of a checkpoint: tensors by key, and the wrapper key path used (e.g.
/// `"state_dict"`, `"teacher.module"`), if any.
pub(crate) struct Resolved<'p> {
    pub tensors: BTreeMap<String, &'p TensorRef>,
    pub wrapper: Option<String>,
}

/// Why a checkpoint's tensors cannot be listed.
pub(crate) enum ResolveError {
    /// No state dict where one is looked for; the message describes what was found.
    NotFound(String),
    /// A state-dict entry is a tensor biofm cannot read, or the dict is malformed.
    Invalid(String),
}

/// Tensors saved with torch rebuild functions biofm does not read (quantized, sparse,
/// meta, nested tensors) are recognised so they are reported rather than skipped.
fn unreadable_tensor(o: &Obj) -> Option<&str> {
    match o {
        Obj::Opaque(f) if f.starts_with("torch.") && f.contains("._rebuild_") => Some(f),
        _ => None,
    }
}

fn is_state_dict(p: &Pickle, id: Id) -> bool {
    let Obj::Dict(items) = p.get(id) else {
        return false;
    };
    let mut tensors = 0;
    for &(_, v) in items {
        match p.get(v) {
            Obj::Dict(_) | Obj::List(_) | Obj::Tuple(_) => return false,
            o if matches!(o, Obj::Tensor(_)) || unreadable_tensor(o).is_some() => tensors += 1,
            _ => {}
        }
    }
    items.is_empty() || tensors > 0
}

fn find(p: &Pickle, id: Id, depth: usize) -> Option<(Id, Vec<&'static str>)> {
    if is_state_dict(p, id) {
        return Some((id, Vec::new()));
    }
    if depth == MAX_WRAPPER_DEPTH {
        return None;
    }
    STATE_DICT_WRAPPER_KEYS.iter().find_map(|&key| {
        let v = p.dict_get(id, key)?;
        let (sd, mut path) = find(p, v, depth + 1)?;
        path.insert(0, key);
        Some((sd, path))
    })
}

/// Locates the state dict of `p` and lists its tensors (later duplicates win, as in a
/// Python dict).
pub(crate) fn resolve(p: &Pickle) -> Result<Resolved<'_>, ResolveError> {
    let (sd, path) = find(p, p.root, 0).ok_or_else(|| ResolveError::NotFound(describe_root(p)))?;
    let mut tensors = BTreeMap::new();
    if let Obj::Dict(items) = p.get(sd) {
        for &(k, v) in items {
            let key = match p.get(k) {
                Obj::Str(s) => s,
                o => {
                    return Err(ResolveError::Invalid(format!(
                        "the state dict has a key that is a {}, not a string",
                        o.describe()
                    )))
                }
            };
            match p.get(v) {
                Obj::Tensor(t) => {
                    tensors.insert(key.clone(), t);
                }
                o => {
                    if let Some(f) = unreadable_tensor(o) {
                        return Err(ResolveError::Invalid(format!(
                            "tensor `{key}` was saved with {f} (quantized, sparse, meta or nested tensors are not supported)"
                        )));
                    }
                }
            }
        }
    }
    let wrapper = (!path.is_empty()).then(|| path.join("."));
    Ok(Resolved { tensors, wrapper })
}

fn describe_root(p: &Pickle) -> String {
    const MAX: usize = 12;
    match p.get(p.root) {
        Obj::Dict(items) => {
            let mut keys: Vec<String> = items
                .iter()
                .take(MAX)
                .map(|&(k, v)| {
                    let k = match p.get(k) {
                        Obj::Str(s) => format!("`{s}`"),
                        o => o.describe(),
                    };
                    format!("{k} ({})", p.get(v).describe())
                })
                .collect();
            if items.len() > MAX {
                keys.push(format!("... ({} more)", items.len() - MAX));
            }
            format!(
                "no state dict found: the top-level dict has keys {}; tensors are read from a dict whose values \
                 are tensors, at the top level or under one of the keys {} (up to {MAX_WRAPPER_DEPTH} levels deep)",
                keys.join(", "),
                STATE_DICT_WRAPPER_KEYS.join(", ")
            )
        }
        Obj::Opaque(class) => format!(
            "the checkpoint holds a pickled `{class}` object, not a state dict; biofm never runs pickled code, \
             so re-save it in Python with `torch.save(model.state_dict(), path)`"
        ),
        o => format!("the checkpoint holds a {}, not a dict of tensors", o.describe()),
    }
}
