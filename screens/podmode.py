"""The SSH screen's other way in: through the cluster (answers hostAccess: pod).

What it shows: the choice of mode, the pod's image and namespace, the permissions pod mode
needs (so an operator can ask for them before trying), and the answer of the API server when
asked - one SelfSubjectAccessReview per permission, read-only, as `kubectl auth can-i`.
Kept apart from screens/ssh.py, which stays about SSH.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text

from installer.answers.model import Answers
from installer.charts.registry import mirror_of
from installer.cluster.facts import Facts
from installer.errors import UserError
from installer.textsafe import display
from screens.base import Field

if TYPE_CHECKING:
    from installer.hosts.podrbac import Permission

MODE_FIELDS = [
    Field("host-access", "Reach the hosts", "hostAccess.mode", "select",
          (("over SSH", "ssh"), ("through the cluster (a privileged pod per node)", "pod"))),
]

POD_FIELDS = [
    Field("pod-image", "Pod image", "hostAccess.podImage"),
    Field("pod-namespace", "Pod namespace", "hostAccess.namespace"),
]

MODE_HELP = {
    "ssh": "The installer connects to each Kata node's host over SSH, as set below.",
    "pod": "A short-lived privileged pod per node (hostPID, the host's root mounted) runs "
           "the probe and host fixes through pods/exec; no SSH. Each is deleted after its step.",
}


def exec_by_get(facts: Facts | None) -> bool:
    """Whether the API server authorizes exec as `get pods/exec` (before Kubernetes 1.31);
    unknown versions are taken as current ones."""
    version = facts.cluster.server_version if facts and facts.cluster else None
    m = re.match(r"v?(\d+)\.(\d+)", version or "")
    return bool(m) and (int(m[1]), int(m[2])) < (1, 31)


def image_help(answers: Answers) -> Text:
    """Where the pod's image is pulled from: under images.registry when that is set."""
    image = answers.host_access.pod_image
    registry = answers.images.registry
    text = Text("Any image with a POSIX shell; ", style="dim")
    if registry:
        text.append(f"pulled as {display(mirror_of(image, registry))} (under "
                    "images.registry)", style="dim")
    else:
        text.append("pulled as is, or under images.registry when that is set", style="dim")
    return text


def permissions(answers: Answers, facts: Facts | None) -> tuple[Permission, ...]:
    from installer.hosts.podrbac import pod_mode_permissions

    return pod_mode_permissions(answers.host_access.namespace, exec_by_get=exec_by_get(facts))


def needed_text(perms: tuple[Permission, ...]) -> Text:
    """Every permission pod mode needs, grouped by scope: what to ask a cluster admin for."""
    groups: dict[str, dict[str, list[str]]] = {}
    for p in perms:
        what = f"{p.what.removesuffix('s')} {p.name}" if p.name else p.what
        scope = f"in {p.scope}" if p.namespace else p.scope
        groups.setdefault(scope, {}).setdefault(what, []).append(p.verb)
    text = Text("Pod mode needs (ctrl+r asks the API server, read-only):\n")
    for scope, whats in sorted(groups.items(), key=lambda g: g[0] == "cluster-wide"):
        text.append(f"  {scope}:\n", style="bold")
        text.append("    " + " · ".join(f"{w}: {', '.join(verbs)}" for w, verbs in
                                        whats.items()) + "\n")
    return text


@dataclass(frozen=True)
class PodCheck:
    """What the API server answered: the permissions it refused, or why it could not ask."""

    namespace: str
    context: str | None = None
    missing: tuple[Permission, ...] = ()
    error: str | None = None


def ask(kube: Any, answers: Answers, facts: Facts | None) -> PodCheck:
    """The same reviews check_pod_mode asks, kept as the list of what is missing so each is
    shown with its `kubectl auth can-i` line (blocking: run in a thread)."""
    from installer.hosts.podrbac import missing_permissions

    ns = answers.host_access.namespace
    missing = missing_permissions(kube, permissions(answers, facts))
    return PodCheck(ns, getattr(kube, "context", None), tuple(missing))


def check_text(check: PodCheck) -> Text:
    text = Text()
    ctx = f"context '{display(check.context)}'" if check.context else "the context"
    if check.error is not None:
        text.append("✗ ", style="bold red")
        text.append(f"could not ask the API server: {display(check.error)}\n")
        return text
    if not check.missing:
        text.append("✓ ", style="bold green")
        text.append(f"{ctx} may create the host-access pods in {check.namespace}\n")
        return text
    text.append("✗ ", style="bold red")
    text.append(f"{ctx} may not do what pod mode needs in {check.namespace}:\n")
    for p in check.missing:
        name = f" {p.name}" if p.name else ""
        text.append(f"  ✗ {p.verb} {p.what}{name} ({p.scope}): ", style="red")
        text.append(f"{p.why}\n")
        text.append(f"      {p.check}\n", style="dim")
    text.append("  grant them (`gpu-kata-installer rbac` prints a Role and a ClusterRole that "
                "do), or reach the hosts over SSH\n", style="dim")
    return text


def error_check(answers: Answers, exc: Exception) -> PodCheck:
    """A connection that failed: a UserError says what and how to fix it."""
    if isinstance(exc, UserError):
        why = "; ".join(f"{p.message} ({p.fix})" if p.fix else p.message
                        for p in exc.problems) or str(exc)
        message = f"{exc.summary}: {why}" if exc.problems else exc.summary
    else:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return PodCheck(answers.host_access.namespace, error=message)
