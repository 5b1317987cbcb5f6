"""Real-process fixtures: simulated hosts served by the real OpenSSH sshd (tests/lab/hosts.py).

Needs root. On a fresh machine `hosts.ensure()` installs openssh-server and sudo with apt;
if that is impossible the session fails with the reason (no silent skips).

Addresses: this suite uses 127.0.20.0/22 by default (GKI_TEST_LAB_ADDRESS to move it), so
it can run beside a cluster lab on 127.0.10.x.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import os
import shutil
from pathlib import Path

import pytest

from remote.ssh import SSHOptions
from tests.fixtures.trees import all_trees  # noqa: F401  (the integration tests import it here)
from tests.integration.secrets import planted  # noqa: F401  (a fixture for the lab tests)
from tests.lab import hosts, procs

STATE = Path(os.environ.get("GKI_TEST_LAB_STATE", "/var/tmp/gki-test-lab"))
FIRST = os.environ.get("GKI_TEST_LAB_ADDRESS", "127.0.20.1")
FIXTURES = hosts.FIXTURES


@pytest.fixture(scope="session")
def lab_state() -> Path:
    try:
        hosts.ensure()
    except hosts.LabError as e:
        pytest.fail(f"SSH lab unavailable: {e}", pytrace=False)
    procs.kill_stale(STATE)  # hosts left by a crashed earlier session hold our addresses
    if STATE.exists():
        shutil.rmtree(STATE)
    STATE.mkdir(parents=True)
    return STATE


@pytest.fixture(scope="session")
def lab_keys(lab_state: Path) -> hosts.LabKeys:
    return hosts.LabKeys(lab_state / "lab")


_addresses = itertools.count(300)  # single hosts after the 100-host fleet's addresses


@pytest.fixture
def new_host(lab_state, lab_keys, request):
    """Factory: a fresh, started SimHost from a tree; stopped after the test."""
    made: list[hosts.SimHost] = []

    def make(tree: str | Path = "gpu-host-driver", **kw) -> hosts.SimHost:
        t = Path(tree) if Path(str(tree)).is_absolute() else FIXTURES / str(tree)
        n = next(_addresses)
        addr = hosts.address_for(n, FIRST)
        h = hosts.SimHost(f"t{n}-{t.name}", addr, tree=t, state_dir=lab_state, keys=lab_keys,
                          **kw)
        h.build()
        h.start()
        made.append(h)
        return h

    yield make
    for h in made:
        h.stop()


@pytest.fixture(scope="session")
def fleet100(lab_state, lab_keys):
    fleet = hosts.SimHostFleet(100, [FIXTURES / "gpu-host-driver", FIXTURES / "gpu-vfio-ready"],
                               state_dir=lab_state, first_address=FIRST, prefix="f")
    fleet.keys = lab_keys
    fleet.start()
    yield fleet
    fleet.stop()


def options(keys: hosts.LabKeys, known_hosts: Path, **kw) -> SSHOptions:
    base = dict(user=hosts.LAB_USER, identity_file=str(keys.identity), known_hosts=str(known_hosts),
                config_file="", use_agent=False, connect_timeout=10, command_timeout=60)
    base.update(kw)
    return SSHOptions(**base)


def known_hosts_for(path: Path, *sims: hosts.SimHost) -> Path:
    path.write_text("".join(h.known_hosts_line() + "\n" for h in sims))
    return path


def address_in_lab(addr: str) -> bool:
    return ipaddress.ip_address(addr).is_loopback



def tree_digest(root: Path) -> dict[str, str]:
    """Every regular file of a host tree by its SHA-256, and every symlink by its target:
    two equal digests mean no byte of the host changed."""
    out: dict[str, str] = {}
    for base, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(base, d))]:
            p = os.path.join(base, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = "-> " + os.readlink(p)
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out
