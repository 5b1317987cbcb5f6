"""The pod watch on the lab's real API server: every change reported once, across the
server closing the watch stream (it resumes from the last resourceVersion)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from installer import kube
from installer.events import PodStatus
from installer.watch import PodWatch

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
