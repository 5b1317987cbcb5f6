"""Which kubeconfig contexts the fast path reads itself and which go to the kubernetes client's
loader, and the messages for contexts neither can use (the lab tests reach a real API server
with each shape: tests/integration/test_kube_auth.py)."""

from __future__ import annotations

import pytest
import urllib3
import yaml

from installer.cluster.apierrors import ApiUnreachable
from installer.cluster.kube import Kube
from installer.cluster.kubeauth import Endpoint, _plain, endpoint
from installer.cluster.kubeconfig import load_kubeconfig
from installer.errors import UserError
from installer.redact import MASK, Redactor

SERVER = {"server": "https://127.0.0.1:6443"}


@pytest.mark.parametrize(("user", "plain"), [
    ({"token": "t"}, True),
    ({"tokenFile": "/var/run/token"}, True),
    ({"client-certificate-data": "x", "client-key-data": "y"}, True),
    ({}, True),
    ({"exec": {"command": "aws"}}, False),
    ({"auth-provider": {"name": "oidc"}}, False),
    ({"username": "u", "password": "p"}, False),
    ({"token": "t", "as": "someone"}, False),
])
def test_only_exec_plugins_auth_providers_basic_auth_and_impersonation_need_the_client(
        user, plain, monkeypatch):
    for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert _plain(SERVER, user) is plain


def test_a_proxy_for_the_server_needs_the_client_unless_no_proxy_spares_it(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert _plain(SERVER, {"token": "t"}) is False
    assert _plain({**SERVER, "proxy-url": "http://p:1"}, {"token": "t"}) is False
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,.cluster.local")
    assert _plain(SERVER, {"token": "t"}) is True
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.setenv("ALL_PROXY", "socks5://proxy.example:1080")
    assert _plain(SERVER, {"token": "t"}) is False


def _config(cluster: dict | None, user: dict | None) -> dict:
    return {"contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            "clusters": [{"name": "k", "cluster": cluster}] if cluster is not None else [],
            "users": [{"name": "u", "user": user}] if user is not None else []}


def _endpoint(path, config: dict) -> Endpoint:
    """Context 'c' of `config`, written at `path` and read as the installer reads it."""
    path.write_text(yaml.safe_dump(config))
    return endpoint(load_kubeconfig(str(path)), "c")


@pytest.mark.parametrize(("cluster", "user", "words"), [
    (None, {}, "cluster 'k' is not in the file"),
    ({"certificate-authority-data": "x"}, {}, "has no server address"),
    (SERVER, None, "user 'u' is not in the file"),
    ({**SERVER, "certificate-authority-data": "not base64!"}, {}, "not valid base64"),
    ({**SERVER, "certificate-authority": "gone.crt"}, {}, "gone.crt it names does not exist"),
    (SERVER, {"client-certificate-data": "eA=="}, "without a key"),
    (SERVER, {"client-certificate-data": "eA==", "client-key-data": "eQ=="},
     "cannot be loaded"),
])
def test_a_context_it_cannot_use_names_the_file_the_context_and_the_problem(
        tmp_path, cluster, user, words):
    with pytest.raises(UserError) as err:
        _endpoint(tmp_path / "config", _config(cluster, user))
    text = str(err.value) + " ".join(p.message for p in err.value.problems)
    assert str(tmp_path / "config") in text and "'c'" in text and words in text
    if "gone.crt" in words:
        assert str(tmp_path / "gone.crt") in text  # relative to the kubeconfig's folder


def test_a_token_is_sent_as_a_bearer_header_and_masked_once_connected(tmp_path):
    (tmp_path / "token").write_text("s3cret\n")
    ep = _endpoint(tmp_path / "config", _config(SERVER, {"tokenFile": "token"}))
    assert ep.auth() == {"Authorization": "Bearer s3cret"}
    assert ep.server == "https://127.0.0.1:6443"
    redactor = Redactor()
    Kube(ep, "config", "c").mask_tokens(redactor.add)
    assert "s3cret" not in redactor.text("sent Bearer s3cret")


def test_a_renewed_token_is_masked_from_the_request_that_first_sends_it():
    tokens = iter(["first-token", "renewed-token"])
    current = {"Authorization": "Bearer " + next(tokens)}

    def renew() -> None:
        current["Authorization"] = "Bearer " + next(tokens)

    redactor = Redactor()
    k = Kube(Endpoint("https://127.0.0.1:1", urllib3.PoolManager(), lambda: current), "f", "c")
    k.mask_tokens(redactor.add)
    renew()
    with pytest.raises(ApiUnreachable):  # nothing listens on port 1
        k.get_json("/api")
    assert redactor.text("first-token renewed-token") == f"{MASK} {MASK}"
