"""The redactor's rules, one planted secret per place a bundle file can hold one: helm
release values (credential keys, a password in a URL), a chart's Secret (data, stringData,
the last-applied annotation), helm's release records, a ConfigMap holding a private key,
pod logs with a PEM block (whole and cut short), bearer tokens and JWTs. What is not a
secret stays readable: it is the bundle's evidence."""

from __future__ import annotations

import base64
import json
import os
import time

import asyncssh
import pytest
import yaml

from installer.redact import MASK, Redactor, is_credential_key

PW = "gki-planted-pw-4e1f"
URL_PW = "gki-url-pw-77aa"
TOKEN = "gki-planted-token-0c3d"
JWT = ("eyJhbGciOiJSUzI1NiIsImtpZCI6ImdraSJ9.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0."
       "c2lnbmF0dXJlLW9mLXRoZS10b2tlbg")
KEY = asyncssh.generate_private_key("ssh-rsa", key_size=1024)
PEMS = {fmt: KEY.export_private_key(fmt).decode() for fmt in ("pkcs1-pem", "pkcs8-pem",
                                                               "openssh")}


def body_lines(pem: str) -> list[str]:
    """The lines that carry the key: any one of them in a bundle is a leak."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def leaks(text: str, *, pems: tuple[str, ...] = tuple(PEMS.values())) -> list[str]:
    found = [s for s in (PW, URL_PW, TOKEN, JWT, base64.b64encode(PW.encode()).decode())
             if s in text]
    return found + [line for pem in pems for line in body_lines(pem) if line in text]


@pytest.mark.parametrize("key", ["password", "registry.password", "imagePullSecret",
                                 "imagePullSecrets", "api_key", "apiKey", "AWS_SECRET_ACCESS_KEY",
                                 "credentials", "privateKey", "accessKey", "auth", "Authorization",
                                 "tls-private-key", "token", "passwd", "passphrase", "cookie"])
def test_credential_keys(key):
    assert is_credential_key(key)


@pytest.mark.parametrize("key", ["name", "mode", "repository", "passwordEnv", "passphraseEnv",
                                 "sandboxWorkloads", "version", "image"])
def test_keys_that_are_not_credentials(key):
    assert not is_credential_key(key)


HELM_VALUES = f"""\
someKey:
  password: {PW}
registry:
  server: nvcr.io
  password: {PW}
  auth:
    token: {TOKEN}
imagePullSecret: {PW}
driver:
  repository: https://gkiuser:{URL_PW}@mirror.example/nvidia
  version: 550.90.07
sandboxWorkloads:
  mode: kubevirt
"""


def test_helm_release_values_lose_every_credential_and_keep_the_rest():
    out = Redactor().file("releases/gpu-operator-gpu-operator.values.yaml", HELM_VALUES)
    assert leaks(out) == []
    values = yaml.safe_load(out)
    assert values["registry"] == {"server": "nvcr.io", "password": MASK,
                                  "auth": {"token": MASK}}
    assert values["driver"] == {"repository": f"https://gkiuser:{MASK}@mirror.example/nvidia",
                                "version": "550.90.07"}
    assert values["sandboxWorkloads"] == {"mode": "kubevirt"}


MANIFEST = f"""\
---
# Source: planted/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: planted-credentials
  namespace: gpu-operator
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{{"stringData":{{"token":"{TOKEN}"}}}}'
type: Opaque
data:
  password: {base64.b64encode(PW.encode()).decode()}
stringData:
  token: {TOKEN}
---
# Source: planted/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: planted-config
data:
  mirror.conf: |
    url = https://gkiuser:{URL_PW}@mirror.example/
    retries = 3
  key.pem: |
{chr(10).join("    " + line for line in PEMS["pkcs8-pem"].splitlines())}
"""


def test_a_manifests_secrets_keep_only_name_type_and_keys():
    out = Redactor().file("releases/gpu-operator-planted.manifest.yaml", MANIFEST)
    assert leaks(out) == []
    assert "# Source: planted/templates/secret.yaml" in out  # the manifest's map stays
    secret, config = yaml.safe_load_all(out)
    assert secret == {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                      "metadata": {"name": "planted-credentials", "namespace": "gpu-operator"},
                      "data": {"password": MASK}, "stringData": {"token": MASK}}
    assert "retries = 3" in config["data"]["mirror.conf"]  # evidence beside the secret stays


def test_helm_release_records_lose_their_payload_in_a_secret_or_a_configmap():
    payload = base64.b64encode(json.dumps({"config": {"password": PW}}).encode()).decode()
    listed = {"kind": "SecretList", "items": [  # items of a list carry no kind
        {"metadata": {"name": "sh.helm.release.v1.planted.v1", "labels": {"owner": "helm"}},
         "type": "helm.sh/release.v1", "data": {"release": payload}}]}
    as_configmap = {"kind": "ConfigMap", "metadata": {"name": "sh.helm.release.v1.planted.v2"},
                    "data": {"release": payload}}
    r = Redactor()
    for obj in (listed, as_configmap):
        out = r.file("cluster/objects.json", json.dumps(obj))
        assert payload not in out and PW not in out
        assert '"release": "***REDACTED***"' in out and "sh.helm.release.v1.planted" in out


@pytest.mark.parametrize("fmt", PEMS)
def test_private_keys_in_a_pod_log_whole_or_cut_short(fmt):
    pem = PEMS[fmt]
    lines = pem.splitlines()
    log = f"starting\n{pem}\nloaded key\n"
    cut = "starting\n" + "\n".join(lines[: len(lines) // 2]) + "\n"  # a tail ends mid-key
    r = Redactor()
    for text in (log, cut, json.dumps({"log": log})):  # and inside a JSON string
        out = r.file("logs/gpu-operator/pod.log", text)
        assert leaks(out, pems=(pem,)) == [], out
        assert "starting" in out
    assert "loaded key" in r.text(log)


def test_tokens_and_passwords_in_free_text():
    text = (f"Authorization: Bearer {TOKEN}\nsent token {JWT} to the server\n"
            f"helm pull oci://bob:{URL_PW}@registry.example/charts/x\n"
            f"DB_PASSWORD={PW} api_key: '{TOKEN}'\n")
    out = Redactor().text(text)
    assert leaks(out) == [], out
    assert "oci://bob:" in out and "@registry.example/charts/x" in out


def test_a_file_that_does_not_parse_is_still_redacted_as_text():
    broken = f"password: {PW}\n  - [unbalanced\ntoken: {TOKEN}\n"
    for name in ("values.yaml", "values.json"):
        assert leaks(Redactor().file(name, broken)) == []


def test_a_megabyte_of_base64_in_a_log_is_redacted_in_linear_time():
    """A helm release payload or a binary ConfigMap in a log is one long line: a pattern that
    backtracks over it quadratically took minutes and hung the bundle."""
    blob = base64.b64encode(os.urandom(750_000)).decode()
    started = time.monotonic()
    out = Redactor().file("logs/x.log", f"payload {blob}\npassword={PW}\n")
    assert time.monotonic() - started < 10
    assert blob in out and PW not in out
