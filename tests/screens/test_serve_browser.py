"""`gpu-kata-installer serve`: the wizard in a real browser (Debian's headless Chromium).

The server is the real command in its own process session, on a free loopback port, with the
recorded example cluster (no cluster needed). The page draws the terminal on a canvas, so the
test reads what it shows from xterm.js's own buffer: a script the page runs first keeps the
Terminal that textual-serve's page creates (its bundle exposes none). Keys go to the
terminal's input element, as an operator's typing does. Chromium and chromedriver come from
tests/lab/ensure.sh (`make test` runs it first); without them the test is skipped, except
under CI, where that is a failure.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "installer" / "examples"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Runs before the page's own scripts: textual.js assigns its xterm.js Terminal to
# `this.terminal`; an inherited setter (not enumerable: loops over objects stay as they were)
# keeps each one so the test can read the screen's rows.
KEEP_TERMINALS = """
window.__terminals = [];
Object.defineProperty(Object.prototype, 'terminal', {configurable: true, enumerable: false,
  set(value) {
    Object.defineProperty(this, 'terminal', {value, writable: true, enumerable: true,
                                             configurable: true});
    window.__terminals.push(value);
  }});
"""
SCREEN_TEXT = """
const t = window.__terminals.find(t => t && t.buffer && t.buffer.active);
if (!t) return null;
const b = t.buffer.active, rows = [];
for (let y = 0; y < t.rows; y++) {
  const line = b.getLine(b.viewportY + y);
  rows.push(line ? line.translateToString(true) : '');
}
return rows.join('\\n');
"""


def _need_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        text = f"{', '.join(missing)} missing: run tests/lab/ensure.sh (apt: chromium, " \
               "chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(text)
        pytest.skip(text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _in_session(sid: int) -> list[str]:
    """Command lines of the processes still in process session `sid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[3]) == sid:
            found.append(cmdline.strip())
    return found


def _status(url: str, headers: dict[str, str]) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) \
                as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"),
           "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "screens.cli", "serve", "--port", str(port),
         "--answers", str(EXAMPLES / "answers.yaml"), "--facts", str(EXAMPLES / "facts.yaml")],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    deadline = time.monotonic() + 60
    printed = re.compile(r"open (http://127\.0\.0\.1:\d+/)\?token=([\w-]+)")
    while time.monotonic() < deadline:
        found = printed.search((tmp_path / "serve.log").read_text())
        if found and _status(found[1], {}) == 403:  # answering, and only with the token
            break
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError(f"serve never answered:\n{(tmp_path / 'serve.log').read_text()}")
    assert proc.poll() is None, (tmp_path / "serve.log").read_text()
    url, token = found[1], found[2]
    yield proc, url, token
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


@pytest.fixture
def browser():
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Only loopback is reached: textual-serve's page asks for a web font, and this machine
    # (like an air-gapped site) must send nothing beyond it; the page falls back to a local font.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,800",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--no-proxy-server", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": KEEP_TERMINALS})
    yield driver
    driver.quit()


def _wait_for(driver, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    screen = None
    while time.monotonic() < deadline:
        screen = driver.execute_script(SCREEN_TEXT)
        if screen and text in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in the page; it showed:\n{screen}")


def test_the_wizard_in_a_browser_to_nodes_and_back(server, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    proc, url, token = server
    browser.get(f"{url}?token={token}")
    first = _wait_for(browser, "3 with NVIDIA GPUs")
    assert "Cluster - kubeconfig, context" in first
    assert "recorded:" in first  # the session runs with serve's --facts

    typing = browser.find_element("css selector", ".xterm-helper-textarea")
    browser.execute_script("arguments[0].focus()", typing)
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("n").key_up(Keys.CONTROL).perform()
    nodes = _wait_for(browser, "Nodes - Kata VMs")
    assert "gpu-node-3" in nodes and "2 Kata · 1 traditional" in nodes

    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    back = _wait_for(browser, "Cluster - kubeconfig, context")
    assert "Nodes - Kata VMs" not in back

    shot = tmp_path / "wizard.png"
    assert browser.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000, len(data)

    # the token was traded for a cookie: the address shown no longer carries it
    assert "token" not in browser.current_url
    # one session, one wizard: the page's websocket started it in the server's session
    assert any("screens.cli --wizard --answers" in c for c in _in_session(proc.pid))

    # a page of another site may not open a session; a rebinding name gets nothing
    host = url.removeprefix("http://").rstrip("/")
    assert _status(f"{url}ws", {"Origin": "http://evil.example", "Connection": "Upgrade",
                                "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) == 403
    assert _status(url, {"Host": f"evil.example:{host.rpartition(':')[2]}"}) == 403
    # another account on this machine reaches loopback too: without the token, nothing
    assert _status(f"{url}?token=not-{token}", {}) == 403
    assert _status(url, {"Cookie": f"gki-serve-{host.rpartition(':')[2]}=guess"}) == 403
    assert _status(f"{url}ws", {"Origin": url.rstrip("/"), "Connection": "Upgrade",
                                "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) == 403

    browser.quit()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    # the token was printed once, in the address to open, and logged nowhere else
    assert (tmp_path / "serve.log").read_text().count(token) == 1
    deadline = time.monotonic() + 10
    while _in_session(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _in_session(proc.pid) == []


def test_serve_on_an_outside_address_needs_allow_remote():
    out = subprocess.run([sys.executable, "-m", "screens.cli", "serve", "--host", "0.0.0.0"],
                         capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL,
                         timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2, out.stderr
    assert "0.0.0.0 is not a loopback address" in out.stderr
    assert "--allow-remote" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_serve_refuses_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "screens.cli", "serve", "--port",
                              str(port)], capture_output=True, text=True, cwd=ROOT,
                             stdin=subprocess.DEVNULL, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2, out.stderr
    assert f"cannot listen on 127.0.0.1 port {port}" in out.stderr
    assert "choose another --port" in out.stderr and "Traceback" not in out.stderr

