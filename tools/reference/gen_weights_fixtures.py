#!/usr/bin/env python3
"""Writes the checkpoint fixtures used by crates/biofm-weights/tests.

Run on demand (tests never run it):

    tools/reference/.venv/bin/python tools/reference/gen_weights_fixtures.py

Every checkpoint is written by the real `torch.save` (zip and legacy formats), except a few
deliberately damaged or re-packed archives derived from them (zip64 records, a deflated
storage, a missing storage, tensors pointing outside their storage). The reference values
go to `expected.safetensors`, written by the `safetensors` package: raw tensors under
`<fixture>.<key>` and torch's own dtype conversions under `as_<dtype>.<key>`, so the Rust
tests compare bit-exactly against what PyTorch produces.
"""

import argparse
import os
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "biofm-weights" / "tests" / "fixtures"

GEN = torch.Generator().manual_seed(20240611)


def rn(*shape, dtype=torch.float32, scale=3.0):
    return (torch.randn(*shape, generator=GEN) * scale).to(dtype)


def write_atomic(path: Path, write):
    """Calls `write(tmp_path)`, then renames the temporary file onto `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def torch_save(obj, name, **kwargs):
    # Saving through a file object names the zip archive "archive", as torch does for
    # streams, instead of after the temporary file.
    def w(tmp):
        with open(tmp, "wb") as f:
            torch.save(obj, f, **kwargs)

    write_atomic(OUT / name, w)


def write_bytes(name, data: bytes):
    def w(tmp):
        with open(tmp, "wb") as f:
            f.write(data)

    write_atomic(OUT / name, w)


def zip_entries(name):
    with zipfile.ZipFile(OUT / name) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def rezip(entries, compress_storages=False):
    """Re-packs archive entries with Python's zipfile (storages optionally deflated)."""
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, data in entries:
            deflate = compress_storages and "/data/" in n
            z.writestr(n, data, compress_type=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    return buf.getvalue()


def zip64_archive(entries):
    """Writes a stored zip whose central directory records every size and offset in zip64
    extra fields (0xFFFFFFFF in the 32-bit slots), followed by zip64 end records: the layout
    torch uses for checkpoints over 4 GiB, at fixture size."""
    out = bytearray()
    central = bytearray()
    for n, data in entries:
        name = n.encode()
        crc = zlib.crc32(data)
        offset = len(out)
        local_extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        # Pad (with an unknown extra block, as torch does) so the data starts 64-aligned.
        pad = (-(offset + 30 + len(name) + len(local_extra) + 4)) % 64
        local_extra += struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(local_extra)
        )
        out += name + local_extra + data
        extra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
            len(name), len(extra), 0, 0, 0, 0, 0xFFFFFFFF,
        )
        central += name + extra
    cd_offset = len(out)
    out += central
    eocd64_offset = len(out)
    count = len(entries)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, len(central), cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, eocd64_offset, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return bytes(out)


def patch_pickle(name, out_name, old: bytes, new: bytes):
    """Copies archive `name` with one byte pattern in data.pkl replaced (same length)."""
    entries = []
    for n, data in zip_entries(name):
        if n.endswith("/data.pkl"):
            assert data.count(old) == 1, (out_name, data)
            data = data.replace(old, new)
        entries.append((n, data))
    write_bytes(out_name, rezip(entries))


def plain_state_dict():
    base = rn(4, 6)
    # Python attributes make torch pickle these through `_rebuild_parameter_with_state`
    # and `torch._tensor._rebuild_from_type_v2`.
    param_state = nn.Parameter(rn(2, 3))
    param_state.note = "has state"
    tensor_attr = rn(3)
    tensor_attr.note = "has an attribute"
    f64 = torch.tensor(
        [
            # Rounding twice (f64 -> f32 -> f16/bf16, as torch does) differs from rounding
            # once for these: a tie broken by a bit f32 drops, and a value just below a tie
            # that f32 rounds onto the tie (which then goes to even, upwards).
            1 + 2**-11 + 2**-40,
            -(1 + 2**-8 + 2**-40),
            1 + 2**-10 + 2**-11 - 2**-30,
            -(1 + 2**-7 + 2**-8 - 2**-30),
            1 + 2**-24 + 2**-50,  # f32 tie broken by a low bit
            3.141592653589793,
            -2.5e-8,
            70000.5,  # overflows f16
            -0.0,
            123456.789,
        ],
        dtype=torch.float64,
    )
    return {
        "f32": rn(3, 4),
        "f16": rn(5, dtype=torch.float16),
        "bf16": rn(2, 3, dtype=torch.bfloat16),
        "f64": f64,
        # The last three round differently when rounded twice: the first through f64 to f32
        # (torch rounds once), the others directly to bf16 (torch goes through f32).
        "i64": torch.tensor(
            [0, -1, 2**53 + 1, -(2**62) + 3, 123456789012345, 7, 65535, -129,
             2**62 + 2**38 + 1, 2**24 + 2**16 + 1, 2**24 + 2**17 + 2**16 - 1],
            dtype=torch.int64,
        ),
        "i32": torch.tensor([0, -5, 2**31 - 1, -(2**31), 70000, 2**24 + 2**16 + 1, 2**24 + 2**17 + 2**16 - 1], dtype=torch.int32),
        "i16": torch.tensor([1, -2, 32767, -32768], dtype=torch.int16),
        "i8": torch.tensor([0, -128, 127, 5], dtype=torch.int8),
        "u8": torch.tensor([0, 1, 200, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True, True]),
        # A transposed view saved as is: shape (5, 3), strides (1, 5).
        "transposed": rn(3, 5).t(),
        # Views of one storage `base` at different offsets and strides.
        "shared_row": base[1],
        "shared_block": base[2:4, 1:5],
        "strided": base[:, ::2],
        # Broadcast view: stride 0.
        "expanded": rn(3).expand(4, 3),
        "scalar": torch.tensor(2.75),
        "empty": torch.zeros(0, 3),
        "param": nn.Parameter(rn(2, 2)),
        "param_state": param_state,
        "tensor_attr": tensor_attr,
    }


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.norm = nn.LayerNorm(3)
        self.attn = nn.MultiheadAttention(4, 2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(rn(*p.shape))


def scgpt_style_key(k):
    """The key rules the Rust test applies, written out: DataParallel prefix, flash-attn
    names mapped to nn.MultiheadAttention ones (scGPT `load_pretrained`)."""
    k = k.removeprefix("module.")
    k = k.replace("self_attn._impl.", "self_attn.")
    k = k.replace("self_attn.Wqkv.", "self_attn.in_proj_")
    return k


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    expected = {}

    def expect(prefix, sd):
        for k, v in sd.items():
            if isinstance(v, torch.Tensor):
                expected[f"{prefix}.{k}"] = v.detach().contiguous().clone()

    # 1. A plain state dict in every dtype and layout, zip and legacy formats, plus the same
    # tensors as safetensors.
    plain = plain_state_dict()
    torch_save(plain, "plain.bin")
    torch_save(plain, "legacy.pt", _use_new_zipfile_serialization=False)
    contiguous = {k: v.detach().contiguous().clone() for k, v in plain.items()}
    write_atomic(OUT / "plain.safetensors", lambda tmp: save_file(contiguous, tmp))
    expect("plain", plain)
    floats = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
    ints = [torch.int64, torch.int32, torch.int16, torch.uint8]
    names = {
        torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16", torch.float64: "f64",
        torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.uint8: "u8",
    }
    for k, v in contiguous.items():
        # Float sources convert to floats and (truncating, values in range) to int64; integer
        # and bool sources convert to everything (integer narrowing wraps).
        targets = floats + ([torch.int64] if v.dtype.is_floating_point else ints)
        for t in targets:
            expected[f"as_{names[t]}.{k}"] = v.to(t)

    # Pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE); torch.load needs
    # weights_only=False for it (its restricted unpickler lacks FRAME).
    small = {"a": rn(2, 3), "b": rn(3, dtype=torch.float16), "c": torch.arange(4)}
    torch_save(small, "proto4.bin", pickle_protocol=4)
    expect("small", small)

    # 2. A training checkpoint: {"state_dict": DataParallel keys, "epoch", "args", optimizer
    # state (tensors under int keys), numpy values}.
    sg = {
        "encoder.layers.0.self_attn.Wqkv.weight": rn(12, 4),
        "encoder.layers.0.self_attn.Wqkv.bias": rn(12),
        "encoder.layers.0.self_attn._impl.out_proj.weight": rn(4, 4),
        "encoder.layers.1.self_attn._impl.Wqkv.weight": rn(12, 4),
        "text.transformer.embeddings.position_ids": torch.arange(8).unsqueeze(0),
        "norm.weight": rn(4),
        "norm.num_batches_tracked": torch.tensor(7),
    }
    lin = nn.Linear(2, 2)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)
    lin(torch.ones(1, 2)).sum().backward()
    opt.step()
    ckpt = {
        "state_dict": {f"module.{k}": v for k, v in sg.items()},
        "epoch": 3,
        "args": argparse.Namespace(lr=1e-4, layers=[1, 2], name="scgpt", amp=True),
        "optimizer": opt.state_dict(),
        "best_metric": np.float64(0.93),
        "bins": np.arange(3, dtype=np.int32),
    }
    torch_save(ckpt, "wrapped_state_dict.pt")
    expect("wrapped", {scgpt_style_key(f"module.{k}"): v for k, v in sg.items()})

    # 3. {"model": ...} with `model.`-prefixed keys and a non-tensor entry inside.
    model_sd = {"model.head.weight": rn(2, 3), "model.head.bias": rn(2), "model.version": 2}
    torch_save({"model": model_sd, "step": 10, "config": {"hidden": 3, "names": ["x"]}}, "wrapped_model.pth")
    expect("model", {k.removeprefix("model."): v for k, v in model_sd.items()})

    # 4. Two levels of wrappers; "teacher" is listed before "student".
    teacher = {"backbone.w": rn(2, 2), "backbone.b": rn(2)}
    student = {"backbone.w": rn(2, 2), "backbone.b": rn(2)}
    torch_save({"student": {"module": student}, "teacher": {"module": teacher}, "epoch": 2}, "nested.pt")
    expect("teacher", teacher)

    # 5. A real module's state dict (OrderedDict with `_metadata`), and the module itself.
    tiny = Tiny()
    torch_save(tiny.state_dict(), "module.pt")
    expect("module", tiny.state_dict())
    torch_save(tiny, "whole_module.pt")

    # 6. dtypes saved through `_rebuild_tensor_v3` + UntypedStorage.
    new = {
        "u16": torch.tensor([0, 1, 40000, 65535], dtype=torch.uint16),
        "u32": torch.tensor([0, 7, 3_000_000_000], dtype=torch.uint32),
        "u64": torch.tensor([0, 9, 2**63 + 5], dtype=torch.uint64),
    }
    torch_save(new, "new_dtypes.bin")
    for k, v in new.items():
        expected[f"new.{k}"] = v.clone()
        # Exact integers all the way through int64 (the u64 value wraps, as in torch's cast).
        expected[f"new_as_i64.{k}"] = v.view(torch.int64) if v.dtype == torch.uint64 else v.to(torch.int64)
    torch_save({"f8": torch.tensor([0.5, 1.0]).to(torch.float8_e4m3fn)}, "float8.bin")

    # 7. Re-packed archives.
    write_bytes("zip64.bin", zip64_archive(zip_entries("proto4.bin")))
    assert all(torch.equal(torch.load(OUT / "zip64.bin", weights_only=False)[k], v) for k, v in small.items())
    write_bytes("compressed.bin", rezip(zip_entries("proto4.bin"), compress_storages=True))
    write_bytes("missing_storage.bin", rezip([e for e in zip_entries("proto4.bin") if not e[0].endswith("/data/1")]))

    # 8. Tensors pointing outside their storage: {"x": arange(6.)} with size, offset, stride
    # or the storage itself damaged.
    torch_save({"x": torch.arange(6.0)}, "six.bin")
    # data.pkl of that file: ... BINPERSID, BININT1 offset 0, BININT1 6, TUPLE1 (size),
    # BININT1 1, TUPLE1 (stride) ...
    patch_pickle("six.bin", "oob_size.bin", b"QK\x00K\x06\x85", b"QK\x00K\x07\x85")
    patch_pickle("six.bin", "oob_offset.bin", b"QK\x00K\x06\x85", b"QK\x01K\x06\x85")
    patch_pickle("six.bin", "oob_stride.bin", b"K\x01\x85q", b"K\x02\x85q")
    entries = zip_entries("six.bin")
    write_bytes("short_storage.bin", rezip([(n, d[:-4] if n.endswith("/data/0") else d) for n, d in entries]))
    os.remove(OUT / "six.bin")

    write_atomic(OUT / "expected.safetensors", lambda tmp: save_file(expected, tmp))
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total} bytes, {len(expected)} expected tensors")


if __name__ == "__main__":
    main()
