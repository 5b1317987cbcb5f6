"""Where the tool writes, as an operator meets it (real processes, real files): `bundle
--output` refuses what is not a new or regular file before collecting anything, and a state
directory or log path that cannot be used is said with the path and the fix - exit 2 when
XDG_STATE_HOME chose it, 1 when the home directory did. Never a traceback, never a hang."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "installer" / "examples"
DRY_RUN = ("--answers", str(EXAMPLES / "answers.yaml"), "--facts", str(EXAMPLES / "facts.yaml"),
           "--dry-run")


def cli(*args: str, env: dict[str, str], wrap: tuple[str, ...] = ()
        ) -> subprocess.CompletedProcess:
    """The CLI in a process of its own; a FIFO opened by mistake would block it, so the
    timeout is what a hang looks like."""
    return subprocess.run([*wrap, sys.executable, "-m", "installer", *args],
                          capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL,
                          timeout=60, env={**os.environ, **env})


def refused(out: subprocess.CompletedProcess, code: int, *said: str) -> None:
    assert out.returncode == code, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("error: ") and "fix: " in out.stderr
    for text in said:
        assert text in out.stderr, out.stderr


def bundle(output: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """`bundle --output` with a kubeconfig that does not exist: a refused output is said
    first, an accepted one goes on to the kubeconfig's error."""
    return cli("bundle", "--output", str(output), "--kubeconfig", str(tmp_path / "nokube"),
               env={"XDG_STATE_HOME": str(tmp_path / "state")})


def test_a_fifo_is_refused_without_being_opened(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    refused(bundle(fifo, tmp_path), 2, f"cannot write the bundle to {fifo}",
            "is a FIFO (named pipe): only a new or a regular file is written")
    assert fifo.is_fifo()


def test_a_device_is_refused():
    out = bundle(Path("/dev/null"), Path("/nonexistent"))
    refused(out, 2, "/dev/null", "is a character device")


def test_a_symlink_is_refused_and_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "important.txt"
    target.write_text("keep me")
    link = tmp_path / "bundle.tgz"
    link.symlink_to(target)
    dangling = tmp_path / "dangling.tgz"
    dangling.symlink_to(tmp_path / "not-there")
    refused(bundle(link, tmp_path), 2, f"is a symbolic link to {target}")
    refused(bundle(dangling, tmp_path), 2, "is a symbolic link to")
    assert target.read_text() == "keep me" and link.is_symlink()
    assert not (tmp_path / "not-there").exists()


def test_a_missing_parent_directory_is_refused_with_the_mkdir(tmp_path):
    out = bundle(tmp_path / "no" / "such" / "b.tgz", tmp_path)
    refused(out, 2, f"directory {tmp_path}/no/such does not exist",
            f"mkdir -p {tmp_path}/no/such")
    blocker = tmp_path / "file"
    blocker.write_text("")
    refused(bundle(blocker / "b.tgz", tmp_path), 2, "a file is in the way of a directory")


@pytest.mark.parametrize("kind", ["directory", "regular file", "new file"])
def test_a_directory_a_regular_file_or_a_new_one_is_accepted(tmp_path, kind):
    """Accepted: the run goes on to read the cluster (here: the missing kubeconfig's error);
    tests/unit/test_bundle.py and the lab's bundle test write into them."""
    output = tmp_path / "out"
    if kind == "directory":
        output.mkdir()
    elif kind == "regular file":
        output.write_text("an older bundle")
    out = bundle(output, tmp_path)
    assert out.returncode == 2 and "cannot write the bundle" not in out.stderr, out.stderr
    assert f"kubeconfig {tmp_path}/nokube" in out.stderr


def test_xdg_state_home_a_file_exits_2_naming_it(tmp_path):
    state = tmp_path / "state"
    state.write_text("not a directory")
    out = cli(*DRY_RUN, env={"XDG_STATE_HOME": str(state)})
    refused(out, 2, f"the state directory {state}/gpu-kata-installer cannot be used",
            f"{state}/gpu-kata-installer/logs: a file is in the way of a directory",
            f"point XDG_STATE_HOME (now {state}) at a directory you may write, or unset it")


def test_a_log_path_in_the_way_exits_2_naming_it(tmp_path):
    logs = tmp_path / "state" / "gpu-kata-installer" / "logs"
    logs.parent.mkdir(parents=True)
    logs.write_text("a file where the logs directory goes")
    out = cli(*DRY_RUN, env={"XDG_STATE_HOME": str(tmp_path / "state")})
    refused(out, 2, f"{logs}: a file is in the way of a directory")


def test_a_read_only_state_directory_exits_2(tmp_path):
    """A read-only file system (tmpfs mounted ro in a mount namespace of the run's own):
    root, who may write any directory's mode, cannot write there either."""
    state = tmp_path / "ro"
    state.mkdir()
    unshare = shutil.which("unshare")
    assert unshare, "util-linux unshare is needed for a read-only mount"
    wrap = (unshare, "-m", "sh", "-c", f"mount -t tmpfs -o ro,size=1m tmpfs {state} && "
            'exec "$@"', "ro")
    out = cli(*DRY_RUN, env={"XDG_STATE_HOME": str(state)}, wrap=wrap)
    refused(out, 2, f"{state}/gpu-kata-installer/logs: read-only file system")
    assert list(state.iterdir()) == []  # the mount was the run's alone


def test_the_default_under_an_unusable_home_exits_1_with_the_setting_to_use(tmp_path):
    home = tmp_path / "home"
    home.write_text("not a directory")
    env = {"HOME": str(home), "XDG_STATE_HOME": ""}
    out = cli(*DRY_RUN, env=env)
    refused(out, 1, f"{home}/.local/state/gpu-kata-installer/logs",
            "set XDG_STATE_HOME to a directory you may write")
