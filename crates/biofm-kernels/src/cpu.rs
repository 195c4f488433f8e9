//! Access to the `f32` buffers behind CPU tensors, and utilities shared by the fast paths.

use candle_core::{CpuStorage, DType, Device, Error, Layout, Result, Shape, Storage, StorageRef, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Elements per parallel task for element-wise work (64 KiB of `f32`).
pub(crate) const CHUNK: usize = 16 * 1024;
/// Elements per block that `map_copy` copies and then transforms (4 KiB of `f32`).
const BLOCK: usize = 1024;

/// Whether `t` can take the fast paths: an `f32` tensor on the CPU.
pub(crate) fn is_f32_cpu(t: &Tensor) -> bool {
    t.dtype() == DType::F32 && t.device().is_cpu()
}

/// A read-locked `f32` CPU tensor: its whole storage buffer and its layout.
pub(crate) struct F32Data<'a> {
    guard: StorageRef<'a>,
    layout: &'a Layout,
}

impl<'a> F32Data<'a> {
    /// Locks `t` for reading; errors (naming `op`) if it is not an `f32` CPU tensor.
    pub(crate) fn new(t: &'a Tensor, op: &str) -> Result<Self> {
        let (guard, layout) = t.storage_and_layout();
        match &*guard {
            Storage::Cpu(CpuStorage::F32(_)) => Ok(Self { guard, layout }),
            _ => Err(Error::Msg(format!(
                "{op}: expected an f32 CPU tensor, got {:?} on {:?}",
                t.dtype(),
                t.device()
            ))),
        }
    }

    /// The whole storage buffer (index it with [`Self::layout`]).
    pub(crate) fn buffer(&self) -> &[f32] {
        match &*self.guard {
            Storage::Cpu(CpuStorage::F32(v)) => v,
            // `new` only builds views of f32 CPU storage.
            _ => &[],
        }
    }

    pub(crate) fn layout(&self) -> &Layout {
        self.layout
    }

    /// The elements in row-major order, or `None` if the layout is not contiguous.
    pub(crate) fn contiguous(&self) -> Option<&[f32]> {
        let (start, end) = self.layout.contiguous_offsets()?;
        self.buffer().get(start..end)
    }
}

/// The elements of `t` (an `f32` CPU tensor) in row-major order as a fresh buffer, with
/// `f` applied in place to blocks of whole rows (`row_len` elements each; 1 for
/// element-wise ops) of about `BLOCK` elements, each right after it is copied: the block
/// is in L1 when `f` runs, and reading the input overlaps with computing. Blocks are
/// grouped into parallel tasks of about `CHUNK` elements. Non-contiguous inputs are
/// made contiguous by candle first.
pub(crate) fn map_copy(t: &Tensor, op: &str, row_len: usize, f: impl Fn(&mut [f32]) + Sync) -> Result<Vec<f32>> {
    let t = t.contiguous()?;
    let data = F32Data::new(&t, op)?;
    let src = data
        .contiguous()
        .ok_or_else(|| Error::Msg(format!("{op}: input is not contiguous")))?;
    let row_len = row_len.max(1);
    let block = row_len * (BLOCK / row_len).max(1);
    let chunk = block * (CHUNK / block).max(1);
    Ok(build(src.len(), chunk, |i, piece| {
        let s = &src[i * chunk..][..piece.len()];
        for (d, s) in piece.chunks_mut(block).zip(s.chunks(block)) {
            f(init_from(d, s));
        }
    }))
}

/// A fresh `n`-element buffer, filled in parallel: `fill(i, piece)` receives the `i`-th
/// `chunk`-sized piece, uninitialised, and must initialise all of it (e.g. with
/// [`init_from`]). Skips the zeroing pass of `vec![0.0; n]`, which on large outputs
/// costs as much as a cheap kernel.
pub(crate) fn build(n: usize, chunk: usize, fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    let mut out = Vec::<f32>::with_capacity(n);
    out.spare_capacity_mut()[..n]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, piece)| fill(i, piece));
    // SAFETY: `fill` initialised every piece, and the pieces cover the first n elements.
    unsafe { out.set_len(n) };
    out
}

/// Copies `src` into the uninitialised `dst` (same length) and returns it initialised.
pub(crate) fn init_from<'a>(dst: &'a mut [MaybeUninit<f32>], src: &[f32]) -> &'a mut [f32] {
    assert_eq!(dst.len(), src.len(), "init_from: length mismatch");
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`; all `dst.len()` elements are
    // written before the slice is viewed as initialised.
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast::<f32>(), src.len());
        std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast::<f32>(), dst.len())
    }
}

/// Wraps a row-major buffer as a CPU tensor (no copy).
pub(crate) fn tensor(data: Vec<f32>, shape: impl Into<Shape>) -> Result<Tensor> {
    Tensor::from_vec(data, shape.into(), &Device::Cpu)
}

/// Rows per parallel task so that a task covers about `CHUNK` elements.
pub(crate) fn rows_per_task(row_len: usize) -> usize {
    (CHUNK / row_len.max(1)).max(1)
}

/// A raw output pointer shared by parallel tasks that write disjoint regions.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut(pub *mut f32);

// SAFETY: only used to hand each parallel task its own, non-overlapping output region.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the field).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// `dst (+)= lhs · rhs` in f32 through `gemm`: `dst` is `[m, n]` with row stride
/// `dst_rs` (read and accumulated into when `accumulate`), `lhs` is `[m, k]` with row
/// stride `lhs_rs`, and element `(p, j)` of `rhs` (`[k, n]`) is at
/// `rhs + p * rhs_rs + j * rhs_cs`. Columns of `dst` and `lhs` are contiguous.
///
/// # Safety
/// Every pointer must be valid for the elements those shapes and strides reach; `dst`
/// must not overlap the inputs, and must be initialised when `accumulate`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: *const f32,
    lhs_rs: usize,
    rhs: *const f32,
    (rhs_rs, rhs_cs): (isize, isize),
    parallelism: gemm::Parallelism,
) {
    // SAFETY: forwarded from the caller; with `accumulate` false, `dst` is only written
    // (gemm ignores alpha then).
    unsafe {
        gemm::gemm(
            m, n, k, dst, 1, dst_rs as isize, accumulate, lhs, 1, lhs_rs as isize, rhs, rhs_cs, rhs_rs, 1.0f32, 1.0f32,
            false, false, false, parallelism,
        );
    }
}

/// `gemm` parallelism for a top-level product: the current rayon pool's threads.
pub(crate) fn gemm_parallelism() -> gemm::Parallelism {
    if SERIAL.with(|s| s.get()) {
        return gemm::Parallelism::None;
    }
    match rayon::current_num_threads() {
        0 | 1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    }
}

thread_local! {
    /// Set while this thread runs one part of [`crate::data_parallel`]: its GEMMs then
    /// run single-threaded (the other threads are busy with the other parts).
    pub(crate) static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
