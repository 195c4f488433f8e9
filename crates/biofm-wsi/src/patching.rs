//! Patch grids at a target magnification, as the reference whole-slide toolkit
//! (TRIDENT's `WSIPatcher` and `WSI.extract_tissue_coords`) lays them out:
//!
//! * the level-0 magnification is bucketed from the mpp (≥ 0.16 µm/px → 80×, 0.2 → 60×,
//!   0.3 → 40×, 0.6 → 20×, 1.2 → 10×, 2.4 → 5×), or taken from the objective power when
//!   the slide has no mpp; pixel sizes are `10 / magnification`;
//! * the patch size and overlap at level 0 are `round(size × downsample)` (Python's
//!   round-half-to-even); the grid steps by their difference, row by row, from (0, 0)
//!   while the corner is inside the slide (edge patches may reach past it);
//! * patches are read from the level whose downsample is within 0.1 of the wanted one,
//!   else the closest finer level, at `round(size_level0 / int(level_downsample))`
//!   pixels, and resized to the patch size with Pillow's bicubic filter;
//! * with a tissue outline, a patch is kept when its square touches the outline
//!   simplified with tolerance `patch_size / 4` (topology-preserving Douglas–Peucker)
//!   or, with a minimum tissue fraction, when at least that fraction of it is covered.

use biofm_preprocess::image::{Filter, Image, Mode, Pixels};

use crate::{Slide, WsiError};

/// Where the patches are cut: target magnification, size and overlap in target pixels,
/// and the minimum tissue fraction of a patch (0 keeps any patch that touches tissue).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatchSpec {
    pub magnification: f64,
    pub patch_size: u32,
    pub overlap: u32,
    pub min_tissue: f64,
}

/// The magnification bucket of a level-0 pixel size, as the reference toolkit assigns it.
pub fn magnification_from_mpp(mpp: f64) -> Result<f64, String> {
    // The reference rounds the mpp to 4 decimals before bucketing.
    let m = (mpp * 1e4).round() / 1e4;
    Ok(match m {
        m if m < 0.16 => 80.0,
        m if m < 0.2 => 60.0,
        m if m < 0.3 => 40.0,
        m if m < 0.6 => 20.0,
        m if m < 1.2 => 10.0,
        m if m < 2.4 => 5.0,
        _ => return Err(format!("{mpp} µm/px is coarser than 5× (2.4 µm/px); is the mpp right?")),
    })
}

/// The slide's level-0 magnification: bucketed from its mpp, else its objective power.
/// Fails with a message that says how to supply one.
pub fn level0_magnification(slide: &Slide) -> Result<f64, WsiError> {
    if let Some((mpp, _)) = slide.mpp() {
        return magnification_from_mpp(mpp).map_err(|e| WsiError::Other(format!("{}: {e}", slide.path().display())));
    }
    if let Some(p) = slide.objective_power() {
        // `int(objective_power)`, as the reference does.
        if p >= 1.0 {
            return Ok(p.trunc());
        }
    }
    Err(WsiError::Other(format!(
        "{}: the slide records neither its pixel size (mpp) nor its magnification; give them with \
         --mpp 0.5 (one slide) or --overrides overrides.csv (columns: slide,mpp[,magnification])",
        slide.path().display()
    )))
}

/// TRIDENT's `get_best_level_and_custom_downsample(downsample, tolerance)`: the level
/// whose downsample is within `tolerance`, else the coarsest level not coarser than
/// `downsample` (or, when upsampling, the first level at least as coarse).
pub fn best_level(level_downsamples: &[f64], downsample: f64, tolerance: f64) -> Option<usize> {
    if let Some(i) = level_downsamples.iter().position(|&d| (d - downsample).abs() <= tolerance) {
        return Some(i);
    }
    let first = *level_downsamples.first()?;
    if downsample >= first {
        let mut best = None;
        for (i, &d) in level_downsamples.iter().enumerate() {
            if d <= downsample {
                best = Some(i);
            } else {
                break;
            }
        }
        best
    } else {
        level_downsamples.iter().position(|&d| d >= downsample)
    }
}

/// How patches are cut from one slide.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPlan {
    pub spec: PatchSpec,
    pub level0_magnification: f64,
    /// Target pixel size over level-0 pixel size.
    pub downsample: f64,
    /// Patch size and overlap in level-0 pixels.
    pub patch_size_src: u64,
    pub overlap_src: u64,
    /// The level patches are read from, and their size there.
    pub level: usize,
    pub patch_size_level: u64,
    pub width: u64,
    pub height: u64,
}

/// Python's `round(x)` for floats: half to even.
fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

impl PatchPlan {
    /// Plans patches of `spec` on a slide of level-0 size `width x height` at
    /// `level0_magnification`, with the given level downsamples.
    pub fn new(
        spec: PatchSpec,
        level0_magnification: f64,
        width: u64,
        height: u64,
        level_downsamples: &[f64],
    ) -> Result<Self, WsiError> {
        if spec.patch_size == 0 {
            return Err(WsiError::Other("the patch size must be at least 1 pixel".into()));
        }
        if !(spec.magnification > 0.0 && spec.magnification.is_finite()) {
            return Err(WsiError::Other(format!("invalid target magnification {}", spec.magnification)));
        }
        if !(0.0..=1.0).contains(&spec.min_tissue) {
            return Err(WsiError::Other(format!("the minimum tissue fraction must be in [0, 1], got {}", spec.min_tissue)));
        }
        let src_pixel = 10.0 / level0_magnification;
        let dst_pixel = 10.0 / spec.magnification;
        let downsample = dst_pixel / src_pixel;
        let patch_size_src = round_half_even(f64::from(spec.patch_size) * downsample) as u64;
        let overlap_src = round_half_even(f64::from(spec.overlap) * downsample) as u64;
        if overlap_src >= patch_size_src {
            return Err(WsiError::Other(format!(
                "the overlap ({} px) must be smaller than the patch size ({} px)",
                spec.overlap, spec.patch_size
            )));
        }
        let level = best_level(level_downsamples, downsample, 0.1)
            .ok_or_else(|| WsiError::Other(format!("no pyramid level suits downsample {downsample}")))?;
        let level_downsample = level_downsamples[level].trunc().max(1.0);
        let patch_size_level = round_half_even(patch_size_src as f64 / level_downsample) as u64;
        if patch_size_level == 0 {
            return Err(WsiError::Other(format!("patches of {} px at {}× are below one pixel of level {level}", spec.patch_size, spec.magnification)));
        }
        Ok(Self { spec, level0_magnification, downsample, patch_size_src, overlap_src, level, patch_size_level, width, height })
    }

    /// Plans patches for `slide` (its magnification from [`level0_magnification`]).
    pub fn for_slide(slide: &Slide, spec: PatchSpec) -> Result<Self, WsiError> {
        let mag = level0_magnification(slide)?;
        let (w, h) = slide.dimensions();
        let downsamples: Vec<f64> = slide.levels().iter().map(|l| l.downsample).collect();
        Self::new(spec, mag, w, h, &downsamples)
    }

    /// Distance between neighbouring patches at level 0.
    pub fn step(&self) -> u64 {
        self.patch_size_src - self.overlap_src
    }

    /// The reference's `patch_size_level0` attribute: `patch_size * mag0 // target_mag`.
    pub fn patch_size_level0(&self) -> i64 {
        (f64::from(self.spec.patch_size) * self.level0_magnification / self.spec.magnification).floor() as i64
    }

    /// Every grid position (level-0 top-left corners), row by row.
    pub fn grid(&self) -> Vec<[i64; 2]> {
        let step = self.step();
        let cols = self.width.div_ceil(step);
        let rows = self.height.div_ceil(step);
        let mut out = Vec::with_capacity((cols * rows) as usize);
        for r in 0..rows {
            for c in 0..cols {
                out.push([(c * step) as i64, (r * step) as i64]);
            }
        }
        out
    }

    /// The grid positions whose patch meets the tissue outlines (closed rings in
    /// level-0 pixels, without holes) by the reference's rule (see the module docs).
    pub fn tissue_patches(&self, rings: &[Vec<(f64, f64)>]) -> Vec<[i64; 2]> {
        let tolerance = f64::from(self.spec.patch_size) / 4.0;
        let simplified: Vec<Vec<(f64, f64)>> =
            rings.iter().filter(|r| r.len() >= 3).map(|r| simplify_ring(r, tolerance)).collect();
        let s = self.patch_size_src as f64;
        let boxes: Vec<[f64; 4]> = simplified.iter().map(|r| bounds(r)).collect();
        self.grid()
            .into_iter()
            .filter(|&[x, y]| {
                let sq = [x as f64, y as f64, x as f64 + s, y as f64 + s];
                let near: Vec<&Vec<(f64, f64)>> = simplified
                    .iter()
                    .zip(&boxes)
                    .filter(|(_, b)| sq[0] <= b[2] && sq[2] >= b[0] && sq[1] <= b[3] && sq[3] >= b[1])
                    .map(|(r, _)| r)
                    .collect();
                if self.spec.min_tissue == 0.0 {
                    near.iter().any(|r| square_intersects_ring(sq, r))
                } else {
                    let covered: f64 = near.iter().map(|r| clipped_area(r, sq)).sum();
                    covered >= self.spec.min_tissue * (s * s)
                }
            })
            .collect()
    }

    /// Reads the patch at level-0 `(x, y)` as the reference does: the region of
    /// `patch_size_level` pixels at the plan's level, alpha dropped (transparent
    /// outside the slide reads black), resized to the patch size with Pillow's bicubic
    /// filter when the sizes differ.
    pub fn read_patch(&self, slide: &Slide, x: i64, y: i64) -> Result<Image, WsiError> {
        let n = self.patch_size_level;
        let rgba = slide.read_region(x, y, self.level, n, n)?;
        let rgb: Vec<u8> = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        let img = Image::new(n as u32, n as u32, Mode::RGB, Pixels::U8(rgb))
            .map_err(|e| WsiError::Other(format!("patch at ({x}, {y}): {e}")))?;
        let t = self.spec.patch_size;
        if n == u64::from(t) {
            return Ok(img);
        }
        img.resize(t, t, Filter::Bicubic).map_err(|e| WsiError::Other(format!("patch at ({x}, {y}): {e}")))
    }
}

fn bounds(ring: &[(f64, f64)]) -> [f64; 4] {
    let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    for &(x, y) in ring {
        b[0] = b[0].min(x);
        b[1] = b[1].min(y);
        b[2] = b[2].max(x);
        b[3] = b[3].max(y);
    }
    b
}

/// Distance from `p` to the segment `a`–`b` (the usual projection formula, in the
/// order of operations GEOS uses, so ties at the tolerance fall the same way).
fn point_segment_distance(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let dist = |u: (f64, f64), v: (f64, f64)| ((u.0 - v.0) * (u.0 - v.0) + (u.1 - v.1) * (u.1 - v.1)).sqrt();
    if a == b {
        return dist(p, a);
    }
    let len2 = (b.0 - a.0) * (b.0 - a.0) + (b.1 - a.1) * (b.1 - a.1);
    let r = ((p.0 - a.0) * (b.0 - a.0) + (p.1 - a.1) * (b.1 - a.1)) / len2;
    if r <= 0.0 {
        return dist(p, a);
    }
    if r >= 1.0 {
        return dist(p, b);
    }
    let s = ((a.1 - p.1) * (b.0 - a.0) - (a.0 - p.0) * (b.1 - a.1)) / len2;
    s.abs() * len2.sqrt()
}

fn orient(a: (f64, f64), b: (f64, f64), c: (f64, f64)) -> f64 {
    (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)
}

fn on_segment(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> bool {
    orient(a, b, p) == 0.0 && p.0 >= a.0.min(b.0) && p.0 <= a.0.max(b.0) && p.1 >= a.1.min(b.1) && p.1 <= a.1.max(b.1)
}

/// Whether segments `p`–`q` and `r`–`s` meet anywhere (endpoints included).
fn segments_meet(p: (f64, f64), q: (f64, f64), r: (f64, f64), s: (f64, f64)) -> bool {
    let (d1, d2) = (orient(r, s, p), orient(r, s, q));
    let (d3, d4) = (orient(p, q, r), orient(p, q, s));
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0)) && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0)) {
        return true;
    }
    on_segment(p, r, s) || on_segment(q, r, s) || on_segment(r, p, q) || on_segment(s, p, q)
}

/// Whether two segments meet at a point that is not a shared endpoint of both (JTS's
/// "interior intersection"): crossings, T-junctions and collinear overlaps.
fn interior_intersection(p: (f64, f64), q: (f64, f64), r: (f64, f64), s: (f64, f64)) -> bool {
    if !segments_meet(p, q, r, s) {
        return false;
    }
    let shared = |x: (f64, f64)| (x == p || x == q) && (x == r || x == s);
    let collinear = orient(p, q, r) == 0.0 && orient(p, q, s) == 0.0;
    if collinear {
        // Overlap longer than a single shared endpoint?
        let (a0, a1, b0, b1) = if (q.0 - p.0).abs() >= (q.1 - p.1).abs() {
            (p.0.min(q.0), p.0.max(q.0), r.0.min(s.0), r.0.max(s.0))
        } else {
            (p.1.min(q.1), p.1.max(q.1), r.1.min(s.1), r.1.max(s.1))
        };
        return a0.max(b0) < a1.min(b1) || !(shared(p) || shared(q));
    }
    // A single intersection point: interior unless it is an endpoint of both.
    for x in [p, q] {
        if on_segment(x, r, s) {
            return !shared(x);
        }
    }
    for x in [r, s] {
        if on_segment(x, p, q) {
            return !shared(x);
        }
    }
    true
}

/// Topology-preserving Douglas–Peucker on a closed ring (GEOS's
/// `TopologyPreservingSimplifier` for a polygon shell: sections are flattened only
/// when no flattening leaves fewer than 4 ring points or crosses the ring, and the
/// ring's start point is dropped afterwards when it lies within the tolerance).
/// `ring` lists each vertex once; the result does too.
pub fn simplify_ring(ring: &[(f64, f64)], tolerance: f64) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = ring.to_vec();
    pts.push(ring[0]);
    let mut s = RingSimplifier { pts: &pts, tolerance, removed: vec![false; pts.len() - 1], result: Vec::new() };
    s.section(0, pts.len() - 1, 0);
    let mut result = s.result;
    // Ring endpoint: replace the last and first segments by one when the start point
    // is within the tolerance and that stays valid.
    if result.len() + 1 > 4 {
        let (first, last) = (result[0], result[result.len() - 1]);
        let flat = (last.0, first.1);
        if point_segment_distance(first.0, flat.0, flat.1) <= tolerance {
            let n = result.len();
            let clash = result[1..n - 1].iter().any(|seg| interior_intersection(flat.0, flat.1, seg.0, seg.1));
            if !clash {
                // The ring now starts where the last segment started.
                result.pop();
                result[0] = flat;
            }
        }
    }
    result.iter().map(|seg| seg.0).collect()
}

type Segment = ((f64, f64), (f64, f64));

struct RingSimplifier<'a> {
    pts: &'a [(f64, f64)],
    tolerance: f64,
    /// Input segments already replaced in the output.
    removed: Vec<bool>,
    result: Vec<Segment>,
}

impl RingSimplifier<'_> {
    fn result_points(&self) -> usize {
        if self.result.is_empty() { 0 } else { self.result.len() + 1 }
    }

    fn section(&mut self, i: usize, j: usize, depth: usize) {
        let depth = depth + 1;
        if i + 1 == j {
            self.result.push((self.pts[i], self.pts[j]));
            return;
        }
        let mut valid = true;
        if self.result_points() < 4 && depth + 1 < 4 {
            valid = false;
        }
        let (a, b) = (self.pts[i], self.pts[j]);
        let mut furthest = i + 1;
        let mut max_dist = -1.0;
        for k in i + 1..j {
            let d = point_segment_distance(self.pts[k], a, b);
            if d > max_dist {
                max_dist = d;
                furthest = k;
            }
        }
        if max_dist > self.tolerance {
            valid = false;
        }
        if valid && self.topology_valid(i, j) {
            for k in i..j {
                self.removed[k] = true;
            }
            self.result.push((a, b));
            return;
        }
        self.section(i, furthest, depth);
        self.section(furthest, j, depth);
    }

    fn topology_valid(&self, i: usize, j: usize) -> bool {
        let (a, b) = (self.pts[i], self.pts[j]);
        if self.result.iter().any(|seg| interior_intersection(a, b, seg.0, seg.1)) {
            return false;
        }
        for k in 0..self.removed.len() {
            if self.removed[k] || (k >= i && k < j) {
                continue;
            }
            if interior_intersection(a, b, self.pts[k], self.pts[k + 1]) {
                return false;
            }
        }
        true
    }
}

/// Whether the axis-aligned square `[x0, y0, x1, y1]` and the polygon bounded by
/// `ring` share any point (boundaries included).
fn square_intersects_ring(sq: [f64; 4], ring: &[(f64, f64)]) -> bool {
    let corners = [(sq[0], sq[1]), (sq[2], sq[1]), (sq[2], sq[3]), (sq[0], sq[3])];
    let n = ring.len();
    for k in 0..n {
        let (a, b) = (ring[k], ring[(k + 1) % n]);
        // A ring vertex in the square, or an edge crossing the square's boundary.
        if a.0 >= sq[0] && a.0 <= sq[2] && a.1 >= sq[1] && a.1 <= sq[3] {
            return true;
        }
        for e in 0..4 {
            if segments_meet(a, b, corners[e], corners[(e + 1) % 4]) {
                return true;
            }
        }
    }
    // No boundary contact: the square is inside the polygon or apart from it.
    point_in_ring(((sq[0] + sq[2]) / 2.0, (sq[1] + sq[3]) / 2.0), ring)
}

fn point_in_ring(p: (f64, f64), ring: &[(f64, f64)]) -> bool {
    let n = ring.len();
    let mut inside = false;
    for k in 0..n {
        let (a, b) = (ring[k], ring[(k + 1) % n]);
        if (a.1 > p.1) != (b.1 > p.1) {
            let x = a.0 + (p.1 - a.1) * (b.0 - a.0) / (b.1 - a.1);
            if p.0 < x {
                inside = !inside;
            }
        }
    }
    inside
}

/// Area of the polygon bounded by `ring` inside the square (Sutherland–Hodgman
/// clipping against the square's four sides).
fn clipped_area(ring: &[(f64, f64)], sq: [f64; 4]) -> f64 {
    let mut poly: Vec<(f64, f64)> = ring.to_vec();
    // (axis, bound, keep_greater)
    for (axis, bound, greater) in [(0, sq[0], true), (0, sq[2], false), (1, sq[1], true), (1, sq[3], false)] {
        if poly.is_empty() {
            break;
        }
        let coord = |p: (f64, f64)| if axis == 0 { p.0 } else { p.1 };
        let inside = |p: (f64, f64)| if greater { coord(p) >= bound } else { coord(p) <= bound };
        let cross = |a: (f64, f64), b: (f64, f64)| {
            let t = (bound - coord(a)) / (coord(b) - coord(a));
            if axis == 0 { (bound, a.1 + t * (b.1 - a.1)) } else { (a.0 + t * (b.0 - a.0), bound) }
        };
        let mut out = Vec::with_capacity(poly.len() + 4);
        for k in 0..poly.len() {
            let (a, b) = (poly[k], poly[(k + 1) % poly.len()]);
            match (inside(a), inside(b)) {
                (true, true) => out.push(b),
                (true, false) => out.push(cross(a, b)),
                (false, true) => {
                    out.push(cross(a, b));
                    out.push(b);
                }
                (false, false) => {}
            }
        }
        poly = out;
    }
    let n = poly.len();
    let twice: f64 = (0..n).map(|k| {
        let (a, b) = (poly[k], poly[(k + 1) % n]);
        a.0 * b.1 - b.0 * a.1
    }).sum();
    twice.abs() / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mag: f64, size: u32, overlap: u32, min_tissue: f64) -> PatchSpec {
        PatchSpec { magnification: mag, patch_size: size, overlap, min_tissue }
    }

    #[test]
    fn buckets_follow_the_reference_thresholds() {
        assert_eq!(magnification_from_mpp(0.2527).unwrap(), 40.0);
        assert_eq!(magnification_from_mpp(0.5).unwrap(), 20.0);
        assert_eq!(magnification_from_mpp(0.59999).unwrap(), 10.0); // rounds to 0.6
        assert_eq!(magnification_from_mpp(1.0).unwrap(), 10.0);
        assert_eq!(magnification_from_mpp(0.1).unwrap(), 80.0);
        assert!(magnification_from_mpp(3.0).is_err());
    }

    #[test]
    fn plan_rounds_half_to_even_and_picks_levels() {
        // 40x slide to 20x: downsample 2 matches level 1 exactly.
        let p = PatchPlan::new(spec(20.0, 256, 0, 0.0), 40.0, 10_000, 8_000, &[1.0, 2.0, 8.0]).unwrap();
        assert_eq!((p.patch_size_src, p.level, p.patch_size_level), (512, 1, 256));
        // 20x slide to 10x without a 2x level: read 2x more at level 0.
        let p = PatchPlan::new(spec(10.0, 224, 0, 0.0), 20.0, 3_000, 2_000, &[1.0, 4.0]).unwrap();
        assert_eq!((p.patch_size_src, p.level, p.patch_size_level), (448, 0, 448));
        // Level downsample 4.0002 is truncated to 4.
        let p = PatchPlan::new(spec(5.0, 250, 0, 0.0), 20.0, 3_000, 2_000, &[1.0, 4.0002]).unwrap();
        assert_eq!((p.level, p.patch_size_level), (1, 250));
        // Upsampling: 40x from a 20x slide reads half-size patches at level 0.
        let p = PatchPlan::new(spec(40.0, 255, 0, 0.0), 20.0, 3_000, 2_000, &[1.0, 4.0]).unwrap();
        assert_eq!(p.patch_size_src, 128); // round(127.5) = 128 (even)
        let p = PatchPlan::new(spec(40.0, 253, 0, 0.0), 20.0, 3_000, 2_000, &[1.0, 4.0]).unwrap();
        assert_eq!(p.patch_size_src, 126); // round(126.5) = 126 (even)
        assert!(PatchPlan::new(spec(20.0, 256, 256, 0.0), 20.0, 100, 100, &[1.0]).is_err());
        assert!(PatchPlan::new(spec(20.0, 256, 0, 1.5), 20.0, 100, 100, &[1.0]).is_err());
    }

    #[test]
    fn grid_covers_the_slide_row_by_row() {
        let p = PatchPlan::new(spec(20.0, 100, 20, 0.0), 20.0, 250, 170, &[1.0]).unwrap();
        let g = p.grid();
        // step 80: x in 0, 80, 160, 240; y in 0, 80, 160.
        assert_eq!(g.len(), 12);
        assert_eq!(g[0], [0, 0]);
        assert_eq!(g[1], [80, 0]);
        assert_eq!(g[4], [0, 80]);
        assert_eq!(*g.last().unwrap(), [240, 160]);
    }

    #[test]
    fn tissue_filter_counts_touching_and_covered_area() {
        let p = PatchPlan::new(spec(20.0, 100, 0, 0.0), 20.0, 400, 400, &[1.0]).unwrap();
        // A square of tissue from (100, 100) to (250, 250): touches the 3x3 block of
        // patches around it (edges on 100 and 200 are shared).
        let ring = vec![(100.0, 100.0), (250.0, 100.0), (250.0, 250.0), (100.0, 250.0)];
        let kept = p.tissue_patches(&[ring.clone()]);
        assert_eq!(kept.len(), 9, "{kept:?}");
        assert!(kept.contains(&[0, 0])); // touches at the corner (100, 100)
        let p = PatchPlan::new(spec(20.0, 100, 0, 0.5), 20.0, 400, 400, &[1.0]).unwrap();
        let kept = p.tissue_patches(&[ring]);
        // Full patch at (100,100); half-covered ones at (200,100), (100,200); quarter at (200,200).
        assert_eq!(kept, vec![[100, 100], [200, 100], [100, 200]]);
    }

    #[test]
    fn simplification_drops_small_wiggles_only() {
        let ring = vec![(0.0, 0.0), (50.0, 3.0), (100.0, 0.0), (100.0, 100.0), (0.0, 100.0)];
        let s = simplify_ring(&ring, 5.0);
        assert_eq!(s.len(), 4, "{s:?}");
        assert!(!s.contains(&(50.0, 3.0)));
        let s = simplify_ring(&ring, 1.0);
        assert!(s.contains(&(50.0, 3.0)));
        // A triangle is never reduced below three points.
        let tri = vec![(0.0, 0.0), (10.0, 0.0), (5.0, 1.0)];
        assert_eq!(simplify_ring(&tri, 100.0).len(), 3);
    }

    #[test]
    fn clipped_area_and_intersection_agree_on_simple_cases() {
        let ring = vec![(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)];
        assert_eq!(clipped_area(&ring, [5.0, 5.0, 15.0, 15.0]), 25.0);
        assert_eq!(clipped_area(&ring, [10.0, 0.0, 20.0, 10.0]), 0.0);
        assert!(square_intersects_ring([10.0, 0.0, 20.0, 10.0], &ring));
        assert!(!square_intersects_ring([10.5, 0.0, 20.0, 10.0], &ring));
        assert!(square_intersects_ring([2.0, 2.0, 3.0, 3.0], &ring)); // inside
        assert!(square_intersects_ring([-5.0, -5.0, 20.0, 20.0], &ring)); // contains
    }
}
