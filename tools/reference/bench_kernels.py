#!/usr/bin/env python3
"""PyTorch side of crates/biofm-kernels/examples/vit_block_bench.rs: times the same ops
on the same shapes (timm vit_base_patch16_224, batch 1 and 8) under
torch.inference_mode() with torch.set_num_threads(THREADS), and a full timm
`vit_base_patch16_224` forward (random init). Prints median ms per op and img/s.

Usage: tools/reference/.venv/bin/python tools/reference/bench_kernels.py [--threads 2]
       [--batch 1,8] [--iters 5] [--ops 0]
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

DIM, HEADS, MLP, DEPTH, TOKENS = 768, 12, 3072, 12, 197


def median_ms(fn, iters):
    fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def report(name, per_forward, ms):
    print(f"{name:<28} torch {ms:9.2f} ms   per forward ({per_forward}x): {ms * per_forward:8.1f} ms")


def time_ops(blk, b, it):
    """Per-op timings at batch b (shapes of one ViT-B/16 block)."""
    x = torch.randn(b, TOKENS, DIM)
    h = torch.randn(b, TOKENS, MLP) * 2.0
    logits = torch.randn(b, HEADS, TOKENS, TOKENS) * 3.0
    qkv = torch.randn(b, TOKENS, 3 * DIM)
    q, k, v = (t.reshape(b, TOKENS, HEADS, DIM // HEADS).transpose(1, 2) for t in qkv.split(DIM, -1))
    n1 = blk.norm1
    report("gelu [B,197,3072]", DEPTH, median_ms(lambda: F.gelu(h), it))
    report("layer_norm [B,197,768]", 2 * DEPTH + 1, median_ms(lambda: F.layer_norm(x, (DIM,), n1.weight, n1.bias, 1e-6), it))
    report("softmax [B,12,197,197]", DEPTH, median_ms(lambda: torch.softmax(logits, -1), it))
    sdpa = lambda: F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, TOKENS, DIM)
    report("attention (sdpa + merge)", DEPTH, median_ms(sdpa, it))
    report("linear qkv 768->2304", DEPTH, median_ms(lambda: F.linear(x, blk.attn.qkv.weight, blk.attn.qkv.bias), it))
    report("linear proj 768->768", DEPTH, median_ms(lambda: F.linear(x, blk.attn.proj.weight, blk.attn.proj.bias), it))
    report("linear fc1 768->3072", DEPTH, median_ms(lambda: F.linear(x, blk.mlp.fc1.weight, blk.mlp.fc1.bias), it))
    report("fc1 + gelu", DEPTH, median_ms(lambda: F.gelu(F.linear(x, blk.mlp.fc1.weight, blk.mlp.fc1.bias)), it))
    report("linear fc2 3072->768", DEPTH, median_ms(lambda: F.linear(h, blk.mlp.fc2.weight, blk.mlp.fc2.bias), it))
    report("one block", DEPTH, median_ms(lambda: blk(x), it))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--ops", type=int, default=1, help="0: time only the full forward passes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import timm

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, timm {timm.__version__}")
    torch.manual_seed(0)
    model = timm.create_model("vit_base_patch16_224", pretrained=False).eval()
    blk = model.blocks[0]
    with torch.inference_mode():
        for b in (int(s) for s in args.batch.split(",")):
            print(f"\n== batch {b}: tokens {TOKENS}, M = {b * TOKENS} rows ==")
            if args.ops:
                time_ops(blk, b, args.iters)
            img = torch.randn(b, 3, 224, 224)
            ms = median_ms(lambda: model(img), args.iters)
            print(f"timm vit_base_patch16_224 forward (batch {b}): {ms:.1f} ms = {b / ms * 1e3:.2f} img/s")


if __name__ == "__main__":
    main()
