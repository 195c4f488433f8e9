//! PyTorch checkpoints written by the real `torch.save` (see
//! tools/reference/gen_weights_fixtures.py), compared bit-exactly with the tensors torch
//! itself wrote to expected.safetensors.

mod common;

use biofm_weights::{KeyRules, StoredDType, Weights};
use candle_core::{DType, Device};
use common::{assert_matches, fixture, Expected};

/// Every tensor of the plain state dict: keys, stored dtypes, shapes and values.
fn check_plain(file: &str) {
    let exp = Expected::load();
    let w = Weights::open(fixture(file)).unwrap();
    assert_eq!(w.wrapper(), None);
    let keys: Vec<&str> = w.keys().collect();
    assert_eq!(keys, exp.keys("plain"), "{file}");
    for key in exp.keys("plain") {
        let (dtype, shape, _) = exp.get(&format!("plain.{key}"));
        let info = w.info(&key).unwrap();
        assert_eq!(info.shape, shape, "{file}: {key}");
        assert_eq!(
            format!("{:?}", info.dtype).to_uppercase(),
            format!("{dtype:?}"),
            "{file}: {key}"
        );
        match info.dtype.candle_dtype() {
            Some(_) => assert_matches(&w, &key, &exp, &format!("plain.{key}")),
            // int8 and bool have no candle dtype: compare through int64.
            None => assert_matches(&w, &key, &exp, &format!("as_i64.{key}")),
        }
    }
}

#[test]
fn zip_checkpoint_matches_torch() {
    check_plain("plain.bin");
}

#[test]
fn legacy_checkpoint_matches_torch() {
    check_plain("legacy.pt");
}

#[test]
fn safetensors_matches_torch() {
    check_plain("plain.safetensors");
}

/// Strided views (transposed, row/block slices of one shared storage, step slices,
/// stride-0 broadcast) are saved by torch as is; they must read as torch's `contiguous()`.
#[test]
fn views_share_one_storage_in_the_file() {
    let exp = Expected::load();
    let w = Weights::open(fixture("plain.bin")).unwrap();
    for key in [
        "transposed",
        "shared_row",
        "shared_block",
        "strided",
        "expanded",
        "scalar",
        "empty",
        "param",
        "param_state",
        "tensor_attr",
    ] {
        assert_matches(&w, key, &exp, &format!("plain.{key}"));
    }
    // The three views of `base` come from one storage record, not three copies.
    let file = common::fixture_bytes("plain.bin");
    let storages = file
        .windows(b"archive/data/".len())
        .filter(|w| *w == b"archive/data/")
        .count();
    assert_eq!(
        storages % 2,
        0,
        "each record is named in a local and a central header"
    );
    assert_eq!(
        storages / 2,
        exp.keys("plain").len() - 2,
        "3 tensors share one storage"
    );
}

/// Every dtype conversion torch performed (`tensor.to(dtype)`) gives the same bits here:
/// f64 -> f16/bf16 rounding twice through f32, i64 -> f32 rounding once, float -> int
/// truncation, integer narrowing by wrap-around.
#[test]
fn dtype_conversions_match_torch() {
    let exp = Expected::load();
    let w = Weights::open(fixture("plain.bin")).unwrap();
    let mut n = 0;
    for target in ["f32", "f16", "bf16", "f64", "i64", "i32", "i16", "u8"] {
        for key in exp.keys(&format!("as_{target}")) {
            assert_matches(&w, &key, &exp, &format!("as_{target}.{key}"));
            n += 1;
        }
    }
    assert!(n > 100, "only {n} conversions checked");
}

#[test]
fn pickle_protocol_4_and_zip64_records() {
    let exp = Expected::load();
    for file in ["proto4.bin", "zip64.bin"] {
        let w = Weights::open(fixture(file)).unwrap();
        assert_eq!(w.keys().collect::<Vec<_>>(), exp.keys("small"), "{file}");
        for key in exp.keys("small") {
            assert_matches(&w, &key, &exp, &format!("small.{key}"));
        }
    }
}

/// `{"state_dict": {"module.…": …}, "epoch", "args": Namespace, "optimizer": …, numpy
/// values}` with scGPT flash-attention names: only the state dict's tensors are listed,
/// and the key rules give the names scGPT's `load_pretrained` produces.
#[test]
fn training_checkpoint_with_wrapper_and_key_rules() {
    let exp = Expected::load();
    let mut w = Weights::open(fixture("wrapped_state_dict.pt")).unwrap();
    assert_eq!(w.wrapper(), Some("state_dict"));
    assert_eq!(
        w.len(),
        7,
        "optimizer momentum buffers must not leak in: {:?}",
        w.keys().collect::<Vec<_>>()
    );
    assert!(w.keys().all(|k| k.starts_with("module.")));
    let rules = KeyRules::new()
        .strip_prefix("module.")
        .rename("self_attn._impl.", "self_attn.")
        .rename("self_attn.Wqkv.", "self_attn.in_proj_");
    w.apply_rules(&rules).unwrap();
    assert_eq!(w.keys().collect::<Vec<_>>(), exp.keys("wrapped"));
    for key in exp.keys("wrapped") {
        assert_matches(&w, &key, &exp, &format!("wrapped.{key}"));
    }
    assert_eq!(
        w.info("norm.num_batches_tracked").unwrap().dtype,
        StoredDType::I64
    );
    w.apply_rules(&KeyRules::new().drop_key("*.position_ids"))
        .unwrap();
    assert!(!w.contains("text.transformer.embeddings.position_ids"));
    assert_eq!(w.len(), 6);
}

#[test]
fn model_wrapper_skips_non_tensor_values() {
    let exp = Expected::load();
    let mut w = Weights::open(fixture("wrapped_model.pth")).unwrap();
    assert_eq!(w.wrapper(), Some("model"));
    // "model.version": 2 is an int inside the state dict: skipped.
    assert_eq!(
        w.keys().collect::<Vec<_>>(),
        ["model.head.bias", "model.head.weight"]
    );
    w.apply_rules(&KeyRules::new().strip_prefix("model."))
        .unwrap();
    for key in exp.keys("model") {
        assert_matches(&w, &key, &exp, &format!("model.{key}"));
    }
}

#[test]
fn two_level_wrapper_prefers_teacher() {
    let exp = Expected::load();
    let w = Weights::open(fixture("nested.pt")).unwrap();
    assert_eq!(w.wrapper(), Some("teacher.module"));
    for key in exp.keys("teacher") {
        assert_matches(&w, &key, &exp, &format!("teacher.{key}"));
    }
}

/// `torch.save(module.state_dict())` of Linear + LayerNorm + MultiheadAttention: an
/// OrderedDict with `_metadata` set by BUILD.
#[test]
fn real_module_state_dict() {
    let exp = Expected::load();
    let w = Weights::open(fixture("module.pt")).unwrap();
    assert_eq!(w.keys().collect::<Vec<_>>(), exp.keys("module"));
    assert!(!w.contains("_metadata"));
    let v = w.view(DType::F32, &Device::Cpu);
    let attn = v.pp("attn");
    assert_eq!(attn.shape_of("in_proj_weight"), Some(vec![12, 4]));
    assert_eq!(attn.key("in_proj_weight"), "attn.in_proj_weight");
    assert!(attn.get_opt("missing", &[1]).unwrap().is_none());
    for key in exp.keys("module") {
        assert_matches(&w, &key, &exp, &format!("module.{key}"));
    }
    // Everything fetched: nothing unexpected.
    w.check_unused(&[]).unwrap();
}

/// uint16/32/64 tensors are saved through `_rebuild_tensor_v3` on an UntypedStorage.
#[test]
fn untyped_storage_dtypes() {
    let exp = Expected::load();
    let w = Weights::open(fixture("new_dtypes.bin")).unwrap();
    let dtypes: Vec<StoredDType> = ["u16", "u32", "u64"]
        .iter()
        .map(|k| w.info(k).unwrap().dtype)
        .collect();
    assert_eq!(
        dtypes,
        [StoredDType::U16, StoredDType::U32, StoredDType::U64]
    );
    for key in ["u16", "u32", "u64"] {
        assert_matches(&w, key, &exp, &format!("new_as_i64.{key}"));
    }
    assert_matches(&w, "u32", &exp, "new.u32");
}
