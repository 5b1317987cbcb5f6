"""The kubeconfig matrix against the lab's real API server: a KUBECONFIG list merged as kubectl
merges it, an exec credential plugin, impersonation (`as`, `as-groups`, `as-user-extra`), a
token file rotated mid-run, a proxy-url, and a quoted boolean refused - each through
installer.cluster.kube.connect, i.e. the kubernetes client's loader plus what
installer/cluster/kubeauth.py adds to it.

Who the API server took the request to be is asked of the server itself (a SelfSubjectReview),
so impersonation and token rotation are proved by its answer, not by the headers we sent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from installer.cluster.apierrors import ApiError, ApiUnreachable
from installer.cluster.kube import Kube, connect
from installer.errors import UserError
from tests.integration.kubeconfigs import admin, private
from tests.integration.secrets import SA_NAMESPACE, delete_account, token_kubeconfig

pytestmark = pytest.mark.lab

LIMITED, READERS = "gki-matrix-limited", "gki-matrix-readers"


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch):
    """The environment's proxies stay out of the way: each case says its own."""
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                "all_proxy", "NO_PROXY", "no_proxy", "KUBECONFIG"):
        monkeypatch.delenv(var, raising=False)


def _who(k: Kube) -> dict[str, Any]:
    """The user the API server took the requests to be (SelfSubjectReview)."""
    review = k.send_json("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                         {"apiVersion": "authentication.k8s.io/v1",
                          "kind": "SelfSubjectReview"})
    return review["status"]["userInfo"]


def _nodes(k: Kube) -> set[str]:
    return {n["metadata"]["name"] for n in k.list_items("/api/v1/nodes")}


def _one(cluster: dict, user: dict, *, name: str = "m") -> dict:
    return {"apiVersion": "v1", "kind": "Config", "current-context": name,
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}]}


# --- (a) KUBECONFIG listing two files and a missing one ----------------------------------

def test_a_kubeconfig_list_is_merged_as_kubectl_merges_it(lab, tmp_path, monkeypatch):
    """Clusters in one file, users and contexts in another (each file's relative paths
    against its own folder), a missing file between them: the cluster is reached, and for a
    name both files define, the first file's entry wins."""
    doc = admin(lab)
    cluster, user = doc["clusters"][0], doc["users"][0]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "ca.crt").write_bytes(Path(cluster["cluster"]
                                                 .pop("certificate-authority")).read_bytes())
    cluster["cluster"]["certificate-authority"] = "ca.crt"
    for key in ("client-certificate", "client-key"):
        (tmp_path / "b" / key).write_bytes(Path(user["user"][key]).read_bytes())
        user["user"][key] = key
    clusters = private(tmp_path / "a" / "clusters", {"clusters": [cluster]})
    nowhere = {"name": cluster["name"], "cluster": {"server": "https://127.0.0.1:1"}}
    rest = private(tmp_path / "b" / "users", {
        "clusters": [nowhere], "users": [user], "contexts": doc["contexts"],
        "current-context": doc["current-context"]})

    monkeypatch.setenv("KUBECONFIG", f"{clusters}:{tmp_path / 'missing'}:{rest}")
    k = connect(None, None)
    assert k.context == doc["current-context"] and k.server == cluster["cluster"]["server"]
    assert _nodes(k) == {n.name for n in lab.info.nodes}

    monkeypatch.setenv("KUBECONFIG", f"{rest}:{clusters}")  # now the unreachable one is first
    k = connect(None, None)
    assert k.server == "https://127.0.0.1:1"
    with pytest.raises(ApiUnreachable):
        k.get_json("/api")


# --- accounts and RBAC the cases share ---------------------------------------------------

@pytest.fixture(scope="module")
def rbac(lab) -> Iterator[None]:
    """A user who may only get nodes, and a group that may list namespaces."""
    objects = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": LIMITED},
         "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": LIMITED},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": LIMITED},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                       "name": LIMITED}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": READERS},
         "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": READERS},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": READERS},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                       "name": READERS}]},
    ]
    for obj in objects:
        lab.apply(obj)
    yield
    for kind in ("clusterrolebinding", "clusterrole"):
        lab.kubectl("delete", kind, LIMITED, READERS, "--ignore-not-found")


def _as(lab, tmp_path: Path, **impersonate: Any) -> Kube:
    """The lab's admin context, impersonating."""
    doc = admin(lab)
    doc["users"][0]["user"].update(impersonate)
    return connect(str(private(tmp_path / "config", doc)), None)


# --- (b) exec credential plugin ----------------------------------------------------------

def test_an_exec_plugin_gives_the_token_with_its_args_and_env(lab, tmp_path):
    token = token_kubeconfig(lab, tmp_path / "sa", "gki-matrix-exec")
    try:
        plugin = tmp_path / "plugin"
        plugin.write_text("#!/bin/sh\n"
                          f'echo "$1 $GKI_MATRIX" >> {tmp_path}/calls\n'
                          "cat <<'EOF'\n" + json.dumps({
                              "apiVersion": "client.authentication.k8s.io/v1",
                              "kind": "ExecCredential", "status": {"token": token}})
                          + "\nEOF\n")
        plugin.chmod(0o700)
        doc = admin(lab)
        cluster = doc["clusters"][0]["cluster"]
        k = connect(str(private(tmp_path / "config", _one(cluster, {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
            "args": ["--cluster=lab"], "env": [{"name": "GKI_MATRIX", "value": "set"}],
            "interactiveMode": "Never"}}))), None)
        assert _who(k)["username"] == f"system:serviceaccount:{SA_NAMESPACE}:gki-matrix-exec"
        assert (tmp_path / "calls").read_text().splitlines()[0] == "--cluster=lab set"
    finally:
        delete_account(lab, "gki-matrix-exec")


# --- (c) impersonation -------------------------------------------------------------------

def test_impersonating_a_limited_user_is_refused_what_that_user_may_not_do(
        lab, rbac, tmp_path):
    """The admin could list namespaces; `as:` a user who may only get nodes could not - the
    kubernetes client alone would have sent the request as the admin."""
    k = _as(lab, tmp_path, **{"as": LIMITED})
    assert _who(k)["username"] == LIMITED
    node = lab.info.nodes[0].name
    assert k.get_json(f"/api/v1/nodes/{node}")["metadata"]["name"] == node
    with pytest.raises(ApiError) as err:
        k.get_json("/api/v1/namespaces")
    assert err.value.status == 403 and err.value.exit_code == 2
    assert f'User "{LIMITED}" cannot list' in json.loads(err.value.body)["message"]
    said = " ".join(p.message for p in err.value.problems)
    assert LIMITED in said, said  # the operator is told whose rights were short


def test_as_groups_grants_through_a_group_binding_one_header_per_group(lab, rbac, tmp_path):
    """The group that may list namespaces is the second of two: each group is a header of its
    own (joined in one, the server would read one group named "a, b")."""
    k = _as(lab, tmp_path, **{"as": LIMITED, "as-groups": ["gki-matrix-other", READERS],
                             "as-user-extra": {"example.com/reason": ["matrix test"]}})
    who = _who(k)
    assert who["username"] == LIMITED
    assert {"gki-matrix-other", READERS} <= set(who["groups"])
    assert who["extra"] == {"example.com/reason": ["matrix test"]}
    assert any(ns["metadata"]["name"] == "kube-system"
               for ns in k.list_items("/api/v1/namespaces"))
    with pytest.raises(ApiError) as err:  # the group's role lists namespaces, nothing more
        k.get_json(f"/api/v1/namespaces/{SA_NAMESPACE}/secrets")
    assert err.value.status == 403


# --- (d) a token file rotated mid-run ----------------------------------------------------

def _refused(lab, token: str) -> bool:
    with urllib3.PoolManager(cert_reqs="CERT_NONE") as pool:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        r = pool.request("GET", lab.api_url.rstrip("/") + "/api",
                         headers={"Authorization": f"Bearer {token}"})
        return r.status == 401


def test_a_token_file_rotated_mid_run_is_read_again(lab, tmp_path):
    """The projected-token case: the file is rewritten with another account's token and the
    first token stops working; the next request carries the new one. (The client alone
    reads the file once and would answer 401 until the run ends.)"""
    first = token_kubeconfig(lab, tmp_path / "a", "gki-matrix-rot-a")
    second = token_kubeconfig(lab, tmp_path / "b", "gki-matrix-rot-b")
    try:
        token_file = tmp_path / "token"
        token_file.write_text(first + "\n")
        cluster = admin(lab)["clusters"][0]["cluster"]
        k = connect(str(private(tmp_path / "config", _one(cluster, {
            "tokenFile": str(token_file)}))), None)
        assert _who(k)["username"].endswith(":gki-matrix-rot-a")
        token_file.write_text(second + "\n")
        delete_account(lab, "gki-matrix-rot-a")
        deadline = time.monotonic() + 30  # the server may cache a token's review briefly
        while not _refused(lab, first):
            assert time.monotonic() < deadline, "the deleted account's token still works"
            time.sleep(0.5)
        assert _who(k)["username"].endswith(":gki-matrix-rot-b")
        assert _nodes(k) == {n.name for n in lab.info.nodes}
    finally:
        delete_account(lab, "gki-matrix-rot-a")
        delete_account(lab, "gki-matrix-rot-b")


# --- (e) proxy-url, (f) a quoted boolean -------------------------------------------------

class ConnectProxy:
    """A small HTTP CONNECT proxy on 127.0.0.1 that records where it was asked to go."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        method, target, _ = head.split("\r\n", 1)[0].split(" ", 2)
        self.targets.append(f"{method} {target}")
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            writer.close()
            return
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def test_requests_go_through_the_proxy_url(lab, tmp_path):
    doc = admin(lab)
    server = doc["clusters"][0]["cluster"]["server"]
    with ConnectProxy() as proxy:
        doc["clusters"][0]["cluster"]["proxy-url"] = f"http://127.0.0.1:{proxy.port}"
        k = connect(str(private(tmp_path / "config", doc)), None)
        assert _nodes(k) == {n.name for n in lab.info.nodes}
        assert proxy.targets and set(proxy.targets) == {
            "CONNECT " + server.removeprefix("https://").rstrip("/")}


def test_a_quoted_boolean_is_refused_before_any_request(lab, tmp_path):
    doc = admin(lab)
    with ConnectProxy() as proxy:
        doc["clusters"][0]["cluster"].update({"insecure-skip-tls-verify": "true",
                                              "proxy-url": f"http://127.0.0.1:{proxy.port}"})
        with pytest.raises(UserError) as err:
            connect(str(private(tmp_path / "config", doc)), None)
        assert "insecure-skip-tls-verify" in str(err.value)
        assert "write insecure-skip-tls-verify: true without quotes" in str(err.value)
        assert proxy.targets == []
