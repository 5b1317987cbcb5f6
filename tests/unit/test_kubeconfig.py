"""Kubeconfigs as kubectl reads them: booleans that are booleans, KUBECONFIG lists merged
(first file wins, missing files skipped), relative file references per file, and - over
thousands of derandomized mutations of a complete kubeconfig - never anything but a
UserError naming the problem. The lab tests reach a real API server with these shapes
(tests/integration/test_kubeconfig.py)."""

from __future__ import annotations

import contextlib
import copy
import datetime
import random
import ssl
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from installer.cluster.kube import Kube, connect
from installer.errors import UserError


def _pki(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key (as a CA and as a client certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gki-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp / "pki").mkdir(exist_ok=True)
    crt, pem = tmp / "pki" / "client.crt", tmp / "pki" / "client.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def _kubeconfig(cluster: dict | None = None, user: dict | None = None, *, name: str = "lab",
                current: str | None = "lab") -> dict:
    doc = {"apiVersion": "v1", "kind": "Config",
           "clusters": [{"name": name, "cluster": {"server": "https://127.0.0.1:6443",
                                                    **(cluster or {})}}],
           "users": [{"name": name, "user": user or {"token": "t"}}],
           "contexts": [{"name": name, "context": {"cluster": name, "user": name}}]}
    if current:
        doc["current-context"] = current
    return doc


def _write(path: Path, doc: object) -> str:
    path.write_text(yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))
    return str(path)


def _verifies(k: Kube) -> bool:
    return k.endpoint.pool.connection_pool_kw["cert_reqs"] == ssl.CERT_REQUIRED


@pytest.mark.parametrize("value", ["false", "true", "False", "no", "0", 1, 0, "yes please"])
def test_a_boolean_written_as_anything_but_a_boolean_is_refused_naming_the_field(
        tmp_path, value):
    """`insecure-skip-tls-verify: "false"` turned verification OFF (any non-empty string was
    true); client-go refuses the file (a JSON string into a bool). So does the installer,
    before the kubernetes client's loader (which reads it by truthiness) sees it, whatever
    the credentials."""
    for user in ({"token": "t"}, {"exec": {"command": "aws", "apiVersion": "v1"}}):
        path = _write(tmp_path / "config",
                      _kubeconfig({"insecure-skip-tls-verify": value}, user))
        with pytest.raises(UserError) as err:
            connect(path, None)
        text = str(err.value)
        assert err.value.exit_code == 2 and path in text
        assert "clusters[lab].cluster.insecure-skip-tls-verify" in text
        assert "not a boolean" in text and "without quotes" in text
        if value in ("false", "true"):
            assert f"write insecure-skip-tls-verify: {value} without quotes" in text


@pytest.mark.parametrize(("value", "verifies"), [(False, True), (True, False), (None, True)])
def test_yaml_booleans_mean_what_they_say(tmp_path, value, verifies):
    k = connect(_write(tmp_path / "config", _kubeconfig({"insecure-skip-tls-verify": value})),
                None)
    assert _verifies(k) is verifies


def test_every_boolean_field_and_typed_field_is_checked_and_all_are_reported_at_once(tmp_path):
    doc = _kubeconfig({"disable-compression": "false", "server": 6443},
                      {"exec": {"command": "x", "provideClusterInfo": "true"}})
    doc["preferences"] = {"colors": "yes"}
    with pytest.raises(UserError) as err:
        connect(_write(tmp_path / "config", doc), None)
    messages = [p.message for p in err.value.problems]
    assert len(messages) == 4, messages
    for where in ("clusters[lab].cluster.disable-compression", "clusters[lab].cluster.server",
                  "users[lab].user.exec.provideClusterInfo", "preferences.colors"):
        assert any(m.startswith(where) for m in messages), (where, messages)


def test_two_entries_of_one_name_in_one_file_are_refused(tmp_path):
    doc = _kubeconfig()
    doc["clusters"].append({"name": "lab", "cluster": {"server": "https://10.0.0.1"}})
    with pytest.raises(UserError, match="two entries named 'lab'"):
        connect(_write(tmp_path / "config", doc), None)


def test_kubeconfig_lists_merge_as_kubectl_first_file_wins_missing_files_skipped(
        tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "token").write_text("from-a\n")
    (tmp_path / "b" / "token").write_text("from-b\n")
    first = _kubeconfig({"server": "https://first:6443"}, {"tokenFile": "token"},
                        current=None)
    second = _kubeconfig({"server": "https://second:6443"}, {"tokenFile": "token"},
                         current="lab")
    second["clusters"].append({"name": "extra", "cluster": {"server": "https://extra:1"}})
    second["users"].append({"name": "extra", "user": {"tokenFile": "token"}})
    second["contexts"].append({"name": "extra", "context": {"cluster": "extra",
                                                            "user": "extra"}})
    a = _write(tmp_path / "a" / "config", first)
    b = _write(tmp_path / "b" / "config", second)
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'gone'}:{a}::{b}:{a}")
    k = connect(None, None)  # current-context from b: a sets none
    assert k.context == "lab" and k.files == (a, b)
    assert k.server == "https://first:6443"  # a's cluster 'lab' wins over b's
    assert k.endpoint.auth() == {"Authorization": "Bearer from-a"}  # a's token, a's folder
    extra = connect(None, "extra")  # only b names it: b's token file, from b's folder
    assert extra.server == "https://extra:1"
    assert extra.endpoint.auth() == {"Authorization": "Bearer from-b"}


def test_a_kubeconfig_list_where_no_file_exists_exits_2_naming_each(tmp_path, monkeypatch):
    gone = [str(tmp_path / "one"), str(tmp_path / "two")]
    monkeypatch.setenv("KUBECONFIG", ":".join(gone))
    with pytest.raises(UserError) as err:
        connect(None, None)
    assert err.value.exit_code == 2 and "KUBECONFIG" in str(err.value)
    assert all(g in str(err.value) for g in gone) and "fix:" in str(err.value)


def test_a_broken_file_in_a_kubeconfig_list_is_not_skipped(tmp_path, monkeypatch):
    """kubectl skips a missing file but refuses one it cannot decode: so does the installer."""
    good = _write(tmp_path / "good", _kubeconfig())
    bad = _write(tmp_path / "bad", _kubeconfig({"insecure-skip-tls-verify": "false"}))
    monkeypatch.setenv("KUBECONFIG", f"{good}:{bad}")
    with pytest.raises(UserError, match="insecure-skip-tls-verify") as err:
        connect(None, None)
    assert bad in str(err.value)


# --- fuzzing: no kubeconfig, however malformed, gets anything but a UserError ------------

_JUNK = (None, "", "false", "true", 0, 7, 1.5, True, [], {}, ["x"], {"a": 1}, [{}], "::",
         "https://", "/nonexistent", "~/x", "\x00", "é" * 3)


def _places(doc: object, path: tuple = ()) -> list[tuple]:
    out = [path] if path else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _places(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _places(v, (*path, i))
    return out


def _set(doc: object, path: tuple, value: object, delete: bool = False) -> None:
    for part in path[:-1]:
        doc = doc[part]  # type: ignore[index]
    if delete and isinstance(doc, dict):
        del doc[path[-1]]
    else:
        doc[path[-1]] = value  # type: ignore[index]


def test_mutations_of_a_complete_kubeconfig_never_raise_anything_but_user_error(tmp_path):
    crt, key = _pki(tmp_path)
    complete = _kubeconfig({"certificate-authority": "pki/client.crt",
                            "tls-server-name": "kubernetes", "insecure-skip-tls-verify": False},
                           {"client-certificate": str(crt), "client-key": "pki/client.key"})
    complete["users"].append({"name": "tok", "user": {"token": "t", "tokenFile": "pki/x"}})
    complete["contexts"].append({"name": "tok", "context": {"cluster": "lab", "user": "tok",
                                                            "namespace": "default"}})
    places = _places(complete)
    rng = random.Random(17)
    outcomes = {"connected": 0, "refused": 0}
    for case in range(1500):
        doc = copy.deepcopy(complete)
        for _ in range(rng.choice((1, 1, 2, 3))):
            path = rng.choice(places)
            # (a place an earlier mutation removed is left alone)
            with contextlib.suppress(KeyError, IndexError, TypeError):
                _set(doc, path, rng.choice(_JUNK), delete=rng.random() < 0.2)
        path = _write(tmp_path / "config", doc)
        context = rng.choice((None, "lab", "tok"))
        try:
            connect(path, context)
            outcomes["connected"] += 1
        except UserError as exc:
            assert exc.problems and all(p.message for p in exc.problems), (case, doc)
            outcomes["refused"] += 1
    # Both kinds of outcome are reached: the mutations are neither all harmless nor all fatal.
    assert outcomes["connected"] > 100 and outcomes["refused"] > 500, outcomes
    key.unlink()  # and a file reference that is gone is a message too
    with pytest.raises(UserError, match="does not exist"):
        connect(_write(tmp_path / "config", complete), None)
