"""Honest waits: a waiting step says what it awaits and what it last saw, once per change of
what it observes, and the per-node grid is built from the step ids and those observations."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import replace

import pytest

from installer.charts.verify import OPERAND_DAEMONSETS, Snapshot, operator_progress
from installer.cluster.podread import PodReading
from installer.diagnosis.progress import Cell, StepProgress, duration, node_grid
from installer.engine.events import Recorder, Waiting, WarningEvent
from installer.engine.params import VerifyGpuOperatorParams
from installer.engine.plan import Step
from installer.engine.runner import Context
from installer.engine.sinks import JsonSink, TextSink
from installer.engine.steps import verify
from installer.engine.waits import WaitReporter
from installer.redact import Redactor

POLICY = {"spec": {"sandboxWorkloads": {"enabled": True, "mode": "kata"}},
          "status": {"state": "ready"}}
NODES = ["gpu-node-1", "gpu-node-2"]


def operands(node: str, held: dict[str, PodReading] | None = None) -> list[PodReading]:
    pods = []
    for ds, selector in OPERAND_DAEMONSETS.items():
        key, _, value = selector.partition("=")
        pod = PodReading("gpu-operator", f"{ds}-{node}", "Running", node=node,
                         labels={key: value})
        pods.append(replace(pod, **(held or {}).get(ds, {})))
    return pods


VALIDATOR_HELD = {"nvidia-sandbox-validator": {
    "phase": "Pending", "reason": "Init:1/4", "waiting_reason": "PodInitializing",
    "init_container": "vfio-pci-validation"}}


def snap(held_on_2: dict | None = None, node_2_ready: bool = True) -> Snapshot:
    labels = {"nvidia.com/gpu.workload.config": "vm-passthrough",
              "nvidia.com/cc.ready.state": "false"}
    return Snapshot(
        node_labels={n: dict(labels) for n in NODES},
        node_allocatable={"gpu-node-1": {"nvidia.com/pgpu": "1"},
                          "gpu-node-2": {"nvidia.com/pgpu": "1" if node_2_ready else "0"}},
        cluster_policy=POLICY,
        pods=(*operands("gpu-node-1"), *operands("gpu-node-2", held_on_2)))


def test_an_operand_held_in_init_is_said_as_kubectl_shows_it():
    progress = operator_progress(snap(VALIDATOR_HELD, False), NODES, "nvidia.com/pgpu")
    assert progress["gpu-node-1"].done
    assert not progress["gpu-node-2"].done
    assert progress["gpu-node-2"].seen == (
        "3 of 4 operand pods running on gpu-node-2; waiting for nvidia-sandbox-validator: "
        "Init:1/4 vfio-pci-validation")


def run_verify(monkeypatch, snapshots: list[Snapshot]) -> Recorder:
    """The real verify executor over a sequence of snapshots, one per poll."""
    it = iter(snapshots)
    monkeypatch.setattr(verify, "snapshot", lambda k, ns: next(it))
    monkeypatch.setattr(verify, "QUICK_POLL_SECONDS", 0)
    rec = Recorder()
    ctx = Context(dry_run=False, sinks=[rec], decider=None, services={"kube": object()})
    step = Step("verify/gpu-operator", "verify", "GPU Operator ready",
                VerifyGpuOperatorParams(tuple(NODES), "gpu-operator", "nvidia.com/pgpu", 300))
    asyncio.run(verify.verify_gpu_operator(ctx, step, None))
    return rec


def test_verify_emits_one_waiting_per_change_of_what_it_observes(monkeypatch):
    held = snap(VALIDATOR_HELD, False)
    crashing = snap({"nvidia-sandbox-validator": {**VALIDATOR_HELD["nvidia-sandbox-validator"],
                                                  "reason": "Init:CrashLoopBackOff"}}, False)
    no_gpu = snap(None, False)
    rec = run_verify(monkeypatch, [held, held, held, crashing, crashing, no_gpu, snap()])
    waits = rec.of(Waiting)
    assert [w.observed for w in waits] == [
        "3 of 4 operand pods running on gpu-node-2; waiting for nvidia-sandbox-validator: "
        "Init:1/4 vfio-pci-validation",
        "3 of 4 operand pods running on gpu-node-2; waiting for nvidia-sandbox-validator: "
        "Init:CrashLoopBackOff vfio-pci-validation",
        "4 of 4 operand pods running on gpu-node-2; waiting for allocatable nvidia.com/pgpu",
        "ready",
    ]
    assert len(waits) == 4  # seven polls, four distinct observations
    assert waits[0].ready == ("gpu-node-1",) and set(waits[0].nodes) == {"gpu-node-2"}
    assert waits[-1].ready == tuple(NODES) and waits[-1].nodes == {}
    first = waits[0]
    assert all(w.started_at == first.started_at for w in waits)
    assert first.deadline == pytest.approx(first.started_at + 300)
    assert first.awaited == "operands on 2 Kata nodes, ClusterPolicy ready, GPUs allocatable"
    # the existing warnings stay as they were: one per new likeliest cause
    assert all(w.message.startswith("waiting: ") for w in rec.of(WarningEvent))


def test_the_reporter_emits_only_when_something_changed():
    rec = Recorder()
    w = WaitReporter(rec.emit, "sample/x", "the pod to finish", 60, clock=lambda: 1000.0)
    assert w.saw("Pending") and not w.saw("Pending")
    assert w.saw("Pending", nodes={"n1": "Pending"})
    assert w.saw("Running on n1")
    assert [e.observed for e in rec.of(Waiting)] == ["Pending", "Pending", "Running on n1"]
    assert rec.events[0].deadline == 1060.0 and rec.events[0].started_at == 1000.0


def waiting() -> Waiting:
    return Waiting(path="verify/gpu-operator", awaited="operands ready", observed="3 of 4",
                   started_at=1000.0, deadline=1315.0, at=1063.0, nodes={"gpu-node-2": "3 of 4"})


def test_json_prints_the_waiting_event_and_text_one_line_with_elapsed_and_countdown():
    out = io.StringIO()
    JsonSink(out, Redactor()).emit(waiting())
    data = json.loads(out.getvalue())
    assert data["kind"] == "waiting" and data["nodes"] == {"gpu-node-2": "3 of 4"}
    assert data["deadline"] == 1315.0 and data["awaited"] == "operands ready"
    text = io.StringIO()
    TextSink(text, Redactor()).emit(waiting())
    assert text.getvalue() == ("  … verify/gpu-operator: 1m03s waiting for operands ready: "
                               "3 of 4, times out in 4m12s\n")


def test_durations_are_short():
    assert [duration(s) for s in (None, 0.4, 59, 63, 3725)] == ["", "0s", "59s", "1m03s",
                                                                 "1h02m"]


def test_the_grid_is_built_from_step_ids_and_the_waits_per_node():
    steps = [
        StepProgress("check/cluster", "ok", 0, 1),
        StepProgress("check/gpu-node-1", "ok", 0, 2),
        StepProgress("check/gpu-node-2", "ok", 0, 3),
        StepProgress("cordon/gpu-node-2", "ok", 3, 3.5),
        StepProgress("drain/gpu-node-2", "ok", 3.5, 4),
        StepProgress("fix/gpu-node-2/vfio-bind", "ok", 4, 6),
        StepProgress("fix/gpu-node-2/reboot", "pending"),
        StepProgress("uncordon/gpu-node-2", "pending"),
        StepProgress("label/gpu-node-1", "ok", 10, 11),
        StepProgress("install/kata-deploy", "ok", 11, 20),
        StepProgress("verify/kata-deploy", "ok", 20, 50),
        StepProgress("install/gpu-operator", "ok", 50, 60),
        StepProgress("verify/gpu-operator", "running", 60, None,
                     {"gpu-node-2": "3 of 4 operand pods running"}, ("gpu-node-1",)),
        StepProgress("verify/host/gpu-node-1", "pending"),
        StepProgress("verify/host/gpu-node-2", "pending"),
        StepProgress("sample/cuda-vectoradd", "pending"),
    ]
    g = node_grid(steps, now=100)
    assert g.columns == ("checks", "drain", "fixes", "label", "kata", "operands", "host",
                         "sample")
    assert [r.node for r in g.rows] == ["gpu-node-1", "gpu-node-2"]
    one, two = (dict(zip(g.columns, r.cells, strict=True)) for r in g.rows)
    assert one["checks"] == Cell("ok", 2) and one["fixes"] == Cell()
    assert two["fixes"] == Cell("running", 2)  # one fix done, the reboot not started
    assert two["drain"] == Cell("running", 1) and one["drain"] == Cell()  # out of service
    assert two["label"] == Cell()
    assert one["kata"] == Cell("ok", 30) == two["kata"]
    assert one["operands"] == Cell("ok")
    assert two["operands"] == Cell("running", 40, "3 of 4 operand pods running")
    assert one["host"] == Cell("pending") and one["sample"] == Cell()
