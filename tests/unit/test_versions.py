"""Versions are read by one parser (the semver library) and decide by one set of rules: the
parse, and what the compatibility table, the image values and the answers make of
pre-release and unknown versions (installer/answers/versions.py says why each is the safe side)."""

from __future__ import annotations

import pytest

from installer.answers.model import parse_answers
from installer.answers.versions import (
    KATA_DEPLOY_VERSIONS,
    chart_has,
    defect_in,
    fixed_in,
    parse,
    release_of,
)
from installer.charts.compat import findings
from installer.charts.registry import kata_deploy_image_values
from installer.cluster.facts import NodeFacts
from installer.errors import UserError
from remote.fixes.kubelet_gate import _needed
from tests.unit.test_answers import BASE


@pytest.mark.parametrize(("text", "want"), [
    ("3.30.0", (3, 30, 0, None, None)),
    ("v26.7.0", (26, 7, 0, None, None)),
    ("3.30.0-rc.1", (3, 30, 0, "rc.1", None)),
    ("v26.3.1-rc.2+build.7", (26, 3, 1, "rc.2", "build.7")),
    ("1.0.0+20260101", (1, 0, 0, None, "20260101")),
])
def test_a_chart_version_parses_with_an_optional_v_prerelease_and_build(text, want):
    assert parse(text).to_tuple() == want


@pytest.mark.parametrize("text", [
    None, "", "latest", "3.30", "3", "v", "vv3.30.0", "3.30.0\n", " 3.30.0", "01.2.3",
    "3.30.0-", "3.30.0+", "\u0663.29.0", "sha256:" + "0" * 64, "3.30.0.1", "V3.30.0",
])
def test_anything_else_is_not_a_version(text):
    assert parse(text) is None


def test_precedence_is_semver_a_prerelease_before_its_release_build_metadata_ignored():
    order = ["3.29.0", "3.30.0-alpha", "3.30.0-rc.1", "3.30.0-rc.2", "3.30.0-rc.10", "3.30.0",
             "3.30.1", "4.0.0"]
    assert sorted(order[::-1], key=parse) == order
    assert parse("3.30.0+a").compare(parse("3.30.0+b")) == 0
    assert parse("v26.7.0") == parse("26.7.0")


@pytest.mark.parametrize(("text", "want"), [
    ("containerd://2.3.0", "2.3.0"),
    ("containerd://1.7.27-0ubuntu1", "1.7.27"),  # a package revision, not a pre-release
    ("containerd://1.7.24~ds1", "1.7.24"),  # Debian's: not SemVer at all
    ("v1.33.1+k3s1", "1.33.1"),
    ("v1.30.4-eks-a737599", "1.30.4"),
    ("1.34.0-rc.1", "1.34.0"),
    ("cri-o://1.31.0", "1.31.0"),
    ("containerd://", None), ("unknown", None), (None, None), ("1.34", None),
])
def test_a_runtime_or_kubelet_version_is_its_leading_release(text, want):
    found = release_of(text)
    assert (str(found) if found else None) == want


def test_the_three_rules_at_prereleases():
    rc = parse("3.30.0-rc.1")
    assert not fixed_in(rc, "3.30.0") and fixed_in(rc, "3.29.0")  # a fix: not in the rc
    assert defect_in(parse("v26.3.0-rc.1"), "v26.3.0", "v26.3.3")  # a defect: in the rc
    assert defect_in(parse("v26.3.3"), "v26.3.0", "v26.3.3")
    assert not defect_in(parse("v26.3.4-rc.1"), "v26.3.0", "v26.3.3")
    assert not defect_in(parse("v26.2.9"), "v26.3.0", "v26.3.3")
    assert chart_has("3.32.0-rc.1", "3.32.0") and not chart_has("3.31.0", "3.32.0")
    assert chart_has(None, "3.32.0")  # unknown: the newest; an older chart ignores the keys


def node(runtime: str = "containerd://2.1.4", kubelet: str = "v1.33.4") -> NodeFacts:
    return NodeFacts("gpu-1", kubelet_version=kubelet, container_runtime=runtime)


def test_kata_deploy_3_30_0_rc_1_is_in_the_verified_range_but_not_a_verified_version():
    """3.29.0 <= 3.30.0-rc.1 <= 4.1.0 by precedence, so it is no row's outsider; but it is not
    one of the versions tested (a warning), and on containerd 2.3 it is refused: config
    version 4 arrived in 3.30.0, and which release candidate had it is not known."""
    rc = parse("3.30.0-rc.1")
    assert parse(KATA_DEPLOY_VERSIONS[0]) < rc < parse(KATA_DEPLOY_VERSIONS[-1])
    (unverified,) = findings("3.30.0-rc.1", "v26.7.0", [node()])
    assert unverified.level == "warn" and "not a version this installer" in unverified.text
    refused = [f for f in findings("3.30.0-rc.1", "v26.7.0", [node("containerd://2.3.0")])
               if f.level == "refuse"]
    assert [f.text for f in refused] == [
        "kata-deploy 3.30.0-rc.1 cannot configure containerd 2.3 or newer (config version 4) "
        "on gpu-1"]
    assert not [f for f in findings("3.30.0", "v26.7.0", [node("containerd://2.3.0")])
                if f.level == "refuse"]


def test_a_k3s_fix_of_3_32_0_is_not_assumed_in_its_release_candidate():
    k3s = [node(kubelet="v1.33.4+k3s1")]
    assert any("drop-in" in f.text for f in findings("3.32.0-rc.1", "v26.7.0", k3s))
    assert not any("drop-in" in f.text for f in findings("3.32.0", "v26.7.0", k3s))


@pytest.mark.parametrize(("operator", "named"), [
    ("v26.3.0-rc.1", True), ("v26.3.3", True), ("v26.3.4-rc.1", False), ("v26.7.0", False)])
def test_the_operators_prestop_defect_is_named_for_builds_on_the_way_to_its_releases(
        operator, named):
    assert any("preStop" in f.text for f in findings("4.1.0", operator, [node()])) is named


def test_rows_read_up_to_v26_7_0_apply_to_its_candidates_not_to_the_next_ones():
    k0s = [NodeFacts("gpu-1", kubelet_version="v1.33.4+k0s",
                     container_runtime="containerd://2.1.4")]
    assert any("kubelet on" in f.text for f in findings("4.1.0", "v26.7.0-rc.1", k0s))
    assert not any("kubelet on" in f.text for f in findings("4.1.0", "v26.7.1-rc.1", k0s))


def test_an_unknown_version_is_said_not_silently_passed():
    """A local chart given without a version: the table cannot be looked up, so no row is
    applied - and that is a warning, not silence."""
    rows = findings(None, None, [node("containerd://2.3.0")])
    assert [(f.level, f.path) for f in rows] == [("warn", "kataDeploy.version"),
                                                 ("warn", "gpuOperator.version")]
    assert "could not be checked" in rows[0].text and "Chart.yaml" in rows[0].fix


def test_answers_take_prereleases_and_build_metadata_and_refuse_the_rest():
    def kd(version: str) -> str:
        return parse_answers(BASE.replace("kataDeploy: {version: 3.29.0}",
                                          f"kataDeploy: {{version: '{version}'}}")
                             ).kata_deploy.version

    assert kd("3.30.0-rc.1") == "3.30.0-rc.1" and kd("4.1.0+build.3") == "4.1.0+build.3"
    for bad, said in (("3.29.0-rc.1", "too old"), ("3.28.9", "too old"),
                      ("3.30", "not a chart version"), ("v3.30.0", "without a leading 'v'")):
        with pytest.raises(UserError) as info:
            kd(bad)
        assert said in str(info.value.problems[0].message), bad


def test_image_values_follow_the_chart_for_prereleases_and_unknown_versions():
    from installer.answers.model import Images

    mirror = Images(registry="registry.example.com/mirror")
    for version, monitor in (("3.31.0", False), ("3.32.0-rc.1", True), (None, True)):
        assert ("monitor" in kata_deploy_image_values(version, mirror)) is monitor, version


def test_the_kubelet_gate_is_on_by_default_from_1_34_and_an_unknown_kubelet_needs_it():
    assert not _needed(None, "v1.34.0-rc.1")  # a 1.34 build: on by default
    assert not _needed(None, "v1.35.2+k3s1")
    assert _needed(None, "v1.33.9") and _needed(None, None) and _needed(None, "unknown")
    assert _needed(False, "v1.35.0") and not _needed(True, "v1.20.0")
