"""The SSH screen's choice of how the hosts are reached (answers hostAccess): over SSH, or
through the cluster - the fields each mode shows, the answers saved, a pre-filled pod mode,
and the permission check, answered by a fake API server's SelfSubjectAccessReviews."""

from __future__ import annotations

import re

from textual.widgets import Input, Select

from installer.answers.model import DEFAULT_POD_IMAGE, load_answers, validate_answers
from installer.hosts.podrbac import pod_mode_permissions
from screens.app import InstallerApp
from screens.state import answers_data, set_in
from tests.screens import fakes
from tests.screens.helpers import shown, until
from tests.unit.test_podrbac import ReviewingKube


def make_app(state=None, **kw) -> InstallerApp:
    return InstallerApp(state or fakes.state(), services=fakes.services(**kw), start="ssh")


def pod_answers(**host_access):
    data = answers_data(fakes.example_answers())
    data["hostAccess"] = host_access or "pod"
    return validate_answers(data, source="test")


def shows(app, selector: str) -> bool:
    return app.screen.query_one(selector).display


async def test_choosing_the_cluster_hides_ssh_and_shows_the_pods_fields_and_back():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert shows(app, "#ssh-form") and not shows(app, "#pod-form")
        assert "Pod mode needs" not in shown(app, "#test-result")
        app.screen.query_one("#host-access", Select).value = "pod"
        await pilot.pause()
        assert not shows(app, "#ssh-form") and not shows(app, "#test-node")
        assert shows(app, "#pod-form") and shows(app, "#test-pods") and not shows(app, "#test")
        assert app.screen.query_one("#pod-image", Input).value == DEFAULT_POD_IMAGE
        assert app.screen.query_one("#pod-namespace", Input).value == "gpu-kata-installer"
        needed = shown(app, "#test-result")  # what to ask for, before asking
        assert "pods: create, get, list, delete" in needed and "pods/exec: create" in needed
        app.screen.query_one("#host-access", Select).value = "ssh"
        await pilot.pause()
        assert shows(app, "#ssh-form") and not shows(app, "#pod-form")
        assert app.state.answers.host_access.mode == "ssh"


async def test_the_choice_image_and_namespace_land_in_the_saved_answers(tmp_path):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#host-access", Select).value = "pod"
        await pilot.pause()
        app.screen.query_one("#pod-image", Input).value = "registry.example.com/tools/sh:1"
        app.screen.query_one("#pod-namespace", Input).value = "host-access"
        await pilot.pause()
        saved = app.state.save(tmp_path / "answers.yaml")
    got = load_answers(saved).host_access
    assert (got.mode, got.pod_image, got.namespace) == (
        "pod", "registry.example.com/tools/sh:1", "host-access")


async def test_a_bad_namespace_is_named_and_the_last_valid_answers_kept():
    app = make_app(state=fakes.state(pod_answers()))
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#pod-namespace", Input).value = "Not A Name"
        await pilot.pause()
        assert "Pod namespace" in shown(app, "#error")
        assert app.state.answers.host_access.namespace == "gpu-kata-installer"


async def test_the_image_help_names_the_mirror_it_is_pulled_from():
    answers = pod_answers()
    data = answers_data(answers)
    set_in(data, "images.registry", "registry.example.com/mirror")
    app = make_app(state=fakes.state(validate_answers(data, source="test")))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "registry.example.com/mirror/library/busybox:1.37" in shown(app, "#pod-help")


async def test_an_answers_file_with_hostaccess_pod_opens_in_pod_mode(tmp_path):
    path = tmp_path / "answers.yaml"
    example = (fakes.EXAMPLES / "answers.yaml").read_text()
    text = re.sub(r"^hostAccess:\n(  .*\n)+", "hostAccess: pod\n", example, flags=re.M)
    assert text != example
    path.write_text(text)
    app = make_app(state=fakes.state(load_answers(path)))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.screen.query_one("#host-access", Select).value == "pod"
        assert shows(app, "#pod-form") and not shows(app, "#ssh-form")


async def test_a_node_reached_otherwise_keeps_both_modes_fields():
    data = answers_data(fakes.example_answers())
    data["nodes"]["items"][0]["hostAccess"] = "pod"
    app = make_app(state=fakes.state(validate_answers(data, source="test")))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert shows(app, "#ssh-form") and shows(app, "#pod-form")


async def test_the_permission_check_says_the_context_may_when_every_review_allows():
    kube = ReviewingKube(set())
    access = fakes.FakeHostAccess()
    app = make_app(state=fakes.state(pod_answers()), kube=kube, host_access=access)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        await until(pilot, lambda: "✓" in shown(app, "#test-result"), what="the answer")
        assert ("context 'ops' may create the host-access pods in gpu-kata-installer"
                in shown(app, "#test-result"))
        assert len(kube.reviews) == len(pod_mode_permissions("gpu-kata-installer"))
        assert access.tested == []  # no SSH in pod mode


async def test_the_permission_check_names_every_refused_permission_with_its_can_i_line():
    kube = ReviewingKube({("create", "pods/exec"), ("create", "namespaces")})
    app = make_app(state=fakes.state(pod_answers(mode="pod", namespace="gki")), kube=kube)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+r")
        await until(pilot, lambda: "✗" in shown(app, "#test-result"), what="the refusal")
        text = shown(app, "#test-result")
        assert "context 'ops' may not do what pod mode needs in gki" in text
        assert "create pods/exec (namespace gki)" in text
        assert "kubectl auth can-i create pods --subresource exec -n gki" in text
        assert "create namespaces (cluster-wide)" in text
        assert "kubectl auth can-i create namespaces\n" in text
        assert "delete pods" not in text


async def test_a_cluster_that_cannot_be_reached_is_said_not_raised():
    class Unreachable:
        context = "ops"

        def send_json(self, *args):
            raise ConnectionRefusedError("connection refused")

    app = make_app(state=fakes.state(pod_answers()), kube=Unreachable())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        await until(pilot, lambda: "could not ask" in shown(app, "#test-result"))
        assert "connection refused" in shown(app, "#test-result")


async def test_a_kubeconfig_that_cannot_connect_says_what_and_how_to_fix_it():
    from installer.errors import Problem, UserError

    def refuse(cluster):
        raise UserError("cannot connect to the cluster", [Problem(
            "cluster", "no context 'lab'", "check the kubeconfig and context")])

    app = make_app(state=fakes.state(pod_answers()))
    app.services.kube = refuse
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        await until(pilot, lambda: "could not ask" in shown(app, "#test-result"))
        assert ("cannot connect to the cluster: no context 'lab' (check the kubeconfig and "
                "context)") in shown(app, "#test-result").replace("\n", " ")


async def test_recorded_facts_have_no_cluster_to_ask():
    app = make_app(state=fakes.state(pod_answers()), recorded=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        await until(pilot, lambda: "no live cluster" in shown(app, "#test-result"))


async def test_h_on_the_nodes_screen_reaches_one_node_the_other_way_and_back(tmp_path):
    from screens.widgets.keyedtable import KeyedTable

    app = InstallerApp(fakes.state(), services=fakes.services(), start="nodes")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(KeyedTable)
        table.focus()
        table.move_cursor(row=table.get_row_index("gpu-node-2"))
        await pilot.press("h")
        await pilot.pause()
        nodes = app.state.answers.nodes
        assert nodes.access_for("gpu-node-2", "ssh") == "pod"
        assert nodes.access_for("gpu-node-1", "ssh") == "ssh"
        assert table.get_cell("gpu-node-2", "choice").plain == "kata · pod"
        saved = load_answers(app.state.save(tmp_path / "answers.yaml"))
        assert saved.nodes.access_for("gpu-node-2", "ssh") == "pod"
        app.goto("ssh")
        await pilot.pause()
        assert shows(app, "#ssh-form") and shows(app, "#pod-form")  # both ways in use
        app.goto("nodes")
        await pilot.pause()
        await pilot.press("h")
        await pilot.pause()
        assert app.state.answers.nodes.access_for("gpu-node-2", "ssh") == "ssh"
        assert table.get_cell("gpu-node-2", "choice").plain == "kata"


def test_an_override_on_a_node_following_the_default_keeps_its_choice():
    state = fakes.state()
    state.set_default("kata")
    state.set_choice(["gpu-node-1"], "default")
    assert "gpu-node-1" in state.kata_nodes()
    assert state.toggle_access(["gpu-node-1"], set(state.kata_nodes())) == "pod"
    assert state.answers.nodes.choice_for("gpu-node-1") == "kata"
    assert state.answers.nodes.access_for("gpu-node-1", "ssh") == "pod"


async def test_checks_through_the_cluster_ask_first_naming_each_pod_and_a_no_runs_nothing():
    app = InstallerApp(fakes.state(pod_answers()), services=fakes.services(), start="checks")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmModal",
                    what="the question about the pods")
        asked = shown(app, "#detail DataStatic")
        assert "gpu-kata-installer/gki-host-gpu-node-2" in asked and "deleted after" in asked
        await pilot.press("n")
        await pilot.pause()
        assert not app.checking and not app.state.checks
        app.screen.action_rerun()
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmModal",
                    what="asked again after a no")
        await pilot.press("y")
        await until(pilot, lambda: bool(app.state.checks), what="check results")
        assert "gpu-node-2" in app.state.checks
        app.screen.action_rerun()  # agreed once: a re-run does not ask again
        await pilot.pause()
        assert type(app.screen).__name__ != "ConfirmModal"
