"""The proof that a mutation runs inside the engine's one mutation point, `Context.change`.

A module of its own, not part of the engine: installer.kube and installer.helm demand it,
and the wizard's discovery imports them before its first request - with the engine came the
planner and every check (50-90 ms of CPU on 2 shared cores, BENCHMARKS.md section 4).
"""

from __future__ import annotations


class Permit:
    """Proof that a mutation runs inside `Context.change`. Only the engine creates one."""

    __slots__ = ("description",)

    def __init__(self, description: str, _key: object) -> None:
        if _key is not _PERMIT_KEY:
            raise RuntimeError("a Permit comes only from Context.change")
        self.description = description


_PERMIT_KEY = object()


def grant_permit(description: str) -> Permit:
    """The one way to make a Permit. Only `Context.change` calls it (a test holds every
    other module to that), so a mutation can be traced to the place that shows it first."""
    return Permit(description, _PERMIT_KEY)


def require_permit(permit: Permit) -> None:
    """Called first by every mutating helper."""
    if not isinstance(permit, Permit):
        raise RuntimeError("this call changes the cluster or a host; run it through "
                           "Context.change")
