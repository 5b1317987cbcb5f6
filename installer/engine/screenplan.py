"""Which plan steps each wizard screen's choices produce, so the screen's help can quote them.

Pure and textual-free: a screen key (the wizard's step names) maps to the kinds of step
(`StepParams.ACTION`) its answers drive; the lines are the Review screen's dry-run lines for
those steps, without the long previews (the Review screen shows those in full).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from installer.engine.plan import Plan

# What each screen decides, as the kinds of plan step it drives. A screen that drives no
# step of its own (cluster discovery, review, the run's screens) quotes every step.
SCREEN_ACTIONS: dict[str, frozenset[str]] = {
    "cluster": frozenset({"discover", "cluster-checks"}),
    "nodes": frozenset({"gpu-pods", "record-labels", "label"}),
    "ssh": frozenset({"probe", "host-checks", "host-fix"}),
    "checks": frozenset({"probe", "cluster-checks", "host-checks"}),
    "fixes": frozenset({"host-fix", "verify-host"}),
    "charts": frozenset({"helm", "verify-kata-deploy", "verify-gpu-operator"}),
    "sample": frozenset({"sample"}),
}


def screen_actions(screen: str) -> frozenset[str] | None:
    """The kinds of step a screen drives; None for a screen that quotes the whole plan."""
    return SCREEN_ACTIONS.get(screen)


def screen_plan_lines(plan: Plan, screen: str, *, limit: int = 40) -> list[str]:
    """`[step id] title` and each `will change:` line of the steps this screen drives.

    At most `limit` lines, the last saying how many more there are: the help is a summary
    that points at the exact lines on the Review screen, not a second copy of it."""
    actions = screen_actions(screen)
    lines: list[str] = []
    for step in plan.steps:
        if actions is not None and step.action not in actions:
            continue
        lines.append(f"[{step.id}] {step.title}")
        lines += [f"  will change: {c.description}" for c in step.changes]
    if len(lines) > limit:
        more = len(lines) - limit + 1
        lines = [*lines[:limit - 1], f"... {more} more lines on the Review screen"]
    return lines
