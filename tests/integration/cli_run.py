"""Running the real headless CLI against the lab: answers files, a finished run, and a run
followed event by event (`--json`) so a test can inject a fault at an exact step."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.lab.answers import lab_answers

ROOT = Path(__file__).resolve().parents[2]


def write_answers(lab, tmp_path: Path, **changes) -> Path:
    """The lab's answers (kata-deploy as a packaged archive); `changes` merge into sections."""
    data = lab_answers(lab.info, sample_timeout=240, chart_timeout="2m")
    archive_dir = tmp_path / "charts"
    archive_dir.mkdir(exist_ok=True)
    lab.helm("package", str(lab.charts["kata-deploy"]), "--destination", str(archive_dir))
    data["kataDeploy"]["chart"] = {"path": str(next(archive_dir.glob("kata-deploy-*.tgz")))}
    for section, values in changes.items():
        data[section] = {**data.get(section, {}), **values}
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def env(lab, tmp_path: Path, helm: str = "helm") -> dict[str, str]:
    """`helm`: which of the lab's helm binaries the installer runs (`helm` 4 or `helm3`), or
    the path of another."""
    return {**os.environ, **lab.env, "XDG_STATE_HOME": str(tmp_path / "state"),
            "GPU_KATA_HELM": str(Path(lab.info.binaries["helm"]).parent / helm)}


def installer(lab, tmp_path: Path, *args: str, timeout: float = 600,
              helm: str = "helm") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "installer", *args], cwd=ROOT,
                          env=env(lab, tmp_path, helm), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _ctrl_c_as_on_a_terminal() -> None:
    """A shell without job control starts background jobs with SIGINT ignored, and the test
    runner may be one: the installer must see Ctrl-C as an operator's terminal delivers it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class JsonRun:
    """`gpu-kata-installer --json ...` running in the background, read event by event."""

    def __init__(self, lab, tmp_path: Path, *args: str, helm: str = "helm") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "installer", *args, "--json"], cwd=ROOT,
            env=env(lab, tmp_path, helm), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL, preexec_fn=_ctrl_c_as_on_a_terminal)
        self.events: list[dict] = []

    def until(self, pred: Callable[[dict], bool], timeout: float = 300) -> dict:
        """Read events until one matches; fails if the run ends or the time is up first."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        for line in self.proc.stdout:
            event = json.loads(line)
            self.events.append(event)
            if pred(event):
                return event
            assert time.monotonic() < deadline, f"no matching event in {timeout}s"
        raise AssertionError(f"the run ended first: {self.events[-3:]} "
                             f"{self.proc.stderr.read() if self.proc.stderr else ''}")

    def finish(self, timeout: float = 300) -> tuple[int, str]:
        """Wait for the end; returns the exit code and stderr, keeping the remaining events."""
        out, err = self.proc.communicate(timeout=timeout)
        self.events += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return self.proc.returncode, err

    def kill_tree(self) -> None:
        """SIGKILL the installer and everything it started (helm runs in its own session, so
        killing the process group would spare it): a crash of the machine it runs on."""
        pids = descendants(self.proc.pid)
        for pid in [self.proc.pid, *pids]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(30)


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                kids = [int(x) for x in (task / "children").read_text().split()]
                out += kids
                todo += kids
    return out


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # it ended meanwhile
        return b""


def alive(pid: int) -> bool:
    """A process that still runs (a zombie waiting for its reaper has stopped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def helm_upgrade(lab, run: JsonRun) -> dict[int, bytes]:
    """Once the run's `helm upgrade` has started: helm's pid and those of all it started,
    with their command lines."""
    found = lab.wait_for("helm upgrade to run", lambda: [
        p for p in descendants(run.proc.pid) if b"upgrade" in cmdline(p)], interval=0.02)
    time.sleep(1)  # what helm starts, it has started now
    return {p: cmdline(p) for p in [*found, *descendants(found[0])]}


def started(path: str) -> Callable[[dict], bool]:
    return lambda e: e["kind"] == "step-started" and e["path"] == path


def finished(path: str) -> Callable[[dict], bool]:
    return lambda e: e["kind"] == "step-finished" and e["path"] == path
