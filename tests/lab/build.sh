#!/usr/bin/env bash
# Build the lab's control-plane binaries from their Go modules, once per machine.
#
# Why a script and not `go install`: k8s.io/kubernetes and etcd's server module carry
# replace directives, so they only build from a throwaway module that repeats them.
# Binaries land in a directory keyed by version outside the repo, so a second run is
# a no-op and CI on the same machine reuses them; nothing here is ever committed.
#
# kwok is built from a patched copy of its module (kwok_patch.py: pod exec refuses paths,
# ends stdin, reports exit codes as a kubelet does); the key carries that script's hash, so
# a changed patch rebuilds kwok, while the unpatched kube-*/etcd of the same versions are
# reused from an earlier key.
set -euo pipefail

K8S_VERSION=${LAB_K8S_VERSION:-v1.35.4}
ETCD_VERSION=${LAB_ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${LAB_KWOK_VERSION:-v0.8.0}
CACHE=${LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-kata-lab}
HERE=$(cd "$(dirname "$0")" && pwd)
PATCH="$HERE/kwok_patch.py"
PATCH_HASH=$(sha256sum "$PATCH" | cut -c1-10)
BIN="$CACHE/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-lab-$PATCH_HASH"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false

need() { for b in "$@"; do [ -x "$BIN/$b" ] || return 0; done; return 1; }

if ! need kube-apiserver kube-controller-manager kube-scheduler etcd kwok kwokctl; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$BIN"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# kube-* and etcd are not patched: take them from a directory of the same versions.
for b in kube-apiserver kube-controller-manager kube-scheduler etcd; do
  [ -x "$BIN/$b" ] && continue
  for old in "$CACHE/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-"*/"$b"; do
    [ -x "$old" ] || continue
    ln "$old" "$BIN/$b.tmp" 2>/dev/null || cp "$old" "$BIN/$b.tmp"
    mv "$BIN/$b.tmp" "$BIN/$b"
    break
  done
done

build_kubernetes() {
  need kube-apiserver kube-controller-manager kube-scheduler || return 0
  local m="$work/k8s" minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  mkdir -p "$m" && cd "$m"
  go mod init lab/k8s >/dev/null 2>&1
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local staging=${K8S_VERSION/v1./v0.}
  grep -E '^\s*k8s.io/[a-z0-9-]+ v0\.0\.0\s*$' "$gomod" | awk '{print $1}' | sort -u | while read -r mod; do
    echo "replace $mod => $mod $staging" >> go.mod
  done
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION" >/dev/null
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
    [ -x "$BIN/$cmd" ] && continue
    echo "building $cmd $K8S_VERSION" >&2
    go build -trimpath -ldflags "$ld" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
    mv "$BIN/$cmd.tmp" "$BIN/$cmd"
  done
}

build_etcd() {
  [ -x "$BIN/etcd" ] && return
  local m="$work/etcd"
  mkdir -p "$m" && cd "$m"
  go mod init lab/etcd >/dev/null 2>&1
  echo "building etcd $ETCD_VERSION" >&2
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

build_kwok() {
  need kwok kwokctl || return 0
  local m="$work/kwok" src="$work/kwok-src" dir
  dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  python3 "$PATCH" "$src"  # fails the build when an edit no longer matches
  mkdir -p "$m" && cd "$m"
  go mod init lab/kwok >/dev/null 2>&1
  go mod edit -require "sigs.k8s.io/kwok@$KWOK_VERSION" -replace "sigs.k8s.io/kwok=$src"
  go get "sigs.k8s.io/kwok/cmd/kwok" "sigs.k8s.io/kwok/cmd/kwokctl" >/dev/null
  for cmd in kwok kwokctl; do
    [ -x "$BIN/$cmd" ] && continue
    echo "building $cmd $KWOK_VERSION (lab patch $PATCH_HASH)" >&2
    go build -trimpath -ldflags "-s -w" -o "$BIN/$cmd.tmp" "sigs.k8s.io/kwok/cmd/$cmd"
    mv "$BIN/$cmd.tmp" "$BIN/$cmd"
  done
}

build_etcd
build_kwok
build_kubernetes
echo "$BIN"
