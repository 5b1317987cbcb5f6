"""Planted secrets on the lab: a kubeconfig whose user is a ServiceAccount bearer token, a
passphrase-protected copy of the lab's SSH identity, and a sudo password the lab's hosts
really ask for. Tests run the installer with all three and then look for them everywhere
it writes (log, events, terminal, bundle, saved answers) and in every process's argv.

Nothing here puts a secret on a command line either: the token comes from `kubectl create
token`'s stdout, the key is re-encrypted in-process, the sudo hash is made by `openssl
passwd -stdin` - otherwise the `ps` samples would find the test's own leak.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import pytest
import yaml

from tests.lab import hosts
from tests.lab.answers import lab_answers

SUDO_ENV = "GKI_PLANTED_SUDO_PASSWORD"
PASSPHRASE_ENV = "GKI_PLANTED_PASSPHRASE"
SA_NAMESPACE = "kube-system"


def _private_file(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def token_kubeconfig(lab, path: Path, account: str, clusterrole: str = "cluster-admin") -> str:
    """A ServiceAccount bound to `clusterrole` (cluster-wide), and a kubeconfig at `path` that
    uses one of its bearer tokens (TokenRequest API) against the lab's API server. Returns the
    token."""
    lab.kubectl("delete", "clusterrolebinding", account, "--ignore-not-found")
    lab.kubectl("delete", "serviceaccount", account, "-n", SA_NAMESPACE, "--ignore-not-found")
    lab.kubectl("create", "serviceaccount", account, "-n", SA_NAMESPACE)
    lab.kubectl("create", "clusterrolebinding", account, "--clusterrole", clusterrole,
                "--serviceaccount", f"{SA_NAMESPACE}:{account}")
    token = lab.kubectl("create", "token", account, "-n", SA_NAMESPACE,
                        "--duration", "2h").stdout.strip()
    admin = yaml.safe_load(lab.kubeconfig.read_text())
    config = {
        "apiVersion": "v1", "kind": "Config", "clusters": admin["clusters"],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": admin["clusters"][0]["name"],
                                                   "user": account}}],
        "current-context": account,
    }
    _private_file(path, yaml.safe_dump(config).encode())
    return token


def delete_account(lab, account: str) -> None:
    """Deleting the ServiceAccount revokes every token issued for it (the API server then
    answers 401)."""
    lab.kubectl("delete", "clusterrolebinding", account, "--ignore-not-found")
    lab.kubectl("delete", "serviceaccount", account, "-n", SA_NAMESPACE, "--ignore-not-found")


@dataclass
class Planted:
    sudo_password: str
    passphrase: str
    token: str
    kubeconfig: Path
    identity: Path
    env: dict[str, str] = field(repr=False)

    @property
    def values(self) -> dict[str, str]:
        return {"sudo password": self.sudo_password, "key passphrase": self.passphrase,
                "kubeconfig token": self.token}

    def answers(self, info, **kw) -> dict:
        """The lab's answers reaching the cluster and the hosts only through the secrets."""
        data = lab_answers(info, **kw)
        data["cluster"]["kubeconfig"] = str(self.kubeconfig)
        data["ssh"].update(identityFile=str(self.identity), passphraseEnv=PASSPHRASE_ENV,
                           sudo={"mode": "auto", "passwordEnv": SUDO_ENV})
        return data

    def leaks(self, text: str) -> list[str]:
        """Which planted secrets appear in `text` (empty when none does)."""
        return [name for name, value in self.values.items() if value in text]


@pytest.fixture
def planted(lab_bare, tmp_path) -> Iterator[Planted]:
    """All three secrets planted on a bare lab; the hosts' sudo goes back to password-less and
    the ServiceAccount is deleted afterwards."""
    lab = lab_bare
    where = tmp_path / "planted"
    where.mkdir()
    sudo_password = "gki-sudo-" + secrets.token_hex(8)
    passphrase = "gki-pass-" + secrets.token_hex(8)
    identity_src = Path(next(n for n in lab.nodes if n.identity_file).identity_file)
    key = asyncssh.read_private_key(str(identity_src))
    identity = _private_file(where / "id_ed25519",
                             key.export_private_key("openssh", passphrase=passphrase))
    identity.with_suffix(".pub").write_bytes(key.export_public_key("openssh"))
    account = "gki-planted"
    token = token_kubeconfig(lab, where / "kubeconfig", account)
    saved = {}
    for node in lab.nodes:
        root = Path(node.host_root)
        saved[root] = {rel: (root / rel).read_bytes() for rel in ("etc/shadow", "etc/sudoers")}
        hosts.require_sudo_password(root, sudo_password)
    try:
        yield Planted(sudo_password, passphrase, token, where / "kubeconfig", identity,
                      {SUDO_ENV: sudo_password, PASSPHRASE_ENV: passphrase})
    finally:
        for root, files in saved.items():
            for rel, data in files.items():
                (root / rel).write_bytes(data)
        delete_account(lab, account)


class ArgvSampler:
    """Samples `ps -eo args` (every process's command line) in a thread while a run goes on,
    keeping each distinct line: a secret passed as an argument would show up here."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.lines: set[str] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True,
                                 check=False).stdout
            self.lines.update(out.splitlines()[1:])
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> ArgvSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


PLANTED_CHART = {
    "Chart.yaml": "apiVersion: v2\nname: gki-planted\nversion: 0.1.0\n",
    "values.yaml": "registry: {server: nvcr.io, password: '', token: ''}\nmirror: ''\n"
                   "tlsKey: ''\nsettings: ''\n",
    "templates/secret.yaml": """\
apiVersion: v1
kind: Secret
metadata:
  name: gki-planted-credentials
type: Opaque
data:
  password: {{ .Values.registry.password | b64enc | quote }}
  settings.conf: {{ .Values.settings | b64enc | quote }}
stringData:
  token: {{ .Values.registry.token | quote }}
""",
    "templates/configmap.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: gki-planted-config
data:
  mirror.conf: |
    url = {{ .Values.mirror }}
    retries = 3
  tls.key: |
{{ .Values.tlsKey | indent 4 }}
""",
}


@dataclass
class ClusterPlants:
    """Secrets planted in the cluster where a support bundle looks: `strings` must appear in
    none of its files."""

    strings: list[str]
    namespace: str
    log_pod: str

    def leaks(self, text: str) -> list[str]:
        return [s for s in self.strings if s in text]


def _key_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def plant_in_cluster(lab, where: Path, namespace: str = "gpu-operator") -> ClusterPlants:
    """In `namespace` (which must exist): a release of a small chart whose values hold a
    password, a token, a password in a URL and a private key, rendered into a Secret and a
    ConfigMap; a Secret created directly; a pod whose log prints an OpenSSH private key (a
    KWOK Logs object serves the file). Each is read back, so the plant is known to have taken.
    Nothing goes on a command line: values by file, objects on stdin."""
    import base64

    password, token = "gki-pw-" + secrets.token_hex(8), "gki-tok-" + secrets.token_hex(8)
    url_pw, direct = "gki-urlpw-" + secrets.token_hex(8), "gki-direct-" + secrets.token_hex(8)
    # Where only the key-name and Secret rules find them: a Secret's value under a key that
    # names no credential, and the second line of a credential key's multi-line value.
    settings = f"endpoint: https://api.example\nsession {secrets.token_hex(8)}\n"
    multiline = "gki-cred-" + secrets.token_hex(8)
    chart_key = asyncssh.generate_private_key("ssh-rsa", key_size=1024)
    tls_key = chart_key.export_private_key("pkcs8-pem").decode()
    log_key = asyncssh.generate_private_key("ssh-ed25519").export_private_key("openssh").decode()
    chart = where / "gki-planted"
    for rel, text in PLANTED_CHART.items():
        (chart / rel).parent.mkdir(parents=True, exist_ok=True)
        (chart / rel).write_text(text)
    values = _private_file(where / "planted-values.yaml", yaml.safe_dump({
        "registry": {"server": "nvcr.io", "password": password, "token": token},
        "mirror": f"https://gkiuser:{url_pw}@mirror.example/repo", "tlsKey": tls_key,
        "someKey": {"password": password}, "imagePullSecret": token, "settings": settings,
        "credentials": f"user admin\n{multiline}\n"}).encode())
    lab.helm("install", "gki-planted", str(chart), "-n", namespace, "-f", str(values))
    lab.apply({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": "gki-direct", "namespace": namespace},
               "stringData": {"api-key": direct}})
    pod = "gki-keylogger"
    lab.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod,
                                                               "namespace": namespace},
               "spec": {"nodeName": "cpu-node-1",
                        "containers": [{"name": "app", "image": "busybox"}]}})
    log = where / "keylogger.log"
    log.write_text("".join(f"2026-01-01T00:00:0{i % 10}.000000000Z stdout F {line}\n"
                           for i, line in enumerate(["starting", *log_key.splitlines(),
                                                     "loaded key"])))
    lab.apply({"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
               "metadata": {"name": pod, "namespace": namespace},
               "spec": {"logs": [{"containers": ["app"], "logsFile": str(log)}]}})
    lab.wait_for(f"{pod}'s log", lambda: "loaded key" in lab.kubectl(
        "logs", pod, "-n", namespace, check=False).stdout, timeout=60, interval=1)
    stored = lab.kube.get(f"/api/v1/namespaces/{namespace}/secrets/gki-planted-credentials")
    assert base64.b64decode(stored["data"]["token"]).decode() == token
    assert password in lab.helm("get", "values", "gki-planted", "-n", namespace).stdout
    strings = [password, token, url_pw, direct, multiline,
               *(base64.b64encode(s.encode()).decode() for s in (password, token, direct,
                                                                 settings)),
               *_key_lines(tls_key), *_key_lines(log_key)]
    return ClusterPlants(strings, namespace, pod)
