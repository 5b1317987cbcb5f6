"""The local probe over its time limit: a typed error naming the tree and the limit, the
probe stopped, and through `check --local` exit 1 with the cause - not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

import remote.probe
from remote.probe import ProbeTimeout, probe_local
from tests.headless.inprocess import run_cli

TREE = Path(__file__).resolve().parents[1] / "fixtures" / "hosts" / "gpu-vfio-ready"
LIMIT = 0.5


@pytest.fixture
def slow_probe(monkeypatch):
    """The real probe behind a child that outlives any limit here: the limit is always hit,
    however loaded the machine (a bare probe can finish before a tiny limit is looked at)."""
    monkeypatch.setattr(remote.probe, "PROBE_SCRIPT", "sleep 60; " + remote.probe.PROBE_SCRIPT)


def probes_of(root: Path) -> list[str]:
    """Processes running the probe on `root`."""
    found = []
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmd.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gki-probe" in args and str(root).encode() in args:
            found.append(str(cmd.parent))
    return found


def test_a_probe_over_its_limit_is_stopped_and_says_which_tree_and_limit(slow_probe,
                                                                          monkeypatch):
    with pytest.raises(ProbeTimeout) as exc:
        probe_local(TREE, timeout=LIMIT)
    assert str(exc.value) == f"the probe of {TREE} did not finish within {LIMIT:g} s"
    assert probes_of(TREE) == []  # the shell and its sleeping child are gone
    monkeypatch.undo()
    assert probe_local(TREE).complete  # with time enough, the same tree probes whole


def test_check_local_over_the_limit_exits_1_with_the_cause(slow_probe, monkeypatch):
    monkeypatch.setattr(remote.probe, "LOCAL_PROBE_SECONDS", LIMIT)
    code, _, err = run_cli(["check", "--local", "--host-root", str(TREE)])
    assert code == 1, err
    assert f"error: the probe of {TREE} did not finish within {LIMIT:g} s" in err
    assert "cause:" in err and "fix:" in err and "Traceback" not in err
