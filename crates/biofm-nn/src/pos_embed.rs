//! Absolute position-embedding resampling as timm does it
//! (`timm.layers.resample_abs_pos_embed`).
//!
//! timm resamples the patch part of a learned position embedding with
//! `F.interpolate(grid, size, mode="bicubic", antialias=True, align_corners=False)` in
//! f32, both when a `dynamic_img_size` model sees a new grid and when a checkpoint is
//! loaded into a model with a different grid. PyTorch's antialiased bicubic
//! (`_upsample_bicubic2d_aa`, CPU kernel in `aten/src/ATen/native/cpu/UpSampleKernel.cpp`)
//! is Pillow's separable convolution resampler, not the a = -0.75 bicubic of
//! `antialias=False`:
//!
//! * Keys cubic kernel with a = -0.5;
//! * when downsampling by `scale = in / out > 1` the kernel is stretched by `scale`
//!   (support `2 * scale` input pixels, taps evaluated at `distance / scale`); when
//!   upsampling the support stays 2;
//! * output pixel `i` is centred at `scale * (i + 0.5)` in input coordinates, taps are
//!   the input pixels `[xmin, xmin + xsize)` clipped to the image, and the tap weights
//!   are normalised to sum to 1 (this is how borders are handled);
//! * the last dimension (width) is resampled first, then the height; a dimension whose
//!   size does not change is not touched.
//!
//! The arithmetic below follows the kernel operation by operation, including what the
//! compiler made of it in PyTorch's x86 builds (AVX2/AVX-512 dispatch, compiled with
//! floating-point contraction and auto-vectorisation): the cubic polynomial uses fused
//! multiply-adds, and each output sums its first tap product, then the next `4k` taps
//! (`k = (taps - 1) / 4`) as separately rounded products added in order, then the
//! remaining taps with fused multiply-adds. With that, results are bit-identical to
//! PyTorch's on the machine the fixtures were made on.
//!
//! timm passes `F.interpolate` a channels-last view of the grid, which is what the
//! fixtures exercise. (On a contiguous NCHW tensor PyTorch's vertical pass gives every
//! row of a one-column output the first row's value; timm's layout does not hit that.)

use anyhow::{bail, Result};
use candle_core::{DType, Tensor};

/// timm `resample_abs_pos_embed(posemb, new_size, old_size, num_prefix_tokens)` with its
/// defaults (`interpolation="bicubic"`, `antialias=True`).
///
/// `pos_embed` is `[1, num_prefix_tokens + old_h * old_w, C]`; the first
/// `num_prefix_tokens` rows (class/register positions) are kept as they are and the
/// rest is resampled from the `old_size` grid (row-major, `(h, w)`) to `new_size`.
/// `old_size = None` means a square grid, as in timm. Like timm, the input is returned
/// unchanged when the token count already matches and the grids are equal (or
/// `old_size` is `None` and `new_size` is square). The computation is done in f32 and
/// the result is cast back to the input dtype.
pub fn resample_abs_pos_embed(
    pos_embed: &Tensor,
    new_size: (usize, usize),
    old_size: Option<(usize, usize)>,
    num_prefix_tokens: usize,
) -> Result<Tensor> {
    let (one, num_pos, channels) = pos_embed.dims3()?;
    if one != 1 {
        bail!(
            "pos_embed must have shape [1, tokens, dim], got {:?}",
            pos_embed.dims()
        );
    }
    if num_pos < num_prefix_tokens {
        bail!(
            "pos_embed has {num_pos} positions, fewer than its {num_prefix_tokens} prefix tokens"
        );
    }
    let num_new = new_size.0 * new_size.1 + num_prefix_tokens;
    if num_new == num_pos {
        match old_size {
            Some(old) if old == new_size => return Ok(pos_embed.clone()),
            None if new_size.0 == new_size.1 => return Ok(pos_embed.clone()),
            _ => {}
        }
    }
    let grid_tokens = num_pos - num_prefix_tokens;
    let old_size = old_size.unwrap_or_else(|| {
        let side = (grid_tokens as f64).sqrt() as usize;
        (side, side)
    });
    if old_size.0 * old_size.1 != grid_tokens {
        bail!(
            "pos_embed {:?} holds {grid_tokens} grid positions after {num_prefix_tokens} prefix token(s), \
             which is not a {}x{} grid",
            pos_embed.dims(),
            old_size.0,
            old_size.1
        );
    }
    if new_size.0 == 0 || new_size.1 == 0 {
        bail!(
            "cannot resample pos_embed to an empty {}x{} grid",
            new_size.0,
            new_size.1
        );
    }

    let dtype = pos_embed.dtype();
    let pe = pos_embed.squeeze(0)?.to_dtype(DType::F32)?;
    let prefix = pe.narrow(0, 0, num_prefix_tokens)?;
    let grid: Vec<f32> = pe
        .narrow(0, num_prefix_tokens, grid_tokens)?
        .flatten_all()?
        .to_vec1()?;
    let resampled = bicubic_aa_hwc(&grid, old_size, channels, new_size);
    let resampled = Tensor::from_vec(resampled, (new_size.0 * new_size.1, channels), pe.device())?;
    Ok(Tensor::cat(&[&prefix, &resampled], 0)?
        .unsqueeze(0)?
        .to_dtype(dtype)?)
}

/// Resamples an `[h, w, channels]` row-major grid to `new_size` with PyTorch's
/// antialiased bicubic interpolation (`align_corners=False`, no explicit scale factor).
fn bicubic_aa_hwc(
    grid: &[f32],
    (h, w): (usize, usize),
    channels: usize,
    (nh, nw): (usize, usize),
) -> Vec<f32> {
    // Width first (the contiguous dimension in NCHW), then height, as PyTorch does.
    let mut data = grid.to_vec();
    if nw != w {
        data = resample_axis(&data, h, w, channels, &AxisTaps::new(w, nw));
    }
    if nh != h {
        data = resample_axis(&data, 1, h, nw * channels, &AxisTaps::new(h, nh));
    }
    data
}

/// Input taps and normalised weights of every output position along one axis
/// (PyTorch `_compute_indices_min_size_weights_aa` with the cubic filter).
struct AxisTaps {
    /// Per output position: first input index and its weights (one per tap).
    taps: Vec<(usize, Vec<f32>)>,
}

impl AxisTaps {
    fn new(in_size: usize, out_size: usize) -> Self {
        // area_pixel_compute_scale<float>: in / out, in f32.
        let scale = in_size as f32 / out_size as f32;
        // interp_size = 4: support 2, stretched by the scale when downsampling.
        let support = if scale >= 1.0 {
            (2.0 * f64::from(scale)) as f32
        } else {
            2.0f32
        };
        let max_taps = (support.ceil() as i64) * 2 + 1;
        let invscale = if scale >= 1.0 {
            (1.0 / f64::from(scale)) as f32
        } else {
            1.0f32
        };
        let taps = (0..out_size)
            .map(|i| {
                let center = (f64::from(scale) * (i as f64 + 0.5)) as f32;
                let xmin = ((f64::from(center - support) + 0.5) as i64).max(0);
                let xmax = ((f64::from(center + support) + 0.5) as i64).min(in_size as i64);
                let xsize = (xmax - xmin).clamp(0, max_taps);
                let mut weights: Vec<f32> = (0..xsize)
                    .map(|j| {
                        let x = ((f64::from((j + xmin) as f32 - center) + 0.5)
                            * f64::from(invscale)) as f32;
                        keys_cubic(x)
                    })
                    .collect();
                let total: f32 = weights.iter().fold(0.0f32, |acc, &v| acc + v);
                if total != 0.0 {
                    for v in &mut weights {
                        *v /= total;
                    }
                }
                (xmin as usize, weights)
            })
            .collect();
        Self { taps }
    }
}

/// Keys cubic convolution kernel with a = -0.5 (PyTorch's antialiased bicubic, as in
/// Pillow), evaluated in f32: `((a + 2) x - (a + 3)) x^2 + 1` for `|x| < 1`,
/// `((a x - 5a) x + 8a) x - 4a` for `|x| < 2`, with PyTorch's fused multiply-adds.
fn keys_cubic(x: f32) -> f32 {
    const A: f32 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0).mul_add(x, -(A + 3.0)) * x).mul_add(x, 1.0)
    } else if x < 2.0 {
        A.mul_add(x, -5.0 * A)
            .mul_add(x, 8.0 * A)
            .mul_add(x, -4.0 * A)
    } else {
        0.0
    }
}

/// Resamples the middle axis of a row-major `[outer, len, inner]` array with `taps`,
/// returning `[outer, taps.len(), inner]`, accumulating in f32 in tap order as PyTorch's
/// compiled kernel does (see the module docs).
fn resample_axis(
    data: &[f32],
    outer: usize,
    len: usize,
    inner: usize,
    taps: &AxisTaps,
) -> Vec<f32> {
    let out_len = taps.taps.len();
    let mut out = vec![0.0f32; outer * out_len * inner];
    for o in 0..outer {
        let src = &data[o * len * inner..(o + 1) * len * inner];
        for (i, (start, weights)) in taps.taps.iter().enumerate() {
            let dst = &mut out[(o * out_len + i) * inner..(o * out_len + i + 1) * inner];
            // One tap at a time over the whole row keeps memory access contiguous; each
            // element still sees the per-element operation order described above.
            let row = |j: usize| &src[(start + j) * inner..(start + j + 1) * inner];
            let Some((&w0, rest)) = weights.split_first() else {
                continue; // no taps: PyTorch cannot produce this (xsize >= 1)
            };
            for (d, &t) in dst.iter_mut().zip(row(0)) {
                *d = t * w0;
            }
            let unfused = rest.len() / 4 * 4;
            for (j, &wt) in rest.iter().enumerate() {
                let fused = j >= unfused;
                for (d, &t) in dst.iter_mut().zip(row(j + 1)) {
                    *d = if fused {
                        t.mul_add(wt, *d)
                    } else {
                        *d + t * wt
                    };
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsampling_weights_are_keys_cubic_and_normalised() {
        // 4 -> 8: scale 0.5, support 2; output 3 is centred at 1.75, so its taps are
        // input pixels 0..4 at distances 1.25, 0.25, 0.75, 1.75 (weights sum to 1).
        let taps = AxisTaps::new(4, 8);
        let (start, w) = &taps.taps[3];
        assert_eq!(*start, 0);
        let expect = [
            keys_cubic(1.25),
            keys_cubic(0.25),
            keys_cubic(0.75),
            keys_cubic(1.75),
        ];
        assert_eq!(w.len(), 4);
        for (a, b) in w.iter().zip(expect) {
            assert!((a - b).abs() < 1e-7, "{w:?} vs {expect:?}");
        }
        for (_, w) in &taps.taps {
            let s: f32 = w.iter().sum();
            assert!((s - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn downsampling_stretches_the_kernel() {
        // 12 -> 3: scale 4, support 8 input pixels, up to 2*8+1 taps.
        let taps = AxisTaps::new(12, 3);
        let (start, w) = &taps.taps[1];
        assert_eq!(*start, 0);
        assert_eq!(w.len(), 12);
        assert!(w.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn constant_grids_stay_constant() {
        let grid = vec![0.25f32; 5 * 7 * 2];
        for new in [(3, 4), (9, 11), (5, 2), (1, 1)] {
            let out = bicubic_aa_hwc(&grid, (5, 7), 2, new);
            assert_eq!(out.len(), new.0 * new.1 * 2);
            assert!(
                out.iter().all(|v| (v - 0.25).abs() < 1e-6),
                "{new:?}: {out:?}"
            );
        }
    }
}
