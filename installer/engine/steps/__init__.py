"""Step executors, one module per kind of step; the engine finds them by the type of a step's
params (installer.engine.params)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # installer.engine.steps.discover is imported by the wizard without the engine
    from installer.engine.runner import Executors


def default_executors() -> Executors:
    from installer.engine import params as p
    from installer.engine.steps import (
        checks,
        cordon,
        discover,
        hostfix,
        install,
        label,
        probe,
        record,
        rolechange,
        sample,
        uninstall,
        upgrade,
        verify,
        verifyhost,
    )

    return {
        p.DiscoverParams: discover.discover,
        p.GpuPodsParams: discover.gpu_pods,
        p.ProbeParams: probe.probe,
        p.HostChecksParams: checks.host_checks,
        p.ClusterChecksParams: checks.cluster_checks,
        p.HostFixParams: hostfix.host_fix,
        p.CordonParams: cordon.cordon,
        p.DrainParams: cordon.drain_node,
        p.UncordonParams: cordon.uncordon,
        p.VerifyHostParams: verifyhost.verify_host,
        p.RecordLabelsParams: record.record_labels,
        p.LabelParams: label.label,
        p.RelabelParams: label.label,
        p.VerifyRoleParams: rolechange.verify_role,
        p.HelmParams: install.install,
        p.VerifyKataDeployParams: verify.verify_kata_deploy,
        p.VerifyGpuOperatorParams: verify.verify_gpu_operator,
        p.SampleParams: sample.sample,
        p.HelmUninstallParams: uninstall.helm_uninstall,
        p.DeleteSampleParams: uninstall.delete_sample,
        p.DeleteCrdsParams: uninstall.delete_crds,
        p.PatchLabelsParams: uninstall.patch_labels,
        p.DeleteStateParams: uninstall.delete_state,
        p.RemoveHostAccessParams: uninstall.remove_host_access,
        p.VerifyUninstalledParams: uninstall.verify_uninstalled,
        p.OperandImagesParams: upgrade.operand_images,
        p.UpgradeHelmParams: upgrade.upgrade_helm,
        p.WaveParams: upgrade.wave,
        p.RollbackParams: upgrade.rollback,
    }
