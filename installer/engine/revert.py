"""The host half of the uninstall plan: what the installer's host fixes changed, found on the
hosts themselves (the backups the fixes left, read by the probe), reverted with consent or
listed as left in place - never left unsaid.

With consent (`--revert-hosts` or `uninstall: {revertHosts: true}`), each Kata host with
backups gets, after the charts are removed, one change that restores its files (the diff
current -> restored is its preview) and a reboot when the reverted fixes need one. GPUs the
GPU Operator v26.3.0 - v26.3.3 leaves on vfio-pci (its vfio-manager's preStop hook cannot
run) are unbound in the same change, or released by that reboot.
"""

from __future__ import annotations

from typing import Any

from installer.answers.model import Answers
from installer.cluster.facts import Facts, ProbeFailure, distribution_of
from installer.engine.params import HostFixParams, ProbeParams
from installer.engine.plan import Change, Step, reached_by, ssh_target
from installer.engine.rolechange import operator_keeps_vfio
from installer.hosts.hostplan import PlannedFix
from remote.fixes import reboot
from remote.fixes.revert import left_in_place, plan_revert, reboot_reasons, vfio_held
from remote.hostfacts import HostFacts

HINT = "run uninstall with --revert-hosts (or set uninstall.revertHosts: true) to restore them"


def consented(answers: Answers, flag: bool) -> bool:
    return flag or answers.uninstall.revert_hosts


def probe_steps(answers: Answers, facts: Facts) -> list[Step[Any]]:
    """Read the Kata hosts (read-only) for the backups of the fixes that ran there."""
    if facts.cluster is None:
        return []
    cluster = facts.cluster
    # a node the answers name that has left the cluster has no host to read
    unprobed = [n for n in answers.nodes.kata_nodes(cluster)
                if n not in facts.hosts and cluster.node(n) is not None]
    if not unprobed:
        return []
    targets = tuple(ssh_target(answers, n, cluster.node(n)) for n in unprobed)
    return [Step("probe/hosts", "gather",
                 f"Probe {len(unprobed)} host(s) {reached_by(targets)} for the installer's "
                 "host changes (read-only): " + ", ".join(unprobed), ProbeParams(targets))]


def revert_steps(answers: Answers, facts: Facts, consent: bool
                 ) -> tuple[list[Step[HostFixParams]], list[str]]:
    """Per Kata host: the revert (and reboot) with consent, else the changes left in place;
    and the plan's warnings."""
    steps: list[Step[HostFixParams]] = []
    warnings: list[str] = []
    defect = operator_keeps_vfio(answers, facts)
    for name in answers.nodes.kata_nodes(facts.cluster):
        host = facts.hosts.get(name)
        node = facts.cluster.node(name) if facts.cluster else None
        target = ssh_target(answers, name, node)
        if isinstance(host, ProbeFailure):
            warnings.append(f"{name}: its host files could not be read ({host.kind}: "
                            f"{host.message}); any host changes the installer made there are "
                            "left in place")
            if consent:  # asked to revert: refused credentials stop the run before it starts
                steps.append(Step(f"revert/{name}", "change", f"Revert host changes on {name}",
                                  HostFixParams(name, target),
                                  note="its host could not be read: nothing reverted there"))
            continue
        if not isinstance(host, HostFacts):
            continue
        found = left_in_place(host)
        held = vfio_held(host) if defect else []
        if not consent:
            if found:
                warnings.append(f"{name}: host changes left in place: {', '.join(found)} - "
                                + HINT)
            if held:
                warnings.append(
                    f"{name}: GPU Operator {defect} leaves "
                    f"{', '.join(d.bdf for d in held)} on vfio-pci after it is removed (its "
                    "vfio-manager's preStop hook cannot run) - reboot the host, or " + HINT)
            if found or held:
                steps.append(Step(f"revert/{name}", "change",
                                  f"Host changes on {name} (left in place)",
                                  HostFixParams(name, target),
                                  note="left in place: " + ", ".join(
                                      found + [f"{d.bdf} on vfio-pci" for d in held])))
            continue
        change = plan_revert(host, release_vfio=bool(held),
                             distribution=distribution_of(node) if node else None)
        if change is None:
            continue
        title = (f"Revert host changes on {name}" if found
                 else f"Unbind {name}'s GPUs from vfio-pci")
        steps.append(Step(f"revert/{name}", "change", title,
                          HostFixParams(name, target, PlannedFix(change, "apply")),
                          (Change("host", name, f"{name}: {change.description}",
                                  {"fix": change.name, "policy": "apply",
                                   "preview": change.preview, "files": list(change.files)},
                                  policy="apply", ask_first=True),)))
        if change.needs_reboot:
            boot = reboot.plan(host, reason="for " + ", ".join(reboot_reasons(host)))
            steps.append(Step(f"revert/{name}/reboot", "change", f"Reboot {name}",
                              HostFixParams(name, target, PlannedFix(boot, "apply")),
                              (Change("host", name, f"{name}: {boot.description}",
                                      {"fix": boot.name, "policy": "apply",
                                       "preview": boot.preview},
                                      policy="apply", ask_first=True),)))
    return steps, warnings
