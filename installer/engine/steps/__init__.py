"""Step executors, one module per kind of step; the engine finds them by a step's action."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # installer.engine.steps.discover is imported by the wizard without the engine
    from installer.engine.runner import Executor


def default_executors() -> dict[str, Executor]:
    from installer.engine.steps import (
        checks,
        discover,
        hostfix,
        install,
        label,
        probe,
        record,
        sample,
        uninstall,
        verify,
        verifyhost,
    )

    return {
        "discover": discover.discover,
        "gpu-pods": discover.gpu_pods,
        "probe": probe.probe,
        "host-checks": checks.host_checks,
        "cluster-checks": checks.cluster_checks,
        "host-fix": hostfix.host_fix,
        "verify-host": verifyhost.verify_host,
        "record-labels": record.record_labels,
        "label": label.label,
        "helm": install.install,
        "verify-kata-deploy": verify.verify_kata_deploy,
        "verify-gpu-operator": verify.verify_gpu_operator,
        "sample": sample.sample,
        "helm-uninstall": uninstall.helm_uninstall,
        "delete-sample": uninstall.delete_sample,
        "delete-crds": uninstall.delete_crds,
        "patch-labels": uninstall.patch_labels,
        "delete-state": uninstall.delete_state,
        "verify-uninstalled": uninstall.verify_uninstalled,
    }
