//! Slide thumbnails as openslide-python's `get_thumbnail` makes them.

use biofm_preprocess::image::{Filter, Image, Mode, Pixels};

use crate::{Slide, WsiError};

/// Pillow's `Image.thumbnail` size: fits `max` keeping the aspect ratio, choosing the
/// rounding (floor or ceil) that keeps the ratio closest; `None` when the image fits.
pub fn thumbnail_size(width: u64, height: u64, max: (u64, u64)) -> Option<(u64, u64)> {
    let (mut x, mut y) = max;
    if x >= width && y >= height {
        return None;
    }
    let aspect = width as f64 / height as f64;
    let pick = |v: f64, key: &dyn Fn(f64) -> f64| -> u64 {
        let (lo, hi) = (v.floor(), v.ceil());
        // min() keeps the first of equal keys, and Pillow lists floor first.
        let best = if key(hi) < key(lo) { hi } else { lo };
        (best as u64).max(1)
    };
    if x as f64 / y as f64 >= aspect {
        let yy = y as f64;
        x = pick(yy * aspect, &|n| (aspect - n / yy).abs());
    } else {
        let xx = x as f64;
        y = pick(xx / aspect, &|n| if n == 0.0 { 0.0 } else { (aspect - xx / n).abs() });
    }
    Some((x, y))
}

impl Slide {
    /// An RGB thumbnail fitting `max_width x max_height`, as openslide-python's
    /// `get_thumbnail`: the best level for the downsample, read whole, transparent
    /// pixels filled with the slide's background colour (white unless the slide says),
    /// resized with Pillow's Lanczos filter. Pillow first box-reduces levels more than
    /// twice the thumbnail's size by an integer factor; biofm resizes those directly,
    /// so only thumbnails from a level less than twice their size match it exactly.
    pub fn thumbnail(&self, max_width: u64, max_height: u64) -> Result<Image, WsiError> {
        if max_width == 0 || max_height == 0 {
            return Err(WsiError::Other("thumbnail size must be at least 1 x 1".into()));
        }
        let (w, h) = self.dimensions();
        let downsample = (w as f64 / max_width as f64).max(h as f64 / max_height as f64);
        let level = self.best_level_for_downsample(downsample);
        let l = &self.levels()[level];
        let rgba = self.read_region(0, 0, level, l.width, l.height)?;
        let bg = self
            .properties()
            .get("openslide.background-color")
            .and_then(|hex| {
                let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).ok()?;
                Some([(v >> 16) as u8, (v >> 8) as u8, v as u8])
            })
            .unwrap_or([255, 255, 255]);
        let rgb: Vec<u8> = rgba
            .chunks_exact(4)
            .flat_map(|p| {
                let a = u32::from(p[3]);
                // Image.composite(tile, bg, mask=alpha), rounded as Pillow blends.
                let mix = |c: u8, b: u8| -> u8 {
                    let t = u32::from(c) * a + u32::from(b) * (255 - a) + 128;
                    ((t + (t >> 8)) >> 8) as u8
                };
                [mix(p[0], bg[0]), mix(p[1], bg[1]), mix(p[2], bg[2])]
            })
            .collect();
        let img = Image::new(l.width as u32, l.height as u32, Mode::RGB, Pixels::U8(rgb))
            .map_err(|e| WsiError::Other(format!("thumbnail: {e}")))?;
        match thumbnail_size(l.width, l.height, (max_width, max_height)) {
            None => Ok(img),
            Some((tw, th)) => img.resize(tw as u32, th as u32, Filter::Lanczos).map_err(|e| WsiError::Other(format!("thumbnail: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_pillow() {
        assert_eq!(thumbnail_size(750, 550, (256, 256)), Some((256, 188)));
        assert_eq!(thumbnail_size(550, 750, (256, 256)), Some((188, 256)));
        assert_eq!(thumbnail_size(100, 50, (256, 256)), None);
        assert_eq!(thumbnail_size(1000, 1, (10, 10)), Some((10, 1)));
    }
}
