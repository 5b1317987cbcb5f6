"""The pod watch on the lab's real API server: every change reported once, across the
server closing the watch stream (it resumes from the last resourceVersion)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import pytest

from installer.cluster import kube
from installer.engine.events import PodStatus, WarningEvent
from installer.engine.watch import PodWatch
from tests.integration.test_kube_access import reader

pytestmark = pytest.mark.lab
NS = "watch-test"


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": {"containers": [{"name": "c", "image": "busybox"}],
                     "nodeName": "cpu-node-1"}}


def test_watch_reports_each_change_once_across_stream_ends(lab):
    lab.kubectl("create", "namespace", NS, check=False)
    lab.kubectl("delete", "pods", "--all", "-n", NS, "--wait=true")
    k = kube.connect(str(lab.kubeconfig), None)
    seen: list[PodStatus] = []

    async def run() -> None:
        watch = PodWatch(k, [NS], seen.append, watch_seconds=2)
        task = asyncio.create_task(watch.run())
        try:
            for i in range(4):
                await asyncio.to_thread(lab.apply, pod(f"w{i}"))
                await asyncio.sleep(2.5)  # a stream end falls between each pair of changes
            await asyncio.to_thread(lab.kubectl, "delete", "pod", "w0", "-n", NS,
                                    "--wait=true")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(
                    e.pod == "w0" and e.phase == "Deleted" for e in seen):
                await asyncio.sleep(0.5)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())
    names = {e.pod for e in seen}
    assert names == {"w0", "w1", "w2", "w3"}
    assert [e.phase for e in seen if e.pod == "w0"][-1] == "Deleted"
    # No change reported twice, none lost: each resourceVersion once, in order, ending at
    # the version the API server holds now.
    versions = [(e.pod, e.version) for e in seen if e.phase != "Deleted"]
    assert len(versions) == len(set(versions))
    for name in names - {"w0"}:
        mine = [int(v) for p, v in versions if p == name]
        assert mine == sorted(mine)
        now = lab.kubectl("get", "pod", name, "-n", NS, "-o",
                          "jsonpath={.metadata.resourceVersion}").stdout
        assert mine[-1] == int(now)
    assert Counter(e.phase for e in seen if e.pod == "w0")["Deleted"] == 1


RESTART_NS = "watch-restart"


def test_watch_resumes_across_an_api_server_restart_each_change_once(lab):
    """kube-apiserver killed (SIGKILL) and started again while the watch runs, with pod
    changes before, right after the restart (while the watch is still backing off) and
    after it reconnects: each pod ends at the version the server holds, no version is
    reported twice or out of order, and the deletion made during the outage is reported once."""
    lab.kubectl("create", "namespace", RESTART_NS, check=False)
    lab.kubectl("delete", "pods", "--all", "-n", RESTART_NS, "--wait=true")
    cp = lab.control_plane()
    k = kube.connect(str(lab.kubeconfig), None)
    seen: list[PodStatus] = []
    made: list[tuple[str, int]] = []  # (pod, resourceVersion) of every change we made

    def made_now(name: str) -> None:
        made.append((name, int(lab.kubectl("get", "pod", name, "-n", RESTART_NS, "-o",
                                           "jsonpath={.metadata.resourceVersion}").stdout)))

    def label(name: str, value: str) -> None:
        lab.kubectl("label", "pod", name, f"fault={value}", "-n", RESTART_NS)
        made_now(name)

    def create(name: str) -> None:
        lab.kubectl("create", "-f", "-", input=json.dumps({**pod(name), "metadata": {
            "name": name, "namespace": RESTART_NS}}))
        made_now(name)

    async def until(what: str, fn, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not fn():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {seen[-5:]}"
            await asyncio.sleep(0.2)

    def reported(name: str, at_least: int = 0) -> bool:
        return any(e.pod == name and e.phase != "Deleted" and int(e.version) >= at_least
                   for e in seen)

    async def run() -> None:
        watch = PodWatch(k, [RESTART_NS], seen.append, watch_seconds=60)
        task = asyncio.create_task(watch.run())
        try:
            for name in ("r0", "r1"):
                await asyncio.to_thread(create, name)
            await until("r0 and r1", lambda: reported("r0") and reported("r1"))
            await asyncio.to_thread(cp.restart, "kube-apiserver")
            await asyncio.to_thread(cp.wait_ready, 120)
            # queued: made while the watch is still away
            await asyncio.to_thread(label, "r0", "during")
            await asyncio.to_thread(lab.kubectl, "delete", "pod", "r1", "-n", RESTART_NS,
                                    "--wait=true")
            await asyncio.to_thread(create, "r2")
            await until("the watch to resume", lambda: reported("r2"))
            await asyncio.to_thread(label, "r2", "after")
            await asyncio.to_thread(create, "r3")
            last = {name: rv for name, rv in made}
            await until("every change", lambda: all(reported(n, v) for n, v in last.items()
                                                    if n != "r1")
                        and any(e.pod == "r1" and e.phase == "Deleted" for e in seen))
            await asyncio.sleep(1)  # a late duplicate would arrive now
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(run())
    finally:
        for comp, up in cp.running().items():  # a controller that lost its lease exits
            if not up:
                cp.restart(comp)
    versions = [(e.pod, e.version) for e in seen if e.phase != "Deleted"]
    assert len(versions) == len(set(versions)), versions
    for name in ("r0", "r2", "r3"):
        mine = [int(v) for p, v in versions if p == name]
        assert mine == sorted(mine), (name, mine)
        now = lab.kubectl("get", "pod", name, "-n", RESTART_NS, "-o",
                          "jsonpath={.metadata.resourceVersion}").stdout
        assert mine[-1] == int(now), (name, mine, now)
        assert all(any(v >= rv for v in mine) for p, rv in made if p == name), (name, made)
    assert [e.phase for e in seen if e.pod == "r1"].count("Deleted") == 1
    assert [e.pod for e in seen if e.phase == "Deleted"] == ["r1"]


def test_a_user_who_may_list_but_not_watch_pods_is_told_once_instead_of_retried_forever(
        lab, tmp_path):
    """RBAC grants get and list, not watch: the pods are listed once, then one warning says
    why they are not live - the watch does not hammer the API server with refused requests."""
    ns = "watch-refused"  # its own: the tests above leave pods in theirs
    lab.kubectl("create", "namespace", ns, check=False)
    lab.apply({**pod("r0"), "metadata": {"name": "r0", "namespace": ns}})
    seen: list = []
    with reader(lab, tmp_path, ["pods"]) as (kubeconfig, _token):
        k = kube.connect(str(kubeconfig), None)

        async def run() -> None:
            task = asyncio.create_task(PodWatch(k, [ns], seen.append, watch_seconds=2).run())
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(
                    isinstance(e, WarningEvent) for e in seen):
                await asyncio.sleep(0.2)
            await asyncio.sleep(3)  # long enough for retries, were there any
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        asyncio.run(run())
    assert [e.pod for e in seen if isinstance(e, PodStatus)] == ["r0"]
    (warning,) = [e for e in seen if isinstance(e, WarningEvent)]
    assert warning.message.startswith(f"pods in {ns} are not shown live: ")
    assert "may not watch pods" in warning.message
