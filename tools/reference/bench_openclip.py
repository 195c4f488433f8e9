#!/usr/bin/env python3
"""PyTorch/open_clip side of `biofm bench`: times an open_clip model's image and text
towers on the same inputs biofm uses, with the same thread count, and prints one JSON
object on stdout.

Images: the given files, preprocessed by open_clip's own transform, repeated to fill
each batch. Texts: the given prompts, tokenised by open_clip (padded to the model's
context length, as open_clip does) and also trimmed to the longest prompt in the batch
("dynamic padding", the same numbers because padding is masked) so both are reported.

Usage:
    bench_openclip.py --model DIR --threads 2 --batch-sizes 1,8 --images a.png b.jpg \
        --texts-file prompts.txt [--iters 10] [--warmup 3]
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# gen_openclip_fixtures.py --full DIR serves the text model's config from DIR.hf-cache;
# huggingface_hub reads its cache location at import time.
if "--model" in sys.argv[1:-1]:
    _cache = Path(sys.argv[sys.argv.index("--model") + 1]).resolve()
    _cache = _cache.parent / (_cache.name + ".hf-cache")
    if _cache.is_dir():
        os.environ["HF_HUB_CACHE"] = str(_cache)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--images", nargs="+", required=True)
    ap.add_argument("--texts-file", type=Path, required=True)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    import open_clip
    from PIL import Image

    model_dir = args.model.resolve()
    images = [str(Path(p).resolve()) for p in args.images]
    cwd = os.getcwd()
    os.chdir(model_dir)
    try:
        model, preprocess = open_clip.create_model_from_pretrained(f"local-dir:{model_dir}")
        tokenizer = open_clip.get_tokenizer(f"local-dir:{model_dir}")
    finally:
        os.chdir(cwd)
    model.eval()
    prompts = [l for l in args.texts_file.read_text(encoding="utf-8").splitlines() if l.strip()]
    pixels = torch.stack([preprocess(Image.open(p)) for p in images])

    def timed(fn, iters, warmup):
        for _ in range(warmup):
            fn()
        ts = []
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    out = {"engine": "pytorch", "torch": torch.__version__, "open_clip": open_clip.__version__,
           "threads": torch.get_num_threads(), "results": []}
    with torch.inference_mode():
        for bs in [int(b) for b in args.batch_sizes.split(",")]:
            idx = [i % len(images) for i in range(bs)]
            batch = pixels[idx]
            t = timed(lambda: model.encode_image(batch), args.iters, args.warmup)
            out["results"].append({"tower": "image", "batch": bs, "seconds": t, "per_second": bs / t})

            texts = [prompts[i % len(prompts)] for i in range(bs)]
            ids = tokenizer(texts)
            t = timed(lambda: model.encode_text(ids), args.iters, args.warmup)
            out["results"].append({"tower": "text", "variant": "open_clip (padded to context)",
                                   "batch": bs, "seconds": t, "per_second": bs / t, "tokens": ids.shape[1]})
            pad_id = getattr(getattr(tokenizer, "tokenizer", None), "pad_token_id", 0) or 0
            longest = int((ids != pad_id).sum(dim=1).max())
            trimmed = ids[:, :longest].contiguous()
            t = timed(lambda: model.encode_text(trimmed), args.iters, args.warmup)
            out["results"].append({"tower": "text", "variant": "dynamic padding",
                                   "batch": bs, "seconds": t, "per_second": bs / t, "tokens": longest})
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
