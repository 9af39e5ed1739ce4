#!/usr/bin/env bash
# Installs Fashion-MNIST from Debian's dataset-fashion-mnist package into /usr/share/datasets/fashion-mnist
# (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz).
# Idempotent: does nothing when the four files are already there.
set -euo pipefail
dir=/usr/share/datasets/fashion-mnist
files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

complete() {
  local f
  for f in "${files[@]}"; do [ -s "$dir/$f" ] || return 1; done
  return 0
}

if complete; then
  echo "install-fashion-mnist: already installed in $dir"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install-fashion-mnist: apt-get not found; on a non-Debian system download the four IDX .gz files of Fashion-MNIST into a folder and pass that folder to ldm." >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-fashion-mnist: installing a Debian package needs root; run this script as root (or with sudo)." >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist
if ! complete; then
  echo "install-fashion-mnist: dataset-fashion-mnist installed but $dir lacks some of: ${files[*]}; reinstall with 'apt-get install --reinstall dataset-fashion-mnist'." >&2
  exit 1
fi
echo "install-fashion-mnist: installed in $dir"
