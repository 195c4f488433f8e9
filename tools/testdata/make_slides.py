#!/usr/bin/env python3
"""Build small whole-slide-image test files from real tissue pixels.

No real whole-slide image ships in any package registry the project can reach, so the
test slides are assembled from `data/samples/ihc.png` (512x512 RGB immunohistochemistry,
from the scikit-image 0.26.0 wheel; see data/README.md): copies of it, some mirrored or
rotated and cut into round "cores", are placed on a flat near-white background and
written as pyramidal TIFF files by the small TIFF/BigTIFF writer below, which gives full
control of the layout (IFD order, JPEGTables, SubIFDs, Aperio descriptions).

Only numpy and Pillow are needed (pinned in requirements.txt next to this file):
JPEG tiles are encoded by Pillow's bundled libjpeg-turbo, deflate by zlib, LZW by the
encoder below. The output is deterministic: no timestamps, fixed UUIDs, fixed garbage.

    python make_slides.py OUT_DIR [--ihc PATH]

writes into OUT_DIR (each file written as NAME.partial, then renamed):

    tiled_jpeg.tif   generic pyramidal TIFF, 3000x2200, 256x256 JPEG (YCbCr 4:2:0, q90,
                     shared JPEGTables), levels 1/4/16 in the main IFD chain, 0.5 um/px
                     (ResolutionUnit inch)
    aperio.svs       Aperio SVS: 240x240 JPEG (q70) level 0, stripped JPEG thumbnail,
                     levels 4/16, LZW label, JPEG macro; MPP/AppMag in ImageDescription
    ome.ome.tif      OME-TIFF, 1500x1100, deflate + horizontal predictor, levels 1/2/4
                     in SubIFDs, PhysicalSizeX/Y 0.25 um in the OME-XML only
    bigtiff_lzw.tif  BigTIFF, 1200x900, 128x128 LZW tiles, levels 1/2
    tiled_raw.tif    uncompressed, 1000x700, 512x512 tiles, levels 1/2, 0.25 um/px (cm)
    no_mpp.tif       700x500 single-level 256x256 JPEG, no resolution tags, no description
    truncated.svs    aperio.svs cut in the middle of the level-0 tile data
    corrupt_tile.tif tiled_jpeg.tif with two level-0 tiles damaged (see CORRUPT_TILES)
    manifest.json    structure notes and the SHA-256 of every file above
    SHA256SUMS       the same digests in `sha256sum -c` format
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

import numpy as np
from PIL import Image

IHC_SHA256 = "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef"
BACKGROUND = (243, 241, 244)
CANVAS_W, CANVAS_H = 3000, 2200

# (x, y, transform, mask) of each tissue copy on the level-0 canvas. The positions are
# deliberately not tile-aligned; the last core runs past the right and bottom edges.
CORES = [
    (137, 211, "none", "ellipse"),
    (801, 95, "fliplr", "ellipse"),
    (1460, 340, "rot90", "square"),
    (2190, 170, "flipud", "ellipse"),
    (390, 1130, "transpose", "ellipse"),
    (1105, 1290, "rot180", "ellipse"),
    (1830, 1050, "none", "square"),
    (2640, 1790, "fliplr", "ellipse"),
]

# Tiles of corrupt_tile.tif (level 0, column, row): the first is replaced by garbage
# whole, the second keeps its JPEG headers and gets garbage entropy-coded data.
CORRUPT_TILES = {"whole": (3, 2), "scan": (6, 4)}

# TIFF tag numbers used below
NEW_SUBFILE_TYPE, IMAGE_WIDTH, IMAGE_LENGTH, BITS_PER_SAMPLE = 254, 256, 257, 258
COMPRESSION, PHOTOMETRIC, IMAGE_DESCRIPTION, STRIP_OFFSETS = 259, 262, 270, 273
SAMPLES_PER_PIXEL, ROWS_PER_STRIP, STRIP_BYTE_COUNTS = 277, 278, 279
X_RESOLUTION, Y_RESOLUTION, PLANAR_CONFIG, RESOLUTION_UNIT = 282, 283, 284, 296
SOFTWARE, PREDICTOR = 305, 317
TILE_WIDTH, TILE_LENGTH, TILE_OFFSETS, TILE_BYTE_COUNTS, SUB_IFDS = 322, 323, 324, 325, 330
JPEG_TABLES, YCBCR_SUBSAMPLING, REFERENCE_BLACK_WHITE = 347, 530, 532

ASCII, SHORT, LONG, RATIONAL, UNDEFINED, LONG8 = 2, 3, 4, 5, 7, 16
IFD_TYPE, IFD8_TYPE = 13, 18
TYPE_SIZE = {ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8, UNDEFINED: 1, LONG8: 8,
             IFD_TYPE: 4, IFD8_TYPE: 8}


# --------------------------------------------------------------------------- pixels

def load_ihc(path: str | None) -> np.ndarray:
    if path is None or not os.path.exists(path):
        path = fetch_ihc_from_wheel()
    with open(path, "rb") as f:
        raw = f.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != IHC_SHA256:
        sys.exit(f"error: {path} has SHA-256 {digest}, want {IHC_SHA256}")
    img = Image.open(io.BytesIO(raw)).convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    assert arr.shape == (512, 512, 3), arr.shape
    return arr


def fetch_ihc_from_wheel() -> str:
    tmp = tempfile.mkdtemp(prefix="ihc-")
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    "--only-binary", ":all:", "-d", tmp, "scikit-image==0.26.0"],
                   check=True)
    whl = glob.glob(os.path.join(tmp, "scikit_image-0.26.0-*.whl"))[0]
    out = os.path.join(tmp, "ihc.png")
    with zipfile.ZipFile(whl) as z, open(out, "wb") as f:
        f.write(z.read("skimage/data/ihc.png"))
    return out


def transform(a: np.ndarray, how: str) -> np.ndarray:
    return {
        "none": a,
        "fliplr": a[:, ::-1],
        "flipud": a[::-1, :],
        "rot90": np.rot90(a, 1),
        "rot180": a[::-1, ::-1],
        "transpose": a.transpose(1, 0, 2),
    }[how]


def core_mask(n: int, kind: str, index: int) -> np.ndarray:
    if kind == "square":
        return np.ones((n, n), dtype=bool)
    # Integer ellipse test on doubled pixel-centre coordinates (exact, no floats).
    rx, ry = 2 * (250 - 7 * index), 2 * (236 - 5 * index)
    c = 2 * np.arange(n, dtype=np.int64) + 1 - n
    dx, dy = c[None, :], c[:, None]
    return (dx * ry) ** 2 + (dy * rx) ** 2 <= (rx * ry) ** 2


def make_canvas(ihc: np.ndarray) -> np.ndarray:
    canvas = np.empty((CANVAS_H, CANVAS_W, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    for i, (x, y, how, mask_kind) in enumerate(CORES):
        tile = np.ascontiguousarray(transform(ihc, how))
        mask = core_mask(512, mask_kind, i)
        w = min(512, CANVAS_W - x)
        h = min(512, CANVAS_H - y)
        region = canvas[y:y + h, x:x + w]
        m = mask[:h, :w]
        region[m] = tile[:h, :w][m]
    return canvas


def downsample(img: np.ndarray, f: int) -> np.ndarray:
    """Box filter by an integer factor with round-half-up; the size is floored."""
    h, w = img.shape[0] // f, img.shape[1] // f
    a = img[:h * f, :w * f].astype(np.uint32).reshape(h, f, w, f, img.shape[2])
    s = a.sum(axis=(1, 3))
    return ((s + (f * f) // 2) // (f * f)).astype(np.uint8)


def tiles_of(img: np.ndarray, tw: int, th: int):
    """Yield the tiles of img in TIFF order, edge tiles padded by edge replication."""
    h, w = img.shape[:2]
    for ty in range(0, h, th):
        for tx in range(0, w, tw):
            t = img[ty:ty + th, tx:tx + tw]
            if t.shape[0] != th or t.shape[1] != tw:
                t = np.pad(t, ((0, th - t.shape[0]), (0, tw - t.shape[1]), (0, 0)),
                           mode="edge")
            yield np.ascontiguousarray(t)


# --------------------------------------------------------------------------- codecs

def jpeg_full(img: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, "JPEG", quality=quality, subsampling=2,
                                     optimize=False, progressive=False)
    return buf.getvalue()


def jpeg_segments(data: bytes):
    """Split a baseline JPEG into (marker, segment bytes) up to and including SOS; the
    rest (entropy-coded data + EOI) is returned as a final (None, bytes) entry."""
    assert data[:2] == b"\xff\xd8"
    pos, out = 2, []
    while True:
        assert data[pos] == 0xFF, pos
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        out.append((marker, data[pos:pos + 2 + length]))
        pos += 2 + length
        if marker == 0xDA:  # SOS
            out.append((None, data[pos:]))
            return out


def jpeg_tiles_with_tables(tiles, quality: int):
    """Encode tiles as abbreviated JPEG streams (SOI SOF SOS data EOI) and return
    (JPEGTables = SOI DQT DHT EOI, [tile streams]); all tiles must share their tables."""
    tables, streams = None, []
    for t in tiles:
        segs = jpeg_segments(jpeg_full(t, quality))
        tbl = b"".join(s for m, s in segs if m in (0xDB, 0xC4))
        if tables is None:
            tables = tbl
        elif tbl != tables:
            raise RuntimeError("JPEG tiles do not share quantisation/Huffman tables")
        body = b"".join(s for m, s in segs if m not in (0xDB, 0xC4, 0xE0))
        streams.append(b"\xff\xd8" + body)
    return b"\xff\xd8" + tables + b"\xff\xd9", streams


def lzw_encode(data: bytes) -> bytes:
    """TIFF LZW (MSB-first codes, 9-12 bits, early change), as libtiff writes it."""
    out = bytearray()
    acc, nacc = 0, 0
    width = 9

    def put(code: int) -> None:
        nonlocal acc, nacc
        acc = (acc << width) | code
        nacc += width
        while nacc >= 8:
            nacc -= 8
            out.append((acc >> nacc) & 0xFF)
        acc &= (1 << nacc) - 1

    put(256)
    if not data:
        put(257)
    else:
        table: dict[int, int] = {}
        next_code = 258
        code = data[0]
        for c in data[1:]:
            key = (code << 8) | c
            hit = table.get(key)
            if hit is not None:
                code = hit
                continue
            put(code)
            table[key] = next_code
            next_code += 1
            if next_code == 4094:
                put(256)
                table.clear()
                next_code, width = 258, 9
            elif next_code > (1 << width) - 1:
                width += 1
            code = c
        put(code)
        next_code += 1
        if next_code == 4094:
            width = 9
        elif next_code > (1 << width) - 1:
            width += 1
        put(257)
    if nacc:
        out.append((acc << (8 - nacc)) & 0xFF)
    return bytes(out)


def predict_horizontal(t: np.ndarray) -> np.ndarray:
    d = t.astype(np.int16)
    d[:, 1:] -= t[:, :-1].astype(np.int16)
    return (d & 0xFF).astype(np.uint8)


def deflate(b: bytes) -> bytes:
    return zlib.compress(b, 6)


# --------------------------------------------------------------------------- TIFF writer

class Ifd:
    def __init__(self, tags, segments, tiled, subifds=()):
        self.tags = dict(tags)  # tag -> (type, values)
        self.segments = list(segments)
        self.tiled = tiled
        self.subifds = list(subifds)


def encode_value(typ: int, values, big: bool) -> bytes:
    e = "<"
    if typ in (ASCII, UNDEFINED):
        return bytes(values)
    if typ == RATIONAL:
        return b"".join(struct.pack(e + "II", n, d) for n, d in values)
    fmt = {SHORT: "H", LONG: "I", LONG8: "Q", IFD_TYPE: "I", IFD8_TYPE: "Q"}[typ]
    return struct.pack(e + fmt * len(values), *values)


def value_count(typ: int, values) -> int:
    return len(values)


def write_tiff(path: str, ifds: list[Ifd], big: bool = False) -> dict:
    """Write a little-endian TIFF (or BigTIFF). All IFDs and their out-of-line values come
    first (main chain in order, each followed by its SubIFDs), then all image data in
    the same order. Returns the byte ranges of each IFD's segment data."""
    entry_size, count_size, off_size = (20, 8, 8) if big else (12, 2, 4)
    off_type = LONG8 if big else LONG
    order: list[Ifd] = []
    for ifd in ifds:
        order.append(ifd)
        order.extend(ifd.subifds)
    for ifd in order:  # placeholders so that sizes are known
        n = len(ifd.segments)
        otag = (TILE_OFFSETS, TILE_BYTE_COUNTS) if ifd.tiled else (STRIP_OFFSETS, STRIP_BYTE_COUNTS)
        ifd.tags[otag[0]] = (off_type, [0] * n)
        ifd.tags[otag[1]] = (off_type, [len(s) for s in ifd.segments])
        if ifd.subifds:
            ifd.tags[SUB_IFDS] = (IFD8_TYPE if big else IFD_TYPE, [0] * len(ifd.subifds))

    def ifd_size(ifd: Ifd) -> int:
        size = count_size + entry_size * len(ifd.tags) + off_size
        for typ, vals in ifd.tags.values():
            n = TYPE_SIZE[typ] * value_count(typ, vals)
            if n > off_size:
                size += n + (n & 1)
        return size

    header = 16 if big else 8
    pos = header
    ifd_off = {}
    for ifd in order:
        ifd_off[id(ifd)] = pos
        pos += ifd_size(ifd)
        pos += pos & 1
    data_start = pos
    seg_ranges = {}
    for ifd in order:
        offs = []
        start = pos
        for s in ifd.segments:
            offs.append(pos)
            pos += len(s)
        seg_ranges[id(ifd)] = (start, pos)
        otag = TILE_OFFSETS if ifd.tiled else STRIP_OFFSETS
        ifd.tags[otag] = (off_type, offs)
        if ifd.subifds:
            ifd.tags[SUB_IFDS] = (ifd.tags[SUB_IFDS][0], [ifd_off[id(s)] for s in ifd.subifds])
    if not big and pos >= 1 << 32:
        raise RuntimeError("file too large for classic TIFF")

    buf = bytearray()
    if big:
        buf += b"II" + struct.pack("<HHHQ", 43, 8, 0, ifd_off[id(ifds[0])])
    else:
        buf += b"II" + struct.pack("<HI", 42, ifd_off[id(ifds[0])])
    chain_next = {}
    for i, ifd in enumerate(ifds):
        chain_next[id(ifd)] = ifd_off[id(ifds[i + 1])] if i + 1 < len(ifds) else 0
    for ifd in ifds:
        for s in ifd.subifds:
            chain_next[id(s)] = 0
    for ifd in order:
        start = ifd_off[id(ifd)]
        assert len(buf) == start, (len(buf), start)
        tags = sorted(ifd.tags.items())
        extra_pos = start + count_size + entry_size * len(tags) + off_size
        entries, extra = bytearray(), bytearray()
        entries += struct.pack("<Q" if big else "<H", len(tags))
        for tag, (typ, vals) in tags:
            raw = encode_value(typ, vals, big)
            cnt = value_count(typ, vals)
            if len(raw) <= off_size:
                field = raw + b"\0" * (off_size - len(raw))
            else:
                field = struct.pack("<Q" if big else "<I", extra_pos + len(extra))
                extra += raw
                if len(extra) & 1:
                    extra += b"\0"
            entries += struct.pack("<HHQ" if big else "<HHI", tag, typ, cnt) + field
        entries += struct.pack("<Q" if big else "<I", chain_next[id(ifd)])
        buf += entries + extra
        if len(buf) & 1:
            buf += b"\0"
    assert len(buf) == data_start
    for ifd in order:
        for s in ifd.segments:
            buf += s
    with open(path + ".partial", "wb") as f:
        f.write(buf)
    os.replace(path + ".partial", path)
    return {"data_start": data_start, "size": len(buf),
            "segments": [seg_ranges[id(ifd)] for ifd in order]}


def ascii_tag(s: str):
    return (ASCII, list(s.encode("utf-8") + b"\0"))


def base_tags(w: int, h: int, compression: int, photometric: int, tile=None,
              rows_per_strip=None, subfile=None):
    t = {
        IMAGE_WIDTH: (LONG, [w]),
        IMAGE_LENGTH: (LONG, [h]),
        BITS_PER_SAMPLE: (SHORT, [8, 8, 8]),
        COMPRESSION: (SHORT, [compression]),
        PHOTOMETRIC: (SHORT, [photometric]),
        SAMPLES_PER_PIXEL: (SHORT, [3]),
        PLANAR_CONFIG: (SHORT, [1]),
    }
    if subfile is not None:
        t[NEW_SUBFILE_TYPE] = (LONG, [subfile])
    if tile:
        t[TILE_WIDTH] = (SHORT, [tile[0]])
        t[TILE_LENGTH] = (SHORT, [tile[1]])
    if rows_per_strip:
        t[ROWS_PER_STRIP] = (LONG, [rows_per_strip])
    return t


def jpeg_tiled_ifd(img, tile, quality, subfile=None, extra=None):
    tables, streams = jpeg_tiles_with_tables(tiles_of(img, *tile), quality)
    tags = base_tags(img.shape[1], img.shape[0], 7, 6, tile=tile, subfile=subfile)
    tags[JPEG_TABLES] = (UNDEFINED, list(tables))
    tags[YCBCR_SUBSAMPLING] = (SHORT, [2, 2])
    tags[REFERENCE_BLACK_WHITE] = (RATIONAL, [(0, 1), (255, 1), (128, 1), (255, 1), (128, 1), (255, 1)])
    tags.update(extra or {})
    return Ifd(tags, streams, tiled=True)


def jpeg_stripped_ifd(img, quality, subfile=None, extra=None):
    """One strip holding a complete JPEG stream (its own tables, no JPEGTables tag)."""
    tags = base_tags(img.shape[1], img.shape[0], 7, 6, rows_per_strip=img.shape[0],
                     subfile=subfile)
    tags[YCBCR_SUBSAMPLING] = (SHORT, [2, 2])
    tags[REFERENCE_BLACK_WHITE] = (RATIONAL, [(0, 1), (255, 1), (128, 1), (255, 1), (128, 1), (255, 1)])
    tags.update(extra or {})
    return Ifd(tags, [jpeg_full(img, quality)], tiled=False)


def lossless_tiled_ifd(img, tile, compression, predictor=1, subfile=None, extra=None):
    segs = []
    for t in tiles_of(img, *tile):
        if predictor == 2:
            t = predict_horizontal(t)
        raw = t.tobytes()
        segs.append({1: lambda b: b, 5: lzw_encode, 8: deflate}[compression](raw))
    tags = base_tags(img.shape[1], img.shape[0], compression, 2, tile=tile, subfile=subfile)
    if predictor != 1:
        tags[PREDICTOR] = (SHORT, [predictor])
    tags.update(extra or {})
    return Ifd(tags, segs, tiled=True)


def lzw_stripped_ifd(img, rows_per_strip, subfile=None, extra=None):
    segs = [lzw_encode(img[y:y + rows_per_strip].tobytes())
            for y in range(0, img.shape[0], rows_per_strip)]
    tags = base_tags(img.shape[1], img.shape[0], 5, 2, rows_per_strip=rows_per_strip,
                     subfile=subfile)
    tags.update(extra or {})
    return Ifd(tags, segs, tiled=False)


def resolution(per_unit: int, unit: int):
    return {X_RESOLUTION: (RATIONAL, [(per_unit, 1)]),
            Y_RESOLUTION: (RATIONAL, [(per_unit, 1)]),
            RESOLUTION_UNIT: (SHORT, [unit])}


# --------------------------------------------------------------------------- slides

def aperio_description(head: str, props: bool) -> str:
    s = "Aperio Image Library v12.0.15 \r\n" + head
    if props:
        s += ("|AppMag = 20|StripeWidth = 1000|ScanScope ID = SS0000|Filename = biofm-ihc"
              "|Date = 01/02/25|Time = 12:00:00|Time Zone = GMT+00:00"
              "|User = 00000000-0000-0000-0000-000000000000|MPP = 0.5|Left = 25.0"
              "|Top = 18.0|LineCameraSkew = 0.000000|LineAreaXOffset = 0.000000"
              "|LineAreaYOffset = 0.000000|Focus Offset = 0.000000|ImageID = 1"
              "|OriginalWidth = 3000|OriginalHeight = 2200|Filtered = 3"
              "|Exposure Time = 109|Exposure Scale = 0.000001|Gamma = 2.2")
    return s


def make_label() -> np.ndarray:
    lab = np.full((120, 160, 3), 250, dtype=np.uint8)
    widths = [2, 1, 3, 1, 2, 2, 1, 3, 1, 1, 2, 3, 1, 2, 1, 1, 3, 2, 1, 2, 1, 3, 2, 1, 1, 2]
    x = 14
    for i, w in enumerate(widths):
        if i % 2 == 0:
            lab[20:70, x:x + 2 * w] = 20
        x += 2 * w + 1
    lab[85:100, 14:146] = (40, 60, 150)
    return lab


def make_macro(canvas: np.ndarray) -> np.ndarray:
    macro = np.empty((184, 400, 3), dtype=np.uint8)
    macro[:] = (205, 208, 212)
    small = downsample(canvas, 16)  # 137 x 187
    macro[20:20 + small.shape[0], 180:180 + small.shape[1]] = small
    macro[30:154, 20:150] = (236, 236, 230)
    return macro


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def garbage(n: int, seed: bytes) -> bytes:
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(seed + i.to_bytes(4, "little")).digest()
        i += 1
    return bytes(out[:n])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--ihc", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "..", "..", "data", "samples", "ihc.png"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    out = lambda name: os.path.join(args.out, name)  # noqa: E731

    ihc = load_ihc(args.ihc)
    canvas = make_canvas(ihc)
    l4, l16 = downsample(canvas, 4), downsample(canvas, 16)
    notes = {}

    # tiled_jpeg.tif: generic pyramidal TIFF, levels in the main IFD chain
    res_inch = resolution(50800, 2)  # 50800 px/inch = 0.5 um/px
    ifds = [jpeg_tiled_ifd(canvas, (256, 256), 90, extra=res_inch),
            jpeg_tiled_ifd(l4, (256, 256), 90, subfile=1, extra=res_inch),
            jpeg_tiled_ifd(l16, (256, 256), 90, subfile=1, extra=res_inch)]
    layout = write_tiff(out("tiled_jpeg.tif"), ifds)
    jpeg_ifd0 = ifds[0]
    notes["tiled_jpeg.tif"] = "levels 3000x2200, 750x550, 187x137 in the main IFD chain"

    # corrupt_tile.tif: same bytes with two level-0 tiles damaged
    with open(out("tiled_jpeg.tif"), "rb") as f:
        buf = bytearray(f.read())
    across = -(-CANVAS_W // 256)
    offs, counts = jpeg_ifd0.tags[TILE_OFFSETS][1], jpeg_ifd0.tags[TILE_BYTE_COUNTS][1]
    col, row = CORRUPT_TILES["whole"]
    i = row * across + col
    buf[offs[i]:offs[i] + counts[i]] = garbage(counts[i], b"whole")
    col, row = CORRUPT_TILES["scan"]
    i = row * across + col
    tile = bytes(buf[offs[i]:offs[i] + counts[i]])
    scan = tile.index(b"\xff\xda")
    scan += 2 + struct.unpack(">H", tile[scan + 2:scan + 4])[0]
    junk = bytes(b if b != 0xFF else 0x5A for b in garbage(counts[i] - scan - 2, b"scan"))
    buf[offs[i] + scan:offs[i] + counts[i] - 2] = junk
    with open(out("corrupt_tile.tif") + ".partial", "wb") as f:
        f.write(buf)
    os.replace(out("corrupt_tile.tif") + ".partial", out("corrupt_tile.tif"))
    notes["corrupt_tile.tif"] = (
        f"tiled_jpeg.tif with level-0 tile (col {CORRUPT_TILES['whole'][0]}, row "
        f"{CORRUPT_TILES['whole'][1]}) replaced by garbage and tile (col "
        f"{CORRUPT_TILES['scan'][0]}, row {CORRUPT_TILES['scan'][1]}) keeping its headers "
        "(SOI SOF SOS) and EOI but with garbage entropy-coded data (no 0xFF bytes)")

    # aperio.svs
    thumb = downsample(canvas, 8)  # 375 x 275
    tile = (240, 240)
    ifds = [
        jpeg_tiled_ifd(canvas, tile, 70, extra={IMAGE_DESCRIPTION: ascii_tag(aperio_description(
            "3000x2200 [0,0 3000x2200] (240x240) JPEG/RGB Q=70", True))}),
        jpeg_stripped_ifd(thumb, 90, extra={IMAGE_DESCRIPTION: ascii_tag(aperio_description(
            "3000x2200 -> 375x275 - ", True))}),
        jpeg_tiled_ifd(l4, tile, 70, extra={IMAGE_DESCRIPTION: ascii_tag(aperio_description(
            "3000x2200 [0,0 3000x2200] (240x240) -> 750x550 JPEG/RGB Q=70", False))}),
        jpeg_tiled_ifd(l16, tile, 70, extra={IMAGE_DESCRIPTION: ascii_tag(aperio_description(
            "3000x2200 [0,0 3000x2200] (240x240) -> 187x137 JPEG/RGB Q=70", False))}),
        lzw_stripped_ifd(make_label(), 16, subfile=1, extra={
            IMAGE_DESCRIPTION: ascii_tag("Aperio Image Library v12.0.15 \r\nlabel 160x120")}),
        jpeg_stripped_ifd(make_macro(canvas), 90, subfile=9, extra={
            IMAGE_DESCRIPTION: ascii_tag("Aperio Image Library v12.0.15 \r\nmacro 400x184")}),
    ]
    layout = write_tiff(out("aperio.svs"), ifds)
    notes["aperio.svs"] = ("IFD0 level 0 (tiled), IFD1 thumbnail (stripped), IFD2-3 levels "
                           "750x550 and 187x137 (tiled), IFD4 label (LZW, NewSubfileType 1), "
                           "IFD5 macro (JPEG, NewSubfileType 9)")

    # truncated.svs: cut in the middle of the level-0 tile data
    start, end = layout["segments"][0]
    cut = (start + end) // 2
    with open(out("aperio.svs"), "rb") as f:
        head = f.read(cut)
    with open(out("truncated.svs") + ".partial", "wb") as f:
        f.write(head)
    os.replace(out("truncated.svs") + ".partial", out("truncated.svs"))
    notes["truncated.svs"] = (f"first {cut} bytes of aperio.svs (level-0 tile data spans "
                              f"bytes {start}..{end}; all IFDs precede it)")

    # ome.ome.tif: deflate + predictor, pyramid in SubIFDs, mpp only in the OME-XML
    ome = canvas[1000:2100, 1000:2500]
    ome2, ome4 = downsample(ome, 2), downsample(ome, 4)
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.openmicroscopy.org/Schemas/OME/2016-06 '
        'http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd" '
        'UUID="urn:uuid:6a1c2f7e-0b7d-4b55-9a0e-6d3e2c1f9b10" Creator="biofm make_slides.py">'
        '<Image ID="Image:0" Name="ihc">'
        f'<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="{ome.shape[1]}" '
        f'SizeY="{ome.shape[0]}" SizeC="3" SizeZ="1" SizeT="1" Interleaved="true" '
        'SignificantBits="8" PhysicalSizeX="0.25" PhysicalSizeXUnit="\u00b5m" '
        'PhysicalSizeY="0.25" PhysicalSizeYUnit="\u00b5m">'
        '<Channel ID="Channel:0:0" SamplesPerPixel="3"><LightPath/></Channel>'
        '<TiffData FirstC="0" FirstT="0" FirstZ="0" IFD="0" PlaneCount="1">'
        '<UUID FileName="ome.ome.tif">urn:uuid:6a1c2f7e-0b7d-4b55-9a0e-6d3e2c1f9b10</UUID>'
        '</TiffData></Pixels></Image></OME>')
    subs = [lossless_tiled_ifd(ome2, (256, 256), 8, predictor=2, subfile=1),
            lossless_tiled_ifd(ome4, (256, 256), 8, predictor=2, subfile=1)]
    main_ifd = lossless_tiled_ifd(ome, (256, 256), 8, predictor=2, subfile=0,
                                  extra={IMAGE_DESCRIPTION: ascii_tag(xml)})
    main_ifd.subifds = subs
    write_tiff(out("ome.ome.tif"), [main_ifd])
    notes["ome.ome.tif"] = ("canvas[1000:2100, 1000:2500]; one main IFD (1500x1100) with "
                            "SubIFDs 750x550 and 375x275")

    # bigtiff_lzw.tif
    bt = canvas[300:1200, 600:1800]
    ifds = [lossless_tiled_ifd(bt, (128, 128), 5, extra=resolution(20000, 3)),
            lossless_tiled_ifd(downsample(bt, 2), (128, 128), 5, subfile=1,
                               extra=resolution(20000, 3))]
    write_tiff(out("bigtiff_lzw.tif"), ifds, big=True)
    notes["bigtiff_lzw.tif"] = "canvas[300:1200, 600:1800]; levels 1200x900, 600x450"

    # tiled_raw.tif
    raw = canvas[1150:1850, 250:1250]
    ifds = [lossless_tiled_ifd(raw, (512, 512), 1, extra=resolution(40000, 3)),
            lossless_tiled_ifd(downsample(raw, 2), (512, 512), 1, subfile=1,
                               extra=resolution(40000, 3))]
    write_tiff(out("tiled_raw.tif"), ifds)
    notes["tiled_raw.tif"] = "canvas[1150:1850, 250:1250]; levels 1000x700, 500x350"

    # no_mpp.tif
    nm = canvas[100:600, 700:1400]
    write_tiff(out("no_mpp.tif"), [jpeg_tiled_ifd(nm, (256, 256), 85)])
    notes["no_mpp.tif"] = "canvas[100:600, 700:1400]; one level, JPEG q85"

    names = ["tiled_jpeg.tif", "aperio.svs", "ome.ome.tif", "bigtiff_lzw.tif",
             "tiled_raw.tif", "truncated.svs", "corrupt_tile.tif", "no_mpp.tif"]
    files = {n: {"sha256": sha256_file(out(n)), "size": os.path.getsize(out(n)),
                 "note": notes[n]} for n in names}
    manifest = {
        "generator": "tools/testdata/make_slides.py",
        "source": {"file": "ihc.png (scikit-image 0.26.0 skimage/data/ihc.png)",
                   "sha256": IHC_SHA256},
        "canvas": {"width": CANVAS_W, "height": CANVAS_H, "background": list(BACKGROUND),
                   "cores": [{"x": x, "y": y, "transform": t, "mask": m}
                             for x, y, t, m in CORES]},
        "libraries": {"numpy": np.__version__, "Pillow": Image.__version__},
        "files": files,
    }
    with open(out("manifest.json") + ".partial", "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(out("manifest.json") + ".partial", out("manifest.json"))
    with open(out("SHA256SUMS") + ".partial", "w") as f:
        for n in names + ["manifest.json"]:
            f.write(f"{sha256_file(out(n))}  {n}\n")
    os.replace(out("SHA256SUMS") + ".partial", out("SHA256SUMS"))
    total = sum(v["size"] for v in files.values())
    print(f"wrote {len(names)} slides ({total / 1e6:.1f} MB) to {args.out}")


if __name__ == "__main__":
    main()
