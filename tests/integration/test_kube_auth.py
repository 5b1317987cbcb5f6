"""The kubeconfig shapes operators bring, against the lab's real API server: each reaches the
cluster through the kubernetes client's loader (installer/cluster/kubeauth.py; the matrix of
KUBECONFIG lists, impersonation, rotated token files and proxies: test_kube_matrix.py).

Each case runs discovery in a fresh interpreter, so what it imported is its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from installer.redact import MASK
from tests.integration.kubeconfigs import ROOT, admin, b64, discover, private
from tests.integration.secrets import SA_NAMESPACE, delete_account, token_kubeconfig

pytestmark = pytest.mark.lab

@pytest.fixture(scope="module")
def account(lab, tmp_path_factory) -> tuple[str, dict]:
    """A ServiceAccount token and its kubeconfig, for the token shapes."""
    tmp = tmp_path_factory.mktemp("sa")
    token = token_kubeconfig(lab, tmp / "config", "gki-auth")
    yield token, yaml.safe_load((tmp / "config").read_text())
    delete_account(lab, "gki-auth")


def test_the_labs_file_references_reach_the_cluster_through_the_clients_loader(lab):
    got = discover(lab.kubeconfig)
    assert got["nodes"] == len(lab.info.nodes) and got["context"] == "kwok-lab"
    assert got["kubernetes_imported"] is True  # every context goes through its loader


def test_inline_certificates_and_ca_relative_paths_reach_the_cluster(lab, tmp_path):
    config = admin(lab)
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    cluster["certificate-authority-data"] = b64(cluster.pop("certificate-authority"))
    user["client-certificate-data"] = b64(user.pop("client-certificate"))
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "admin.key").write_bytes(Path(user.pop("client-key")).read_bytes())
    user["client-key"] = "pki/admin.key"  # relative to the kubeconfig's folder, as kubectl
    got = discover(private(tmp_path / "config", config))
    assert got["nodes"] == len(lab.info.nodes)


def test_a_token_file_with_tls_verification_off_reaches_the_cluster(lab, account, tmp_path):
    token, config = account
    (tmp_path / "token").write_text(token + "\n")
    config["users"][0]["user"] = {"tokenFile": str(tmp_path / "token")}
    cluster = config["clusters"][0]["cluster"]
    cluster.pop("certificate-authority")
    cluster["insecure-skip-tls-verify"] = True
    got = discover(private(tmp_path / "config", config))
    assert got["nodes"] == len(lab.info.nodes)


def test_an_exec_credential_plugin_gives_the_token(
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
    got = discover(private(tmp_path / "config", config))
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
                          str(private(tmp_path / "config", config)),
                          f"{first} {renewed}", "3"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "calls").read_text().strip() == "2"  # renewed exactly once
    assert json.loads(out.stdout)["masked"] == f"{MASK} {MASK}"


def test_a_ca_that_did_not_sign_the_server_is_refused_naming_the_verification(lab, tmp_path):
    config = admin(lab)
    # Any certificate that is not the lab's CA will do: the client's own is one.
    config["clusters"][0]["cluster"]["certificate-authority"] = \
        config["users"][0]["user"]["client-certificate"]
    out = subprocess.run([sys.executable, "-m", "installer", "troubleshoot", "--json",
                          "--kubeconfig", str(private(tmp_path / "config", config))],
                         cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")})
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "cannot reach the API server" in out.stderr and "fix:" in out.stderr
    assert "certificate verify failed" in out.stderr.lower() and "cluster's own CA" in out.stderr
