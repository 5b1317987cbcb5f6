"""A context through the kubernetes client's loader and what the installer adds to it
(impersonation headers, a token file read again), and the messages for contexts it cannot use
(the lab tests reach a real API server with each shape: tests/integration/test_kube_auth.py,
tests/integration/test_kube_matrix.py)."""

from __future__ import annotations

import os

import pytest
import urllib3
import yaml

from installer.cluster.apierrors import ApiUnreachable
from installer.cluster.kube import Kube
from installer.cluster.kubeauth import Endpoint, endpoint
from installer.cluster.kubeconfig import load_kubeconfig
from installer.errors import UserError
from installer.redact import MASK, Redactor

SERVER = {"server": "https://127.0.0.1:6443"}


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


def test_impersonation_is_sent_as_client_go_sends_it(tmp_path):
    """The kubernetes client drops as/as-groups/as-uid/as-user-extra: the installer would act
    with the caller's own rights. One Impersonate-Group per group, one Impersonate-Extra-<key>
    per value, the key percent-escaped where a header name cannot hold it."""
    ep = _endpoint(tmp_path / "config", _config(SERVER, {
        "token": "t", "as": "jane", "as-groups": ["devs", "system:authenticated"],
        "as-uid": "1234", "as-user-extra": {"scopes": ["view", "edit"],
                                            "example.com/team name": ["gpu"]}}))
    headers = ep.auth()
    assert isinstance(headers, urllib3.HTTPHeaderDict)
    assert headers["Authorization"] == "Bearer t" and headers["Impersonate-User"] == "jane"
    assert headers.getlist("Impersonate-Group") == ["devs", "system:authenticated"]
    assert headers.getlist("Impersonate-Uid") == ["1234"]
    assert headers.getlist("Impersonate-Extra-scopes") == ["view", "edit"]
    assert headers.getlist("Impersonate-Extra-example.com%2Fteam%20name") == ["gpu"]
    assert len(list(headers.items())) == 8  # each value a header of its own


def test_no_impersonation_sends_no_impersonation_header(tmp_path):
    ep = _endpoint(tmp_path / "config", _config(SERVER, {"token": "t"}))
    assert not any(k.lower().startswith("impersonate") for k in ep.auth())


def test_groups_without_a_user_to_impersonate_are_refused_as_kubectl_refuses_them(tmp_path):
    with pytest.raises(UserError) as err:
        _endpoint(tmp_path / "config", _config(SERVER, {"token": "t", "as-groups": ["admins"]}))
    problem = err.value.problems[0]
    assert "without `as`" in problem.message and "as: USER" in problem.fix


@pytest.mark.parametrize(("user", "where"), [
    ({"as": "j", "as-groups": "admins"}, "users[u].user.as-groups"),
    ({"as": "j", "as-groups": ["a", 7]}, "users[u].user.as-groups"),
    ({"as": "j", "as-uid": 1000}, "users[u].user.as-uid"),
    ({"as": "j", "as-user-extra": ["scopes"]}, "users[u].user.as-user-extra"),
    ({"as": "j", "as-user-extra": {"scopes": "view"}}, "users[u].user.as-user-extra.scopes"),
])
def test_impersonation_fields_of_the_wrong_type_are_refused_naming_them(tmp_path, user, where):
    (tmp_path / "config").write_text(yaml.safe_dump(_config(SERVER, user)))
    with pytest.raises(UserError) as err:
        load_kubeconfig(str(tmp_path / "config"))
    assert any(p.message.startswith(where) for p in err.value.problems), err.value.problems


def test_a_token_file_is_read_again_when_it_changes_or_the_server_refused_it(tmp_path):
    """client-go's cached file token source: a rotated (projected) token is sent from the
    next request on; after a 401 the file is read again even if it looks unchanged."""
    token = tmp_path / "token"
    token.write_text("first\n")
    ep = _endpoint(tmp_path / "config", _config(SERVER, {"token": "inline",
                                                         "tokenFile": str(token)}))
    assert ep.auth()["Authorization"] == "Bearer first"  # the file wins over `token`
    token.write_text("second-token\n")
    assert ep.auth()["Authorization"] == "Bearer second-token"
    stat = token.stat()
    token.write_text("third-token!\n")  # same size, same times: looks unchanged
    os.utime(token, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert ep.auth()["Authorization"] == "Bearer second-token"
    ep.refused()
    assert ep.auth()["Authorization"] == "Bearer third-token!"
    token.write_text("")  # a half-written file keeps the last good token
    assert ep.auth()["Authorization"] == "Bearer third-token!"


def test_a_rotated_token_file_is_masked_from_the_request_that_first_sends_it(tmp_path):
    token = tmp_path / "token"
    token.write_text("old-token\n")
    ep = _endpoint(tmp_path / "config", _config({"server": "https://127.0.0.1:1"},
                                                {"tokenFile": str(token)}))
    redactor = Redactor()
    k = Kube(Endpoint(ep.server, urllib3.PoolManager(retries=False), ep.auth), "f", "c")
    k.mask_tokens(redactor.add)
    token.write_text("rotated-token\n")
    with pytest.raises(ApiUnreachable):  # nothing listens on port 1
        k.get_json("/api")
    assert redactor.text("old-token rotated-token") == f"{MASK} {MASK}"


def test_a_token_file_not_there_yet_leaves_the_token_until_it_is(tmp_path):
    """client-go sends `token` while the tokenFile beside it cannot be read."""
    token = tmp_path / "token"
    ep = _endpoint(tmp_path / "config", _config(SERVER, {"token": "inline",
                                                         "tokenFile": str(token)}))
    assert ep.auth()["Authorization"] == "Bearer inline"
    token.write_text("from-file\n")
    assert ep.auth()["Authorization"] == "Bearer from-file"
