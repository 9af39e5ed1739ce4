#!/usr/bin/env bash
# Installs what ldm needs on a fresh Debian/Ubuntu machine and builds it. Quick when nothing is missing.
#   1. libstdc++ with GLIBCXX_3.4.32 (TorchSharp's native library is built with GCC 13+)
#   2. MPICH (mpiexec.mpich, libmpich.so.12) for multi-process runs (docs/distributed.md) and the two-rank tests
#   3. Chromium and chromium-driver (Debian) for the browser tests of ldm serve
#   4. NuGet restore and Release build of the solution
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

have_glibcxx() {
  local lib
  for lib in /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /usr/lib64/libstdc++.so.6 /usr/lib/libstdc++.so.6; do
    [ -e "$lib" ] && grep -aq 'GLIBCXX_3\.4\.32' "$lib" && return 0
  done
  return 1
}

if ! have_glibcxx; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: libstdc++ lacks GLIBCXX_3.4.32 and this is not a Debian-like system; install GCC 13+'s libstdc++ and run again." >&2
    exit 1
  fi
  [ "$(id -u)" = 0 ] || { echo "setup: installing libstdc++ from Debian 13 needs root; run this script as root (or with sudo)." >&2; exit 1; }
  # Debian 12 ships GCC 12's libstdc++. Take libstdc++6 from Debian 13 (trixie) through a temporary
  # source list whose mirror is read from the system's own configuration; the system file is not edited.
  . "$here/scripts/debian-mirror.sh"
  uri=$(debian_mirror)
  [ -n "$uri" ] || { echo "setup: could not read the Debian mirror from /etc/apt/sources.list.d/debian.sources; install libstdc++6 from Debian 13 by hand." >&2; exit 1; }
  echo "setup: installing libstdc++6 from Debian 13 (trixie), mirror $uri"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" > "$tmp/trixie.list"
  apt_opts=(-o "Dir::Etc::sourcelist=$tmp/trixie.list" -o "Dir::Etc::sourceparts=-" -o "APT::Get::List-Cleanup=0")
  apt-get "${apt_opts[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends libstdc++6 >/dev/null
  # Refresh the normal package lists so later apt-get calls see the system's own suites again.
  apt-get update -qq || true
  have_glibcxx || { echo "setup: libstdc++6 from trixie did not provide GLIBCXX_3.4.32" >&2; exit 1; }
fi

# MPICH: `mpiexec.mpich -n N ldm train ...` and the two-rank tests (MpiTests). ldm binds MPICH's ABI; Open MPI's differs.
have_mpich() {
  command -v mpiexec.mpich >/dev/null || return 1
  local lib
  for lib in /usr/lib/x86_64-linux-gnu/libmpich.so.12 /usr/lib/aarch64-linux-gnu/libmpich.so.12 /usr/lib64/libmpich.so.12 /usr/lib/libmpich.so.12; do
    [ -e "$lib" ] && return 0
  done
  ldconfig -p 2>/dev/null | grep -q 'libmpich\.so\.12'
}

if ! have_mpich; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing MPICH (mpich) for multi-process runs"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mpich >/dev/null
    have_mpich || { echo "setup: the mpich package did not provide mpiexec.mpich and libmpich.so.12" >&2; exit 1; }
  else
    # Optional for single-process use: say what is missing and go on.
    echo "setup: note: MPICH is not installed (multi-process runs and the two-rank tests need it); run this script as root, or apt-get install mpich." >&2
  fi
fi

# Chromium and chromium-driver from Debian: the real-browser tests of ldm serve drive them (nothing downloads a browser).
if ! "$here/scripts/install-chromium.sh"; then
  echo "setup: note: without chromium and chromium-driver the browser tests of ldm serve fail; run this script as root." >&2
fi

command -v dotnet >/dev/null || { echo "setup: the .NET 10 SDK is missing; install it (dotnet-sdk-10.0) and run again." >&2; exit 1; }

# Build only when a source file is newer than the last successful build.
stamp="$here/artifacts/.build-stamp"
if [ ! -f "$stamp" ] || [ -n "$(find "$here/src" "$here/tests" "$here/Directory.Build.props" "$here/LatentDiffusion.slnx" -newer "$stamp" \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' -o -name '*.slnx' \) -print -quit 2>/dev/null)" ]; then
  dotnet build "$here/LatentDiffusion.slnx" -c Release -nologo -v q -clp:ErrorsOnly
  mkdir -p "$here/artifacts" && touch "$stamp"
fi
