#!/usr/bin/env bash
# The whole test suite, from a fresh machine: system packages, real test data, build,
# every test (unit, parity against committed reference outputs, real-weight parity,
# bad-input and CLI end-to-end tests). Tests run in release mode: the numeric code is
# ~10x slower unoptimised.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-system.sh
./scripts/fetch-test-data.sh
cargo test --release --workspace --locked "$@"
