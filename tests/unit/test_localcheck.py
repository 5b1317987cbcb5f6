"""`check --local`: output formats and exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

from installer.errors import EXIT_BAD_INPUT, EXIT_CHECKS_FAILED, EXIT_OK
from installer.hosts.checks import CHECK_NAMES
from installer.hosts.localcheck import run_local_check

OURS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "hosts"


def test_json_lists_every_check_and_exits_3_on_failure():
    out = io.StringIO()
    rc = run_local_check(str(OURS / "gpu-host-driver"), True, [], out=out)
    data = json.loads(out.getvalue())
    assert rc == EXIT_CHECKS_FAILED
    assert [d["name"] for d in data] == list(CHECK_NAMES)
    for d in data:
        assert {"name", "status", "evidence", "remedy", "severity", "summary"} <= set(d)
        assert d["status"] in ("pass", "warn", "fail", "skip")
        assert isinstance(d["evidence"], list)


def test_ready_host_exits_0_and_ignores_make_failures_acceptable():
    assert run_local_check(str(OURS / "gpu-vfio-ready"), True, [], out=io.StringIO()) == EXIT_OK
    shared = str(OURS / "gpu-shared-group")
    assert run_local_check(shared, False, [], out=io.StringIO()) == EXIT_CHECKS_FAILED
    out = io.StringIO()
    assert run_local_check(shared, False, ["iommu-group-isolation"], out=out) == EXIT_OK
    assert "fail (ignored)" in out.getvalue()


def test_bad_arguments_exit_2(tmp_path):
    assert run_local_check(str(OURS / "gpu-vfio-ready"), True, ["no-such-check"]) == EXIT_BAD_INPUT
    assert run_local_check(str(tmp_path / "missing"), True, []) == EXIT_BAD_INPUT


def test_table_shows_evidence_and_remedy():
    out = io.StringIO()
    run_local_check(str(OURS / "cloud-gpu-guest"), False, [], out=out)
    text = out.getvalue()
    assert "cpu-virtualization" in text and "dev/kvm: present" in text
    assert "-> Kata can start VMs" in text
