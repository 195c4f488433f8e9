//! Materialising stored bytes as candle tensors of the requested dtype.
//!
//! Conversions follow torch's CPU casts (`Tensor.to(dtype)`, i.e. C++ `static_cast`
//! through c10's `Half`/`BFloat16`, which are constructed from `float`):
//! * float to float rounds to nearest even; f64 goes to f16/bf16 *through f32* (so a value
//!   can round twice, exactly as in torch);
//! * integers to floats round once (`i64 as f32`);
//! * floats to integers truncate toward zero via int64, then narrow;
//! * integers narrow by keeping the low bits (two's complement wrap);
//! * bool is 0 or 1.

use crate::error::{Error, Result};
use crate::store::{Entry, StoredDType};
use candle_core::{DType, Device, Tensor, WithDType};
use half::{bf16, f16};

/// One decoded element: floats keep their precision, integers (up to u64) are exact.
#[derive(Clone, Copy)]
enum Scalar {
    F64(f64),
    /// f32, and f16/bf16 widened to f32 (exactly).
    F32(f32),
    Int(i128),
}

/// A candle element type that stored scalars convert into.
trait FromScalar: WithDType {
    fn from_scalar(s: Scalar) -> Self;
}

/// Float targets, built from f64, from f32 and from integers.
macro_rules! float_target {
    ($t:ty, $from_f64:expr, $from_f32:expr, $from_int:expr) => {
        impl FromScalar for $t {
            fn from_scalar(s: Scalar) -> Self {
                match s {
                    Scalar::F64(x) => $from_f64(x),
                    Scalar::F32(x) => $from_f32(x),
                    Scalar::Int(i) => $from_int(i),
                }
            }
        }
    };
}
float_target!(f64, |x: f64| x, |x: f32| x as f64, |i: i128| i as f64);
float_target!(f32, |x: f64| x as f32, |x: f32| x, |i: i128| i as f32);
// c10::Half and c10::BFloat16 are constructed from float: other types go through f32.
float_target!(
    f16,
    |x: f64| f16::from_f32(x as f32),
    f16::from_f32,
    |i: i128| f16::from_f32(i as f32)
);
float_target!(
    bf16,
    |x: f64| bf16::from_f32(x as f32),
    bf16::from_f32,
    |i: i128| bf16::from_f32(i as f32)
);

macro_rules! int_target {
    ($($t:ty),*) => {$(
        impl FromScalar for $t {
            fn from_scalar(s: Scalar) -> Self {
                match s {
                    Scalar::F64(x) => x as i64 as $t,
                    Scalar::F32(x) => x as i64 as $t,
                    Scalar::Int(i) => i as $t,
                }
            }
        }
    )*};
}
int_target!(i64, i32, i16, u32, u8);

/// Reads the entry's elements (honouring strides) into a tensor of `dtype`.
pub(crate) fn to_tensor(key: &str, e: &Entry, dtype: DType, device: &Device) -> Result<Tensor> {
    match dtype {
        DType::F32 => gather::<f32>(key, e, device),
        DType::F16 => gather::<f16>(key, e, device),
        DType::BF16 => gather::<bf16>(key, e, device),
        DType::F64 => gather::<f64>(key, e, device),
        DType::I64 => gather::<i64>(key, e, device),
        DType::I32 => gather::<i32>(key, e, device),
        DType::I16 => gather::<i16>(key, e, device),
        DType::U32 => gather::<u32>(key, e, device),
        DType::U8 => gather::<u8>(key, e, device),
        other => Err(Error::Unsupported {
            path: e.file.to_path_buf(),
            msg: format!(
                "tensor `{key}`: conversion from {:?} to {other:?} is not supported",
                e.info.dtype
            ),
        }),
    }
}

fn gather<T: FromScalar>(key: &str, e: &Entry, device: &Device) -> Result<Tensor> {
    let shape = &e.info.shape;
    let sd = e.info.dtype;
    let es = sd.size();
    let bytes = e.blob.bytes();
    let past_end = |pos: usize| Error::Corrupt {
        path: e.file.to_path_buf(),
        offset: pos as u64,
        msg: format!("tensor `{key}` reads past the end of the file"),
    };
    let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let mut out: Vec<T> = Vec::new();
    let numel = numel
        .filter(|&n| out.try_reserve_exact(n).is_ok())
        .ok_or_else(|| Error::Alloc {
            key: key.to_string(),
            shape: shape.clone(),
            dtype: T::DTYPE,
        })?;
    match &e.strides {
        _ if numel == 0 => {}
        None => decode_run(sd, bytes, e.byte_offset, numel, 1, &mut out)
            .ok_or_else(|| past_end(e.byte_offset))?,
        Some(strides) => {
            // The last dim is one run; the others advance like an odometer. Byte positions
            // stay within the span `Entry::new` checked (so no arithmetic overflows), and
            // every run is bounds-checked regardless.
            let (&inner_len, &inner_stride) = shape.last().zip(strides.last()).unwrap_or((&1, &0));
            let outer = shape.len().saturating_sub(1);
            let mut idx = vec![0usize; outer];
            let mut base = e.byte_offset;
            'runs: loop {
                decode_run(sd, bytes, base, inner_len, inner_stride, &mut out)
                    .ok_or_else(|| past_end(base))?;
                for d in (0..outer).rev() {
                    idx[d] += 1;
                    if idx[d] < shape[d] {
                        base += strides[d] * es;
                        continue 'runs;
                    }
                    idx[d] = 0;
                    base -= (shape[d] - 1) * strides[d] * es;
                }
                break;
            }
        }
    }
    Ok(Tensor::from_vec(out, shape.as_slice(), device)?)
}

/// Appends `n >= 1` elements of type `sd`, `stride` elements apart from byte `pos` on, to
/// `out`; `None` if they are not all inside `bytes`. The dtype dispatch happens once per
/// run, so contiguous tensors decode in one tight loop.
fn decode_run<T: FromScalar>(
    sd: StoredDType,
    bytes: &[u8],
    pos: usize,
    n: usize,
    stride: usize,
    out: &mut Vec<T>,
) -> Option<()> {
    use StoredDType as S;
    let es = sd.size();
    // A size-1 run never applies its stride; a stride-0 run repeats one element.
    let (count, step) = if n == 1 || stride == 0 {
        (1, 1)
    } else {
        (n, stride)
    };
    let len = ((count - 1) * step + 1) * es;
    let run = bytes.get(pos..pos.checked_add(len)?)?;
    macro_rules! decode {
        ($n:literal, $decode:expr) => {
            for c in run.chunks_exact($n).step_by(step) {
                out.push(T::from_scalar($decode(c.try_into().ok()?)));
            }
        };
    }
    match sd {
        S::F64 => decode!(8, |b| Scalar::F64(f64::from_le_bytes(b))),
        S::F32 => decode!(4, |b| Scalar::F32(f32::from_le_bytes(b))),
        S::F16 => decode!(2, |b| Scalar::F32(f16::from_le_bytes(b).to_f32())),
        S::BF16 => decode!(2, |b| Scalar::F32(bf16::from_le_bytes(b).to_f32())),
        S::I64 => decode!(8, |b| Scalar::Int(i64::from_le_bytes(b).into())),
        S::I32 => decode!(4, |b| Scalar::Int(i32::from_le_bytes(b).into())),
        S::I16 => decode!(2, |b| Scalar::Int(i16::from_le_bytes(b).into())),
        S::I8 => decode!(1, |b| Scalar::Int(i8::from_le_bytes(b).into())),
        S::U64 => decode!(8, |b| Scalar::Int(u64::from_le_bytes(b).into())),
        S::U32 => decode!(4, |b| Scalar::Int(u32::from_le_bytes(b).into())),
        S::U16 => decode!(2, |b| Scalar::Int(u16::from_le_bytes(b).into())),
        S::U8 => decode!(1, |b| Scalar::Int(u8::from_le_bytes(b).into())),
        S::Bool => decode!(1, |b: [u8; 1]| Scalar::Int((b[0] != 0).into())),
    }
    if count < n {
        let v = *out.last()?;
        out.extend(std::iter::repeat_n(v, n - count));
    }
    Some(())
}
