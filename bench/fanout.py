"""Probe 1 simulated host vs N simulated hosts through real sshd, against Ansible.

    sudo .venv/bin/python bench/fanout.py            # N=100, 3 rounds each, median
    sudo .venv/bin/python bench/fanout.py -n 500 --rounds 1

Each round probes one host, then all N hosts with the installer, then all N hosts with
Ansible (`ansible-playbook`, the `raw` module running the very command line the installer
sends: remote/probe.sh, same argument, same host root) with its default forks (5) and with
forks=50: the same hosts, key and known_hosts (host key checking on), interleaved so
machine noise hits every side alike. Prints each median, the verdicts for both goals
(>= 10x faster than Ansible with default forks; within 3x of one host) and where the CPU
went: this process (the installer's SSH client) versus the simulated hosts (their sshd and
shells, summed from the sshd listeners' reaped children). On one machine the N simulated
hosts share its cores with the client, so the ratio measures this box as much as the
fan-out; the CPU split shows which side the time is spent on. Not a test: numbers depend on
the machine and on whatever else runs on it (load average is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from remote.probe import PROBE_SCRIPT, parse_probe
from remote.ssh import Script, SSHOptions, build_command, run_on_hosts
from remote.targets import HostTarget
from tests.lab import hosts

TICK = os.sysconf("SC_CLK_TCK")


def host_cpu(fleet: hosts.SimHostFleet) -> float:
    """CPU seconds used so far by the simulated hosts (sshd listeners + reaped sessions)."""
    total = 0
    for h in fleet:
        p = h._proc
        if p is None:
            continue
        for pid in hosts._children(p.pid):
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(x) for x in f[11:15])  # utime stime cutime cstime
    return total / TICK


def self_cpu(who: int = resource.RUSAGE_SELF) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


PROBE = Script(PROBE_SCRIPT, ("/",))


async def probe(targets, opts, limit) -> tuple[float, int]:
    t = time.monotonic()
    res = await run_on_hosts(targets, PROBE, opts, limit=limit)
    elapsed = time.monotonic() - t
    ok = sum(1 for r in res.values() if r.ok and parse_probe(r.stdout).complete)
    return elapsed, ok


class Ansible:
    """The peer: ansible-playbook running the installer's probe command with `raw` (no
    Python needed on the hosts, one SSH exec per host, as the installer does). Everything
    it reads or writes lives in a temp dir: inventory, playbook, its ControlPersist sockets
    (fresh per run, so every run connects cold like the installer does)."""

    def __init__(self, fleet: hosts.SimHostFleet, known_hosts: Path, work: Path) -> None:
        exe = Path(sys.executable).with_name("ansible-playbook")
        self.exe = str(exe) if exe.exists() else shutil.which("ansible-playbook")
        if not self.exe:
            raise SystemExit("ansible-playbook not found: pip install -e '.[test]' "
                             "(ansible-core is pinned in the test extra)")
        self.work, self.runs = work, 0
        ssh_args = (f"-F /dev/null -o UserKnownHostsFile={known_hosts} "
                    "-o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes "
                    "-o IdentitiesOnly=yes")
        lines = ["[sim]"] + [f"{h.name} ansible_host={h.address}" for h in fleet] + [
            "[sim:vars]", f"ansible_user={hosts.LAB_USER}",
            f"ansible_ssh_private_key_file={fleet.keys.identity}",
            f"ansible_ssh_common_args='{ssh_args}'"]
        (work / "inventory.ini").write_text("\n".join(lines) + "\n")
        command = build_command(PROBE, sudo=False, sudo_password=False)
        # !unsafe: the script is data to Ansible, never a Jinja template.
        (work / "probe.yml").write_text(
            "- hosts: sim\n  gather_facts: false\n  tasks:\n    - name: probe\n"
            f"      raw: !unsafe {json.dumps(command)}\n")

    def version(self) -> str:
        out = subprocess.run([self.exe, "--version"], capture_output=True, text=True,
                             check=True).stdout
        return out.splitlines()[0].strip()

    def run(self, forks: int | None) -> tuple[float, int, float]:
        """(seconds, hosts whose probe output was complete, controller CPU seconds: the
        playbook, its workers and their ssh clients) for one playbook run."""
        self.runs += 1
        cp = self.work / f"cp{self.runs}"
        cp.mkdir()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("ANSIBLE_") and k != "SSH_AUTH_SOCK"}
        tree = self.work / f"tree{self.runs}"  # one JSON result per host
        env.update(ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
                   ANSIBLE_CALLBACK_TREE_DIR=str(tree), ANSIBLE_HOST_KEY_CHECKING="True",
                   ANSIBLE_SSH_CONTROL_PATH_DIR=str(cp), ANSIBLE_LOCAL_TEMP=str(self.work),
                   ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_NOCOLOR="1")
        argv = [self.exe, "-i", "inventory.ini", "probe.yml"]
        if forks is not None:
            argv += ["--forks", str(forks)]
        t, cpu = time.monotonic(), self_cpu(resource.RUSAGE_CHILDREN)
        r = subprocess.run(argv, cwd=self.work, env=env, capture_output=True, text=True,
                           check=False)
        elapsed, cpu = time.monotonic() - t, self_cpu(resource.RUSAGE_CHILDREN) - cpu
        self._close_masters(cp)
        results = [json.loads(f.read_text()) for f in tree.glob("*")] if tree.is_dir() else []
        if not results:
            raise SystemExit(f"ansible-playbook failed (exit {r.returncode}):\n"
                             f"{r.stdout[-2000:]}{r.stderr[-2000:]}")
        # raw runs under a pty (Ansible's default -tt), hence \r\n line ends.
        ok = sum(1 for v in results if not v.get("failed") and v.get("rc") == 0
                 and parse_probe(v.get("stdout", "").replace("\r\n", "\n")).complete)
        return elapsed, ok, cpu

    @staticmethod
    def _close_masters(cp: Path) -> None:
        """End the ControlPersist masters a run left behind (they would idle for 60 s)."""
        for sock in cp.iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"],
                           capture_output=True, check=False, timeout=10)


def forks_list(text: str) -> list[int | None]:
    """"default,50" -> [None, 50]; None runs Ansible without --forks (its default, 5)."""
    return [None if f == "default" else int(f) for f in text.split(",") if f]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100, help="hosts in the fan-out (default 100)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="concurrency limit (default n)")
    ap.add_argument("--forks", type=forks_list, default=[None, 50],
                    help="Ansible runs per round, comma-separated (default: default,50)")
    ap.add_argument("--state", default="/var/tmp/gki-bench-lab")
    ap.add_argument("--first-address", default="127.0.24.1")
    a = ap.parse_args()

    hosts.ensure()
    trees = [hosts.FIXTURES / "gpu-host-driver", hosts.FIXTURES / "gpu-vfio-ready",
             hosts.FIXTURES / "hgx-nvswitch"]
    t = time.monotonic()
    fleet = hosts.SimHostFleet(a.n, trees, state_dir=Path(a.state),
                               first_address=a.first_address, prefix="b")
    one: list[tuple[float, int]] = []
    many: list[tuple[float, int]] = []
    peer: dict[int | None, list[tuple[float, int, float]]] = {f: [] for f in a.forks}
    client = host = 0.0
    try:  # a start that fails half-way (an address taken) stops the hosts it started
        fleet.start()
        print(f"started {a.n} simulated hosts (real sshd each) in {time.monotonic() - t:.1f}s")
        with tempfile.TemporaryDirectory(prefix="gki-fanout-") as tmp:
            kh = fleet.write_known_hosts(Path(tmp) / "known_hosts")
            opts = SSHOptions(user=hosts.LAB_USER, identity_file=str(fleet.keys.identity),
                              known_hosts=str(kh), config_file="", use_agent=False)
            targets = [HostTarget(h.name, h.address) for h in fleet]
            limit = a.limit or a.n
            ansible = Ansible(fleet, kh, Path(tmp))
            asyncio.run(probe(targets[:1], opts, limit))  # warm caches
            for _ in range(a.rounds):  # interleaved: noise hits every side alike
                one.append(asyncio.run(probe(targets[:1], opts, limit)))
                c0, h0 = self_cpu(), host_cpu(fleet)
                many.append(asyncio.run(probe(targets, opts, limit)))
                client += self_cpu() - c0
                host += host_cpu(fleet) - h0
                for f in a.forks:
                    peer[f].append(ansible.run(f))
            version = ansible.version()
    finally:
        fleet.stop()
    t1 = statistics.median(x for x, _ in one)
    tn = statistics.median(x for x, _ in many)
    ok = min(k for _, k in many)
    ratio = tn / t1
    print(f"load average before measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"installer, 1 host:    {t1:.3f}s  (median of {a.rounds})")
    print(f"installer, {a.n} hosts: {tn:.3f}s  (median of {a.rounds}; {ok}/{a.n} probed "
          f"completely, limit {limit})")
    for f, runs in peer.items():
        ta = statistics.median(x for x, _, _ in runs)
        name = "default forks (5)" if f is None else f"forks={f}"
        print(f"{version}, {name}, {a.n} hosts: {ta:.3f}s  (median of {a.rounds}; "
              f"{min(k for _, k, _ in runs)}/{a.n} probed completely)  = {ta / tn:.1f}x "
              f"the installer's time; controller CPU per host "
              f"{1000 * sum(c for _, _, c in runs) / (a.n * len(runs)):.1f} ms")
        if f is None:
            print(f"goal: >= 10x faster than Ansible with default forks: {ta / tn:.1f}x -> "
                  f"{'met' if ta / tn >= 10 else 'NOT met'}")
    print(f"ratio:     {ratio:.1f}x   (goal < 3x: {'met' if ratio < 3 else 'NOT met'})")
    per = a.rounds * a.n
    client, host = client / per, host / per
    cores = os.cpu_count() or 1
    floor = a.n * (client + host) / cores
    print(f"CPU per host probe: client {1000 * client:.1f} ms, "
          f"simulated host side {1000 * host:.1f} ms (its sshd + shell)")
    print(f"CPU floor here: {a.n} x {1000 * (client + host):.1f} ms / {cores} CPUs = "
          f"{floor:.2f}s, so the ratio cannot go below {floor / t1:.1f}x on this machine; "
          f"the client alone needs {a.n * client / cores:.2f}s "
          f"({a.n * client / cores / t1:.1f}x) when the hosts are real machines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
