#!/usr/bin/env bash
# Package the VS Code bridge extension as a .vsix with @vscode/vsce.
# The .vsix is a build artifact (gitignored); the desktop build bundles it
# from resources/vscode-extension/. Usage: scripts/build_vsix.sh
set -euo pipefail
cd "$(dirname "$0")/../resources/vscode-extension"
VERSION=$(node -p "require('./package.json').version")
NAME=$(node -p "require('./package.json').name")
OUT="$NAME-$VERSION.vsix"
rm -f ./*.vsix
# --no-dependencies: the extension has none, so vsce need not run npm.
npx --yes @vscode/vsce@3 package --no-dependencies --allow-missing-repository --out "$OUT" </dev/null
# A package that lacks the code or the icon is worse than none; tests stay out.
python3 - "$OUT" <<'PY'
import sys
import zipfile

names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = {"extension/extension.js", "extension/lib/client.js", "extension/icon.png",
        "extension/package.json"}
missing = need - names
leaked = [n for n in names if n.startswith(("extension/test/", "extension/test-support/"))]
if missing or leaked:
    sys.exit(f"bad package: missing {sorted(missing)}, leaked {leaked}")
PY
echo "built resources/vscode-extension/$OUT"
