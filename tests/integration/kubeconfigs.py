"""Kubeconfig shapes against the lab, shared by the kube access tests
(tests/integration/test_kube_auth.py, test_kube_matrix.py): the lab's admin kubeconfig as a
document, a private file of one, and discovery in a fresh interpreter (so what it imported
is its own)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

_DISCOVER = """
import json, sys
from installer.cluster import kube
k = kube.connect(sys.argv[1], None)
facts = kube._discover_sync(k)
print(json.dumps({"nodes": len(facts.nodes), "context": k.context,
                  "kubernetes_imported": "kubernetes" in sys.modules}))
"""


def discover(kubeconfig: Path) -> dict:
    """Discovery through `kubeconfig` in a fresh interpreter: nodes, context, and whether it
    imported the kubernetes client."""
    out = subprocess.run([sys.executable, "-c", _DISCOVER, str(kubeconfig)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "KUBECONFIG": "/nonexistent"})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def admin(lab) -> dict:
    """The lab's admin kubeconfig (client certificate, file references) as a document."""
    return yaml.safe_load(lab.kubeconfig.read_text())


def b64(path: str) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


def private(path: Path, config: dict) -> Path:
    """`config` written at `path`, readable by its owner only (as kubeconfigs are)."""
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
