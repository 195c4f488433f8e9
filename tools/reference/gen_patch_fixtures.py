#!/usr/bin/env python3
"""Reference patch coordinates and patch features from TRIDENT on the generated test slides.

TRIDENT (mahmoodlab, commit a91fa84) is the reference for biofm's whole-slide patcher and
patch-feature jobs. It is not on PyPI (the PyPI package called `trident` is an unrelated
astronomy tool: never install it). Get it with

    git clone https://github.com/mahmoodlab/TRIDENT && git -C TRIDENT checkout a91fa84

and point TRIDENT_SRC at the checkout (an installed TRIDENT that has `trident.wsi_objects`
is used when TRIDENT_SRC is unset). Run on demand, never from tests:

    scripts/fetch-test-data.sh      # builds data/downloads/slides/ (make_slides.py)
    cargo build --release -p biofm-cli   # `biofm wsi segment` writes the tissue outlines
    TRIDENT_SRC=path/to/TRIDENT tools/reference/.venv/bin/python tools/reference/gen_patch_fixtures.py

Options: --slides DIR (default data/downloads/slides), --biofm PATH (default
target/release/biofm, or $BIOFM_BIN), --reuse-tissue (take the committed tissue/*.geojson
instead of running biofm).

Only TRIDENT's numeric outputs are stored (TRIDENT is CC-BY-NC-ND 4.0); no TRIDENT code.

Writes, relative to the repository root:

* crates/biofm-wsi/tests/fixtures/patching/
  - tissue/<stem>.geojson: `biofm wsi segment` outlines of each slide (biofm's output, fed
    to TRIDENT as its tissue mask through `OpenSlideWSI(tissue_seg_path=...)`, i.e.
    `gpd.read_file`, as TRIDENT reloads its own segmentation);
  - coords.json: per slide what TRIDENT's OpenSlideWSI reads (mpp, magnification, levels),
    and per case the coordinates TRIDENT's `WSI.extract_tissue_coords` writes (in its
    order), every attribute of its coords .h5, and the level / sizes its WSIPatcher
    picks for reading the patches; cases without a mask use the same call on a WSI with
    no tissue outline (the plain grid, `create_patcher(src_mag=wsi.mag, mask=None)`).
* crates/biofm-pipelines/tests/fixtures/wsi_features/
  - model/config.json + model/model.safetensors: a tiny random UNI-style timm ViT
    (vit_large_patch16_224 with UNI's timm kwargs, embed_dim 48, depth 2, 3 heads,
    random LayerScale gammas), written by timm's `save_for_hf`;
  - <stem>__<mag>x_<size>px_<overlap>px.h5: the feature files TRIDENT's
    `WSI.extract_patch_features` writes for that model (CPU, float32) with UNI's eval
    transform as TRIDENT's UNIInferenceEncoder builds it, wrapped in TRIDENT's
    CustomInferenceEncoder;
  - features.json: which slide, parameters and model made each file, the h5 layout, and
    checks of the first patches.

Importing TRIDENT: `trident/__init__.py` imports every reader, the batch Processor and
its plotting (matplotlib), and `trident/segmentation_models/__init__.py` imports the Otsu
model (scikit-image); none of that is used here. Those two packages are registered in
sys.modules with their __path__ only, so their __init__.py files do not run, and the
modules used (wsi_objects.OpenSlideWSI, WSI, WSIPatcher, WSIPatcherDataset, IO,
patch_encoder_models.load) are imported unchanged from the checkout.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
COORDS_OUT = ROOT / "crates/biofm-wsi/tests/fixtures/patching"
FEATS_OUT = ROOT / "crates/biofm-pipelines/tests/fixtures/wsi_features"
TRIDENT_COMMIT = "a91fa8490e0210ebbbe58452c3babe009e0ab7ca"

# slide -> MPP given to TRIDENT's constructor (`mpp=`), None: read by OpenSlide.
SLIDES = {
    "tiled_jpeg.tif": None,
    "aperio.svs": None,
    # OpenSlide reads no MPP from OME-XML (and sees only the main IFD, one level);
    # 0.25 is the PhysicalSizeX biofm reads from the OME-XML.
    "ome.ome.tif": 0.25,
    # No MPP in the file: biofm takes it from an override.
    "no_mpp.tif": 0.5,
    "bigtiff_lzw.tif": None,
    # biofm finds no tissue here: every masked case has 0 patches.
    "tiled_raw.tif": None,
}
# (target_mag, patch_size, overlap, min_tissue_proportion), run on every slide with its mask
PARAMS = [
    (20, 256, 0, 0.0),
    (20, 256, 64, 0.5),
    (10, 224, 0, 0.25),
    (5, 256, 32, 0.0),
    (40, 256, 0, 0.0),  # upsampling on the 20x slides
    (20, 512, 0, 0.1),
]
# extra masked cases: (slide, target_mag, patch_size, overlap, min_tissue_proportion)
EXTRA = [
    ("tiled_jpeg.tif", 1, 256, 0, 0.0),  # level 2 (downsample 16.05, truncated to 16 for the read size)
]
# plain grids (no mask): (slide, target_mag, patch_size, overlap)
NO_MASK = [
    ("tiled_jpeg.tif", 20, 256, 0),
    ("tiled_jpeg.tif", 40, 256, 64),
    ("tiled_raw.tif", 5, 256, 0),  # one patch larger than the slide
]
# feature files: (slide, target_mag, patch_size, overlap, min_tissue_proportion)
FEATURES = [
    ("tiled_jpeg.tif", 20, 256, 0, 0.0),   # read size = patch size, level 0
    ("aperio.svs", 10, 224, 0, 0.25),      # 448 px read at level 0, PIL-resized to 224
    ("tiled_raw.tif", 20, 256, 0, 0.0),    # no patch: TRIDENT's empty feature file
]
ENC_NAME = "uni_v1"  # the name TRIDENT's UNIInferenceEncoder gives its files
UNI_TIMM_KWARGS = dict(img_size=224, patch_size=16, init_values=1e-5, num_classes=0, dynamic_img_size=True)
TINY = dict(embed_dim=48, depth=2, num_heads=3)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_FEATURE_FILE = 100_000
MAX_COORDS_JSON = 300_000


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# ----------------------------------------------------------------------------- TRIDENT
def trident_package_dir() -> Path:
    src = os.environ.get("TRIDENT_SRC")
    if src:
        pkg = Path(src).resolve() / "trident"
        if not (pkg / "wsi_objects").is_dir():
            sys.exit(f"error: TRIDENT_SRC={src} has no trident/wsi_objects (expected a TRIDENT checkout)")
        sys.path.insert(0, str(pkg.parent))
        return pkg
    spec = importlib.util.find_spec("trident")
    locs = list(spec.submodule_search_locations or []) if spec else []
    for loc in locs:
        if (Path(loc) / "wsi_objects").is_dir():
            return Path(loc)
    sys.exit("error: set TRIDENT_SRC to a TRIDENT checkout (git clone https://github.com/mahmoodlab/TRIDENT "
             "&& git -C TRIDENT checkout a91fa84); the PyPI package `trident` is unrelated")


def trident_commit(pkg: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(pkg.parent), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def import_trident():
    pkg = trident_package_dir()
    # Register `trident` and `trident.segmentation_models` by __path__ only so that their
    # __init__.py files (every reader, Processor, matplotlib, scikit-image) do not run;
    # the submodules below are TRIDENT's own, unchanged.
    for name, sub in (("trident", pkg), ("trident.segmentation_models", pkg / "segmentation_models")):
        if name not in sys.modules:
            mod = types.ModuleType(name)
            mod.__path__ = [str(sub)]
            mod.__file__ = str(sub / "__init__.py")
            sys.modules[name] = mod
    from trident.wsi_objects.OpenSlideWSI import OpenSlideWSI
    from trident.patch_encoder_models.load import CustomInferenceEncoder
    from trident.IO import read_coords
    commit = trident_commit(pkg)
    if commit is not None and commit != TRIDENT_COMMIT:
        print(f"warning: TRIDENT checkout is at {commit}, the fixtures are pinned to {TRIDENT_COMMIT}",
              file=sys.stderr)
    return OpenSlideWSI, CustomInferenceEncoder, read_coords, commit


# ----------------------------------------------------------------------------- utilities
def jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


def h5_type(tid) -> str:
    if isinstance(tid, h5py.h5t.TypeStringID):
        cset = "utf-8" if tid.get_cset() == h5py.h5t.CSET_UTF8 else "ascii"
        return f"variable-length {cset} string" if tid.is_variable_str() else f"fixed {cset} string[{tid.get_size()}]"
    dt = tid.dtype
    return f"{dt.kind}{dt.itemsize} ({np.dtype(dt).newbyteorder('=').name}, {'little' if dt.byteorder in '<=|' else 'big'}-endian)"


def attrs_layout(obj) -> dict:
    out = {}
    for k in obj.attrs:
        aid = h5py.h5a.open(obj.id, k.encode())
        out[k] = {"type": h5_type(aid.get_type()), "shape": list(aid.shape), "value": jsonable(obj.attrs[k])}
    return out


def h5_layout(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        layout = {"root_attrs": attrs_layout(f), "datasets": {}}
        for name, d in f.items():
            layout["datasets"][name] = {
                "shape": list(d.shape), "dtype": h5_type(d.id.get_type()), "chunks": list(d.chunks) if d.chunks else None,
                "maxshape": [m for m in d.maxshape], "compression": d.compression, "attrs": attrs_layout(d),
            }
    return layout


def slide_info(wsi) -> dict:
    return {
        "name": wsi.name, "width": int(wsi.width), "height": int(wsi.height), "mpp": wsi.mpp, "mag": wsi.mag,
        "level_count": wsi.level_count, "level_downsamples": [float(d) for d in wsi.level_downsamples],
        "level_dimensions": [list(d) for d in wsi.level_dimensions],
    }


def patcher_info(p) -> dict:
    return {
        "src_pixel_size": p.src_pixel_size, "dst_pixel_size": p.dst_pixel_size, "downsample": p.downsample,
        "patch_size_src": int(p.patch_size_src), "overlap_src": int(p.overlap_src), "level": int(p.level),
        "level_downsample": float(p.wsi.level_downsamples[p.level]), "patch_size_level": int(p.patch_size_level),
        "overlap_level": int(p.overlap_level), "cols": int(p.cols), "rows": int(p.rows),
    }


def check_coords(case, coords, slide, grid):
    """Plausibility: inside level 0, on the grid (step = patch_size_level0 - overlap * downsample)."""
    p = case["patcher"]
    step = p["patch_size_src"] - p["overlap_src"]
    assert p["patch_size_src"] == case["patch_size_level0"], case
    assert step == case["patch_size_level0"] - round(case["overlap"] * p["downsample"]), case
    assert p["cols"] == -(-slide["width"] // step) and p["rows"] == -(-slide["height"] // step), case
    if len(coords):
        assert coords.dtype == np.int64 and coords.shape[1] == 2
        assert (coords >= 0).all() and (coords[:, 0] < slide["width"]).all() and (coords[:, 1] < slide["height"]).all()
        assert (coords % step == 0).all()
        keys = coords[:, 1] * 10**9 + coords[:, 0]
        assert (np.diff(keys) > 0).all(), "expected row-major order without repeats"
    assert {tuple(c) for c in coords.tolist()} <= grid


def dump_cases(doc: dict) -> str:
    """JSON with one line per coordinate list (keeps the file small and diffable)."""
    cases = doc.pop("cases")
    head = json.dumps(doc, indent=1)
    parts = []
    for c in cases:
        coords = c.pop("coords")
        body = json.dumps(c, indent=1)
        parts.append(body[:-2] + ',\n "coords": ' + json.dumps(coords, separators=(",", ":")) + "\n}")
        c["coords"] = coords
    doc["cases"] = cases
    return head[:-2] + ',\n "cases": [\n' + ",\n".join(parts) + "\n ]\n}\n"


# ----------------------------------------------------------------------------- tissue
def make_tissue(biofm: Path, slides_dir: Path, tissue_dir: Path):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(biofm), "wsi", "segment", "-q", "--out", tmp] + [str(slides_dir / s) for s in SLIDES]
        subprocess.run(cmd, check=True)
        if tissue_dir.exists():
            shutil.rmtree(tissue_dir)
        tissue_dir.mkdir(parents=True)
        for s in SLIDES:
            stem = Path(s).stem
            shutil.copyfile(Path(tmp) / f"{stem}.geojson", tissue_dir / f"{stem}.geojson")


# ----------------------------------------------------------------------------- model
def make_model(out: Path):
    import timm
    import torch
    from timm.models import save_for_hf

    torch.manual_seed(20240)
    gen = torch.Generator().manual_seed(7)
    model = timm.create_model("vit_large_patch16_224", pretrained=False, **UNI_TIMM_KWARGS, **TINY).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".gamma"):  # LayerScale: far from init_values=1e-5 so every branch matters
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1 + 0.3)
            elif name.endswith("bias") or name == "cls_token" or ("norm" in name and name.endswith("weight")):
                p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    if out.exists():
        shutil.rmtree(out)
    pcfg = {"tag": "tiny_random", "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "crop_pct": 1.0,
            "interpolation": "bilinear"}
    save_for_hf(model, out, model_config={"pretrained_cfg": pcfg}, safe_serialization=True)
    # timm reloads the directory to the same model
    reloaded = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    x = torch.randn((2, 3, 224, 224), generator=gen)
    with torch.inference_mode():
        assert torch.equal(model(x), reloaded(x))
    return model


def uni_eval_transform():
    """UNI's eval transform as TRIDENT's UNIInferenceEncoder._build makes it (img_size 224)."""
    from torchvision import transforms
    return transforms.Compose([
        transforms.Resize(224),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ])


# ----------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slides", type=Path, default=ROOT / "data/downloads/slides")
    ap.add_argument("--biofm", type=Path, default=Path(os.environ.get("BIOFM_BIN", ROOT / "target/release/biofm")))
    ap.add_argument("--reuse-tissue", action="store_true")
    args = ap.parse_args()
    slides_dir = args.slides.resolve()

    manifest_raw = (slides_dir / "manifest.json").read_bytes()
    manifest = json.loads(manifest_raw)
    for name in SLIDES:
        if sha((slides_dir / name).read_bytes()) != manifest["files"][name]["sha256"]:
            sys.exit(f"error: {name} does not match its manifest entry")

    OpenSlideWSI, CustomInferenceEncoder, read_coords, commit = import_trident()
    import geopandas
    import openslide
    import PIL
    import shapely
    import timm
    import torch
    import torchvision

    tissue_dir = COORDS_OUT / "tissue"
    if not args.reuse_tissue:
        if not args.biofm.exists():
            sys.exit(f"error: no biofm binary at {args.biofm} (build it, set --biofm, or use --reuse-tissue)")
        make_tissue(args.biofm, slides_dir, tissue_dir)

    versions = {
        "trident_commit": commit or "unknown (not a git checkout)", "openslide-python": openslide.__version__,
        "openslide": openslide.__library_version__, "geopandas": geopandas.__version__,
        "shapely": shapely.__version__, "geos": ".".join(map(str, shapely.geos_version)),
        "numpy": np.__version__, "h5py": h5py.__version__, "Pillow": PIL.__version__,
        "torch": torch.__version__, "torchvision": torchvision.__version__, "timm": timm.__version__,
    }
    try:
        from importlib.metadata import version
        versions["openslide-bin"] = version("openslide-bin")
    except Exception:
        pass

    job = Path(tempfile.mkdtemp(prefix="trident-job."))
    cwd = os.getcwd()
    os.chdir(job)  # TRIDENT stores its output folder in the files: keep it relative
    try:
        def open_wsi(slide, mask=True):
            stem = Path(slide).stem
            return OpenSlideWSI(
                slide_path=str(slides_dir / slide), lazy_init=False, mpp=SLIDES[slide], max_workers=0,
                tissue_seg_path=str(tissue_dir / f"{stem}.geojson") if mask else None)

        def run_case(slide, mag, size, overlap, thr, mask):
            wsi = open_wsi(slide, mask)
            assert hasattr(wsi, "gdf_contours") == mask
            save_coords = f"{mag}x_{size}px_{overlap}px_overlap" + ("" if mask else "_nomask")
            path = wsi.extract_tissue_coords(target_mag=mag, patch_size=size, save_coords=save_coords,
                                             overlap=overlap, min_tissue_proportion=thr)
            attrs, coords = read_coords(path)
            # the same patcher extract_tissue_coords builds, for what it picked
            patcher = wsi.create_patcher(patch_size=size, src_mag=wsi.mag, dst_mag=mag,
                                         mask=wsi.gdf_contours if mask else None, coords_only=True,
                                         overlap=overlap, threshold=thr)
            assert np.array_equal(np.asarray(patcher.valid_coords, dtype=np.int64).reshape(-1, 2), coords)
            if not mask:
                direct = wsi.create_patcher(patch_size=size, src_mag=wsi.mag, dst_mag=mag, overlap=overlap,
                                            coords_only=True)
                assert np.array_equal(np.asarray(direct.valid_coords).reshape(-1, 2), coords)
            return wsi, path, attrs, coords, patcher

        slides = {}
        cases = []
        grids = {}
        for slide in SLIDES:
            wsi = open_wsi(slide)
            slides[slide] = slide_info(wsi)
            slides[slide]["mpp_override"] = SLIDES[slide]
            slides[slide]["tissue"] = f"tissue/{Path(slide).stem}.geojson"
            slides[slide]["tissue_polygons"] = int(len(wsi.gdf_contours))
        coords_layout = None
        # plain grids first, then every parameter set on every slide with its mask
        plan = [(s, m, z, o, 0.0, False) for s, m, z, o in NO_MASK]
        plan += [(s, m, z, o, t, True) for s in SLIDES for m, z, o, t in PARAMS]
        plan += [(s, m, z, o, t, True) for s, m, z, o, t in EXTRA]
        for slide, mag, size, overlap, thr, mask in plan:
            wsi, path, attrs, coords, patcher = run_case(slide, mag, size, overlap, thr, mask)
            key = (slide, mag, size, overlap)
            if key not in grids:
                plain = wsi.create_patcher(patch_size=size, src_mag=wsi.mag, dst_mag=mag, overlap=overlap,
                                           coords_only=True)
                grids[key] = {tuple(c) for c in np.asarray(plain.valid_coords).tolist()}
            case = {
                "slide": slide, "mask": slides[slide]["tissue"] if mask else None,
                "target_mag": mag, "patch_size": size, "overlap": overlap, "min_tissue_proportion": thr,
                "level0_magnification": jsonable(attrs["level0_magnification"]),
                "patch_size_level0": jsonable(attrs["patch_size_level0"]),
                "attrs": {k: jsonable(v) for k, v in attrs.items()},
                "patcher": patcher_info(patcher),
                "n": int(len(coords)),
            }
            if not mask:
                case["note"] = "no mask: extract_tissue_coords on a WSI without tissue outlines"
            check_coords(case, coords, slides[slide], grids[key])
            if not mask:
                assert case["n"] == case["patcher"]["cols"] * case["patcher"]["rows"]
            case["coords"] = coords.tolist()
            cases.append(case)
            if coords_layout is None and len(coords):
                coords_layout = h5_layout(path)
            print(f"{slide:16s} {mag:2d}x {size}px ov{overlap:<3d} thr{thr:<4} mask={mask!s:5s} "
                  f"level={patcher.level} read={patcher.patch_size_level}px -> {case['n']} patches")

        doc = {
            "generator": "tools/reference/gen_patch_fixtures.py",
            "reference": "TRIDENT (mahmoodlab) WSI.extract_tissue_coords with OpenSlideWSI",
            "versions": versions,
            "slides_manifest_sha256": sha(manifest_raw),
            "slides": slides,
            "coords_h5_layout": coords_layout,
            "cases": cases,
        }
        text = dump_cases(doc)
        assert len(text) < MAX_COORDS_JSON, len(text)
        COORDS_OUT.mkdir(parents=True, exist_ok=True)
        (COORDS_OUT / "coords.json").write_text(text)
        print(f"coords.json: {len(cases)} cases, {len(text)} bytes")

        # ------------------------------------------------------------------- features
        FEATS_OUT.mkdir(parents=True, exist_ok=True)
        for old in FEATS_OUT.glob("*.h5"):
            old.unlink()
        model = make_model(FEATS_OUT / "model")
        transform = uni_eval_transform()
        encoder = CustomInferenceEncoder(enc_name=ENC_NAME, model=model, transforms=transform,
                                         precision=torch.float32)
        files = []
        for slide, mag, size, overlap, thr in FEATURES:
            wsi, coords_path, attrs, coords, patcher = run_case(slide, mag, size, overlap, thr, True)
            save_features = str(Path(f"{mag}x_{size}px_{overlap}px_overlap") / f"features_{ENC_NAME}")
            out = wsi.extract_patch_features(patch_encoder=encoder, coords_path=coords_path,
                                             save_features=save_features, device="cpu", saveas="h5")
            name = f"{Path(slide).stem}__{mag}x_{size}px_{overlap}px.h5"
            dest = FEATS_OUT / name
            shutil.copyfile(out, dest)
            size_bytes = dest.stat().st_size
            assert size_bytes < MAX_FEATURE_FILE, (name, size_bytes)
            with h5py.File(dest, "r") as f:
                feats = f["features"][:]
                fcoords = f["coords"][:]
            assert np.array_equal(fcoords, coords)
            entry = {
                "file": name, "slide": slide,
                "tissue": f"crates/biofm-wsi/tests/fixtures/patching/tissue/{Path(slide).stem}.geojson",
                "target_mag": mag, "patch_size": size, "overlap": overlap, "min_tissue_proportion": thr,
                "n_patches": int(len(coords)), "features_shape": list(feats.shape),
                "encoder": ENC_NAME, "precision": "float32", "device": "cpu", "batch_limit": 512,
                "read": {"level": int(patcher.level), "size": int(patcher.patch_size_level),
                         "pil_resize_to": size, "pil_resample": "default (BICUBIC)"},
                "layout": h5_layout(dest),
            }
            if len(coords):
                # independent check: read, resize, transform and embed the first patches here
                reader = wsi.create_patcher(patch_size=size, src_mag=wsi.mag, dst_mag=mag,
                                            custom_coords=coords[:4], pil=True)
                checks = []
                xs = []
                for i in range(len(reader)):
                    tile, x, y = reader[i]
                    t = transform(tile)
                    xs.append(t)
                    checks.append({"x": int(x), "y": int(y), "tile_mode": tile.mode, "tile_size": list(tile.size),
                                   "tile_rgb_sha256": sha(tile.tobytes()),
                                   "input_channel_mean": [round(float(v), 6) for v in t.mean(dim=(1, 2))]})
                with torch.inference_mode():
                    ref = model(torch.stack(xs)).numpy()
                err = float(np.abs(ref - feats[:len(xs)]).max())
                assert err < 1e-5, err
                entry["first_patches"] = checks
            files.append(entry)
            print(f"{name}: {len(coords)} patches, features {feats.shape}, {size_bytes} bytes")

        feats_doc = {
            "generator": "tools/reference/gen_patch_fixtures.py",
            "reference": "TRIDENT (mahmoodlab) WSI.extract_patch_features with CustomInferenceEncoder",
            "versions": versions,
            "slides_manifest_sha256": sha(manifest_raw),
            "model": {
                "dir": "model", "architecture": "vit_large_patch16_224",
                "timm_kwargs": dict(UNI_TIMM_KWARGS, **TINY),
                "init": "timm init (torch seed 20240), then LayerScale gammas N(0.3, 0.1), N(0, 0.02) added "
                        "to biases, norm weights and cls_token (generator seed 7)",
            },
            "transform": ["Resize(224) (torchvision, bilinear, PIL)", "CenterCrop(224)", "ToTensor()",
                          f"Normalize(mean={list(IMAGENET_MEAN)}, std={list(IMAGENET_STD)})"],
            "files": files,
        }
        (FEATS_OUT / "features.json").write_text(json.dumps(feats_doc, indent=1) + "\n")
    finally:
        os.chdir(cwd)
        shutil.rmtree(job, ignore_errors=True)


if __name__ == "__main__":
    main()
