"""The host half of the plan: check verdicts and host fixes, both pure functions of facts.

Checks and fixes are computed when the plan is built, so the dry-run shows each node's
verdicts and the exact diff of every host edit. A failing check is blocking unless a
planned fix covers it; a fix is planned unless the answers say `skip` for it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from installer.answers.model import Answers
from installer.cluster.facts import Facts, NodeFacts, ProbeFailure, distribution_of
from installer.errors import Problem, UserError
from installer.hosts.checks import CheckResult, NodeInfo, run_checks

if TYPE_CHECKING:  # remote.fixes is imported when a host is planned
    from remote.fixes import HostChange

# Which fix makes which check pass.
FIXED_BY = {
    "iommu-enabled": "iommu-cmdline",
    "nouveau": "nouveau-blacklist",
    "host-nvidia-driver": "nvidia-driver-off",
    "vfio-available": "vfio-bind",
    "kubelet-podresources-gate": "kubelet-gate",
}
POLICY_FIELD = {
    "iommu-cmdline": "iommu",
    "nouveau-blacklist": "nouveau_blacklist",
    "nvidia-driver-off": "vfio_bind",
    "vfio-bind": "vfio_bind",
    "kubelet-gate": "kubelet_feature_gate",
    "reboot": "reboot",
}


# Probe failures that are the operator's credentials, not the host: bad input (exit 2).
CREDENTIAL_FAILURES = ("auth", "identity")


def refused_credentials(facts: Facts, needed: Collection[str] | None = None
                        ) -> UserError | None:
    """Every host whose SSH login the operator's credentials could not make, as one error;
    with `needed`, only those of these hosts (a plan that reads a host only to list what is
    there - uninstall without a revert - goes on, and says what it could not read)."""
    refused = {name: host for name, host in sorted(facts.hosts.items())
               if isinstance(host, ProbeFailure) and host.kind in CREDENTIAL_FAILURES
               and (needed is None or name in needed)}
    if not refused:
        return None
    return UserError("SSH refused the credentials", [Problem(
        f"ssh ({name})", f"{host.kind}: {host.message}",
        (host.remedy + " " if host.remedy else "") + "Set ssh.user, ssh.identityFile or "
        "ssh.passphraseEnv in the answers (or nodes.items[].user for this node).")
        for name, host in refused.items()])


def node_info(node: NodeFacts | None) -> NodeInfo | None:
    return NodeInfo(node.kubelet_version, node.container_runtime,
                    distribution_of(node)) if node else None


@dataclass(frozen=True)
class PlannedFix:
    """One host fix as planned (remote.fixes' change) and the policy it runs under; its JSON
    (installer.engine.params.params_json) is the change's fields and `policy`, flat."""

    change: HostChange = field(metadata={"flatten": True})
    policy: str


@dataclass(frozen=True)
class AfterRebootFix:
    """A fix the re-probe after this plan's reboot will plan: shown, and consented to, now."""

    name: str
    description: str
    preview: str
    policy: str


@dataclass(frozen=True)
class HostPlan:
    checks: tuple[CheckResult, ...]
    fixes: tuple[PlannedFix, ...]
    deferred: tuple[str, ...]  # fixes that wait for something (a reboot), with the reason
    covered: tuple[str, ...]  # failing checks a planned (or deferred) fix will make pass
    unreachable: str = ""
    after_reboot: tuple[AfterRebootFix, ...] = ()


def plan_host(answers: Answers, facts: Facts, name: str) -> HostPlan:
    from remote.fixes import awaiting_reboot, plan_fixes

    host = facts.hosts.get(name)
    if isinstance(host, ProbeFailure):
        return HostPlan((), (), (), (), f"{host.kind}: {host.message}"
                        + (f" ({host.remedy})" if host.remedy else ""))
    node = facts.cluster.node(name) if facts.cluster else None
    results = run_checks(host, node_info(node), frozenset(answers.checks.ignore))
    wanted = frozenset(f for f, field in POLICY_FIELD.items()
                       if getattr(answers.host_fixes, field) != "skip")
    changes, blocked = plan_fixes(host, kubelet_version=node.kubelet_version if node else None,
                                  distribution=distribution_of(node) if node else None,
                                  only=wanted)
    planned = {c.name for c in changes}
    deferred = tuple(f"{b.fix}: {b.reason}" for b in blocked)
    will_fix = planned | {b.fix for b in blocked if "reboot" in b.reason}
    if "reboot" in planned:  # fixes an interrupted run wrote, which the reboot completes
        will_fix |= set(awaiting_reboot(host))
    covered = tuple(r.name for r in results
                    if r.status == "fail" and FIXED_BY.get(r.name) in will_fix)
    fixes = tuple(PlannedFix(c, getattr(answers.host_fixes, POLICY_FIELD[c.name]))
                  for c in changes)
    after_reboot = tuple(AfterRebootFix(b.fix, b.after_reboot.description,
                                        b.after_reboot.preview,
                                        getattr(answers.host_fixes, POLICY_FIELD[b.fix]))
                         for b in blocked if b.after_reboot)
    return HostPlan(tuple(results), fixes, deferred, covered, after_reboot=after_reboot)
