#!/usr/bin/env bash
# Makes the PyTorch reference used by bench/side-by-side.sh: a Debian 13 (trixie) root file system with
# python3-torch (PyTorch 2.6, OpenBLAS) made by mmdebstrap from Debian packages. Needs root. Quick when it exists.
# OpenBLAS is the OpenMP build: with the pthread build (Debian's default) OpenBLAS's threads and PyTorch's OpenMP
# threads fight over the cores and a DiT-S/2 training step took 4x as long on a 2-core machine (docs/performance.md).
#   bench/pytorch-reference.sh [DIR]      (default: $LDM_PYTORCH_ROOT or ~/.cache/ldm/pytorch-trixie)
# The Debian mirror is read from this system's apt configuration; nothing outside DIR is changed except that
# mmdebstrap is installed with apt when missing.
set -euo pipefail
root="${1:-${LDM_PYTORCH_ROOT:-$HOME/.cache/ldm/pytorch-trixie}}"

if [ -x "$root/usr/bin/python3" ] && [ -d "$root/usr/lib/x86_64-linux-gnu/openblas-openmp" ] \
   && env -i /usr/sbin/chroot "$root" /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
  echo "$root"; exit 0
fi
[ "$(id -u)" = 0 ] || { echo "pytorch-reference: making a chroot needs root; run this script as root (or with sudo)." >&2; exit 1; }
if ! command -v mmdebstrap >/dev/null; then
  command -v apt-get >/dev/null || { echo "pytorch-reference: mmdebstrap is missing and this is not a Debian-like system; install mmdebstrap." >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
fi

. "$(dirname "${BASH_SOURCE[0]}")/../scripts/debian-mirror.sh"
uri="${LDM_DEBIAN_MIRROR:-$(debian_mirror)}"
[ -n "$uri" ] || { echo "pytorch-reference: could not read the Debian mirror from the apt configuration; give it as LDM_DEBIAN_MIRROR." >&2; exit 1; }

# Build beside the target and rename, so an interrupted run leaves no half-made reference.
tmp="$root.partial"
rm -rf "$tmp"; mkdir -p "$(dirname "$root")"
echo "pytorch-reference: making $root from $uri trixie (python3-torch, OpenBLAS); this downloads about 1 GB" >&2
mmdebstrap --variant=apt --include=python3-torch,python3-numpy,libopenblas0-openmp \
  trixie "$tmp" "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" >&2
env -i /usr/sbin/chroot "$tmp" /usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || { echo "pytorch-reference: python3-torch does not import in $tmp" >&2; exit 1; }
rm -rf "$root"; mv "$tmp" "$root"
echo "$root"
