"""Drift: how the cluster and the Kata hosts differ from what the answers say was installed.

Why built on the install's plan: the plan is already the difference between the answers and
the facts, so every change it would make (a label, a chart, a host fix) is drift, said the
way a re-run of the install would fix it - one engine, no second planner. What a plan does
not express is read here from the facts and `Observed` (a few cheap reads): the Kata
RuntimeClass, GPUs off vfio-pci, kata-deploy pods where no Kata node is, a boot config that
lost the IOMMU argument the running kernel still has, and hosts that could not be probed.
Pure: the same inputs give the same list, so each kind is tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from installer.answers.model import Answers
from installer.cluster.facts import STATE_CONFIGMAP, Facts, ProbeFailure
from installer.engine.plan import Change, Plan
from remote.fixes.base import FileView
from remote.fixes.grub import current_args
from remote.fixes.iommu_cmdline import iommu_arg
from remote.hostfacts import VFIO_DRIVERS, HostFacts

# The kinds, in the order the text output groups them.
KINDS = ("label", "cordon", "chart", "host", "runtimeclass", "vfio", "kata-deploy",
         "unchecked")
RERUN = "run the install again with these answers"


@dataclass(frozen=True)
class Drift:
    """One difference: what the answers (or the install) left, what is there now, and how
    to put it back."""

    kind: str
    target: str
    expected: str
    found: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class RuntimeClassSeen:
    """The Kata GPU RuntimeClass as the API server has it."""

    name: str
    handler: str | None
    kata_version: str | None  # its katacontainers.io/kata-version annotation


@dataclass(frozen=True)
class PodSeen:
    name: str
    node: str | None


@dataclass(frozen=True)
class Observed:
    """The reads beyond the install's facts. `runtime_class` None: it does not exist."""

    runtime_class_name: str
    runtime_class: RuntimeClassSeen | None
    kata_deploy_pods: tuple[PodSeen, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def differing_keys(current: Mapping[str, Any], planned: Mapping[str, Any],
                   prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two nested dicts (a list compares whole):
    which values drifted, named without showing them (a value may be a secret)."""
    out: list[str] = []
    for key in sorted(set(current) | set(planned), key=str):
        path = f"{prefix}{key}"
        a, b = current.get(key), planned.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += differing_keys(a, b, path + ".")
        elif key not in current or key not in planned or a != b:
            out.append(path)
    return out


def _label(change: Change) -> Drift:
    d = change.detail
    return Drift("label", change.target, f"{d['key']}={d['to']}",
                 f"{d['key']}={d['from']}" if d.get("from") else f"no {d['key']} label",
                 f"kubectl label node {change.target} {d['key']}={d['to']} --overwrite, or "
                 + RERUN)


def _record(change: Change) -> Drift:
    """The record of the nodes' labels before the first install is gone: uninstall can no
    longer put them back as they were."""
    return Drift("label", change.target, "the record of the nodes' labels before the install",
                 "missing: uninstall would remove the operator's labels instead of restoring "
                 "the nodes' own", "restore the ConfigMap from a backup if there is one; a "
                 "re-run of the install records the labels as they are now, not as before")


def _chart(change: Change, facts: Facts) -> list[Drift]:
    d = change.detail
    release, namespace = str(d.get("release")), str(d.get("namespace"))
    target = f"{namespace}/{release}"
    current = facts.cluster.release(release, namespace) if facts.cluster else None
    if current is None:
        return [Drift("chart", target, f"release deployed ({d.get('chart')} "
                      f"{d.get('version') or ''})".replace(" )", ")"),
                      "release missing", RERUN)]
    out = []
    if current.status != "deployed":
        out.append(Drift("chart", target, "status deployed", f"status {current.status}", RERUN))
    if d.get("version") and current.version != d["version"]:
        out.append(Drift("chart", target, f"chart version {d['version']}",
                         f"chart version {current.version}", RERUN))
    keys = differing_keys(current.values, d.get("values") or {})
    if keys:
        out.append(Drift("chart", target, "values as the answers give them",
                         "values differ at: " + ", ".join(keys), RERUN))
    return out or [Drift("chart", target, "the release as the answers give it",
                         change.description, RERUN)]


def _host(change: Change) -> Drift:
    fix = change.detail.get("fix", "")
    found = change.description.removeprefix(f"{change.target}: ")
    if change.condition and change.condition not in found:
        found += f" ({change.condition})"
    return Drift("host", change.target, f"host fix {fix} in place",
                 f"the install would now: {found}", f"{RERUN} (host fix {fix})")


def _boot_config(node: str, host: HostFacts) -> list[Drift]:
    """The running kernel has the IOMMU argument, the boot config lost it: the host works
    now and comes back from its next reboot without the IOMMU (no plan sees this, as the
    IOMMU groups are still there)."""
    if host.arch == "aarch64" or not host.gpus:
        return []
    arg = iommu_arg(host)
    if arg not in host.cmdline_args or arg in current_args(FileView(host)):
        return []
    return [Drift("host", node, f"{arg} in GRUB_CMDLINE_LINUX (/etc/default/grub)",
                  f"the running kernel has {arg}, the boot config no longer does: the next "
                  "boot starts without the IOMMU",
                  f"add {arg} back to GRUB_CMDLINE_LINUX in /etc/default/grub and regenerate "
                  "the boot config (update-grub); a re-run of the install does not, while the "
                  "IOMMU is on")]


def _backed_up(node: str, host: HostFacts, planned: set[str]) -> list[Drift]:
    """Files a host fix changed (its backup on the host says so) that no longer hold its
    change: one it created is gone, or one it edited is back to what it was before. The
    plan may not see it - a driver blacklist deleted while the driver is unloaded plans
    nothing until the next boot loads the driver again. A fix the plan makes again is
    said there already."""
    out = []
    for b in host.backups:
        if b.fix in planned:
            continue
        now = host.files.get(b.path)
        if b.content is None and now is None:
            found = "missing: host fix {fix} created it, and it is gone"
        elif b.content is not None and now == b.content:
            found = "back to its content before host fix {fix} (its backup's)"
        else:
            continue
        out.append(Drift("host", node, f"/{b.path} as host fix {b.fix} wrote it",
                         found.format(fix=b.fix),
                         f"{RERUN} (host fix {b.fix}); if it plans nothing, put the file back "
                         f"as the fix wrote it, or revert the fix (uninstall --revert-hosts)"))
    return out


def _vfio(node: str, host: HostFacts) -> list[Drift]:
    wrong = [f"{g.bdf} on {g.driver or 'no driver'}" for g in host.gpus
             if g.driver not in VFIO_DRIVERS]
    if not wrong:
        return []
    return [Drift("vfio", node, "every GPU on vfio-pci", ", ".join(wrong),
                  f"{RERUN} (host fix vfio-bind), or check nvidia-vfio-manager on {node}")]


def _runtime_class(answers: Answers, facts: Facts, observed: Observed) -> list[Drift]:
    name = observed.runtime_class_name
    rc = observed.runtime_class
    if rc is None:
        return [Drift("runtimeclass", name, f"RuntimeClass {name} (kata-deploy creates it)",
                      "missing", f"{RERUN} (kata-deploy's chart creates it)")]
    out = []
    if rc.handler != name:
        out.append(Drift("runtimeclass", name, f"handler {name}", f"handler {rc.handler}",
                         f"{RERUN} (kata-deploy's chart sets it)"))
    kd = answers.kata_deploy
    release = facts.cluster.release(kd.release, kd.namespace) if facts.cluster else None
    installed = release.app_version if release else ""
    if rc.kata_version and installed and rc.kata_version != installed:
        out.append(Drift("runtimeclass", name,
                         f"katacontainers.io/kata-version {installed} (the installed "
                         "kata-deploy)", f"katacontainers.io/kata-version {rc.kata_version}",
                         f"{RERUN} (kata-deploy's chart writes it)"))
    return out


def _kata_deploy_pods(kata: Sequence[str], observed: Observed, namespace: str) -> list[Drift]:
    chosen = set(kata)
    return [Drift("kata-deploy", pod.node or "(unscheduled)",
                  f"kata-deploy only on the Kata nodes ({', '.join(sorted(chosen)) or 'none'})",
                  f"pod {namespace}/{pod.name} runs there",
                  f"remove the node's workload label or choose it for Kata in the answers, "
                  f"then {RERUN}")
            for pod in observed.kata_deploy_pods if pod.node and pod.node not in chosen]


def drift(answers: Answers, facts: Facts, plan: Plan, observed: Observed) -> list[Drift]:
    """Every difference, grouped by kind (KINDS order), each kind in plan or node order."""
    found: list[Drift] = []
    for change in plan.changes:
        if change.kind == "label":
            found.append(_label(change))
        elif change.kind == "helm":
            found += _chart(change, facts)
        elif change.kind == "host":
            found.append(_host(change))
        elif change.kind == "cluster" and change.target == "/".join(STATE_CONFIGMAP):
            found.append(_record(change))
        elif change.kind == "cluster" and change.detail.get("left"):
            found.append(Drift("cordon", change.target, "schedulable",
                               f"cordoned for {change.detail['left']} by an interrupted run",
                               f"{RERUN}: it uncordons the node"))
    planned: dict[str, set[str]] = {}
    for change in plan.changes:
        if change.kind == "host":
            planned.setdefault(change.target, set()).add(str(change.detail.get("fix", "")))
    kata = answers.nodes.kata_nodes(facts.cluster)
    for node in kata:
        host = facts.hosts.get(node)
        if isinstance(host, ProbeFailure):
            found.append(Drift("unchecked", node, "the host probed over SSH",
                               f"could not check: {host.kind}: {host.message}",
                               host.remedy or "make the host reachable over SSH, then run "
                               "status again"))
        elif host is None:
            found.append(Drift("unchecked", node, "the host probed over SSH",
                               "could not check: not probed", "run status again"))
        else:
            boot = _boot_config(node, host)  # says more of GRUB than its backup can
            found += boot
            found += [d for d in _backed_up(node, host, planned.get(node, set()))
                      if not (boot and d.expected.startswith("/etc/default/grub "))]
            found += _vfio(node, host)
    found += _runtime_class(answers, facts, observed)
    found += _kata_deploy_pods(kata, observed, answers.kata_deploy.namespace)
    return sorted(found, key=lambda d: KINDS.index(d.kind))


def checked(answers: Answers, facts: Facts, observed: Observed) -> dict[str, Any]:
    """What status looked at, for --json: a clean result names what it covers."""
    kd, op = answers.kata_deploy, answers.gpu_operator
    kata = answers.nodes.kata_nodes(facts.cluster)
    return {
        "nodes": sorted(n.name for n in facts.cluster.nodes) if facts.cluster else [],
        "kataNodes": list(kata),
        "releases": [f"{kd.namespace}/{kd.release}", f"{op.namespace}/{op.release}"],
        "hosts": {n: ("could not check" if isinstance(facts.hosts.get(n), ProbeFailure)
                      or n not in facts.hosts else "probed") for n in kata},
        "runtimeClass": observed.runtime_class_name,
        "kataDeployPods": len(observed.kata_deploy_pods),
    }
