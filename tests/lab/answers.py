"""The lab's answers file: the installer pointed at the lab with the lab's own credentials.

GPU nodes go to Kata, the CPU node is left alone, host fixes are allowed (the lab's hosts
are simulated, so `apply` is safe here), and both charts come from the stand-in chart
directories - the same local-path route an air-gapped site takes.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.lab.lab import LabInfo


def lab_answers(info: LabInfo, *, sample_timeout: int = 300, chart_timeout: str = "3m",
                fixes: str = "apply", versions: tuple[str, str] = ("3.29.0", "v26.3.1"),
                choices: dict[str, str] | None = None) -> dict:
    """`versions`: (kata-deploy, GPU Operator), each from the lab's stand-in chart of that
    version; `choices`: node -> kata | traditional | leave (default: GPU nodes to Kata)."""
    nodes = [n for n in info.nodes if not n.name.startswith("scale-node-")]
    first = next(n for n in nodes if n.ssh)
    kd_version, op_version = versions

    def chart(name: str, version: str) -> str:
        return info.chart_versions.get(name, {}).get(version) or info.charts[name]

    choices = choices or {n.name: "kata" if n.profile.startswith("gpu") else "leave"
                          for n in nodes}
    return {
        "apiVersion": "gpu-kata-installer.io/v1alpha1",
        "kind": "Answers",
        "cluster": {"kubeconfig": info.kubeconfig},
        "ssh": {"user": first.ssh_user, "identityFile": first.identity_file,
                "knownHosts": first.known_hosts, "useAgent": False, "configFile": None,
                "hostKeyPolicy": "strict", "sudo": {"mode": "passwordless"}},
        "nodes": {"default": "traditional", "items": [
            {"name": n.name, "choice": choices.get(n.name, "leave")} for n in nodes]},
        "hostFixes": {k: fixes for k in ("iommu", "nouveauBlacklist", "vfioBind",
                                         "kubeletFeatureGate", "reboot")},
        "kataDeploy": {"chart": {"path": chart("kata-deploy", kd_version)},
                       "version": kd_version, "timeout": chart_timeout},
        "gpuOperator": {"chart": {"path": chart("gpu-operator", op_version)},
                        "version": op_version, "timeout": chart_timeout},
        "sample": {"run": True, "timeoutSeconds": sample_timeout},
    }


def write_lab_answers(info: LabInfo, path: Path | None = None, **kw) -> Path:
    path = path or Path(info.state_dir) / "answers.yaml"
    data = lab_answers(info, **kw)
    path.write_text("# Written by `python -m tests.lab up`: the installer pointed at the lab.\n"
                    + yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o600)
    return path
