"""The support bundle holds the evidence and the summaries, and never a planted secret."""

from __future__ import annotations

import json
import tarfile

from installer.bundle import write_bundle
from installer.diagnose import Finding
from installer.redact import Redactor

FINDING = Finding("sandbox-mode-not-kata", "GPU pods Pending", "mode is 'kubevirt'",
                  ("ClusterPolicy spec.sandboxWorkloads = {'mode': 'kubevirt'}",),
                  "set sandboxWorkloads.mode=kata", 96)


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
