"""A pod read as kubectl reads it, init containers included: the GPU Operator's operands fail
in their init containers first, where containerStatuses say nothing."""

from __future__ import annotations

from installer.cluster.podread import read_pod


def pod(*init_states: dict, main: dict | None = None) -> dict:
    inits = [f"init-{i}" for i in range(len(init_states))]
    return {"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"initContainers": [{"name": n} for n in inits],
                     "containers": [{"name": "main"}]},
            "status": {"phase": "Pending" if init_states else "Running",
                       "initContainerStatuses": [
                           {"name": n, "restartCount": s.pop("restarts", 0), "state": s}
                           for n, s in zip(inits, init_states, strict=True)],
                       "containerStatuses": [{"name": "main", "state": main or {
                           "waiting": {"reason": "PodInitializing"}}}]}}


DONE = {"terminated": {"exitCode": 0, "reason": "Completed"}}


def test_a_crash_looping_init_container_is_the_pods_reason_and_is_named():
    r = read_pod(pod(DONE, {"waiting": {"reason": "CrashLoopBackOff"}, "restarts": 4},
                     {"waiting": {"reason": "PodInitializing"}}))
    assert (r.reason, r.waiting_reason, r.init_container, r.restarts) == \
        ("Init:CrashLoopBackOff", "CrashLoopBackOff", "init-1", 4)


def test_an_init_container_still_running_shows_its_position():
    r = read_pod(pod(DONE, {"running": {}}, {"waiting": {"reason": "PodInitializing"}}))
    assert (r.reason, r.init_container) == ("Init:1/3", "init-1")


def test_an_init_container_that_failed_shows_its_reason():
    r = read_pod(pod({"terminated": {"exitCode": 1, "reason": "Error"}}))
    assert (r.reason, r.init_container) == ("Init:Error", "init-0")


def test_once_every_init_container_finished_the_main_container_speaks():
    r = read_pod(pod(DONE, DONE, main={"waiting": {"reason": "CrashLoopBackOff"}}))
    assert (r.reason, r.init_container) == ("CrashLoopBackOff", "")


def test_requests_and_the_admitted_overhead_are_read_apart():
    p = pod()
    p["spec"]["containers"][0]["resources"] = {"limits": {"memory": "16Gi",
                                                          "nvidia.com/pgpu": "1"}}
    p["spec"]["overhead"] = {"memory": "10240Mi", "cpu": "1"}
    r = read_pod(p)
    assert r.requests == {"memory": "16Gi", "nvidia.com/pgpu": "1"}
    assert r.overhead == {"memory": "10240Mi", "cpu": "1"}
