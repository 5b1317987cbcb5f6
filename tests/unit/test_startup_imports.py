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
LATER = ("asyncssh", "kubernetes", "installer.engine", "installer.plan", "installer.kube",
         "installer.helm", "screens.nodes", "screens.charts", "screens.install",
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
        "from installer.clusterinfo import list_contexts\n"
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
    """asyncssh (0.2-0.6 s) loads beside discovery, or when a host is first reached."""
    out = _run("import sys\n"
               "import installer.cli, installer.headless\n"
               "from installer.steps import default_executors\n"
               "default_executors()\n"
               "print('asyncssh' in sys.modules, 'remote.sshconn' in sys.modules)\n")
    assert out == "False False"


# A finder that only counts: it is asked for remote.sshconn each time the module is loaded
# (an import that waits for another thread's finds it loaded and does not ask).
COUNT_LOADS = """\
import asyncio, sys
class Count:
    loads = 0
    def find_spec(self, name, path=None, target=None):
        Count.loads += name == "remote.sshconn"
sys.meta_path.insert(0, Count())
from remote import ssh
from remote.targets import HostTarget
"""


def test_preload_imports_the_connection_code_once_and_run_on_hosts_waits_for_it(tmp_path):
    out = _run(COUNT_LOADS + (
        "ssh.preload(); ssh.preload()\n"
        f"opts = ssh.SSHOptions(known_hosts={str(tmp_path / 'kh')!r}, config_file='',"
        " connect_timeout=2)\n"
        "r = asyncio.run(ssh.run_on_hosts([HostTarget('h', '127.0.0.1', 1)], 'true', opts))\n"
        "print(Count.loads, r['h'].error.kind)\n"))
    assert out == "1 unreachable"


def test_an_error_in_the_preloaded_import_is_raised_by_run_on_hosts():
    out = _run(COUNT_LOADS + (
        "sys.modules['asyncssh'] = None  # importing it raises ModuleNotFoundError\n"
        "ssh.preload()\n"
        "import threading\n"
        "for t in threading.enumerate():\n"
        "    t.join() if t.name == 'import-asyncssh' else None\n"
        "try:\n"
        "    asyncio.run(ssh.run_on_hosts([HostTarget('h', '127.0.0.1', 1)], 'true',"
        " ssh.SSHOptions()))\n"
        "except ImportError as e:\n"
        "    print('raised', type(e).__name__)\n"))
    assert out == "raised ModuleNotFoundError"
