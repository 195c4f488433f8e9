#!/usr/bin/env python3
"""PyTorch side of `biofm bench --wsi`: whole-slide patch feature extraction the way the
reference toolkit (TRIDENT, `WSI.extract_patch_features` with UNI's encoder) does it,
written out here with the libraries it uses, as a worker that `biofm bench` times run by
run against biofm on the same coordinates.

Per patch (a torch Dataset, one item per coordinate): OpenSlide
`read_region((x, y), level, (n, n)).convert("RGB")`, Pillow `resize((ps, ps))` (its
default filter, bicubic) only when the read size differs from the patch size, then UNI's
eval transform: torchvision `Resize(224)` (bilinear, antialiased), `CenterCrop(224)`,
`ToTensor()`, `Normalize(ImageNet mean/std)`. Patches are batched by a torch `DataLoader`
(batch size as given, `--workers` worker processes, a new DataLoader per run as TRIDENT
makes one per slide; no pin_memory, which only matters for a GPU) and encoded by the timm
model under `torch.inference_mode()` in float32 with `torch.set_num_threads(threads)`.
The OpenSlide handle is opened once per process (main process or DataLoader worker).

TRIDENT picks `int(0.75 * os.cpu_count())` DataLoader workers (at least 1); biofm bench
passes `--workers` explicitly (its default is 1, which is also TRIDENT's choice on a
2-core machine).

Protocol (one JSON object per line on stdout):
    start-up:  {"torch": ..., "timm": ..., "torchvision": ..., "openslide": ...,
                "openslide_library": ..., "pillow": ..., "threads": N, "workers": W,
                "patches": n}
    `run [N]`        -> {"seconds": t}  read + preprocess + encode the first N patches
                                         (all without N); the features are kept
    `read [N]`       -> {"seconds": t}  the same DataLoader pass without the model
    `features PATH`  -> {"rows": r, "dim": d}  writes the last run's features to PATH
                                         (float32, little-endian, row-major)
    EOF on stdin ends the worker.

Usage:
    bench_wsi.py --model DIR --threads 2 --slide SLIDE --coords coords.json \
        --batch-size 16 --workers 1
where coords.json is {"coords": [[x, y], ...], "level": L, "read_size": n, "patch_size": ps}
(level-0 top-left corners, the pyramid level read and the size read there).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--slide", type=Path, required=True)
    ap.add_argument("--coords", type=Path, required=True)
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import openslide
    import PIL
    import timm
    import torchvision
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    spec = json.loads(args.coords.read_text())
    coords = [(int(x), int(y)) for x, y in spec["coords"]]
    level, read_size, patch_size = int(spec["level"]), int(spec["read_size"]), int(spec["patch_size"])
    transform = transforms.Compose([
        transforms.Resize(224),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ])
    slide_path = str(args.slide.resolve())

    class Patches(Dataset):
        def __init__(self, n):
            self.n = n
            self.handle = None
            self.pid = None

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            if self.handle is None or self.pid != os.getpid():
                self.handle, self.pid = openslide.OpenSlide(slide_path), os.getpid()
            x, y = coords[i]
            tile = self.handle.read_region((x, y), level, (read_size, read_size)).convert("RGB")
            if read_size != patch_size:
                tile = tile.resize((patch_size, patch_size))
            return transform(tile), torch.tensor([x, y])

    def loader(n):
        return DataLoader(Patches(n), batch_size=args.batch_size, num_workers=args.workers)

    model = timm.create_model(f"local-dir:{args.model.resolve()}", pretrained=True).eval()

    def reply(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    reply({"torch": torch.__version__, "timm": timm.__version__, "torchvision": torchvision.__version__,
           "openslide": openslide.__version__, "openslide_library": openslide.__library_version__,
           "pillow": PIL.__version__, "threads": torch.get_num_threads(), "workers": args.workers,
           "patches": len(coords)})
    features = None
    with torch.inference_mode():
        for line in sys.stdin:
            parts = line.split()
            if not parts:
                continue
            what = parts[0]
            if what in ("run", "read"):
                n = int(parts[1]) if len(parts) > 1 else len(coords)
                if not 0 < n <= len(coords):
                    raise SystemExit(f"bad request {line!r}")
                t0 = time.perf_counter()
                out = []
                for imgs, _ in loader(n):
                    if what == "run":
                        out.append(model(imgs).numpy())
                seconds = time.perf_counter() - t0
                if what == "run":
                    features = np.concatenate(out, axis=0)
                reply({"seconds": seconds})
            elif what == "features" and len(parts) == 2 and features is not None:
                np.ascontiguousarray(features, dtype="<f4").tofile(parts[1])
                reply({"rows": int(features.shape[0]), "dim": int(features.shape[1])})
            else:
                raise SystemExit(f"bad request {line!r}")


if __name__ == "__main__":
    main()
