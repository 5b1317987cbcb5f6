"""`rbac`: print what pod mode needs from the API server as manifests an administrator can
review and apply - the Role and ClusterRole that grant exactly the permissions the
installer checks before its first host-access pod (installer.hosts.podrbac), nothing more."""

from __future__ import annotations

from pathlib import Path

import yaml

from installer.answers.model import HOST_ACCESS_NAMESPACE, load_answers
from installer.hosts.podrbac import pod_mode_permissions, rbac_manifests


def rbac_text(namespace: str) -> str:
    needed = "\n".join(f"#   {p.verb} {p.what} ({p.scope}): {p.why}"
                       for p in pod_mode_permissions(namespace, exec_by_get=True))
    head = (f"# What hostAccess: pod needs, for the namespace {namespace}:\n{needed}\n"
            "# Apply, then bind both to the user or group that runs the installer, e.g.\n"
            f"#   kubectl create rolebinding gpu-kata-installer-host-access -n {namespace} "
            "--role gpu-kata-installer-host-access --user NAME\n"
            "#   kubectl create clusterrolebinding gpu-kata-installer-host-access-namespace "
            "--clusterrole gpu-kata-installer-host-access-namespace --user NAME\n"
            "# (the Role's namespace must exist first: kubectl create namespace "
            f"{namespace})\n")
    return head + yaml.safe_dump_all(rbac_manifests(namespace), sort_keys=False)


def run_rbac(answers_path: Path | None) -> int:
    namespace = (load_answers(answers_path).host_access.namespace if answers_path
                 else HOST_ACCESS_NAMESPACE)
    print(rbac_text(namespace), end="")
    return 0
