#!/usr/bin/env bash
# Runs the whole test suite (unit, CLI, and parity against tests/fixtures plus $LDM_FIXTURES or ../shared/fixtures).
# Installs what is missing first.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
cd "$here"
rm -f artifacts/fixtures-report.txt
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
dotnet test LatentDiffusion.slnx -c Release --no-build -nologo --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log" | grep -vE '^\s+Passed |^\s*$'
status=${PIPESTATUS[0]}
set -e
if [ -f artifacts/fixtures-report.txt ]; then
  grep -E '^(FROM|FAIL|SKIP)' artifacts/fixtures-report.txt || true
  tail -n 1 artifacts/fixtures-report.txt
fi
# One closing line in the plain form: "N passed, N failed, N skipped", summed over the test projects (each prints its own counts).
count() { grep -E "^\s+$1:\s+[0-9]+" "$log" | grep -oE '[0-9]+' | awk '{ n += $1 } END { print n + 0 }'; }
if grep -qE '^Total tests:' "$log"; then
  echo "tests: $(count Passed) passed, $(count Failed) failed, $(count Skipped) skipped"
fi
exit "$status"
