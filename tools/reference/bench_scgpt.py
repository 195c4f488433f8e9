#!/usr/bin/env python3
"""PyTorch/scGPT side of `biofm bench --cells`: a worker that loads an scGPT checkpoint
folder with the reference code (scgpt 0.2.4, imported through the shim in
gen_scgpt_fixtures.py), prepares the cells of an .h5ad file as `embed_data` does, then
times the per-batch work of `embed_data` on request: the `DataCollator` (binning,
subsampling, padding) and `model._encode`, `<cls>` output, L2 normalisation.

Protocol (one JSON object per line on stdout):
    start-up:  {"torch": ..., "scgpt": ..., "threads": N, "cells": n}
    request `cells B` on stdin -> {"seconds": t}   (the first B cells, one batch)
    EOF on stdin ends the worker.

Usage:
    bench_scgpt.py --model DIR --threads 2 --input data.h5ad [--raw] [--max-length 1200] [--cells 64]
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_scgpt_fixtures import build_model, import_scgpt, load_pretrained  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--input", type=Path, required=True)
    ap.add_argument("--raw", action="store_true")
    ap.add_argument("--max-length", type=int, default=1200)
    ap.add_argument("--cells", type=int, default=64)
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import anndata

    model_mod, collator_mod, _ = import_scgpt()
    margs = json.loads((args.model / "args.json").read_text())
    vocab = json.loads((args.model / "vocab.json").read_text())
    for special in [margs.get("pad_token", "<pad>"), "<cls>", "<eoc>"]:
        if special not in vocab:
            vocab[special] = len(vocab)
    model = build_model(margs, vocab, model_mod)
    load_pretrained(model, torch.load(args.model / "best_model.pt", map_location="cpu"))
    model.eval()

    ad = anndata.read_h5ad(args.input)
    if args.raw:
        matrix, genes = ad.raw.X, list(ad.raw.var_names)
    else:
        matrix, genes = ad.X, list(ad.var_names)
    keep = [i for i, g in enumerate(genes) if g in vocab]
    gene_ids = np.array([vocab[genes[i]] for i in keep], dtype=int)
    counts = matrix[: args.cells][:, keep]
    counts = counts if isinstance(counts, np.ndarray) else counts.toarray()
    pad_value = margs.get("pad_value", -2)
    examples = []
    for row in counts:  # the Dataset.__getitem__ of embed_data
        nz = np.nonzero(row)[0]
        g = np.insert(gene_ids[nz], 0, vocab["<cls>"])
        v = np.insert(row[nz], 0, pad_value)
        examples.append({"genes": torch.from_numpy(g).long(), "expressions": torch.from_numpy(v).float()})
    pad_id = vocab[margs.get("pad_token", "<pad>")]
    collator = collator_mod.DataCollator(
        do_padding=True, pad_token_id=pad_id, pad_value=pad_value, do_mlm=False, do_binning=True,
        max_length=args.max_length, sampling=True, keep_first_n_tokens=1,
    )

    def reply(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    import importlib.metadata

    reply({"torch": torch.__version__, "scgpt": importlib.metadata.version("scgpt"),
           "threads": torch.get_num_threads(), "cells": len(examples)})
    with torch.inference_mode():
        for line in sys.stdin:
            what, b = line.split()
            b = int(b)
            if what != "cells" or b > len(examples):
                raise SystemExit(f"bad request {line!r}")
            batch = [{k: t.clone() for k, t in e.items()} for e in examples[:b]]
            np.random.seed(0)
            torch.manual_seed(0)
            t0 = time.perf_counter()
            d = collator(batch)
            out = model._encode(d["gene"], d["expr"].float(), src_key_padding_mask=d["gene"].eq(pad_id))
            emb = out[:, 0, :].numpy()
            emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
            reply({"seconds": time.perf_counter() - t0})


if __name__ == "__main__":
    main()
