#!/usr/bin/env python3
"""Parity fixtures for biofm-kernels (run on demand, never by tests).

Writes crates/biofm-kernels/tests/fixtures/kernels.safetensors (~100 KB), relative to
the repository root, with PyTorch results for the kernels' reference ops:

* `act.x`: a grid on [-8, 8] plus special points (0, +-1e-30, +-4, +-10, +-30, +-1e3);
  `act.gelu` (F.gelu, exact erf), `act.gelu_tanh`, `act.quick_gelu` (x * sigmoid(1.702 x)),
  `act.silu`, `act.relu`, all float32; `act.gelu_f64` and `act.erf_f64` computed in
  float64 (torch.erf) from the same float32 inputs, as high-precision references.
* `linear.{x,weight,bias,out}`: F.linear, x [3, 7, 20], weight [13, 20].
* `layer_norm.{x,weight,bias,out,out_f64}`: F.layer_norm over the last dim, eps 1e-6,
  x [3, 7, 100] (one row offset by 1000), weight/bias perturbed away from 1/0; `out` in
  float32, `out_f64` the same inputs in float64.
* `softmax.{x,out}`: torch.softmax(x, -1) on [3, 5, 37] with large logits.
* `attention.{qkv,bias,out}`: timm-style attention on a packed qkv [2, 9, 72] with 4
  heads: F.scaled_dot_product_attention(q, k, v, attn_mask=bias) with the additive key
  padding bias [2, 1, 1, 9] (0 or float32 min; lengths 9 and 3), heads concatenated.

Usage: tools/reference/.venv/bin/python tools/reference/gen_kernel_fixtures.py
"""
import os
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/biofm-kernels/tests/fixtures/kernels.safetensors"


def activations(t):
    special = [0.0, 1e-30, -1e-30, 1e-5, -1e-5, 4.0, -4.0, 10.0, -10.0, 30.0, -30.0, 1e3, -1e3]
    x = torch.cat([torch.linspace(-8.0, 8.0, 1601), torch.tensor(special)]).float()
    t["act.x"] = x
    t["act.gelu"] = F.gelu(x)
    t["act.gelu_tanh"] = F.gelu(x, approximate="tanh")
    t["act.quick_gelu"] = x * torch.sigmoid(1.702 * x)
    t["act.silu"] = F.silu(x)
    t["act.relu"] = F.relu(x)
    t["act.gelu_f64"] = F.gelu(x.double())
    t["act.erf_f64"] = torch.erf(x.double())


def linear(t):
    x = torch.randn(3, 7, 20)
    w = torch.randn(13, 20) * 0.3
    b = torch.randn(13) * 0.5
    t.update({"linear.x": x, "linear.weight": w, "linear.bias": b, "linear.out": F.linear(x, w, b)})


def layer_norm(t):
    x = torch.randn(3, 7, 100) * 2.0
    x[1, 2] += 1000.0
    w = 1.0 + 0.2 * torch.randn(100)
    b = 0.2 * torch.randn(100)
    out = F.layer_norm(x, (100,), w, b, eps=1e-6)
    out64 = F.layer_norm(x.double(), (100,), w.double(), b.double(), eps=1e-6)
    t.update({"layer_norm.x": x, "layer_norm.weight": w, "layer_norm.bias": b, "layer_norm.out": out})
    t["layer_norm.out_f64"] = out64


def softmax(t):
    x = torch.randn(3, 5, 37) * 8.0
    x[0, 0, 0] = 200.0
    t.update({"softmax.x": x, "softmax.out": torch.softmax(x, -1)})


def attention(t):
    b, n, d, heads = 2, 9, 24, 4
    qkv = torch.randn(b, n, 3 * d)
    q, k, v = (qkv[..., i * d:(i + 1) * d].reshape(b, n, heads, d // heads).transpose(1, 2) for i in range(3))
    keep = torch.tensor([[1] * 9, [1] * 3 + [0] * 6], dtype=torch.float32)
    bias = ((1.0 - keep) * torch.finfo(torch.float32).min).reshape(b, 1, 1, n)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    t.update({"attention.qkv": qkv, "attention.bias": bias, "attention.out": out.transpose(1, 2).reshape(b, n, d)})


def main():
    torch.manual_seed(0)
    tensors = {}
    with torch.inference_mode():
        for make in (activations, linear, layer_norm, softmax, attention):
            make(tensors)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=OUT.parent, suffix=".tmp")
    os.close(fd)
    save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata={"torch": torch.__version__})
    os.replace(tmp, OUT)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
