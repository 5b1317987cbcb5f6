"""helm's errors become a step failure with helm's whole error, the cause and the exact fix."""

from __future__ import annotations

import pytest

from installer.helm import install_failure

TIMEOUT = ('Release "kata-deploy" does not exist. Installing it now.\n'
           "Error: resource DaemonSet/kata-system/kata-deploy not ready. status: InProgress\n"
           "context deadline exceeded")


@pytest.mark.parametrize(("err", "cause", "fix"), [
    ('Error: path "/nope" not found', "could not get the chart", "check kataDeploy.chart"),
    ("Error: template: kata-deploy/templates/x.yaml:21:20: error calling index",
     "rejected the values", "correct kataDeploy.values"),
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
