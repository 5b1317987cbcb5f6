"""The kubeconfig shapes operators bring, against the lab's real API server: each reaches the
cluster, and only those the fast path cannot read import the kubernetes client (whose import
was a third of the wizard's first render, see installer/cluster/kubeauth.py).

Each case runs discovery in a fresh interpreter, so what it imported is its own."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from installer.redact import MASK
from tests.integration.secrets import SA_NAMESPACE, delete_account, token_kubeconfig

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]

_DISCOVER = """
import json, sys
from installer.cluster import kube
k = kube.connect(sys.argv[1], None)
facts = kube._discover_sync(k)
print(json.dumps({"nodes": len(facts.nodes), "context": k.context,
                  "kubernetes_imported": "kubernetes" in sys.modules}))
"""


def _discover(kubeconfig: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _DISCOVER, str(kubeconfig)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "KUBECONFIG": "/nonexistent"})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def _admin(lab) -> dict:
    return yaml.safe_load(lab.kubeconfig.read_text())


def _b64(path: str) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


def _private(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def account(lab, tmp_path_factory) -> tuple[str, dict]:
    """A ServiceAccount token and its kubeconfig, for the token shapes."""
    tmp = tmp_path_factory.mktemp("sa")
    token = token_kubeconfig(lab, tmp / "config", "gki-auth")
    yield token, yaml.safe_load((tmp / "config").read_text())
    delete_account(lab, "gki-auth")


def test_the_labs_file_references_need_no_kubernetes_client(lab):
    got = _discover(lab.kubeconfig)
    assert got["nodes"] == len(lab.info.nodes) and got["context"] == "kwok-lab"
    assert got["kubernetes_imported"] is False


def test_inline_certificates_and_ca_relative_paths_reach_the_cluster(lab, tmp_path):
    config = _admin(lab)
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    cluster["certificate-authority-data"] = _b64(cluster.pop("certificate-authority"))
    user["client-certificate-data"] = _b64(user.pop("client-certificate"))
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "admin.key").write_bytes(Path(user.pop("client-key")).read_bytes())
    user["client-key"] = "pki/admin.key"  # relative to the kubeconfig's folder, as kubectl
    got = _discover(_private(tmp_path / "config", config))
    assert got["nodes"] == len(lab.info.nodes) and got["kubernetes_imported"] is False


def test_a_token_file_with_tls_verification_off_reaches_the_cluster(lab, account, tmp_path):
    token, config = account
    (tmp_path / "token").write_text(token + "\n")
    config["users"][0]["user"] = {"tokenFile": str(tmp_path / "token")}
    cluster = config["clusters"][0]["cluster"]
    cluster.pop("certificate-authority")
    cluster["insecure-skip-tls-verify"] = True
    got = _discover(_private(tmp_path / "config", config))
    assert got["nodes"] == len(lab.info.nodes) and got["kubernetes_imported"] is False


def test_an_exec_credential_plugin_goes_through_the_kubernetes_clients_loader(
        lab, account, tmp_path):
    token, config = account
    plugin = tmp_path / "credential-plugin"
    plugin.write_text("#!/bin/sh\ncat <<'EOF'\n" + json.dumps({
        "apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
        "status": {"token": token}}) + "\nEOF\n")
    plugin.chmod(0o700)
    config["users"][0]["user"] = {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
        "interactiveMode": "Never"}}
    got = _discover(_private(tmp_path / "config", config))
    assert got["nodes"] == len(lab.info.nodes) and got["kubernetes_imported"] is True


_RENEWING = """
import json, sys, time
from installer.cluster import kube
from installer.redact import Redactor
k = kube.connect(sys.argv[1], None)
redactor = Redactor()
k.mask_tokens(redactor.add)
k.get_json("/api")
time.sleep(float(sys.argv[3]))
k.get_json("/api")  # the first token has expired by now: the plugin is asked again
print(json.dumps({"masked": redactor.text(sys.argv[2])}))
"""


def test_a_token_an_exec_plugin_renews_mid_run_is_masked_like_the_first(
        lab, account, tmp_path):
    first, config = account
    renewed = lab.kubectl("create", "token", "gki-auth", "-n", SA_NAMESPACE,
                          "--duration", "2h").stdout.strip()
    # The client renews 5 minutes before expiry: the first token is good for 2 more seconds.
    plugin = tmp_path / "credential-plugin"
    plugin.write_text(f"""#!/bin/sh
calls=$(cat {tmp_path}/calls 2>/dev/null || echo 0)
echo $((calls + 1)) > {tmp_path}/calls
if [ "$calls" = 0 ]; then token={first}; expiry=$(date -u -d '+302 seconds' +%Y-%m-%dT%H:%M:%SZ)
else token={renewed}; expiry=$(date -u -d '+2 hours' +%Y-%m-%dT%H:%M:%SZ); fi
printf '{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",\
"status":{{"token":"%s","expirationTimestamp":"%s"}}}}' "$token" "$expiry"
""")
    plugin.chmod(0o700)
    config["users"][0]["user"] = {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
        "interactiveMode": "Never"}}
    out = subprocess.run([sys.executable, "-c", _RENEWING,
                          str(_private(tmp_path / "config", config)),
                          f"{first} {renewed}", "3"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "calls").read_text().strip() == "2"  # renewed exactly once
    assert json.loads(out.stdout)["masked"] == f"{MASK} {MASK}"


def test_a_ca_that_did_not_sign_the_server_is_refused_naming_the_verification(lab, tmp_path):
    config = _admin(lab)
    # Any certificate that is not the lab's CA will do: the client's own is one.
    config["clusters"][0]["cluster"]["certificate-authority"] = \
        config["users"][0]["user"]["client-certificate"]
    out = subprocess.run([sys.executable, "-m", "installer", "troubleshoot", "--json",
                          "--kubeconfig", str(_private(tmp_path / "config", config))],
                         cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")})
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "cannot reach the API server" in out.stderr and "fix:" in out.stderr
    assert "certificate verify failed" in out.stderr.lower() and "cluster's own CA" in out.stderr
