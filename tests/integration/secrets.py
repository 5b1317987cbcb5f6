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
