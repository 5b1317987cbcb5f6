"""installer.charts.helm's reads and its rollback against the lab's API server, with the real helm 4
and helm 3: every release listed (no 256 cap), values read for the managed releases only
(counted by a wrapper first on PATH that logs each argv and execs the real helm), and a
rollback through the engine's mutation point that the release's history then shows.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from installer.charts import helm
from tests.lab.binaries import _run_script

pytestmark = pytest.mark.lab

MAJORS = [("helm", "v4."), ("helm3", "v3.")]


def tiny_chart(root: Path, name: str) -> Path:
    """A chart of one ConfigMap holding its values: quick to install, nothing to schedule."""
    chart = root / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: 1.0.0-rc.1\n")
    (chart / "values.yaml").write_text("note: default\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-values\n"
        "data:\n  note: {{ .Values.note | quote }}\n")
    return chart


def logging_helm(tmp_path: Path, real: Path) -> tuple[Path, Path]:
    """A `helm` that appends its argv (one JSON list a line) to a log and execs `real`."""
    bindir, log = tmp_path / "bin", tmp_path / "helm-argv.jsonl"
    bindir.mkdir()
    wrapper = bindir / "helm"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' \"$@\" >> {log}\n"
        f"exec {shlex.quote(str(real))} \"$@\"\n")
    wrapper.chmod(0o755)
    return bindir, log


def real_helm(binary: str) -> Path:
    return _run_script("tools.sh", None) / binary


@pytest.mark.parametrize(("binary", "major"), MAJORS)
async def test_list_reads_every_release_and_only_the_managed_values(
        lab_bare, tmp_path, monkeypatch, binary, major):
    lab = lab_bare
    kd_chart, other = tiny_chart(tmp_path, "kata-deploy"), tiny_chart(tmp_path, "unrelated")
    installs = [("kd-by-chart", "kata-system", kd_chart), ("my-operator", "gpu-operator", other),
                ("unrelated-a", "default", other), ("unrelated-b", "team-b", other)]
    for name, ns, chart in installs:
        lab.helm("install", name, str(chart), "-n", ns, "--create-namespace",
                 "--set", f"note=for-{name}")
    bindir, log = logging_helm(tmp_path, real_helm(binary))
    monkeypatch.setenv("PATH", f"{bindir}:{lab.env['PATH']}")
    monkeypatch.delenv("GPU_KATA_HELM", raising=False)
    h = helm.find_helm(str(lab.kubeconfig), None)
    assert h.binary == str(bindir / "helm")
    assert (await helm.helm_version(h)).startswith(major)
    log.unlink()

    found = {r.name: r for r in await helm.list_releases(h, managed=("my-operator",))}

    assert set(found) == {name for name, _, _ in installs}
    assert (found["kd-by-chart"].chart, found["kd-by-chart"].version) == ("kata-deploy",
                                                                          "1.0.0-rc.1")
    assert found["kd-by-chart"].values == {"note": "for-kd-by-chart"}  # managed by its chart
    assert found["my-operator"].values == {"note": "for-my-operator"}  # by the answers' name
    assert found["unrelated-a"].values == {} and found["unrelated-b"].values == {}
    assert found["unrelated-b"].namespace == "team-b" and found["unrelated-b"].status == "deployed"
    argvs = [json.loads(line) for line in log.read_text().splitlines()]
    (listing,) = [a for a in argvs if a[0] == "list"]
    assert listing[listing.index("--max") + 1] == "0"
    assert sorted(a[2] for a in argvs if a[:2] == ["get", "values"]) == ["kd-by-chart",
                                                                        "my-operator"]
    assert len(argvs) == 3
