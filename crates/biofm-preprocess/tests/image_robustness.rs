//! Damaged files must give an error or an image: never a panic, never a hang. Every zoo
//! file (all formats and modes) is truncated at many offsets and has random bytes
//! flipped, and each damaged copy is decoded on a watchdog thread.

mod image_common;

use std::sync::mpsc;
use std::time::Duration;

use biofm_preprocess::image::{decode_bytes, DecodeOptions};
use image_common::{fixtures_dir, read_input};

/// Deterministic xorshift64* so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Decode on another thread; `Err` describes a panic or a hang.
fn decode_guarded(bytes: Vec<u8>, label: String) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let opts = DecodeOptions::default();
        let result = decode_bytes(&bytes, "damaged", &opts);
        if let Err(e) = &result {
            assert!(
                e.to_string().starts_with("damaged: "),
                "error does not name the file: {e}"
            );
        }
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(()) => worker.join().map_err(|_| format!("{label}: panicked")),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(format!("{label}: panicked")),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(format!("{label}: no result after 20 s (hang?)"))
        }
    }
}

#[test]
fn truncated_and_corrupted_files_never_panic_or_hang() {
    let mut files: Vec<String> = std::fs::read_dir(fixtures_dir().join("inputs"))
        .expect("fixture inputs; regenerate with tools/reference/gen_image_fixtures.py")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert!(
        files.len() >= 40,
        "expected the decode zoo, found {} files",
        files.len()
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut failures = Vec::new();
    let mut cases = 0;
    for file in &files {
        let data = read_input(file);
        // Truncations: every byte of the first 64 (headers), then 48 spread over the file.
        let cuts: Vec<usize> = (0..64.min(data.len()))
            .chain((1..=48).map(|i| data.len() * i / 49))
            .collect();
        for cut in cuts {
            cases += 1;
            if let Err(e) =
                decode_guarded(data[..cut].to_vec(), format!("{file} truncated at {cut}"))
            {
                failures.push(e);
            }
        }
        // Corruptions: 1 to 4 random bytes replaced, 48 times per file.
        for round in 0..48 {
            let mut bad = data.clone();
            let flips = 1 + (rng.next() % 4) as usize;
            let mut at = Vec::new();
            for _ in 0..flips {
                let i = (rng.next() % bad.len() as u64) as usize;
                bad[i] = rng.next() as u8;
                at.push(i);
            }
            cases += 1;
            if let Err(e) = decode_guarded(bad, format!("{file} corruption {round} at {at:?}")) {
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} damaged files misbehaved:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
