//! `Image.resize(size, filter)` of Pillow 13 (`libImaging/Resample.c`, `Geometry.c`).
//!
//! Convolution filters are separable: per output pixel the filter (support scaled by the
//! down-scale factor, so downscaling is antialiased) is sampled at the source pixel
//! centres and normalised. 8-bit modes convert the coefficients to fixed point with 22
//! fractional bits (rounded half away from zero), accumulate in `i32` from 2^21 and clip to
//! `u8` after each pass, so the intermediate image between the passes is `u8`. `I;16`,
//! `I` and `F` accumulate in `f64` in tap order. The horizontal pass runs first and only
//! on the source rows the vertical pass reads, unless the height shrinks by more than
//! twice as many pixels as the width (Pillow 13's pass-order rule); then the vertical
//! pass runs first on the whole width.
//!
//! `NEAREST` is Pillow's affine nearest-neighbour scale: source index = truncated
//! `(x + 0.5) · in/out`, accumulated step by step as `ImagingScaleAffine` does (computed
//! directly per pixel for `I;16`, as Pillow's generic transform does). Pillow resamples
//! `I;16B` samples with their bytes swapped (it reads them in host order); so does this.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{Image, ImageError, Mode, Pixels};

/// `PIL.Image.Resampling` filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    /// Nearest neighbour.
    Nearest,
    /// Box (area average), support 0.5.
    Box,
    /// Triangle, support 1.
    Bilinear,
    /// Hamming-windowed sinc, support 1.
    Hamming,
    /// Keys cubic with a = -0.5, support 2.
    Bicubic,
    /// Lanczos-3, support 3.
    Lanczos,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Nearest | Filter::Box => 0.5,
            Filter::Bilinear | Filter::Hamming => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    /// The filter kernels of `Resample.c`, with its exact floating-point expressions.
    fn eval(self, x: f64) -> f64 {
        fn sinc(x: f64) -> f64 {
            if x == 0.0 {
                1.0
            } else {
                let x = x * std::f64::consts::PI;
                x.sin() / x
            }
        }
        match self {
            Filter::Nearest | Filter::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * std::f64::consts::PI;
                    // Pillow writes the window constants as C floats (0.54f, 0.46f).
                    x.sin() / x * (f64::from(0.54f32) + f64::from(0.46f32) * x.cos())
                }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

/// Per output pixel: first source index and tap count, plus `ksize` weights each.
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    k: Vec<f64>,
}

/// `precompute_coeffs` for the whole source range (`box` = `(0, in_size)`).
fn precompute(in_size: u32, out_size: u32, filter: Filter) -> Coeffs {
    // Pillow passes the box as C floats.
    let in0 = 0.0f32;
    let in1 = in_size as f32;
    let scale = f64::from(in1 - in0) / f64::from(out_size);
    let filterscale = if scale < 1.0 { 1.0 } else { scale };
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let inv_filterscale = 1.0 / filterscale;
    let mut bounds = Vec::with_capacity(out_size as usize);
    let mut k = vec![0.0; out_size as usize * ksize];
    for (xx, kx) in k.chunks_exact_mut(ksize).enumerate() {
        let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
        // C `(int)` casts truncate toward zero.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(i64::from(in_size));
        let count = (xmax - xmin).max(0) as usize;
        let mut ww = 0.0;
        for (x, w) in kx[..count].iter_mut().enumerate() {
            *w = filter.eval(((x as i64 + xmin) as f64 - center + 0.5) * inv_filterscale);
            ww += *w;
        }
        if ww != 0.0 {
            kx[..count].iter_mut().for_each(|w| *w /= ww);
        }
        bounds.push((xmin as usize, count));
    }
    Coeffs { ksize, bounds, k }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// `normalize_coeffs_8bpc`: fixed point, rounded half away from zero.
fn fixed_point(k: &[f64]) -> Vec<i32> {
    let one = f64::from(1u32 << PRECISION_BITS);
    k.iter()
        .map(|&w| {
            if w < 0.0 {
                (-0.5 + w * one) as i32
            } else {
                (0.5 + w * one) as i32
            }
        })
        .collect()
}

/// `clip8`: drop the fraction bits and clamp to 0..255.
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// One sample type's pair of passes.
trait Passes {
    type S: Copy;
    /// Resample `rows` of `src` (`src_w` pixels of `bands` samples) to `out_w` pixels.
    fn horizontal(
        src: &[Self::S],
        src_w: usize,
        bands: usize,
        rows: Range<usize>,
        co: &Coeffs,
        out_w: usize,
    ) -> Vec<Self::S>;
    /// Resample columns of `src` (rows of `row_len` samples) to `co.bounds.len()` rows.
    fn vertical(src: &[Self::S], row_len: usize, co: &Coeffs) -> Vec<Self::S>;
}

/// 8-bit fixed-point passes.
struct Fixed8;

/// Rows resampled together by [`horizontal_u8`].
const ROW_BLOCK: usize = 8;

/// Horizontal 8-bit pass. Rows are processed in blocks of [`ROW_BLOCK`], copied
/// column-major so each tap is one contiguous multiply-add over all rows and bands of the
/// block (integer sums, so the result does not depend on this order).
fn horizontal_u8<const B: usize>(
    src: &[u8],
    src_w: usize,
    rows: Range<usize>,
    co: &Coeffs,
    out_w: usize,
) -> Vec<u8> {
    let kk = fixed_point(&co.k);
    let lanes = ROW_BLOCK * B;
    let mut out = vec![0u8; rows.len() * out_w * B];
    let mut block = vec![0u8; src_w * lanes];
    for y0 in rows.clone().step_by(ROW_BLOCK) {
        let n_rows = ROW_BLOCK.min(rows.end - y0);
        for r in 0..n_rows {
            let line = &src[(y0 + r) * src_w * B..(y0 + r + 1) * src_w * B];
            for (x, px) in line.chunks_exact(B).enumerate() {
                block[x * lanes + r * B..x * lanes + (r + 1) * B].copy_from_slice(px);
            }
        }
        for (xx, &(xmin, n)) in co.bounds.iter().enumerate() {
            let mut acc = [HALF; ROW_BLOCK * 4];
            let acc = &mut acc[..lanes];
            let taps = &block[xmin * lanes..(xmin + n) * lanes];
            for (column, &kv) in taps
                .chunks_exact(lanes)
                .zip(&kk[xx * co.ksize..xx * co.ksize + n])
            {
                for (a, &p) in acc.iter_mut().zip(column) {
                    *a = a.wrapping_add(i32::from(p).wrapping_mul(kv));
                }
            }
            for r in 0..n_rows {
                let at = ((y0 - rows.start + r) * out_w + xx) * B;
                for b in 0..B {
                    out[at + b] = clip8(acc[r * B + b]);
                }
            }
        }
    }
    out
}

impl Passes for Fixed8 {
    type S = u8;

    fn horizontal(
        src: &[u8],
        src_w: usize,
        bands: usize,
        rows: Range<usize>,
        co: &Coeffs,
        out_w: usize,
    ) -> Vec<u8> {
        match bands {
            1 => horizontal_u8::<1>(src, src_w, rows, co, out_w),
            2 => horizontal_u8::<2>(src, src_w, rows, co, out_w),
            3 => horizontal_u8::<3>(src, src_w, rows, co, out_w),
            _ => horizontal_u8::<4>(src, src_w, rows, co, out_w),
        }
    }

    fn vertical(src: &[u8], row_len: usize, co: &Coeffs) -> Vec<u8> {
        let kk = fixed_point(&co.k);
        let mut out = Vec::with_capacity(co.bounds.len() * row_len);
        let mut acc = vec![0i32; row_len];
        for (yy, &(ymin, n)) in co.bounds.iter().enumerate() {
            acc.fill(HALF);
            for (i, &kv) in kk[yy * co.ksize..yy * co.ksize + n].iter().enumerate() {
                let row = &src[(ymin + i) * row_len..(ymin + i + 1) * row_len];
                for (a, &p) in acc.iter_mut().zip(row) {
                    *a = a.wrapping_add(i32::from(p).wrapping_mul(kv));
                }
            }
            out.extend(acc.iter().map(|&a| clip8(a)));
        }
        out
    }
}

/// A sample accumulated in `f64` (modes `I;16`, `I`, `F`).
trait WideSample: Copy {
    fn widen(self) -> f64;
    /// Store a finished sum (`ROUND_UP` + `CLIP16` for `I;16`, `ROUND_UP` for `I`, a
    /// rounding cast for `F`).
    fn narrow(ss: f64) -> Self;
}

/// `ROUND_UP(f)`: add ±0.5 and truncate.
fn round_up(ss: f64) -> i32 {
    (if ss >= 0.0 { ss + 0.5 } else { ss - 0.5 }) as i32
}

impl WideSample for u16 {
    fn widen(self) -> f64 {
        f64::from(self)
    }
    fn narrow(ss: f64) -> u16 {
        round_up(ss).clamp(0, 65535) as u16
    }
}

impl WideSample for i32 {
    fn widen(self) -> f64 {
        f64::from(self)
    }
    fn narrow(ss: f64) -> i32 {
        round_up(ss)
    }
}

impl WideSample for f32 {
    fn widen(self) -> f64 {
        f64::from(self)
    }
    fn narrow(ss: f64) -> f32 {
        ss as f32
    }
}

/// Floating-point passes over single-band wide samples.
struct Wide<T>(std::marker::PhantomData<T>);

impl<T: WideSample> Passes for Wide<T> {
    type S = T;

    fn horizontal(
        src: &[T],
        src_w: usize,
        _bands: usize,
        rows: Range<usize>,
        co: &Coeffs,
        out_w: usize,
    ) -> Vec<T> {
        let mut out = Vec::with_capacity(rows.len() * out_w);
        for y in rows {
            let line = &src[y * src_w..(y + 1) * src_w];
            for (xx, &(xmin, n)) in co.bounds.iter().enumerate() {
                let k = &co.k[xx * co.ksize..xx * co.ksize + n];
                let ss = line[xmin..xmin + n]
                    .iter()
                    .zip(k)
                    .fold(0.0, |ss, (&v, &kv)| ss + v.widen() * kv);
                out.push(T::narrow(ss));
            }
        }
        out
    }

    fn vertical(src: &[T], row_len: usize, co: &Coeffs) -> Vec<T> {
        let mut out = Vec::with_capacity(co.bounds.len() * row_len);
        let mut acc = vec![0.0f64; row_len];
        for (yy, &(ymin, n)) in co.bounds.iter().enumerate() {
            acc.fill(0.0);
            for (i, &kv) in co.k[yy * co.ksize..yy * co.ksize + n].iter().enumerate() {
                let row = &src[(ymin + i) * row_len..(ymin + i + 1) * row_len];
                for (a, &p) in acc.iter_mut().zip(row) {
                    *a += p.widen() * kv;
                }
            }
            out.extend(acc.iter().map(|&a| T::narrow(a)));
        }
        out
    }
}

/// `ImagingResampleInner`: pass order, row trimming and the passes themselves.
fn two_pass<P: Passes>(
    src: &[P::S],
    (in_w, in_h): (u32, u32),
    bands: usize,
    (out_w, out_h): (u32, u32),
    filter: Filter,
) -> Vec<P::S> {
    let need_h = out_w != in_w;
    let need_v = out_h != in_h;
    let (dw, dh) = (
        i64::from(in_w) - i64::from(out_w),
        i64::from(in_h) - i64::from(out_h),
    );
    let horizontal_first = !(dh > 0 && dh > dw * 2);
    let mut vert = precompute(in_h, out_h, filter);
    let horiz = precompute(in_w, out_w, filter);
    let (iw, ow) = (in_w as usize, out_w as usize);
    if horizontal_first {
        if !need_h {
            return if need_v {
                P::vertical(src, iw * bands, &vert)
            } else {
                src.to_vec()
            };
        }
        // Only the source rows the vertical pass will read.
        let first = vert.bounds.first().map_or(0, |b| b.0);
        let last = vert.bounds.last().map_or(0, |b| b.0 + b.1);
        vert.bounds.iter_mut().for_each(|b| b.0 -= first);
        let tmp = P::horizontal(src, iw, bands, first..last, &horiz, ow);
        if need_v {
            P::vertical(&tmp, ow * bands, &vert)
        } else {
            tmp
        }
    } else {
        let tmp = P::vertical(src, iw * bands, &vert);
        if need_h {
            P::horizontal(&tmp, iw, bands, 0..out_h as usize, &horiz, ow)
        } else {
            tmp
        }
    }
}

/// `COORD(v)`: -1 for negatives, else truncation; `None` outside `0..size`.
fn coord(v: f64, size: u32) -> Option<usize> {
    if v < 0.0 {
        return None;
    }
    let i = v as u64;
    (i < u64::from(size)).then_some(i as usize)
}

/// Source indices of NEAREST, accumulated as `ImagingScaleAffine` (or computed per pixel,
/// as the generic affine transform Pillow uses for `I;16`).
fn nearest_indices(in_size: u32, out_size: u32, direct: bool) -> Vec<Option<usize>> {
    let a = f64::from(in_size as f32) / f64::from(out_size);
    if direct {
        (0..out_size)
            .map(|x| coord(a * (f64::from(x) + 0.5), in_size))
            .collect()
    } else {
        let mut o = a * 0.5;
        (0..out_size)
            .map(|_| {
                let c = coord(o, in_size);
                o += a;
                c
            })
            .collect()
    }
}

/// Largest output `resize` will allocate (bytes).
const MAX_OUTPUT_BYTES: u64 = 1 << 32;

impl Image {
    /// `Image.resize((width, height), filter)` of Pillow 13, including its mode rules:
    /// modes `1` and `P` always use NEAREST; `RGBA` and `LA` are converted to
    /// premultiplied `RGBa` / `La`, resized and converted back (except with NEAREST); the
    /// same size returns a copy.
    pub fn resize(&self, width: u32, height: u32, filter: Filter) -> Result<Image, ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::InvalidArgument(format!(
                "resize to {width}x{height}: height and width must be > 0"
            )));
        }
        let bytes = u64::from(width) * u64::from(height) * self.mode.bytes_per_pixel() as u64;
        if bytes > MAX_OUTPUT_BYTES {
            return Err(ImageError::InvalidArgument(format!(
                "resize to {width}x{height} would need {bytes} bytes (limit {MAX_OUTPUT_BYTES})"
            )));
        }
        if (width, height) == self.size() {
            return Ok(self.clone());
        }
        let filter = if matches!(self.mode, Mode::Bilevel | Mode::P) {
            Filter::Nearest
        } else {
            filter
        };
        if matches!(self.mode, Mode::LA | Mode::RGBA) && filter != Filter::Nearest {
            return Ok(self
                .toggle_premultiplied()
                .resize(width, height, filter)?
                .toggle_premultiplied());
        }
        if filter == Filter::Nearest {
            let direct = matches!(self.mode, Mode::I16 | Mode::I16B);
            let xs = nearest_indices(self.width, width, direct);
            let ys = nearest_indices(self.height, height, direct);
            let zeros = vec![0.0; self.mode.bands()];
            return Ok(self.remapped((width, height), &zeros, |x, y| Some((xs[x]?, ys[y]?))));
        }
        let (size, out, b) = (self.size(), (width, height), self.mode.bands());
        let pixels = match &self.pixels {
            Pixels::U8(v) => Pixels::U8(two_pass::<Fixed8>(v, size, b, out, filter)),
            // Pillow 13 reads I;16B samples with the host (little-endian) byte order while
            // resampling, i.e. it filters byte-swapped values; so does this.
            Pixels::U16(v) if self.mode == Mode::I16B => {
                let swapped: Vec<u16> = v.iter().map(|s| s.swap_bytes()).collect();
                let out = two_pass::<Wide<u16>>(&swapped, size, b, out, filter);
                Pixels::U16(out.into_iter().map(u16::swap_bytes).collect())
            }
            Pixels::U16(v) => Pixels::U16(two_pass::<Wide<u16>>(v, size, b, out, filter)),
            Pixels::I32(v) => Pixels::I32(two_pass::<Wide<i32>>(v, size, b, out, filter)),
            Pixels::F32(v) => Pixels::F32(two_pass::<Wide<f32>>(v, size, b, out, filter)),
        };
        Ok(self.with_pixels(width, height, pixels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coefficients_are_normalised_and_bounded() {
        for filter in [
            Filter::Box,
            Filter::Bilinear,
            Filter::Hamming,
            Filter::Bicubic,
            Filter::Lanczos,
        ] {
            for (i, o) in [(1411, 224), (102, 224), (7, 3), (5, 5)] {
                let c = precompute(i, o, filter);
                assert_eq!(c.bounds.len(), o as usize);
                for (xx, &(xmin, n)) in c.bounds.iter().enumerate() {
                    assert!(
                        n >= 1 && n <= c.ksize && xmin + n <= i as usize,
                        "{filter:?} {i}->{o} {xx}"
                    );
                    let sum: f64 = c.k[xx * c.ksize..xx * c.ksize + n].iter().sum();
                    assert!((sum - 1.0).abs() < 1e-12, "{filter:?} {i}->{o} {xx}: {sum}");
                }
            }
        }
    }

    #[test]
    fn bicubic_kernel_values() {
        // Keys cubic, a = -0.5: 1 at 0, 0 at integers, -0.0625 at 1.5, 0.5625 at 0.5.
        let f = Filter::Bicubic;
        assert_eq!([f.eval(0.0), f.eval(1.0), f.eval(2.0)], [1.0, 0.0, 0.0]);
        assert_eq!([f.eval(0.5), f.eval(-1.5)], [0.5625, -0.0625]);
    }

    #[test]
    fn fixed_point_rounds_half_away_from_zero() {
        let one = f64::from(1u32 << PRECISION_BITS);
        assert_eq!(
            fixed_point(&[1.0, -0.25, 0.5 / one, -0.5 / one, 1.4 / one]),
            vec![1 << 22, -(1 << 20), 1, -1, 1]
        );
    }

    #[test]
    fn nearest_indices_follow_pixel_centres() {
        let idx: Vec<_> = nearest_indices(7, 3, false)
            .into_iter()
            .map(Option::unwrap)
            .collect();
        assert_eq!(idx, vec![1, 3, 5]);
        let up: Vec<_> = nearest_indices(2, 5, true)
            .into_iter()
            .map(Option::unwrap)
            .collect();
        assert_eq!(up, vec![0, 0, 1, 1, 1]);
    }

    #[test]
    fn rejects_empty_and_huge_sizes() {
        let im = Image::new(2, 2, Mode::L, Pixels::U8(vec![0; 4])).unwrap();
        assert!(im.resize(0, 3, Filter::Bilinear).is_err());
        assert!(im.resize(1 << 20, 1 << 20, Filter::Bilinear).is_err());
        assert_eq!(im.resize(2, 2, Filter::Lanczos).unwrap(), im);
    }
}
