//! Pixel-exact geometry: `Image.transpose`, `Image.crop` and `ImageOps.expand`.

use super::{Image, ImageError, Pixels};

/// `PIL.Image.Transpose`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transpose {
    /// Mirror left ↔ right.
    FlipLeftRight,
    /// Mirror top ↔ bottom.
    FlipTopBottom,
    /// Rotate 90° counter-clockwise.
    Rotate90,
    /// Rotate 180°.
    Rotate180,
    /// Rotate 270° counter-clockwise (90° clockwise).
    Rotate270,
    /// Swap x and y (mirror about the main diagonal).
    Transpose,
    /// Mirror about the anti-diagonal.
    Transverse,
}

impl Transpose {
    /// The transpose `ImageOps.exif_transpose` applies for an EXIF orientation (1 and
    /// unknown values: none).
    pub fn for_exif_orientation(orientation: u16) -> Option<Transpose> {
        Some(match orientation {
            2 => Transpose::FlipLeftRight,
            3 => Transpose::Rotate180,
            4 => Transpose::FlipTopBottom,
            5 => Transpose::Transpose,
            6 => Transpose::Rotate270,
            7 => Transpose::Transverse,
            8 => Transpose::Rotate90,
            _ => return None,
        })
    }
}

/// Build `out_w × out_h` pixels of `bands` samples, each copied from the source pixel
/// `src_of(x, y)` or set to `fill` where that is `None`.
fn remap<T: Copy>(
    src: &[T],
    src_w: usize,
    bands: usize,
    (out_w, out_h): (usize, usize),
    fill: &[T],
    src_of: impl Fn(usize, usize) -> Option<(usize, usize)>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(out_w * out_h * bands);
    for y in 0..out_h {
        for x in 0..out_w {
            match src_of(x, y) {
                Some((sx, sy)) => {
                    let at = (sy * src_w + sx) * bands;
                    out.extend_from_slice(&src[at..at + bands]);
                }
                None => out.extend_from_slice(fill),
            }
        }
    }
    out
}

impl Image {
    /// Apply `src_of` to every sample type; `fill` is one value per band.
    pub(super) fn remapped(
        &self,
        (out_w, out_h): (u32, u32),
        fill: &[f64],
        src_of: impl Fn(usize, usize) -> Option<(usize, usize)>,
    ) -> Image {
        let (w, b, size) = (
            self.width as usize,
            self.mode.bands(),
            (out_w as usize, out_h as usize),
        );
        let pixels = match &self.pixels {
            Pixels::U8(v) => Pixels::U8(remap(
                v,
                w,
                b,
                size,
                &fill.iter().map(|&f| f as u8).collect::<Vec<_>>(),
                src_of,
            )),
            Pixels::U16(v) => Pixels::U16(remap(
                v,
                w,
                b,
                size,
                &fill.iter().map(|&f| f as u16).collect::<Vec<_>>(),
                src_of,
            )),
            Pixels::I32(v) => Pixels::I32(remap(
                v,
                w,
                b,
                size,
                &fill.iter().map(|&f| f as i32).collect::<Vec<_>>(),
                src_of,
            )),
            Pixels::F32(v) => Pixels::F32(remap(
                v,
                w,
                b,
                size,
                &fill.iter().map(|&f| f as f32).collect::<Vec<_>>(),
                src_of,
            )),
        };
        self.with_pixels(out_w, out_h, pixels)
    }

    /// `Image.transpose(method)`.
    pub fn transpose(&self, t: Transpose) -> Image {
        let (w, h) = (self.width as usize, self.height as usize);
        let swapped = matches!(
            t,
            Transpose::Rotate90
                | Transpose::Rotate270
                | Transpose::Transpose
                | Transpose::Transverse
        );
        let size = if swapped {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        };
        let zeros = vec![0.0; self.mode.bands()];
        self.remapped(size, &zeros, |x, y| {
            Some(match t {
                Transpose::FlipLeftRight => (w - 1 - x, y),
                Transpose::FlipTopBottom => (x, h - 1 - y),
                Transpose::Rotate180 => (w - 1 - x, h - 1 - y),
                Transpose::Rotate90 => (w - 1 - y, x),
                Transpose::Rotate270 => (y, h - 1 - x),
                Transpose::Transpose => (y, x),
                Transpose::Transverse => (w - 1 - y, h - 1 - x),
            })
        })
    }

    /// `Image.crop((left, top, left + width, top + height))`: the region may extend past
    /// the image; pixels outside are 0, as in PIL.
    pub fn crop(&self, left: i64, top: i64, width: u32, height: u32) -> Image {
        let (w, h) = (i64::from(self.width), i64::from(self.height));
        let zeros = vec![0.0; self.mode.bands()];
        self.remapped((width, height), &zeros, |x, y| {
            let (sx, sy) = (left + x as i64, top + y as i64);
            ((0..w).contains(&sx) && (0..h).contains(&sy)).then_some((sx as usize, sy as usize))
        })
    }

    /// `ImageOps.expand(im, border=(left, top, right, bottom), fill=...)` as torchvision's
    /// constant `pad` calls it: `fill` is one value for every band or one per band (a
    /// palette index for `P`).
    pub fn pad(
        &self,
        [left, top, right, bottom]: [u32; 4],
        fill: &[f64],
    ) -> Result<Image, ImageError> {
        let bands = self.mode.bands();
        let fill: Vec<f64> = match fill.len() {
            1 => vec![fill[0]; bands],
            n if n == bands => fill.to_vec(),
            n => {
                return Err(ImageError::InvalidArgument(format!(
                    "The number of elements in 'fill' does not match the number of channels of the image ({n} != {bands})"
                )))
            }
        };
        let out_w = self
            .width
            .checked_add(left)
            .and_then(|v| v.checked_add(right));
        let out_h = self
            .height
            .checked_add(top)
            .and_then(|v| v.checked_add(bottom));
        let (Some(out_w), Some(out_h)) = (out_w, out_h) else {
            return Err(ImageError::InvalidArgument(
                "padded size overflows u32".into(),
            ));
        };
        let (l, t, w, h) = (
            left as usize,
            top as usize,
            self.width as usize,
            self.height as usize,
        );
        Ok(self.remapped((out_w, out_h), &fill, |x, y| {
            (x >= l && x - l < w && y >= t && y - t < h).then(|| (x - l, y - t))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Mode;

    fn grid() -> Image {
        // 3 wide, 2 high: values 0..6 row-major.
        Image::new(3, 2, Mode::L, Pixels::U8((0..6).collect())).unwrap()
    }

    fn px(im: &Image) -> Vec<u8> {
        im.as_u8().unwrap().to_vec()
    }

    #[test]
    fn transposes_match_pil() {
        // Values from PIL: Image.frombytes("L", (3, 2), bytes(range(6))).transpose(m).tobytes()
        let cases = [
            (Transpose::FlipLeftRight, (3, 2), vec![2, 1, 0, 5, 4, 3]),
            (Transpose::FlipTopBottom, (3, 2), vec![3, 4, 5, 0, 1, 2]),
            (Transpose::Rotate180, (3, 2), vec![5, 4, 3, 2, 1, 0]),
            (Transpose::Rotate90, (2, 3), vec![2, 5, 1, 4, 0, 3]),
            (Transpose::Rotate270, (2, 3), vec![3, 0, 4, 1, 5, 2]),
            (Transpose::Transpose, (2, 3), vec![0, 3, 1, 4, 2, 5]),
            (Transpose::Transverse, (2, 3), vec![5, 2, 4, 1, 3, 0]),
        ];
        for (t, size, want) in cases {
            let out = grid().transpose(t);
            assert_eq!((out.size(), px(&out)), (size, want), "{t:?}");
        }
    }

    #[test]
    fn crop_outside_is_zero_and_pad_fills() {
        let c = grid().crop(1, -1, 3, 2);
        assert_eq!(px(&c), vec![0, 0, 0, 1, 2, 0]);
        let p = grid().pad([1, 0, 0, 1], &[9.0]).unwrap();
        assert_eq!(p.size(), (4, 3));
        assert_eq!(px(&p), vec![9, 0, 1, 2, 9, 3, 4, 5, 9, 9, 9, 9]);
        assert!(grid().pad([1, 0, 0, 0], &[1.0, 2.0]).is_err());
    }
}
