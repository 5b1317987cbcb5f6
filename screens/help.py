"""What the help modal shows for the screen under it: its keys, its text, its plan lines.

Kept apart from the app class: the keys come from the screen's active bindings (so the list
is what works right now), the plan lines from the same plan the Review screen renders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen

from installer.engine.screenplan import screen_actions, screen_plan_lines
from screens.modals import HelpModal
from screens.state import WIZARD_STEPS

if TYPE_CHECKING:
    from screens.app import InstallerApp

# Focus moves and copying are the same everywhere; the help lists what this screen adds.
_GENERIC = ("app.focus_next", "app.focus_previous", "screen.copy_text", "command_palette",
            "app.command_palette")
_PLANNED = {key for key, _ in WIZARD_STEPS} - {"review"}


def help_keys(app: InstallerApp, screen: Screen) -> list[tuple[str, str]]:
    """Every key that works here: this screen's first, then the app's, then the focused
    widget's keys it shows in the footer; a key whose action does not apply now is left
    out, and so are a widget's scroll and cursor keys (the same in every pane)."""
    keys: list[tuple[str, str]] = [("? / F1", "this help (F1 while typing in a field)")]
    seen: set[str] = {"Help"}
    ranked = sorted(screen.active_bindings.values(), key=lambda a: (
        0 if a.node is screen else 1 if a.node is app else 2))
    for active in ranked:
        b = active.binding
        if not b.description or b.description in seen or b.system or b.action in _GENERIC \
                or not active.enabled or (active.node not in (screen, app) and not b.show):
            continue
        seen.add(b.description)
        keys.append((app.get_key_display(b), b.tooltip or b.description))
    keys.append(("ctrl+p", "command palette: go to any screen, save, dry-run, ..."))
    return keys


def plan_section(app: InstallerApp, step: str) -> tuple[str, list[str]]:
    """The heading and lines of "Plan lines from this screen": the steps this screen's
    choices produce in the current plan, or why there is no plan yet."""
    if step not in _PLANNED or app.troubleshoot_only:
        return "", []  # troubleshooting reads the cluster; the Review screen is the plan
    plan, error = app.state.plan_or_error()
    actions = screen_actions(step)
    heading = "Plan lines from this screen" if actions is not None else \
        "Plan lines (the whole plan this run follows)"
    if plan is None:
        reason = error.problems[0].message if error and error.problems else str(error)
        return heading, [f"no plan yet: {reason}"]
    lines = screen_plan_lines(plan, step)
    return heading, lines or ["none: with these answers this screen adds no step to the plan"]


def open_help(app: InstallerApp) -> None:
    """Open the help of the screen on top; on the help itself, close it."""
    screen = app.screen
    if isinstance(screen, HelpModal):
        screen.dismiss(None)
        return
    title = getattr(screen, "TITLE", "") or app.title
    text = getattr(screen, "HELP", "") or "Keys that work here:"
    heading, lines = plan_section(app, getattr(screen, "STEP", ""))
    app.push_screen(HelpModal(title, text, help_keys(app, screen), heading, lines))
