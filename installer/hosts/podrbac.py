"""What pod mode needs from the API server, stated and checked before anything is created:
the permissions (a list the README and the error quote), a SelfSubjectAccessReview per
permission (the question `kubectl auth can-i` asks, answered for the context's user -
impersonation included), and the namespace's Pod Security level.

Pod Security admission: a privileged hostPID pod with a hostPath volume is admitted only
where `pod-security.kubernetes.io/enforce` is `privileged` (or the cluster's default for an
unlabelled namespace is). The installer's own namespace is created with that label (a
change the plan shows) or labelled when it made it and the label is missing; an operator's
namespace is never relabelled (that would weaken its policy behind the operator's back): one
that enforces less is refused with the command that labels it, one without the label is
used as is (the cluster's default decides, and a refusal names PodSecurity).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from installer.cluster.kube import Kube
from installer.errors import EXIT_BAD_INPUT, Problem, UserError
from installer.hosts.podaccess import MANAGED_BY

ENFORCE = "pod-security.kubernetes.io/enforce"
PRIVILEGED_LABELS = {ENFORCE: "privileged", "pod-security.kubernetes.io/warn": "privileged",
                     "pod-security.kubernetes.io/audit": "privileged"}
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
NamespaceStep = Literal["create", "label", "use"]


@dataclass(frozen=True)
class Permission:
    verb: str
    resource: str
    why: str
    namespace: str = ""  # "" cluster-wide
    subresource: str = ""
    name: str = ""

    @property
    def what(self) -> str:
        return self.resource + (f"/{self.subresource}" if self.subresource else "")

    @property
    def scope(self) -> str:
        return f"namespace {self.namespace}" if self.namespace else "cluster-wide"

    @property
    def check(self) -> str:
        sub = f" --subresource {self.subresource}" if self.subresource else ""
        name = f"/{self.name}" if self.name else ""
        return (f"kubectl auth can-i {self.verb} {self.resource}{name}{sub}"
                + (f" -n {self.namespace}" if self.namespace else ""))


def pod_mode_permissions(namespace: str, *, exec_by_get: bool = False,
                         ns_step: NamespaceStep | None = None) -> tuple[Permission, ...]:
    """Every permission pod mode uses in `namespace` (pure). `exec_by_get`: API servers
    before 1.31 authorize the exec WebSocket's upgrade (a GET) as `get pods/exec`; later ones
    as `create`, as for kubectl's own exec. `ns_step`: what the run does to the namespace
    (namespace_step) when known - creating or labelling it is asked for only when it is
    needed, so a namespace an administrator made beforehand (`rbac` prints it) spares the
    user both; None: all of them (the statement of what pod mode may need)."""
    ns = namespace
    perms = [
        Permission("get", "namespaces", "read its Pod Security label", name=ns),
        *([Permission("create", "namespaces", "create it, labelled privileged, when missing")]
          if ns_step in (None, "create") else []),
        *([Permission("patch", "namespaces", "label the installer's own namespace "
                      "privileged", name=ns)] if ns_step in (None, "label") else []),
        Permission("delete", "namespaces", "uninstall removes the installer's own namespace",
                   name=ns),
        Permission("create", "pods", "the per-node host-access pod", ns),
        Permission("get", "pods", "wait for it to run", ns),
        Permission("list", "pods", "find leftovers of an interrupted run by label", ns),
        Permission("delete", "pods", "remove it after the run (graceful, never forced)", ns),
        Permission("create", "pods", "run the probe and fixes in it", ns, "exec"),
        Permission("get", "pods", "say why a host-access pod failed", ns, "log"),
    ]
    if exec_by_get:
        perms.append(Permission("get", "pods", "the exec WebSocket before Kubernetes 1.31",
                                ns, "exec"))
    return tuple(perms)


def rbac_manifests(namespace: str, subject: str = "gpu-kata-installer"
                   ) -> list[dict[str, Any]]:
    """The namespace (labelled as the installer makes it), a Role (its pods) and a
    ClusterRole (the namespace itself) that grant exactly pod_mode_permissions: what an
    administrator can apply for a restricted user."""
    rules_ns = [{"apiGroups": [""], "resources": ["pods"],
                 "verbs": ["create", "get", "list", "delete"]},
                {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]
    rules_cluster = [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]},
                     {"apiGroups": [""], "resources": ["namespaces"], "resourceNames":
                      [namespace], "verbs": ["get", "patch", "delete"]}]
    meta = {"labels": {MANAGED_BY[0]: MANAGED_BY[1]}}
    _, the_namespace = namespace_step(namespace, None)
    assert the_namespace is not None
    return [
        the_namespace,
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": f"{subject}-host-access", "namespace": namespace, **meta},
         "rules": rules_ns},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": f"{subject}-host-access-namespace", **meta},
         "rules": rules_cluster},
    ]


def review(permission: Permission) -> dict[str, Any]:
    attrs = {"verb": permission.verb, "resource": permission.resource, "group": ""}
    attrs |= {k: v for k, v in (("namespace", permission.namespace), ("subresource",
              permission.subresource), ("name", permission.name)) if v}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}


def missing_permissions(kube: Kube, permissions: Iterable[Permission]) -> list[Permission]:
    """The permissions the API server says the context's user lacks (one review each; a
    review creates nothing, as `kubectl auth can-i`)."""
    return [p for p in permissions
            if not (kube.send_json("POST", SSAR_PATH, review(p)).get("status") or {})
            .get("allowed")]


def refusal(missing: list[Permission], context: str | None) -> UserError:
    """Every missing permission at once: which verb on which resource, why, and the fix."""
    ctx = f"context '{context}'" if context else "the context"
    return UserError(f"{ctx} may not do what hostAccess: pod needs", [Problem(
        "hostAccess", f"the context's user may not {p.verb} {p.what} ({p.scope}): {p.why}",
        "grant it (`gpu-kata-installer rbac` prints a Role and ClusterRole that do), "
        f"check: {p.check}; or use hostAccess: ssh") for p in missing], EXIT_BAD_INPUT)


def check_pod_mode(kube: Kube, namespace: str, *, exec_by_get: bool = False,
                   ns_step: NamespaceStep | None = None) -> None:
    """Raise the refusal when any permission is missing (before any pod is created)."""
    missing = missing_permissions(kube, pod_mode_permissions(namespace, exec_by_get=exec_by_get,
                                                             ns_step=ns_step))
    if missing:
        raise refusal(missing, kube.context)


def namespace_step(namespace: str, found: dict[str, Any] | None
                   ) -> tuple[NamespaceStep, dict[str, Any] | None]:
    """What to do about the namespace before its privileged pods (pure): ("create", the
    Namespace), ("label", the merge patch) for the installer's own namespace without the
    label, ("use", None); raises UserError for an operator's namespace that enforces a
    level below privileged."""
    if found is None:
        return "create", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": namespace, "labels": {MANAGED_BY[0]: MANAGED_BY[1], **PRIVILEGED_LABELS}}}
    labels = (found.get("metadata") or {}).get("labels") or {}
    level = labels.get(ENFORCE)
    if level == "privileged":
        return "use", None
    if labels.get(MANAGED_BY[0]) == MANAGED_BY[1]:
        return "label", {"metadata": {"labels": PRIVILEGED_LABELS}}
    if level is None:
        return "use", None
    raise UserError(f"namespace {namespace} does not admit privileged pods", [Problem(
        "hostAccess.namespace", f"it enforces Pod Security level '{level}' ({ENFORCE}); "
        "the host-access pod is privileged, with hostPID and the host's root mounted",
        f"`kubectl label namespace {namespace} {ENFORCE}=privileged --overwrite`, or set "
        "hostAccess.namespace to a namespace of its own (the installer creates it)")])
