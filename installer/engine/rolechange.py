"""A node's role changed in the answers (Kata <-> traditional) on a cluster where both charts are
installed: which nodes, and what leaving Kata means for the host.

Why a relabel alone is not enough: the node's GPU pods lose their devices under them, so the
node is cordoned and its NVIDIA pods evicted first; a node leaving Kata keeps its GPUs on
vfio-pci where the GPU Operator v26.3.0 - v26.3.3 runs (its vfio-manager's preStop hook
cannot run, domain.md section 9), and the installer's own host fixes (the vfio-pci ids= and
the NVIDIA driver blacklist) would claim them again at the next boot even where the operator
unbinds them. So those two fixes' files go back to their backups (remote.fixes.revert, only
those fixes: the IOMMU and nouveau changes serve a traditional node too), with the reboot
that needs; the GPUs still on vfio-pci are unbound over SSH when no reboot will release
them. Each under the host-fix consent policies; a `skip` leaves a warning naming the files.

Pure: installer.engine.plan builds the steps (cordon, drain, relabel, host, verify,
uncordon) from what this says.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from installer.answers.model import Answers
from installer.answers.versions import defect_in
from installer.charts.values import WORKLOAD_FOR_CHOICE
from installer.cluster.facts import Facts, ProbeFailure, distribution_of
from installer.hosts.hostplan import POLICY_FIELD, PlannedFix
from remote.fixes import nvidia_driver, reboot, vfio_bind
from remote.fixes.revert import file_reverts, plan_revert, reboot_reasons, vfio_held
from remote.hostfacts import BACKUP_INFIX, HostFacts
from remote.versionparse import parse

ROLE_CHANGE = "role-change"  # the cordon's mark on the node
# The fixes whose files would put a traditional node's GPUs back on vfio-pci at boot.
ROLE_FIXES = (vfio_bind.NAME, nvidia_driver.NAME)
KATA, TRADITIONAL = WORKLOAD_FOR_CHOICE["kata"], WORKLOAD_FOR_CHOICE["traditional"]


@dataclass(frozen=True)
class RoleChange:
    node: str
    have: str  # the workload label now
    want: str

    @property
    def role(self) -> str:
        return "kata" if self.want == KATA else "traditional"


def role_changes(answers: Answers, facts: Facts) -> list[RoleChange]:
    """Nodes whose workload label goes vm-passthrough <-> container, once both charts are
    installed (on a first install a relabel stays a plain label step)."""
    cluster = facts.cluster
    if cluster is None or not all(
            cluster.release(c.release, c.namespace)
            for c in (answers.kata_deploy, answers.gpu_operator)):
        return []
    out = []
    for item in answers.nodes.items:
        node = cluster.node(item.name)
        want = WORKLOAD_FOR_CHOICE.get(item.choice) if item.choice != "leave" else None
        if node and want and node.workload in (KATA, TRADITIONAL) and node.workload != want:
            out.append(RoleChange(item.name, node.workload, want))
    return out


def operator_keeps_vfio(answers: Answers, facts: Facts) -> str:
    """The installed GPU Operator's version when its vfio-manager leaves GPUs on vfio-pci as
    it goes (v26.3.0 - v26.3.3); "" otherwise."""
    op = answers.gpu_operator
    current = facts.cluster.release(op.release, op.namespace) if facts.cluster else None
    version = parse(current.version) if current else None
    return current.version if current and version and defect_in(
        version, "26.3.0", "26.3.3") else ""


@dataclass(frozen=True)
class LeavingKata:
    """What the host of a node leaving Kata needs: `release` (revert and/or unbind), then
    `reboot`; `warnings` for what is left undone and why."""

    release: PlannedFix | None = None
    reboot: PlannedFix | None = None
    warnings: tuple[str, ...] = ()


def _policy(answers: Answers, fixes: list[str]) -> str:
    said = [getattr(answers.host_fixes, POLICY_FIELD[f]) for f in fixes]
    return "skip" if "skip" in said else "ask" if "ask" in said else "apply"


def leaving_kata(answers: Answers, facts: Facts, node: str) -> LeavingKata:
    """Plan the host side of a Kata -> traditional change from the host's probe."""
    host = facts.hosts.get(node)
    if isinstance(host, ProbeFailure):
        return LeavingKata(warnings=(
            f"{node}: its host could not be probed ({host.kind}: {host.message}); its GPUs "
            "may stay on vfio-pci and its role verification will say so",))
    if not isinstance(host, HostFacts):
        return LeavingKata()
    own = replace(host, backups=[b for b in host.backups if b.fix in ROLE_FIXES])
    files = [f"/{r.path}" for r in file_reverts(own)]
    defect = operator_keeps_vfio(answers, facts)
    held = vfio_held(host)
    policy = _policy(answers, [vfio_bind.NAME, *{b.fix for b in own.backups}])
    reboot_policy = answers.host_fixes.reboot
    warnings: list[str] = []
    if files and (policy == "skip" or reboot_policy == "skip"):
        warnings.append(
            f"{node}: the installer's {', '.join(ROLE_FIXES)} files stay "
            f"({', '.join(files)}) because hostFixes says skip: they put its GPUs back on "
            "vfio-pci at the next boot; restore each from its backup "
            f"(<file>{BACKUP_INFIX}<fix>.bak), or run `gpu-kata-installer uninstall "
            "--revert-hosts` when it leaves the cluster's GPU stack")
        own = replace(own, backups=[])
    if policy == "skip" and held and defect:
        warnings.append(f"{node}: GPU Operator {defect} leaves {', '.join(d.bdf for d in held)}"
                        " on vfio-pci and hostFixes.vfioBind is skip: unbind them (or reboot)")
        held = []
    change = plan_revert(own, release_vfio=bool(held and defect),
                         distribution=_distribution(facts, node))
    if change is None:
        return LeavingKata(warnings=tuple(warnings))
    boot = None
    if change.needs_reboot:
        boot = PlannedFix(reboot.plan(host, reason="for " + ", ".join(reboot_reasons(own))),
                          reboot_policy)
    return LeavingKata(PlannedFix(change, policy), boot, tuple(warnings))


def _distribution(facts: Facts, node: str) -> str | None:
    n = facts.cluster.node(node) if facts.cluster else None
    return distribution_of(n) if n else None
