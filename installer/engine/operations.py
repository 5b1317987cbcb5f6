"""The operations the installer runs on a cluster, each a planner over the same answers and
facts. One table for both front ends: the wizard's Uninstall plans exactly what the
`uninstall` command plans, from the same answers, because both look the planner up here.

Planners are imported when asked for: the wizard's first frame and `--help` need none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from installer.answers.model import Answers
    from installer.cluster.facts import Facts
    from installer.engine.plan import Plan

Planner = Callable[["Answers", "Facts"], "Plan"]


@dataclass(frozen=True)
class Operation:
    name: str
    verb: str  # what the run button and the consent question say
    title: str  # the choice, as a list of operations shows it
    summary: str
    planner: str  # "module:function"


OPERATIONS: dict[str, Operation] = {op.name: op for op in (
    Operation("install", "Install", "Install or reconfigure",
              "prepare the hosts, label the nodes and install (or reconfigure) both charts",
              "installer.engine.plan:build_plan"),
    Operation("uninstall", "Uninstall", "Uninstall",
              "remove both charts, restore the nodes' labels and, with "
              "uninstall.revertHosts, the host files the installer changed",
              "installer.engine.uninstall:build_uninstall_plan"),
    Operation("upgrade", "Upgrade", "Upgrade node by node",
              "upgrade both charts, then roll the Kata nodes in waves of "
              "rollout.maxUnavailable, each verified; rolled back on the first failure",
              "installer.engine.upgrade:build_upgrade_plan"),
)}


def planner_for(name: str, **options: Any) -> Planner:
    """The planner of an operation, with its options (e.g. uninstall's remove_crds) bound."""
    module, _, function = OPERATIONS[name].planner.partition(":")
    plan: Planner = getattr(import_module(module), function)
    return partial(plan, **options) if options else plan
