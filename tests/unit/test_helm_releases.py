"""Which listed releases discovery reads the values of, and helm list's `chart` field split."""

from __future__ import annotations

import pytest

from installer.charts.helm import manages, split_chart
from installer.cluster.facts import ReleaseFacts


@pytest.mark.parametrize(("field", "name", "version"), [
    ("kata-deploy-3.29.0", "kata-deploy", "3.29.0"),
    ("gpu-operator-v26.3.0", "gpu-operator", "v26.3.0"),
    ("gpu-operator-v26.3.0-rc.1", "gpu-operator", "v26.3.0-rc.1"),  # rpartition gave "rc.1"
    ("my-2fa-chart-1.0.0+build.7", "my-2fa-chart", "1.0.0+build.7"),
    ("odd-chart-latest", "odd-chart", "latest"),  # not SemVer: the last dash, as before
])
def test_the_chart_field_splits_at_the_version(field, name, version):
    assert split_chart(field) == (name, version)


def release(name: str, chart: str) -> ReleaseFacts:
    return ReleaseFacts(name=name, namespace="ns", chart=chart, version="1.0.0", status="deployed")


def test_managed_releases_are_the_installers_charts_and_the_answers_names():
    assert manages(release("anything", "kata-deploy"))
    assert manages(release("ops", "gpu-operator"))
    assert manages(release("gpu-operator", "mirrored-operator"))  # the default release name
    assert manages(release("kd-mirror", "kd-copy"), ("kd-mirror", "op"))
    assert not manages(release("kd-mirror", "kd-copy"))
    assert not manages(release("postgres", "postgresql"), ("kd-mirror", "op"))
