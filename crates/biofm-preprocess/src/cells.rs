//! scGPT's cell input pipeline (`scgpt.tasks.cell_emb.embed_data` with its
//! `DataCollator`): non-zero genes of a cell, `<cls>` first, per-cell quantile binning of
//! the values, random gene subsampling above the maximum length, padding.
//!
//! The reference draws its random numbers from NumPy's global `RandomState`
//! (`np.random.rand` in `_digitize`, for every cell) and from PyTorch's default CPU
//! generator (`torch.randperm`, only for cells longer than the maximum length). Both are
//! MT19937 streams, reproduced here: with [`CellRng::new(seed)`](CellRng::new) the
//! numbers equal the reference's after `np.random.seed(seed); torch.manual_seed(seed)`,
//! run in-process (a `DataLoader` with worker processes forks its NumPy state, so the
//! reference is not reproducible that way).

/// MT19937 (Matsumoto & Nishimura), seeded with `init_genrand` as both NumPy's legacy
/// `RandomState.seed(int)` and PyTorch's `manual_seed` do.
#[derive(Clone)]
pub struct Mt19937 {
    state: [u32; 624],
    pos: usize,
}

impl Mt19937 {
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1812433253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(i as u32);
        }
        Self { state, pos: 624 }
    }

    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        for i in 0..624 {
            let y = (self.state[i] & UPPER) | (self.state[(i + 1) % 624] & LOWER);
            let mut v = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= 0x9908_b0df;
            }
            self.state[i] = v;
        }
        self.pos = 0;
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= 624 {
            self.twist();
        }
        let mut y = self.state[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// NumPy's `random_sample`: 53 random bits from two draws, in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67108864.0 + b) / 9007199254740992.0
    }
}

/// The two random streams of the reference collator.
#[derive(Clone)]
pub struct CellRng {
    /// `np.random` (bin tie-breaking).
    pub numpy: Mt19937,
    /// `torch` default generator (gene subsampling).
    pub torch: Mt19937,
}

impl CellRng {
    pub fn new(seed: u32) -> Self {
        Self { numpy: Mt19937::new(seed), torch: Mt19937::new(seed) }
    }

    /// PyTorch's CPU `randperm(n)`: Fisher–Yates with `random() % (n - i)`.
    pub fn torch_randperm(&mut self, n: usize) -> Vec<usize> {
        let mut r: Vec<usize> = (0..n).collect();
        for i in 0..n.saturating_sub(1) {
            let z = (self.torch.next_u32() as u64 % (n - i) as u64) as usize;
            r.swap(i, z + i);
        }
        r
    }
}

/// `np.quantile(x, q)` with the default `linear` method for sorted `f32` values, with
/// NumPy's float behaviour: virtual index `(n - 1) q` in f64, the neighbours' difference
/// taken in f32 (the array's dtype), the interpolation in f64 (`_lerp`).
fn quantile_sorted(sorted: &[f32], q: f64) -> f64 {
    let n = sorted.len();
    let virtual_index = (n - 1) as f64 * q;
    let (prev, next) = if virtual_index >= (n - 1) as f64 {
        (n - 1, n - 1)
    } else {
        let p = virtual_index.floor();
        (p as usize, p as usize + 1)
    };
    let gamma = virtual_index - virtual_index.floor();
    let (a, b) = (sorted[prev], sorted[next]);
    let diff = (b - a) as f64;
    if gamma >= 0.5 {
        b as f64 - diff * (1.0 - gamma)
    } else {
        a as f64 + diff * gamma
    }
}

/// `np.linspace(0, 1, n)`.
fn linspace01(n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![0.0];
    }
    let step = 1.0 / (n - 1) as f64;
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * step).collect();
    v[n - 1] = 1.0;
    v
}

/// Bin edges of scGPT's `binning`: `np.quantile(values, np.linspace(0, 1, n_bins - 1))`.
pub fn bin_edges(values: &[f32], n_bins: usize) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    linspace01(n_bins - 1).into_iter().map(|q| quantile_sorted(&sorted, q)).collect()
}

/// `np.digitize(x, edges, right)` for increasing `edges`.
pub fn digitize(x: f64, edges: &[f64], right: bool) -> i64 {
    if right {
        edges.partition_point(|&e| e < x) as i64
    } else {
        edges.partition_point(|&e| e <= x) as i64
    }
}

/// scGPT's `binning(row, n_bins)` (with `_digitize(side="both")`) in place: values
/// become bin numbers 1..n_bins-1, zeros stay 0, ties between edges are broken with one
/// `np.random.rand` draw per binned value. A row whose maximum is 0 becomes all zeros
/// and draws nothing (the reference warns about it).
pub fn bin_row(row: &mut [f32], n_bins: usize, rng: &mut Mt19937) {
    if row.is_empty() {
        return;
    }
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == 0.0 {
        row.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    let min = row.iter().copied().fold(f32::INFINITY, f32::min);
    let ids: Vec<usize> = if min <= 0.0 { (0..row.len()).filter(|&i| row[i] != 0.0).collect() } else { (0..row.len()).collect() };
    let values: Vec<f32> = ids.iter().map(|&i| row[i]).collect();
    let edges = bin_edges(&values, n_bins);
    let rands: Vec<f64> = (0..values.len()).map(|_| rng.next_f64()).collect();
    let mut out = vec![0f32; row.len()];
    for ((&i, &v), &r) in ids.iter().zip(&values).zip(&rands) {
        let left = digitize(v as f64, &edges, false);
        let right = digitize(v as f64, &edges, true);
        out[i] = (r * (right - left) as f64 + left as f64).ceil() as f32;
    }
    row.copy_from_slice(&out);
}

/// Collator settings (the reference's `DataCollator(do_padding=True, do_binning=True,
/// sampling=True, keep_first_n_tokens=1, do_mlm=False)` as `embed_data` builds it).
#[derive(Debug, Clone)]
pub struct CellCollator {
    pub pad_id: u32,
    pub pad_value: f32,
    pub n_bins: usize,
    pub max_length: usize,
}

/// One cell's model input before padding: gene ids (`<cls>` first) and values.
#[derive(Debug, Clone, PartialEq)]
pub struct CellTokens {
    pub genes: Vec<u32>,
    pub values: Vec<f32>,
}

/// A padded batch: `[B, L]` gene ids and values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct CellBatch {
    pub len: usize,
    pub genes: Vec<u32>,
    pub values: Vec<f32>,
}

impl CellCollator {
    /// Bins, subsamples and pads `cells` (each `<cls>` + its non-zero genes, with the
    /// `<cls>` value `pad_value`), drawing random numbers cell by cell in order: the
    /// reference collator on one batch.
    pub fn collate(&self, cells: Vec<CellTokens>, rng: &mut CellRng) -> CellBatch {
        let prepared: Vec<CellTokens> = cells.into_iter().map(|c| self.prepare(c, rng)).collect();
        self.pad(&prepared)
    }

    /// One cell's part of the collator: binning, then (above `max_length` tokens)
    /// subsampling to `<cls>` + a random `max_length - 1` genes in permutation order.
    /// Whether a cell is subsampled does not depend on the rest of its batch (the
    /// reference pads to the batch's longest cell, capped at `max_length`), so cells
    /// prepared in order can be batched in any grouping afterwards.
    pub fn prepare(&self, mut cell: CellTokens, rng: &mut CellRng) -> CellTokens {
        if cell.values.len() > 1 {
            bin_row(&mut cell.values[1..], self.n_bins, &mut rng.numpy);
        }
        if cell.genes.len() <= self.max_length {
            return cell;
        }
        let keep = rng.torch_randperm(cell.genes.len() - 1);
        let mut out = CellTokens { genes: vec![cell.genes[0]], values: vec![cell.values[0]] };
        for &k in keep.iter().take(self.max_length - 1) {
            out.genes.push(cell.genes[k + 1]);
            out.values.push(cell.values[k + 1]);
        }
        out
    }

    /// Pads prepared cells to the longest one with `<pad>` / `pad_value`.
    pub fn pad(&self, cells: &[CellTokens]) -> CellBatch {
        let len = cells.iter().map(|c| c.genes.len()).max().unwrap_or(0);
        let mut genes = Vec::with_capacity(cells.len() * len);
        let mut values = Vec::with_capacity(cells.len() * len);
        for c in cells {
            let pad = len - c.genes.len();
            genes.extend_from_slice(&c.genes);
            genes.extend(std::iter::repeat_n(self.pad_id, pad));
            values.extend_from_slice(&c.values);
            values.extend(std::iter::repeat_n(self.pad_value, pad));
        }
        CellBatch { len, genes, values }
    }
}
