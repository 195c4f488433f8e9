#!/usr/bin/env python3
"""Parity fixtures for biofm's timm VisionTransformer (run on demand, never by tests).

Writes, relative to the repository root:

* crates/biofm-models/tests/fixtures/timm/<case>/ -- tiny timm ViTs with random
  weights in the timm hub layout (config.json written by timm's own `save_for_hf`,
  model.safetensors), plus io.safetensors with, per input size `<run>`:
  `<run>.input` [2, 3, H, W] (IHC sample image resized by PIL + normalised, and a
  random tensor), `<run>.features` (forward_features), `<run>.pre_logits`
  (forward_head(pre_logits=True)) and, with a classifier, `<run>.logits`. Runs listed
  in <case>/overrides.json ({run: timm kwargs}) come from timm reloading the saved
  directory with those kwargs (`create_model("local-dir:...", pretrained=True, ...)`).
  Every directory is also reloaded by timm and checked to reproduce its outputs.
* crates/biofm-models/tests/fixtures/timm/registry.json -- what timm 1.0.31 builds
  for every plain `vit_{size}_patch{p}_{res}` name (and a few override sets used by
  biomedical models): resolved architecture and pretrained config.
* crates/biofm-nn/tests/fixtures/vit/pos_embed_resample.{json,safetensors} --
  timm.layers.resample_abs_pos_embed (bicubic, antialias=True) on random grids. (The
  last bits of PyTorch's result depend on its CPU kernel build; these were made with
  the x86 AVX2 dispatch.)

Random init: timm's own init, seeded, then N(0, 0.02) added to every bias, norm weight
and class/register token, and LayerScale gammas drawn from N(0.3, 0.1), so that no
parameter is trivially 0 or 1 and every residual branch matters.

Usage: tools/reference/.venv/bin/python tools/reference/gen_vit_fixtures.py
"""
import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image
from safetensors.torch import save_file
from timm.layers import LayerScale, SwiGLUPacked, resample_abs_pos_embed
from timm.models import save_for_hf

ROOT = Path(__file__).resolve().parents[2]
TIMM_OUT = ROOT / "crates/biofm-models/tests/fixtures/timm"
NN_OUT = ROOT / "crates/biofm-nn/tests/fixtures/vit"
IMAGE = ROOT / "data/samples/ihc.png"

TINY = dict(embed_dim=24, depth=2, num_heads=3)

# name -> (architecture, timm kwargs, JSON replacements for non-serialisable kwargs,
#          input sizes (h, w) per run; the first is the native size)
MODELS = {
    # (a) plain class-token ViT, vit_base-like
    "vit_plain": (
        "vit_base_patch16_224",
        dict(embed_dim=48, depth=2, num_heads=3, img_size=48, num_classes=0),
        {},
        {"native": (48, 48)},
    ),
    # (b) RETFound-style: LayerScale, average pooling, fc_norm
    "vit_layerscale_avg": (
        "vit_large_patch16_224",
        dict(TINY, patch_size=8, img_size=32, init_values=1e-5, global_pool="avg", num_classes=0),
        {},
        {"native": (32, 32)},
    ),
    # (c) UNI2-h-style: SwiGLUPacked + SiLU, registers, no_embed_class, LayerScale,
    #     patch 14, dynamic_img_size
    "vit_uni2_style": (
        "vit_giant_patch14_224",
        dict(TINY, img_size=42, mlp_ratio=2.66667 * 2, mlp_layer=SwiGLUPacked, act_layer=torch.nn.SiLU,
             reg_tokens=4, no_embed_class=True, init_values=1e-5, dynamic_img_size=True, num_classes=0),
        {"mlp_layer": "timm.layers.SwiGLUPacked", "act_layer": "torch.nn.SiLU"},
        {"native": (42, 42), "tall": (56, 28)},
    ),
    # (d) classifier head, no class token, max pooling with the final norm kept
    "vit_head": (
        "vit_small_patch16_224",
        dict(TINY, patch_size=8, img_size=32, class_token=False, global_pool="max", fc_norm=False, num_classes=5),
        {},
        {"native": (32, 32)},
    ),
    # (e) dynamic_img_size with class-token position, run at other sizes (pos-embed
    #     resampling up, down and mixed) and with dynamic_img_pad
    "vit_dynamic": (
        "vit_base_patch16_224",
        dict(TINY, patch_size=8, img_size=32, dynamic_img_size=True, dynamic_img_pad=True, num_classes=0),
        {},
        {"native": (32, 32), "large": (48, 40), "padded": (37, 21), "wide": (16, 48)},
    ),
    # (f) CLIP-style pre_norm (no patch bias), registers with positions, avgmax pooling,
    #     quick_gelu, classifier
    "vit_pre_norm": (
        "vit_base_patch16_224",
        dict(TINY, patch_size=8, img_size=32, pre_norm=True, reg_tokens=2, global_pool="avgmax",
             act_layer="quick_gelu", num_classes=3),
        {},
        {"native": (32, 32)},
    ),
}

# Runs that reload a saved hub directory with timm keyword overrides
# (`create_model("local-dir:...", pretrained=True, **overrides)`); written to
# <case>/overrides.json as {run: overrides}. A new img_size makes timm's
# checkpoint_filter_fn resample pos_embed at load time.
RELOAD_RUNS = {
    "vit_plain": {"reload_img32": ({"img_size": 32}, (32, 32))},
    "vit_uni2_style": {"reload_img28x14": ({"img_size": [28, 14]}, (28, 14))},
}

# Override sets resolved by name in registry.json besides the plain defaults.
NAMED_OVERRIDES = [
    ("vit_base_patch16_224", dict(num_classes=0)),  # open_clip timm trunk (BiomedCLIP)
    ("vit_base_patch16_224", dict(img_size=448, num_classes=0, dynamic_img_size=True)),  # CONCH trunk
    ("vit_large_patch16_224", dict(img_size=224, patch_size=16, init_values=1e-5, num_classes=0,
                                   dynamic_img_size=True)),  # UNI
    ("vit_large_patch16_224", dict(global_pool="avg", num_classes=0)),  # RETFound-style
    ("vit_giant_patch14_224", dict(img_size=224, patch_size=14, depth=24, num_heads=24, init_values=1e-5,
                                   embed_dim=1536, mlp_ratio=2.66667 * 2, num_classes=0, no_embed_class=True,
                                   mlp_layer=SwiGLUPacked, act_layer=torch.nn.SiLU, reg_tokens=8,
                                   dynamic_img_size=True)),  # UNI2-h
]
JSON_FORMS = {SwiGLUPacked: "timm.layers.SwiGLUPacked", torch.nn.SiLU: "torch.nn.SiLU"}

# (name, grid of the input, old_size passed to timm (None: its square default),
#  new grid, prefix tokens)
RESAMPLE_CASES = [
    ("up_square", (4, 4), (4, 4), (7, 7), 1),
    ("down_square", (8, 8), (8, 8), (3, 3), 1),
    ("up_nonsquare", (3, 4), (3, 4), (5, 9), 0),
    ("down_nonsquare", (9, 6), (9, 6), (4, 5), 5),
    ("mixed", (4, 6), (4, 6), (7, 3), 1),
    ("one_dim_same", (5, 5), (5, 5), (5, 8), 1),
    ("strong_down", (16, 16), (16, 16), (3, 5), 0),
    ("to_one", (6, 6), (6, 6), (1, 1), 1),
    ("from_one", (1, 1), (1, 1), (2, 3), 0),
    ("same", (4, 4), (4, 4), (4, 4), 1),
    ("square_default", (5, 5), None, (6, 6), 1),
    ("to_column", (5, 5), (5, 5), (3, 1), 1),
    ("to_row", (5, 5), (5, 5), (1, 3), 0),
]


def perturb(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".gamma"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1 + 0.3)
            elif name.endswith("bias") or name in ("cls_token", "reg_token") or (
                    "norm" in name and name.endswith("weight")):
                p.add_(torch.randn(p.shape, generator=gen) * 0.02)


def pixels(model, size, gen):
    """The IHC sample resized by PIL (bicubic) + normalised, and a random image."""
    h, w = size
    img = Image.open(IMAGE).convert("RGB").resize((w, h), Image.BICUBIC)
    arr = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(model.pretrained_cfg["mean"]).view(3, 1, 1)
    std = torch.tensor(model.pretrained_cfg["std"]).view(3, 1, 1)
    real = (arr - mean) / std
    noise = torch.randn((3, h, w), generator=gen)
    return torch.stack([real, noise]).float().contiguous()


def write_model(index, name, arch, kwargs, json_args, runs):
    torch.manual_seed(1000 + index)
    gen = torch.Generator().manual_seed(index)
    model = timm.create_model(arch, pretrained=False, **kwargs).eval()
    perturb(model, gen)
    out = TIMM_OUT / name
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=TIMM_OUT))
    try:
        save_for_hf(model, tmp, model_args=json_args, safe_serialization=True)
        io = {}
        with torch.inference_mode():
            for run, size in runs.items():
                x = pixels(model, size, gen)
                feats = model.forward_features(x)
                io[f"{run}.input"] = x
                io[f"{run}.features"] = feats
                io[f"{run}.pre_logits"] = model.forward_head(feats, pre_logits=True)
                if model.num_classes > 0:
                    io[f"{run}.logits"] = model.forward_head(feats)
        check_hub_reload(tmp, kwargs, io, runs)
        reload_runs = RELOAD_RUNS.get(name, {})
        for run, (overrides, size) in reload_runs.items():
            extra = {k: v for k, v in kwargs.items() if not is_json(v)}
            reloaded = timm.create_model(f"local-dir:{tmp}", pretrained=True, **extra, **overrides).eval()
            with torch.inference_mode():
                x = pixels(reloaded, size, gen)
                feats = reloaded.forward_features(x)
                io[f"{run}.input"] = x
                io[f"{run}.features"] = feats
                io[f"{run}.pre_logits"] = reloaded.forward_head(feats, pre_logits=True)
                if reloaded.num_classes > 0:
                    io[f"{run}.logits"] = reloaded.forward_head(feats)
        if reload_runs:
            overrides = {run: o for run, (o, _) in reload_runs.items()}
            (tmp / "overrides.json").write_text(json.dumps(overrides, indent=1) + "\n")
        save_file({k: v.contiguous() for k, v in io.items()}, tmp / "io.safetensors")
        tmp.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    print(f"{name}: {sum(f.stat().st_size for f in out.iterdir())} bytes")


def is_json(value):
    return isinstance(value, (int, float, str, bool, tuple, list))


def check_hub_reload(path, kwargs, io, runs):
    """timm itself must load the hub directory back (pretrained=True, local-dir) to the
    same outputs; class-valued kwargs are passed explicitly, as UNI2-h users do."""
    extra = {k: v for k, v in kwargs.items() if not is_json(v)}
    model = timm.create_model(f"local-dir:{path}", pretrained=True, **extra).eval()
    with torch.inference_mode():
        for run in runs:
            assert torch.equal(model.forward_features(io[f"{run}.input"]), io[f"{run}.features"]), run


def describe(model):
    blk = model.blocks[0]
    ident = torch.nn.Identity
    return {
        "img_size": list(model.patch_embed.img_size),
        "patch_size": list(model.patch_embed.patch_size),
        "in_chans": model.in_chans,
        "num_classes": model.num_classes,
        "global_pool": model.global_pool,
        "embed_dim": model.embed_dim,
        "depth": len(model.blocks),
        "num_heads": blk.attn.num_heads,
        "mlp_fc1_out": blk.mlp.fc1.out_features,
        "mlp_fc2_in": blk.mlp.fc2.in_features,
        "mlp_layer": type(blk.mlp).__name__,
        "act_layer": type(blk.mlp.act).__name__,
        "qkv_bias": blk.attn.qkv.bias is not None,
        "layer_scale": isinstance(blk.ls1, LayerScale),
        "class_token": model.cls_token is not None,
        "reg_tokens": model.num_reg_tokens,
        "no_embed_class": model.no_embed_class,
        "pos_embed_len": model.pos_embed.shape[1],
        "patch_bias": model.patch_embed.proj.bias is not None,
        "norm_pre": not isinstance(model.norm_pre, ident),
        "norm": not isinstance(model.norm, ident),
        "fc_norm": not isinstance(model.fc_norm, ident),
        "head": not isinstance(model.head, ident),
        "dynamic_img_size": model.dynamic_img_size,
    }


def write_registry():
    names = sorted(n for n in timm.list_models("vit_*")
                   if re.fullmatch(r"vit_(tiny|small|base|large|huge|giant|gigantic)_patch(8|14|16|32)_\d+", n))
    entries = []
    for name, overrides in [(n, {}) for n in names] + NAMED_OVERRIDES:
        model = timm.create_model(name, pretrained=False, device="meta", **overrides)
        cfg = model.pretrained_cfg
        entries.append({
            "name": name,
            "overrides": {k: JSON_FORMS.get(v, v) for k, v in overrides.items()},
            "model": describe(model),
            "pretrained_cfg": {k: cfg[k] for k in ("tag", "input_size", "fixed_input_size", "interpolation",
                                                   "crop_pct", "crop_mode", "mean", "std", "num_classes")},
        })
    (TIMM_OUT / "registry.json").write_text(json.dumps({"timm": timm.__version__, "models": entries}, indent=1) + "\n")
    print(f"registry.json: {len(entries)} entries")


def write_resample():
    gen = torch.Generator().manual_seed(7)
    tensors, cases = {}, []
    channels = 5
    for name, grid, old, new, prefix in RESAMPLE_CASES:
        pe = torch.randn((1, prefix + grid[0] * grid[1], channels), generator=gen)
        out = resample_abs_pos_embed(pe, new_size=list(new), old_size=list(old) if old else None,
                                     num_prefix_tokens=prefix)
        tensors[f"{name}.input"] = pe
        tensors[f"{name}.output"] = out.clone().contiguous()
        cases.append({"name": name, "old_size": list(old) if old else None, "new_size": list(new),
                      "num_prefix_tokens": prefix})
    NN_OUT.mkdir(parents=True, exist_ok=True)
    save_file(tensors, NN_OUT / "pos_embed_resample.safetensors")
    meta = {"timm": timm.__version__, "torch": torch.__version__, "cases": cases}
    (NN_OUT / "pos_embed_resample.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"pos_embed_resample: {len(cases)} cases")


def main():
    TIMM_OUT.mkdir(parents=True, exist_ok=True)
    for i, (name, spec) in enumerate(MODELS.items()):
        write_model(i, name, *spec)
    write_registry()
    write_resample()


if __name__ == "__main__":
    main()
