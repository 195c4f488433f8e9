//! `Image.convert("RGB")` and the premultiplied-alpha conversions of Pillow 13's
//! `libImaging/Convert.c`.

use super::{Image, Mode, Pixels};

/// `MULDIV255(a, b)` of Pillow: `a * b / 255` rounded, in integer arithmetic.
fn muldiv255(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// RGBA → RGBa / LA → La (`rgbA2rgba`, `lA2la`): colour bands times alpha / 255.
/// `bands` is 4 or 2; alpha is the last band.
pub(super) fn premultiply(v: &mut [u8], bands: usize) {
    for px in v.chunks_exact_mut(bands) {
        let (colour, alpha) = px.split_at_mut(bands - 1);
        colour.iter_mut().for_each(|c| *c = muldiv255(*c, alpha[0]));
    }
}

/// RGBa → RGBA / La → LA (`rgba2rgbA`, `la2lA`): colour × 255 / alpha (integer division,
/// clipped), left alone where alpha is 0 or 255.
pub(super) fn unpremultiply(v: &mut [u8], bands: usize) {
    for px in v.chunks_exact_mut(bands) {
        let (colour, alpha) = px.split_at_mut(bands - 1);
        let a = u32::from(alpha[0]);
        if a != 0 && a != 255 {
            colour
                .iter_mut()
                .for_each(|c| *c = (255 * u32::from(*c) / a).min(255) as u8);
        }
    }
}

/// Grey value of an `F` sample as Pillow's `f2l`: clip to 0..255, then truncate.
fn f2l(v: f32) -> u8 {
    if v <= 0.0 {
        0
    } else if v >= 255.0 {
        255
    } else {
        v as u8
    }
}

impl Image {
    /// `Image.convert("RGB")` of Pillow 13, from every mode:
    ///
    /// * `1` → 0/255 grey; `L` → grey copied to R, G, B; `LA` → grey, alpha dropped;
    /// * `P` → palette lookup (transparency ignored); `RGBA` → alpha dropped without
    ///   compositing; `RGBa` → un-premultiplied first (Pillow's `rgba2rgb_`), and so is
    ///   `La` (which Pillow cannot convert at all);
    /// * `CMYK` → `nk - MULDIV255(c, nk)` with `nk = 255 - k` per channel;
    /// * `I;16`/`I;16B` and `I` → values clipped to 0..255; `F` → clipped then truncated
    ///   (Pillow goes `F` → `L` → `RGB`).
    pub fn convert_rgb(&self) -> Image {
        if matches!(self.mode, Mode::RGBa | Mode::La) {
            return self.toggle_premultiplied().convert_rgb();
        }
        let n = self.width as usize * self.height as usize;
        let grey =
            |g: &mut dyn Iterator<Item = u8>| -> Vec<u8> { g.flat_map(|v| [v, v, v]).collect() };
        let rgb: Vec<u8> = match (&self.pixels, self.mode) {
            (Pixels::U8(v), Mode::RGB) => v.clone(),
            (Pixels::U8(v), Mode::Bilevel) => {
                grey(&mut v.iter().map(|&p| if p != 0 { 255 } else { 0 }))
            }
            (Pixels::U8(v), Mode::L) => grey(&mut v.iter().copied()),
            (Pixels::U8(v), Mode::LA) => grey(&mut v.iter().step_by(2).copied()),
            (Pixels::U8(v), Mode::P) => match &self.palette {
                Some(p) => v.iter().flat_map(|&i| p.rgb(i)).collect(),
                // A palette image without a palette: Pillow's default palette is all black.
                None => vec![0; n * 3],
            },
            (Pixels::U8(v), Mode::RGBA) => v
                .chunks_exact(4)
                .flat_map(|px| [px[0], px[1], px[2]])
                .collect(),
            (Pixels::U8(v), Mode::CMYK) => v
                .chunks_exact(4)
                .flat_map(|px| {
                    let nk = 255 - px[3];
                    [
                        nk - muldiv255(px[0], nk),
                        nk - muldiv255(px[1], nk),
                        nk - muldiv255(px[2], nk),
                    ]
                })
                .collect(),
            (Pixels::U16(v), _) => grey(&mut v.iter().map(|&s| s.min(255) as u8)),
            (Pixels::I32(v), _) => grey(&mut v.iter().map(|&s| s.clamp(0, 255) as u8)),
            (Pixels::F32(v), _) => grey(&mut v.iter().map(|&s| f2l(s))),
            // RGBa and La were handled above; the other modes do not store bytes.
            (Pixels::U8(_), mode) => {
                unreachable!("mode {mode} is converted above or does not store bytes")
            }
        };
        Image {
            width: self.width,
            height: self.height,
            mode: Mode::RGB,
            pixels: Pixels::U8(rgb),
            palette: None,
            transparency: None,
        }
    }

    /// Convert between straight and premultiplied alpha (`RGBA` ↔ `RGBa`, `LA` ↔ `La`) as
    /// Pillow does around `resize`. Other modes are returned unchanged.
    pub(super) fn toggle_premultiplied(&self) -> Image {
        let (mode, premul) = match self.mode {
            Mode::RGBA => (Mode::RGBa, true),
            Mode::LA => (Mode::La, true),
            Mode::RGBa => (Mode::RGBA, false),
            Mode::La => (Mode::LA, false),
            _ => return self.clone(),
        };
        let mut out = self.clone();
        out.mode = mode;
        if let Pixels::U8(v) = &mut out.pixels {
            if premul {
                premultiply(v, self.mode.bands());
            } else {
                unpremultiply(v, self.mode.bands());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn muldiv255_is_rounded_division() {
        for a in 0..=255u8 {
            for b in [0u8, 1, 77, 128, 254, 255] {
                let exact = f64::from(a) * f64::from(b) / 255.0;
                assert!(
                    (f64::from(muldiv255(a, b)) - exact).abs() <= 0.5 + 1e-9,
                    "{a} {b}"
                );
            }
        }
    }

    #[test]
    fn premultiply_round_trip_keeps_opaque_and_transparent() {
        let mut v = vec![200, 100, 50, 255, 200, 100, 50, 0, 200, 100, 50, 128];
        premultiply(&mut v, 4);
        assert_eq!(&v[..8], &[200, 100, 50, 255, 0, 0, 0, 0]);
        assert_eq!(&v[8..], &[100, 50, 25, 128]);
        unpremultiply(&mut v, 4);
        assert_eq!(&v[8..], &[199, 99, 49, 128]);
    }

    #[test]
    fn premultiplied_rgb_is_unpremultiplied() {
        // PIL: Image.frombytes("RGBa", (1, 1), bytes([100, 50, 20, 128])).convert("RGB")
        let im = Image::new(1, 1, Mode::RGBa, Pixels::U8(vec![100, 50, 20, 128])).unwrap();
        assert_eq!(im.convert_rgb().as_u8().unwrap(), &[199, 99, 39]);
    }

    #[test]
    fn f2l_truncates_and_clips() {
        assert_eq!(
            [f2l(-3.0), f2l(12.9), f2l(254.99), f2l(300.0)],
            [0, 12, 254, 255]
        );
    }
}
