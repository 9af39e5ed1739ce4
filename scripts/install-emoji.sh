#!/usr/bin/env bash
# Installs the npm packages emoji-datasource-twitter and emoji-datasource-google (64x64 PNGs with names and
# categories) and writes a captioned folder from them for `ldm train`:
#   OUT/twitter/*.png, OUT/google/*.png and OUT/metadata.jsonl with one line per image:
#   {"file_name": "twitter/1f600.png", "text": "grinning face", "label": "Smileys & Emotion"}
# text = the emoji's name (lower case), label = its category. Skin-tone variants are left out. The two styles give
# two images per name. Usage: scripts/install-emoji.sh [OUT]   (default: data/emoji in the repository)
# Idempotent: does nothing when OUT/metadata.jsonl exists. The data is never committed (data/ is git-ignored).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/data/emoji}"
version=16.0.0
packages=(emoji-datasource-twitter emoji-datasource-google)

if [ -s "$out/metadata.jsonl" ]; then
  echo "install-emoji: already written: $out ($(wc -l < "$out/metadata.jsonl") images)"
  exit 0
fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "install-emoji: npm and node are needed; install them (Debian: apt-get install nodejs npm, as root) and run this again." >&2
    exit 1
  fi
fi

cache="${LDM_CACHE:-$HOME/.cache/ldm}/emoji-npm"
mkdir -p "$cache"
spec=()
for p in "${packages[@]}"; do spec+=("$p@$version"); done
echo "install-emoji: npm install ${spec[*]} into $cache"
npm install --no-audit --no-fund --silent --prefix "$cache" "${spec[@]}"

tmp="$out.partial"
rm -rf "$tmp"
mkdir -p "$tmp"
CACHE="$cache" OUT="$tmp" node - <<'JS'
const fs = require('fs'), path = require('path');
const cache = process.env.CACHE, out = process.env.OUT;
const lines = [];
for (const style of ['twitter', 'google']) {
  const pkg = path.join(cache, 'node_modules', `emoji-datasource-${style}`);
  const emoji = JSON.parse(fs.readFileSync(path.join(pkg, 'emoji.json'), 'utf8'));
  const src = path.join(pkg, 'img', style, '64');
  fs.mkdirSync(path.join(out, style), { recursive: true });
  let n = 0;
  for (const e of emoji.sort((a, b) => a.sort_order - b.sort_order)) {
    if (!e[`has_img_${style}`] || !e.name || !e.category) continue;
    const file = path.join(src, e.image);
    if (!fs.existsSync(file)) continue;
    fs.copyFileSync(file, path.join(out, style, e.image));
    lines.push(JSON.stringify({ file_name: `${style}/${e.image}`, text: e.name.toLowerCase(), label: e.category }));
    n++;
  }
  console.log(`install-emoji: ${n} ${style} images`);
}
fs.writeFileSync(path.join(out, 'metadata.jsonl'), lines.join('\n') + '\n');
JS
rm -rf "$out"
mv "$tmp" "$out"
echo "install-emoji: wrote $out ($(wc -l < "$out/metadata.jsonl") images); train with: ldm train --recipe emoji-text --out runs/emoji-text"
