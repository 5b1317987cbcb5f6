"""The wizard's first frame waits only on what its first screen needs.

Why: on 2 shared cores every module imported before the first paint delays it (goal: under
1 s, BENCHMARKS.md section 3). SSH (asyncssh), the kubernetes client, the engine and planner,
and the other nine screens load when first used - after the first frame.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LATER = ("asyncssh", "kubernetes", "installer.engine.runner", "installer.engine.plan",
         "installer.cluster.kube",
         "installer.charts.helm", "screens.nodes", "screens.charts", "screens.install",
         "screens.troubleshoot", "screens.review")

KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: lab
contexts:
- name: lab
  context: {cluster: lab, user: admin}
- name: other
  context: {cluster: lab, user: admin}
clusters: [{name: lab, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: admin, user: {token: t}}]
"""


def test_the_first_screen_loads_without_ssh_kubernetes_engine_or_other_screens(tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(KUBECONFIG)
    code = (
        "import sys\n"
        "import screens.app, screens.cluster\n"
        "from installer.diagnosis.clusterinfo import list_contexts\n"
        f"ctxs = list_contexts({str(kubeconfig)!r})\n"
        "assert ctxs.names == ('lab', 'other') and ctxs.current == 'lab', ctxs\n"
        f"print(','.join(sorted(m for m in {LATER!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip()
    assert out == "", f"imported before the first frame: {out}"


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True).stdout.strip()


def test_a_headless_run_reaches_its_first_event_without_asyncssh():
    """asyncssh (0.15-0.2 s of CPU) loads when a host is first reached, after discovery."""
    out = _run("import sys\n"
               "import installer.commands.cli, installer.commands.headless\n"
               "from installer.engine.steps import default_executors\n"
               "default_executors()\n"
               "print('asyncssh' in sys.modules, 'remote.sshconn' in sys.modules)\n")
    assert out == "False False"


def test_help_and_version_load_neither_pydantic_nor_the_planner():
    """The answers and the recorded facts are pydantic models: its import and the models'
    schemas (about 0.1 s) are paid by the commands that read those files, not by `--help` or
    `--version` (whose helm lookup imports installer.charts.helm, which reads facts' types only)."""
    out = _run("import contextlib, io, sys\n"
               "from screens.cli import main\n"
               "for flag in ('--help', '--version'):\n"
               "    with contextlib.redirect_stdout(io.StringIO()), "
               "contextlib.suppress(SystemExit):\n"
               "        main([flag])\n"
               "print(sorted(m for m in ('pydantic', 'installer.answers.model',\n"
               "                         'installer.engine.plan')\n"
               "             if m in sys.modules), 'installer.charts.helm' in sys.modules)")
    assert out == "[] True"


def test_the_console_scripts_help_and_headless_commands_load_no_textual():
    """The composition root (screens.cli) sits above both front ends but opens the screens
    only when asked: `--help` and a headless dry-run never load textual."""
    out = _run("import contextlib, io, sys\n"
               "from screens.cli import main\n"
               "with contextlib.redirect_stdout(io.StringIO()):\n"
               "    code = main(['--answers', 'installer/examples/answers.yaml',\n"
               "                 '--facts', 'installer/examples/facts.yaml', '--dry-run'])\n"
               "tops = {m.split('.')[0] for m in sys.modules}\n"
               "print(code, sorted(tops & {'textual', 'screens'}))")
    assert out == "0 ['screens']"
