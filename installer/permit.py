"""The proof that a mutation runs inside the engine's one mutation point, `Context.change`.

Below the engine, not inside it: installer.cluster.kube and installer.charts.helm demand a
permit, and they sit under the engine (the import contract in pyproject.toml), so the wizard's
discovery can use them without loading the planner and every check.
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
