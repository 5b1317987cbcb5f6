"""The real `gpu-kata-installer` in a real terminal: a tmux session we type into and read.

Each Terminal uses its own tmux server (its own socket), so tests never touch a tmux the
operator runs, and closing it ends only what it started.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path


class Terminal:
    def __init__(self, argv: list[str], *, cwd: Path, env: dict[str, str], size=(120, 40),
                 workdir: Path) -> None:
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed")
        self.socket = f"gki-e2e-{os.getpid()}-{time.monotonic_ns()}"
        self.exit_file = workdir / "exit-code"
        command = (f"cd {shlex.quote(str(cwd))} && {shlex.join(argv)}; "
                   f"echo $? > {shlex.quote(str(self.exit_file))}; sleep 60")
        env_args = [f"{k}={v}" for k, v in env.items()]
        # COLUMNS/LINES from the test process would override the terminal's real size.
        self._tmux("new-session", "-d", "-s", "e2e", "-x", str(size[0]), "-y", str(size[1]),
                   "env", "-u", "COLUMNS", "-u", "LINES", *env_args, "bash", "-c", command)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, check=True, timeout=30).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "e2e")

    def title(self) -> str:
        """The window title the program set (OSC 0/2), as tmux keeps it."""
        return self._tmux("display-message", "-p", "-t", "e2e", "#{pane_title}")

    def keys(self, *keys: str, pause: float = 0.15) -> None:
        for key in keys:
            self._tmux("send-keys", "-t", "e2e", key)
            time.sleep(pause)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "e2e", "-l", text)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")

    def wait_until(self, condition, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if condition(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"the screen never got there; it was:\n{screen}")

    def exit_code(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.exit_file.exists() and self.exit_file.read_text().strip():
                return int(self.exit_file.read_text())
            time.sleep(0.1)
        raise AssertionError(f"the program did not exit; the screen was:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=30)
        socket = Path(f"/tmp/tmux-{os.getuid()}") / self.socket
        socket.unlink(missing_ok=True)  # kill-server leaves its socket file behind
