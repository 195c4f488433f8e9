#!/usr/bin/env python3
"""Writes the scGPT fixtures used by crates/biofm-models/tests (cell embeddings).

Run on demand (tests never run it), from the repository root:

    tools/reference/.venv/bin/python tools/reference/gen_scgpt_fixtures.py
    tools/reference/.venv/bin/python tools/reference/gen_scgpt_fixtures.py --full DIR

Default mode writes (paths relative to the repository root):

* ``crates/biofm-models/tests/fixtures/scgpt/tiny/`` - a checkpoint folder laid out like
  the published ones: ``best_model.pt`` (``torch.save`` of the ``state_dict``, zip
  format), ``args.json``, ``vocab.json``; plus ``best_model_flash_keys.pt``, the same
  weights under the flash-attn key names (``self_attn.Wqkv.{weight,bias}`` instead of
  ``self_attn.in_proj_{weight,bias}``), which scGPT's ``load_pretrained`` renames back.
  The model is ``scgpt.model.TransformerModel`` built exactly as
  ``scgpt.tasks.cell_emb.embed_data`` builds it (``do_mvc=True``, ``do_dab=False``,
  ``use_batch_labels=False``, ``domain_spec_batchnorm=False``,
  ``explicit_zero_prob=False``, ``pre_norm=False``; ``use_fast_transformer=False`` since
  flash-attn is CPU-less) at toy size (embsize 32, 4 heads, d_hid 48, 2 layers,
  n_layers_cls 3) with random weights: every bias and LayerNorm weight/bias perturbed
  away from 0/1.
  ``vocab.json`` (gene symbol -> id): 95% of the pbmc68k_reduced genes (a seeded 5% left
  out) plus 300 other real symbols (the genes most often detected in the celltypist cells
  below that pbmc68k lacks), in a seeded random order, then ``<pad>``, ``<cls>``,
  ``<eoc>`` (the specials ``embed_data`` appends when missing).
* ``crates/biofm-models/tests/fixtures/scgpt/celltypist_40.h5ad`` - the first 40 cells of
  the celltypist 1.7.1 sample (real integer UMI counts), current AnnData encoding, X CSR
  float32, gzip; var index = gene symbols (no ``feature_name`` column: HDF5 keeps
  variable-length strings uncompressed in its global heap, and a second copy of the
  names would double the file). Genes with no count in these cells are dropped if the
  file would exceed 400 KB (they are: 6,534 of 32,786 genes remain).
* ``crates/biofm-models/tests/fixtures/scgpt/reference.safetensors`` and
  ``reference.json`` - the reference ``embed_data`` route on real cells, see below.

``--full DIR`` writes a full-size checkpoint folder (embsize 512, 8 heads, d_hid 512, 12
layers, the 60,694-gene ``default_census_vocab.json`` shipped in the scgpt wheel plus the
3 specials) with random weights, and a ``reference.safetensors``/``reference.json`` for
all 700 pbmc68k cells, for benchmarks. Not committed.

Installing scGPT (the shim)
---------------------------
``pip install scgpt==0.2.4`` pulls scvi-tools, scib, datasets, orbax, torchtext (which
has no build for torch 2.15), leidenalg... so it is installed with ``--no-deps``
(requirements.txt pins it). Importing ``scgpt`` runs ``scgpt/__init__.py``, which imports
the trainer, scbank (``datasets``), tasks (networkx, seaborn, sklearn, scanpy), utils
(matplotlib, IPython) and the tokenizer (torchtext). The shim below avoids that without
touching scgpt's files: it registers bare package modules ``scgpt`` and ``scgpt.model``
in ``sys.modules`` (``__path__`` = the installed package folders, plus the ``logger``
attribute the submodules import), so their ``__init__.py`` files never run, and a stub
``scanpy``/``scanpy.get`` module (only when scanpy is not installed) because
``scgpt/preprocess.py`` imports ``scanpy`` and ``scanpy.get._get_obs_rep``/``_set_obs_rep``
at module level (``binning`` does not use them). The unmodified modules
``scgpt/model/model.py`` (``TransformerModel``; flash_attn is absent, which the module
handles), ``scgpt/data_collator.py`` (``DataCollator``) and ``scgpt/preprocess.py``
(``binning``, ``_digitize``) are then imported and run as is. ``GeneVocab`` (torchtext)
is replaced by a plain ``dict``: ``embed_data`` only uses ``vocab[token]``,
``token in vocab`` and ``append_token`` for the specials. ``get_batch_cell_embeddings``
is reproduced line for line except for the ``DataLoader``: it collates in worker
processes (``num_workers = min(cpus, batch_size)``), whose numpy/torch generators are
reseeded from the parent's torch generator, so the collator is called in-process
(``num_workers=0`` order: batches of 64 cells in obs order) after seeding.

Reference route (``embed_data`` / ``get_batch_cell_embeddings``, cell_embedding_mode "cls")
-----------------------------------------------------------------------------------
1. ``var[gene_col]`` mapped through the vocab; genes not in it are dropped (column order
   kept). pbmc68k uses ``raw.X`` (CSR float32, log-normalised) with the var index as
   gene_col; celltypist uses ``X`` (float32 counts), also with the var index
   (``embed_data(..., gene_col="index")``).
2. per cell: ``row = X[i].toarray()``; ``nonzero_idx = np.nonzero(row)``; values
   ``row[nonzero_idx]`` (float32) and their vocab ids; ``np.insert`` the ``<cls>`` id and
   ``pad_value`` (-2) at position 0; ``torch.from_numpy(values).float()`` (float32).
3. ``DataCollator(do_padding=True, pad_token_id=vocab["<pad>"], pad_value=-2,
   do_mlm=False, do_binning=True, max_length=M, sampling=True, keep_first_n_tokens=1)``
   on each batch of 64 cells. Per batch: ``L = M if max(len) >= M else max(len)``. Per
   cell, in order: (a) ``expressions[1:] = binning(expressions[1:], n_bins=51)``;
   (b) if ``len > L``: ``idx = torch.randperm(len - 1)[:L - 1]``, tokens
   ``[0] + (idx + 1)`` (order = the permutation's order, not sorted); if ``len == L``:
   unchanged, no randperm; if ``len < L``: right-padded with ``<pad>`` id / -2.0.
4. ``src_key_padding_mask = gene.eq(vocab["<pad>"])`` (True = padding);
   ``model._encode(gene, expr, src_key_padding_mask)``; ``[:, 0, :]``; L2-normalised in
   numpy (float32): ``emb / np.linalg.norm(emb, axis=1, keepdims=True)``.
   The reference runs under CUDA autocast; here float32 on CPU, ``model.eval()``,
   ``torch.inference_mode()``.

Binning details (``scgpt.preprocess.binning`` as reached from the collator)
--------------------------------------------------------------------------
* ``row`` = ``expressions[1:]`` - a float32 torch tensor, turned into a float32 numpy
  array by ``row.cpu().numpy()`` (a view: the collator writes the result back into the
  same tensor, cast to float32).
* If ``row.max() == 0`` it returns zeros and draws nothing (cannot happen here: only
  non-zero values are passed; a cell with no matched non-zero gene makes ``row.max()``
  raise on the empty array in the reference). Since all values are > 0, ``row.min() <= 0``
  is false and the whole row is binned: ``bins = np.quantile(row, np.linspace(0, 1, 50))``.
  numpy 2.4 returns **float64** bins from float32 input: virtual index ``(n-1)*q``
  (float64), ``gamma = index - floor(index)`` (float64),
  ``a = sorted[floor]``, ``b = sorted[floor+1]`` (float32), ``d = b - a`` computed in
  **float32**, then in float64: ``a + d*gamma`` if ``gamma < 0.5`` else
  ``b - d*(1-gamma)``; an index at or past n-1 takes the last element.
* ``left = np.digitize(row, bins)`` (``bins[i-1] <= x < bins[i]``) and
  ``right = np.digitize(row, bins, right=True)`` (``bins[i-1] < x <= bins[i]``),
  comparing float32 values promoted to float64; int64 results in 0..50.
* ``rands = np.random.rand(len(row))``: exactly one float64 draw per non-zero value of
  **every** cell, ties or not, in value order (the legacy global ``RandomState``,
  MT19937, ``random_sample`` = ``(a >> 5) * 67108864 + (b >> 6)) / 9007199254740992``
  from two 32-bit outputs).
* ``digit = np.ceil(rands * (right - left) + left).astype(np.int64)`` (float64
  arithmetic); values 1..50. A cell with one non-zero value gets a random bin.
* ``torch.randperm(n)`` (default CPU generator, int64) is called only for cells longer
  than the batch length ``L`` - with the default ``max_length`` 1200 only for cells with
  more than 1199 matched non-zero genes - after that cell's binning draws. numpy and torch
  generators are independent, so the numpy draw sequence does not depend on max_length.
  Observed (and checked by ``check_randperm`` below for the sizes used): CPU
  ``torch.randperm(n)`` after ``torch.manual_seed(s)`` is the Fisher-Yates shuffle
  ``r = [0..n); for i in 0..n-1: z = u32() % (n - i); swap(r[i], r[i + z])``, where
  ``u32`` is MT19937 seeded like numpy's legacy ``RandomState(s)`` (``init_genrand``),
  one 32-bit output per step; consecutive calls continue the same stream.

Seeding: before each run (dataset x max_length) ``np.random.seed(SEED)`` and
``torch.manual_seed(SEED)``; the script checks, by replaying, that the run consumed
exactly ``sum(n_nonzero)`` numpy doubles and one ``randperm(len - 1)`` per subsampled cell.

reference.safetensors (``<ds>`` = ``pbmc68k`` / ``celltypist``; ``<run>`` = ``<ds>.L1200``
/ ``<ds>.L64``; ragged per-cell arrays are concatenated, cell i at
``offsets[i]:offsets[i+1]``)
* ``<ds>.cell_rows`` int32 [N]: rows of the source matrix used.
* ``<ds>.n_nonzero`` int32 [N]: matched non-zero genes per cell (tokens without ``<cls>``).
* ``<ds>.offsets`` int64 [N+1]; ``<ds>.values`` float32: the raw values before binning
  (``<cls>`` excluded), in gene-column order. Their vocab ids and binned values are row
  i of the ``<ds>.L1200`` batches, positions 1..n (no cell is subsampled at 1200).
* ``<ds>.bins`` float64 [N, 50]; ``<ds>.left``/``<ds>.right`` uint8 (the int64 digitize
  results, 0..50); ``<ds>.rand`` float64 (the draws, in order). The binned value is
  ``ceil(rand * (right - left) + left)``.
* ``<run>.batch<b>.gene`` int32 [B, L], ``<run>.batch<b>.expr`` float32 [B, L],
  ``<run>.batch<b>.padding_mask`` uint8 [B, L] (1 = padding): exactly what ``_encode`` got.
* ``<run>.perm_cells`` int32, ``<run>.perm_n`` int32, ``<run>.perm`` int32
  [n_sub, L-1]: for each subsampled cell, ``randperm(perm_n)[:L-1]``.
* ``<run>.cls`` float32 [N, d]: ``_encode(...)[:, 0]``; ``<run>.emb`` float32 [N, d]:
  normalised.
* ``<run>.batch0.output_first2`` float32 [2, L, d] (L64 runs only): the full ``_encode``
  output of the first two cells of batch 0, padded positions included.
"""

import argparse
import importlib.metadata
import importlib.util
import json
import logging
import os
import sys
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_anndata_fixtures import (  # noqa: E402
    celltypist_counts,
    pbmc68k_path,
    sha256,
    to_json,
)

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "crates" / "biofm-models" / "tests" / "fixtures" / "scgpt"
TINY = FIX / "tiny"

SEED = 1234
WEIGHT_SEED = 20240611
SPECIALS = ["<pad>", "<cls>", "<eoc>"]
BATCH_SIZE = 64
N_BINS = 51

TINY_ARGS = {
    "embsize": 32, "nheads": 4, "d_hid": 48, "nlayers": 2, "n_layers_cls": 3,
    "dropout": 0.2, "pad_token": "<pad>", "pad_value": -2, "mask_value": -1, "n_bins": 51,
    "input_emb_style": "continuous", "max_seq_len": 1200, "fast_transformer": True,
}
FULL_ARGS = dict(TINY_ARGS, embsize=512, nheads=8, d_hid=512, nlayers=12)


# ----------------------------------------------------------------------------- the shim


def import_scgpt():
    """Imports scgpt's model, collator and binning without running its package __init__."""
    spec = importlib.util.find_spec("scgpt")
    if spec is None:
        raise SystemExit("scgpt is not installed: pip install --no-deps scgpt==0.2.4")
    pkg_dir = Path(spec.origin).parent
    if importlib.util.find_spec("scanpy") is None:
        sc = types.ModuleType("scanpy")
        get = types.ModuleType("scanpy.get")

        def unavailable(*a, **k):
            raise NotImplementedError("scanpy stub: not needed for binning")

        get._get_obs_rep = get._set_obs_rep = unavailable
        sc.get = get
        sys.modules["scanpy"] = sc
        sys.modules["scanpy.get"] = get
    if "scgpt" not in sys.modules:
        pkg = types.ModuleType("scgpt")
        pkg.__path__ = [str(pkg_dir)]
        pkg.__version__ = importlib.metadata.version("scgpt")
        pkg.logger = logging.getLogger("scGPT")
        sys.modules["scgpt"] = pkg
        sub = types.ModuleType("scgpt.model")
        sub.__path__ = [str(pkg_dir / "model")]
        sys.modules["scgpt.model"] = sub
        pkg.model = sub
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "flash_attn is not installed"
        import scgpt.model.model as model_mod
    import scgpt.data_collator as collator_mod
    import scgpt.preprocess as preprocess_mod

    sys.modules["scgpt.model"].TransformerModel = model_mod.TransformerModel
    sys.modules["scgpt"].DataCollator = collator_mod.DataCollator
    return model_mod, collator_mod, preprocess_mod


def load_pretrained(model, params):
    """scgpt.utils.load_pretrained(strict=False) for the PyTorch backend: rename
    ``Wqkv.`` -> ``in_proj_``, keep keys whose name and shape match. (scgpt/utils/util.py
    imports matplotlib and IPython at module level, so the ten lines are restated here.)"""
    if not getattr(model, "use_fast_transformer", True):
        params = {k.replace("Wqkv.", "in_proj_"): v for k, v in params.items()}
    model_dict = model.state_dict()
    params = {k: v for k, v in params.items() if k in model_dict and v.shape == model_dict[k].shape}
    model_dict.update(params)
    model.load_state_dict(model_dict)
    return model


# ----------------------------------------------------------------------------- helpers


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(to_json(obj) + "\n")
    os.replace(tmp, path)


def write_safetensors(path, tensors):
    from safetensors.torch import save_file

    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, str(tmp))
    os.replace(tmp, path)


def torch_save(obj, path):
    import torch

    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:  # a stream: the archive is named "archive"
        torch.save(obj, f)
    os.replace(tmp, path)


def build_model(args, vocab, model_mod):
    """Exactly the TransformerModel(...) call of scgpt.tasks.cell_emb.embed_data."""
    return model_mod.TransformerModel(
        ntoken=len(vocab),
        d_model=args["embsize"],
        nhead=args["nheads"],
        d_hid=args["d_hid"],
        nlayers=args["nlayers"],
        nlayers_cls=args["n_layers_cls"],
        n_cls=1,
        vocab=vocab,
        dropout=args["dropout"],
        pad_token=args["pad_token"],
        pad_value=args["pad_value"],
        do_mvc=True,
        do_dab=False,
        use_batch_labels=False,
        domain_spec_batchnorm=False,
        explicit_zero_prob=False,
        use_fast_transformer=False,
        fast_transformer_backend="flash",
        pre_norm=False,
    )


def perturb_(model, seed):
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
            elif name == "encoder.embedding.weight":
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                fan_in = p.shape[-1] if p.dim() > 1 else 1
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)


def flash_keys(state):
    out = {}
    for k, v in state.items():
        k2 = k.replace("self_attn.in_proj_weight", "self_attn.Wqkv.weight").replace(
            "self_attn.in_proj_bias", "self_attn.Wqkv.bias")
        out[k2] = v
    return out


# ----------------------------------------------------------------------------- data


def pbmc_dataset(wheel_dir, rows):
    import anndata as ad
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ad.read_h5ad(pbmc68k_path(wheel_dir))
    x = a.raw.X.tocsr()[rows]
    return {"name": "pbmc68k", "rows": np.asarray(rows), "X": x,
            "genes": [str(g) for g in a.raw.var_names],
            "gene_col": "index (raw.var_names)",
            "source": "scanpy 1.11.5 wheel: scanpy/datasets/10x_pbmc68k_reduced.h5ad, raw.X"}


def write_celltypist_h5ad(wheel_dir, path, n_cells=40, limit=400_000):
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    cells, genes, counts = celltypist_counts(n_cells, wheel_dir)

    def make(cols):
        var = pd.DataFrame(index=pd.Index([genes[j] for j in cols], dtype=object))
        return ad.AnnData(X=sp.csr_matrix(counts[:, cols].astype(np.float32)),
                          obs=pd.DataFrame(index=pd.Index(cells, dtype=object)), var=var)

    tmp = path.with_suffix(".h5ad.tmp")
    adata = make(np.arange(len(genes)))
    adata.write_h5ad(tmp, compression="gzip")
    subset = False
    if tmp.stat().st_size > limit:
        subset = True
        adata = make(np.nonzero(counts.sum(axis=0) > 0)[0])
        adata.write_h5ad(tmp, compression="gzip")
    os.replace(tmp, path)
    return subset


def celltypist_dataset(path):
    import anndata as ad

    a = ad.read_h5ad(path)
    return {"name": "celltypist", "rows": np.arange(a.n_obs), "X": a.X.tocsr(),
            "genes": [str(g) for g in a.var_names], "gene_col": "index (var_names)",
            "source": "celltypist 1.7.1 wheel: celltypist/data/samples/sample_cell_by_gene.csv "
                      f"(first {a.n_obs} cells), via {path.name}"}


def make_vocab(pbmc_genes, ct_genes, ct_counts, n_other=300):
    rng = np.random.default_rng(7)
    pbmc_genes = list(pbmc_genes)
    drop = set(rng.choice(len(pbmc_genes), size=round(0.05 * len(pbmc_genes)), replace=False).tolist())
    kept = [g for i, g in enumerate(pbmc_genes) if i not in drop]
    pset = set(pbmc_genes)
    detected = (ct_counts > 0).sum(axis=0)
    order = sorted(range(len(ct_genes)), key=lambda j: (-int(detected[j]), j))
    other, seen = [], set()
    for j in order:
        g = ct_genes[j]
        if g not in pset and g not in seen:
            other.append(g)
            seen.add(g)
        if len(other) == n_other:
            break
    genes = kept + other
    perm = rng.permutation(len(genes))
    vocab = {genes[i]: k for k, i in enumerate(perm)}
    for s in SPECIALS:
        vocab[s] = len(vocab)
    return vocab, sorted(pbmc_genes[i] for i in drop)


# ----------------------------------------------------------------------------- reference


def embed_reference(model, vocab, args, ds, max_lengths, collator_mod, preprocess_mod, keep_outputs=True,
                    grad_path_check=True):
    """get_batch_cell_embeddings(cell_embedding_mode="cls") with seeded, in-process
    collation; returns (tensors, metadata)."""
    import torch

    pad_id = vocab[args["pad_token"]]
    cls_id = vocab["<cls>"]
    # embed_data: id_in_vocab, drop genes not in the vocab
    id_in_vocab = np.array([vocab[g] if g in vocab else -1 for g in ds["genes"]])
    keep = id_in_vocab >= 0
    x = ds["X"][:, keep]
    gene_ids = np.array([vocab[g] for g, k in zip(ds["genes"], keep) if k], dtype=int)
    count_matrix = x if isinstance(x, np.ndarray) else x.toarray()

    def getitem(idx):  # the Dataset.__getitem__ of get_batch_cell_embeddings
        row = count_matrix[idx]
        nonzero_idx = np.nonzero(row)[0]
        values = row[nonzero_idx]
        genes = gene_ids[nonzero_idx]
        genes = np.insert(genes, 0, cls_id)
        values = np.insert(values, 0, args["pad_value"])
        return {"id": idx, "genes": torch.from_numpy(genes).long(),
                "expressions": torch.from_numpy(values).float()}

    n = count_matrix.shape[0]
    items = [getitem(i) for i in range(n)]
    name = ds["name"]
    t = {}
    lens = np.array([len(it["genes"]) - 1 for it in items])
    assert lens.min() > 0, "a cell without matched non-zero genes breaks the reference"
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    t[f"{name}.cell_rows"] = torch.from_numpy(ds["rows"].astype(np.int32))
    t[f"{name}.n_nonzero"] = torch.from_numpy(lens.astype(np.int32))
    t[f"{name}.offsets"] = torch.from_numpy(offsets)
    src_genes = torch.cat([it["genes"][1:] for it in items]).to(torch.int32)
    t[f"{name}.values"] = torch.cat([it["expressions"][1:] for it in items])
    assert t[f"{name}.values"].dtype == torch.float32

    # deterministic parts of the binning + the draws, recomputed with numpy
    np.random.seed(SEED)
    bins_all, left_all, right_all, rand_all, dig_all = [], [], [], [], []
    for it in items:
        row = it["expressions"][1:].numpy()
        assert row.dtype == np.float32 and row.min() > 0
        bins = np.quantile(row, np.linspace(0, 1, N_BINS - 1))
        assert bins.dtype == np.float64
        left = np.digitize(row, bins)
        right = np.digitize(row, bins, right=True)
        r = np.random.rand(len(row))
        dig = np.ceil(r * (right - left) + left).astype(np.int64)
        bins_all.append(bins)
        left_all.append(left)
        right_all.append(right)
        rand_all.append(r)
        dig_all.append(dig)
    np_state_after_binning = np.random.get_state()
    t[f"{name}.bins"] = torch.from_numpy(np.stack(bins_all))
    t[f"{name}.left"] = torch.from_numpy(np.concatenate(left_all).astype(np.uint8))
    t[f"{name}.right"] = torch.from_numpy(np.concatenate(right_all).astype(np.uint8))
    t[f"{name}.rand"] = torch.from_numpy(np.concatenate(rand_all))
    n_ties = int(sum(int((r != l).sum()) for l, r in zip(left_all, right_all)))

    meta = {"source": ds["source"], "gene_col": ds["gene_col"], "n_cells": n,
            "n_genes": len(ds["genes"]), "n_genes_in_vocab": int(keep.sum()),
            "n_nonzero_min": int(lens.min()), "n_nonzero_max": int(lens.max()),
            "n_values_with_ties": n_ties, "runs": {}}

    for max_length in max_lengths:
        run = f"{name}.L{max_length}"
        collator = collator_mod.DataCollator(
            do_padding=True, pad_token_id=pad_id, pad_value=args["pad_value"], do_mlm=False,
            do_binning=True, max_length=max_length, sampling=True, keep_first_n_tokens=1)
        np.random.seed(SEED)
        torch.manual_seed(SEED)
        cls_out, batch_lens, perm_cells, perm_n = [], [], [], []
        out_first2 = None
        zeroed = []
        for b, start in enumerate(range(0, n, BATCH_SIZE)):
            examples = [{k: (v.clone() if torch.is_tensor(v) else v) for k, v in items[i].items()}
                        for i in range(start, min(n, start + BATCH_SIZE))]
            data = collator(examples)
            gene, expr = data["gene"], data["expr"]
            mask = gene.eq(pad_id)
            with torch.inference_mode():
                out = model._encode(gene, expr, src_key_padding_mask=mask)
            cls_out.append(out[:, 0, :].clone())
            if mask.any():
                zeroed.append(bool((out[mask] == 0).all()))
            if b == 0 and keep_outputs and max_length < 1200:
                out_first2 = out[:2].clone()
            t[f"{run}.batch{b}.gene"] = gene.to(torch.int32)
            t[f"{run}.batch{b}.expr"] = expr
            t[f"{run}.batch{b}.padding_mask"] = mask.to(torch.uint8)
            L = gene.shape[1]
            batch_lens.append(L)
            for j, ex in enumerate(examples):
                i = start + j
                if lens[i] + 1 > L:
                    perm_cells.append(i)
                    perm_n.append(int(lens[i]))
                # collated rows agree with the recomputed binning
                d = dig_all[i]
                if lens[i] + 1 <= L:
                    assert torch.equal(gene[j, 1:lens[i] + 1].to(torch.int32),
                                       src_genes[offsets[i]:offsets[i + 1]])
                    assert np.array_equal(expr[j, 1:lens[i] + 1].numpy(), d.astype(np.float32))
                    assert (gene[j, lens[i] + 1:] == pad_id).all()
                    assert (expr[j, lens[i] + 1:] == args["pad_value"]).all()
                assert gene[j, 0] == vocab["<cls>"] and expr[j, 0] == args["pad_value"]
        # the run consumed exactly the recorded numpy draws ...
        s1, s2 = np.random.get_state(), np_state_after_binning
        assert s1[0] == s2[0] and np.array_equal(s1[1], s2[1]) and s1[2:] == s2[2:]
        # ... and one randperm(len - 1) per subsampled cell: replay them
        torch_state_after = torch.get_rng_state()
        torch.manual_seed(SEED)
        perms = []
        for i, pn in zip(perm_cells, perm_n):
            L = batch_lens[i // BATCH_SIZE]
            p = torch.randperm(pn)[: L - 1]
            perms.append(p)
            bi, j = divmod(i, BATCH_SIZE)
            g = t[f"{run}.batch{bi}.gene"][j]
            e = t[f"{run}.batch{bi}.expr"][j]
            src_g = src_genes[offsets[i]:offsets[i + 1]]
            src_d = torch.from_numpy(dig_all[i].astype(np.float32))
            assert torch.equal(g[1:], src_g[p]) and torch.equal(e[1:], src_d[p])
        assert torch.equal(torch.get_rng_state(), torch_state_after)
        cls = torch.cat(cls_out)
        emb = cls.numpy() / np.linalg.norm(cls.numpy(), axis=1, keepdims=True)
        t[f"{run}.cls"] = cls
        t[f"{run}.emb"] = torch.from_numpy(np.ascontiguousarray(emb, dtype=np.float32))
        if perms:
            t[f"{run}.perm_cells"] = torch.tensor(perm_cells, dtype=torch.int32)
            t[f"{run}.perm_n"] = torch.tensor(perm_n, dtype=torch.int32)
            t[f"{run}.perm"] = torch.stack(perms).to(torch.int32)
        if out_first2 is not None:
            t[f"{run}.batch0.output_first2"] = out_first2
        # the same cls outputs on the non-fast (autograd-enabled) path, for tolerance
        slow = []
        for b in range(len(batch_lens) if grad_path_check else 0):
            g = t[f"{run}.batch{b}.gene"].long()
            with torch.enable_grad():
                o = model._encode(g, t[f"{run}.batch{b}.expr"],
                                  src_key_padding_mask=t[f"{run}.batch{b}.padding_mask"].bool())
            slow.append(o[:, 0, :].detach())
        slow = torch.cat(slow) if slow else None
        meta["runs"][run] = {
            "max_length": max_length, "batch_size": BATCH_SIZE, "batch_lengths": batch_lens,
            "numpy_seed": SEED, "torch_seed": SEED,
            "n_subsampled": len(perm_cells),
            "padded_outputs_zeroed": all(zeroed) if zeroed else None,
            "max_abs_diff_cls_inference_vs_grad_path":
                float((slow - cls).abs().max()) if slow is not None else None,
        }
    return t, meta


def check_randperm(seed, sizes):
    """torch.randperm == Fisher-Yates over MT19937 u32 outputs (numpy legacy seeding)."""
    import torch

    rs = np.random.RandomState(seed)
    torch.manual_seed(seed)
    for n in sizes:
        r = list(range(n))
        for i in range(n - 1):
            z = int(rs.randint(0, 2**32, dtype=np.uint32)) % (n - i)
            r[i], r[i + z] = r[i + z], r[i]
        assert torch.randperm(n).tolist() == r, n


def dataset_rows_pbmc(full):
    return np.arange(700) if full else np.arange(0, 700, 7)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel-dir", help="folder holding the scanpy/celltypist wheels")
    ap.add_argument("--full", metavar="DIR", help="write a full-size random checkpoint to DIR")
    opts = ap.parse_args()

    import torch

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    model_mod, collator_mod, preprocess_mod = import_scgpt()

    if opts.full:
        out = Path(opts.full)
        out.mkdir(parents=True, exist_ok=True)
        pkg_dir = Path(sys.modules["scgpt"].__path__[0])
        census = json.loads((pkg_dir / "tokenizer" / "default_census_vocab.json").read_text())
        vocab = dict(census)
        for s in SPECIALS:
            if s not in vocab:
                vocab[s] = len(vocab)
        args = FULL_ARGS
        pbmc = pbmc_dataset(opts.wheel_dir, dataset_rows_pbmc(True))
        datasets = [pbmc]
        ckpt_dir = out
    else:
        FIX.mkdir(parents=True, exist_ok=True)
        TINY.mkdir(parents=True, exist_ok=True)
        ct_path = FIX / "celltypist_40.h5ad"
        subset = write_celltypist_h5ad(opts.wheel_dir, ct_path)
        ct = celltypist_dataset(ct_path)
        pbmc = pbmc_dataset(opts.wheel_dir, dataset_rows_pbmc(False))
        vocab, dropped = make_vocab(pbmc["genes"], ct["genes"], ct["X"].toarray())
        args = TINY_ARGS
        datasets = [pbmc, ct]
        ckpt_dir = TINY

    torch.manual_seed(WEIGHT_SEED)
    model = build_model(args, vocab, model_mod)
    perturb_(model, WEIGHT_SEED)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    torch_save(state, ckpt_dir / "best_model.pt")
    if not opts.full:
        torch_save(flash_keys(state), ckpt_dir / "best_model_flash_keys.pt")
    write_json(ckpt_dir / "args.json", args)
    (ckpt_dir / "vocab.json").write_text(json.dumps(vocab, indent=0) + "\n")

    # load back through the reference route (load_pretrained, strict=False) and check
    model = build_model(args, vocab, model_mod)
    load_pretrained(model, torch.load(ckpt_dir / "best_model.pt", map_location="cpu"))
    model.eval()
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    if not opts.full:
        m2 = build_model(args, vocab, model_mod)
        load_pretrained(m2, torch.load(ckpt_dir / "best_model_flash_keys.pt", map_location="cpu"))
        for k, v in m2.state_dict().items():
            assert torch.equal(v, state[k]), k

    tensors, meta = {}, {}
    for ds in datasets:
        t, m = embed_reference(model, vocab, args, ds, [1200, 64], collator_mod, preprocess_mod,
                               grad_path_check=not opts.full)
        tensors.update(t)
        meta[ds["name"]] = m
        for run in m["runs"]:
            if f"{run}.perm_n" in t:
                check_randperm(SEED, t[f"{run}.perm_n"].tolist())

    ref_dir = out if opts.full else FIX
    write_safetensors(ref_dir / "reference.safetensors", tensors)
    info = {
        "reference": f"scgpt {importlib.metadata.version('scgpt')} (TransformerModel, DataCollator, "
                     f"binning) with torch {torch.__version__.split('+')[0]}, numpy {np.__version__}",
        "checkpoint": str(ckpt_dir.relative_to(ROOT)) if not opts.full else "(this folder)",
        "model_args": args,
        "vocab_size": len(vocab),
        "special_ids": {s: vocab[s] for s in SPECIALS},
        "weights_seed": WEIGHT_SEED,
        "state_dict": {k: list(v.shape) for k, v in state.items()},
        "numpy_seed": SEED, "torch_seed": SEED, "n_bins": N_BINS, "batch_size": BATCH_SIZE,
        "dtypes": {"binning_input": "float32", "bins": "float64", "left_right": "int64 (stored uint8)",
                   "rand": "float64", "binned_in_expr": "float32", "gene_ids": "int64 (stored int32)"},
        "datasets": meta,
    }
    if not opts.full:
        info["vocab_pbmc68k_genes_left_out"] = dropped
        info["celltypist_h5ad"] = {"file": "celltypist_40.h5ad", "genes_subset_to_detected": subset,
                                   "sha256": sha256(FIX / "celltypist_40.h5ad")}
    write_json(ref_dir / "reference.json", info)
    for p in sorted(list(ref_dir.rglob("*"))):
        if p.is_file():
            print(f"{p.stat().st_size:>10}  {p.relative_to(ref_dir)}")


if __name__ == "__main__":
    main()
