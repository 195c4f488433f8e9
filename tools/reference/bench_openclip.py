#!/usr/bin/env python3
"""PyTorch/open_clip side of `biofm bench`: a worker that loads an open_clip model once,
then times single calls of its image and text towers on request, so that `biofm bench`
can alternate PyTorch and biofm call by call (paired measurements: both engines see the
same machine conditions). Same inputs as biofm, same thread count.

Images: the given files, preprocessed by open_clip's own transform, repeated to fill
each batch. Texts: the given prompts, tokenised by open_clip (padded to the model's
context length, as open_clip does) and also trimmed to the longest prompt in the batch
("dynamic padding", the same numbers because padding is masked) so both are reported.

Protocol (one JSON object per line on stdout):
    start-up:  {"torch": ..., "open_clip": ..., "threads": N}
    request `image B`, `text-padded B` or `text-dynamic B` on stdin
      -> {"seconds": t, "tokens": L}   (wall time of one call under inference_mode)
    EOF on stdin ends the worker.

Usage:
    bench_openclip.py --model DIR --threads 2 --images a.png b.jpg --texts-file prompts.txt
"""

import argparse
import json
import os
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
    ap.add_argument("--images", nargs="+", required=True)
    ap.add_argument("--texts-file", type=Path, required=True)
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
    pad_id = getattr(getattr(tokenizer, "tokenizer", None), "pad_token_id", 0) or 0

    def reply(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    reply({"torch": torch.__version__, "open_clip": open_clip.__version__,
           "threads": torch.get_num_threads()})
    with torch.inference_mode():
        for line in sys.stdin:
            what, bs = line.split()
            bs = int(bs)
            if what == "image":
                batch = pixels[[i % len(images) for i in range(bs)]]
                fn, tokens = (lambda: model.encode_image(batch)), None
            else:
                ids = tokenizer([prompts[i % len(prompts)] for i in range(bs)])
                if what == "text-dynamic":
                    ids = ids[:, :int((ids != pad_id).sum(dim=1).max())].contiguous()
                elif what != "text-padded":
                    raise SystemExit(f"unknown request {line!r}")
                fn, tokens = (lambda: model.encode_text(ids)), ids.shape[1]
            t0 = time.perf_counter()
            fn()
            reply({"seconds": time.perf_counter() - t0, "tokens": tokens})


if __name__ == "__main__":
    main()
