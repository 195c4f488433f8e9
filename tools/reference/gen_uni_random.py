#!/usr/bin/env python3
"""A full-size UNI-architecture patch encoder with random weights, for `biofm bench --wsi`.

UNI's real weights are gated (CC-BY-NC-ND 4.0); speed does not depend on the weights, so
the benchmark uses the same architecture with random ones: timm `vit_large_patch16_224`
with UNI's timm kwargs (img_size 224, patch_size 16, init_values 1e-5, num_classes 0,
dynamic_img_size), i.e. ViT-L/16, 24 blocks, width 1024, LayerScale, ~303M parameters.

The weights are timm's own initialisation (torch seed 20240) with the LayerScale gammas
drawn around 0.3 instead of 1e-5 (and small offsets on biases, norm weights and the
class token), so that every block changes the output and a wrong block would show in
the feature comparison of the benchmark. Written in the timm hub layout (`config.json`
with `architecture` and `model_args`, `model.safetensors`) by timm's `save_for_hf`, which
both `timm.create_model("local-dir:DIR", pretrained=True)` and biofm load.

Run on demand (about a minute and 1.2 GB on disk; not committed):

    tools/reference/setup.sh
    tools/reference/.venv/bin/python tools/reference/gen_uni_random.py --full .cache/uni-random
"""

import argparse
import shutil
from pathlib import Path

UNI_TIMM_KWARGS = dict(img_size=224, patch_size=16, init_values=1e-5, num_classes=0, dynamic_img_size=True)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", type=Path, required=True, help="output folder (e.g. .cache/uni-random)")
    args = ap.parse_args()

    import timm
    import torch
    from timm.models import save_for_hf

    torch.manual_seed(20240)
    gen = torch.Generator().manual_seed(7)
    model = timm.create_model("vit_large_patch16_224", pretrained=False, **UNI_TIMM_KWARGS).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".gamma"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1 + 0.3)
            elif name.endswith("bias") or name == "cls_token" or ("norm" in name and name.endswith("weight")):
                p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    out = args.full
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pcfg = {"tag": "uni_random", "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "crop_pct": 1.0,
            "interpolation": "bilinear"}
    save_for_hf(model, out, model_config={"pretrained_cfg": pcfg}, safe_serialization=True)

    reloaded = timm.create_model(f"local-dir:{out.resolve()}", pretrained=True).eval()
    x = torch.randn((1, 3, 224, 224), generator=gen)
    with torch.inference_mode():
        a, b = model(x), reloaded(x)
    assert torch.equal(a, b), "timm does not reload the folder to the same model"
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {out}: vit_large_patch16_224 (UNI kwargs), {n / 1e6:.1f}M parameters, "
          f"features {tuple(a.shape)}, std {a.std().item():.3f}")


if __name__ == "__main__":
    main()
