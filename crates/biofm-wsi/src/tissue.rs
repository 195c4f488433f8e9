//! Tissue detection on a low-resolution level: a pixel is tissue when its saturation
//! (OpenCV's HSV `S`) is above Otsu's threshold or it is clearly darker than the glass
//! (the commonest grey level); then a morphological closing, hole filling and a minimum
//! area; tissue outlines
//! as level-0 polygons (GeoJSON that QuPath imports) and a thumbnail with them drawn.

use crate::error::WsiError;
use crate::slide::Slide;

/// Settings of [`detect_tissue`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TissueOptions {
    /// Segment at the level [`Slide::best_level_for_downsample`] picks for this.
    pub downsample: f64,
    /// Pieces of tissue smaller than this are dropped (µm² when the slide's mpp is
    /// known, else level-0 pixels scaled by 0.25 µm/px).
    pub min_area_um2: f64,
    /// Closing radius in mask pixels (joins fragments of one piece of tissue).
    pub close_radius: usize,
}

impl Default for TissueOptions {
    fn default() -> Self {
        Self { downsample: 32.0, min_area_um2: 10_000.0, close_radius: 2 }
    }
}

/// A tissue mask at one level of a slide.
#[derive(Debug, Clone)]
pub struct TissueMask {
    pub level: usize,
    /// Level-0 pixels per mask pixel, per axis.
    pub scale: (f64, f64),
    pub width: usize,
    pub height: usize,
    /// Row-major, `true` = tissue.
    pub mask: Vec<bool>,
    /// Otsu's threshold on saturation (0-255).
    pub threshold: u8,
    /// The level's RGB pixels the mask was computed from.
    pub rgb: Vec<u8>,
}

/// Grey levels below the glass (the commonest grey) that count as tissue.
const GLASS_MARGIN: i32 = 15;

/// OpenCV's `COLOR_RGB2HSV` saturation for 8-bit pixels: `255 (max - min) / max`, rounded.
fn saturation(r: u8, g: u8, b: u8) -> u8 {
    let max = r.max(g).max(b) as u32;
    let min = r.min(g).min(b) as u32;
    if max == 0 {
        0
    } else {
        ((255 * (max - min) + max / 2) / max) as u8
    }
}

/// Otsu's threshold: the `t` maximising the between-class variance of `v <= t` / `v > t`.
pub fn otsu(hist: &[u64; 256]) -> u8 {
    let total: u64 = hist.iter().sum();
    let sum: f64 = hist.iter().enumerate().map(|(i, &c)| i as f64 * c as f64).sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0f64, 0f64, -1f64, 0u8);
    for t in 0..256 {
        w0 += hist[t] as f64;
        sum0 += t as f64 * hist[t] as f64;
        let w1 = total as f64 - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0, (sum - sum0) / w1);
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t as u8;
        }
    }
    best_t
}

fn morph(mask: &[bool], w: usize, h: usize, r: usize, dilate: bool) -> Vec<bool> {
    let mut out = vec![false; mask.len()];
    for y in 0..h {
        for x in 0..w {
            let mut hit = !dilate;
            'n: for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
                for xx in x.saturating_sub(r)..=(x + r).min(w - 1) {
                    if mask[yy * w + xx] == dilate {
                        hit = dilate;
                        break 'n;
                    }
                }
            }
            out[y * w + x] = hit;
        }
    }
    out
}

/// 4-connected components of `value` pixels: labels (0 = other) and sizes.
fn components(mask: &[bool], w: usize, h: usize, value: bool) -> (Vec<u32>, Vec<usize>) {
    let mut label = vec![0u32; mask.len()];
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if mask[start] != value || label[start] != 0 {
            continue;
        }
        let id = sizes.len() as u32;
        sizes.push(0);
        label[start] = id;
        stack.push(start);
        while let Some(p) = stack.pop() {
            sizes[id as usize] += 1;
            let (x, y) = (p % w, p / w);
            let mut visit = |q: usize| {
                if mask[q] == value && label[q] == 0 {
                    label[q] = id;
                    stack.push(q);
                }
            };
            if x > 0 {
                visit(p - 1);
            }
            if x + 1 < w {
                visit(p + 1);
            }
            if y > 0 {
                visit(p - w);
            }
            if y + 1 < h {
                visit(p + w);
            }
        }
    }
    (label, sizes)
}

/// Segments tissue on a low-resolution level of `slide`.
pub fn detect_tissue(slide: &Slide, opts: &TissueOptions) -> Result<TissueMask, WsiError> {
    let level = slide.best_level_for_downsample(opts.downsample);
    let l = &slide.levels()[level];
    let (w, h) = (l.width as usize, l.height as usize);
    if w * h > 64 << 20 {
        return Err(WsiError::Other(format!(
            "the level used for tissue detection is {w}x{h} px: the slide has no low-resolution level near downsample {}",
            opts.downsample
        )));
    }
    let rgba = slide.read_region(0, 0, level, l.width, l.height)?;
    let (w0, h0) = slide.dimensions();
    let scale = (w0 as f64 / w as f64, h0 as f64 / h as f64);
    let sat: Vec<u8> = rgba.chunks_exact(4).map(|p| if p[3] == 0 { 0 } else { saturation(p[0], p[1], p[2]) }).collect();
    let mut hist = [0u64; 256];
    sat.iter().for_each(|&s| hist[s as usize] += 1);
    let threshold = otsu(&hist);
    // Pale tissue (IHC stroma, faint eosin) is barely saturated but darker than the
    // glass: also count pixels clearly darker than the commonest (background) grey.
    let grey: Vec<u8> = rgba
        .chunks_exact(4)
        .map(|p| if p[3] == 0 { 255 } else { ((p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114 + 500) / 1000) as u8 })
        .collect();
    let mut ghist = [0u64; 256];
    grey.iter().for_each(|&g| ghist[g as usize] += 1);
    let glass = (0..256).max_by_key(|&i| ghist[i]).unwrap_or(255) as i32;
    let dark = (glass - GLASS_MARGIN).max(0) as u8;
    let mut mask: Vec<bool> = sat.iter().zip(&grey).map(|(&s, &g)| s > threshold || g < dark).collect();
    if opts.close_radius > 0 {
        mask = morph(&morph(&mask, w, h, opts.close_radius, true), w, h, opts.close_radius, false);
    }
    // Fill holes: background not connected to the border becomes tissue.
    let (bg, _) = components(&mask, w, h, false);
    let mut border = std::collections::HashSet::new();
    for x in 0..w {
        border.insert(bg[x]);
        border.insert(bg[(h - 1) * w + x]);
    }
    for y in 0..h {
        border.insert(bg[y * w]);
        border.insert(bg[y * w + w - 1]);
    }
    for (m, &b) in mask.iter_mut().zip(&bg) {
        if !*m && !border.contains(&b) {
            *m = true;
        }
    }
    // Minimum area.
    let um2_per_px = match slide.mpp() {
        Some((mx, my)) => mx * my * scale.0 * scale.1,
        None => 0.0625 * scale.0 * scale.1,
    };
    let min_px = (opts.min_area_um2 / um2_per_px).ceil() as usize;
    let (lab, sizes) = components(&mask, w, h, true);
    for (m, &c) in mask.iter_mut().zip(&lab) {
        if *m && sizes[c as usize] < min_px {
            *m = false;
        }
    }
    let rgb = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    Ok(TissueMask { level, scale, width: w, height: h, mask, threshold, rgb })
}

impl TissueMask {
    fn at(&self, x: i64, y: i64) -> bool {
        x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height && self.mask[y as usize * self.width + x as usize]
    }

    /// Whether the level-0 point `(x, y)` is tissue.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        self.at((x / self.scale.0).floor() as i64, (y / self.scale.1).floor() as i64)
    }

    /// Fraction of tissue in the level-0 box `[x, x + w) x [y, y + h)`, by mask pixel
    /// area overlap.
    pub fn fraction(&self, x: f64, y: f64, w: f64, h: f64) -> f64 {
        let (sx, sy) = self.scale;
        let (x0, y0, x1, y1) = (x / sx, y / sy, (x + w) / sx, (y + h) / sy);
        let mut covered = 0.0;
        for my in y0.floor() as i64..y1.ceil() as i64 {
            for mx in x0.floor() as i64..x1.ceil() as i64 {
                if self.at(mx, my) {
                    let ox = (x1.min(mx as f64 + 1.0) - x0.max(mx as f64)).max(0.0);
                    let oy = (y1.min(my as f64 + 1.0) - y0.max(my as f64)).max(0.0);
                    covered += ox * oy;
                }
            }
        }
        covered / ((x1 - x0) * (y1 - y0))
    }

    /// Tissue area in level-0 pixels.
    pub fn area_px(&self) -> f64 {
        self.mask.iter().filter(|&&m| m).count() as f64 * self.scale.0 * self.scale.1
    }

    /// Outlines of the tissue pieces as closed polygons in level-0 pixel coordinates
    /// (the boundary of the mask's pixel squares, collinear points removed; outer
    /// boundaries clockwise in image coordinates, i.e. y down).
    pub fn polygons(&self) -> Vec<Vec<(f64, f64)>> {
        use std::collections::HashMap;
        // Directed boundary edges with tissue on the right (y down): vertex -> next.
        let mut next: HashMap<(i64, i64), Vec<(i64, i64)>> = HashMap::new();
        for y in 0..self.height as i64 {
            for x in 0..self.width as i64 {
                if !self.at(x, y) {
                    continue;
                }
                if !self.at(x, y - 1) {
                    next.entry((x, y)).or_default().push((x + 1, y));
                }
                if !self.at(x + 1, y) {
                    next.entry((x + 1, y)).or_default().push((x + 1, y + 1));
                }
                if !self.at(x, y + 1) {
                    next.entry((x + 1, y + 1)).or_default().push((x, y + 1));
                }
                if !self.at(x - 1, y) {
                    next.entry((x, y + 1)).or_default().push((x, y));
                }
            }
        }
        let mut starts: Vec<(i64, i64)> = next.keys().copied().collect();
        starts.sort_unstable_by_key(|&(x, y)| (y, x));
        let mut rings = Vec::new();
        for s in starts {
            while next.get(&s).is_some_and(|v| !v.is_empty()) {
                let mut ring = vec![s];
                let mut cur = s;
                let mut prev_dir = (1i64, 0i64);
                loop {
                    let outs = next.get_mut(&cur).expect("vertex with an edge");
                    // At a vertex shared by two diagonal pieces, turn right first so
                    // each piece gets its own ring.
                    let pick = if outs.len() > 1 {
                        let right = (-prev_dir.1, prev_dir.0);
                        outs.iter().position(|&n| (n.0 - cur.0, n.1 - cur.1) == right).unwrap_or(0)
                    } else {
                        0
                    };
                    let n = outs.swap_remove(pick);
                    prev_dir = (n.0 - cur.0, n.1 - cur.1);
                    cur = n;
                    if cur == s {
                        break;
                    }
                    ring.push(cur);
                }
                rings.push(ring);
            }
        }
        rings
            .into_iter()
            .map(|ring| {
                let n = ring.len();
                let keep: Vec<(i64, i64)> = (0..n)
                    .filter(|&i| {
                        let (a, b, c) = (ring[(i + n - 1) % n], ring[i], ring[(i + 1) % n]);
                        (b.0 - a.0) * (c.1 - b.1) - (b.1 - a.1) * (c.0 - b.0) != 0
                    })
                    .map(|i| ring[i])
                    .collect();
                keep.into_iter().map(|(x, y)| (x as f64 * self.scale.0, y as f64 * self.scale.1)).collect()
            })
            .collect()
    }

    /// The outlines as a GeoJSON FeatureCollection of tissue annotations (QuPath:
    /// File > Import objects; coordinates are level-0 pixels).
    pub fn to_geojson(&self) -> serde_json::Value {
        let features: Vec<serde_json::Value> = self
            .polygons()
            .into_iter()
            .map(|p| {
                let mut ring: Vec<[f64; 2]> = p.iter().map(|&(x, y)| [x, y]).collect();
                if let Some(&first) = ring.first() {
                    ring.push(first);
                }
                serde_json::json!({
                    "type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                    "properties": {"objectType": "annotation", "classification": {"name": "Tissue"}},
                })
            })
            .collect();
        serde_json::json!({"type": "FeatureCollection", "features": features})
    }

    /// The level's pixels with tissue boundaries drawn in green (RGB, `width x height`).
    pub fn overlay(&self) -> Vec<u8> {
        let mut out = self.rgb.clone();
        for y in 0..self.height as i64 {
            for x in 0..self.width as i64 {
                let edge = self.at(x, y) && [(-1, 0), (1, 0), (0, -1), (0, 1)].iter().any(|&(dx, dy)| !self.at(x + dx, y + dy));
                if edge {
                    let i = (y as usize * self.width + x as usize) * 3;
                    out[i..i + 3].copy_from_slice(&[0, 200, 0]);
                }
            }
        }
        out
    }
}
