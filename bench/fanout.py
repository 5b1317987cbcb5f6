"""Probe 1 simulated host vs N simulated hosts through real sshd, concurrently.

    sudo .venv/bin/python bench/fanout.py            # N=100, 3 rounds each, median
    sudo .venv/bin/python bench/fanout.py -n 500 --rounds 1

Prints the time for one host, the time for N, their ratio (goal: < 3x), and where the CPU
went: this process (the installer's SSH client) versus the simulated hosts (their sshd and
shells, summed from the sshd listeners' reaped children). On one machine the N simulated
hosts share its cores with the client, so the ratio measures this box as much as the
fan-out; the CPU split shows which side the time is spent on. Not a test: numbers depend on
the machine and on whatever else runs on it (load average is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from remote.probe import PROBE_SCRIPT, parse_probe
from remote.ssh import Script, SSHOptions, run_on_hosts
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


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def probe(targets, opts, limit) -> tuple[float, int]:
    t = time.monotonic()
    res = await run_on_hosts(targets, Script(PROBE_SCRIPT, ("/",)), opts, limit=limit)
    elapsed = time.monotonic() - t
    ok = sum(1 for r in res.values() if r.ok and parse_probe(r.stdout).complete)
    return elapsed, ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100, help="hosts in the fan-out (default 100)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="concurrency limit (default n)")
    ap.add_argument("--state", default="/var/tmp/gki-bench-lab")
    ap.add_argument("--first-address", default="127.0.24.1")
    a = ap.parse_args()

    hosts.ensure()
    trees = [hosts.FIXTURES / "gpu-host-driver", hosts.FIXTURES / "gpu-vfio-ready",
             hosts.FIXTURES / "hgx-nvswitch"]
    t = time.monotonic()
    fleet = hosts.SimHostFleet(a.n, trees, state_dir=Path(a.state),
                               first_address=a.first_address, prefix="b")
    fleet.start()
    print(f"started {a.n} simulated hosts (real sshd each) in {time.monotonic() - t:.1f}s")
    try:
        kh = fleet.write_known_hosts(Path(a.state) / "known_hosts")
        opts = SSHOptions(user=hosts.LAB_USER, identity_file=str(fleet.keys.identity),
                          known_hosts=str(kh), config_file="", use_agent=False)
        targets = [HostTarget(h.name, h.address) for h in fleet]
        limit = a.limit or a.n
        asyncio.run(probe(targets[:1], opts, limit))  # warm caches
        one, many = [], []
        for _ in range(a.rounds):
            one.append(asyncio.run(probe(targets[:1], opts, limit)))
        c0, h0 = self_cpu(), host_cpu(fleet)
        for _ in range(a.rounds):
            many.append(asyncio.run(probe(targets, opts, limit)))
        c1, h1 = self_cpu(), host_cpu(fleet)
    finally:
        fleet.stop()
    t1 = statistics.median(x for x, _ in one)
    tn = statistics.median(x for x, _ in many)
    ok = min(k for _, k in many)
    ratio = tn / t1
    print(f"load average before measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"1 host:    {t1:.3f}s  (median of {a.rounds})")
    print(f"{a.n} hosts: {tn:.3f}s  (median of {a.rounds}; {ok}/{a.n} probed completely, "
          f"limit {limit})")
    print(f"ratio:     {ratio:.1f}x   (goal < 3x: {'met' if ratio < 3 else 'NOT met'})")
    per = a.rounds * a.n
    client, host = (c1 - c0) / per, (h1 - h0) / per
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
