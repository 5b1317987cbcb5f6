"""Time to a named cause: how long after a failure shows on the API server the operator is told
why, by the installer and by the guide's `helm install --wait --timeout 10m`.

    .venv/bin/python bench/time_to_cause.py                  # the guide's 10m timeout
    .venv/bin/python bench/time_to_cause.py --quick          # CI: a 30 s guide timeout

Three failures an operand cannot get past (issue 18, point 11), each on its own lab node:

- init-container: a GPU that shares its IOMMU group with a NIC (gpu-shared-group host) cannot
  go to vfio-pci, so the sandbox validator crash-loops in its `vfio-pci-validation` init
  container and the device plugin waits in its own;
- host-driver: a host with the nvidia driver loaded (gpu-host-driver): the vfio-manager's
  `k8s-driver-manager` init container fails with "driver is pre-installed on host";
- kubevirt: the GPU Operator's sandbox mode left at its default, kubevirt (through the
  answers' extra values for the installer, the guide's values without `mode=kata` for helm).

A watcher polls the lab's API server every 0.1 s for the condition itself (the failing init
container's status, the ClusterPolicy's mode) and stamps the moment it first shows. The
installer side runs `python -m installer --answers FILE --yes --json` and stamps the first event
that names the cause; the guide side runs the guide's commands with `helm install --wait
--timeout` and looks for the cause in what helm prints. Host checks and fixes are set aside
on the installer side (the point is what it says once the cluster fails, not that its checks
would have refused these hosts first). Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from compiled import compile_product

from installer.answers.checknames import CHECK_NAMES
from tests.lab import guide
from tests.lab.answers import lab_answers
from tests.lab.kube import Kube
from tests.lab.lab import Lab, LabInfo

ROOT = Path(__file__).resolve().parents[1]
GOAL = 10.0  # seconds from the condition on the API server to the cause named
POLL = 0.1
OPERATOR_NS = "gpu-operator"


def failing_init(kube: Kube, node: str, owner: str, container: str) -> bool:
    """A pod of DaemonSet `owner` on `node` whose init container `container` has failed."""
    pods, _ = kube.list(f"/api/v1/namespaces/{OPERATOR_NS}/pods")
    for pod in pods:
        refs = pod["metadata"].get("ownerReferences") or []
        if pod["spec"].get("nodeName") != node or not any(r["name"] == owner for r in refs):
            continue
        for st in (pod.get("status") or {}).get("initContainerStatuses") or []:
            state, last = st.get("state") or {}, st.get("lastState") or {}
            if st["name"] == container and (
                    (state.get("waiting") or {}).get("reason") == "CrashLoopBackOff"
                    or (state.get("terminated") or {}).get("exitCode", 0) != 0
                    or (last.get("terminated") or {}).get("exitCode", 0) != 0):
                return True
    return False


def policy_mode_kubevirt(kube: Kube) -> bool:
    policy = kube.get_or_none("/apis/nvidia.com/v1/clusterpolicies/cluster-policy")
    sw = ((policy or {}).get("spec") or {}).get("sandboxWorkloads") or {}
    return sw.get("enabled") is True and sw.get("mode") == "kubevirt"


@dataclass(frozen=True)
class Scenario:
    name: str
    node: str  # the one node taken to Kata
    condition: Callable[[Kube], bool]
    cause: tuple[str, ...]  # words that name the cause (any one)
    kubevirt: bool = False


SCENARIOS = (
    Scenario("init-container", "gpu-node-4",
             lambda k: failing_init(k, "gpu-node-4", "nvidia-sandbox-validator",
                                    "vfio-pci-validation"),
             ("not bound to 'vfio-pci'",)),
    Scenario("host-driver", "gpu-node-3",
             lambda k: failing_init(k, "gpu-node-3", "nvidia-vfio-manager", "k8s-driver-manager"),
             ("host NVIDIA driver", "pre-installed")),
    Scenario("kubevirt", "gpu-node-1", policy_mode_kubevirt, ("kubevirt",), kubevirt=True),
)


class Watcher:
    """Stamps (time.time()) the first poll at which `condition` holds."""

    def __init__(self, kube: Kube, condition: Callable[[Kube], bool]) -> None:
        self.kube, self.condition = kube, condition
        self.at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and self.at is None:
            try:
                if self.condition(self.kube):
                    self.at = time.time()
            except Exception:  # the API server between objects: poll again
                pass
            self._stop.wait(POLL)

    def stop(self, grace: float = 0.0) -> float | None:
        """The condition's time; waits up to `grace` s for it if it has not shown yet."""
        self._thread.join(grace)
        self._stop.set()
        self._thread.join()
        return self.at


def installer_side(info: LabInfo, s: Scenario, work: Path,
                   watcher: Watcher) -> tuple[float | None, str]:
    """(epoch time of the first event naming the cause, that event's text). The run goes on
    until the condition has shown too (a cause can be named before it: the plan warns of an
    override that leaves the operator in kubevirt mode), then it is stopped."""
    choices = {n.name: "kata" if n.name == s.node else "leave" for n in info.nodes}
    data = lab_answers(info, sample_timeout=60, chart_timeout="2m", fixes="skip",
                       choices=choices)
    data["checks"] = {"ignore": list(CHECK_NAMES)}
    if s.kubevirt:
        data["gpuOperator"]["values"] = {"sandboxWorkloads": {"mode": "kubevirt"}}
    answers = work / f"answers-{s.name}.yaml"
    answers.write_text(yaml.safe_dump(data))
    env = {**info.env(), "XDG_STATE_HOME": str(work / f"state-{s.name}"),
           "GPU_KATA_HELM": info.binaries["helm"]}
    proc = subprocess.Popen([sys.executable, "-m", "installer", "--answers", str(answers),
                             "--yes", "--json"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    found: tuple[float | None, str] = (None, "")
    for line in proc.stdout:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        text = " ".join(str(event.get(k, "")) for k in ("message", "detail"))
        if found[0] is None and event.get("kind") in ("warning", "step-finished") \
                and any(c in text for c in s.cause):
            found = (event["at"], text.strip())
        if found[0] is not None and watcher.at is not None:
            proc.terminate()  # both stamped: the rest of the run is not measured
            break
    proc.wait()
    return found


def guide_side(info: LabInfo, s: Scenario, timeout: str) -> tuple[float, str, int]:
    """(epoch time helm returned, its output, its exit code) for the guide's commands."""
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), env=info.env(), capture_output=True, text=True,
                              check=check, stdin=subprocess.DEVNULL)

    helm, kubectl = info.binaries["helm"], info.binaries["kubectl"]
    run(helm, "install", "kata-deploy", info.charts["kata-deploy"], "-n", "kata-system",
        "--create-namespace", "--wait", "--timeout", "3m", *guide.set_args(guide.KATA_DEPLOY_SET))
    run(kubectl, "label", "node", s.node, "nvidia.com/gpu.workload.config=vm-passthrough",
        "--overwrite")
    values = [v for v in guide.GPU_OPERATOR_SET if not (s.kubevirt and v.endswith("mode=kata"))]
    r = run(helm, "install", "gpu-operator", info.charts["gpu-operator"], "-n", OPERATOR_NS,
            "--create-namespace", "--wait", "--timeout", timeout, *guide.set_args(values),
            check=False)
    return time.time(), (r.stdout + r.stderr).strip(), r.returncode


def measure(lab: Lab, info: LabInfo, s: Scenario, side: str, work: Path,
            timeout: str) -> dict:
    lab.reset()
    kube = Kube(info.kubeconfig)
    watcher = Watcher(kube, s.condition)
    if side == "installer":
        named_at, text = installer_side(info, s, work, watcher)
        returned_at, code = named_at, None
    else:
        returned_at, out, code = guide_side(info, s, timeout)
        named = any(c in out for c in s.cause)
        named_at, text = (returned_at if named else None), out.splitlines()[-1] if out else ""
    seen = watcher.stop(grace=60)  # helm may return before the failure shows
    return {"scenario": s.name, "side": side, "condition_at": seen, "named_at": named_at,
            "returned_at": returned_at, "exit": code, "text": text[:160]}


def seconds(a: float | None, b: float | None) -> str:
    """b - a; negative when b came first (a cause named, or helm done, before the failure)."""
    return f"{b - a:+.1f} s" if a is not None and b is not None else "never"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 30 s guide timeout (CI)")
    ap.add_argument("--guide-timeout", default="10m", help="helm --timeout on the guide side")
    ap.add_argument("--state", default=None, help="a state dir for this benchmark's own lab")
    ap.add_argument("--prefix", default="127.0.16", help="that lab's address prefix")
    a = ap.parse_args()
    compile_product(ROOT)
    timeout = "30s" if a.quick else a.guide_timeout
    os.environ["LAB_ADDRESS_PREFIX"] = a.prefix
    with tempfile.TemporaryDirectory(prefix="gki-ttc-") as tmp:
        work = Path(tmp)
        lab = Lab(a.state or work / "lab")
        info = lab.up(extra_nodes=["gpu-node-4=gpu-shared-group"])
        rows = []
        try:
            for s in SCENARIOS:
                for side in ("installer", "guide"):
                    row = measure(lab, info, s, side, work, timeout)
                    rows.append(row)
                    print(f"{s.name:15} {side:9} condition->cause "
                          f"{seconds(row['condition_at'], row['named_at'])}  "
                          f"condition->return {seconds(row['condition_at'], row['returned_at'])}"
                          f"  {row['text']!r}", flush=True)
        finally:
            lab.down()
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("| failure | installer: condition -> cause named | guide (helm --wait --timeout "
          f"{timeout}): cause named | helm returned, from the condition |")
    print("| --- | --- | --- | --- |")
    met = True
    for s in SCENARIOS:
        ins = next(r for r in rows if r["scenario"] == s.name and r["side"] == "installer")
        gd = next(r for r in rows if r["scenario"] == s.name and r["side"] == "guide")
        took = (ins["named_at"] - ins["condition_at"]
                if ins["named_at"] is not None and ins["condition_at"] is not None else None)
        ok = took is not None and took <= GOAL
        met &= ok
        print(f"| {s.name} | {seconds(ins['condition_at'], ins['named_at'])} "
              f"({'met' if ok else 'MISSED'}) | {'yes' if gd['named_at'] else 'no'} "
              f"(exit {gd['exit']}) | {seconds(gd['condition_at'], gd['returned_at'])} |")
    print(f"verdict: the installer names every cause within {GOAL:.0f} s of its condition: "
          f"{'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
