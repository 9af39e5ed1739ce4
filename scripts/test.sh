#!/usr/bin/env bash
# Runs the whole test suite (unit, parity against ../shared/fixtures or $LDM_FIXTURES, CLI). Installs what is missing first.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
cd "$here"
rm -f artifacts/fixtures-report.txt
status=0
dotnet test LatentDiffusion.slnx -c Release --no-build -nologo --logger "console;verbosity=minimal" "$@" || status=$?
if [ -f artifacts/fixtures-report.txt ]; then
  grep -E '^(FAIL|SKIP)' artifacts/fixtures-report.txt || true
  tail -n 1 artifacts/fixtures-report.txt
fi
exit $status
