"""Help, focus and footer keys: F1 and `?` reach help from every screen and widget (F1 even
while typing), the help quotes the plan lines a screen produces, focus is visible on every
focusable widget, and every key the footer shows does something in the state it is shown."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Button, Input, Select, Tabs, TextArea

from installer.engine.plan import build_plan
from installer.engine.screenplan import SCREEN_ACTIONS, screen_plan_lines
from screens.app import InstallerApp
from screens.modals import ConfirmModal, HelpModal, SaveModal
from tests.screens import fakes
from tests.screens.helpers import screen_text, until
from tests.screens.test_snapshots import CASES

STEPS = ["cluster", "nodes", "ssh", "checks", "fixes", "charts", "review", "install",
         "sample", "done"]


def make_app(start: str = "cluster", world=None, **kw) -> InstallerApp:
    app = InstallerApp(fakes.state(), services=fakes.services(world, **kw), start=start)
    app.run_state.clock = lambda: fakes.FROZEN
    return app


async def settle(pilot: Pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def footer_line(app: InstallerApp) -> str:
    return screen_text(app).splitlines()[-1]


def focusables(app: InstallerApp, selector: str = "*") -> list[Widget]:
    """What the operator can focus now: shown (a closed Select's list, a hidden tab's
    widgets are not)."""
    return [w for w in app.screen.query(selector) if w.focusable and w.region.area]


# --- 1. F1 and ? ----------------------------------------------------------------------------

async def test_f1_opens_help_from_a_focused_input_and_question_mark_types_into_it():
    app = make_app("ssh")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        field = app.screen.query_one("#ssh-known-hosts", Input)
        field.value = "/etc/ssh/known_hosts"
        field.focus()
        await pilot.press("end")
        assert "F1 Help" in footer_line(app)  # the way to help is visible while typing
        await pilot.press("question_mark")
        assert field.value == "/etc/ssh/known_hosts?"  # a character, not help
        assert not isinstance(app.screen, HelpModal)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpModal)
        await pilot.press("f1")  # F1 closes it again
        assert app.screen.STEP == "ssh" and app.focused is field


@pytest.mark.parametrize("step", STEPS)
async def test_f1_reaches_help_from_every_focusable_widget_of_every_screen(step):
    app = make_app(step)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        widgets = focusables(app)
        assert widgets, f"{step}: nothing to focus"
        for widget in widgets:
            widget.focus()
            await pilot.pause()
            await pilot.press("f1")
            assert isinstance(app.screen, HelpModal), f"{step}: F1 on {widget!r}"
            await pilot.press("escape")
            assert app.screen is screen
            if not isinstance(widget, Input | TextArea):
                await pilot.press("question_mark")
                assert isinstance(app.screen, HelpModal), f"{step}: ? on {widget!r}"
                await pilot.press("question_mark")
                assert app.screen is screen
        for field in focusables(app, "Input, TextArea"):
            field.focus()
            await pilot.pause()
            assert "F1 Help" in footer_line(app), f"{step}: F1 not in the footer at 80x24"


async def test_question_mark_on_a_table_opens_help():
    app = make_app("nodes")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.screen.query_one("#nodes").focus()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpModal)


async def test_help_over_a_modal_leaves_the_modal_working():
    app = make_app("review")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        confirm = app.screen
        await pilot.press("f1")
        assert isinstance(app.screen, HelpModal)
        assert "Yes" in screen_text(app)  # the modal's own keys
        await pilot.press("escape")
        assert app.screen is confirm
        await pilot.press("n")  # still answers
        assert app.screen.STEP == "review" and not app.run_state.active
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SaveModal))
        await pilot.press("question_mark")  # a character of the path there
        assert isinstance(app.screen, SaveModal) and app.screen.query_one(Input).value \
            .endswith("?")


# --- 4. help per screen: what it decides, its plan lines --------------------------------------

def test_each_screen_s_plan_lines_are_the_steps_it_drives():
    plan = build_plan(fakes.example_answers(), fakes.example_facts())
    nodes = screen_plan_lines(plan, "nodes")
    assert "[label/gpu-node-1] Label gpu-node-1 for kata" in nodes
    assert any(line.startswith("[record/labels]") for line in nodes)
    assert not any("fix/" in line or "install/" in line for line in nodes)
    fixes = screen_plan_lines(plan, "fixes", limit=100)
    assert "[fix/gpu-node-2/reboot] Host fix reboot on gpu-node-2" in fixes
    assert "  will change: gpu-node-2: reboot (for iommu-cmdline, nvidia-driver-off)" in fixes
    assert not any(line.startswith("[label/") for line in fixes)
    charts = screen_plan_lines(plan, "charts")
    assert [c for c in charts if c.startswith("[install/")] == [
        "[install/kata-deploy] Install kata-deploy",
        "[install/gpu-operator] Install the NVIDIA GPU Operator"]
    assert len(screen_plan_lines(plan, "install", limit=5)) == 5  # capped, says how many more
    assert screen_plan_lines(plan, "install", limit=5)[-1].endswith("on the Review screen")
    assert set(SCREEN_ACTIONS) <= set(STEPS)


@pytest.mark.parametrize(("step", "decides", "line"), [
    ("nodes", "nvidia.com/gpu.workload.config=vm-passthrough", "[label/gpu-node-1]"),
    ("fixes", "/etc/modprobe.d/gpu-kata-blacklist-nouveau.conf",
     "[fix/gpu-node-2/nouveau-blacklist]"),
    ("charts", "ccManager.defaultMode=off", "[install/gpu-operator]"),
])
async def test_help_explains_the_screen_s_choices_and_quotes_its_plan_lines(step, decides,
                                                                              line):
    app = make_app(step)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpModal)
        assert app.screen.plan_heading == "Plan lines from this screen"
        assert any(x.startswith(line) for x in app.screen.plan_lines)
        shown = "".join(str(s.render()) for s in app.screen.query("DataStatic"))
        assert decides in " ".join(shown.split())
        assert line in shown


async def test_help_says_why_there_is_no_plan_yet():
    app = InstallerApp(fakes.state(facts=fakes.empty_facts()), services=fakes.services(),
                       start="nodes")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        assert app.screen.plan_lines[0].startswith("no plan yet: ")


# --- 2. visible focus -------------------------------------------------------------------------

def _look(widget: Widget) -> tuple[object, ...]:
    s = widget.styles
    inner = widget.query("SelectCurrent").first() if isinstance(widget, Select) else \
        widget.query(".-active").first() if isinstance(widget, Tabs) else widget
    return (str(inner.styles.background), str(s.background_tint), str(s.border),
            str(s.text_style), str(inner.styles.border))


@pytest.mark.parametrize("step", ["cluster", "ssh", "charts", "review", "nodes", "checks"])
async def test_every_focusable_widget_looks_different_when_focused(step):
    app = make_app(step)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for widget in focusables(app):
            app.set_focus(None)
            await pilot.pause()
            before = _look(widget)
            widget.focus()
            await pilot.pause()
            assert _look(widget) != before, f"{step}: focus invisible on {widget!r}"
            if isinstance(widget, Button):
                assert "reverse" in str(widget.styles.text_style)


async def test_a_focused_log_pane_marks_its_title():
    app = make_app("review")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+t")
        await until(pilot, lambda: getattr(app.screen, "view", None) is not None)
        app.screen.query_one("#ts-tabs").active = "ts-pods"
        await pilot.pause()
        title = app.screen.query_one("#ts-log .log-title")
        before = str(title.styles.background)
        app.screen.query_one("#ts-log LogPane").focus()
        await pilot.pause()
        assert str(title.styles.background) != before


# --- 3. every key the footer shows does something --------------------------------------------

FOOTER_CASES = ["cluster", "cluster_error", "nodes", "nodes_empty", "ssh", "ssh_host_key",
                "checks", "checks_nothing_to_check", "fixes", "charts", "review",
                "review_mismatch", "install_running", "install_failed", "sample_passed",
                "done", "troubleshoot", "help", "quit_during_install"]


def shown_keys(app: InstallerApp) -> list[tuple[str, str, str]]:
    return [(b.key, b.action, b.description)
            for _, b, enabled, _ in app.screen.active_bindings.values() if b.show and enabled]


def count_notifications(app: InstallerApp) -> list[str]:
    """Notifications said since: an effect too (a toast is drawn above the screen)."""
    said: list[str] = []
    notify = app.notify

    def counting(message: str, **kw) -> None:
        said.append(message)
        notify(message, **kw)
    app.notify = counting  # type: ignore[method-assign]
    return said


def observe(app: InstallerApp, said: list[str]) -> tuple[object, ...]:
    if app.return_code is not None or not app.is_running:
        return ("exited", app.return_code)
    return (id(app.screen), len(app.screen_stack), len(said), screen_text(app))


def troubleshoot_alone():
    """`gpu-kata-installer troubleshoot`: the screen is the whole app, with no Back."""
    async def go(pilot):
        await until(pilot, lambda: getattr(pilot.app.screen, "view", None) is not None)
        await settle(pilot)
    app = InstallerApp(fakes.state(), services=fakes.services(), troubleshoot=True)
    return app, go


STATES = {**CASES, "troubleshoot_alone": troubleshoot_alone}


@pytest.mark.parametrize("case", [*FOOTER_CASES, "troubleshoot_alone"])
async def test_every_key_in_the_footer_has_an_effect(case):
    app, go = STATES[case]()
    async with app.run_test(size=(120, 40)) as pilot:
        await go(pilot)
        keys = shown_keys(app)
    assert keys, f"{case}: no key in the footer"
    for key, action, what in keys:
        app, go = STATES[case]()
        async with app.run_test(size=(120, 40)) as pilot:
            await go(pilot)
            await pilot.pause()
            said = count_notifications(app)
            before = observe(app, said)
            await pilot.press(key)
            await until(pilot, lambda: observe(app, said) != before,  # noqa: B023
                        timeout=3,
                        what=f"{case}: {key} ({what}, {action}) to do something")


@pytest.mark.parametrize(("case", "greyed", "hidden"), [
    ("review_mismatch", {"d", "i"}, set()),  # no plan: nothing to run
    ("install_failed", {"s"}, set()),  # the run is over: nothing to stop
    ("done", {"ctrl+n"}, set()),  # the last screen
    ("troubleshoot", set(), {"ctrl+t", "ctrl+n"}),
    ("troubleshoot_alone", set(), {"escape", "ctrl+s", "ctrl+t"}),
    ("nodes_empty", {"k", "t", "l"}, set()),
])
async def test_keys_that_cannot_act_are_greyed_or_hidden(case, greyed, hidden):
    app, go = STATES[case]()
    async with app.run_test(size=(120, 40)) as pilot:
        await go(pilot)
        state = {b.key: enabled for _, b, enabled, _ in app.screen.active_bindings.values()
                 if b.show}
    for key in greyed:
        assert state.get(key) is False, f"{case}: {key} should be greyed"
    for key in hidden:
        assert key not in state, f"{case}: {key} should be hidden"


async def test_checks_ignore_applies_on_a_check_column_only():
    app, go = CASES["checks"]()
    async with app.run_test(size=(120, 40)) as pilot:
        await go(pilot)  # the cursor on gpu-node-2's iommu-enabled cell
        enabled = {b.key: e for _, b, e, _ in app.screen.active_bindings.values()}
        assert enabled["i"] is True
        grid = app.screen.query_one("#grid")
        grid.move_cursor(column=0)
        await pilot.pause()
        enabled = {b.key: e for _, b, e, _ in app.screen.active_bindings.values()}
        assert enabled["i"] is False
