"""SVG snapshots of every screen and its key states, at 80x24 and 120x40.

Stored under snapshots/test_snapshots/. Each case drives the app to the state first (and
asserts it got there), so a snapshot never silently shows an empty or wrong screen.
Update: pytest tests/screens/test_snapshots.py --snapshot-update, then look at the SVGs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from installer.errors import Problem, UserError
from screens.app import InstallerApp
from screens.modals import ConfirmModal, HelpModal, HostKeyModal, SecretModal
from screens.state import new_answers
from screens.widgets.keyedtable import KeyedTable
from tests.screens import fakes
from tests.screens.helpers import until

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]

Case = tuple[InstallerApp, Callable[[Pilot], Awaitable[None]]]


def app_for(world=None, start="cluster", state=None, **kw) -> InstallerApp:
    app = InstallerApp(state or fakes.state(), services=fakes.services(world, **kw),
                       start=start)
    app.run_state.clock = lambda: fakes.FROZEN  # elapsed times never depend on timing
    return app


async def settle(pilot: Pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    pilot.app.clear_notifications()
    await pilot.pause()


async def start_install(pilot: Pilot) -> None:
    app = pilot.app
    app.goto("review")
    await pilot.pause()
    await pilot.press("i")
    await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
    await pilot.press("y")


def case_cluster() -> Case:
    async def go(pilot):
        await settle(pilot)
        assert pilot.app.state.facts is not None
    return app_for(), go


def case_cluster_error() -> Case:
    error = UserError("cannot reach the API server at https://10.0.0.1:6443", [Problem(
        "cluster.context", "connection refused",
        "check that the cluster is up and the kubeconfig's server address is right")])
    from screens.state import WizardState

    async def go(pilot):
        await until(pilot, lambda: pilot.app.facts_error is not None)
        await settle(pilot)
    return app_for(state=WizardState(), discover_error=error), go


def case_nodes() -> Case:
    async def go(pilot):
        await settle(pilot)
        pilot.app.screen.query_one(KeyedTable).focus()
        await pilot.press("down")
    return app_for(start="nodes"), go


def case_nodes_empty() -> Case:
    async def go(pilot):
        await settle(pilot)
    return app_for(start="nodes", state=fakes.state(facts=fakes.empty_facts())), go


def case_nodes_many() -> Case:
    st = fakes.state(new_answers(), fakes.many_nodes_facts())
    st.set_default("kata")
    st.set_choice(["gpu-003", "gpu-004"], "traditional")
    st.set_choice(["gpu-005"], "leave")

    async def go(pilot):
        await settle(pilot)
        pilot.app.screen.query_one(KeyedTable).focus()
        await pilot.press("down", "down", "space", "space", "space")
    return app_for(start="nodes", state=st), go


def case_ssh() -> Case:
    async def go(pilot):
        await settle(pilot)
    return app_for(start="ssh"), go


def case_ssh_invalid() -> Case:
    async def go(pilot):
        await settle(pilot)
        pilot.app.screen.query_one("#ssh-port", Input).value = "twenty-two"
        pilot.app.screen.query_one("#ssh-jump", Input).value = "ops@bad host"
        await pilot.pause()
        assert pilot.app.screen.error is not None
    return app_for(start="ssh"), go


def case_ssh_host_key() -> Case:
    async def go(pilot):
        await settle(pilot)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(pilot.app.screen, HostKeyModal))
        await pilot.pause()
    return app_for(start="ssh"), go


def _pod_mode_state():
    from installer.answers.model import validate_answers
    from screens.state import answers_data

    data = answers_data(fakes.example_answers())
    data["hostAccess"] = "pod"
    return fakes.state(validate_answers(data, source="test"))


def case_ssh_pod() -> Case:
    async def go(pilot):
        await settle(pilot)
        assert pilot.app.screen.query_one("#pod-form").display
    return app_for(start="ssh", state=_pod_mode_state()), go


def case_ssh_pod_refused() -> Case:
    from tests.unit.test_podrbac import ReviewingKube

    async def go(pilot):
        await settle(pilot)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: pilot.app.screen.pod_check is not None)
        await settle(pilot)
    kube = ReviewingKube({("create", "pods/exec"), ("patch", "namespaces")})
    return app_for(start="ssh", state=_pod_mode_state(), kube=kube), go


def case_checks() -> Case:
    async def go(pilot):
        await until(pilot, lambda: bool(pilot.app.state.checks))
        await settle(pilot)
        grid = pilot.app.screen.query_one(KeyedTable)
        grid.focus()
        grid.move_cursor(row=grid.get_row_index("gpu-node-2"),
                         column=grid.get_column_index("iommu-enabled"))
        await pilot.pause()
    # each check run probes: the probe finds gpu-node-2 as recorded, with its host driver
    return app_for(fakes.World(facts=fakes.example_facts()), start="checks"), go


def case_checks_nothing_to_check() -> Case:
    async def go(pilot):
        await settle(pilot)
    return app_for(start="checks", state=fakes.state(new_answers())), go


def case_fixes() -> Case:
    async def go(pilot):
        await settle(pilot)
        assert "5 host fixes planned" in str(pilot.app.screen.query_one("#fixes-status").content)
    return app_for(start="fixes"), go


def case_fixes_none_needed() -> Case:
    async def go(pilot):
        await settle(pilot)
    return app_for(start="fixes", state=fakes.state(facts=fakes.ready_facts())), go


def case_charts() -> Case:
    async def go(pilot):
        await settle(pilot)
    return app_for(start="charts"), go


def case_charts_invalid() -> Case:
    async def go(pilot):
        await settle(pilot)
        pilot.app.screen.query_one("#kd-version", Input).value = "3.20.0"
        await pilot.pause()
        assert pilot.app.screen.error is not None
    return app_for(start="charts"), go


def case_review() -> Case:
    async def go(pilot):
        await settle(pilot)
    return app_for(start="review"), go


def case_review_mismatch() -> Case:
    async def go(pilot):
        await settle(pilot)
    return app_for(start="review", state=fakes.state(facts=fakes.empty_facts())), go


def case_install_running() -> Case:
    world = fakes.World(block="install/gpu-operator")

    async def go(pilot):
        await start_install(pilot)
        await until(pilot, lambda: "install/gpu-operator" in world.ran)
        await pilot.pause(0.2)
        pilot.app.clear_notifications()
        await pilot.pause()
    return app_for(world), go


def case_install_waiting_nodes() -> Case:
    """verify/gpu-operator waits for gpu-node-2's validator: the wait line and the Nodes tab."""
    world = fakes.World(block="verify/gpu-operator", waits=fakes.operator_waits())

    async def go(pilot):
        await start_install(pilot)
        await until(pilot, lambda: (row := pilot.app.run_state.steps.get(
            "verify/gpu-operator")) is not None and row.wait is not None)
        await pilot.pause(0.2)
        pilot.app.clear_notifications()
        await pilot.press("n")
        await pilot.pause()
        assert "times out in" in str(pilot.app.screen.query_one("#wait-line").render())
    return app_for(world), go


def case_install_failed() -> Case:
    world = fakes.World(fail="install/gpu-operator")

    async def go(pilot):
        await start_install(pilot)
        await until(pilot, lambda: pilot.app.run_state.status == "failed")
        await settle(pilot)
    return app_for(world), go


def case_install_helm_output() -> Case:
    world = fakes.World(fail="install/gpu-operator")

    async def go(pilot):
        await start_install(pilot)
        await until(pilot, lambda: pilot.app.run_state.status == "failed")
        await settle(pilot)
        await pilot.press("o")
        await pilot.pause()
    return app_for(world), go


def case_sample_passed() -> Case:
    world = fakes.World()

    async def go(pilot):
        await start_install(pilot)
        await until(pilot, lambda: pilot.app.run_state.status == "ok")
        pilot.app.goto("sample")
        await settle(pilot)
    return app_for(world), go


def case_sample_failed() -> Case:
    world = fakes.World(sample_passes=False)

    async def go(pilot):
        await start_install(pilot)
        await until(pilot, lambda: pilot.app.run_state.status == "failed")
        pilot.app.goto("sample")
        await settle(pilot)
    return app_for(world), go


def case_done() -> Case:
    world = fakes.World()

    async def go(pilot):
        await start_install(pilot)
        await until(pilot, lambda: pilot.app.run_state.status == "ok")
        pilot.app.goto("done")
        await settle(pilot)
    return app_for(world), go


def case_secret_prompt() -> Case:
    """The answers say to prompt for the sudo password: asked in a masked modal, once."""
    from installer.answers.model import validate_answers
    from screens.state import answers_data

    data = answers_data(fakes.example_answers())
    data["ssh"]["sudo"] = {"mode": "password", "passwordPrompt": True}

    async def go(pilot):
        await settle(pilot)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(pilot.app.screen, SecretModal))
        await pilot.press(*"hunter2")
        await pilot.pause()
        assert pilot.app.screen.query_one(Input).password  # typed, shown masked
    return app_for(start="review", state=fakes.state(validate_answers(data))), go


def case_troubleshoot() -> Case:
    async def go(pilot):
        await pilot.press("ctrl+t")
        await until(pilot, lambda: getattr(pilot.app.screen, "view", None) is not None)
        await settle(pilot)
    return app_for(start="review"), go


def case_troubleshoot_after_checks() -> Case:
    """The findings once the host checks ran: the rules read them, and their own verdicts
    follow (what headless `troubleshoot` prints for the same cluster)."""
    async def go(pilot):
        await until(pilot, lambda: bool(pilot.app.state.checks))
        await pilot.press("ctrl+t")
        await until(pilot, lambda: any(f.where == "iommu-off"
                                       for f in getattr(pilot.app.screen, "findings", ())))
        await settle(pilot)
    return app_for(fakes.World(facts=fakes.example_facts()), start="checks"), go


def case_troubleshoot_pod_log() -> Case:
    async def go(pilot):
        await pilot.press("ctrl+t")
        await until(pilot, lambda: getattr(pilot.app.screen, "view", None) is not None)
        pilot.app.screen.query_one("#ts-tabs").active = "ts-pods"
        await pilot.pause()
        table = pilot.app.screen.query_one("#ts-pod-table", KeyedTable)
        table.focus()
        table.move_cursor(row=table.get_row_index("gpu-operator/nvidia-sandbox-validator-2jx9w"))
        await pilot.press("enter")
        await until(pilot, lambda: len(pilot.app.screen.query_one("#ts-log").pane.ring) == 3)
        await settle(pilot)
    return app_for(start="review"), go


def case_troubleshoot_host_checks() -> Case:
    """The host checks tab: node x check rows, the one under the cursor whole below."""
    async def go(pilot):
        await until(pilot, lambda: bool(pilot.app.state.checks))
        await pilot.press("ctrl+t")
        await until(pilot, lambda: getattr(pilot.app.screen, "view", None) is not None)
        await settle(pilot)
        pilot.app.screen.query_one("#ts-tabs").active = "ts-checks"
        await pilot.pause()
        table = pilot.app.screen.query_one("#check-table", KeyedTable)
        table.focus()
        table.move_cursor(row=table.get_row_index("gpu-node-2/iommu-enabled"))
        await settle(pilot)  # a refresh still under way (a loaded machine) lands first
        assert table.cursor_key == "gpu-node-2/iommu-enabled"
        assert "IOMMU off" in str(pilot.app.screen.query_one("#ts-check-detail").render())
    return app_for(fakes.World(facts=fakes.example_facts()), start="checks"), go


def case_troubleshoot_events() -> Case:
    """The events tab: the message the table cuts, whole in the line below."""
    async def go(pilot):
        await pilot.press("ctrl+t")
        await until(pilot, lambda: getattr(pilot.app.screen, "view", None) is not None)
        await settle(pilot)
        pilot.app.screen.query_one("#ts-tabs").active = "ts-events"
        await pilot.pause()
        table = pilot.app.screen.query_one("#events", KeyedTable)
        table.focus()
        await pilot.press("down")
        await pilot.pause()
        assert "Back-off" in str(pilot.app.screen.query_one("#event-detail").render())
    return app_for(start="review"), go


def case_install_step_detail() -> Case:
    """The operator moved in the step list: the step under the cursor, whole, below it."""
    world = fakes.World(fail="install/gpu-operator")

    async def go(pilot):
        await start_install(pilot)
        await until(pilot, lambda: pilot.app.run_state.status == "failed")
        await settle(pilot)
        table = pilot.app.screen.query_one("#steps", KeyedTable)
        table.focus()
        await pilot.press("down")
        await pilot.pause()
        assert pilot.app.screen.query_one("#step-detail").display
    return app_for(world), go


def case_help() -> Case:
    async def go(pilot):
        await settle(pilot)
        await pilot.press("f1")
        assert isinstance(pilot.app.screen, HelpModal)
    return app_for(start="nodes"), go


def case_help_fixes() -> Case:
    """The help of a screen with plan lines of its own: the host fix steps."""
    async def go(pilot):
        await settle(pilot)
        await pilot.press("f1")
        assert isinstance(pilot.app.screen, HelpModal)
        assert pilot.app.screen.plan_lines[0].startswith("[fix/gpu-node-2/")
    return app_for(start="fixes"), go


def case_help_charts() -> Case:
    async def go(pilot):
        await settle(pilot)
        await pilot.press("f1")
        assert isinstance(pilot.app.screen, HelpModal)
    return app_for(start="charts"), go


def case_ssh_field_focused() -> Case:
    """Typing in a field: its focus is visible and the footer names F1 for help."""
    async def go(pilot):
        await settle(pilot)
        pilot.app.screen.query_one("#ssh-user", Input).focus()
        await pilot.press("end")
        await pilot.pause()
    return app_for(start="ssh"), go


def case_quit_during_install() -> Case:
    world = fakes.World(block="install/kata-deploy")

    async def go(pilot):
        await start_install(pilot)
        await until(pilot, lambda: "install/kata-deploy" in world.ran)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal))
        pilot.app.clear_notifications()
        await pilot.pause()
    return app_for(world), go


CASES = {name.removeprefix("case_"): fn for name, fn in globals().items()
         if name.startswith("case_")}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_screen(snap_compare, case, size):
    app, run_before = CASES[case]()
    assert snap_compare(app, terminal_size=size, run_before=run_before)
