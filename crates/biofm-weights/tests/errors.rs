//! Every failure mode is an `Err` whose message names the file, key, shapes or byte
//! offset involved.

mod common;

use biofm_weights::{Error, KeyRules, Weights};
use candle_core::{DType, Device};
use common::{fixture, fixture_bytes};
use std::path::Path;

fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, bytes).unwrap();
    f
}

fn open_err(path: &Path) -> Error {
    match Weights::open(path) {
        Ok(w) => panic!("{} opened with {} tensors", path.display(), w.len()),
        Err(e) => e,
    }
}

/// The message of opening `path`, checked to name the file.
fn open_msg(path: &Path) -> String {
    let msg = open_err(path).to_string();
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(
        msg.contains(name.as_ref()),
        "message does not name the file: {msg}"
    );
    msg
}

#[test]
fn missing_key_names_key_and_similar_keys() {
    let w = Weights::open(fixture("module.pt")).unwrap();
    let e = w
        .get("attn.out_proj.weights", &[4, 4], DType::F32, &Device::Cpu)
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Missing { .. }));
    assert!(
        msg.contains("`attn.out_proj.weights`") && msg.contains("attn.out_proj.weight"),
        "{msg}"
    );
    // Same last component elsewhere.
    let msg = w
        .get("norm2.bias", &[3], DType::F32, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("norm.bias"), "{msg}");
    let msg = w
        .view(DType::F32, &Device::Cpu)
        .pp("lin")
        .get("kernel", &[3, 4])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`lin.kernel`") && msg.contains("lin.weight"),
        "{msg}"
    );
}

#[test]
fn shape_mismatch_names_key_and_both_shapes() {
    let w = Weights::open(fixture("module.pt")).unwrap();
    let e = w
        .get("lin.weight", &[4, 3], DType::F32, &Device::Cpu)
        .unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("`lin.weight`") && msg.contains("[3, 4]") && msg.contains("[4, 3]"),
        "{msg}"
    );
}

#[test]
fn unexpected_keys_are_listed() {
    let w = Weights::open(fixture("module.pt")).unwrap();
    let v = w.view(DType::F32, &Device::Cpu);
    v.pp("lin").get("weight", &[3, 4]).unwrap();
    v.pp("lin").get("bias", &[3]).unwrap();
    let msg = w.check_unused(&["attn."]).unwrap_err().to_string();
    assert!(
        msg.contains("2 tensor(s)") && msg.contains("`norm.bias`") && msg.contains("`norm.weight`"),
        "{msg}"
    );
    assert!(!msg.contains("attn"), "allowed prefix still listed: {msg}");
    w.check_unused(&["attn.", "*.weight", "norm.bias"]).unwrap();
    assert_eq!(w.unused().len(), 6);
}

#[test]
fn truncated_files_name_file_and_offset() {
    for name in ["plain.bin", "legacy.pt", "plain.safetensors"] {
        let bytes = fixture_bytes(name);
        let f = write_temp(&bytes[..bytes.len() * 2 / 3]);
        let e = open_err(f.path());
        let Error::Corrupt {
            ref path, offset, ..
        } = e
        else {
            panic!("{name}: {e}")
        };
        assert_eq!(path, f.path());
        let msg = e.to_string();
        assert!(msg.contains(&format!("byte offset {offset}")), "{msg}");
        assert!(offset <= bytes.len() as u64, "{msg}");
    }
}

#[test]
fn pickle_errors_give_offset_inside_data_pkl() {
    let mut bytes = fixture_bytes("plain.bin");
    // data.pkl is the first record; its pickle starts with PROTO 2, EMPTY_DICT.
    let start = bytes.windows(3).position(|w| w == b"\x80\x02}").unwrap();
    bytes[start + 2] = 0xff;
    let f = write_temp(&bytes);
    let msg = open_msg(f.path());
    assert!(
        msg.contains("archive/data.pkl, byte 2: unsupported pickle opcode 0xff"),
        "{msg}"
    );
    assert!(msg.contains(&format!("byte offset {}", start + 2)), "{msg}");
}

#[test]
fn neither_format() {
    let f = write_temp(b"GGUF\x03\x00\x00\x00 not a checkpoint at all");
    let msg = open_msg(f.path());
    assert!(
        msg.contains("not a safetensors file or a torch.save checkpoint"),
        "{msg}"
    );
    let empty = write_temp(b"");
    assert!(matches!(open_err(empty.path()), Error::Unsupported { .. }));
    // A pickle that is not a torch.save file: {}.
    let f = write_temp(b"\x80\x02}q\x00.");
    assert!(open_msg(f.path()).contains("not one written by torch.save"));
}

#[test]
fn legacy_tar_format_says_how_to_convert() {
    let mut tar = vec![0u8; 1024];
    tar[..7].copy_from_slice(b"storage");
    tar[257..263].copy_from_slice(b"ustar\0");
    let f = write_temp(&tar);
    let msg = open_msg(f.path());
    assert!(msg.contains("torch.save(torch.load(f), f2)"), "{msg}");
}

#[test]
fn missing_storage_record() {
    let msg = open_msg(&fixture("missing_storage.bin"));
    assert!(
        msg.contains("archive/data/1") && msg.contains("missing"),
        "{msg}"
    );
}

#[test]
fn compressed_storage_record() {
    let msg = open_msg(&fixture("compressed.bin"));
    assert!(
        msg.contains("archive/data/") && msg.contains("compressed") && msg.contains("deflate"),
        "{msg}"
    );
}

#[test]
fn tensors_outside_their_storage() {
    for (file, what) in [
        ("oob_size.bin", "size [7]"),
        ("oob_offset.bin", "storage offset 1"),
        ("oob_stride.bin", "stride [2]"),
        ("short_storage.bin", "holds 20"),
    ] {
        let e = open_err(&fixture(file));
        let msg = e.to_string();
        assert!(matches!(e, Error::Corrupt { .. }), "{file}: {msg}");
        assert!(
            msg.contains("tensor `x`") && msg.contains("archive/data/0") && msg.contains(what),
            "{file}: {msg}"
        );
    }
}

#[test]
fn duplicate_keys_across_shards() {
    let a = fixture("plain.safetensors");
    let b = fixture("plain.bin");
    let e = Weights::open_many(&[&a, &b]).err().unwrap();
    let Error::Duplicate {
        ref first,
        ref second,
        ..
    } = e
    else {
        panic!("{e}")
    };
    assert_eq!((first, second), (&a, &b));
    let msg = e.to_string();
    assert!(
        msg.contains("plain.safetensors") && msg.contains("plain.bin") && msg.contains("tensor `"),
        "{msg}"
    );
    // Distinct keys combine.
    let w = Weights::open_many(&[fixture("module.pt"), fixture("proto4.bin")]).unwrap();
    assert_eq!(w.len(), 8 + 3);
}

#[test]
fn pickled_module_object_is_refused_with_advice() {
    let msg = open_msg(&fixture("whole_module.pt"));
    assert!(
        msg.contains("`__main__.Tiny`") && msg.contains("model.state_dict()"),
        "{msg}"
    );
}

#[test]
fn unreadable_dtype_names_key_and_dtype() {
    let msg = open_msg(&fixture("float8.bin"));
    assert!(
        msg.contains("`f8`") && msg.contains("float8_e4m3fn"),
        "{msg}"
    );
}

#[test]
fn no_state_dict_lists_top_level_keys() {
    // {"epoch": 3, "opt": {"lr": 0.1}}: no tensors anywhere.
    let pkl = b"\x80\x02}(X\x05\x00\x00\x00epochK\x03X\x03\x00\x00\x00opt}X\x02\x00\x00\x00lrG?\xb9\x99\x99\x99\x99\x99\x9asu.";
    let mut legacy = Vec::new();
    legacy.extend_from_slice(
        b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03.\x80\x02}.",
    );
    legacy.extend_from_slice(pkl);
    legacy.extend_from_slice(b"\x80\x02].");
    let f = write_temp(&legacy);
    let msg = open_msg(f.path());
    assert!(
        msg.contains("`epoch` (int 3)")
            && msg.contains("`opt` (dict of 1)")
            && msg.contains("state_dict, "),
        "{msg}"
    );
}

#[test]
fn colliding_rules_name_both_keys_and_change_nothing() {
    let mut w = Weights::open(fixture("wrapped_model.pth")).unwrap();
    let e = w
        .apply_rules(&KeyRules::new().rename("bias", "weight"))
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("`model.head.bias`") && msg.contains("`model.head.weight`"),
        "{msg}"
    );
    assert_eq!(
        w.keys().collect::<Vec<_>>(),
        ["model.head.bias", "model.head.weight"]
    );
}

#[test]
fn unsupported_conversion_is_an_error() {
    let w = Weights::open(fixture("module.pt")).unwrap();
    let msg = w
        .get("lin.bias", &[3], DType::F8E4M3, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`lin.bias`") && msg.contains("F8E4M3"),
        "{msg}"
    );
}
