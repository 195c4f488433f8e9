#!/usr/bin/env python3
"""Record what OpenSlide and tifffile make of the generated whole-slide test images.

Reference stack: openslide-python 1.4.7 with openslide-bin 4.0.1.2 (OpenSlide 4.0.1,
libtiff 4.7.1, libjpeg-turbo 3.1.4.1 bundled), tifffile 2026.3.3 + imagecodecs 2026.3.6,
Pillow 13.0.0 (see requirements.txt). Run on demand, never from tests:

    scripts/fetch-test-data.sh      # builds data/downloads/slides/ (make_slides.py)
    tools/reference/.venv/bin/python tools/reference/gen_wsi_fixtures.py [SLIDES_DIR] [OUT_DIR]

The slides themselves are not committed: they are rebuilt bit-identically by
tools/testdata/make_slides.py, whose manifest SHA-256 is stored in expected.json so a
test can tell when the slides differ from the ones these fixtures were made from.

Writes into crates/biofm-wsi/tests/fixtures/wsi/ (or OUT_DIR):

* expected.json, per slide:
  - "tifffile": the IFD structure (main chain and SubIFDs, tags that matter, tile
    counts, JPEGTables length/SHA-256), series and flags as tifffile reports them;
  - "openslide": vendor, levels, downsamples, properties, best level for a few
    downsamples, associated images (size and SHA-256 of their RGBA bytes), or the
    error message (paths reduced to the file name) for slides that do not open;
  - "reads": read_region(location, level, size) calls with the SHA-256 of the RGBA
    bytes (row-major, 4 bytes a pixel, not premultiplied), sample pixels
    [x, y, r, g, b, a], and for small regions the file holding every byte
    (regions/*.rgba, raw RGBA); for the damaged slides each read is made on a freshly
    opened slide, and the error message is stored instead where OpenSlide fails;
  - "checks": cross-checks made here: OpenSlide's whole levels against Pillow's
    decode of each JPEG tile (JPEGTables + tile stream), and against the pixels that
    make_slides.py wrote (lossless slides);
* thumbnail_aperio.png: `OpenSlide.get_thumbnail((256, 256))` of aperio.svs (RGB).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import openslide
import tifffile
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SLIDES = ["tiled_jpeg.tif", "aperio.svs", "ome.ome.tif", "bigtiff_lzw.tif",
          "tiled_raw.tif", "no_mpp.tif", "truncated.svs", "corrupt_tile.tif"]
BEST_LEVEL_FOR = [0.5, 1, 2, 3.9, 4, 4.5, 8, 15.9, 16, 16.1, 32, 1000]
TAGS = ["NewSubfileType", "ImageWidth", "ImageLength", "BitsPerSample", "Compression",
        "PhotometricInterpretation", "SamplesPerPixel", "PlanarConfiguration",
        "TileWidth", "TileLength", "RowsPerStrip", "XResolution", "YResolution",
        "ResolutionUnit", "Predictor", "YCbCrSubSampling", "ReferenceBlackWhite"]


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def load_make_slides():
    path = ROOT / "tools" / "testdata" / "make_slides.py"
    spec = importlib.util.spec_from_file_location("make_slides", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return {"len": len(v), "sha256": sha(bytes(v))}
    if isinstance(v, tuple):
        return [jsonable(x) for x in v]
    if hasattr(v, "value") and hasattr(v, "name"):  # enum
        return int(v.value)
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


def describe_page(page) -> dict:
    d = {"offset": page.offset, "shape": list(page.shape), "dtype": str(page.dtype),
         "tiled": bool(page.is_tiled), "compression": page.compression.name,
         "photometric": page.photometric.name, "is_reduced": bool(page.is_reduced),
         "segments": len(page.dataoffsets),
         "data_bytes": int(sum(page.databytecounts))}
    if page.is_tiled:
        d["tile"] = [page.tilewidth, page.tilelength]
    tags = {}
    for name in TAGS:
        t = page.tags.get(name)
        if t is not None:
            tags[name] = jsonable(t.value)
    jt = page.tags.get("JPEGTables")
    d["jpeg_tables"] = None if jt is None else {"len": len(jt.value), "sha256": sha(jt.value)}
    desc = page.tags.get("ImageDescription")
    if desc is not None:
        tags["ImageDescription"] = desc.value
    d["tags"] = tags
    d["first_segment"] = [int(page.dataoffsets[0]), int(page.databytecounts[0])]
    if page.subifds:
        d["subifd_offsets"] = [int(o) for o in page.subifds]
    return d


def describe_tiff(path: str) -> dict:
    with tifffile.TiffFile(path) as tf:
        pages = []
        for page in tf.pages:
            d = describe_page(page)
            if page.subifds:
                subs = []
                for off in page.subifds:
                    tf.filehandle.seek(off)
                    subs.append(describe_page(tifffile.TiffPage(tf, index=0)))
                d["subifds"] = subs
            pages.append(d)
        return {
            "byteorder": tf.byteorder, "bigtiff": bool(tf.is_bigtiff),
            "flags": sorted(f for f in ("svs", "ome", "bigtiff", "shaped", "generic")
                            if getattr(tf, "is_" + f, False)),
            "pages": pages,
            "series": [{"name": s.name, "kind": s.kind, "shape": list(s.shape),
                        "axes": s.axes,
                        "levels": [list(l.shape) for l in s.levels]} for s in tf.series],
        }


def clean_msg(e: Exception, path: str) -> str:
    return str(e).replace(os.path.dirname(path) + os.sep, "")


def region_rgba(slide, loc, level, size) -> np.ndarray:
    img = slide.read_region(loc, level, size)
    assert img.mode == "RGBA"
    return np.asarray(img, dtype=np.uint8)


def sample_points(w: int, h: int):
    pts = [(0, 0), (w - 1, h - 1), (w // 2, h // 2), (w // 3, (2 * h) // 3),
           (min(w - 1, 7), h // 5), (w - 1, 0), (0, h - 1)]
    out = []
    for p in pts:
        if p not in out:
            out.append(p)
    return out


# A level-0 point inside tissue of each slide (where reads that should show tissue go).
FOCUS = {"tiled_jpeg.tif": (1700, 600), "aperio.svs": (1700, 600),
         "corrupt_tile.tif": (1700, 600), "ome.ome.tif": (1000, 300),
         "bigtiff_lzw.tif": (1000, 300), "tiled_raw.tif": (400, 250),
         "no_mpp.tif": (357, 251)}


def plan_reads(dims, downsamples, tile, focus) -> list[dict]:
    """About a dozen read_region calls plus one whole-level read per level."""
    W, H = dims[0]
    tw, th = tile
    fx, fy = focus
    R = []

    def add(name, loc, level, size, full=False):
        R.append({"name": name, "location": [int(loc[0]), int(loc[1])], "level": level,
                  "size": [int(size[0]), int(size[1])], "full": full})

    # the inner tile corner nearest the focus
    cx, cy = max(1, round(fx / tw)) * tw, max(1, round(fy / th)) * th
    add("origin_l0", (0, 0), 0, (32, 32), True)                          # background
    add("tile_corner_l0", (cx - 16, cy - 16), 0, (32, 32), True)         # 4 tiles
    add("tile_row_l0", (cx - tw - 5, cy + 7), 0, (tw + 10, 40))          # 3 tiles
    add("tissue_l0", (fx - 150, fy - 101), 0, (301, 203))
    add("edge_l0", (W - 40, H - 30), 0, (100, 80))                       # partly outside
    add("edge_corner_l0", (W - 16, H - 16), 0, (32, 32), True)
    add("outside_l0", (W + 10, H + 10), 0, (16, 16))
    add("negative_l0", (-10, -6), 0, (32, 32), True)
    for k in range(1, len(dims)):
        ds = downsamples[k]
        Wk, Hk = dims[k]
        ids = int(round(ds))
        add(f"origin_l{k}", (0, 0), k, (min(Wk, 300), min(Hk, 200)))
        if abs(ds - ids) < 1e-9:
            add(f"aligned_l{k}", (fx // ids * ids, fy // ids * ids), k, (32, 32), True)
        add(f"fractional_l{k}", (fx | 1, fy | 1), k, (32, 32), True)
        add(f"edge_l{k}", (int((Wk - 20) * ds), int((Hk - 12) * ds)), k, (48, 40))
    last = len(dims) - 1
    add(f"beyond_last_l{last}", (0, 0), last, (dims[last][0] + 8, dims[last][1] + 8))
    for k in range(len(dims)):
        add(f"whole_l{k}", (0, 0), k, dims[k])
    return R


def do_read(slide, r, out_dir: Path, slide_name: str) -> dict:
    a = region_rgba(slide, tuple(r["location"]), r["level"], tuple(r["size"]))
    h, w = a.shape[:2]
    res = {"sha256": sha(a.tobytes()),
           "samples": [[x, y] + [int(v) for v in a[y, x]] for x, y in sample_points(w, h)],
           "transparent_pixels": int((a[..., 3] == 0).sum()),
           "opaque_pixels": int((a[..., 3] == 255).sum())}
    if r["full"]:
        fname = f"regions/{slide_name.split('.')[0]}__{r['name']}.rgba"
        (out_dir / fname).write_bytes(a.tobytes())
        res["file"] = fname
    return res


def jpeg_level_via_pillow(path: str, page_index: int) -> np.ndarray:
    """Decode a JPEG-tiled level tile by tile with Pillow (JPEGTables + tile stream)."""
    with tifffile.TiffFile(path) as tf:
        page = tf.pages[page_index]
        tables = page.tags["JPEGTables"].value
        H, W = page.shape[:2]
        tw, th = page.tilewidth, page.tilelength
        out = np.zeros((-(-H // th) * th, -(-W // tw) * tw, 3), dtype=np.uint8)
        fh = tf.filehandle
        across = -(-W // tw)
        for i, (off, cnt) in enumerate(zip(page.dataoffsets, page.databytecounts)):
            fh.seek(off)
            data = fh.read(cnt)
            stream = tables[:-2] + data[2:]
            img = Image.open(io.BytesIO(stream))
            a = np.asarray(img.convert("RGB"))
            ty, tx = divmod(i, across)
            out[ty * th:(ty + 1) * th, tx * tw:(tx + 1) * tw] = a
        return out[:H, :W]


def openslide_info(slide) -> dict:
    props = dict(slide.properties)
    return {
        "vendor": props.get("openslide.vendor"),
        "level_count": slide.level_count,
        "level_dimensions": [list(d) for d in slide.level_dimensions],
        "level_downsamples": list(slide.level_downsamples),
        "mpp_x": props.get("openslide.mpp-x"),
        "mpp_y": props.get("openslide.mpp-y"),
        "objective_power": props.get("openslide.objective-power"),
        "properties": dict(sorted(props.items())),
        "best_level_for_downsample": [[d, slide.get_best_level_for_downsample(d)]
                                      for d in BEST_LEVEL_FOR],
        "associated_images": {
            k: {"size": list(v.size), "mode": v.mode,
                "sha256_rgba": sha(np.asarray(v.convert("RGBA")).tobytes())}
            for k, v in sorted(slide.associated_images.items())},
    }


def main() -> None:
    slides_dir = Path(sys.argv[1] if len(sys.argv) > 1 else
                      os.path.join(os.environ.get("BIOFM_TEST_DATA",
                                                  ROOT / "data" / "downloads"), "slides"))
    out_dir = Path(sys.argv[2] if len(sys.argv) > 2 else
                   ROOT / "crates" / "biofm-wsi" / "tests" / "fixtures" / "wsi")
    (out_dir / "regions").mkdir(parents=True, exist_ok=True)
    for old in (out_dir / "regions").glob("*.rgba"):
        old.unlink()
    manifest_raw = (slides_dir / "manifest.json").read_bytes()
    manifest = json.loads(manifest_raw)
    for name in SLIDES:
        got = sha((slides_dir / name).read_bytes())
        if got != manifest["files"][name]["sha256"]:
            sys.exit(f"error: {name} does not match its manifest entry")

    ms = load_make_slides()
    ihc = ms.load_ihc(str(ROOT / "data" / "samples" / "ihc.png"))
    canvas = ms.make_canvas(ihc)
    # The pixels make_slides.py wrote into the lossless slides, level by level.
    lossless_truth = {
        "ome.ome.tif": [canvas[1000:2100, 1000:2500]],
        "bigtiff_lzw.tif": [canvas[300:1200, 600:1800]],
        "tiled_raw.tif": [canvas[1150:1850, 250:1250]],
    }
    lossless_truth["bigtiff_lzw.tif"].append(ms.downsample(lossless_truth["bigtiff_lzw.tif"][0], 2))
    lossless_truth["tiled_raw.tif"].append(ms.downsample(lossless_truth["tiled_raw.tif"][0], 2))

    expected = {
        "generator": "tools/reference/gen_wsi_fixtures.py",
        "slides_manifest_sha256": sha(manifest_raw),
        "slides": {n: manifest["files"][n]["sha256"] for n in SLIDES},
        "versions": {"openslide": openslide.__library_version__,
                     "openslide_python": openslide.__version__,
                     "tifffile": tifffile.__version__,
                     "Pillow": Image.__version__, "numpy": np.__version__},
        "notes": [
            "RGBA bytes are row-major, 4 bytes a pixel, not premultiplied; pixels outside "
            "the level (and the padding of edge tiles) read as 0,0,0,0",
            "read_region location is in level-0 pixels; OpenSlide divides it by the level "
            "downsample as a double and paints tiles through cairo, so a location that is "
            "not a multiple of the downsample gives bilinear-interpolated pixels "
            "(fractional_l* reads; pixman's bilinear filter, within 1 of a bilinear with "
            "7-bit weights and rounding, not exactly reproducible without pixman's code)",
            "JPEG tiles (Photometric YCbCr or RGB, 8-bit, 3 samples, contiguous) are decoded "
            "by OpenSlide itself with libjpeg-turbo, not through libtiff: jpeg_read_header on "
            "JPEGTables (tables only), then on the tile stream; jpeg_color_space = YCbCr "
            "(RGB for Photometric RGB); libjpeg defaults otherwise (JDCT_ISLOW, fancy "
            "upsampling on); output BGRA; any libjpeg warning is turned into an error. "
            "Pillow's decode of JPEGTables+tile gives the same pixels (checks.*)",
            "other compressions (LZW, deflate, none) and stripped associated images go "
            "through libtiff's TIFFRGBAImage",
            "level downsample = (w0/wk + h0/hk) / 2; best level for downsample d = the "
            "largest level whose downsample <= d (level 0 when d < 1)",
            "after any failed read an OpenSlide handle stays in error: every later call "
            "fails; damaged-slide reads are made on a freshly opened slide each",
        ],
        "per_slide": {},
    }

    for name in SLIDES:
        path = str(slides_dir / name)
        entry = {"tifffile": describe_tiff(path)}
        try:
            slide = openslide.OpenSlide(path)
        except Exception as e:  # noqa: BLE001
            entry["openslide"] = {"error": clean_msg(e, path),
                                  "error_type": type(e).__name__,
                                  "detect_format": openslide.OpenSlide.detect_format(path)}
            expected["per_slide"][name] = entry
            print(f"{name}: open fails: {entry['openslide']['error']}")
            continue
        info = openslide_info(slide)
        entry["openslide"] = info
        tile = (int(info["properties"]["openslide.level[0].tile-width"]),
                int(info["properties"]["openslide.level[0].tile-height"]))
        plan = plan_reads(info["level_dimensions"], info["level_downsamples"], tile,
                          FOCUS[name])
        damaged = name == "corrupt_tile.tif"
        if damaged:
            ct = ms.CORRUPT_TILES
            plan = [r for r in plan if r["level"] == 0 and r["name"] in
                    ("origin_l0", "tile_corner_l0", "whole_l0")]
            for key, (c, r_) in ct.items():
                plan.append({"name": f"bad_tile_{key}", "location": [c * 256 + 100, r_ * 256 + 50],
                             "level": 0, "size": [32, 32], "full": False})
                plan.append({"name": f"around_bad_tile_{key}",
                             "location": [c * 256 - 10, r_ * 256 - 10], "level": 0,
                             "size": [276, 276], "full": False})
            plan.append({"name": "level1_over_bad_tiles", "location": [0, 0], "level": 1,
                         "size": [750, 550], "full": False})
        reads = []
        for r in plan:
            if damaged:
                slide = openslide.OpenSlide(path)
            rec = {k: r[k] for k in ("name", "location", "level", "size")}
            try:
                rec.update(do_read(slide, r, out_dir, name))
            except openslide.OpenSlideError as e:
                rec["error"] = clean_msg(e, path)
            reads.append(rec)
        if damaged:
            # the error is sticky: a good read after a bad one fails too
            slide = openslide.OpenSlide(path)
            c, r_ = ms.CORRUPT_TILES["whole"]
            sticky = {}
            try:
                slide.read_region((c * 256, r_ * 256), 0, (8, 8))
            except openslide.OpenSlideError as e:
                sticky["first"] = clean_msg(e, path)
            try:
                slide.read_region((0, 0), 0, (8, 8))
                sticky["then_good_region"] = "ok"
            except openslide.OpenSlideError as e:
                sticky["then_good_region"] = clean_msg(e, path)
            entry["sticky_error"] = sticky
        entry["reads"] = reads

        # cross-checks
        checks = {}
        slide = openslide.OpenSlide(path)
        if name in ("tiled_jpeg.tif", "aperio.svs", "no_mpp.tif"):
            tf_levels = [0, 1, 2] if name == "tiled_jpeg.tif" else ([0, 2, 3] if name == "aperio.svs" else [0])
            for k, pi in enumerate(tf_levels):
                dims = info["level_dimensions"][k]
                osl = region_rgba(slide, (0, 0), k, tuple(dims))[..., :3]
                pil = jpeg_level_via_pillow(path, pi)
                with tifffile.TiffFile(path) as tf:
                    tff = tf.pages[pi].asarray()
                checks[f"level{k}"] = {
                    "pillow_tile_decode_equal": bool(np.array_equal(osl, pil)),
                    "pillow_max_abs_diff": int(np.abs(osl.astype(int) - pil).max()),
                    "tifffile_imagecodecs_equal": bool(np.array_equal(osl, tff)),
                    "tifffile_max_abs_diff": int(np.abs(osl.astype(int) - tff).max()),
                    "sha256_rgb": sha(np.ascontiguousarray(osl).tobytes()),
                }
        if name in lossless_truth:
            for k, truth in enumerate(lossless_truth[name]):
                osl = region_rgba(slide, (0, 0), k, tuple(info["level_dimensions"][k]))[..., :3]
                checks[f"level{k}"] = {"equals_written_pixels": bool(np.array_equal(osl, truth)),
                                       "sha256_rgb": sha(np.ascontiguousarray(osl).tobytes())}
        if name == "ome.ome.tif":
            with tifffile.TiffFile(path) as tf:
                lv = tf.series[0].levels
                truth = lossless_truth[name][0]
                checks["tifffile_subifd_levels_equal_written_pixels"] = [
                    bool(np.array_equal(lv[0].asarray(), truth)),
                    bool(np.array_equal(lv[1].asarray(), ms.downsample(truth, 2))),
                    bool(np.array_equal(lv[2].asarray(), ms.downsample(truth, 4)))]
                checks["sha256_rgb_subifd_levels"] = [sha(l.asarray().tobytes()) for l in lv]
        entry["checks"] = checks
        if name == "aperio.svs":
            th = slide.get_thumbnail((256, 256))
            th.save(out_dir / "thumbnail_aperio.png", optimize=True)
            entry["thumbnail_256"] = {
                "file": "thumbnail_aperio.png", "size": list(th.size), "mode": th.mode,
                "sha256_rgb": sha(np.asarray(th).tobytes()),
                "how": "openslide-python get_thumbnail: level = best level for "
                       "max(dim/256); read_region whole level; paste over white (background "
                       "property or #ffffff) with alpha; PIL Image.thumbnail((256,256), LANCZOS) with its default reducing_gap=2.0 (Image.reduce by an integer factor first)"}
        expected["per_slide"][name] = entry
        print(f"{name}: {info['vendor']} levels {info['level_dimensions']} mpp {info['mpp_x']}")

    with open(out_dir / "expected.json", "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    total = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    print(f"wrote {out_dir} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
