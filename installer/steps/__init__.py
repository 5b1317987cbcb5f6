"""Step executors, one module per kind of step; the engine finds them by a step's action."""

from __future__ import annotations

from installer.engine import Executor


def default_executors() -> dict[str, Executor]:
    from installer.steps import discover, install, label, sample, verify

    return {
        "discover": discover.discover,
        "label": label.label,
        "helm": install.install,
        "verify-kata-deploy": verify.verify_kata_deploy,
        "verify-gpu-operator": verify.verify_gpu_operator,
        "sample": sample.sample,
    }
