#!/usr/bin/env bash
# Creates tools/reference/.venv with the pinned reference stack (torch, timm, open_clip,
# transformers, Pillow...). Needed only to regenerate parity fixtures and to run the
# PyTorch side of `biofm bench`; the test suite itself needs no Python packages.
# torch from PyPI is the CUDA build (~3 GB download); it runs on CPU.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$here/.venv/bin/python" ]; then
  python3 -m venv "$here/.venv"
fi
"$here/.venv/bin/pip" install -q -r "$here/requirements.txt"
"$here/.venv/bin/pip" install -q --no-deps -r "$here/requirements-nodeps.txt"
"$here/.venv/bin/python" -c "import torch, timm, open_clip, transformers, PIL; print('reference stack: torch', torch.__version__, 'timm', timm.__version__, 'open_clip', open_clip.__version__, 'transformers', transformers.__version__, 'Pillow', PIL.__version__)"
