#!/usr/bin/env bash
# The official PyTorch DiT beside `ldm bench` on the same model, one process per figure, interleaved; prints a
# Markdown table of median seconds and ratios to PyTorch's float32. Needs root (the PyTorch reference is a chroot).
#   bench/side-by-side.sh --dit DIR [--runs 5] [--warmup 2] [--batches "8 32"] [--out DIR]
#   --dit DIR   a checkout of facebookresearch/DiT (models.py and diffusion/ are copied into the reference root; never
#               into this repository)
# Model: DiT-S/2 on 32x32x4 latents, 1000 classes, learned sigma (33 M parameters), adaLN-Zero; ours also in-context.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dit="" runs=5 warmup=2 batches="8 32" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dit) dit="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "side-by-side: unknown argument '$1'; see --help." >&2; exit 1 ;;
  esac
done
[ -n "$dit" ] || { echo "side-by-side: give --dit DIR, a checkout of facebookresearch/DiT (git clone https://github.com/facebookresearch/DiT)." >&2; exit 1; }
[ -f "$dit/models.py" ] && [ -d "$dit/diffusion" ] || { echo "side-by-side: '$dit' has no models.py and diffusion/; give a checkout of facebookresearch/DiT." >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "side-by-side: the PyTorch reference runs in a chroot, which needs root; run as root (or with sudo)." >&2; exit 1; }

root=$("$here/bench/pytorch-reference.sh")
"$here/scripts/setup.sh" >&2
ldm="$here/artifacts/bin/LatentDiffusion.Cli/release/ldm"
out="${out:-$here/artifacts/side-by-side-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

# The reference's sources live in the chroot's /opt/dit, replaced on every run.
rm -rf "$root/opt/dit"; mkdir -p "$root/opt/dit"
cp -r "$dit/models.py" "$dit/diffusion" "$here/bench/pytorch/dit_bench.py" "$here/bench/pytorch/timm" "$root/opt/dit/"

# PyTorch in its own mount namespace (/proc, /sys, /dev for CPU detection; gone when it exits) and a clean
# environment: sessions may export OPENBLAS_CORETYPE, which slows OpenBLAS. hugetlb=1 as in the issue's table.
# OpenBLAS's OpenMP build, which shares PyTorch's thread pool (the pthread build's threads fight PyTorch's for the cores).
pytorch() {
  unshare -m --propagation private sh -c 'r="$1"; shift
    mount -t proc proc "$r/proc" && mount --rbind /sys "$r/sys" && mount --rbind /dev "$r/dev" &&
    exec env -i HOME=/root GLIBC_TUNABLES=glibc.malloc.hugetlb=1 LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/sbin/chroot "$r" sh -c "cd /opt/dit && exec python3 dit_bench.py \"\$@\"" -- "$@"' \
    -- "$root" "$@" 2>/dev/null | tail -n 1
}
ours() { env -u OPENBLAS_CORETYPE "$ldm" bench --preset S/2 --input-size 32 --channels 4 --num-classes 1000 --warmup-runs "$warmup" --runs "$runs" --json "$@" | tail -n 1; }

record() { # label, json
  local label="$1" json="$2"
  [ -n "$json" ] || { echo "side-by-side: '$label' printed nothing; run it by hand to see why." >&2; exit 1; }
  printf '{"label": "%s", "result": %s}\n' "$label" "$json" >> "$results"
  echo "  $label: done" >&2
}

echo "side-by-side: CPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; results in $results" >&2
record "pytorch matmul float32" "$(pytorch --what matmul --dtype float32 --warmup "$warmup" --runs "$runs")"
record "ours matmul" "$(ours --only matmul)"
record "pytorch matmul bf16" "$(pytorch --what matmul --dtype bf16 --warmup "$warmup" --runs "$runs")"
for b in $batches; do
  record "pytorch train $b float32" "$(pytorch --what train --batch "$b" --dtype float32 --warmup "$warmup" --runs "$runs")"
  record "ours train $b float32" "$(ours --block adaln-zero -b "$b" --only train --dtype float32)"
  record "pytorch train $b bf16" "$(pytorch --what train --batch "$b" --dtype bf16 --warmup "$warmup" --runs "$runs")"
  record "ours train $b bf16" "$(ours --block adaln-zero -b "$b" --only train --dtype bf16)"
  record "ours train $b auto" "$(ours --block adaln-zero -b "$b" --only train --dtype auto)"
  record "ours in-context train $b float32" "$(ours --block in-context -b "$b" --only train --dtype float32)"
  record "ours in-context train $b auto" "$(ours --block in-context -b "$b" --only train --dtype auto)"
done
b=$(echo "$batches" | awk '{print $NF}')
record "pytorch forward $b float32" "$(pytorch --what forward --batch "$b" --dtype float32 --warmup "$warmup" --runs "$runs")"
record "ours forward $b float32" "$(ours --block adaln-zero -b "$b" --only forward --dtype float32)"
record "pytorch forward $b bf16" "$(pytorch --what forward --batch "$b" --dtype bf16 --warmup "$warmup" --runs "$runs")"
record "ours forward $b auto" "$(ours --block adaln-zero -b "$b" --only forward --dtype auto)"

python3 "$here/bench/side_by_side_table.py" "$results" | tee "$out/table.md"
