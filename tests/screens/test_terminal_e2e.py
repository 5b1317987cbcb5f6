"""End to end in a real terminal: the operator's keystrokes into the real program (tmux).

Two targets, one walk: a recorded cluster (installer/examples/facts.yaml), where the walk
ends at the review screen and a saved answers file whose headless dry-run must print the plan
the wizard showed; and the lab (marked `lab`: a real control plane, real sshd hosts, the real
helm), where the walk goes on from a bare cluster through Install - host fixes over SSH, both
charts - to the sample's `Test PASSED`, with nothing typed anywhere but into the wizard.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from installer.answers.model import load_answers
from tests.screens.terminal import Terminal

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "installer" / "examples"
CLI = [sys.executable, "-m", "screens.cli"]

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


@dataclass
class Target:
    """Where the wizard points: recorded facts now, the lab's kubeconfig later."""

    name: str
    wizard_args: list[str]
    headless_args: list[str]
    env: dict[str, str]


@pytest.fixture
def recorded(tmp_path) -> Target:
    facts = ["--facts", str(EXAMPLES / "facts.yaml")]
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "TERM": "xterm-256color",
           "PATH": os.environ["PATH"]}
    return Target("recorded", ["--answers", str(EXAMPLES / "answers.yaml"), "--wizard",
                               *facts], [*facts, "--dry-run"], env)


@pytest.fixture
def lab_target(lab_bare, tmp_path) -> Target:
    """The bare lab; the answers file is the one `python -m tests.lab up` writes for it."""
    from tests.lab.answers import lab_answers

    path = tmp_path / "lab-answers.yaml"
    path.write_text(yaml.safe_dump(lab_answers(lab_bare.info, sample_timeout=240,
                                               chart_timeout="2m")))
    path.chmod(0o600)
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "TERM": "xterm-256color",
           "PATH": lab_bare.env["PATH"], "KUBECONFIG": lab_bare.env["KUBECONFIG"]}
    return Target("lab", ["--answers", str(path), "--wizard"], [], env)


@pytest.fixture
def terminal_for(tmp_path):
    opened: list[Terminal] = []

    def open_(target: Target) -> Terminal:
        term = Terminal([*CLI, *target.wizard_args], cwd=ROOT, env=target.env,
                        workdir=tmp_path)
        opened.append(term)
        return term

    yield open_
    for term in opened:
        term.close()


def headless_plan(target: Target, answers: Path) -> list[str]:
    out = subprocess.run([*CLI, "--answers", str(answers), *target.headless_args], cwd=ROOT,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, **target.env})
    lines = out.stdout.splitlines()
    return lines[:next(i for i, line in enumerate(lines) if line.startswith("→"))]


def test_walk_the_wizard_in_a_terminal_save_and_replay_headless(recorded, terminal_for,
                                                                tmp_path):
    term = terminal_for(recorded)
    term.wait_for("Kubeconfig")
    screen = term.wait_for("3 with NVIDIA GPUs")
    assert "recorded:" in screen

    term.keys("C-n")
    term.wait_for("Nodes - Kata VMs")
    # gpu-node-3 (4th row) goes from traditional to kata
    term.keys("Down", "Down", "Down", "k")
    term.wait_for("3 Kata")

    for title in ("SSH - reaching", "Checks - host", "Host fixes -", "Charts - kata-deploy",
                  "Review - the exact plan"):
        term.keys("C-n")
        term.wait_for(title)
    term.wait_for("34 steps, 24 changes")  # three Kata hosts; gpu-node-2's chain reboots
    term.wait_for("[check/gpu-node-3] Host prerequisites on gpu-node-3")
    review = term.wait_until(lambda screen: "gpu-node-3: kata" not in screen)  # toast gone

    saved = tmp_path / "from-the-wizard.yaml"
    term.keys("C-s")
    term.wait_for("Save the answers file")
    term.keys("End", "C-u")
    term.type(str(saved))
    term.keys("Enter")
    term.wait_for("saved to")

    term.keys("C-q")
    assert term.exit_code() == 0

    assert load_answers(saved).nodes.choice_for("gpu-node-3") == "kata"
    assert saved.stat().st_mode & 0o077 == 0
    plan = headless_plan(recorded, saved)
    # The plan box shows the dry-run's lines from the top, cut at the right edge.
    rows = [row[1:].rstrip("▁▂▃▄▅▆▇█▉▊▋▌▍▎▏ ") for row in review.splitlines()]
    start = rows.index(plan[0])
    for i, line in enumerate(plan[:25]):
        row = rows[start + i]
        assert line.rstrip() == row or (len(row) >= 60 and line.startswith(row)), \
            f"line {i} of the plan differs:\n  dry-run: {line!r}\n  screen:  {row!r}"


WIZARD_TITLES = ("Nodes - Kata VMs", "SSH - reaching", "Checks - host", "Host fixes -",
                 "Charts - kata-deploy", "Review - the exact plan")


@pytest.mark.lab
def test_bare_lab_to_test_passed_in_the_wizard_alone(lab_target, terminal_for):
    term = terminal_for(lab_target)
    term.wait_for("4 (4 ready), 3 with NVIDIA GPUs", timeout=90)  # discovered, live
    for title in WIZARD_TITLES:
        term.keys("C-n")
        term.wait_for(title, timeout=30)
    term.wait_for("fix/gpu-node-3/", timeout=120)  # probed over SSH: gpu-node-3 needs fixes
    term.keys("i")
    term.wait_for("Install now?")
    term.keys("y")
    # gpu-node-3's bind was in the plan only "after the reboot": once the re-probe plans it
    # for real, the screen asks again although the lab's answers say `apply`
    term.wait_for("Apply 'vfio-bind' on gpu-node-3?", timeout=600)
    term.keys("y")
    term.wait_for("Install ok", timeout=900)
    term.keys("C-n")
    term.wait_for("Sample workload", timeout=60)  # the install's log pane shows it too
    screen = term.wait_for("Test PASSED", timeout=60)
    assert "Sample workload" in screen
    term.keys("C-n")
    term.wait_for("Install finished")
    # troubleshooting on the live cluster: its pods, and one followed log
    term.keys("C-t")
    term.wait_for("events in kata-system and gpu-operator", timeout=60)
    term.keys("Right", "Tab", "Enter")
    term.wait_for("[following]", timeout=30)
    term.keys("C-q")  # quits at once, even while a quiet pod's log is followed
    assert term.exit_code(timeout=10) == 0


def test_quick_start_make_run_opens_the_wizard_on_the_lab(lab, tmp_path):
    """The README's first command, typed as written: `make run` finds the lab up (the
    session's), opens the wizard on its answers file, and the wizard shows the lab's nodes."""
    venv = Path(sys.executable).parent.parent  # the venv running the tests, as `make` names it
    env = {"TERM": "xterm-256color", "PATH": os.environ["PATH"], "HOME": os.environ["HOME"],
           "XDG_STATE_HOME": str(tmp_path / "state"), "LAB_STATE_DIR": lab.info.state_dir,
           **{k: v for k, v in os.environ.items() if k == "LAB_ADDRESS_PREFIX"}}
    term = Terminal(["make", "run", f"VENV={venv}"], cwd=ROOT, env=env, workdir=tmp_path)
    try:
        term.wait_for("4 (4 ready), 3 with NVIDIA GPUs", timeout=120)
        term.keys("C-q")
        assert term.exit_code(timeout=10) == 0
    finally:
        term.close()
