#!/usr/bin/env bash
# Installs the Debian packages biofm builds against. Safe to re-run: packages already
# installed are skipped without touching the network.
set -euo pipefail
# libopenslide0 (3.4.1 on bookworm) is loaded at run time for vendor slide formats
# (NDPI, MRXS, SCN, ...); biofm builds and runs without it.
packages=(pkg-config libturbojpeg0-dev libhdf5-dev python3-venv python3-pip libopenslide0)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
echo "installing Debian packages: ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
