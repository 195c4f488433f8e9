//! Materialising stored bytes as candle tensors of the requested dtype.

use crate::error::{Error, Result};
use crate::store::{Entry, StoredDType};
use candle_core::{DType, Device, Tensor};
use half::{bf16, f16};

/// Reads the entry's elements (honouring strides) into a tensor of `dtype`.
pub(crate) fn to_tensor(key: &str, e: &Entry, dtype: DType, device: &Device) -> Result<Tensor> {
    let shape = &e.info.shape;
    let numel: usize = shape.iter().product();
    let es = e.info.dtype.size();
    let bytes = e.blob.bytes();
    // Element index -> byte position, for strided (non-contiguous) storage.
    let gather = |f: &mut dyn FnMut(&[u8])| -> Result<()> {
        match &e.strides {
            None => {
                let end = e.byte_offset + numel * es;
                let slice = bytes.get(e.byte_offset..end).ok_or_else(|| Error::Corrupt {
                    path: e.file.to_path_buf(),
                    offset: e.byte_offset as u64,
                    msg: format!("tensor `{key}` extends past the end of its data"),
                })?;
                for chunk in slice.chunks_exact(es) {
                    f(chunk);
                }
                Ok(())
            }
            Some(strides) => {
                let mut idx = vec![0usize; shape.len()];
                for _ in 0..numel {
                    let off: usize = idx.iter().zip(strides).map(|(i, s)| i * s).sum();
                    let pos = e.byte_offset + off * es;
                    let chunk = bytes.get(pos..pos + es).ok_or_else(|| Error::Corrupt {
                        path: e.file.to_path_buf(),
                        offset: pos as u64,
                        msg: format!("tensor `{key}` reads past the end of its storage"),
                    })?;
                    f(chunk);
                    for d in (0..shape.len()).rev() {
                        idx[d] += 1;
                        if idx[d] < shape[d] {
                            break;
                        }
                        idx[d] = 0;
                    }
                }
                Ok(())
            }
        }
    };
    let sd = e.info.dtype;
    let to_f64 = |c: &[u8]| -> f64 {
        match sd {
            StoredDType::F64 => f64::from_le_bytes(c.try_into().unwrap_or([0; 8])),
            StoredDType::F32 => f32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as f64,
            StoredDType::F16 => f16::from_le_bytes([c[0], c[1]]).to_f64(),
            StoredDType::BF16 => bf16::from_le_bytes([c[0], c[1]]).to_f64(),
            StoredDType::I64 => i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f64,
            StoredDType::I32 => i32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as f64,
            StoredDType::I16 => i16::from_le_bytes([c[0], c[1]]) as f64,
            StoredDType::I8 => c[0] as i8 as f64,
            StoredDType::U8 | StoredDType::Bool => c[0] as f64,
        }
    };
    let t = match dtype {
        DType::F32 => {
            let mut v = Vec::with_capacity(numel);
            if sd == StoredDType::F32 {
                gather(&mut |c| v.push(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))?;
            } else {
                gather(&mut |c| v.push(to_f64(c) as f32))?;
            }
            Tensor::from_vec(v, shape.as_slice(), device)?
        }
        DType::F16 => {
            let mut v = Vec::with_capacity(numel);
            if sd == StoredDType::F16 {
                gather(&mut |c| v.push(f16::from_le_bytes([c[0], c[1]])))?;
            } else if sd == StoredDType::F32 {
                gather(&mut |c| v.push(f16::from_f32(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))))?;
            } else {
                gather(&mut |c| v.push(f16::from_f64(to_f64(c))))?;
            }
            Tensor::from_vec(v, shape.as_slice(), device)?
        }
        DType::BF16 => {
            let mut v = Vec::with_capacity(numel);
            if sd == StoredDType::BF16 {
                gather(&mut |c| v.push(bf16::from_le_bytes([c[0], c[1]])))?;
            } else if sd == StoredDType::F32 {
                gather(&mut |c| v.push(bf16::from_f32(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))))?;
            } else {
                gather(&mut |c| v.push(bf16::from_f64(to_f64(c))))?;
            }
            Tensor::from_vec(v, shape.as_slice(), device)?
        }
        DType::F64 => {
            let mut v = Vec::with_capacity(numel);
            gather(&mut |c| v.push(to_f64(c)))?;
            Tensor::from_vec(v, shape.as_slice(), device)?
        }
        DType::I64 => {
            let mut v = Vec::with_capacity(numel);
            gather(&mut |c| v.push(to_f64(c) as i64))?;
            Tensor::from_vec(v, shape.as_slice(), device)?
        }
        DType::U32 => {
            let mut v = Vec::with_capacity(numel);
            gather(&mut |c| v.push(to_f64(c) as u32))?;
            Tensor::from_vec(v, shape.as_slice(), device)?
        }
        DType::U8 => {
            let mut v = Vec::with_capacity(numel);
            gather(&mut |c| v.push(to_f64(c) as u8))?;
            Tensor::from_vec(v, shape.as_slice(), device)?
        }
        other => {
            return Err(Error::Candle(candle_core::Error::Msg(format!(
                "tensor `{key}`: conversion to {other:?} is not supported"
            ))))
        }
    };
    Ok(t)
}
