"""Load: the installer's probe step over 500 simulated hosts, each a real OpenSSH sshd.

The hosts are started the way bench/fanout.py starts them (`SimHostFleet`). While the
installer's own probe executor fans out under its concurrency limit, a sampler thread reads
this process's established SSH connections (/proc/net/tcp) and open file descriptors
(/proc/self/fd): neither may exceed what the limit allows, memory growth stays bounded, and
every host gets its facts. GKI_TEST_LOAD_HOSTS changes the count (default 500);
GKI_TEST_LOAD_ADDRESS the first address (a /22 from there is used).
"""

from __future__ import annotations

import asyncio
import os
import resource
import threading
import time

import pytest

from installer.cluster.facts import Facts
from installer.engine.events import Recorder, StepFinished
from installer.engine.params import ProbeParams, SshTarget
from installer.engine.plan import Step
from installer.engine.runner import Context
from installer.engine.steps.probe import probe
from installer.hosts.access import HostAccess
from remote.hostfacts import HostFacts
from tests.integration.conftest import options
from tests.lab import hosts

pytestmark = pytest.mark.lab
COUNT = int(os.environ.get("GKI_TEST_LOAD_HOSTS", "500"))
FIRST = os.environ.get("GKI_TEST_LOAD_ADDRESS", "127.0.32.1")
LIMIT = 50


def ssh_connections(addresses: set[str]) -> set[str]:
    """The sockets (inodes) of established TCP connections to port 22 of the fleet's
    addresses, as one read of /proc/net/tcp lists them."""
    found = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            remote, state = parts[2], parts[3]
            if state == "01" and remote.endswith(":0016") and remote[:8] in addresses:
                found.add(parts[9])
    return found


def hex_address(address: str) -> str:
    """An IPv4 address as /proc/net/tcp writes it (little-endian hex)."""
    return "".join(f"{int(x):02X}" for x in reversed(address.split(".")))


class Sampler:
    """Peak SSH connections and open fds of this process while the block runs.

    One read of /proc/net/tcp is not a snapshot: the kernel lists sockets a page at a time,
    so a connection closed and another opened while it is read can both be listed (51 for a
    limit of 50, seen once). A socket established in two consecutive reads was established
    all the time between them (the state never goes back), so the sockets both reads list
    were open at once: that count is the one compared with the limit."""

    def __init__(self, addresses: set[str]) -> None:
        self.addresses = {hex_address(a) for a in addresses}
        self.connections = 0
        self.fds = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        before: set[str] = set()
        while not self._stop.is_set():
            now = ssh_connections(self.addresses)
            self.connections = max(self.connections, len(before & now))
            before = now
            self.fds = max(self.fds, len(os.listdir("/proc/self/fd")))
            self.samples += 1
            time.sleep(0.005)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def fleet(lab_state):
    t = time.monotonic()
    trees = [hosts.FIXTURES / "gpu-host-driver", hosts.FIXTURES / "gpu-vfio-ready",
             hosts.FIXTURES / "hgx-nvswitch"]
    fleet = hosts.SimHostFleet(COUNT, trees, state_dir=lab_state, first_address=FIRST,
                               prefix="load")
    try:
        fleet.start(timeout=300)
        print(f"{COUNT} hosts started in {time.monotonic() - t:.1f}s")
        yield fleet
    finally:
        fleet.stop()


def test_500_hosts_probed_under_the_concurrency_limit_with_bounded_fds_and_memory(
        fleet, tmp_path):
    kh = fleet.write_known_hosts(tmp_path / "known_hosts")
    recorder = Recorder()
    ctx = Context(dry_run=False, sinks=[recorder], decider=None,  # type: ignore[arg-type]
                  services={"hosts": HostAccess(options(fleet.keys, kh), sudo=False),
                            "ssh_limit": LIMIT})
    step = Step("probe/hosts", "gather", "probe", ProbeParams(tuple(
        SshTarget(h.name, h.address, None, None) for h in fleet)))
    fds_before = len(os.listdir("/proc/self/fd"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.monotonic()
    with Sampler({h.address for h in fleet}) as peak:
        facts = asyncio.run(probe(ctx, step, Facts(cluster=None)))
    elapsed = time.monotonic() - t
    growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    print(f"{COUNT} hosts probed in {elapsed:.1f}s; peak {peak.connections} connections "
          f"(limit {LIMIT}), {peak.fds} fds (from {fds_before}), maxrss +{growth_mib:.0f} MiB, "
          f"{peak.samples} samples")

    assert len(facts.hosts) == COUNT
    failed = {n: f for n, f in facts.hosts.items() if not isinstance(f, HostFacts)}
    assert not failed, list(failed.items())[:5]
    assert {f.hostname for f in facts.hosts.values()} == {"gpu-node-02", "gpu-ready-01",
                                                           "hgx-h100-05"}
    finished = [e for e in recorder.of(StepFinished) if e.path.startswith("probe/")]
    assert len(finished) == COUNT and all(e.status == "ok" for e in finished)
    assert peak.samples > 20
    assert LIMIT // 2 <= peak.connections <= LIMIT  # the limit is used, and never exceeded
    assert peak.fds <= fds_before + 2 * LIMIT + 20
    assert growth_mib < 256
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 5  # nothing leaked
