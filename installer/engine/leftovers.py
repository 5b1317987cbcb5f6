"""The cordons an interrupted run left behind, uncordoned by the next run.

A run stopped between a node's cordon and its uncordon (a kill, a lost connection, a host
that came back only later) leaves the node cordoned with the installer's mark. The next run
plans from the cluster as it is: when the node's chain is planned again, its own uncordon
ends it; when nothing is left to do there (the host came back, the relabel was made), only
the uncordon is - the node would otherwise stay out of service for good. An upgrade's
cordons are left to `upgrade`, which resumes its own waves.
"""

from __future__ import annotations

from collections.abc import Collection

from installer.cluster.facts import Facts
from installer.engine.rolechange import ROLE_CHANGE

RESUMED_HERE = ("reboot", ROLE_CHANGE)


def left_cordoned(facts: Facts, chained: Collection[str]
                  ) -> tuple[list[tuple[str, str]], list[str]]:
    """(node, what it was cordoned for) for the Ready nodes an interrupted run left cordoned
    that no chain of this plan (`chained`) ends; and a warning for each one not Ready."""
    if facts.cluster is None:
        return [], []
    found: list[tuple[str, str]] = []
    warnings: list[str] = []
    for node in facts.cluster.nodes:
        why = node.cordoned_for
        if why not in RESUMED_HERE or node.name in chained:
            continue
        if node.ready:
            found.append((node.name, why))
        else:
            warnings.append(f"{node.name} is still cordoned by an interrupted run (for {why}) "
                            "and not Ready: left cordoned until it is; run again then")
    return found, warnings
