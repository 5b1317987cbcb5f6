"""Start, find and stop the lab's own background processes by pid file (never by name)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child counts as gone
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(Path(pidfile).read_text().strip())
    except (OSError, ValueError):
        return None


def spawn(
    args: list[str],
    pidfile: Path,
    logfile: Path,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> int:
    """Start a detached process (own session) writing to `logfile`; record its pid."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as log:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def stop(pidfile: Path, timeout: float = 10.0) -> bool:
    """SIGTERM the process group recorded in `pidfile`, then SIGKILL; True if one was running."""
    pid = read_pid(pidfile)
    if not alive(pid):
        pidfile.unlink(missing_ok=True)
        return False
    assert pid is not None
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):  # reap it if it is our own child
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True


def _is_stale_lab_process(argv: list[bytes], state_dir: Path) -> bool:
    """A process of the lab kept in `state_dir`, told apart by its command line only: a
    control-plane binary kwokctl copied under it, a host's sshd (the `unshare` wrapper that
    runs it, whose sshd_config lies under it) or the simulator started with it."""
    marker = (str(state_dir) + "/").encode()
    if not argv or not argv[0]:
        return False
    if argv[0].startswith(marker):
        return True
    if argv[0].endswith(b"unshare") and b"lab-setup" in argv:
        return any(a.startswith(marker) and a.endswith(b"/sshd_config") for a in argv)
    return b"tests.lab.simulator" in argv and str(state_dir).encode() in argv


def kill_stale(state_dir: Path) -> list[int]:
    """SIGKILL what a crashed lab (or test session) left running with this state dir, whose
    pid files may be gone: its hosts' sshd would keep their addresses. Only processes whose
    command line names this state dir are touched (never another lab's, never this process
    or its parents). Returns their pids."""
    state_dir = Path(state_dir)
    spared = {os.getpid()}
    pid = os.getpid()
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        spared.add(pid)
    killed = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) in spared:
            continue
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if _is_stale_lab_process(argv, state_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(p.name), signal.SIGKILL)
                killed.append(int(p.name))
    return killed
