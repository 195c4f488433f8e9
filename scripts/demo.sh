#!/usr/bin/env bash
# The main job on bundled data, from a fresh machine: builds biofm and runs zero-shot
# classification, embeddings and retrieval on the bundled real images with the bundled
# small open_clip-format model.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-system.sh
cargo build --release --locked -p biofm-cli
./target/release/biofm demo "$@"
