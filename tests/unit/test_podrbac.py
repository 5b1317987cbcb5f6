"""Pod mode's permissions (installer.hosts.podrbac): the list, the SelfSubjectAccessReview
check that names every missing one, and the namespace's Pod Security level."""

from __future__ import annotations

import pytest

from installer.errors import EXIT_BAD_INPUT, UserError
from installer.hosts.podrbac import (
    ENFORCE,
    SSAR_PATH,
    check_pod_mode,
    namespace_step,
    pod_mode_permissions,
    rbac_manifests,
)


class ReviewingKube:
    """Answers SelfSubjectAccessReviews: allowed unless (verb, resource/sub) is denied."""

    context = "ops"

    def __init__(self, denied: set[tuple[str, str]]) -> None:
        self.denied, self.reviews = denied, []

    def send_json(self, method: str, path: str, body: dict, *_: str) -> dict:
        assert (method, path) == ("POST", SSAR_PATH)
        attrs = body["spec"]["resourceAttributes"]
        self.reviews.append(attrs)
        what = attrs["resource"] + (f"/{attrs['subresource']}" if "subresource" in attrs
                                    else "")
        return {**body, "status": {"allowed": (attrs["verb"], what) not in self.denied}}


def test_the_list_covers_the_pod_its_exec_its_log_and_the_namespace():
    got = {(p.verb, p.what, p.namespace) for p in pod_mode_permissions("gki")}
    assert {("create", "pods", "gki"), ("get", "pods", "gki"), ("delete", "pods", "gki"),
            ("create", "pods/exec", "gki"), ("get", "pods/log", "gki"),
            ("create", "namespaces", "")} <= got
    assert ("get", "pods/exec", "gki") not in got
    assert ("get", "pods/exec", "gki") in {
        (p.verb, p.what, p.namespace) for p in pod_mode_permissions("gki", exec_by_get=True)}


def test_the_roles_grant_every_permission_on_the_list():
    namespace, role, cluster_role = rbac_manifests("gki")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == \
        "privileged"  # made as the installer makes it: used as is, never relabelled
    granted = {(v, r, role["metadata"]["namespace"]) for rule in role["rules"]
               for r in rule["resources"] for v in rule["verbs"]}
    granted |= {(v, r, "") for rule in cluster_role["rules"] for r in rule["resources"]
                for v in rule["verbs"]}
    for p in pod_mode_permissions("gki", exec_by_get=True):
        assert (p.verb, p.what, p.namespace) in granted, p


def test_a_user_with_every_permission_passes_and_each_was_asked_once():
    kube = ReviewingKube(set())
    check_pod_mode(kube, "gki")  # type: ignore[arg-type]
    assert len(kube.reviews) == len(pod_mode_permissions("gki"))
    assert {"verb": "create", "resource": "pods", "group": "", "namespace": "gki",
            "subresource": "exec"} in kube.reviews


def test_missing_permissions_are_all_named_with_verb_resource_and_fix():
    kube = ReviewingKube({("create", "pods/exec"), ("delete", "pods")})
    with pytest.raises(UserError) as err:
        check_pod_mode(kube, "gki")  # type: ignore[arg-type]
    assert err.value.exit_code == EXIT_BAD_INPUT and "context 'ops'" in err.value.summary
    said = [p.render() for p in err.value.problems]
    assert len(said) == 2
    assert "may not create pods/exec (namespace gki)" in said[1]
    assert "kubectl auth can-i create pods --subresource exec -n gki" in said[1]
    assert "may not delete pods (namespace gki)" in said[0]


def test_the_namespace_is_created_privileged_when_missing():
    step, body = namespace_step("gki", None)
    assert step == "create" and body["metadata"]["labels"][ENFORCE] == "privileged"


@pytest.mark.parametrize(("labels", "expected"), [
    ({ENFORCE: "privileged"}, "use"),
    ({}, "use"),  # the cluster's default decides
    ({"app.kubernetes.io/managed-by": "gpu-kata-installer", ENFORCE: "baseline"}, "label"),
])
def test_an_existing_namespace_is_used_or_labelled_only_when_it_is_the_installers(
        labels, expected):
    assert namespace_step("gki", {"metadata": {"labels": labels}})[0] == expected


def test_an_operators_namespace_that_enforces_less_is_refused_with_the_label_command():
    with pytest.raises(UserError) as err:
        namespace_step("ops", {"metadata": {"labels": {ENFORCE: "baseline"}}})
    problem = err.value.problems[0]
    assert problem.where == "hostAccess.namespace" and "'baseline'" in problem.message
    assert f"kubectl label namespace ops {ENFORCE}=privileged" in problem.fix


def test_a_namespace_made_beforehand_spares_the_user_creating_or_labelling_one():
    needed = {(p.verb, p.resource) for p in pod_mode_permissions("gki", ns_step="use")}
    assert ("create", "namespaces") not in needed and ("patch", "namespaces") not in needed
    assert ("get", "namespaces") in needed and ("create", "pods") in needed
    made_here = {(p.verb, p.resource) for p in pod_mode_permissions("gki", ns_step="create")}
    assert ("create", "namespaces") in made_here and ("patch", "namespaces") not in made_here
    labelled = {(p.verb, p.resource) for p in pod_mode_permissions("gki", ns_step="label")}
    assert ("patch", "namespaces") in labelled and ("create", "namespaces") not in labelled
