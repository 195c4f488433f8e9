//! AnnData `.h5ad` files (HDF5, through the system libhdf5).
//!
//! Both on-disk encodings are read:
//!
//! * **current** (anndata >= 0.7): `obs`/`var` are groups (`encoding-type` `dataframe`,
//!   attributes `_index` and `column-order`), one dataset or group per column
//!   (`string-array`, numeric `array`, `categorical` with `codes`/`categories`,
//!   `nullable-integer`/`-boolean`/`-string-array` with `values`/`mask`; anndata 0.7's
//!   categoricals as codes with their categories in `__categories/<col>`); matrices are
//!   datasets or `csr_matrix`/`csc_matrix` groups (`data`, `indices`, `indptr`, attribute
//!   `shape`); `raw` is a group with its own `X` and `var`; `layers` a group of matrices.
//! * **legacy** (anndata < 0.7, e.g. scanpy's bundled `pbmc68k_reduced`): `obs`/`var`
//!   are compound datasets with an `index` field, categorical columns hold integer codes
//!   with their categories in `uns/<col>_categories`; sparse matrices are groups with the
//!   `h5sparse_format`/`h5sparse_shape` attributes; raw lives in `raw.X`, `raw.var`.
//!
//! Matrices are read a block of rows at a time as CSR ([`MatrixReader::read_rows`]), so
//! a large dense or CSR matrix is never loaded whole (CSC is converted once, in memory).

mod lowlevel;
mod write;

pub use write::write_obsm_copy;

use anyhow::{anyhow, bail, Context, Result};
use hdf5::types::{TypeDescriptor, VarLenUnicode};
use hdf5::{Dataset, File, Group};
use std::path::{Path, PathBuf};

/// An open `.h5ad` file.
pub struct AnnData {
    path: PathBuf,
    file: File,
    legacy: bool,
    n_obs: usize,
    n_vars: usize,
}

/// One `obs`/`var` column.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Str(Vec<Option<String>>),
    Float(Vec<f64>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
    NullableInt(Vec<Option<i64>>),
    NullableBool(Vec<Option<bool>>),
    /// Code -1 is a missing value.
    Categorical { codes: Vec<i64>, categories: Vec<String>, ordered: bool },
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Str(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::NullableInt(v) => v.len(),
            Column::NullableBool(v) => v.len(),
            Column::Categorical { codes, .. } => codes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every value as text (`None` for missing values and NaN), as pandas would print
    /// it; what labels and gene names are compared as.
    pub fn to_strings(&self) -> Vec<Option<String>> {
        match self {
            Column::Str(v) => v.clone(),
            Column::Float(v) => v.iter().map(|x| (!x.is_nan()).then(|| x.to_string())).collect(),
            Column::Int(v) => v.iter().map(|x| Some(x.to_string())).collect(),
            Column::Bool(v) => v.iter().map(|x| Some(if *x { "True" } else { "False" }.to_string())).collect(),
            Column::NullableInt(v) => v.iter().map(|x| x.map(|x| x.to_string())).collect(),
            Column::NullableBool(v) => {
                v.iter().map(|x| x.map(|x| if x { "True" } else { "False" }.to_string())).collect()
            }
            Column::Categorical { codes, categories, .. } => codes
                .iter()
                .map(|&c| usize::try_from(c).ok().and_then(|c| categories.get(c).cloned()))
                .collect(),
        }
    }
}

/// Which matrix of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatrixSource {
    X,
    /// `raw.X` (with `raw.var` as its genes).
    Raw,
    Layer(String),
}

impl std::fmt::Display for MatrixSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MatrixSource::X => write!(f, "X"),
            MatrixSource::Raw => write!(f, "raw.X"),
            MatrixSource::Layer(name) => write!(f, "layers[{name:?}]"),
        }
    }
}

/// A block of matrix rows in CSR form (`f32` values; within a row, column indices are
/// increasing and unique).
#[derive(Debug, Clone, PartialEq)]
pub struct CsrRows {
    pub n_cols: usize,
    /// `n_rows + 1` offsets into `indices`/`data`.
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub data: Vec<f32>,
}

impl CsrRows {
    pub fn n_rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// `(column indices, values)` of row `r` (stored entries, which may include zeros).
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        (&self.indices[a..b], &self.data[a..b])
    }

    /// The block as a dense row-major matrix.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.n_rows() * self.n_cols];
        for r in 0..self.n_rows() {
            let (idx, val) = self.row(r);
            for (&c, &v) in idx.iter().zip(val) {
                out[r * self.n_cols + c as usize] = v;
            }
        }
        out
    }
}

/// Sorts each row's entries by column and sums duplicate entries (what `scipy.sparse`'s
/// `toarray()` sees); files may store rows unsorted (pbmc68k_reduced's `raw.X` does).
fn canonical(mut m: CsrRows) -> CsrRows {
    let sorted = (0..m.n_rows()).all(|r| m.row(r).0.windows(2).all(|w| w[0] < w[1]));
    if sorted {
        return m;
    }
    let (mut indices, mut data, mut indptr) = (Vec::with_capacity(m.indices.len()), Vec::with_capacity(m.data.len()), vec![0]);
    let mut row: Vec<(u32, f32)> = Vec::new();
    for r in 0..m.n_rows() {
        let (idx, val) = m.row(r);
        row.clear();
        row.extend(idx.iter().copied().zip(val.iter().copied()));
        row.sort_by_key(|e| e.0);
        for &(c, v) in row.iter() {
            if indices.len() > *indptr.last().unwrap_or(&0) && indices.last() == Some(&c) {
                *data.last_mut().expect("entry") += v;
            } else {
                indices.push(c);
                data.push(v);
            }
        }
        indptr.push(indices.len());
    }
    m.indices = indices;
    m.data = data;
    m.indptr = indptr;
    m
}

enum MatrixKind {
    Dense(Dataset),
    Csr { data: Dataset, indices: Dataset, indptr: Vec<usize> },
    /// CSC converted to CSR once.
    InMemory(CsrRows),
}

/// Row-block access to one matrix of the file.
pub struct MatrixReader {
    name: String,
    path: PathBuf,
    shape: (usize, usize),
    kind: MatrixKind,
}

impl MatrixReader {
    /// `(rows, columns)` = `(cells, genes)`.
    pub fn shape(&self) -> (usize, usize) {
        self.shape
    }

    /// Rows `range` as CSR.
    pub fn read_rows(&self, range: std::ops::Range<usize>) -> Result<CsrRows> {
        let (n_rows, n_cols) = self.shape;
        if range.start > range.end || range.end > n_rows {
            bail!("{}: rows {range:?} out of range ({n_rows} rows)", self.name);
        }
        let ctx = || format!("{}: reading {} rows {range:?}", self.path.display(), self.name);
        match &self.kind {
            MatrixKind::Dense(ds) => {
                let block: ndarray::Array2<f32> =
                    ds.read_slice_2d(ndarray::s![range.clone(), ..]).with_context(ctx)?;
                let mut out = CsrRows { n_cols, indptr: vec![0], indices: Vec::new(), data: Vec::new() };
                for row in block.rows() {
                    for (c, &v) in row.iter().enumerate() {
                        if v != 0.0 {
                            out.indices.push(c as u32);
                            out.data.push(v);
                        }
                    }
                    out.indptr.push(out.data.len());
                }
                Ok(out)
            }
            MatrixKind::Csr { data, indices, indptr } => {
                let (a, b) = (indptr[range.start], indptr[range.end]);
                let values: Vec<f32> = if b > a { data.read_slice_1d(a..b).with_context(ctx)?.to_vec() } else { Vec::new() };
                let cols: Vec<i64> = if b > a { indices.read_slice_1d(a..b).with_context(ctx)?.to_vec() } else { Vec::new() };
                let cols = cols
                    .into_iter()
                    .map(|c| {
                        u32::try_from(c).ok().filter(|&c| (c as usize) < n_cols).ok_or_else(|| {
                            anyhow!("{}: {}: column index {c} out of range ({n_cols} columns)", self.path.display(), self.name)
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(canonical(CsrRows {
                    n_cols,
                    indptr: indptr[range.start..=range.end].iter().map(|&p| p - a).collect(),
                    indices: cols,
                    data: values,
                }))
            }
            MatrixKind::InMemory(m) => {
                let (a, b) = (m.indptr[range.start], m.indptr[range.end]);
                Ok(CsrRows {
                    n_cols,
                    indptr: m.indptr[range.start..=range.end].iter().map(|&p| p - a).collect(),
                    indices: m.indices[a..b].to_vec(),
                    data: m.data[a..b].to_vec(),
                })
            }
        }
    }
}

/// The 8-byte HDF5 signature, found at offset 0 or at a user-block offset (512, 1024, ...).
const HDF5_SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

fn check_hdf5_signature(path: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    if path.is_dir() {
        bail!(
            "{} is a directory (a Zarr store?); biofm reads AnnData as .h5ad (HDF5): convert with anndata.read_zarr(...).write_h5ad(...)",
            path.display()
        );
    }
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = f.metadata()?.len();
    let mut offset = 0u64;
    let mut buf = [0u8; 8];
    while offset + 8 <= len {
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(&mut buf)?;
        if &buf == HDF5_SIGNATURE {
            return Ok(());
        }
        offset = if offset == 0 { 512 } else { offset * 2 };
    }
    bail!(
        "{}: not an HDF5 file (no HDF5 signature at offset 0 or any user-block offset; {len} bytes). .h5ad files are HDF5; \
         for .loom, .csv or 10x .mtx data, convert to .h5ad with anndata/scanpy first",
        path.display()
    )
}

impl AnnData {
    /// Opens `path` read-only and checks that it looks like an AnnData file.
    pub fn open(path: &Path) -> Result<Self> {
        check_hdf5_signature(path)?;
        let file = File::open(path).with_context(|| format!("{}: cannot open as HDF5 (corrupt or truncated?)", path.display()))?;
        let legacy = match (file.group("obs"), file.dataset("obs")) {
            (Ok(_), _) => false,
            (_, Ok(_)) => true,
            _ => bail!("{}: no `obs` table: not an AnnData file", path.display()),
        };
        let mut ad = Self { path: path.to_path_buf(), file, legacy, n_obs: 0, n_vars: 0 };
        ad.n_obs = ad.frame_len("obs")?;
        ad.n_vars = ad.frame_len("var")?;
        Ok(ad)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file uses the pre-0.7 on-disk encoding.
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    pub fn n_obs(&self) -> usize {
        self.n_obs
    }

    pub fn n_vars(&self) -> usize {
        self.n_vars
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    fn err_ctx(&self, what: &str) -> String {
        format!("{}: {what}", self.path.display())
    }

    /// Cell names (`obs` index).
    pub fn obs_names(&self) -> Result<Vec<String>> {
        self.frame_index("obs")
    }

    /// Gene names of `X` (`var` index).
    pub fn var_names(&self) -> Result<Vec<String>> {
        self.frame_index("var")
    }

    /// Column names of `obs`.
    pub fn obs_columns(&self) -> Result<Vec<String>> {
        self.frame_columns("obs")
    }

    /// Column names of `var`.
    pub fn var_columns(&self) -> Result<Vec<String>> {
        self.frame_columns("var")
    }

    pub fn obs_column(&self, name: &str) -> Result<Column> {
        self.frame_column("obs", name)
    }

    pub fn var_column(&self, name: &str) -> Result<Column> {
        self.frame_column("var", name)
    }

    /// Whether the file has `raw.X`.
    pub fn has_raw(&self) -> bool {
        self.file.link_exists(self.raw_path("X").as_str())
    }

    /// Layer names.
    pub fn layers(&self) -> Result<Vec<String>> {
        match self.file.group("layers") {
            Ok(g) => Ok(g.member_names()?),
            Err(_) => Ok(Vec::new()),
        }
    }

    fn raw_path(&self, what: &str) -> String {
        if self.legacy {
            format!("raw.{what}")
        } else {
            format!("raw/{what}")
        }
    }

    /// The `var` table that belongs to `source` (`raw.var` for raw, else `var`).
    fn var_table(&self, source: &MatrixSource) -> String {
        match source {
            MatrixSource::Raw => self.raw_path("var"),
            _ => "var".into(),
        }
    }

    /// Gene names (index of the matching `var` table) for the columns of `source`.
    pub fn gene_names(&self, source: &MatrixSource) -> Result<Vec<String>> {
        self.frame_index(&self.var_table(source))
    }

    /// Column names of the `var` table for `source`.
    pub fn gene_columns(&self, source: &MatrixSource) -> Result<Vec<String>> {
        self.frame_columns(&self.var_table(source))
    }

    /// A column of the `var` table for `source`, as text.
    pub fn gene_column(&self, source: &MatrixSource, name: &str) -> Result<Vec<Option<String>>> {
        Ok(self.frame_column(&self.var_table(source), name)?.to_strings())
    }

    /// Opens `source` for row-block reading.
    pub fn matrix(&self, source: &MatrixSource) -> Result<MatrixReader> {
        let name = match source {
            MatrixSource::X => "X".to_string(),
            MatrixSource::Raw => self.raw_path("X"),
            MatrixSource::Layer(l) => format!("layers/{l}"),
        };
        if !self.file.link_exists(&name) {
            let hint = match source {
                MatrixSource::Raw => "this file has no raw matrix".to_string(),
                MatrixSource::Layer(_) => format!("layers in this file: {:?}", self.layers().unwrap_or_default()),
                MatrixSource::X => "this file has no X".to_string(),
            };
            bail!("{}: no {source} ({hint})", self.path.display());
        }
        let n_cols_expected = match source {
            MatrixSource::Raw => self.frame_len(&self.var_table(source))?,
            _ => self.n_vars,
        };
        let (shape, kind) = if let Ok(ds) = self.file.dataset(&name) {
            let s = ds.shape();
            if s.len() != 2 {
                bail!("{}: {source} has shape {s:?}, expected 2 dimensions", self.path.display());
            }
            ((s[0], s[1]), MatrixKind::Dense(ds))
        } else {
            let g = self.file.group(&name).with_context(|| self.err_ctx(&format!("cannot open {source}")))?;
            let (format, shape) = sparse_format(&g).with_context(|| self.err_ctx(&format!("{source}")))?;
            let data = g.dataset("data").with_context(|| self.err_ctx(&format!("{source}: no `data`")))?;
            let indices = g.dataset("indices").with_context(|| self.err_ctx(&format!("{source}: no `indices`")))?;
            let indptr: Vec<i64> = g
                .dataset("indptr")
                .and_then(|d| d.read_raw::<i64>())
                .with_context(|| self.err_ctx(&format!("{source}: cannot read `indptr`")))?;
            let major = if format == "csr" { shape.0 } else { shape.1 };
            let indptr = check_indptr(&indptr, major, data.size())
                .with_context(|| self.err_ctx(&format!("{source} ({format})")))?;
            if data.size() != indices.size() {
                bail!("{}: {source}: `data` has {} entries but `indices` {}", self.path.display(), data.size(), indices.size());
            }
            let kind = if format == "csr" {
                MatrixKind::Csr { data, indices, indptr }
            } else {
                let values: Vec<f32> = data.read_raw().with_context(|| self.err_ctx(&format!("{source}: `data`")))?;
                let rows: Vec<i64> = indices.read_raw().with_context(|| self.err_ctx(&format!("{source}: `indices`")))?;
                MatrixKind::InMemory(csc_to_csr(shape, &indptr, &rows, &values).with_context(|| self.err_ctx(&format!("{source}")))?)
            };
            (shape, kind)
        };
        if shape.0 != self.n_obs || shape.1 != n_cols_expected {
            bail!(
                "{}: {source} has shape {:?}, but the file has {} cells and {} genes for it",
                self.path.display(),
                shape,
                self.n_obs,
                n_cols_expected
            );
        }
        Ok(MatrixReader { name: source.to_string(), path: self.path.clone(), shape, kind })
    }

    /// Names of the `obsm` entries.
    pub fn obsm_keys(&self) -> Result<Vec<String>> {
        if let Ok(g) = self.file.group("obsm") {
            return Ok(g.member_names()?);
        }
        if let Ok(ds) = self.file.dataset("obsm") {
            return lowlevel::compound_fields(&ds);
        }
        Ok(Vec::new())
    }

    /// `obsm[key]` as a row-major `[n_obs, d]` matrix.
    pub fn obsm(&self, key: &str) -> Result<(usize, Vec<f32>)> {
        let ctx = || self.err_ctx(&format!("obsm[{key:?}]"));
        if let Ok(g) = self.file.group("obsm") {
            let ds = g.dataset(key).with_context(|| format!("{}: no such entry (have {:?})", ctx(), g.member_names().unwrap_or_default()))?;
            let shape = ds.shape();
            let d = if shape.len() == 2 { shape[1] } else { 1 };
            return Ok((d, ds.read_raw::<f32>().with_context(ctx)?));
        }
        let ds = self.file.dataset("obsm").with_context(|| format!("{}: the file has no obsm", ctx()))?;
        let (d, v) = lowlevel::read_compound_array_field(&ds, key).with_context(ctx)?;
        Ok((d, v.into_iter().map(|x| x as f32).collect()))
    }

    /// The dataset holding `table`'s index, and the field within it for a legacy
    /// compound table.
    fn index_dataset(&self, table: &str) -> Result<(Dataset, Option<&'static str>)> {
        let ctx = || self.err_ctx(&format!("reading the `{table}` index"));
        if let Ok(g) = self.file.group(table) {
            let index_name = read_str_attr(&g, "_index").unwrap_or_else(|_| "_index".into());
            return Ok((g.dataset(&index_name).with_context(ctx)?, None));
        }
        let ds = self.file.dataset(table).with_context(ctx)?;
        let fields = lowlevel::compound_fields(&ds).with_context(ctx)?;
        let field = ["index", "_index"].into_iter().find(|f| fields.iter().any(|x| x == f)).ok_or_else(|| {
            anyhow!("{}: the legacy `{table}` table has no `index` field (fields: {fields:?})", self.path.display())
        })?;
        Ok((ds, Some(field)))
    }

    fn frame_index(&self, table: &str) -> Result<Vec<String>> {
        let (ds, field) = self.index_dataset(table)?;
        let v = lowlevel::read_strings(&ds, field).with_context(|| self.err_ctx(&format!("reading the `{table}` index")))?;
        Ok(v.into_iter().map(|s| s.unwrap_or_default()).collect())
    }

    /// Number of rows of `table`, without reading its names.
    fn frame_len(&self, table: &str) -> Result<usize> {
        Ok(self.index_dataset(table)?.0.size())
    }

    fn frame_columns(&self, table: &str) -> Result<Vec<String>> {
        if let Ok(g) = self.file.group(table) {
            let index_name = read_str_attr(&g, "_index").unwrap_or_else(|_| "_index".into());
            let mut cols = read_str_array_attr(&g, "column-order").unwrap_or_default();
            if cols.is_empty() {
                cols = g
                    .member_names()?
                    .into_iter()
                    .filter(|n| n != &index_name && n != "__categories")
                    .collect();
            }
            return Ok(cols);
        }
        let ds = self.file.dataset(table).with_context(|| self.err_ctx(&format!("no `{table}` table")))?;
        Ok(lowlevel::compound_fields(&ds)?.into_iter().filter(|f| f != "index" && f != "_index").collect())
    }

    fn frame_column(&self, table: &str, name: &str) -> Result<Column> {
        let missing = || -> anyhow::Error {
            anyhow!(
                "{}: `{table}` has no column `{name}` (columns: {})",
                self.path.display(),
                self.frame_columns(table).map(|c| c.join(", ")).unwrap_or_default()
            )
        };
        let ctx = || self.err_ctx(&format!("reading `{table}` column `{name}`"));
        if let Ok(g) = self.file.group(table) {
            if !g.link_exists(name) {
                return Err(missing());
            }
            return read_current_column(&g, name).with_context(ctx);
        }
        let ds = self.file.dataset(table).with_context(ctx)?;
        if !lowlevel::compound_fields(&ds)?.iter().any(|f| f == name) {
            return Err(missing());
        }
        let col = lowlevel::read_compound_column(&ds, name).with_context(ctx)?;
        // Legacy categoricals: integer codes, categories in uns/<col>_categories.
        let cats_path = format!("uns/{name}_categories");
        if let (Column::Int(codes), Ok(cats)) = (&col, self.file.dataset(&cats_path)) {
            let categories: Vec<String> =
                lowlevel::read_strings(&cats, None).with_context(ctx)?.into_iter().map(|s| s.unwrap_or_default()).collect();
            return Ok(Column::Categorical { codes: codes.clone(), categories, ordered: false });
        }
        Ok(col)
    }
}

fn read_str_attr(obj: &hdf5::Location, name: &str) -> Result<String> {
    let a = obj.attr(name)?;
    if let Ok(s) = a.read_scalar::<VarLenUnicode>() {
        return Ok(s.as_str().to_string());
    }
    Ok(a.read_scalar::<hdf5::types::VarLenAscii>()?.as_str().to_string())
}

fn read_str_array_attr(obj: &hdf5::Location, name: &str) -> Result<Vec<String>> {
    let a = obj.attr(name)?;
    if a.size() == 0 {
        return Ok(Vec::new());
    }
    if let Ok(v) = a.read_raw::<VarLenUnicode>() {
        return Ok(v.iter().map(|s| s.as_str().to_string()).collect());
    }
    Ok(a.read_raw::<hdf5::types::VarLenAscii>()?.iter().map(|s| s.as_str().to_string()).collect())
}

/// `("csr" | "csc", (rows, cols))` of a sparse-matrix group, current or legacy.
fn sparse_format(g: &Group) -> Result<(String, (usize, usize))> {
    let (format, shape_attr) = match read_str_attr(g, "encoding-type") {
        Ok(t) => match t.as_str() {
            "csr_matrix" => ("csr", "shape"),
            "csc_matrix" => ("csc", "shape"),
            other => bail!("unsupported matrix encoding `{other}`"),
        },
        Err(_) => match read_str_attr(g, "h5sparse_format") {
            Ok(f) if f == "csr" || f == "csc" => (if f == "csr" { "csr" } else { "csc" }, "h5sparse_shape"),
            Ok(f) => bail!("unsupported sparse format `{f}`"),
            Err(_) => bail!("a group without a sparse-matrix encoding"),
        },
    };
    let shape: Vec<i64> = g.attr(shape_attr).and_then(|a| a.read_raw::<i64>()).context("no matrix shape attribute")?;
    if shape.len() != 2 || shape.iter().any(|&s| s < 0) {
        bail!("bad matrix shape {shape:?}");
    }
    Ok((format.to_string(), (shape[0] as usize, shape[1] as usize)))
}

fn check_indptr(indptr: &[i64], major: usize, nnz: usize) -> Result<Vec<usize>> {
    if indptr.len() != major + 1 {
        bail!("`indptr` has {} entries, expected {}", indptr.len(), major + 1);
    }
    if indptr[0] != 0 || indptr.windows(2).any(|w| w[1] < w[0]) || *indptr.last().unwrap_or(&0) as usize != nnz {
        bail!("`indptr` is not a valid offset array (must start at 0, never decrease, end at nnz = {nnz})");
    }
    Ok(indptr.iter().map(|&p| p as usize).collect())
}

fn csc_to_csr(shape: (usize, usize), indptr: &[usize], rows: &[i64], values: &[f32]) -> Result<CsrRows> {
    let (n_rows, n_cols) = shape;
    let mut counts = vec![0usize; n_rows + 1];
    for &r in rows {
        let r = usize::try_from(r).ok().filter(|&r| r < n_rows).ok_or_else(|| anyhow!("row index {r} out of range ({n_rows} rows)"))?;
        counts[r + 1] += 1;
    }
    for i in 0..n_rows {
        counts[i + 1] += counts[i];
    }
    let mut next = counts.clone();
    let mut indices = vec![0u32; rows.len()];
    let mut data = vec![0f32; rows.len()];
    for c in 0..n_cols {
        for j in indptr[c]..indptr[c + 1] {
            let r = rows[j] as usize;
            indices[next[r]] = c as u32;
            data[next[r]] = values[j];
            next[r] += 1;
        }
    }
    Ok(canonical(CsrRows { n_cols, indptr: counts, indices, data }))
}

fn read_current_column(g: &Group, name: &str) -> Result<Column> {
    if let Ok(sub) = g.group(name) {
        let enc = read_str_attr(&sub, "encoding-type").unwrap_or_default();
        return match enc.as_str() {
            "categorical" => {
                let codes: Vec<i64> = sub.dataset("codes")?.read_raw()?;
                let cats = sub.dataset("categories")?;
                let categories = lowlevel::read_any_as_strings(&cats)?;
                let ordered = sub.attr("ordered").and_then(|a| a.read_scalar::<bool>()).unwrap_or(false);
                Ok(Column::Categorical { codes, categories, ordered })
            }
            "nullable-integer" | "nullable-boolean" | "nullable-string-array" => {
                let mask: Vec<bool> = read_bools(&sub.dataset("mask")?)?;
                let values = sub.dataset("values")?;
                Ok(match enc.as_str() {
                    "nullable-integer" => Column::NullableInt(
                        values.read_raw::<i64>()?.into_iter().zip(&mask).map(|(v, &m)| (!m).then_some(v)).collect(),
                    ),
                    "nullable-boolean" => Column::NullableBool(
                        read_bools(&values)?.into_iter().zip(&mask).map(|(v, &m)| (!m).then_some(v)).collect(),
                    ),
                    _ => Column::Str(
                        lowlevel::read_strings(&values, None)?.into_iter().zip(&mask).map(|(v, &m)| if m { None } else { v }).collect(),
                    ),
                })
            }
            other => bail!("unsupported column encoding `{other}`"),
        };
    }
    let ds = g.dataset(name)?;
    // anndata 0.7: categorical codes with their categories in __categories/<col>.
    if ds.attr("categories").is_ok() {
        if let Ok(cats) = g.dataset(&format!("__categories/{name}")) {
            let codes: Vec<i64> = ds.read_raw()?;
            return Ok(Column::Categorical { codes, categories: lowlevel::read_any_as_strings(&cats)?, ordered: false });
        }
    }
    dataset_column(&ds)
}

/// A plain 1-D dataset as a column, by its HDF5 type.
fn dataset_column(ds: &Dataset) -> Result<Column> {
    let desc = ds.dtype()?.to_descriptor()?;
    Ok(match desc {
        TypeDescriptor::Float(_) => Column::Float(ds.read_raw()?),
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => Column::Int(ds.read_raw()?),
        TypeDescriptor::Boolean => Column::Bool(read_bools(ds)?),
        TypeDescriptor::Enum(e) if e.members.len() == 2 => Column::Bool(read_bools(ds)?),
        TypeDescriptor::VarLenUnicode | TypeDescriptor::VarLenAscii | TypeDescriptor::FixedAscii(_) | TypeDescriptor::FixedUnicode(_) => {
            Column::Str(lowlevel::read_strings(ds, None)?)
        }
        other => bail!("unsupported column type {other:?}"),
    })
}

fn read_bools(ds: &Dataset) -> Result<Vec<bool>> {
    if let Ok(v) = ds.read_raw::<bool>() {
        return Ok(v);
    }
    Ok(ds.read_raw::<i8>()?.into_iter().map(|x| x != 0).collect())
}
