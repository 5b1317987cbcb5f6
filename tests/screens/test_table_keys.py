"""The k9s keys of every table (screens/widgets/tablekeys.py): `/` filters, `>` `<` `S`
sort, `d` describes, `y` shows YAML, `l` shows a pod's log with `c` (container) and `p`
(previous run) in its pane, and the footer offers each key only where it works."""

from __future__ import annotations

from datetime import UTC, datetime

from textual.app import App, ComposeResult
from textual.containers import Vertical

from installer.cluster.podread import PodReading
from screens.app import InstallerApp
from screens.objectview import ObjectModal
from screens.services import NoInspector
from screens.widgets.keyedtable import KeyedTable
from screens.widgets.podlog import PodLogView
from screens.widgets.podtable import PodTable
from tests.screens import fakes
from tests.screens.helpers import screen_text, until

COLUMNS = (("name", "Name"), ("state", "State"), ("age", "Age"))
VALIDATOR = "gpu-operator/nvidia-sandbox-validator-2jx9w"


def rows(n: int) -> list[tuple[str, tuple[str, str, str]]]:
    return [(f"node-{i}", (f"gpu-node-{i}", "Ready" if i % 3 else "NotReady", f"{i}m"))
            for i in range(n)]


class One(App):
    def compose(self) -> ComposeResult:
        with Vertical():
            yield KeyedTable(id="t")


def footer_keys(app) -> set[str]:
    return {b.key for _, b, enabled, _ in app.screen.active_bindings.values()
            if b.show and enabled}


async def test_slash_filters_rows_enter_keeps_it_and_escape_clears_it():
    app = One()
    async with app.run_test(size=(80, 20)) as pilot:
        table = app.query_one(KeyedTable)
        table.fill_rows(COLUMNS, rows(4000))
        table.focus()
        await pilot.press("/")
        await pilot.press(*"GPU-NODE-2x", "backspace")  # without case; S and d are typed
        assert table.sort_column is None
        await until(pilot, lambda: table.filter_text == "GPU-NODE-2")
        assert table.row_count == 1 + 10 + 100 + 1000 and table.total_rows == 4000
        assert all("gpu-node-2" in table.get_row_at(i)[0] for i in range(table.row_count))
        await pilot.pause()
        assert "/GPU-NODE-2" in screen_text(app) and "1,111 of 4,000" in screen_text(app)
        await pilot.press("enter", "down", ">")  # kept; the keys move and sort again
        assert table.filter_text == "GPU-NODE-2" and table.cursor_row == 1
        assert table.sort_column == "name" and table.filtering
        assert "escape" in footer_keys(app)
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == 4000 and not table.filtering
        assert "1,111" not in screen_text(app)
        assert "escape" not in footer_keys(app)  # the screen's own Esc again
        await pilot.press("/", "x", "y", "z")
        assert table.filter_text == "xyz" and table.row_count == 0
        await pilot.pause()
        assert "0 of 4,000" in screen_text(app)
        await pilot.press("escape")  # Esc while typing clears it too
        assert table.row_count == 4000 and not table.filtering


async def test_a_filtered_table_takes_updates_in_place():
    app = One()
    async with app.run_test(size=(80, 20)) as pilot:
        table = app.query_one(KeyedTable)
        table.fill_rows(COLUMNS, rows(20))
        table.focus()
        table.set_filter("notready")
        await pilot.pause()
        assert table.row_keys == ["node-0", "node-3", "node-6", "node-9", "node-12",
                                  "node-15", "node-18"]
        # A row filtered out and updated stays out; a new matching row comes in.
        table.update_rows(COLUMNS, {"node-1": ("gpu-node-1", "Ready", "9m"),
                                    "node-99": ("gpu-node-99", "NotReady", "1s")})
        await pilot.pause()
        assert "node-1" not in table.row_keys and table.row_keys[-1] == "node-99"
        table.update_rows(COLUMNS, {"node-3": ("gpu-node-3", "Ready", "3m")})  # leaves
        await pilot.pause()
        assert "node-3" not in table.row_keys and table.row_count == 7
        assert "NotReady" in screen_text(app) and "gpu-node-3 " not in screen_text(app)


async def test_sort_keys_order_by_a_column_and_mark_its_header():
    app = One()
    async with app.run_test(size=(80, 20)) as pilot:
        table = app.query_one(KeyedTable)
        table.fill_rows(COLUMNS, rows(12))
        table.focus()
        table.move_cursor(row=5)  # the cursor stays on its row through a sort
        await pilot.press(">")
        assert table.sort_column == "name" and not table.sort_reverse
        assert table.row_keys[:3] == ["node-0", "node-1", "node-10"]
        await pilot.press(">", ">")  # by age, read as durations
        assert table.sort_column == "age"
        assert table.row_keys[:3] == ["node-0", "node-1", "node-2"]
        assert table.row_keys[-1] == "node-11"
        await pilot.press("S")
        assert table.sort_reverse and table.row_keys[0] == "node-11"
        await pilot.pause()
        assert table.cursor_key == "node-5"
        assert "Age ▼" in screen_text(app)
        await pilot.press("<")
        assert table.sort_column == "state" and "State ▼" in screen_text(app)
        assert "Age ▼" not in screen_text(app)


def troubleshoot_app() -> InstallerApp:
    app = InstallerApp(fakes.state(), services=fakes.services(), start="review")
    app.run_state.clock = lambda: fakes.FROZEN
    return app


async def open_pods(pilot) -> PodTable:
    await pilot.press("ctrl+t")
    await until(pilot, lambda: getattr(pilot.app.screen, "view", None) is not None)
    pilot.app.screen.query_one("#ts-tabs").active = "ts-pods"
    await pilot.pause()
    table = pilot.app.screen.query_one(PodTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(VALIDATOR))
    await pilot.pause()
    return table


async def test_d_describes_the_pod_under_the_cursor_and_y_shows_its_yaml():
    app = troubleshoot_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_pods(pilot)
        assert {"d", "y", "l", "slash"} <= footer_keys(app)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ObjectModal)
                    and app.screen.text is not None)
        text = app.screen.text
        assert "Init Containers:" in text and "vfio-pci-validation" in text
        assert "CrashLoopBackOff" in text and "Back-off restarting" in text
        assert app.inspector().inspected[-1] == ("describe", "pod", "gpu-operator",
                                                 "nvidia-sandbox-validator-2jx9w")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ObjectModal))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ObjectModal)
                    and app.screen.text is not None)
        assert "kind: Pod" in app.screen.text and "managedFields" not in app.screen.text


async def test_d_on_a_node_or_an_event_describes_its_object_and_l_is_only_on_pods():
    app = troubleshoot_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_pods(pilot)
        screen = app.screen
        screen.query_one("#ts-tabs").active = "ts-nodes"
        await pilot.pause()
        nodes = screen.query_one("#node-labels", KeyedTable)
        nodes.focus()
        await pilot.pause()
        assert "d" in footer_keys(app) and "l" not in footer_keys(app)
        await pilot.press("l")  # not a pod: nothing opens
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ObjectModal)
                    and app.screen.text is not None)
        assert app.inspector().inspected[-1][:2] == ("describe", "node")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        screen.query_one("#ts-tabs").active = "ts-events"
        await pilot.pause()
        events = screen.query_one("#events", KeyedTable)
        events.focus()
        await pilot.pause()
        kind, ns, name = events.row_object()
        assert kind == "pod" and f"pod/{name}" == events.get_row_at(0)[2]
        await pilot.press("l")  # the event's pod: its log
        await until(pilot, lambda: screen.log_key == (ns, name))


async def test_the_nodes_screen_keeps_its_own_d_and_l():
    app = InstallerApp(fakes.state(), services=fakes.services(), start="nodes")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.screen.query(KeyedTable))
        table = app.screen.query_one(KeyedTable)
        table.focus()
        await pilot.pause()
        assert "slash" in footer_keys(app) and "y" not in footer_keys(app)
        default = app.state.answers.nodes.default
        await pilot.press("d")  # the cluster default, as before
        await until(pilot, lambda: app.state.answers.nodes.default != default)
        assert not isinstance(app.screen, ObjectModal)


async def test_l_follows_a_pod_log_c_cycles_its_containers_and_p_its_previous_run():
    app = troubleshoot_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_pods(pilot)
        inspector = app.inspector()
        await pilot.press("l")
        view = app.screen.query_one("#ts-log", PodLogView)
        await until(pilot, lambda: inspector.followed_containers[-1:] ==
                    ["nvidia-sandbox-validator"])
        assert view.containers == ("nvidia-sandbox-validator", "vfio-pci-validation")
        assert {"c", "p"} <= footer_keys(app)
        await pilot.press("c")  # the init container
        await until(pilot, lambda: inspector.followed_containers[-1:] ==
                    ["vfio-pci-validation"])
        assert "[vfio-pci-validation]" in view.title
        await pilot.press("p")
        await until(pilot, lambda: inspector.logs_read[-1:] == [
            ("gpu-operator", "nvidia-sandbox-validator-2jx9w", "vfio-pci-validation", True)])
        await until(pilot, lambda: len(view.pane.ring) == 5)
        assert "previous log line 0" in view.pane.ring[0] and "(previous run)" in view.title
        await pilot.press("p")  # back to the current run, followed
        await until(pilot, lambda: len(inspector.followed_containers) == 3)


async def test_no_live_cluster_says_so_in_describe_and_yaml():
    inspector = NoInspector()
    assert "no live cluster" in await inspector.describe("pod", "ns", "p")
    assert "no live cluster" in await inspector.yaml("node", "", "n")
    assert await inspector.logs("ns", "p", None, previous=True) == []


class Pods(App):
    def compose(self) -> ComposeResult:
        yield PodTable()


async def test_the_age_column_reads_the_creation_time_and_moves_on():
    now = [datetime(2027, 1, 15, 8, 0, tzinfo=UTC).timestamp()]
    app = Pods()
    async with app.run_test(size=(120, 10)) as pilot:
        table = app.query_one(PodTable)
        table.clock = lambda: now[0]
        table.update_pods([PodReading("ns", "a", "Running", created="2027-01-15T07:58:30Z"),
                           PodReading("ns", "b", "Running")])
        await pilot.pause()
        assert table.get_row("ns/a")[-1] == "90s" and table.get_row("ns/b")[-1] == ""
        now[0] += 60
        table.tick()
        assert table.get_row("ns/a")[-1] == "2m30s"
        await pilot.pause()
        assert "2m30s" in screen_text(app)
