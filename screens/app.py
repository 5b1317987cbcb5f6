"""The wizard: `InstallerApp` on the same engine and plan as the headless mode.

State lives in `WizardState` (answers, facts, checks) and `RunState` (one engine run).
Long work - discovery, checks, the engine, SSH tests, log following - runs in workers and
comes back as messages; the handlers here fold them into state and tell the screens on
the stack. The engine runs in an app-owned worker, so an install keeps going while the
operator looks at other screens; quitting during one asks first, then cancels it (helm is
stopped through its process group) and waits for it to end.
"""

from __future__ import annotations

import gc
import importlib
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import CommandPalette
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen

from installer.answers.model import load_answers
from installer.cluster.facts import Facts
from installer.cluster.factsfile import load_recorded_facts
from installer.errors import EXIT_INTERRUPTED
from installer.redact import Redactor
from installer.textsafe import display
from screens.appfacts import FactsMixin
from screens.applogs import LogsMixin
from screens.apprun import STOP_TIMEOUT, RunMixin
from screens.base import WizardScreen
from screens.bridge import LineBatcher, TuiDecider, TuiSink
from screens.messages import (
    AnswersChanged,
    AnswersSaved,
)
from screens.modals import ConfirmModal, SaveModal
from screens.runner import LoopThread
from screens.services import (
    FactsProvider,
    Inspector,
    Services,
    recorded_facts,
)
from screens.state import WIZARD_STEPS, RunState, WizardState

if TYPE_CHECKING:
    pass

ORDER = [k for k, _ in WIZARD_STEPS]
# Each step's screen, imported and built the first time it is shown: the first frame waits
# on the Cluster screen alone, not on every screen's module (BENCHMARKS.md section 3).
SCREEN_CLASSES: dict[str, str] = {
    "cluster": "screens.cluster:ClusterScreen", "nodes": "screens.nodes:NodesScreen",
    "ssh": "screens.ssh:SshScreen", "checks": "screens.checks:ChecksScreen",
    "fixes": "screens.fixes:FixesScreen", "charts": "screens.charts:ChartsScreen",
    "review": "screens.review:ReviewScreen", "install": "screens.install:InstallScreen",
    "sample": "screens.sample:SampleScreen", "done": "screens.done:DoneScreen",
}


class InstallerApp(FactsMixin, LogsMixin, RunMixin, App[int]):
    """The Textual front end. `state` is edited in place; `services` reach the world."""

    CSS_PATH = "app.tcss"
    TITLE = "gpu-kata-installer"
    BINDINGS = [
        Binding("ctrl+n", "next", "Next", priority=True),
        # F1 reaches help from any widget, a text field included; `?` is a character in a
        # field (a password, a URL), so it opens help only where nothing is typed into.
        Binding("f1", "help", "Help", key_display="F1", priority=True),
        Binding("question_mark", "help", "Help", key_display="?", show=False),
        Binding("ctrl+t", "troubleshoot", "Troubleshoot", priority=True),
        Binding("ctrl+s", "save", "Save answers", show=False, priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, state: WizardState | None = None,
                 facts_provider: FactsProvider | None = None, *,
                 services: Services | None = None, start: str = "cluster",
                 troubleshoot: bool = False) -> None:
        super().__init__()
        self.state = state or WizardState()
        self.services = services or Services()
        if facts_provider is not None:
            self.services.facts = facts_provider
        self.start = start
        self.troubleshoot_only = troubleshoot
        self.run_state = RunState()
        self.redactor = Redactor()
        self.lines = LineBatcher(self.post_message)
        self.sink = TuiSink(self.post_message, self.lines, self.redactor)
        self.decider = TuiDecider(self._ask)
        self.runner: LoopThread | None = None
        self.log_path: Path | None = None
        self.discovering = False
        self.checking = False
        self.scanning = False
        self.scan_failed: Facts | None = None  # not retried for the same facts
        self.facts_error: str | None = None
        self.wizard_screens: dict[str, WizardScreen] = {}
        self._inspector: tuple[object, Inspector] | None = None
        self._follow: tuple[tuple[Any, ...], threading.Event] | None = None
        # Secrets the answers say to prompt for: asked once, kept in memory, never written.
        self.secrets: dict[str, str] = {}
        if self.state.dry_run_only:
            self.services.recorded = True

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every notification, the screens' too: its text may quote the cluster (an error,
        a step's message), so it is shown as data: controls escaped, and never markup, whatever
        the caller's `markup` says."""
        super().notify(display(message, multiline=True), title=display(title),
                       severity=severity, timeout=timeout, markup=False)

    # --- screens and navigation --------------------------------------------------------
    def on_mount(self) -> None:
        # What exists at mount - every module, class and the app itself - lives as long as
        # the app, so the collector's full passes need not walk it: each such pass on the way
        # to the Nodes screen at 1,000 nodes is a visible pause (BENCHMARKS.md section 4).
        # Undone on unmount, so what the app leaves behind can be collected.
        gc.freeze()
        if self.troubleshoot_only:
            self.push_screen(_troubleshoot_screen()(standalone=True))
            return
        self.push_screen(self.screen_for(self.start if self.start in ORDER else "cluster"))

    def on_unmount(self) -> None:
        gc.unfreeze()

    def screen_for(self, step: str) -> WizardScreen:
        """The step's screen, built and installed on first use (it then keeps its state)."""
        screen = self.wizard_screens.get(step)
        if screen is None:
            module, name = SCREEN_CLASSES[step].split(":")
            screen = getattr(importlib.import_module(module), name)()
            self.wizard_screens[step] = screen
            self.install_screen(screen, name=step)
        return screen

    def current_step(self) -> str | None:
        screen = self.screen
        if isinstance(screen, WizardScreen) and screen.STEP in ORDER:
            return screen.STEP
        return None

    def goto(self, step: str) -> None:
        if step not in SCREEN_CLASSES:
            return
        if isinstance(self.screen, ModalScreen):
            return  # a question is open (consent mid-run, quit...): it is answered first
        while _is_troubleshoot(self.screen) and len(self.screen_stack) > 1:
            self.pop_screen()
        screen = self.screen_for(step)
        if self.screen is not screen:
            self.switch_screen(screen)

    def navigate(self, step: str) -> None:
        """Go to a step as the operator asked (keys, palette, a click): unless input on the
        current screen is invalid."""
        screen = self.screen
        reason = screen.can_leave() if isinstance(screen, WizardScreen) else None
        if reason:
            self.notify(reason, severity="warning")
            return
        self.goto(step)

    def _move(self, delta: int) -> None:
        step = self.current_step()
        if step is None:
            return
        i = ORDER.index(step) + delta
        if 0 <= i < len(ORDER):
            self.navigate(ORDER[i])

    def action_next(self) -> None:
        self._move(1)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer shows a key only where it does something: hidden (False) where the
        action has no meaning on this screen, greyed (None) where it cannot act just now."""
        on_troubleshoot = getattr(self.screen, "STEP", "") == "troubleshoot"
        if action == "next":
            step = self.current_step()
            return False if step is None else (None if step == ORDER[-1] else True)
        if action == "troubleshoot":
            return not on_troubleshoot
        if action == "save":
            return not self.troubleshoot_only
        if action == "stop_run":
            return True if self.run_state.active else None
        return True

    def action_back(self) -> None:
        self._move(-1)

    def action_goto(self, step: str) -> None:
        self.navigate(step)

    def action_troubleshoot(self) -> None:
        troubleshoot = _troubleshoot_screen()
        if isinstance(self.screen, troubleshoot):
            return
        self.push_screen(troubleshoot())

    def action_help(self) -> None:
        if isinstance(self.screen, CommandPalette):
            return  # the palette takes its keys; its own help is its list
        from screens.help import open_help  # with the plan: not needed for the first frame

        open_help(self)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if not self.troubleshoot_only:
            for key, label in WIZARD_STEPS:
                yield SystemCommand(f"Go to {label}", f"Open the {label} screen",
                                    lambda k=key: self.navigate(k))
            yield SystemCommand("Save answers", "Write the answers file (replays headless)",
                                self.action_save)
            yield SystemCommand("Dry-run", "Run the plan without changing anything",
                                lambda: self.action_start_run(True))
        yield SystemCommand("Troubleshoot", "Findings, pods, events, logs, host checks",
                            self.action_troubleshoot)
        yield SystemCommand("Help", "What this screen does and its keys", self.action_help)

    # --- answers -------------------------------------------------------------------------
    def answers_changed(self, what: str) -> None:
        self.post_message(AnswersChanged(what))

    def on_answers_changed(self, message: AnswersChanged) -> None:
        screen = self.screen
        if isinstance(screen, WizardScreen) and screen.STEP == "nodes" == message.what:
            screen.refresh_from_state()

    def action_save(self) -> None:
        if self.troubleshoot_only:
            return
        default = self.state.saved_to or self.state.answers_path or Path.cwd() / "answers.yaml"
        self.push_screen(SaveModal(str(default)), self._save_to)

    def _save_to(self, path: str | None) -> None:
        if not path:
            return
        try:
            saved = self.state.save(Path(path))
        except OSError as exc:
            self.notify(f"could not save: {exc}", severity="error")
            return
        self.notify(f"saved to {saved} (replay: gpu-kata-installer --answers {saved} "
                    "--dry-run)", timeout=6)
        self.post_message(AnswersSaved(str(saved)))
        self._refresh_current()

    def _live_screens(self) -> list[WizardScreen]:
        return [s for s in self.screen_stack if isinstance(s, WizardScreen) and s.is_mounted]

    def _refresh_current(self) -> None:
        for screen in self._live_screens():
            screen.refresh_from_state()
            screen.refresh_stepbar()
        self.refresh_bindings()  # what a key can do follows the state (check_action)

    # --- quitting ----------------------------------------------------------------------------
    async def action_quit(self) -> None:
        if self.run_state.active:
            self.push_screen(ConfirmModal(
                "An install is running. Stop it and quit?",
                "The run is stopped cleanly: the current step (helm included) is cancelled "
                "and what finished stays done. Running the installer again resumes.",
                yes="Stop and quit", no="Keep running", danger=True), self._quit_answer)
            return
        self._stop_follow()
        self.exit(self.exit_code())

    def _quit_answer(self, yes: bool | None) -> None:
        if yes:
            self.run_worker(self._stop_and_exit(), group="quit")

    async def _stop_and_exit(self) -> None:
        self.notify("stopping the run…", timeout=STOP_TIMEOUT)
        await self.stop_run()
        self._stop_follow()
        self.exit(EXIT_INTERRUPTED)

    def exit_code(self) -> int:
        return self.run_state.exit_code or 0


def _troubleshoot_screen() -> type[WizardScreen]:
    """The troubleshooting screen's class, imported when first needed (not at startup)."""
    from screens.troubleshoot import TroubleshootScreen

    return TroubleshootScreen


def _is_troubleshoot(screen: Screen) -> bool:
    """Whether `screen` is the troubleshooting screen, without importing it: until its module
    is imported no such screen can be open, and the import (its checks, the engine's params)
    would otherwise land on the first switch to the Nodes screen."""
    module = sys.modules.get("screens.troubleshoot")
    return module is not None and isinstance(screen, module.TroubleshootScreen)


def run_wizard(answers_path: Path | None = None, *, facts_path: Path | None = None,
               start: str = "cluster", troubleshoot: bool = False,
               kubeconfig: str | None = None, context: str | None = None) -> int:
    """Open the wizard (or, with troubleshoot=True, the troubleshooting screen alone).

    `answers_path` pre-fills every screen; `kubeconfig`/`context` override its cluster;
    `facts_path` uses a recorded cluster instead of discovering one (plan and dry-run only).
    Returns the exit code of the last run (0 if nothing ran, 130 if stopped on quit).
    Raises UserError for a bad answers or facts file.
    """
    state = WizardState()
    if answers_path is not None:
        state.answers = load_answers(answers_path)
        state.answers_path = answers_path
    if kubeconfig or context:
        state.edit({"cluster.kubeconfig": kubeconfig or state.answers.cluster.kubeconfig,
                    "cluster.context": context or state.answers.cluster.context})
    services = Services()
    if facts_path is not None:
        state.facts = load_recorded_facts(facts_path)
        state.dry_run_only = True
        services.facts = recorded_facts(facts_path)
        services.recorded = True
    app = InstallerApp(state, services=services, start=start, troubleshoot=troubleshoot)
    code = app.run()
    return code if isinstance(code, int) else 0


def run_troubleshoot(answers_path: Path | None = None, *, kubeconfig: str | None = None,
                     context: str | None = None) -> int:
    """`gpu-kata-installer troubleshoot`: the troubleshooting screen on its own."""
    return run_wizard(answers_path, troubleshoot=True, kubeconfig=kubeconfig, context=context)
