#!/usr/bin/env python3
"""Generate the image decode / resize / transform parity fixtures of biofm-preprocess.

Reference stack: Pillow 13.0.0, torchvision 0.29.2, open_clip 3.3.0, timm 1.0.31 (see
requirements.txt). Run on demand, never from tests:

    tools/reference/.venv/bin/python tools/reference/gen_image_fixtures.py

It derives a small zoo of input files from the real sample images in data/samples/
(crops, saved by Pillow in many formats and modes; a few PNG/TIFF variants that Pillow
cannot write are written by the small encoders below), then records what Pillow and
torchvision make of every input and of the full-size samples:

* `Image.open(...)` mode, size and pixels (`np.asarray`), `convert("RGB")` pixels, and
  the same after `ImageOps.exif_transpose` for files with an orientation tag;
* `Image.resize` with the six classic filters, down and up, odd sizes, all modes;
* the eval transforms of open_clip (`image_transform(is_train=False)`) and timm
  (`create_transform(is_training=False)` after `.convert("RGB")`): the uint8 image just
  before ToTensor, and rows of the final float32 tensor.

Small arrays are stored whole in expected.safetensors. Large uint8/uint16/int32/float32
outputs are stored as FNV-1a-64 digests of each block of 16 rows of their C-order
little-endian bytes (exact: any differing byte changes the digest of its block), so
the fixtures stay small while the tests still demand bit-identical results.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import open_clip
import PIL
import timm
import torch
import torchvision
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from PIL import Image, ImageOps
from safetensors.numpy import save_file
from timm.data import create_transform
from timm.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"
OUT = ROOT / "crates" / "biofm-preprocess" / "tests" / "fixtures" / "images"
INPUTS = OUT / "inputs"

BLOCK_ROWS = 16
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)

FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

tensors: dict[str, np.ndarray] = {}


# --------------------------------------------------------------------------- digests


def row_bytes(arr: np.ndarray) -> np.ndarray:
    """View an (H, ...) array as an (H, row_bytes) uint8 array of little-endian bytes."""
    a = np.ascontiguousarray(arr)
    if a.dtype.itemsize > 1:
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    return a.reshape(a.shape[0], -1).view(np.uint8).reshape(a.shape[0], -1)


def fnv1a64(mat: np.ndarray) -> np.ndarray:
    """FNV-1a 64 of each row of a 2-D uint8 array (vectorised over rows)."""
    h = np.full(mat.shape[0], FNV_OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(mat.shape[1]):
            h = (h ^ mat[:, j].astype(np.uint64)) * FNV_PRIME
    return h


def block_digests(arr: np.ndarray) -> list[str]:
    """FNV-1a 64 of the bytes of each block of BLOCK_ROWS rows, as 16 hex digits."""
    rows = row_bytes(arr)
    n_full = rows.shape[0] // BLOCK_ROWS
    hashes = list(fnv1a64(rows[: n_full * BLOCK_ROWS].reshape(n_full, -1))) if n_full else []
    if rows.shape[0] % BLOCK_ROWS:
        hashes += list(fnv1a64(rows[n_full * BLOCK_ROWS :].reshape(1, -1)))
    return [f"{int(h):016x}" for h in hashes]


def record_array(key: str, arr: np.ndarray, full: bool) -> dict:
    """Describe an expected array: whole in the tensor file, or as block digests."""
    desc = {"shape": list(arr.shape), "dtype": str(arr.dtype.newbyteorder("=").name)}
    if full:
        tensors[key] = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("=")))
        desc["tensor"] = key
    else:
        desc["blocks"] = block_digests(arr)
    return desc


def pil_array(im: Image.Image) -> np.ndarray:
    """Pixels of a PIL image in the layout biofm exposes (mode "1" as 0/255 bytes)."""
    a = np.asarray(im)
    if im.mode == "1":
        a = a.astype(np.uint8) * 255
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a


# --------------------------------------------------------------- hand-written encoders


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def pack_rows(arr: np.ndarray, bits: int) -> list[bytes]:
    """Pack an (H, W, C) integer array into PNG scanlines (no filter byte)."""
    h, w, c = arr.shape
    rows = []
    for y in range(h):
        row = arr[y]
        if bits == 16:
            rows.append(row.astype(">u2").tobytes())
        elif bits == 8:
            rows.append(row.astype(np.uint8).tobytes())
        else:
            assert c == 1
            vals = row[:, 0].astype(np.uint32)
            per = 8 // bits
            out = bytearray((w * bits + 7) // 8)
            for x, v in enumerate(vals):
                out[x // per] |= int(v) << (8 - bits * (x % per + 1))
            rows.append(bytes(out))
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path: Path, arr: np.ndarray, bits: int, color_type: int, plte=None, trns=None, interlace=False):
    """Minimal PNG encoder for layouts Pillow cannot save (16-bit colour, 2-bit, Adam7)."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    h, w, _ = arr.shape
    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = arr[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += b"".join(b"\0" + r for r in pack_rows(sub, bits))
    else:
        raw = b"".join(b"\0" + r for r in pack_rows(arr, bits))
    data = b"\x89PNG\r\n\x1a\n"
    data += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, color_type, 0, 0, int(interlace)))
    if plte is not None:
        data += png_chunk(b"PLTE", bytes(plte))
    if trns is not None:
        data += png_chunk(b"tRNS", bytes(trns))
    data += png_chunk(b"IDAT", zlib.compress(raw, 9))
    data += png_chunk(b"IEND", b"")
    path.write_bytes(data)


def write_tiff(path: Path, arr: np.ndarray, photometric: int, big_endian: bool, sample_format: int = 1, extra_samples=None):
    """Minimal single-strip uncompressed TIFF encoder (16-bit RGB, big-endian files,
    associated alpha)."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    h, w, spp = arr.shape
    e = ">" if big_endian else "<"
    pixel = arr.astype(arr.dtype.newbyteorder(e)).tobytes()
    bits = arr.dtype.itemsize * 8
    header_len = 8
    extra = b""
    extra_off = header_len + len(pixel)
    entries = []

    def short_list(tag, values):
        nonlocal extra
        if len(values) <= 2:
            payload = b"".join(struct.pack(e + "H", v) for v in values).ljust(4, b"\0")
            entries.append((tag, 3, len(values), payload))
        else:
            off = extra_off + len(extra)
            extra += b"".join(struct.pack(e + "H", v) for v in values)
            entries.append((tag, 3, len(values), struct.pack(e + "I", off)))

    def long1(tag, v):
        entries.append((tag, 4, 1, struct.pack(e + "I", v)))

    long1(256, w)
    long1(257, h)
    short_list(258, [bits] * spp)
    short_list(259, [1])
    short_list(262, [photometric])
    long1(273, header_len)
    short_list(277, [spp])
    long1(278, h)
    long1(279, len(pixel))
    short_list(284, [1])
    if extra_samples is not None:
        short_list(338, extra_samples)
    short_list(339, [sample_format] * spp)
    if len(extra) % 2:
        extra += b"\0"
    ifd_off = extra_off + len(extra)
    entries.sort()
    ifd = struct.pack(e + "H", len(entries))
    for tag, typ, count, payload in entries:
        ifd += struct.pack(e + "HHI", tag, typ, count) + payload
    ifd += struct.pack(e + "I", 0)
    head = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, ifd_off)
    path.write_bytes(head + pixel + extra + ifd)


# ---------------------------------------------------------------------------- the zoo


def alpha_ramp(w: int, h: int) -> np.ndarray:
    """A real alpha gradient with fully transparent and fully opaque columns."""
    x = np.linspace(-40, 300, w)[None, :] + np.linspace(0, 30, h)[:, None]
    return np.clip(x, 0, 255).astype(np.uint8)


def build_zoo() -> list[dict]:
    """Write the input files; return [{name, file}] in a stable order."""
    INPUTS.mkdir(parents=True, exist_ok=True)
    for f in INPUTS.iterdir():
        f.unlink()
    retina = Image.open(SAMPLES / "retina.jpg").convert("RGB")
    ihc = Image.open(SAMPLES / "ihc.png").convert("RGB")
    cell = Image.open(SAMPLES / "cell.png").convert("L")
    c_rgb = ihc.crop((200, 150, 261, 197))  # 61x47 immunohistochemistry
    c_ret = retina.crop((610, 520, 671, 567))  # 61x47 fundus (vessels)
    c_l = cell.crop((290, 240, 343, 281))  # 53x41 phase image
    h, w = c_rgb.height, c_rgb.width
    zoo = []

    def add(name, ext, save):
        path = INPUTS / f"{name}.{ext}"
        save(path)
        zoo.append({"name": name, "file": f"{name}.{ext}"})

    # JPEG: subsamplings, qualities, progressive, grey, CMYK (Adobe, inverted), EXIF.
    add("jpeg_444_q95", "jpg", lambda p: c_ret.save(p, quality=95, subsampling=0))
    add("jpeg_422_q90", "jpg", lambda p: c_ret.save(p, quality=90, subsampling=1))
    add("jpeg_420_q75", "jpg", lambda p: c_ret.save(p, quality=75, subsampling=2))
    add("jpeg_420_q30_ihc", "jpg", lambda p: c_rgb.save(p, quality=30, subsampling=2))
    add("jpeg_progressive", "jpg", lambda p: c_ret.save(p, quality=85, progressive=True))
    add("jpeg_grey", "jpg", lambda p: c_l.save(p, quality=90))
    add("jpeg_cmyk", "jpg", lambda p: c_rgb.convert("CMYK").save(p, quality=90))
    exif6 = Image.Exif()
    exif6[0x0112] = 6
    add("jpeg_exif6", "jpg", lambda p: c_ret.save(p, quality=90, exif=exif6.tobytes()))

    # PNG: every colour type Pillow opens, plus layouts only the hand encoder writes.
    rgba = c_rgb.copy()
    rgba.putalpha(Image.fromarray(alpha_ramp(w, h)))
    la = c_l.convert("LA")
    la.putalpha(Image.fromarray(alpha_ramp(c_l.width, c_l.height)))
    quant64 = c_rgb.quantize(64)
    add("png_rgb", "png", lambda p: c_rgb.save(p))
    add("png_rgba", "png", lambda p: rgba.save(p))
    add("png_la", "png", lambda p: la.save(p))
    add("png_l", "png", lambda p: c_l.save(p))
    add("png_p", "png", lambda p: quant64.save(p))
    trns = bytes(int(v) for v in np.linspace(0, 255, 64))
    add("png_p_trns", "png", lambda p: quant64.save(p, transparency=trns))
    add("png_p_trns1", "png", lambda p: quant64.save(p, transparency=5))
    add("png_p4", "png", lambda p: c_rgb.quantize(16).save(p, bits=4))
    add("png_1bit", "png", lambda p: c_l.convert("1").save(p))
    l16 = (np.asarray(c_l).astype(np.uint16) * 3 + 7).astype(np.uint16)
    add("png_l16", "png", lambda p: Image.fromarray(l16).save(p))
    add("png_l_trns", "png", lambda p: c_l.save(p, transparency=40))
    exif3 = Image.Exif()
    exif3[0x0112] = 3
    add("png_exif3", "png", lambda p: c_rgb.save(p, exif=exif3.tobytes()))
    rgb16 = (np.asarray(c_ret).astype(np.uint16) * 257 + np.arange(w, dtype=np.uint16)[None, :, None] * 3)
    add("png_rgb16", "png", lambda p: write_png(p, rgb16, 16, 2))
    rgba16 = np.concatenate([rgb16, (alpha_ramp(w, h).astype(np.uint16) * 257)[:, :, None]], axis=2)
    add("png_rgba16", "png", lambda p: write_png(p, rgba16, 16, 6))
    la16 = np.stack([l16 * 80, alpha_ramp(c_l.width, c_l.height).astype(np.uint16) * 257], axis=2)
    add("png_la16", "png", lambda p: write_png(p, la16, 16, 4))
    add("png_l2", "png", lambda p: write_png(p, np.asarray(c_l) >> 6, 2, 0))
    pal4 = np.asarray(c_rgb.quantize(4))
    plte4 = np.asarray(c_rgb.quantize(4).getpalette()[:12], dtype=np.uint8)
    add("png_p2", "png", lambda p: write_png(p, pal4, 2, 3, plte=plte4))
    add("png_interlaced", "png", lambda p: write_png(p, np.asarray(c_ret), 8, 2, interlace=True))

    # TIFF: 8/16-bit grey and RGB, float, int, compression, multi-page, orientation.
    f32 = (np.asarray(c_l).astype(np.float32) / 3.7 - 10.0) * 1.6
    i32 = np.asarray(c_l).astype(np.int32) * 3 - 200
    add("tiff_l8", "tif", lambda p: c_l.save(p))
    add("tiff_l16", "tif", lambda p: Image.fromarray(l16).save(p))
    add("tiff_rgb8_lzw", "tif", lambda p: c_rgb.save(p, compression="tiff_lzw"))
    add("tiff_rgb8_deflate", "tif", lambda p: c_ret.save(p, compression="tiff_adobe_deflate"))
    add("tiff_f32", "tif", lambda p: Image.fromarray(f32).save(p))
    add("tiff_i32", "tif", lambda p: Image.fromarray(i32).save(p))
    add("tiff_rgba", "tif", lambda p: rgba.save(p))
    add("tiff_cmyk", "tif", lambda p: c_rgb.convert("CMYK").save(p))
    add("tiff_p", "tif", lambda p: quant64.save(p))
    add("tiff_rgb16", "tif", lambda p: write_tiff(p, rgb16, 2, big_endian=False))
    add("tiff_l16_be", "tif", lambda p: write_tiff(p, l16, 1, big_endian=True))
    add("tiff_1bit", "tif", lambda p: c_l.convert("1").save(p))
    rgba_np = np.asarray(rgba).astype(np.uint16)
    premul = np.concatenate([rgba_np[:, :, :3] * rgba_np[:, :, 3:] // 255, rgba_np[:, :, 3:]], axis=2).astype(np.uint8)
    add("tiff_rgba_assoc", "tif", lambda p: write_tiff(p, premul, 2, big_endian=False, extra_samples=[1]))
    add("tiff_multipage", "tif", lambda p: c_rgb.save(p, save_all=True, append_images=[c_ret]))
    add("tiff_exif6", "tif", lambda p: c_ret.save(p, tiffinfo={274: 6}))

    # BMP: 24-bit, 8-bit palette, 8-bit grey palette (opens as L), 1-bit, 32-bit.
    add("bmp_rgb", "bmp", lambda p: c_rgb.save(p))
    add("bmp_p", "bmp", lambda p: quant64.save(p))
    add("bmp_l", "bmp", lambda p: c_l.save(p))
    add("bmp_1", "bmp", lambda p: c_l.convert("1").save(p))
    add("bmp_rgba", "bmp", lambda p: rgba.save(p))
    # A real 7x7 crop for the tiny resize cases.
    add("png_tiny", "png", lambda p: ihc.crop((100, 300, 107, 307)).save(p))
    return zoo


SAMPLE_FILES = ["retina.jpg", "ihc.png", "cell.png", "microaneurysms.png"]

# Inputs Pillow opens but biofm refuses with a clear "unsupported" error (the tiff crate
# cannot read palette TIFFs); their records say so and the tests check the error.
UNSUPPORTED = {"tiff_p.tif"}


def open_input(ref: str) -> Image.Image:
    path = SAMPLES / ref.split(":", 1)[1] if ref.startswith("sample:") else INPUTS / ref
    im = Image.open(path)
    im.load()
    return im


# --------------------------------------------------------------------------- records


def decode_records(zoo: list[dict]) -> list[dict]:
    recs = []
    refs = [z["file"] for z in zoo] + [f"sample:{s}" for s in SAMPLE_FILES]
    for ref in refs:
        im = open_input(ref)
        small = not ref.startswith("sample:")
        key = ref.replace(":", "_")
        rec = {"input": ref, "mode": im.mode, "size": list(im.size)}
        if ref in UNSUPPORTED:
            rec["error"] = "unsupported"
            recs.append(rec)
            continue
        if im.mode != "RGB":
            rec["pixels"] = record_array(f"decode/{key}/pixels", pil_array(im), small)
        rec["rgb"] = record_array(f"decode/{key}/rgb", pil_array(im.convert("RGB")), small)
        orientation = im.getexif().get(0x0112, 1)
        if orientation != 1:
            t = ImageOps.exif_transpose(im)
            rec["exif_orientation"] = orientation
            rec["transposed"] = {
                "mode": t.mode,
                "size": list(t.size),
                "rgb": record_array(f"decode/{key}/transposed_rgb", pil_array(t.convert("RGB")), True),
            }
        recs.append(rec)
    return recs


def resize_records() -> list[dict]:
    cases = []

    def case(ref, size, filters, full=False):
        im = open_input(ref)
        for fname in filters:
            out = im.resize(size, FILTERS[fname])
            key = f"resize/{ref.replace(':', '_')}/{size[0]}x{size[1]}/{fname}"
            cases.append(
                {
                    "input": ref,
                    "size": list(size),
                    "filter": fname,
                    "mode": out.mode,
                    "out": record_array(key, pil_array(out), full),
                }
            )

    every = list(FILTERS)
    case("sample:retina.jpg", (224, 224), every)  # 1411 -> 224, RGB
    case("sample:ihc.png", (333, 333), every)  # 512 -> 333
    case("sample:ihc.png", (200, 380), every)  # down in x, up in y
    case("sample:microaneurysms.png", (224, 224), every)  # 102 -> 224, L, upscale
    case("sample:cell.png", (600, 100), every)  # height first (Pillow 13 pass order)
    case("sample:cell.png", (97, 541), every)  # width only, odd
    case("png_tiny.png", (3, 3), every, full=True)  # 7 -> 3
    case("png_tiny.png", (11, 5), every, full=True)
    # Every mode: premultiplied alpha, 16-bit, 32-bit int and float, CMYK, palette, 1.
    for ref in [
        "png_rgba.png",
        "png_la.png",
        "png_l16.png",
        "tiff_l16_be.tif",
        "tiff_f32.tif",
        "tiff_i32.tif",
        "tiff_cmyk.tif",
        "png_p.png",
        "png_1bit.png",
        "jpeg_grey.jpg",
    ]:
        case(ref, (37, 29), every)
        case(ref, (83, 101), every)
        case(ref, (61, 12), ["bilinear", "nearest"])  # vertical pass first
    return cases


def make_pipelines(size_ok: bool = True) -> dict:
    """name -> (params for the Rust constructor, transform callable, prefix length)."""
    oc = lambda size, interp, mode: open_clip.transform.image_transform(  # noqa: E731
        size, is_train=False, mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD, resize_mode=mode, interpolation=interp
    )
    tm = lambda size, crop_pct, interp, crop_mode: create_transform(  # noqa: E731
        input_size=(3, size, size),
        is_training=False,
        interpolation=interp,
        crop_pct=crop_pct,
        crop_mode=crop_mode,
        mean=IMAGENET_DEFAULT_MEAN,
        std=IMAGENET_DEFAULT_STD,
    )
    openai = {"mean": list(OPENAI_DATASET_MEAN), "std": list(OPENAI_DATASET_STD)}
    imagenet = {"mean": list(IMAGENET_DEFAULT_MEAN), "std": list(IMAGENET_DEFAULT_STD)}
    return {
        "open_clip_224_bicubic": (
            {"kind": "open_clip", "size": 224, "interpolation": "bicubic", "resize_mode": "shortest", **openai},
            oc(224, "bicubic", "shortest"),
            False,
        ),
        "uni_timm_224_bilinear": (
            {"kind": "timm", "size": 224, "crop_pct": 1.0, "interpolation": "bilinear", "crop_mode": "center", **imagenet},
            tm(224, 1.0, "bilinear", "center"),
            True,
        ),
        "open_clip_448_bicubic": (
            {"kind": "open_clip", "size": 448, "interpolation": "bicubic", "resize_mode": "shortest", **openai},
            oc(448, "bicubic", "shortest"),
            False,
        ),
        "squash_480_bicubic": (
            {"kind": "open_clip", "size": 480, "interpolation": "bicubic", "resize_mode": "squash", **imagenet},
            open_clip.transform.image_transform(
                480, is_train=False, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, resize_mode="squash"
            ),
            False,
        ),
        "open_clip_224_longest": (
            {"kind": "open_clip", "size": 224, "interpolation": "bilinear", "resize_mode": "longest", **openai},
            oc(224, "bilinear", "longest"),
            False,
        ),
        "timm_224_default": (
            {"kind": "timm", "size": 224, "crop_pct": 0.875, "interpolation": "bicubic", "crop_mode": "center", **imagenet},
            tm(224, 0.875, "bicubic", "center"),
            True,
        ),
        "timm_224_border": (
            {"kind": "timm", "size": 224, "crop_pct": 0.95, "interpolation": "bilinear", "crop_mode": "border", **imagenet},
            tm(224, 0.95, "bilinear", "border"),
            True,
        ),
    }


def transform_records(zoo: list[dict]) -> list[dict]:
    pipes = make_pipelines()
    recs = []
    refs = [f"sample:{s}" for s in SAMPLE_FILES] + [
        z["file"] for z in zoo if z["name"] != "png_tiny" and z["file"] not in UNSUPPORTED
    ]
    for ref in refs:
        for pname, (params, tf, convert_first) in pipes.items():
            real = ref.startswith("sample:")
            if not real and pname in ("timm_224_default", "timm_224_border"):
                continue
            im = open_input(ref)
            if convert_first:
                im = im.convert("RGB")
            ops = tf.transforms
            pre = im
            for t in ops[:-2]:
                pre = t(pre)
            assert pre.mode == "RGB", (ref, pname, pre.mode)
            u8 = np.asarray(pre)
            final = tf(im).numpy()
            ours = torch.from_numpy(u8.transpose(2, 0, 1).copy()).float().div(255)
            assert final.shape == tuple(ours.shape)
            key = f"transform/{ref.replace(':', '_')}/{pname}"
            rec = {"input": ref, "pipeline": pname, "u8": record_array(key + "/u8", u8, False)}
            if real:
                hh = final.shape[1]
                rows = [0, hh // 2, hh - 1]
                rec["f32_rows"] = rows
                rec["f32"] = record_array(key + "/f32_rows", final[:, rows, :], True)
            recs.append(rec)
    return recs, {k: v[0] for k, v in pipes.items()}


def main() -> None:
    torch.set_num_threads(1)
    zoo = build_zoo()
    decode = decode_records(zoo)
    resize = resize_records()
    transforms, pipelines = transform_records(zoo)
    manifest = {
        "generator": "tools/reference/gen_image_fixtures.py",
        "versions": {
            "pillow": PIL.__version__,
            "torchvision": torchvision.__version__,
            "open_clip": open_clip.__version__,
            "timm": timm.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "digest": {"algorithm": "fnv1a64", "block_rows": BLOCK_ROWS},
        "zoo": zoo,
        "decode": decode,
        "resize": resize,
        "pipelines": pipelines,
        "transforms": transforms,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    for name, write in [
        ("expected.json", lambda p: p.write_text(json.dumps(manifest, indent=1) + "\n")),
        ("expected.safetensors", lambda p: save_file(tensors, str(p))),
    ]:
        fd, tmp = tempfile.mkstemp(dir=OUT, prefix=f".{name}.")
        os.close(fd)
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, OUT / name)
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {len(zoo)} inputs, {len(decode)} decode, {len(resize)} resize, "
          f"{len(transforms)} transform records; {total / 1024:.0f} KiB in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
