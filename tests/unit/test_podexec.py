"""pods/exec through the API server's WebSocket protocol (installer.cluster.podexec) against
a fake server on 127.0.0.1 that frames as the real one does (tests/unit/fakeexec.py)."""

from __future__ import annotations

import asyncio
import time

import pytest
import yaml

from installer.cluster.apierrors import ApiError
from installer.cluster.kube import Kube
from installer.cluster.kubeauth import endpoint
from installer.cluster.kubeconfig import load_kubeconfig
from installer.cluster.podexec import V4, V5, exec_in_pod, exit_status_of
from tests.unit.fakeexec import FakeExecServer, status


def _kube(tmp_path, server: FakeExecServer, user: dict | None = None) -> Kube:
    """A context read as the installer reads it, pointing at the fake server."""
    (tmp_path / "token").write_text("file-token\n")
    config = {"contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
              "clusters": [{"name": "k", "cluster": {"server": server.url}}],
              "users": [{"name": "u", "user": user or {"tokenFile": "token"}}]}
    (tmp_path / "config").write_text(yaml.safe_dump(config))
    return Kube(endpoint(load_kubeconfig(str(tmp_path / "config")), "c"), "config", "c")


def _shell(argv: list[str], stdin: bytes) -> tuple[bytes, bytes, int | str]:
    """Echo stdin back, say the argv on stderr, exit 3."""
    return stdin, " ".join(argv).encode(), 3


@pytest.fixture
def server():
    s = FakeExecServer(_shell)
    yield s
    s.close()


@pytest.mark.parametrize("protocols", [(V5, V4), (V4,)])
async def test_stdin_reaches_the_command_and_its_output_and_exit_code_come_back(
        tmp_path, server, protocols):
    server.protocols = protocols
    script = b"echo hi\n" * 20000 + b"exit $?\n"  # several stdin messages
    r = await exec_in_pod(_kube(tmp_path, server), "gki", "host-n1",
                          ["chroot", "/host", "sh", "-s"], script, container="host")
    assert (r.exit_status, r.stdout, r.stderr, r.protocol) == (
        3, script, b"chroot /host sh -s", protocols[0])
    req = server.requests[-1]
    assert req["path"] == "/api/v1/namespaces/gki/pods/host-n1/exec"
    assert req["query"]["command"] == ["chroot", "/host", "sh", "-s"]
    assert req["query"]["container"] == ["host"] and req["query"]["stdin"] == ["true"]


async def test_the_upgrade_carries_the_contexts_impersonation_and_token_file(tmp_path, server):
    kube = _kube(tmp_path, server, {"tokenFile": "token", "as": "ops", "as-groups": ["a", "b"]})
    await exec_in_pod(kube, "gki", "p", ["true"], b"exit $?\n")
    headers = server.requests[-1]["headers"]
    assert headers["authorization"] == ["Bearer file-token"]
    assert headers["impersonate-user"] == ["ops"]
    assert headers["impersonate-group"] == ["a", "b"]


async def test_a_refused_exec_names_the_verb_and_the_resource(tmp_path, server):
    server.refuse = (403, {"kind": "Status", "status": "Failure", "reason": "Forbidden",
                           "message": 'pods "p" is forbidden: User "u" cannot create '
                           'resource "pods/exec" in API group "" in the namespace "gki"'})
    with pytest.raises(ApiError) as err:
        await exec_in_pod(_kube(tmp_path, server), "gki", "p", ["true"], b"")
    text = str(err.value) + " ".join(p.render() for p in err.value.problems)
    assert "may not create pods/exec (namespace gki)" in text
    assert "kubectl auth can-i create pods --subresource exec -n gki" in text
    assert err.value.exit_code == 2


async def test_a_command_that_never_ends_times_out_without_an_exit_status(tmp_path, server):
    server.hang = True
    r = await exec_in_pod(_kube(tmp_path, server), "gki", "p", ["sh"], b"exit $?\n",
                          timeout=0.5)
    assert r.exit_status is None and r.timed_out


async def test_cancelling_the_caller_ends_the_stream_at_once(tmp_path, server):
    server.hang = True
    task = asyncio.ensure_future(exec_in_pod(_kube(tmp_path, server), "gki", "p", ["sh"],
                                             b"exit $?\n", timeout=60))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 3


async def test_a_command_the_container_cannot_run_is_a_failure_with_the_servers_words(
        tmp_path, server):
    server.behaviour = lambda argv, stdin: (b"", b"", 'exec: "chroot": executable file not '
                                            'found in $PATH')
    r = await exec_in_pod(_kube(tmp_path, server), "gki", "p", ["chroot"], b"exit $?\n")
    assert r.exit_status is None and "executable file not found" in r.failure


@pytest.mark.parametrize(("code", "expected"), [(0, (0, "")), (1, (1, "")), (255, (255, ""))])
def test_the_error_channels_status_gives_the_exit_code(code, expected):
    assert exit_status_of(status(code)) == expected


def test_a_failure_without_an_exit_code_keeps_its_message():
    assert exit_status_of({"status": "Failure", "reason": "NonZeroExitCode",
                           "message": "odd"}) == (None, "odd")
