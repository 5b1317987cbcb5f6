"""Bad kubeconfigs, as an operator meets them: missing, a directory, unreadable, not text, not
YAML, not a kubeconfig, no current context, an unknown context, a missing certificate file,
and - against the lab's real API server - a revoked ServiceAccount token and an expired client
certificate. Through both entry points (an install's discovery and `troubleshoot`), each one
exits 2 with a message naming the problem and the fix, never a traceback."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.secrets import delete_account, token_kubeconfig
from tests.lab.answers import lab_answers

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]


def _admin(lab) -> dict:
    return yaml.safe_load(lab.kubeconfig.read_text())


def _write(path: Path, config: object) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def _with_user(lab, path: Path, user: dict) -> Path:
    config = _admin(lab)
    config["users"] = [{"name": config["users"][0]["name"], "user": user}]
    return _write(path, config)


def missing(lab, tmp: Path) -> Path:
    return tmp / "nope" / "config"


def directory(lab, tmp: Path) -> Path:
    (tmp / "kube").mkdir()
    return tmp / "kube"


def unreadable(lab, tmp: Path) -> Path:
    """Mode 000; as root (which reads anything) a file that is not text stands in for it."""
    path = _write(tmp / "config", _admin(lab))
    if os.geteuid() == 0:
        path.write_bytes(b"\x00\xff\xfe\x80 not text")
    else:
        path.chmod(0)
    return path


def garbage(lab, tmp: Path) -> Path:
    path = tmp / "config"
    path.write_text("apiVersion: v1\nkind: Config\nusers: @nope\n")
    return path


def alias_bomb(lab, tmp: Path) -> Path:
    """The lab's own kubeconfig with a billion laughs appended: the kubernetes client's loader
    would expand it (yaml.safe_load builds shared lists, its merging walks them)."""
    from tests.unit.test_yamlload import billion_laughs

    path = tmp / "config"
    path.write_text(lab.kubeconfig.read_text() + billion_laughs())
    return path


def a_list(lab, tmp: Path) -> Path:
    return _write(tmp / "config", [_admin(lab)])


def no_current_context(lab, tmp: Path) -> Path:
    config = _admin(lab)
    del config["current-context"]
    return _write(tmp / "config", config)


def missing_certificate(lab, tmp: Path) -> Path:
    return _with_user(lab, tmp / "config", {"client-certificate": str(tmp / "gone.crt"),
                                            "client-key": str(tmp / "gone.key")})


def revoked_token(lab, tmp: Path) -> Path:
    """A ServiceAccount token whose account is then deleted: the API server answers 401."""
    token_kubeconfig(lab, tmp / "config", "gki-revoked")
    delete_account(lab, "gki-revoked")
    return tmp / "config"


def expired_certificate(lab, tmp: Path) -> Path:
    """A client certificate signed by the lab's own CA (so only its dates are wrong) that
    expired yesterday."""
    ca_path = Path(_admin(lab)["clusters"][0]["cluster"]["certificate-authority"])
    # The lab's admin certificate names the CA as its issuer (the CA's own certificate has a
    # serial number newer cryptography refuses to parse).
    admin = Path(_admin(lab)["users"][0]["user"]["client-certificate"])
    issuer = x509.load_pem_x509_certificate(admin.read_bytes()).issuer
    ca_key = serialization.load_pem_private_key(ca_path.with_suffix(".key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "gki-expired")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=2))
            .not_valid_after(now - datetime.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    (tmp / "client.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "client.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return _with_user(lab, tmp / "config", {"client-certificate": str(tmp / "client.crt"),
                                            "client-key": str(tmp / "client.key")})


CASES: dict[str, tuple[Callable[..., Path], str | None, tuple[str, ...]]] = {
    # name: (kubeconfig builder, context, words the message must hold besides the path)
    "missing": (missing, None, ("not found", "KUBECONFIG")),
    "directory": (directory, None, ("is a directory", "the kubeconfig file itself")),
    "unreadable": (unreadable, None, ("cannot be read",)),
    "not-yaml": (garbage, None, ("not valid YAML", "line 3", "'@'")),
    "alias-bomb": (alias_bomb, None, ("is not read", "aliases expand", "alias bomb")),
    "not-a-mapping": (a_list, None, ("not a kubeconfig",)),
    "no-current-context": (no_current_context, None, ("current-context",)),
    "unknown-context": (lambda lab, tmp: lab.kubeconfig, "nope",
                        ("unknown context 'nope'", "use one of: kwok-lab")),
    "missing-certificate": (missing_certificate, None, ("gone.crt",)),
    "revoked-token": (revoked_token, None, ("rejected the credentials", "401", "expired")),
    "expired-certificate": (expired_certificate, None,
                            ("rejected the credentials", "401", "certificate")),
}


def _cli(lab, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **lab.env, "XDG_STATE_HOME": str(tmp / "state"),
           "KUBECONFIG": str(tmp / "not-this-one")}
    return subprocess.run([sys.executable, "-m", "installer", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_kubeconfig_exits_2_naming_the_problem_and_the_fix(lab, tmp_path, case):
    build, context, words = CASES[case]
    kubeconfig = build(lab, tmp_path)
    answers = lab_answers(lab.info)
    answers["cluster"] = {"kubeconfig": str(kubeconfig), "context": context}
    (tmp_path / "answers.yaml").write_text(yaml.safe_dump(answers))
    runs = {
        "install": lambda: _cli(lab, tmp_path, "--answers", str(tmp_path / "answers.yaml"),
                                "--dry-run"),
        "troubleshoot": lambda: _cli(lab, tmp_path, "troubleshoot", "--json", "--kubeconfig",
                                     str(kubeconfig), *(["--context", context] if context
                                                        else [])),
    }
    for entry, run in runs.items():
        out = run()
        if case == "revoked-token" and out.returncode == 0:
            # honoured until the API server's ServiceAccount cache sees the deletion
            out = lab.wait_for("the revoked token refused",
                               lambda run=run: (r := run()).returncode != 0 and r, timeout=30)
        assert out.returncode == 2, (entry, out.stdout[-2000:], out.stderr)
        assert "Traceback" not in out.stderr + out.stdout, entry
        message = out.stderr
        assert "error:" in message and "fix:" in message, (entry, message)
        for word in words:
            assert word in message, (entry, word, message)
        if case not in ("unknown-context", "revoked-token", "expired-certificate"):
            assert str(kubeconfig) in message, (entry, message)
