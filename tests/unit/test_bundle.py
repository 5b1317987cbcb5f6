"""The support bundle holds the evidence and the summaries, and never a planted secret."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

from installer.diagnosis.bundle import write_bundle
from installer.diagnosis.rules import Finding
from installer.redact import Redactor

FINDING = Finding("sandbox-mode-not-kata", "GPU pods Pending", "mode is 'kubevirt'",
                  ("ClusterPolicy spec.sandboxWorkloads = {'mode': 'kubevirt'}",),
                  "set sandboxWorkloads.mode=kata", 96)
ROOT = Path(__file__).resolve().parents[2]


def read(path) -> dict[str, str]:
    with tarfile.open(path) as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode() for m in tar
                if m.isfile()}


def test_bundle_has_evidence_summaries_and_no_secrets(tmp_path):
    redactor = Redactor()
    redactor.add("hunter2-sudo-pass")
    files = {"logs/run.log": "sudo -S <<< hunter2-sudo-pass\nAuthorization: Bearer eyJtoken.x",
             "cluster/clusterpolicy.yaml": "sandboxWorkloads: {mode: kubevirt}"}
    path = write_bundle(tmp_path / "b.tar.gz", files, [FINDING], redactor)
    assert path.stat().st_mode & 0o077 == 0
    content = read(path)
    assert "kubevirt" in content["cluster/clusterpolicy.yaml"]
    assert "mode is 'kubevirt'" in content["SUMMARY.md"]
    assert "<h2>mode is &#x27;kubevirt&#x27;</h2>" in content["summary.html"]
    everything = "".join(content.values())
    assert "hunter2-sudo-pass" not in everything and "eyJtoken" not in everything


def test_a_directory_gets_the_bundle_inside_it_with_the_default_name(tmp_path):
    path = write_bundle(tmp_path, {"a.txt": "x"}, [FINDING], Redactor())
    assert path.parent == tmp_path and path.name.startswith("gpu-kata-bundle-")
    assert path.name.endswith(".tar.gz") and read(path)["a.txt"] == "x"


def test_a_regular_file_is_replaced_whole_and_no_temporary_file_is_left(tmp_path):
    old = tmp_path / "b.tar.gz"
    old.write_text("an older bundle")
    write_bundle(old, {"a.txt": "new"}, [FINDING], Redactor())
    assert read(old)["a.txt"] == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tar.gz"]


WRITE_TOO_BIG = """
import resource, signal, sys
from pathlib import Path
from installer.diagnosis.bundle import write_bundle
from installer.errors import UserError
from installer.redact import Redactor
from tests.unit.test_bundle import FINDING
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    write_bundle(Path(sys.argv[1]), {"big.bin": __import__("os").urandom(200_000).hex()},
                 [FINDING], Redactor())
except UserError as exc:
    print(exc.exit_code, exc)
"""


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary_one(tmp_path):
    """A real failed write (the file size limit, as a full disk would): exit 1 with the
    cause; the file named keeps its old bytes."""
    old = tmp_path / "b.tar.gz"
    old.write_text("an older bundle")
    out = subprocess.run([sys.executable, "-c", WRITE_TOO_BIG, str(old)], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert out.stdout.startswith(f"1 could not write the bundle {old}"), out.stdout + out.stderr
    assert "file too large" in out.stdout and "fix:" in out.stdout
    assert old.read_text() == "an older bundle"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tar.gz"]


def test_the_html_summary_escapes_outside_text_and_the_files_keep_it_whole(tmp_path):
    """A log line in a finding's evidence is someone else's text: in the HTML summary it is
    escaped (no element of its own), in findings.json it is the line as the pod wrote it."""
    line = "validator: <script>alert(1)</script> & \x1b[2J\x1b]0;pwned\x07"
    finding = Finding("host-driver-loaded", "validator crash-loops", "<b>driver</b> loaded",
                      (line,), "bind to vfio-pci", 90)
    files = {"findings.json": json.dumps([finding.to_json()])}
    content = read(write_bundle(tmp_path / "b.tar.gz", files, [finding], Redactor()))
    html = content["summary.html"]
    assert "<script>" not in html and "<b>driver" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in html
    assert json.loads(content["findings.json"])[0]["evidence"] == [line]
