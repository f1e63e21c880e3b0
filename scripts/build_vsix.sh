#!/usr/bin/env bash
# Package the VS Code bridge extension as a .vsix with @vscode/vsce.
# The .vsix is a build artifact (gitignored); the desktop build bundles it
# from resources/vscode-extension/. Usage: [VSIX_BASE_URL=…] scripts/build_vsix.sh
set -euo pipefail
cd "$(dirname "$0")/../resources/vscode-extension"
VERSION=$(node -p "require('./package.json').version")
NAME=$(node -p "require('./package.json').name")
OUT="$NAME-$VERSION.vsix"
rm -f ./*.vsix
# --no-dependencies: the extension has none, so vsce need not run npm.
# The README's picture is a relative link to media/, which is packaged: VS Code
# shows it from the installed extension. For the Marketplace, whose pages need
# absolute links, set VSIX_BASE_URL to where the extension folder is published
# (its raw-file URL); vsce then rewrites the README's relative links against it.
if [ -n "${VSIX_BASE_URL:-}" ]; then
  LINKS=(--baseContentUrl "$VSIX_BASE_URL" --baseImagesUrl "$VSIX_BASE_URL")
else
  LINKS=(--no-rewrite-relative-links)
fi
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
npx --yes @vscode/vsce@3 package --no-dependencies --allow-missing-repository "${LINKS[@]}" \
  --out "$OUT" </dev/null 2>&1 | tee "$LOG"
# Marketplace-ready means no warnings either: vsce only prints them.
if grep -q "WARNING" "$LOG"; then
  echo "vsce warned (see above); fix the manifest or README" >&2
  exit 1
fi
# A package that lacks the code or the icon is worse than none; tests stay out.
python3 - "$OUT" <<'PY'
import sys
import zipfile

names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = {"extension/extension.js", "extension/lib/client.js", "extension/lib/view.js",
        "extension/icon.png", "extension/package.json", "extension/media/presence.svg",
        "extension/media/friends-view.png", "extension/changelog.md"}
missing = need - names
leaked = [n for n in names if n.startswith(("extension/test/", "extension/test-support/"))]
if missing or leaked:
    sys.exit(f"bad package: missing {sorted(missing)}, leaked {leaked}")
PY
echo "built resources/vscode-extension/$OUT"
