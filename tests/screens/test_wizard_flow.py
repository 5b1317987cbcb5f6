"""The wizard, screen by screen, driven with Pilot: what the operator does, what the app
says (its messages) and what it holds afterwards (answers, facts, the run)."""

from __future__ import annotations

import asyncio
import gc
import json
import stat
from dataclasses import replace

from textual.widgets import Button, Input, Select, TextArea

from installer.answers.model import load_answers
from installer.cluster.facts import with_gpu_pods
from installer.engine.events import RunFinished
from installer.engine.params import HostFixParams
from installer.engine.plan import build_plan
from installer.engine.sinks import render_plan
from installer.engine.uninstall import build_uninstall_plan
from installer.errors import UserError
from screens.app import InstallerApp
from screens.messages import (
    AnswersSaved,
    ChecksLoaded,
    EngineEvent,
    FactsFailed,
    FactsLoaded,
    LinesReady,
    NodesRead,
    PodsChanged,
)
from screens.modals import ConfirmModal, HelpModal, HostKeyModal, SaveModal
from screens.state import WizardState, new_answers
from screens.widgets.keyedtable import KeyedTable
from tests.screens import fakes
from tests.screens.helpers import screen_text, shown, until


def make_app(world=None, **kw) -> InstallerApp:
    st = kw.pop("state", None) or fakes.state()
    start = kw.pop("start", "cluster")
    return InstallerApp(st, services=fakes.services(world, **kw), start=start)


async def test_a_long_node_list_is_shown_as_it_is_read_and_chosen_for_once_whole():
    """5,000 nodes take seconds to read: the Nodes screen shows the pages read so far, says
    so, and keeps its choice keys greyed - a choice is made on the whole list only."""
    import threading

    held = threading.Event()
    app = make_app(state=WizardState(), held=held)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: len(app.nodes_read) == 2, what="the first page")
            app.goto("nodes")
            await until(pilot, lambda: app.screen.query("#nodes")
                        and app.screen.query_one("#nodes", KeyedTable).row_count == 2,
                        what="the first page drawn")
            assert "Reading the cluster's nodes: 2 so far" in shown(app, "#node-summary")
            assert app.state.facts is None
            # The next page's rows go in after the ones shown; nothing is built twice.
            table = app.screen.query_one("#nodes", KeyedTable)
            fills = []
            table.fill_rows = lambda *a, **kw: fills.append(a)  # type: ignore[method-assign]
            first = app.nodes_read
            more = (*first, *(replace(first[0], name=f"late-{i}") for i in range(3)))
            app.post_message(NodesRead(more))
            await until(pilot, lambda: table.row_count == 5, what="the next page drawn")
            assert fills == [] and table.row_keys[2:] == ["late-0", "late-1", "late-2"]
            del table.fill_rows
            await pilot.press("k")
            assert app.state.answers.nodes.items == []  # no choice on a partial list
            held.set()
            await until(pilot, lambda: app.state.facts is not None, what="discovery")
            await until(pilot, lambda: app.screen.query_one("#nodes", KeyedTable).row_count
                        == len(app.state.facts.cluster.nodes), what="every node drawn")
            assert "Reading" not in shown(app, "#node-summary") and app.nodes_read == ()
    finally:
        held.set()


# --- cluster ---

async def test_a_new_session_discovers_the_cluster_and_summarises_it():
    messages = []
    app = make_app(state=WizardState())
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        await until(pilot, lambda: app.state.facts is not None, what="discovery")
        assert [m for m in messages if isinstance(m, FactsLoaded)]
        summary = shown(app, "#summary")
        assert "4 (4 ready), 3 with NVIDIA GPUs" in summary
        assert "none (GPU Operator not installed)" in summary
        assert app.state.answers == new_answers()


async def test_the_collector_skips_what_exists_at_mount_while_the_app_runs_and_not_after():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert gc.get_freeze_count() > 10_000  # modules, classes, the app
    assert gc.get_freeze_count() == 0  # what the app leaves behind can be collected


async def test_discovery_failure_is_shown_with_its_fix():
    error = UserError("kubeconfig /nope not found", [])
    app = make_app(state=WizardState(), discover_error=error)
    messages = []
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        await until(pilot, lambda: app.facts_error is not None, what="the failure")
        assert [m.error for m in messages if isinstance(m, FactsFailed)] == [str(error)]
        assert "kubeconfig /nope not found" in shown(app, "#error")
        assert app.state.facts is None


async def test_kubeconfig_and_context_edit_the_answers_and_rediscover():
    app = make_app()
    messages = []
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        inp = app.screen.query_one("#kubeconfig", Input)
        inp.value = "/etc/kube/admin.conf"
        inp.focus()
        await pilot.press("enter")
        await until(pilot, lambda: any(isinstance(m, FactsLoaded) for m in messages))
        assert app.state.answers.cluster.kubeconfig == "/etc/kube/admin.conf"
        app.screen.query_one("#context", Select).value = "staging"
        await until(pilot, lambda: app.state.answers.cluster.context == "staging")


# --- nodes ---

async def test_nodes_are_chosen_one_by_one_in_bulk_and_by_default():
    app = make_app(start="nodes")
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one(KeyedTable)
        table.focus()
        assert table.row_count == 4
        await pilot.press("k")  # control-1 (cursor row 0) -> kata
        assert app.state.answers.nodes.choice_for("control-1") == "kata"
        await pilot.press("x")  # back to the default
        assert app.state.answers.nodes.choice_for("control-1") is None
        await pilot.press("down", "space", "space")  # select gpu-node-1 and gpu-node-2
        assert app.screen.selected == {"gpu-node-1", "gpu-node-2"}
        await pilot.press("l")
        assert app.state.answers.nodes.choice_for("gpu-node-1") == "leave"
        assert app.state.answers.nodes.choice_for("gpu-node-2") == "leave"
        await pilot.press("a", "t")  # every GPU node -> traditional
        assert {i.name: i.choice for i in app.state.answers.nodes.items} == {
            "gpu-node-1": "traditional", "gpu-node-2": "traditional",
            "gpu-node-3": "traditional"}
        await pilot.press("d")
        assert app.state.answers.nodes.default == "kata"
        await pilot.pause()
        assert "0 Kata" in shown(app, "#node-summary")
        assert "kata" in shown(app, "#default-line")


async def test_an_empty_cluster_says_so():
    app = make_app(start="nodes", state=fakes.state(facts=fakes.empty_facts()))
    async with app.run_test(size=(80, 24)):
        assert "The cluster has no nodes" in shown(app, "#node-summary")


async def test_two_hundred_nodes_fit_and_bulk_choice_covers_them_all():
    answers = new_answers()
    app = make_app(start="nodes", state=fakes.state(answers, fakes.many_nodes_facts()))
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.screen.query_one(KeyedTable).row_count == 201
        app.screen.query_one(KeyedTable).focus()
        await pilot.press("a", "k")
        assert len(app.state.kata_nodes()) == 200


# --- ssh ---

async def test_ssh_settings_validate_as_you_type_and_block_leaving_until_fixed():
    app = make_app(start="ssh")
    async with app.run_test(size=(80, 24)) as pilot:
        port = app.screen.query_one("#ssh-port", Input)
        port.value = "many"
        await pilot.pause()
        assert "Port" in shown(app, "#error")
        assert app.state.answers.ssh.port == 22  # the last valid answers are kept
        await pilot.press("ctrl+n")
        assert app.screen.STEP == "ssh"  # cannot leave with an error
        port.value = "2222"
        app.screen.query_one("#ssh-jump", Input).value = "ops@bastion.example.com:2200"
        await pilot.pause()
        assert app.state.answers.ssh.port == 2222
        assert app.state.answers.ssh.jump_host == "ops@bastion.example.com:2200"
        await pilot.press("ctrl+n")
        assert app.screen.STEP == "checks"


async def test_connection_test_shows_the_fingerprint_and_trusts_only_on_consent():
    access = fakes.FakeHostAccess()
    app = make_app(start="ssh", host_access=access)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, HostKeyModal), what="host key modal")
        assert "SHA256:Qm9vdHN0cmFwcGluZyBpcyBoYXJkIHdvcms0MjQyNDI" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: "connected as ops@192.0.2.11" in shown(app, "#test-result"))
        assert access.trusted == {"gpu-node-1"}


async def test_refusing_a_host_key_records_nothing():
    access = fakes.FakeHostAccess()
    app = make_app(start="ssh", host_access=access)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, HostKeyModal))
        await pilot.press("n")
        await until(pilot, lambda: "not trusted" in shown(app, "#test-result"))
        assert access.trusted == set()


# --- checks ---

async def test_checks_run_on_arrival_and_a_cell_shows_evidence_and_remedy():
    messages = []
    app = make_app(fakes.World(facts=fakes.example_facts()), start="checks")  # gpu-node-2 unready
    async with app.run_test(size=(120, 40), message_hook=messages.append) as pilot:
        await until(pilot, lambda: bool(app.state.checks), what="check results")
        assert [m for m in messages if isinstance(m, ChecksLoaded)]
        assert set(app.state.checks) == {"cluster", "gpu-node-1", "gpu-node-2"}
        grid = app.screen.query_one(KeyedTable)
        grid.focus()
        row = grid.get_row_index("gpu-node-2")
        column = grid.get_column_index("iommu-enabled")
        assert grid.get_cell("gpu-node-2", "iommu-enabled").plain == "✗ → fix"
        assert grid.get_cell("gpu-node-1", "iommu-enabled").plain == "✓ pass"
        grid.move_cursor(row=row, column=column)
        await pilot.pause()
        evidence = shown(app, "#evidence")
        assert "gpu-node-2 · iommu-enabled · ✗ FAIL" in evidence
        assert "sys/kernel/iommu_groups: empty" in evidence
        assert "intel_iommu=on" in evidence
        assert "A planned host fix covers this" in evidence
        await pilot.press("i")
        assert app.state.answers.checks.ignore == ["iommu-enabled"]
        assert "Ignored on every node" in shown(app, "#evidence")
        await pilot.press("i")
        assert app.state.answers.checks.ignore == []
        before = len([m for m in messages if isinstance(m, ChecksLoaded)])
        await pilot.press("r")
        await until(pilot, lambda: len([m for m in messages if isinstance(m, ChecksLoaded)])
                    > before, what="a re-run")


async def test_a_probe_that_finds_ready_hosts_passes_every_host_check():
    app = make_app(start="checks")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: bool(app.state.checks), what="check results")
        results = app.state.checks["gpu-node-2"]
        assert {r.status for r in results} <= {"pass", "skip"}
        assert "0 fail" in shown(app, "#checks-status")


async def test_a_re_run_probes_the_hosts_again_and_shows_what_they_are_now():
    """The host is prepared between the first check and the re-run (an install's fixes):
    `r` probes again, and the grid shows the new verdict, not the start-up's."""
    before, after = fakes.example_facts().hosts, fakes.ready_facts().hosts
    world = fakes.World(facts=fakes.example_facts(), probes=[before, after])
    app = make_app(world, start="checks")
    async with app.run_test(size=(120, 40)) as pilot:
        grid = app.screen.query_one(KeyedTable)
        await until(pilot, lambda: bool(app.state.checks), what="check results")
        await until(pilot, lambda: grid.get_cell("gpu-node-2", "iommu-enabled").plain
                    == "✗ → fix", what="the first verdict")
        await pilot.press("r")
        await until(pilot, lambda: len(world.probed) == 2, what="a second probe")
        await until(pilot, lambda: grid.get_cell("gpu-node-2", "iommu-enabled").plain
                    == "✓ pass", what="the new verdict")
        assert world.probed == [("gpu-node-1", "gpu-node-2")] * 2


async def test_the_troubleshoot_screen_s_re_run_probes_again_and_its_findings_follow():
    before, after = fakes.example_facts().hosts, fakes.ready_facts().hosts
    world = fakes.World(facts=fakes.example_facts(), probes=[before, after])
    app = make_app(world, start="checks")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: bool(app.state.checks), what="check results")
        await pilot.press("ctrl+t")
        await until(pilot, lambda: getattr(app.screen, "view", None) is not None)
        await until(pilot, lambda: any(f.where == "iommu-off" for f in app.screen.findings),
                    what="the first probe's findings")
        await pilot.press("c")
        await until(pilot, lambda: len(world.probed) == 2, what="a second probe")
        await until(pilot, lambda: not any(f.where in ("iommu-off", "gpu-node-2 iommu-enabled")
                                           for f in app.screen.findings),
                    what="findings without the prepared host's")
        checks = app.screen.query_one("#check-table", KeyedTable)
        assert not str(checks.get_cell("gpu-node-2/iommu-enabled", "summary")).startswith(
            "IOMMU off")


async def test_without_kata_nodes_there_is_nothing_to_check():
    app = make_app(start="checks", state=fakes.state(new_answers()))
    async with app.run_test(size=(80, 24)):
        assert "No node is chosen for Kata" in shown(app, "#checks-status")


# --- fixes ---

async def test_planned_host_fixes_show_previews_consent_and_progress():
    world = fakes.World(facts=fakes.example_facts())  # gpu-node-2 needs its host fixed
    app = make_app(world, start="fixes")
    async with app.run_test(size=(120, 40)) as pilot:
        fixes = [s for s in app.state.plan().steps if isinstance(s.params, HostFixParams)]
        assert [s.id for s in fixes] == [
            "fix/gpu-node-2/iommu-cmdline", "fix/gpu-node-2/nouveau-blacklist",
            "fix/gpu-node-2/nvidia-driver-off", "fix/gpu-node-2/kubelet-gate",
            "fix/gpu-node-2/reboot", "fix/gpu-node-2/vfio-bind"]
        status = shown(app, "#fixes-status")
        assert ("5 host fixes planned, 1 more after the reboot (asked for again then) · "
                "reboot needed on gpu-node-2") in status
        table = app.screen.query_one(KeyedTable)
        assert table.get_cell("5", "status").plain == "after reboot"
        assert 'GRUB_CMDLINE_LINUX="intel_iommu=on"' in shown(app, "#preview")
        table = app.screen.query_one(KeyedTable)
        assert table.get_cell("0", "policy") == "asks first"
        # consent: the kubelet fix without asking, the others asked during the run
        app.screen.query_one("#fix-kubelet", Select).value = "apply"
        await pilot.pause()
        assert app.state.answers.host_fixes.kubelet_feature_gate == "apply"
        assert table.get_cell("3", "policy") == "applies"
        app.goto("review")
        await pilot.pause()
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        asked = []
        while len(asked) < 4:  # iommu, nouveau, driver, reboot: each shows its preview
            await until(pilot, lambda: isinstance(app.screen, ConfirmModal), what="a fix")
            asked.append(screen_text(app))
            await pilot.press("y")
            await pilot.pause()
        assert "Apply 'iommu-cmdline' on gpu-node-2?" in asked[0]
        assert "+GRUB_CMDLINE_LINUX=\"intel_iommu=on\"" in asked[0]
        assert not any("Apply 'kubelet-gate'" in a for a in asked)
        await until(pilot, lambda: app.run_state.status == "ok", what="the run")
        app.goto("fixes")
        await pilot.pause()
        table = app.screen.query_one(KeyedTable)
        assert [table.get_cell(str(i), "status").plain for i in range(5)] == ["✓ applied"] * 5


# --- charts ---

async def test_chart_options_and_extra_values_edit_the_answers():
    app = make_app(start="charts")
    async with app.run_test(size=(120, 40)) as pilot:
        app.screen.query_one("#kd-version", Input).value = "3.30.0"
        app.screen.query_one("#op-naming", Select).value = "per-model"
        app.screen.query_one("#op-cc", Select).value = "off"
        app.screen.query_one("#op-values", TextArea).text = "driver:\n  enabled: false\n"
        await pilot.pause()
        a = app.state.answers
        assert a.kata_deploy.version == "3.30.0"
        assert a.gpu_operator.resource_naming == "per-model"
        assert a.gpu_operator.cc_mode == "off"
        assert a.gpu_operator.values == {"driver": {"enabled": False}}
        app.screen.query_one("#kd-source", Select).value = "path"
        app.screen.query_one("#kd-ref", Input).value = "/srv/charts/kata-deploy-3.30.0.tgz"
        await pilot.pause()
        assert app.state.answers.kata_deploy.chart.path == "/srv/charts/kata-deploy-3.30.0.tgz"


async def test_a_bad_chart_version_or_values_is_refused_with_the_reason():
    app = make_app(start="charts")
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#kd-version", Input).value = "v3.29.0"
        await pilot.pause()
        assert "without a leading 'v'" in shown(app, "#error")
        assert app.state.answers.kata_deploy.version == "3.29.0"
        await pilot.press("ctrl+n")
        assert app.screen.STEP == "charts"
        app.screen.query_one("#kd-version", Input).value = "3.29.0"
        app.screen.query_one("#kd-values", TextArea).text = "a: [unclosed"
        await pilot.pause()
        assert "not valid YAML" in shown(app, "#error")


# --- review and save ---

async def test_review_shows_exactly_the_dry_run_plan():
    app = make_app(start="review")
    async with app.run_test(size=(120, 40)):
        plan = build_plan(app.state.answers, app.state.facts)
        assert app.screen.lines == render_plan(plan.to_dict())
        assert f"Install: {len(plan.steps)} steps, {len(plan.changes)} changes" in shown(
            app, "#plan-summary")


async def test_review_looks_for_gpu_pods_on_the_nodes_to_relabel_and_warns():
    """Discovery reads nodes only; the review screen runs the plan's `gpu-pods` gather step
    (nodes it relabels only, no host probed) and shows the warning --dry-run prints."""
    world = fakes.World(gpu_pods={"gpu-node-1": ("ml/train-0",), "gpu-node-3": ("ml/x",)})
    facts = fakes.discovered_facts()
    app = make_app(world, start="review", state=fakes.state(facts=facts))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: any("runs GPU pods" in line for line in app.screen.lines),
                    what="the relabel warning")
        expected = build_plan(app.state.answers, with_gpu_pods(facts, {
            "gpu-node-1": ("ml/train-0",), "gpu-node-2": ()}))
        assert app.screen.lines == render_plan(expected.to_dict())
        assert "  warning: gpu-node-1 runs GPU pods (ml/train-0); relabelling it moves its " \
            "GPUs away from them - drain it first" in app.screen.lines
    assert world.ran == ["scan/gpu-pods"]  # gpu-node-3 is left alone: not looked at


async def test_review_names_nodes_the_cluster_lacks():
    app = make_app(start="review", state=fakes.state(facts=fakes.empty_facts()))
    async with app.run_test(size=(80, 24)):
        assert "'gpu-node-1' is not a node of this cluster" in shown(app, "#plan-summary")
        assert app.screen.query_one("#install").disabled


async def test_saved_answers_replay_to_the_same_plan(tmp_path):
    """Choices made in the wizard, saved, loaded back: the same plan as the wizard's."""
    messages = []
    app = make_app(start="nodes", state=fakes.state(new_answers()))
    async with app.run_test(size=(120, 40), message_hook=messages.append) as pilot:
        app.screen.query_one(KeyedTable).focus()
        await pilot.press("down", "k", "down", "k", "down", "l")
        app.goto("charts")
        await pilot.pause()
        app.screen.query_one("#op-naming", Select).value = "per-model"
        app.screen.query_one("#op-cc", Select).value = "off"
        app.screen.query_one("#kd-values", TextArea).text = "debug: true\n"
        await pilot.pause()
        app.goto("review")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SaveModal))
        app.screen.query_one(Input).value = str(tmp_path / "answers.yaml")
        await pilot.press("enter")
        await until(pilot, lambda: any(isinstance(m, AnswersSaved) for m in messages))
        review_lines = app.screen.lines
    path = tmp_path / "answers.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = load_answers(path)
    facts = fakes.example_facts()
    assert build_plan(saved, facts) == build_plan(app.state.answers, facts)
    assert {i.name: i.choice for i in saved.nodes.items} == {
        "gpu-node-1": "kata", "gpu-node-2": "kata", "gpu-node-3": "leave"}
    assert saved.gpu_operator.cc_mode == "off" and saved.kata_deploy.values == {"debug": True}
    assert render_plan(build_plan(saved, facts).to_dict()) == review_lines


async def test_uninstall_chosen_in_the_wizard_plans_what_the_uninstall_command_plans():
    """One engine for both front ends: Operation on the Cluster screen picks the planner the
    `uninstall` command uses, Review shows its plan, and `i` is offered as Uninstall."""
    app = make_app(state=fakes.state(fakes.example_answers()))
    async with app.run_test(size=(120, 40)) as pilot:
        app.screen.query_one("#operation", Select).value = "uninstall"
        await pilot.pause()
        assert app.state.operation == "uninstall"
        app.goto("review")
        await pilot.pause()
        facts = app.state.facts
        expected = build_uninstall_plan(app.state.answers, facts)
        assert app.screen.lines == render_plan(expected.to_dict())
        assert any(s.id == "uninstall/gpu-operator" for s in expected.steps)
        assert "Uninstall:" in shown(app, "#plan-summary")
        assert str(app.screen.query_one("#install", Button).label) == "Uninstall (i)"
        footer = {b.binding.description for b in app.screen.active_bindings.values()}
        assert "Uninstall" in footer and "Install" not in footer
        assert "left in place (h reverts them)" in shown(app, "#plan-summary")
        await pilot.press("h")  # consent to restore the host files, as --revert-hosts gives
        assert app.state.answers.uninstall.revert_hosts
        assert app.screen.lines == render_plan(
            build_uninstall_plan(app.state.answers, facts).to_dict())
        assert "host changes: reverted" in shown(app, "#plan-summary")


async def test_upgrade_chosen_in_the_wizard_plans_what_the_upgrade_command_prints(tmp_path,
                                                                                   capsys):
    """The same answers and recorded facts (3.30.0 + v26.3.3 installed): the wizard's Review
    and `upgrade --dry-run --json` show one plan."""
    from installer.cluster.factsfile import load_recorded_facts
    from installer.commands.cli import main
    from tests.unit.test_upgrade_plan import RELEASES, _answers_file, _facts_file

    answers_path = _answers_file(tmp_path, "4.1.0", "v26.7.0")
    facts_path = _facts_file(tmp_path, RELEASES)
    assert await asyncio.to_thread(main, ["upgrade", "--answers", str(answers_path),
                                          "--facts", str(facts_path), "--dry-run",
                                          "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    printed = next(e["plan"] for e in events if e.get("kind") == "plan")
    app = make_app(state=fakes.state(load_answers(answers_path),
                                     load_recorded_facts(facts_path)))
    async with app.run_test(size=(120, 40)) as pilot:
        app.screen.query_one("#operation", Select).value = "upgrade"
        await pilot.pause()
        app.goto("review")
        await pilot.pause()
        assert app.screen.lines == render_plan(printed)
        assert any("upgrade/wave-1" in line for line in app.screen.lines)


async def test_upgrade_chosen_with_nothing_installed_says_so_and_offers_no_run():
    app = make_app(state=fakes.state(fakes.example_answers()))
    async with app.run_test(size=(120, 40)) as pilot:
        app.screen.query_one("#operation", Select).value = "upgrade"
        await pilot.pause()
        app.goto("review")
        await pilot.pause()
        said = shown(app, "#plan-summary")
        assert "No upgrade plan: nothing to upgrade" in said
        assert "kata-system/kata-deploy is not installed" in said
        assert app.screen.query_one("#install", Button).disabled
        assert str(app.screen.query_one("#install", Button).label) == "Upgrade (i)"


async def test_an_answers_file_prefills_every_screen():
    app = make_app(state=fakes.state(fakes.example_answers()))
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.screen.query_one("#kubeconfig", Input).value == "~/.kube/config"
        app.goto("nodes")
        await pilot.pause()
        table = app.screen.query_one(KeyedTable)
        assert table.get_cell("gpu-node-1", "choice").plain == "kata"
        assert table.get_cell("gpu-node-3", "choice").plain == "traditional"
        assert table.get_cell("control-1", "choice").plain == "default (traditional)"
        app.goto("ssh")
        await pilot.pause()
        assert app.screen.query_one("#ssh-user", Input).value == "ops"
        assert app.screen.query_one("#ssh-identity", Input).value == "~/.ssh/id_ed25519"
        assert app.screen.query_one("#ssh-policy", Select).value == "strict"
        app.goto("charts")
        await pilot.pause()
        assert app.screen.query_one("#kd-version", Input).value == "3.29.0"
        assert app.screen.query_one("#op-version", Input).value == "v26.3.1"
        assert app.screen.query_one("#op-ref", Input).value == "https://helm.ngc.nvidia.com/nvidia"
        assert app.screen.query_one("#op-name", Input).value == "gpu-operator"


# --- install, sample, done ---

async def test_an_install_runs_every_step_with_pods_helm_output_and_the_sample():
    world = fakes.World()
    messages = []
    inspector = fakes.FakeInspector()
    app = make_app(world, start="review", inspector=inspector)
    async with app.run_test(size=(120, 40), message_hook=messages.append) as pilot:
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), what="consent")
        await pilot.press("y")
        await until(pilot, lambda: app.run_state.status == "ok", what="the run")
        assert app.screen.STEP == "install"
        assert world.changed == ["kube-system/gpu-kata-installer-state", "gpu-node-1",
                                 "gpu-node-2", "kata-system/kata-deploy",
                                 "gpu-operator/gpu-operator"]
        assert {r.status for r in app.run_state.steps.values()} == {"ok", "skipped"}
        finished = [m.event for m in messages if isinstance(m, EngineEvent)
                    and isinstance(m.event, RunFinished)]
        assert finished[-1].exit_code == 0
        # high-rate events arrive collapsed: fewer messages than events
        pod_messages = [m for m in messages if isinstance(m, PodsChanged)]
        line_messages = [m for m in messages if isinstance(m, LinesReady)]
        assert 0 < len(pod_messages) < 14 and 0 < len(line_messages) < 140
        assert ("gpu-operator", "nvidia-vfio-manager-4kq8s") in app.run_state.pods
        # the namespaces are also watched live: pods no step reported show up too
        assert inspector.watched == [("kata-system", "gpu-operator")]
        nfd = "gpu-operator-node-feature-discovery-worker-5xk2z"
        assert app.run_state.pods[("gpu-operator", nfd)].node == "gpu-node-1"
        assert f"gpu-operator/{nfd}" in app.screen.query_one("#pods", KeyedTable)
        assert "STATUS: deployed" in app.run_state.output.text()
        # the run's end stops the watch: no worker left watching
        await until(pilot, lambda: not [w for w in app.workers if w.group == "pods"
                                        and w.is_running], what="the watch to stop")
        await pilot.pause(0.3)
        assert "✓ Install ok" in screen_text(app) or "Install ok" in shown(app, "#run-line")
        app.goto("sample")
        await pilot.pause()
        assert "Test PASSED" in shown(app, "#verdict")
        assert app.run_state.sample_verdict() == "passed"
        app.goto("done")
        await pilot.pause()
        done = shown(app, "#done")
        assert "Install finished" in done and "Sample: Test PASSED" in done
        assert "runtimeClassName: kata-qemu-nvidia-gpu" in done


async def test_a_pod_chosen_in_the_table_shows_its_log():
    world = fakes.World()
    app = make_app(world, start="review")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("d")
        await until(pilot, lambda: app.run_state.status == "dry-run")
        # a dry-run shows no pods; feed the pod the install would have started
        from installer.engine.events import PodLog, PodStatus

        app.sink.emit(PodStatus(path="x", namespace="kata-system", pod="kata-deploy-x7k2p",
                                phase="Running", ready="1/1", node="gpu-node-1"))
        app.sink.emit(PodLog(path="x", namespace="kata-system", pod="kata-deploy-x7k2p",
                             container="kube-kata", line="Install completed"))
        await pilot.pause()
        table = app.screen.query_one("#pods", KeyedTable)
        table.focus()
        table.move_cursor(row=table.get_row_index("kata-system/kata-deploy-x7k2p"))
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.log_key == ("kata-system", "kata-deploy-x7k2p")
        pane = app.screen.query_one("#pod-log").pane
        assert "Install completed" in [pane.ring[i] for i in range(len(pane.ring))]


async def test_a_failed_step_is_shown_with_its_cause_and_the_run_stops():
    world = fakes.World(fail="install/gpu-operator")
    app = make_app(world, start="review")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await until(pilot, lambda: app.run_state.status == "failed")
        row = app.run_state.steps["install/gpu-operator"]
        assert row.status == "failed" and "context deadline exceeded" in row.message
        assert "pods did not become ready" in row.detail
        assert app.run_state.exit_code == 1
        assert "sample/cuda-vectoradd" not in world.ran
        assert "Install failed" in shown(app, "#run-line")


async def test_a_failing_sample_says_failed_with_its_log():
    world = fakes.World(sample_passes=False)
    app = make_app(world, start="review")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await until(pilot, lambda: app.run_state.status == "failed")
        app.goto("sample")
        await pilot.pause()
        assert "The sample failed" in shown(app, "#verdict")
        assert app.run_state.sample_verdict() == "failed"


async def test_consent_mid_run_is_a_modal_and_no_means_no():
    world = fakes.World(ask="install/kata-deploy")
    app = make_app(world, start="review")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the decider")
        assert "Apply Install kata-deploy?" in screen_text(app)
        await pilot.press("ctrl+n")  # moving on does not lose the question
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")
        await until(pilot, lambda: app.run_state.status == "ok")
        assert world.answers_seen == [False]


async def test_the_install_keeps_going_while_the_operator_looks_elsewhere():
    world = fakes.World(block="install/gpu-operator")
    app = make_app(world, start="review")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("d")  # dry-run: nothing blocks; use a real run for the block
        await until(pilot, lambda: app.run_state.status == "dry-run")
        app.goto("review")
        await pilot.pause()
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await until(pilot, lambda: "install/gpu-operator" in world.ran)
        app.goto("nodes")
        await pilot.pause()
        assert app.run_state.active
        assert "● install" in screen_text(app)  # the step bar reports the run everywhere
        await pilot.press("ctrl+t")
        await until(pilot, lambda: app.screen.__class__.__name__ == "TroubleshootScreen")
        assert app.run_state.active


async def test_an_executor_that_blocks_its_thread_does_not_freeze_the_screens():
    world = fakes.World(sync_block="label/gpu-node-1")
    app = make_app(world, start="review")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await until(pilot, lambda: "label/gpu-node-1" in world.ran)
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpModal), timeout=6)
        assert "gpu-node-1" not in world.changed  # the key was handled while it blocked
        await pilot.press("escape")
        await until(pilot, lambda: app.run_state.status == "ok", timeout=30)


async def test_quitting_during_an_install_asks_then_stops_it_cleanly():
    world = fakes.World(block="install/kata-deploy")
    app = make_app(world, start="review")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await until(pilot, lambda: "install/kata-deploy" in world.ran)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "An install is running. Stop it and quit?" in screen_text(app)
        await pilot.press("n")  # keep running
        await pilot.pause()
        assert app.run_state.active and app.is_running
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, what="the app to exit")
    assert app.return_value == 130
    assert app.run_state.status == "cancelled"
    assert "gpu-operator/gpu-operator" not in world.changed


async def test_quitting_when_idle_exits_at_once():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running)
    assert app.return_value == 0


# --- help, palette, navigation, troubleshooting ---

async def test_help_lists_this_screens_keys():
    app = make_app(start="nodes")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpModal)
        text = screen_text(app)
        assert "Help: Nodes" in text and "Kata" in text
        await pilot.press("escape")
        assert app.screen.STEP == "nodes"
        app.screen.query_one(KeyedTable).focus()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpModal)


async def test_the_command_palette_goes_to_any_screen():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"go to review")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: getattr(app.screen, "STEP", "") == "review")


async def test_next_and_back_walk_the_wizard_in_order():
    app = make_app()
    order = ["cluster", "nodes", "ssh", "checks", "fixes", "charts", "review", "install",
             "sample", "done"]
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.screen.STEP == "cluster"
        for step in order[1:]:
            await pilot.press("ctrl+n")
            await until(pilot, lambda s=step: getattr(app.screen, "STEP", "") == s,
                        what=f"ctrl+n to reach {step} (on {app.screen})")
        await pilot.press("escape")
        await until(pilot, lambda: getattr(app.screen, "STEP", "") == "sample",
                    what="escape to go back")


async def test_troubleshooting_shows_findings_pods_events_logs_nodes_and_reruns_checks():
    inspector = fakes.FakeInspector()
    app = make_app(fakes.World(facts=fakes.example_facts()), start="nodes", inspector=inspector)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+t")
        await until(pilot, lambda: getattr(app.screen, "view", None) is not None)
        findings = app.screen.query_one("#findings", KeyedTable)
        rows = [findings.get_row_at(i) for i in range(findings.row_count)]
        assert any("CrashLoopBackOff" in str(r[2]) for r in rows)
        assert any("BackOff" in str(r[2]) for r in rows)
        assert app.screen.query_one("#events", KeyedTable).row_count == 2
        labels = app.screen.query_one("#node-labels", KeyedTable)
        assert labels.get_cell("gpu-node-1", "workload") == "vm-passthrough"
        app.screen.query_one("#ts-tabs").active = "ts-pods"
        await pilot.pause()
        pods = app.screen.query_one("#ts-pod-table", KeyedTable)
        pods.focus()
        pods.move_cursor(row=pods.get_row_index("gpu-operator/nvidia-sandbox-validator-2jx9w"))
        await pilot.press("enter")
        await until(pilot, lambda: inspector.followed)
        await until(pilot, lambda: len(app.screen.query_one("#ts-log").pane.ring) == 3)
        assert inspector.followed == [("gpu-operator", "nvidia-sandbox-validator-2jx9w")]
        await pilot.press("escape")  # leaves the log pane's focus... back to the wizard
        await until(pilot, lambda: getattr(app.screen, "STEP", "") == "nodes")
        await pilot.press("ctrl+t")
        await until(pilot, lambda: getattr(app.screen, "STEP", "") == "troubleshoot")
        await pilot.press("c")
        await until(pilot, lambda: bool(app.state.checks))
        checks = app.screen.query_one("#check-table", KeyedTable)
        assert str(checks.get_cell("gpu-node-2/iommu-enabled", "summary")).startswith(
            "IOMMU off")
        # the findings read the new checks (the view is read again with them)
        await until(pilot, lambda: any(f.where == "iommu-off" for f in app.screen.findings),
                    what="the checks' findings")
        iommu = next(f for f in app.screen.findings if f.where == "iommu-off")
        assert iommu.severity == "error" and "gpu-node-2" in iommu.message
        # ... quoting the check, which is then not listed a second time on its own
        assert any("check iommu-enabled" in e for e in iommu.evidence)
        assert not any(f.where == "gpu-node-2 iommu-enabled" for f in app.screen.findings)


async def test_the_mouse_works_a_click_on_the_step_bar_goes_there():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        bar = app.screen.query_one("StepBar")
        start, _, _ = next(s for s in bar._spans if s[2] == "charts")
        await pilot.click("StepBar", offset=(start + 2, 0))
        await until(pilot, lambda: getattr(app.screen, "STEP", "") == "charts")
        await pilot.click("#kd-version")
        assert app.screen.focused is app.screen.query_one("#kd-version")


async def test_gpu_kata_installer_troubleshoot_opens_only_the_troubleshooting_screen():
    app = InstallerApp(fakes.state(), services=fakes.services(), troubleshoot=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: getattr(app.screen, "view", None) is not None)
        assert app.screen.STEP == "troubleshoot" and app.screen.standalone
        await pilot.press("escape", "ctrl+n")  # nowhere to go back or forward to
        assert app.screen.STEP == "troubleshoot"
        assert "4 pods and 2 events in kata-system and gpu-operator" in shown(app, "#ts-status")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running)


async def test_a_prompted_secret_is_asked_once_kept_in_memory_and_masked(tmp_path):
    from installer.answers.model import validate_answers
    from screens.modals import SecretModal
    from screens.state import answers_data

    data = answers_data(fakes.example_answers())
    data["ssh"]["sudo"] = {"mode": "password", "passwordPrompt": True}
    world = fakes.World()
    app = make_app(world, start="review", state=fakes.state(validate_answers(data)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, SecretModal), what="the prompt")
        assert "sudo password" in screen_text(app)
        await pilot.press(*"hunter2-sudo", "enter")
        await until(pilot, lambda: app.run_state.status == "dry-run", what="the dry-run")
        assert app.secrets == {"sudo password": "hunter2-sudo"}
        assert "hunter2-sudo" not in app.redactor.text("sudo -S <<< hunter2-sudo")
        app.goto("review")
        await pilot.pause()
        await pilot.press("d")  # asked once a session
        await until(pilot, lambda: app.run_state.status == "dry-run")
        assert not isinstance(app.screen, SecretModal)
        app.state.save(tmp_path / "a.yaml")
    assert "hunter2" not in (tmp_path / "a.yaml").read_text()
