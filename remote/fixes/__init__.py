"""Host fixes: each module plans one change from HostFacts (see base.py for the contract).

`plan_fixes` plans them all in the order they must run, threading one FileView so two
edits of the same file compose, and adds the reboot when something needs one.
"""

from __future__ import annotations

from remote.fixes import (
    iommu_cmdline,
    kubelet_gate,
    nouveau_blacklist,
    nvidia_driver,
    reboot,
    vfio_bind,
)
from remote.fixes.base import (
    FileView,
    FixBlocked,
    HostChange,
    apply_change,
    undo_change,
)
from remote.hostfacts import HostFacts

FIX_NAMES: tuple[str, ...] = (iommu_cmdline.NAME, nouveau_blacklist.NAME, nvidia_driver.NAME,
                              vfio_bind.NAME, kubelet_gate.NAME, reboot.NAME)

__all__ = ["FIX_NAMES", "FileView", "FixBlocked", "HostChange", "apply_change",
           "awaiting_reboot", "plan_fixes", "undo_change"]


def awaiting_reboot(facts: HostFacts, view: FileView | None = None) -> list[str]:
    """Fixes already written to the host (by this plan's `view`, or by an earlier run cut
    short before its reboot) that take effect only when the host reboots."""
    view = view or FileView(facts)
    return ([iommu_cmdline.NAME] if iommu_cmdline.pending_reboot(facts) else []) + \
        ([nvidia_driver.NAME] if nvidia_driver.pending_reboot(facts, view) else [])


def plan_fixes(facts: HostFacts, host_root: str = "/", *, kubelet_version: str | None = None,
               distribution: str | None = None, only: frozenset[str] | None = None
               ) -> tuple[list[HostChange], list[FixBlocked]]:
    """Every change this host needs, in order, plus the fixes that cannot be planned
    (with reasons). A second call on the facts of a fixed host returns no changes.
    `kubelet_version` and `distribution` are the node's, as the cluster reports them."""
    view = FileView(facts)
    changes: list[HostChange] = []
    blocked: list[FixBlocked] = []
    if not facts.gpus:
        return changes, blocked  # nothing to prepare on a host without NVIDIA GPUs

    def want(name: str) -> bool:
        return only is None or name in only

    steps = [
        (iommu_cmdline.NAME, lambda: iommu_cmdline.plan(facts, host_root, view)),
        (nouveau_blacklist.NAME, lambda: nouveau_blacklist.plan(facts, host_root, view)),
        (nvidia_driver.NAME, lambda: nvidia_driver.plan(facts, host_root, view)),
        (vfio_bind.NAME, lambda: vfio_bind.plan(facts, host_root, view)),
        (kubelet_gate.NAME, lambda: kubelet_gate.plan(facts, host_root, view,
                                                      kubelet_version=kubelet_version,
                                                      distribution=distribution)),
    ]
    for name, fn in steps:
        if not want(name):
            continue
        try:
            c = fn()
        except FixBlocked as e:
            err = e
            iommu_coming = (any(c.name == iommu_cmdline.NAME for c in changes)
                            or iommu_cmdline.pending_reboot(facts))
            if name == vfio_bind.NAME and not facts.iommu_groups and iommu_coming:
                err = FixBlocked(name, "waits for the IOMMU (iommu-cmdline, then reboot)",
                                 "Plan again after the reboot.",
                                 after_reboot=vfio_bind.after_reboot(facts))
            blocked.append(err)
            continue
        if c is not None:
            changes.append(c)
    reasons = [c.name for c in changes if c.needs_reboot]
    reasons += [f"{name} pending" for name in awaiting_reboot(facts, view) if name not in reasons]
    if reasons and want(reboot.NAME):
        changes.append(reboot.plan(facts, host_root, "for " + ", ".join(reasons)))
    else:  # no reboot in this plan: nothing happens "after the reboot"
        blocked = [FixBlocked(b.fix, b.reason, b.remedy) for b in blocked]
    return changes, blocked
