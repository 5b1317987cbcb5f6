"""The rules under the screens, without a screen: editing answers, the bounded ring, the
bridge collapsing high-rate events, and consent policies."""

from __future__ import annotations

import asyncio
import threading

import pytest

from installer.answers.model import validate_answers
from installer.engine.events import Output, PodLog, PodStatus, StepStarted
from installer.errors import UserError
from screens.bridge import OUTPUT_KEY, LineBatcher, TuiDecider, TuiSink
from screens.messages import EngineEvent, LinesReady, PodsChanged
from screens.state import Ring, WizardState, answers_data, new_answers
from tests.screens import fakes


def test_a_new_session_is_valid_answers_with_the_guides_versions():
    a = new_answers()
    assert a.kata_deploy.version == "3.29.0" and a.gpu_operator.version == "v26.3.1"
    assert validate_answers(answers_data(a)) == a


def test_bulk_choices_keep_ssh_overrides_and_default_forgets_the_node():
    data = answers_data(fakes.example_answers())
    data["nodes"]["items"][1]["address"] = "192.0.2.99"
    st = WizardState(validate_answers(data), fakes.example_facts())
    st.set_choice(["gpu-node-2", "gpu-node-3", "control-1"], "leave")
    items = {i.name: i for i in st.answers.nodes.items}
    assert items["gpu-node-2"].choice == "leave" and items["gpu-node-2"].address == "192.0.2.99"
    assert [i.name for i in st.answers.nodes.items] == ["gpu-node-1", "gpu-node-2",
                                                        "gpu-node-3", "control-1"]
    st.set_choice(["control-1"], "default")
    assert st.answers.nodes.choice_for("control-1") is None


def test_an_invalid_edit_changes_nothing_and_says_where():
    st = WizardState()
    before = st.answers
    with pytest.raises(UserError) as err:
        st.edit({"ssh.port": 70000})
    assert st.answers is before
    assert err.value.problems[0].where == "ssh.port"


def test_the_ring_keeps_the_newest_lines_only():
    ring = Ring(limit=100)
    for i in range(0, 1000, 7):
        ring.extend([str(n) for n in range(i, i + 7)])
    assert len(ring) == 100 and ring[0] == "901" and ring[99] == "1000"
    assert ring.dropped == 901 and ring.tail(2) == ["999", "1000"]
    assert len(ring._lines) <= 2 * 100 + 7  # compacted as it goes


def test_the_bridge_collapses_pod_statuses_and_batches_lines():
    posted = []
    lines = LineBatcher(posted.append)
    sink = TuiSink(posted.append, lines)
    for i in range(1000):
        sink.emit(PodStatus(path="x", namespace="ns", pod=f"p{i % 3}", phase=f"phase-{i}"))
        sink.emit(PodLog(path="x", namespace="ns", pod="p0", container="c", line=f"l{i}"))
        sink.emit(Output(path="install/x", message=f"o{i}"))
    sink.emit(StepStarted(path="s", title="t", phase="change"))
    assert [type(m) for m in posted] == [PodsChanged, LinesReady, EngineEvent]
    pods = sink.drain_pods()
    assert sorted((p.pod, p.phase) for p in pods) == [("p0", "phase-999"), ("p1", "phase-997"),
                                                      ("p2", "phase-998")]
    batches = lines.drain()
    assert len(batches[("ns", "p0")]) == 1000 and batches[OUTPUT_KEY][-1] == "install/x: o999"
    sink.emit(PodLog(path="x", namespace="ns", pod="p0", container="c", line="again"))
    assert type(posted[-1]) is LinesReady  # drained, so the next line schedules a new one


def test_the_bridge_redacts_secrets_in_lines():
    posted = []
    lines = LineBatcher(posted.append)
    sink = TuiSink(posted.append, lines)
    sink.redactor.add("hunter2-sudo")
    sink.emit(Output(path="fix/x", message="sudo -S <<< hunter2-sudo"))
    assert "hunter2-sudo" not in lines.drain()[OUTPUT_KEY][0]


def test_the_line_batcher_is_safe_from_many_threads():
    posted = []
    lines = LineBatcher(posted.append)

    def push(k):
        for i in range(2000):
            lines.push(("ns", f"p{k}"), [str(i)])

    threads = [threading.Thread(target=push, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = lines.drain()
    assert all(got[("ns", f"p{k}")] == [str(i) for i in range(2000)] for k in range(4))
    assert len(posted) == 1


def test_consent_policies_decide_without_asking_except_ask():
    asked = []

    def ask(question, detail):
        asked.append(question)
        future = asyncio.get_running_loop().create_future()
        future.set_result(True)
        return future

    decider = TuiDecider(ask)

    async def go():
        return [await decider.confirm("q1", "", "apply"), await decider.confirm("q2", "", "skip"),
                await decider.confirm("q3", "", "ask")]

    assert asyncio.run(go()) == [True, False, True]
    assert asked == ["q3"]


def test_editing_keeps_an_explicit_null_that_is_not_the_default():
    data = answers_data(fakes.example_answers())
    data["ssh"]["configFile"] = None  # the lab's answers: no ~/.ssh/config
    st = WizardState(validate_answers(data))
    st.edit({"ssh.port": 2222})
    st.set_choice(["gpu-node-3"], "kata")
    assert st.answers.ssh.config_file is None and st.answers.ssh.port == 2222
