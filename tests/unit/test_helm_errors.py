"""helm's errors become a step failure with helm's whole error, the cause and the exact fix."""

from __future__ import annotations

import pytest

from installer.charts.helm import Helm, helm_version, install_failure
from installer.errors import UserError

TIMEOUT = ('Release "kata-deploy" does not exist. Installing it now.\n'
           "Error: resource DaemonSet/kata-system/kata-deploy not ready. status: InProgress\n"
           "context deadline exceeded")


@pytest.mark.parametrize(("err", "cause", "fix"), [
    ('Error: path "/nope" not found', "could not get the chart", "check kataDeploy.chart"),
    ("Error: template: kata-deploy/templates/x.yaml:21:20: error calling index",
     "rejected the values", "correct kataDeploy.values"),
    ('Error: kata-deploy/templates/x.yaml:3:33\n  executing "kata-deploy/templates/x.yaml" '
     "at <$nfd.image.repository>:\n    can't evaluate field repository in type interface {}",
     "rejected the values", "correct kataDeploy.values"),  # helm 4's words for the same
    (TIMEOUT, "did not become ready", "raise kataDeploy.timeout"),
    ("Error: something new", "helm's own error", "fix the cause and run again"),
])
def test_the_cause_and_fix_follow_helms_error(err, cause, fix):
    failed = install_failure(1, "", err, "kataDeploy", "kata-system")
    assert cause in failed.cause and fix in failed.fix
    assert str(failed).startswith("helm failed: Error:")


def test_a_multi_line_error_is_kept_whole():
    failed = install_failure(1, "", TIMEOUT, "kataDeploy", "kata-system")
    assert str(failed) == ("helm failed: Error: resource DaemonSet/kata-system/kata-deploy not "
                           "ready. status: InProgress context deadline exceeded")
    assert "kubectl get pods -n kata-system" in failed.fix


def fake_helm(tmp_path, says: str, code: int = 0) -> Helm:
    script = tmp_path / "helm"
    script.write_text(f"#!/bin/sh\necho '{says}'\nexit {code}\n")
    script.chmod(0o755)
    return Helm(str(script), "/dev/null", None)


@pytest.mark.parametrize(("says", "code"), [
    ("Client: v2.17.0+ga690bad", 0),  # helm 2: other commands and flags
    ("v5.0.0+g0000000", 0),           # a future major is not assumed to be compatible
    ("", 0),
    ("Error: unknown flag: --short", 1),
])
async def test_a_helm_this_tool_cannot_drive_is_refused_naming_what_it_said(tmp_path, says, code):
    with pytest.raises(UserError) as caught:
        await helm_version(fake_helm(tmp_path, says, code))
    problem = caught.value.problems[0]
    assert "install helm 3 or 4" in problem.fix and (says or "nothing") in problem.message
