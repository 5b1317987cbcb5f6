"""What the API server's refusals mean to the operator: which request (verb, resource,
namespace) it refused, and what to do about it.

Why one module: every read and write goes through `installer.cluster.kube`, so an error status there
becomes an `ApiError` that already says, in kubectl's words, what the context's user may not
do - one mechanism, not a message per call site. An `ApiError` is a `UserError`, so one that
nobody expects (a 403 mid-run, a 404 for an API group the cluster does not serve) reaches the
operator as a message with its exit code instead of a traceback; a caller that expects a
status (404 for "not there yet", 409, 410) catches it first. `ReadError` is the same refusal
as a fact: troubleshooting reports what it could not read as findings instead of stopping.
No urllib3 here: helm's refusals (installer.charts.helm) say the same things without it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from installer.errors import EXIT_BAD_INPUT, EXIT_STEP_FAILED, Problem, UserError

# Resources with no namespace: a refusal is "cluster-wide", not "in all namespaces".
_CLUSTER_SCOPED = frozenset({
    "nodes", "namespaces", "persistentvolumes", "runtimeclasses", "clusterpolicies",
    "customresourcedefinitions", "clusterroles", "clusterrolebindings", "storageclasses",
    "apiservices", "nvidiadrivers"})

# What the installer reads, and why an operator would grant it (fixes say so).
PURPOSE = {"secrets": "helm keeps its release records in them"}


@dataclass(frozen=True)
class ReadError:
    """A request the API server refused: what it was, and its answer. Troubleshooting draws
    its findings from a partial view then, and the reader must be told which part is
    missing; an install refuses to plan without it."""

    namespace: str  # "" for a cluster-wide request
    what: str  # the resource as kubectl names it: "pods", "runtimeclasses.node.k8s.io"
    status: int
    reason: str
    verb: str = "list"
    said: str = ""  # the API server's own message

    @property
    def resource(self) -> str:
        return self.what.split(".", 1)[0].split("/", 1)[0]

    @property
    def where(self) -> str:
        if self.namespace:
            return f"namespace {self.namespace}"
        return "the cluster" if self.resource in _CLUSTER_SCOPED else "all namespaces"

    @property
    def scope(self) -> str:
        """As the operator would say it: (cluster-wide), (all namespaces), (namespace x)."""
        return "cluster-wide" if self.where == "the cluster" else self.where

    @property
    def refused(self) -> str:
        """What the context's user may not do, or what the API server does not serve."""
        if self.status == 404:
            return f"the API server does not serve {self.what} ({self.scope})"
        if self.status == 401:
            return "the API server rejected the context's credentials"
        purpose = f": {PURPOSE[self.resource]}" if self.resource in PURPOSE else ""
        if self.status == 403:
            return f"the context's user may not {self.verb} {self.what} ({self.scope}){purpose}"
        return (f"the API server could not {self.verb} {self.what} ({self.scope}): HTTP "
                f"{self.status} {self.reason}{purpose}")

    @property
    def check(self) -> str:
        """The kubectl command that asks the API server the same question."""
        what, _, sub = self.what.partition("/")
        scope = f"-n {self.namespace}" if self.namespace else "--all-namespaces"
        return (f"kubectl auth can-i {self.verb} {what}" + (f" --subresource {sub}" if sub
                                                            else "") + f" {scope}")

    @property
    def fix(self) -> str:
        if self.status == 404:
            return (f"check that the cluster serves it (`kubectl api-resources` lists "
                    f"{self.resource}): an API group whose CRDs are not installed, or an "
                    "aggregated API that is down, answers 404")
        if self.status == 401:
            return ("refresh the credentials (expired token or certificate?) or use another "
                    "context")
        if self.status == 403:
            return (f"use a context allowed to {self.verb} {self.what} in {self.where}, or "
                    f"grant it (check: {self.check})")
        return "check the API server's health (`kubectl get --raw /readyz?verbose`) and retry"

    @property
    def exit_code(self) -> int:
        """Credentials and rights are the operator's input; anything else is the cluster."""
        return EXIT_BAD_INPUT if self.status in (401, 403) else EXIT_STEP_FAILED

    def problem(self) -> Problem:
        said = f": {self.said}" if self.said else ""
        return Problem("cluster.context",
                       f"{self.refused} - HTTP {self.status} {self.reason}{said}", self.fix)

    def __str__(self) -> str:
        return f"{self.where}: cannot {self.verb} {self.what} (HTTP {self.status} {self.reason})"


def _server_message(body: str) -> tuple[str, dict]:
    """The message and details of a Kubernetes Status body (plain text bodies as they are)."""
    try:
        status = json.loads(body)
    except ValueError:
        return body.strip()[:300], {}
    if not isinstance(status, dict):
        return body.strip()[:300], {}
    return str(status.get("message") or ""), status.get("details") or {}


_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def request_target(method: str, path: str, watch: bool = False
                   ) -> tuple[str, str, str, str | None]:
    """(verb, resource as kubectl names it, namespace, object name) of an API path:
    GET /apis/node.k8s.io/v1/runtimeclasses -> ("list", "runtimeclasses.node.k8s.io", "",
    None). A path outside /api and /apis (/version) is its own resource."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return method.lower(), path, "", None
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    resource = (rest[0] if rest else "") + (f".{group}" if group else "")
    name = rest[1] if len(rest) > 1 else None
    if len(rest) > 2:
        resource += "/" + rest[2]
    if method == "GET":
        verb = "watch" if watch else "get" if name else "list"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = _VERBS.get(method, method.lower())
    return verb, resource, namespace, name


class Refused(UserError):
    """A request the API server refused, as the operator's error and as the fact it is
    (`read`): a reader that can go on without it keeps the fact instead."""

    def __init__(self, read: ReadError, summary: str) -> None:
        self.read = read
        super().__init__(summary, [read.problem()], read.exit_code)


# How the API server words a refusal (client-go passes it on: helm's errors quote it).
_FORBIDDEN = re.compile(r'cannot (\w+) resource "([^"]+)" in API group "([^"]*)"'
                        r'(?: in the namespace "([^"]+)")?')


def refusal_in(text: str, context: str | None) -> Refused | None:
    """The API server's 403, quoted in a client's error (helm's), as a Refused."""
    found = _FORBIDDEN.search(text)
    if found is None:
        return None
    verb, resource, group, namespace = found.groups()
    line = text[text.rfind("\n", 0, found.start()) + 1:].split("\n", 1)[0]
    said = line.strip().removeprefix("Error: ")[:300]
    read = ReadError(namespace or "", resource + (f".{group}" if group else ""), 403,
                     "Forbidden", verb, said)
    ctx = f"context '{context}'" if context else "the context"
    return Refused(read, f"{ctx}: {read.refused}")


class ApiError(Refused):
    """The API server answered a request with an error status (401, 403, 404, 409, 410...).

    `summary` and `problems` say which request, in kubectl's words, and the fix; the exit
    code is 2 for credentials and rights (401, 403), 1 for the rest."""

    def __init__(self, status: int, reason: str, body: str, method: str = "GET",
                 path: str = "", *, watch: bool = False, context: str | None = None,
                 server: str = "") -> None:
        self.status, self.reason, self.body = status, reason, body
        said, details = _server_message(body)
        verb, what, namespace, name = request_target(method, path, watch)
        # A missing object is a NotFound Status naming it; a 404 for anything else means the
        # API server does not serve the resource at all (its group or CRD is not there).
        self.object_missing = status == 404 and bool(name) and details.get("name") == name
        read = ReadError(namespace, what, status, reason, verb, said)
        ctx = f"context '{context}'" if context else "the context"
        at = f" at {server}" if server else ""
        if self.object_missing:
            summary = f"{what} {name} ({read.scope}) not found on the API server{at}"
        elif status == 401:
            summary = f"the API server{at} rejected the credentials of {ctx}"
        else:
            summary = f"{ctx}: " + read.refused
        super().__init__(read, summary)


class ApiUnreachable(UserError):
    """The API server could not be reached or did not answer (connection refused, a timeout,
    a reset, a TLS failure): the cause with the server's URL. Exit 1 - the cluster or the
    network - except a certificate the kubeconfig's CA does not vouch for (exit 2: the
    kubeconfig names the wrong CA or address)."""

    def __init__(self, server: str, cause: str, *, bad_certificate: bool = False) -> None:
        self.server, self.cause = server, cause
        if bad_certificate:
            fix = ("the server's certificate is not signed by the kubeconfig's certificate "
                   "authority, or does not name the server's address: use the cluster's own "
                   "CA (`kubectl config view --raw` on a machine that reaches it) and its "
                   "address")
        else:
            fix = "check that the cluster is up and the kubeconfig's server address is right"
        super().__init__(f"cannot reach the API server at {server}",
                         [Problem("cluster.context", cause, fix)],
                         EXIT_BAD_INPUT if bad_certificate else EXIT_STEP_FAILED)


def reads_refused(context: str | None, server: str, unread: tuple[ReadError, ...]
                  ) -> UserError:
    """One error for every read discovery needed and did not get: the operator grants all
    of them at once instead of meeting them one run at a time."""
    rights = any(e.exit_code == EXIT_BAD_INPUT for e in unread)  # said before the cluster's
    ctx = f"context '{context}'" if context else "the context"
    return UserError(f"{ctx} cannot read what the installer needs from the API server at "
                     f"{server}", [e.problem() for e in unread],
                     EXIT_BAD_INPUT if rights else EXIT_STEP_FAILED)
