"""What a refused or unanswered API request tells the operator: the verb and the resource in
kubectl's words, the exit code, and the fix. The lab tests get these answers from the real
API server (tests/integration/test_kube_access.py)."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import urllib3

from installer.cluster.apierrors import ApiError, ApiUnreachable, refusal_in, request_target
from installer.cluster.kube import Kube
from installer.cluster.kubeauth import Endpoint


@pytest.mark.parametrize(("method", "path", "watch", "want"), [
    ("GET", "/apis/node.k8s.io/v1/runtimeclasses", False,
     ("list", "runtimeclasses.node.k8s.io", "", None)),
    ("GET", "/api/v1/nodes/n1", False, ("get", "nodes", "", "n1")),
    ("GET", "/api/v1/pods", False, ("list", "pods", "", None)),
    ("GET", "/api/v1/namespaces/gpu-operator/pods", True, ("watch", "pods", "gpu-operator", None)),
    ("GET", "/api/v1/namespaces/ns/pods/p/log", False, ("get", "pods/log", "ns", "p")),
    ("GET", "/api/v1/namespaces/kube-system", False, ("get", "namespaces", "", "kube-system")),
    ("PATCH", "/api/v1/nodes/n1", False, ("patch", "nodes", "", "n1")),
    ("POST", "/api/v1/namespaces/kube-system/configmaps", False,
     ("create", "configmaps", "kube-system", None)),
    ("PUT", "/api/v1/namespaces/kube-system/configmaps/c", False,
     ("update", "configmaps", "kube-system", "c")),
    ("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x", False,
     ("delete", "customresourcedefinitions.apiextensions.k8s.io", "", "x")),
    ("GET", "/version", False, ("get", "/version", "", None)),
])
def test_a_request_is_named_as_kubectl_names_it(method, path, watch, want):
    assert request_target(method, path, watch) == want


def _forbidden(resource: str, group: str = "") -> str:
    return json.dumps({"kind": "Status", "status": "Failure", "reason": "Forbidden",
                       "code": 403, "message": f'{resource} is forbidden: User "u" cannot '
                       f'list resource "{resource}" in API group "{group}" at the cluster '
                       "scope"})


def test_403_names_the_verb_the_resource_and_the_scope_and_exits_2():
    e = ApiError(403, "Forbidden", _forbidden("runtimeclasses", "node.k8s.io"), "GET",
                 "/apis/node.k8s.io/v1/runtimeclasses", context="ops", server="https://k:6443")
    text = str(e)
    assert e.exit_code == 2 and e.status == 403
    assert e.summary == ("context 'ops': the context's user may not list "
                         "runtimeclasses.node.k8s.io (cluster-wide)")
    assert "HTTP 403 Forbidden: runtimeclasses is forbidden" in text
    assert "kubectl auth can-i list runtimeclasses.node.k8s.io --all-namespaces" in text
    in_ns = ApiError(403, "Forbidden", "", "GET", "/api/v1/namespaces/gpu-operator/pods")
    assert "may not list pods (namespace gpu-operator)" in in_ns.summary
    assert "kubectl auth can-i list pods -n gpu-operator" in str(in_ns)


def test_401_says_the_credentials_were_rejected_and_exits_2():
    e = ApiError(401, "Unauthorized", '{"kind":"Status","message":"Unauthorized"}', "GET",
                 "/version", context="ops", server="https://k:6443")
    assert e.exit_code == 2
    assert e.summary == "the API server at https://k:6443 rejected the credentials of context 'ops'"
    assert "HTTP 401" in str(e) and "expired token or certificate" in str(e)


def test_404_tells_an_api_the_cluster_does_not_serve_from_a_missing_object():
    gone_api = ApiError(404, "Not Found", "404 page not found", "GET",
                        "/apis/nfd.k8s-sigs.io/v1alpha1/nodefeaturerules")
    assert gone_api.exit_code == 1 and not gone_api.object_missing
    assert "does not serve nodefeaturerules.nfd.k8s-sigs.io" in gone_api.summary
    assert "kubectl api-resources" in str(gone_api)
    missing = ApiError(404, "Not Found", json.dumps({
        "kind": "Status", "reason": "NotFound", "details": {"name": "c", "kind": "configmaps"},
        "message": 'configmaps "c" not found'}), "GET", "/api/v1/namespaces/ns/configmaps/c")
    assert missing.object_missing and missing.summary.startswith("configmaps c (namespace ns)")


def test_a_refusal_quoted_by_helm_is_read_as_the_same_refusal():
    err = ('Error: list: failed to list: secrets is forbidden: User "system:serviceaccount:'
           'kube-system:x" cannot list resource "secrets" in API group "" at the cluster scope')
    refused = refusal_in(err, "ops")
    assert refused is not None and refused.exit_code == 2
    assert refused.read.verb == "list" and refused.read.what == "secrets"
    assert refused.summary == ("context 'ops': the context's user may not list secrets (all "
                               "namespaces): helm keeps its release records in them")
    assert refused.read.said.startswith("list: failed to list: secrets is forbidden")
    assert refusal_in("Error: Kubernetes cluster unreachable", None) is None


def _kube(server: str) -> Kube:
    return Kube(Endpoint(server, urllib3.PoolManager(retries=False), dict), "f", "c")


def test_a_closed_port_is_unreachable_exit_1_naming_the_server_and_the_cause():
    with socket.socket() as s:  # a port nothing listens on once this closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ApiUnreachable) as err:
        _kube(f"https://127.0.0.1:{port}").get_json("/version")
    assert err.value.exit_code == 1
    assert err.value.summary == f"cannot reach the API server at https://127.0.0.1:{port}"
    assert "Connection refused" in str(err.value) and "fix:" in str(err.value)


def test_an_answer_that_is_not_json_or_breaks_off_is_said_not_raised_raw():
    """A server that is not the API server (a web page), and one that closes mid-answer."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]

        def serve(replies: list[bytes]) -> None:
            for reply in replies:
                conn, _ = srv.accept()
                conn.recv(65536)
                conn.sendall(reply)
                conn.close()

        t = threading.Thread(target=serve, args=([
            b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n<html>",
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"items\": ["],), daemon=True)
        t.start()
        k = _kube(f"http://127.0.0.1:{port}")
        with pytest.raises(ApiUnreachable, match="is not JSON"):
            k.get_json("/version")
        with pytest.raises(ApiUnreachable) as err:
            k.get_json("/api/v1/nodes")
        assert err.value.exit_code == 1
        t.join(5)


def test_a_server_that_never_answers_is_given_up_on_not_waited_for_forever(monkeypatch):
    from installer.cluster import kube

    monkeypatch.setattr(kube, "_DEFAULT_TIMEOUT", urllib3.Timeout(connect=1, read=1))
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()  # accepts (the kernel does), never answers
        start = time.monotonic()
        with pytest.raises(ApiUnreachable, match="timed out"):
            _kube(f"http://127.0.0.1:{srv.getsockname()[1]}").get_json("/version")
        assert time.monotonic() - start < 10
