//! Fixture access shared by the image tests: the manifest and tensors written by
//! tools/reference/gen_image_fixtures.py, and the comparisons against them.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

const REGENERATE: &str =
    "regenerate with: tools/reference/.venv/bin/python tools/reference/gen_image_fixtures.py";

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images")
}

/// `sample:NAME` → data/samples/NAME of the workspace; anything else → a zoo input.
pub fn input_path(reference: &str) -> PathBuf {
    match reference.strip_prefix("sample:") {
        Some(name) => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/samples")
            .join(name),
        None => fixtures_dir().join("inputs").join(reference),
    }
}

pub fn read_input(reference: &str) -> Vec<u8> {
    let path = input_path(reference);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("missing input {}: {e}; {REGENERATE}", path.display()))
}

/// One tensor of the safetensors file.
struct TensorInfo {
    dtype: String,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

pub struct Fixtures {
    pub manifest: Value,
    data: Vec<u8>,
    tensors: HashMap<String, TensorInfo>,
    block_rows: usize,
}

pub fn load() -> Fixtures {
    let dir = fixtures_dir();
    let read = |name: &str| {
        std::fs::read(dir.join(name)).unwrap_or_else(|e| {
            panic!(
                "missing fixture {}: {e}; {REGENERATE}",
                dir.join(name).display()
            )
        })
    };
    let manifest: Value =
        serde_json::from_slice(&read("expected.json")).expect("expected.json is JSON");
    let file = read("expected.safetensors");
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&file[8..8 + n]).expect("safetensors header");
    let mut tensors = HashMap::new();
    for (name, info) in header.as_object().unwrap() {
        if name == "__metadata__" {
            continue;
        }
        let offsets = &info["data_offsets"];
        tensors.insert(
            name.clone(),
            TensorInfo {
                dtype: info["dtype"].as_str().unwrap().to_string(),
                shape: info["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as usize)
                    .collect(),
                start: offsets[0].as_u64().unwrap() as usize,
                end: offsets[1].as_u64().unwrap() as usize,
            },
        );
    }
    let block_rows = manifest["digest"]["block_rows"].as_u64().unwrap() as usize;
    assert_eq!(manifest["digest"]["algorithm"], "fnv1a64");
    Fixtures {
        manifest,
        data: file[8 + n..].to_vec(),
        tensors,
        block_rows,
    }
}

pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Decode little-endian samples of a numpy dtype name to f64 for diff reports.
fn samples(dtype: &str, bytes: &[u8]) -> Vec<f64> {
    match dtype {
        "uint8" | "U8" => bytes.iter().map(|&b| f64::from(b)).collect(),
        "uint16" | "U16" => bytes
            .chunks_exact(2)
            .map(|c| f64::from(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        "int32" | "I32" => bytes
            .chunks_exact(4)
            .map(|c| f64::from(i32::from_le_bytes(c.try_into().unwrap())))
            .collect(),
        "float32" | "F32" => bytes
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
            .collect(),
        other => panic!("unexpected dtype {other}"),
    }
}

impl Fixtures {
    pub fn list(&self, key: &str) -> &Vec<Value> {
        self.manifest[key]
            .as_array()
            .unwrap_or_else(|| panic!("expected.json has no list {key:?}; {REGENERATE}"))
    }

    /// Raw bytes and dtype of a stored tensor.
    pub fn tensor(&self, key: &str) -> (&str, &[usize], &[u8]) {
        let t = self
            .tensors
            .get(key)
            .unwrap_or_else(|| panic!("expected.safetensors has no {key:?}; {REGENERATE}"));
        (&t.dtype, &t.shape, &self.data[t.start..t.end])
    }

    /// Compare `actual` (little-endian bytes, C order, `shape`) with an expected-array
    /// description: whole tensor (exact, reports differing samples and the max diff) or
    /// block digests (exact, reports differing row blocks). `Err` describes the mismatch.
    pub fn compare(&self, desc: &Value, shape: &[usize], actual: &[u8]) -> Result<(), String> {
        let want_shape: Vec<usize> = desc["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        if want_shape != shape {
            return Err(format!("shape {shape:?}, expected {want_shape:?}"));
        }
        let dtype = desc["dtype"].as_str().unwrap();
        if let Some(key) = desc["tensor"].as_str() {
            let (_, _, want) = self.tensor(key);
            if want.len() != actual.len() {
                return Err(format!("{} bytes, expected {}", actual.len(), want.len()));
            }
            let (a, w) = (samples(dtype, actual), samples(dtype, want));
            let diffs: Vec<f64> = a
                .iter()
                .zip(&w)
                .map(|(x, y)| (x - y).abs())
                .filter(|d| *d != 0.0)
                .collect();
            if !diffs.is_empty() {
                let max = diffs.iter().cloned().fold(0.0, f64::max);
                return Err(format!(
                    "{} of {} samples differ, max abs diff {max}",
                    diffs.len(),
                    a.len()
                ));
            }
            return Ok(());
        }
        let blocks = desc["blocks"].as_array().unwrap();
        let row = actual.len() / shape[0].max(1);
        let bad: Vec<usize> = actual
            .chunks(row * self.block_rows)
            .zip(blocks)
            .enumerate()
            .filter(|(_, (chunk, want))| {
                format!("{:016x}", fnv1a64(chunk)) != want.as_str().unwrap()
            })
            .map(|(i, _)| i * self.block_rows)
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} of {} row blocks differ (first rows: {:?})",
                bad.len(),
                blocks.len(),
                &bad[..bad.len().min(8)]
            ))
        }
    }

    /// Compare float32 values with a tolerance; returns the max abs diff.
    pub fn compare_f32(
        &self,
        desc: &Value,
        shape: &[usize],
        actual: &[f32],
        tol: f32,
    ) -> Result<f32, String> {
        let key = desc["tensor"].as_str().unwrap();
        let (dtype, want_shape, bytes) = self.tensor(key);
        assert_eq!(dtype, "F32");
        if want_shape != shape {
            return Err(format!("shape {shape:?}, expected {want_shape:?}"));
        }
        let want: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let max = actual
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        if max <= tol {
            Ok(max)
        } else {
            Err(format!("max abs diff {max} > {tol}"))
        }
    }
}

/// Fail with every collected mismatch at once.
pub fn assert_no_failures(what: &str, checked: usize, failures: &[String]) {
    assert!(checked > 0, "no {what} cases were checked; {REGENERATE}");
    assert!(
        failures.is_empty(),
        "{} of {checked} {what} cases differ from the reference:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
