"""End to end: the headless install vs the guide's commands in a shell script, on one lab.

    sudo .venv/bin/python bench/e2e.py              # 2 rounds, the order alternating
    sudo .venv/bin/python bench/e2e.py --quick      # 1 round (CI)

Both take a bare lab (reset before every run, not timed) to the sample pod's `Test PASSED`
on the same nodes: the Kata-ready GPU nodes (gpu-vfio-ready hosts) go to Kata; the GPU node
whose host is not prepared is excluded from operands beforehand (`nvidia.com/gpu.deploy.
operands=false`), as an operator following the guide would, since neither side here fixes
hosts. The installer runs `python -m installer --answers FILE --yes`; the peer runs
bench/guide_install.sh (helm install --wait, kubectl label, helm install, kubectl wait for
the conditions the installer's verification checks, the sample pod). Prints each wall time,
the medians and the installer's overhead, and what the installer did that the script did not
(its step timings from --json events). Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from compiled import compile_product

from installer.cluster.facts import STATE_CONFIGMAP
from tests.lab import guide
from tests.lab.answers import lab_answers
from tests.lab.lab import Lab, LabInfo

ROOT = Path(__file__).resolve().parents[1]
GOAL = 10.0  # % overhead
EXCLUDE_LABEL = "nvidia.com/gpu.deploy.operands=false"


def kata_nodes(info: LabInfo) -> list[str]:
    return [n.name for n in info.nodes if n.profile == "gpu-vfio-ready"]


def excluded_nodes(info: LabInfo) -> list[str]:
    """GPU nodes whose hosts are not prepared: neither side takes them to Kata."""
    return [n.name for n in info.nodes if n.profile.startswith("gpu")
            and n.profile != "gpu-vfio-ready" and not n.name.startswith("scale-node-")]


def prepare(lab: Lab, info: LabInfo) -> None:
    """Back to the same starting point before every run (not timed). The lab's reset keeps
    kube-system, so the installer's record of the nodes' labels goes too: a bare cluster."""
    lab.reset()
    kubectl = info.binaries["kubectl"]
    ns, name = STATE_CONFIGMAP
    subprocess.run([kubectl, "delete", "configmap", "-n", ns, name, "--ignore-not-found"],
                   env=info.env(), check=True, capture_output=True)
    for n in excluded_nodes(info):
        subprocess.run([kubectl, "label", "node", n, EXCLUDE_LABEL, "--overwrite"],
                       env=info.env(), check=True, capture_output=True)


def write_answers(info: LabInfo, path: Path) -> Path:
    data = lab_answers(info, sample_timeout=300, chart_timeout="3m")
    chosen = set(kata_nodes(info))
    data["nodes"]["items"] = [{"name": i["name"], "choice": "kata" if i["name"] in chosen
                               else "leave"} for i in data["nodes"]["items"]]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o600)
    return path


def run_installer(info: LabInfo, answers: Path, work: Path) -> tuple[float, dict[str, float]]:
    """Wall time, and seconds per step kind (from the --json event stream)."""
    env = {**info.env(), "XDG_STATE_HOME": str(work / "state")}
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "installer", "--answers", str(answers),
                        "--yes", "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, check=False)
    elapsed = time.monotonic() - t
    if r.returncode != 0 or "Test PASSED" not in r.stdout:
        raise SystemExit(f"the installer failed (exit {r.returncode}):\n{r.stdout[-3000:]}\n"
                         f"{r.stderr[-2000:]}")
    return elapsed, step_seconds(r.stdout)


def step_seconds(stdout: str) -> dict[str, float]:
    """Seconds per step kind (probe, check, install, verify, ...) from the step-started and
    step-finished events' timestamps; "total" is the first event to the last.

    A kind's seconds are the wall time its steps cover: `probe/hosts` spans its per-host
    `probe/<node>` steps and the per-host verifications run side by side, so adding their
    spans up counted the same seconds two or three times."""
    started: dict[str, float] = {}
    spans: dict[str, list[tuple[float, float]]] = {}
    first = last = None
    for line in stdout.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if not isinstance(e, dict) or "at" not in e:
            continue
        first = e["at"] if first is None else first
        last = e["at"]
        if e.get("kind") == "step-started":
            started[e["path"]] = e["at"]
        elif e.get("kind") == "step-finished" and e["path"] in started:
            kind = e["path"].split("/", 1)[0]
            spans.setdefault(kind, []).append((started[e["path"]], e["at"]))
    out = {kind: _covered(s) for kind, s in spans.items()}
    if first is not None and last is not None:
        out["total"] = last - first
    return out


def _covered(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of the spans."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def run_script(info: LabInfo, sample: Path) -> float:
    env = {**info.env(), "KUBECONFIG": info.kubeconfig,
           "KATA_SET": " ".join(guide.set_args(guide.KATA_DEPLOY_SET)),
           "OPERATOR_SET": " ".join(guide.set_args(guide.GPU_OPERATOR_SET))}
    t = time.monotonic()
    r = subprocess.run(["sh", str(ROOT / "bench" / "guide_install.sh"), info.charts["kata-deploy"],
                        info.charts["gpu-operator"], str(sample), *kata_nodes(info)],
                       env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       check=False)
    elapsed = time.monotonic() - t
    if r.returncode != 0 or "Test PASSED" not in r.stdout:
        raise SystemExit(f"the guide script failed (exit {r.returncode}):\n{r.stdout[-3000:]}\n"
                         f"{r.stderr[-2000:]}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="one round (CI)")
    ap.add_argument("--state", default=None,
                    help="the lab's state dir (else $LAB_STATE_DIR); a lab up there is reused")
    ap.add_argument("--prefix", default=None, help="the lab's address prefix when started here")
    ap.add_argument("--keep", action="store_true", help="leave a lab this started up")
    a = ap.parse_args()
    compile_product(ROOT)
    rounds = 1 if a.quick else a.rounds
    if a.prefix:
        os.environ["LAB_ADDRESS_PREFIX"] = a.prefix
    lab = Lab(a.state)
    was_up = lab.status().get("up", False)
    info = lab.up()
    installer: list[float] = []
    script: list[float] = []
    steps: list[dict[str, float]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gki-e2e-") as tmp:
            work = Path(tmp)
            answers = write_answers(info, work / "answers.yaml")
            sample = work / "sample.json"
            sample.write_text(json.dumps(guide.sample_pod()))
            for r in range(rounds):
                order = ("installer", "script") if r % 2 == 0 else ("script", "installer")
                for side in order:
                    prepare(lab, info)
                    if side == "installer":
                        t, s = run_installer(info, answers, work)
                        installer.append(t)
                        steps.append(s)
                    else:
                        script.append(run_script(info, sample))
                    took = installer[-1] if side == "installer" else script[-1]
                    print(f"round {r + 1}: {side} {took:.1f}s", flush=True)
    finally:
        if was_up or a.keep:
            lab.reset()
        else:
            lab.down()
    ti, ts = statistics.median(installer), statistics.median(script)
    over = 100 * (ti - ts) / ts
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"nodes to Kata: {', '.join(kata_nodes(info))}; excluded beforehand: "
          f"{', '.join(excluded_nodes(info)) or 'none'}")
    print(f"installer (python -m installer --answers --yes): median {ti:.1f}s over "
          f"{len(installer)} "
          f"runs ({', '.join(f'{x:.1f}' for x in installer)})")
    print(f"guide script (helm + kubectl, bench/guide_install.sh): median {ts:.1f}s over "
          f"{len(script)} runs ({', '.join(f'{x:.1f}' for x in script)})")
    kinds = sorted({k for s in steps for k in s})
    per = {k: statistics.median(s.get(k, 0.0) for s in steps) for k in kinds}
    print("installer time by step kind (median s): "
          + ", ".join(f"{k} {v:.1f}" for k, v in per.items()))
    print(f"goal: overhead under {GOAL:.0f}% -> {'met' if over < GOAL else 'NOT met'} "
          f"({over:+.1f}%, {ti - ts:+.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
