//! `x @ weight.T + bias` as one `gemm` call on the raw buffers, with an optional
//! activation epilogue or residual input.

use crate::cpu::{self, F32Data};
use crate::math::{Io, Unary, UnaryMap};
use crate::{simd, Activation};
use candle_core::{Error, Result, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// What happens besides `x @ weight.T + bias`.
#[derive(Clone, Copy)]
pub(crate) enum Epilogue<'a> {
    None,
    /// `act(x @ weight.T + bias)`, applied in place after the GEMM.
    Act(Activation),
    /// `residual + x @ weight.T + bias`, pre-filled into the output before the GEMM.
    Residual(&'a Tensor),
}

/// Fast path of [`crate::linear`] and its fused variants; all tensors are `f32` on the
/// CPU and the shapes were checked by the caller (`x: [..., k]`, `weight: [n, k]`,
/// `bias: [n]`, `residual: [..., n]`).
pub(crate) fn linear_f32(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, epilogue: Epilogue) -> Result<Tensor> {
    const OP: &str = "linear";
    let (n, k) = weight.dims2()?;
    let mut out_dims = x.dims().to_vec();
    let m: usize = out_dims[..out_dims.len().saturating_sub(1)].iter().product();
    if let Some(last) = out_dims.last_mut() {
        *last = n;
    }
    let mut out = Vec::<f32>::with_capacity(m * n);
    let spare = &mut out.spare_capacity_mut()[..m * n];
    let gemm_writes_all = m > 0 && n > 0 && k > 0;
    let bias = bias.map(Tensor::contiguous).transpose()?;
    let bias_data = bias.as_ref().map(|b| F32Data::new(b, OP)).transpose()?;
    let b = bias_data.as_ref().map(|d| elements(d, "bias")).transpose()?;
    let residual = match epilogue {
        Epilogue::Residual(r) => Some(r.contiguous()?),
        _ => None,
    };
    let residual_data = residual.as_ref().map(|r| F32Data::new(r, OP)).transpose()?;
    let r = residual_data.as_ref().map(|d| elements(d, "residual")).transpose()?;
    let rows_chunk = (n * cpu::rows_per_task(n)).max(1);
    // Pre-fill with `residual + bias`, `residual`, `bias` or (if the GEMM won't write
    // everything) zeros; the GEMM then accumulates onto it (`read_dst`).
    let read_dst = match (r, b) {
        (Some(r), b) => {
            spare
                .par_chunks_mut(rows_chunk)
                .zip(r.par_chunks(rows_chunk))
                .for_each(|(dst, src)| match b {
                    Some(b) => {
                        for (d_row, s_row) in dst.chunks_exact_mut(n).zip(src.chunks_exact(n)) {
                            for ((d, &x), &y) in d_row.iter_mut().zip(s_row).zip(b) {
                                d.write(x + y);
                            }
                        }
                    }
                    None => {
                        cpu::init_from(dst, src);
                    }
                });
            true
        }
        (None, Some(b)) => {
            spare.par_chunks_mut(rows_chunk).for_each(|rows| {
                for row in rows.chunks_exact_mut(n) {
                    cpu::init_from(row, b);
                }
            });
            true
        }
        (None, None) => {
            if !gemm_writes_all {
                spare
                    .par_chunks_mut(cpu::CHUNK)
                    .for_each(|c| c.fill(MaybeUninit::new(0.0)));
            }
            false
        }
    };
    if gemm_writes_all {
        let x = x.contiguous()?;
        let xd = F32Data::new(&x, OP)?;
        let lhs = elements(&xd, "input")?;
        let wd = F32Data::new(weight, OP)?;
        let ws = wd.layout().stride();
        let rhs = &wd.buffer()[wd.layout().start_offset()..];
        // SAFETY: `lhs` holds m*k elements read with strides (k, 1); `rhs` is the weight
        // [n, k] read transposed through its own (valid) layout strides; `out` has
        // capacity m*n, written with strides (n, 1): every element, onto the pre-filled
        // rows (read_dst), else without reading the uninitialised memory.
        unsafe {
            cpu::matmul(
                (m, n, k),
                out.as_mut_ptr(),
                n,
                read_dst,
                lhs.as_ptr(),
                k,
                rhs.as_ptr(),
                (ws[1] as isize, ws[0] as isize),
                cpu::gemm_parallelism(),
            );
        }
    }
    // SAFETY: all m*n elements were initialised above (pre-fill, zeros or the GEMM).
    unsafe { out.set_len(m * n) };
    if let Epilogue::Act(act) = epilogue {
        out.par_chunks_mut(cpu::CHUNK).for_each(|c| {
            simd::run(UnaryMap {
                op: Unary::Act(act),
                io: Io::InPlace(c),
            })
        });
    }
    cpu::tensor(out, out_dims)
}

/// The elements of a tensor made contiguous by the caller.
fn elements<'a>(d: &'a F32Data<'_>, what: &str) -> Result<&'a [f32]> {
    d.contiguous()
        .ok_or_else(|| Error::Msg(format!("linear: {what} is not contiguous")))
}
