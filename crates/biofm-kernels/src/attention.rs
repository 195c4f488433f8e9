//! Fused multi-head attention: one parallel task per (batch, head, block of queries);
//! one block holds up to `Q_BLOCK` queries, fewer when that is needed to give every
//! thread several tasks.
//!
//! Each task gathers its queries for one head straight from the (possibly strided) `q`
//! view, multiplied by `scale` first as timm does (`q * scale`, then `@ k.T`); computes
//! the logits block `S = q k^T` with `gemm`, reading `k` through its strides; adds the
//! bias rows; applies a vectorised softmax in place; and writes `S v` (`gemm`, reading
//! `v` through its strides) into the head's columns of the `[B, Nq, D]` output.
//!
//! Memory: per thread, one `Q_BLOCK x Nk` logits buffer plus `Q_BLOCK x head_dim`
//! queries, i.e. O(Nk) rather than O(Nq Nk); keys and values are never copied. Nk is
//! bounded only by that buffer (`Nk = 100_000` needs 102 MB per thread).

use crate::cpu::{self, F32Data, SharedMut};
use crate::math::SoftmaxRows;
use crate::simd;
use candle_core::{Result, Tensor};
use rayon::prelude::*;

/// Maximum queries per task; larger query counts are split into equal blocks. 256 keeps
/// a ViT's 197 or 257 tokens in one block: one pair of `gemm` calls per head.
const Q_BLOCK: usize = 256;

/// Strided read access to a 3-D or 4-D tensor view.
struct View<'a> {
    data: &'a [f32],
    offset: usize,
    stride: &'a [usize],
}

impl<'a> View<'a> {
    fn new(d: &'a F32Data<'_>) -> Self {
        Self {
            data: d.buffer(),
            offset: d.layout().start_offset(),
            stride: d.layout().stride(),
        }
    }
}

/// Fast path of [`crate::attention`]; shapes were checked by the caller and `bias` (if
/// any) is already broadcast to `[B, heads, Nq, Nk]`.
pub(crate) fn attention_f32(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    scale: f32,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    const OP: &str = "attention";
    let (b, nq, d) = q.dims3()?;
    let nk = k.dim(1)?;
    let hd = d / heads;
    if b * nq * d == 0 || nk == 0 {
        // No keys: softmax over nothing, an all-zero weighted sum (as the oracle gives).
        return cpu::tensor(vec![0f32; b * nq * d], (b, nq, d));
    }
    let mut out = Vec::<f32>::with_capacity(b * nq * d);
    let (qd, kd, vd) = (F32Data::new(q, OP)?, F32Data::new(k, OP)?, F32Data::new(v, OP)?);
    let bias_data = bias.map(|t| F32Data::new(t, OP)).transpose()?;
    let (qv, kv, vv) = (View::new(&qd), View::new(&kd), View::new(&vd));
    let bv = bias_data.as_ref().map(View::new);

    let min_tasks = 4 * rayon::current_num_threads();
    let blocks = nq.div_ceil(Q_BLOCK).max(min_tasks.div_ceil(b * heads)).min(nq);
    let block_len = nq.div_ceil(blocks);
    let blocks = nq.div_ceil(block_len);
    let dst = SharedMut(out.as_mut_ptr());
    (0..b * heads * blocks).into_par_iter().for_each_init(
        || (vec![0f32; block_len * hd], vec![0f32; block_len * nk]),
        |(qbuf, logits), task| {
            let (bh, blk) = (task / blocks, task % blocks);
            let (bi, h) = (bh / heads, bh % heads);
            let i0 = blk * block_len;
            let rows = block_len.min(nq - i0);
            let qbuf = &mut qbuf[..rows * hd];
            let logits = &mut logits[..rows * nk];

            // Scaled queries of this block and head, gathered contiguously.
            let q0 = qv.offset + bi * qv.stride[0] + i0 * qv.stride[1] + h * hd * qv.stride[2];
            for (i, row) in qbuf.chunks_exact_mut(hd).enumerate() {
                let base = q0 + i * qv.stride[1];
                for (j, x) in row.iter_mut().enumerate() {
                    *x = qv.data[base + j * qv.stride[2]] * scale;
                }
            }
            let k0 = kv.offset + bi * kv.stride[0] + h * hd * kv.stride[2];
            let v0 = vv.offset + bi * vv.stride[0] + h * hd * vv.stride[2];
            // SAFETY: `qbuf` is [rows, hd] (strides hd, 1) and `logits` [rows, nk]
            // (strides nk, 1); the head's keys [nk, hd] are read at k0 through k's valid
            // layout strides, as the transposed [hd, nk] right-hand side.
            unsafe {
                cpu::matmul(
                    (rows, nk, hd),
                    logits.as_mut_ptr(),
                    nk,
                    false,
                    qbuf.as_ptr(),
                    hd,
                    kv.data[k0..].as_ptr(),
                    (kv.stride[2] as isize, kv.stride[1] as isize),
                    gemm::Parallelism::None,
                );
            }
            if let Some(bv) = &bv {
                let b0 = bv.offset + bi * bv.stride[0] + h * bv.stride[1] + i0 * bv.stride[2];
                for (i, row) in logits.chunks_exact_mut(nk).enumerate() {
                    let base = b0 + i * bv.stride[2];
                    match bv.stride[3] {
                        1 => row
                            .iter_mut()
                            .zip(&bv.data[base..base + nk])
                            .for_each(|(s, &x)| *s += x),
                        s3 => row
                            .iter_mut()
                            .enumerate()
                            .for_each(|(j, s)| *s += bv.data[base + j * s3]),
                    }
                }
            }
            simd::run(SoftmaxRows {
                data: logits,
                row_len: nk,
                row_stride: nk,
            });
            // SAFETY: `logits` is [rows, nk]; the head's values [nk, hd] are read at v0
            // through v's layout strides; the destination block [rows, hd] at (bi, i0,
            // h*hd) of the [b, nq, d] output (strides d, 1) belongs to this task alone.
            unsafe {
                let out_block = dst.get().add((bi * nq + i0) * d + h * hd);
                cpu::matmul(
                    (rows, hd, nk),
                    out_block,
                    d,
                    false,
                    logits.as_ptr(),
                    nk,
                    vv.data[v0..].as_ptr(),
                    (vv.stride[1] as isize, vv.stride[2] as isize),
                    gemm::Parallelism::None,
                );
            }
        },
    );
    // SAFETY: the (batch, head, query block) tasks tile the whole [b, nq, d] output, and
    // each task's second GEMM (read_dst = false) wrote its block.
    unsafe { out.set_len(b * nq * d) };
    cpu::tensor(out, (b, nq, d))
}
