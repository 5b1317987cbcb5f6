"""Will a pod fit on a node: Kubernetes quantities and the scheduler's resource arithmetic.

Why the installer does the scheduler's sum itself: the `kata-qemu-nvidia-gpu` RuntimeClass
adds `overhead.podFixed` (10240Mi and one CPU in kata-deploy's chart) to every pod that uses
it, and a node short of that leaves the sample Pending with "Insufficient memory" - which
reads like the sample's own 16Gi is too much, not that the VM's overhead does not fit. The
check runs before the pod is applied, so the finding can say which node is short of what,
by how much, and what to change.

The sum follows the scheduler's NodeResourcesFit (a pod's requests are the larger of its
containers' sum and its largest init container, plus the pod overhead; a node's free share
is its allocatable minus the requests of the pods bound to it that have not finished).
Pure: plain JSON in, numbers and findings out. Quantities are exact fractions, never floats:
`1.0` CPU and `1000m` must compare equal, and Mi/Gi sums must not drift.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

_QUANTITY = re.compile(
    r"(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:[eE](?P<exp>[+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?", re.ASCII)
_SUFFIX = {
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40),
    "Pi": Fraction(2**50), "Ei": Fraction(2**60), "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "k": Fraction(10**3),
    "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12), "P": Fraction(10**15),
    "E": Fraction(10**18),
}
FINISHED = ("Succeeded", "Failed")  # phases whose requests the scheduler no longer counts


def parse_quantity(text: str | int | float) -> Fraction:
    """A Kubernetes quantity ("10240Mi", "1.0", "250m", "1e3", 4) as an exact number (bytes,
    cores, units). Raises ValueError for anything else, naming the text."""
    if isinstance(text, int | float):
        return Fraction(text)
    m = _QUANTITY.fullmatch(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    value = Fraction(m["num"])
    if m["exp"]:
        return value * Fraction(10) ** int(m["exp"])
    return value * _SUFFIX[m["suffix"]] if m["suffix"] else value


def format_quantity(resource: str, value: Fraction) -> str:
    """A number as an operator writes it: memory in Gi/Mi, CPU in cores or millicores."""
    value = Fraction(value)
    if resource in ("memory", "ephemeral-storage") or resource.startswith("hugepages-"):
        for unit, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
            if abs(value) >= size:
                return _decimal(value / size) + unit
        return _decimal(value)
    if resource == "cpu" and value.denominator != 1:
        return f"{round(value * 1000)}m"
    return _decimal(value)


def _decimal(n: Fraction) -> str:
    """Whole numbers as they are, others to one decimal place (10.5Gi, 4Gi)."""
    return str(n.numerator) if n.denominator == 1 else f"{float(n):.1f}"


def _resources(section: Mapping[str, Any] | None) -> dict[str, Fraction]:
    return {k: parse_quantity(v) for k, v in (section or {}).items()}


def container_requests(container: Mapping[str, Any]) -> dict[str, Fraction]:
    """What a container asks the scheduler for: its requests, a limit standing in for a
    request it does not give (the API server defaults one to the other when the pod is
    created, and the sample manifest has limits only)."""
    res = container.get("resources") or {}
    return {**_resources(res.get("limits")), **_resources(res.get("requests"))}


def pod_requests(spec: Mapping[str, Any],
                 overhead: Mapping[str, Any] | None = None) -> dict[str, Fraction]:
    """A pod's effective requests as the scheduler sums them, with the pod overhead: `overhead`
    when given (a pod not yet created, whose RuntimeClass the admission has not applied),
    else the pod's own `spec.overhead`."""
    total: dict[str, Fraction] = {}
    for c in spec.get("containers") or []:
        for k, v in container_requests(c).items():
            total[k] = total.get(k, Fraction(0)) + v
    for c in spec.get("initContainers") or []:
        req = container_requests(c)
        if c.get("restartPolicy") == "Always":  # a sidecar runs beside the containers
            for k, v in req.items():
                total[k] = total.get(k, Fraction(0)) + v
        else:
            for k, v in req.items():
                total[k] = max(total.get(k, Fraction(0)), v)
    for k, v in _resources(overhead if overhead is not None else spec.get("overhead")).items():
        total[k] = total.get(k, Fraction(0)) + v
    return total


def requested_on_node(pods: Iterable[Mapping[str, Any]]) -> dict[str, Fraction]:
    """The requests of the pods bound to a node that still hold their share (not finished)."""
    total: dict[str, Fraction] = {}
    for pod in pods:
        if ((pod.get("status") or {}).get("phase")) in FINISHED:
            continue
        for k, v in pod_requests(pod.get("spec") or {}).items():
            total[k] = total.get(k, Fraction(0)) + v
    return total


@dataclass(frozen=True)
class Shortfall:
    """One resource a node cannot give a pod: what it has, what is taken, what the pod
    needs (its own request and the RuntimeClass overhead, apart)."""

    node: str
    resource: str
    allocatable: Fraction
    requested: Fraction  # by the pods already on the node
    own: Fraction  # the pod's own request
    overhead: Fraction  # the RuntimeClass's overhead.podFixed

    @property
    def free(self) -> Fraction:
        return max(self.allocatable - self.requested, Fraction(0))

    @property
    def short(self) -> Fraction:
        return self.own + self.overhead - self.free

    def describe(self, runtime_class: str) -> str:
        q = lambda v: format_quantity(self.resource, v)  # noqa: E731
        need = q(self.own + self.overhead)
        parts = f"{q(self.own)} for the pod + {q(self.overhead)} {runtime_class} overhead" \
            if self.overhead else f"{q(self.own)} for the pod"
        return (f"node {self.node}: {self.resource} short by {q(self.short)} - needs {need} "
                f"({parts}), {q(self.free)} free (allocatable {q(self.allocatable)}, "
                f"{q(self.requested)} requested by pods already on it)")


def shortfalls(node: str, allocatable: Mapping[str, Any], pods: Iterable[Mapping[str, Any]],
               own: Mapping[str, Fraction], overhead: Mapping[str, Fraction]
               ) -> list[Shortfall]:
    """Each resource the node lacks for a pod asking `own` plus `overhead`; empty: it fits."""
    used = requested_on_node(pods)
    out = []
    for res in sorted({*own, *overhead}):
        have = parse_quantity(allocatable.get(res, "0") or "0")
        s = Shortfall(node, res, have, used.get(res, Fraction(0)), own.get(res, Fraction(0)),
                      overhead.get(res, Fraction(0)))
        if s.short > 0:
            out.append(s)
    return out
