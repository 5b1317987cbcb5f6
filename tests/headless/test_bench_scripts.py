"""Benchmarks run in CI in their short form so none rots; their numbers are not judged here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Benchmarks that start their own hosts take loopback addresses from here (one /24 each);
# engineers sharing a machine set their own.
BENCH_NET = os.environ.get("GKI_BENCH_NET", "127.0.28")


def bench_net(offset: int) -> str:
    """The /24 `offset` after BENCH_NET (127.0.28 -> 127.0.29 for 1)."""
    head, last = BENCH_NET.rsplit(".", 1)
    return f"{head}.{int(last) + offset}"


def test_startup_benchmark_runs_and_reports_against_its_goal():
    out = subprocess.run([sys.executable, "bench/startup.py", "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "gpu-kata-installer --help" in out
    assert "goal: --help under 300 ms" in out


def test_podtable_benchmark_times_both_tables_and_prints_its_verdict():
    out = subprocess.run([sys.executable, "bench/podtable.py", "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "PodTable (wizard)" in out and "DataTable (add_row+sort, update_cell)" in out
    assert "1 burst(s) of 20" in out
    for kind in ("create", "change", "burst create", "burst change"):
        assert f"PodTable (wizard)                        {kind:13} p50 " in out
    assert "goal (the table's part of an update <= 100 ms):" in out


def test_logpane_benchmark_runs_and_prints_its_verdicts(tmp_path):
    out = subprocess.run([sys.executable, "bench/logpane.py", "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=True,
                         env={**os.environ, "XDG_STATE_HOME": str(tmp_path)}).stdout
    assert "plain terminal (cat into a pty, like kubectl logs -f)" in out
    assert "goal: ingest >= 50,000 lines/s with keypresses under 100 ms ->" in out
    assert "goal: memory bounded ->" in out
    assert "goal: first frame under 1 s ->" in out


def test_fanout_benchmark_runs_the_installer_and_ansible_through_real_sshd(tmp_path):
    out = subprocess.run([sys.executable, "bench/fanout.py", "-n", "10", "--rounds", "1",
                          "--forks", "default", "--state", str(tmp_path / "bench-lab"),
                          "--first-address", f"{BENCH_NET}.1"], cwd=ROOT, capture_output=True,
                         text=True, timeout=600, check=True).stdout
    assert "installer, 10 hosts:" in out and "(goal < 3x:" in out
    assert "ansible-playbook [core" in out
    assert "default forks (5), 10 hosts:" in out
    assert out.count("10/10 probed completely") == 2  # both sides got every host's facts
    assert "goal: >= 10x faster than Ansible with default forks:" in out


def test_scale_benchmark_runs_the_wizard_and_kubectl_on_a_scale_lab(tmp_path):
    out = subprocess.run([sys.executable, "bench/scale.py", "--quick",
                          "--state", str(tmp_path / "scale-lab"),
                          "--prefix", bench_net(1)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600,
                         check=True).stdout
    assert "wizard: Nodes screen drawn with all 104 nodes" in out
    assert "kubectl get nodes:" in out and "kubectl get pods -A:" in out
    assert "wizard: pod watch listed all 1000" in out
    assert "update latency, single changes (create, delete, one at a time), 6 pod" in out
    assert "update latency, bursts of 20 (created at once, deleted at once), 40 pod" in out
    for side in ("wizard: pod table drew", "kubectl get pods -w printed",
                 "wizard: watch event -> table drawn"):
        assert out.count(side) == 2  # for single changes and for bursts
    assert "bursts, first write to the burst's last pod drawn:" in out
    assert "full garbage collections during the changes:" in out
    for goal in ("goal: first render under 1 s ->",
                 "goal: pod table updates <= 100 ms (watch event -> drawn) ->",
                 "goal: under 300 MB ->"):
        assert goal in out


@pytest.mark.lab
def test_e2e_benchmark_runs_the_installer_and_the_guide_script_on_the_lab(lab):
    out = subprocess.run([sys.executable, "bench/e2e.py", "--quick",
                          "--state", lab.info.state_dir], cwd=ROOT, capture_output=True,
                         text=True, timeout=900, check=True).stdout
    assert "round 1: installer" in out and "round 1: script" in out
    assert "installer (python -m installer --answers --yes): median" in out
    assert "guide script (helm + kubectl, bench/guide_install.sh): median" in out
    assert "installer time by step kind" in out and "probe" in out
    assert "goal: overhead under 10% ->" in out


@pytest.mark.lab
def test_time_to_cause_benchmark_measures_both_sides_for_each_failure(tmp_path):
    out = subprocess.run([sys.executable, "bench/time_to_cause.py", "--quick", "--state",
                          str(tmp_path / "lab"), "--prefix", bench_net(3)], cwd=ROOT,
                         capture_output=True, text=True, timeout=900).stdout
    for failure in ("init-container", "host-driver", "kubevirt"):
        assert f"{failure:15} installer condition->cause" in out
        assert f"{failure:15} guide     condition->cause" in out
        assert f"| {failure} | " in out
    assert "verdict: the installer names every cause within 10 s of its condition:" in out


def test_e2e_step_seconds_count_nested_and_side_by_side_steps_once():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from e2e import step_seconds
    finally:
        sys.path.remove(str(ROOT / "bench"))
    events = [("step-started", "probe/hosts", 1.0), ("step-started", "probe/a", 1.0),
              ("step-started", "probe/b", 1.1), ("step-finished", "probe/a", 1.2),
              ("step-finished", "probe/b", 1.3), ("step-finished", "probe/hosts", 1.3),
              ("step-started", "verify/x", 2.0), ("step-finished", "verify/x", 2.5),
              ("step-started", "verify/y", 3.0), ("step-finished", "verify/y", 3.5)]
    out = step_seconds("\n".join(f'{{"kind": "{k}", "path": "{p}", "at": {t}}}'
                                 for k, p, t in events))
    assert out == pytest.approx({"probe": 0.3, "verify": 1.0, "total": 2.5})


def test_waves_benchmark_reboots_every_host_in_waves_and_one_at_a_time(tmp_path):
    out = subprocess.run([sys.executable, "bench/waves.py", "--quick",
                          "--state", str(tmp_path / "waves-lab"),
                          "--first-address", f"{bench_net(4)}.1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600, check=True).stdout
    assert "1 host " in out and "(1/1 rebooted; exit 0: done)" in out
    assert "4 hosts, maxUnavailable=4" in out and "(4/4 rebooted; exit 0: done)" in out
    assert "2 hosts one at a time (maxUnavailable=1)" in out
    assert "one at a time (the guide's way), 4 hosts:" in out
    assert "goal: 4 hosts <= 1.5x one host's wall time at some wave size:" in out



def quick_on_own_lab(bench: str, tmp_path: Path, net: int, timeout: float = 900) -> str:
    """A benchmark's --quick run on a lab of its own (bench_net(net)); its stdout."""
    return subprocess.run([sys.executable, f"bench/{bench}.py", "--quick", "--state",
                           str(tmp_path / "lab"), "--prefix", bench_net(net)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=True).stdout

@pytest.mark.lab
def test_upgrade_benchmark_rolls_kata_nodes_in_waves_and_runs_the_naive_helm_upgrade(tmp_path):
    out = quick_on_own_lab("upgrade", tmp_path, 6, timeout=1200)
    assert "Kata nodes (3): gpu-node-1, gpu-node-2, gpu-node-4;" in out
    for size, waves in ((1, 3), (3, 1)):
        line = next(x for x in out.splitlines()
                    if x.startswith(f"installer, maxUnavailable={size} ") and " wall " in x)
        assert f"{waves} wave(s), one node's roll" in line
        # every Kata pod that went away was evicted by the plan, none ran through a swap
        assert "Kata pods: 3 evicted by the plan, 0 lost without eviction, 0 ran through" in line
    assert any(x.startswith("helm upgrade (RollingUpdate, no drain)") and " wall " in x
               for x in out.splitlines())
    assert "goal: wall about (N / wave + 1) x one node's roll ->" in out
    assert "goal: zero Kata pods lost that the plan did not drain -> met" in out


def test_upgrade_bench_reads_node_rolls_evictions_and_wave_stages_from_events():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from upgrade import evicted_by_plan, node_rolls, wave_stages
    finally:
        sys.path.remove(str(ROOT / "bench"))
    events = [("upgrade/wave-1", "a", "cordon a", 1.0, {}),
              ("upgrade/wave-1", "a", "drain a: evict default/x", 2.0, {"evict": ["default/x"]}),
              ("upgrade/wave-1", "p", "create pod default/sample", 3.5, {}),
              ("upgrade/wave-1", "a", "uncordon a", 4.0, {}),
              ("upgrade/wave-2", "b", "cordon b", 4.5, {}),
              ("upgrade/rollback", "b", "uncordon b", 5.0, {}),  # not a wave's
              ("upgrade/wave-2", "b", "drain b: evict nothing", 6.0, {"evict": []}),
              ("upgrade/wave-2", "p", "create pod default/sample", 6.5, {}),
              ("upgrade/wave-2", "b", "uncordon b", 9.0, {})]
    parsed = [{"kind": "step-started", "path": "upgrade/wave-1", "at": 0.5},
              {"kind": "step-started", "path": "upgrade/wave-2", "at": 4.0}]
    parsed += [{"kind": "change", "path": p, "target": t, "message": m, "at": at, "detail": d}
               for p, t, m, at, d in events]
    assert node_rolls(parsed) == pytest.approx([3.0, 4.5])
    assert evicted_by_plan(parsed) == {"default/x"}
    assert wave_stages(parsed) == pytest.approx(
        {"templates": 1.0, "drain": 2.5, "pods": 2.0, "verify": 3.0})


@pytest.mark.lab
def test_podmode_benchmark_gathers_over_ssh_and_through_pods_within_the_bound(tmp_path):
    out = quick_on_own_lab("podmode", tmp_path, 7)
    assert "lab: 6 hosts, every one a Kata node" in out
    for rnd in (1, 2):
        ssh = next(x for x in out.splitlines() if x.startswith(f"ssh round {rnd}: wall"))
        pod = next(x for x in out.splitlines() if x.startswith(f"pod round {rnd}: wall"))
        assert "hosts probed 6 OK / 0 failed of 6" in ssh and "pods created 0, deleted 0" in ssh
        assert "hosts probed 6 OK / 0 failed of 6" in pod and "pods created 6, deleted 6" in pod
        assert "most alive at once 3 (bound 3)" in pod  # the bound reached, never passed
        assert f"round {rnd}, pod/SSH: wall " in out
    assert "(+ the namespace)" in out  # the first pod run makes it
    assert "create -> Running" in out and "exec" in out and "delete -> gone" in out
    assert "facts of every host the same in every run: yes" in out
    assert "verdict: bound held, facts the same, nothing left -> met" in out
