//! Shared test code: fixture paths and the reference values written by
//! tools/reference/gen_weights_fixtures.py.
#![allow(dead_code)] // each test binary uses a subset

use candle_core::{DType, Device, Tensor};
use safetensors::SafeTensors;
use std::path::PathBuf;

pub const REGENERATE: &str =
    "regenerate with: tools/reference/.venv/bin/python tools/reference/gen_weights_fixtures.py";

pub fn fixture(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    assert!(p.exists(), "missing fixture {}; {REGENERATE}", p.display());
    p
}

pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

/// The reference tensors (`expected.safetensors`), read with the `safetensors` crate.
pub struct Expected(Vec<u8>);

impl Expected {
    pub fn load() -> Self {
        Self(fixture_bytes("expected.safetensors"))
    }
    pub fn st(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.0).unwrap()
    }
    /// Keys under `group.` with the group removed.
    pub fn keys(&self, group: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .st()
            .names()
            .iter()
            .filter_map(|n| n.strip_prefix(&format!("{group}.")).map(str::to_string))
            .collect();
        v.sort();
        v
    }
    /// (dtype, shape, little-endian bytes) of `name`.
    pub fn get(&self, name: &str) -> (safetensors::Dtype, Vec<usize>, Vec<u8>) {
        let st = self.st();
        let t = st
            .tensor(name)
            .unwrap_or_else(|e| panic!("expected tensor {name}: {e}; {REGENERATE}"));
        (t.dtype(), t.shape().to_vec(), t.data().to_vec())
    }
}

/// The candle dtype for a safetensors dtype, where candle has one.
pub fn candle_dtype(d: safetensors::Dtype) -> Option<DType> {
    use safetensors::Dtype as S;
    Some(match d {
        S::F64 => DType::F64,
        S::F32 => DType::F32,
        S::F16 => DType::F16,
        S::BF16 => DType::BF16,
        S::I64 => DType::I64,
        S::I32 => DType::I32,
        S::I16 => DType::I16,
        S::U32 => DType::U32,
        S::U8 => DType::U8,
        _ => return None,
    })
}

/// Little-endian bytes of a CPU tensor, row-major.
pub fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    let t = t.flatten_all().unwrap();
    match t.dtype() {
        DType::F64 => t
            .to_vec1::<f64>()
            .unwrap()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        DType::F32 => t
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        DType::F16 => t
            .to_vec1::<half::f16>()
            .unwrap()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        DType::BF16 => t
            .to_vec1::<half::bf16>()
            .unwrap()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        DType::I64 => t
            .to_vec1::<i64>()
            .unwrap()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        DType::I32 => t
            .to_vec1::<i32>()
            .unwrap()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        DType::I16 => t
            .to_vec1::<i16>()
            .unwrap()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        DType::U32 => t
            .to_vec1::<u32>()
            .unwrap()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        DType::U8 => t.to_vec1::<u8>().unwrap(),
        d => panic!("unexpected dtype {d:?}"),
    }
}

/// Asserts that `w[key]` fetched as the expected tensor's dtype equals it bit for bit.
pub fn assert_matches(w: &biofm_weights::Weights, key: &str, exp: &Expected, exp_name: &str) {
    let (dtype, shape, bytes) = exp.get(exp_name);
    let dtype =
        candle_dtype(dtype).unwrap_or_else(|| panic!("{exp_name}: no candle dtype for {dtype:?}"));
    let t = w
        .get(key, &shape, dtype, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{key}: {e}"));
    assert_eq!(t.dims(), shape.as_slice(), "{key}");
    assert_eq!(
        tensor_bytes(&t),
        bytes,
        "{key} as {dtype:?} differs from {exp_name}"
    );
}
