#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium and its WebDriver (chromium, chromium-driver) for the real-browser tests
# of ldm serve (tests/LatentDiffusion.Server.Tests). Quick when both are present. No tool downloads a browser of its own:
# Selenium is pointed at /usr/bin/chromium and /usr/bin/chromedriver.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi
if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
  echo "install-chromium: chromium and chromium-driver are missing; as root run: apt-get install chromium chromium-driver (the browser tests of ldm serve need them)." >&2
  exit 1
fi
echo "install-chromium: installing chromium and chromium-driver from Debian"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
command -v chromium >/dev/null && command -v chromedriver >/dev/null \
  || { echo "install-chromium: the packages did not provide chromium and chromedriver" >&2; exit 1; }
