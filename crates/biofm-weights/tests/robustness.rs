//! Hostile input: every truncation and many single-byte corruptions of real checkpoints
//! must give `Ok` or `Err` from opening and from fetching every tensor, never a panic.

mod common;

use biofm_weights::Weights;
use candle_core::{DType, Device};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Opens `bytes` (written to `file`) and fetches every tensor in its stored and in f32
/// dtype; returns whether opening succeeded. A panic fails the test naming `what`.
fn exercise(file: &mut tempfile::NamedTempFile, bytes: &[u8], what: &str) -> bool {
    // Overwrite in place, then cut to length: truncating to zero first would make ext4
    // flush the file to disk on every round (auto_da_alloc).
    std::io::Seek::rewind(file.as_file_mut()).unwrap();
    file.as_file_mut().write_all(bytes).unwrap();
    file.as_file().set_len(bytes.len() as u64).unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let Ok(w) = Weights::open(file.path()) else {
            return false;
        };
        let keys: Vec<String> = w.keys().map(str::to_string).collect();
        for k in keys {
            let info = w.info(&k).unwrap().clone();
            for dtype in [info.dtype.candle_dtype().unwrap_or(DType::I64), DType::F32] {
                // Either outcome is fine; a stride-0 tensor may claim a huge shape.
                let _ = w.get_unchecked(&k, dtype, &Device::Cpu);
            }
        }
        true
    }));
    r.unwrap_or_else(|_| panic!("panic on {what}"))
}

fn fuzz(name: &str) {
    let good = common::fixture_bytes(name);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    assert!(exercise(&mut file, &good, name), "{name} itself must open");
    for len in 0..good.len() {
        let opened = exercise(
            &mut file,
            &good[..len],
            &format!("{name} truncated to {len} bytes"),
        );
        assert!(
            !opened,
            "{name} truncated to {len} of {} bytes opened",
            good.len()
        );
    }
    let mut flipped_ok = 0;
    for pos in 0..good.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[pos] ^= mask;
            flipped_ok += exercise(
                &mut file,
                &bad,
                &format!("{name} with byte {pos} ^ {mask:#04x}"),
            ) as usize;
        }
    }
    // Flips in tensor data or padding are harmless; most header flips must be caught.
    assert!(
        flipped_ok < 3 * good.len(),
        "{name}: every corruption was accepted"
    );
}

#[test]
fn zip_checkpoint_survives_corruption() {
    fuzz("plain.bin");
}

#[test]
fn legacy_checkpoint_survives_corruption() {
    fuzz("legacy.pt");
}

#[test]
fn wrapped_checkpoint_survives_corruption() {
    fuzz("wrapped_state_dict.pt");
}

#[test]
fn safetensors_survives_corruption() {
    fuzz("plain.safetensors");
}
