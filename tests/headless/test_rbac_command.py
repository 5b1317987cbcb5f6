"""`rbac`: what pod mode needs, printed as manifests an administrator applies - the namespace
named in the answers, and exactly the permissions the installer checks."""

from __future__ import annotations

from pathlib import Path

import yaml

from installer.hosts.podrbac import pod_mode_permissions
from tests.headless.test_cli import ROOT, cli


def test_rbac_prints_the_namespace_role_and_clusterrole_for_the_answers_namespace(tmp_path):
    data = yaml.safe_load((ROOT / "installer/examples/answers.yaml").read_text())
    data["hostAccess"] = {"mode": "pod", "namespace": "host-tools"}
    answers = Path(tmp_path / "answers.yaml")
    answers.write_text(yaml.safe_dump(data))
    run = cli("rbac", "--answers", str(answers))
    assert run.returncode == 0, run.stderr
    namespace, role, cluster_role = yaml.safe_load_all(run.stdout)
    assert (namespace["kind"], namespace["metadata"]["name"]) == ("Namespace", "host-tools")
    assert role["metadata"]["namespace"] == "host-tools"
    assert cluster_role["rules"][1]["resourceNames"] == ["host-tools"]
    for p in pod_mode_permissions("host-tools", exec_by_get=True):  # each one, stated
        assert f"#   {p.verb} {p.what} ({p.scope}): {p.why}" in run.stdout


def test_rbac_names_a_bad_answers_file_without_a_traceback(tmp_path):
    bad = tmp_path / "answers.yaml"
    bad.write_text("hostAccess: sideways\n")
    run = cli("rbac", "--answers", str(bad))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "hostAccess" in run.stderr + run.stdout
