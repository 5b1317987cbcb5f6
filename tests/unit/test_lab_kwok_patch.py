"""The lab's KWOK patch (tests/lab/kwok_patch.py): every edit matches its upstream anchor
exactly once or the build fails with nothing written, and the patch is part of the binaries'
cache key so a changed patch rebuilds kwok."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.lab import kwok_patch

LAB = Path(kwok_patch.__file__).resolve().parent
MODCACHE = Path(os.environ.get("GOMODCACHE") or Path.home() / "go" / "pkg" / "mod")
KWOK_SRC = MODCACHE / "sigs.k8s.io" / "kwok@v0.8.0"


def fake_module(tmp_path: Path) -> Path:
    """Just the anchors, each once, in the two upstream files the patch edits."""
    by_file: dict[str, list[str]] = {}
    for rel, anchor, _new in kwok_patch.EDITS:
        by_file.setdefault(rel, []).append(anchor)
    for rel, anchors in by_file.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("\n// --\n".join(anchors))
    (tmp_path / "go.mod").write_text("module sigs.k8s.io/kwok\n")
    return tmp_path


def test_every_edit_applies_once(tmp_path):
    src = fake_module(tmp_path)
    assert kwok_patch.main(["kwok_patch.py", str(src)]) == 0
    server = (src / kwok_patch.EXEC_GO).read_text()
    assert 'strings.Contains(cmd[0], "/")' in server
    assert server.count("labExitStatus(s.execIn") == 2
    assert "utilexec.CodeExitError{" in server
    assert "_ = inPipe.Close()" in (src / kwok_patch.UTILS_EXEC_GO).read_text()


@pytest.mark.parametrize("times", [0, 2])
def test_an_anchor_not_found_exactly_once_fails_and_writes_nothing(tmp_path, times, capsys):
    src = fake_module(tmp_path)
    rel, anchor, _ = kwok_patch.EDITS[-1]
    (src / rel).write_text(anchor * times)
    before = (src / kwok_patch.EXEC_GO).read_text()
    assert kwok_patch.main(["kwok_patch.py", str(src)]) == 1
    assert f"found {times} times, expected once" in capsys.readouterr().err
    assert (src / kwok_patch.EXEC_GO).read_text() == before


def test_a_missing_module_is_a_usage_error(tmp_path, capsys):
    assert kwok_patch.main(["kwok_patch.py", str(tmp_path)]) == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.skipif(not KWOK_SRC.is_dir(), reason="kwok v0.8.0 not in the Go module cache")
def test_the_patch_matches_the_kwok_the_lab_builds(tmp_path):
    src = tmp_path / "kwok"
    for rel in {rel for rel, _a, _n in kwok_patch.EDITS} | {"go.mod"}:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(KWOK_SRC / rel, src / rel)
    assert kwok_patch.apply(src) == [f"{kwok_patch.EXEC_GO}: 6 edits",
                                     f"{kwok_patch.UTILS_EXEC_GO}: 1 edits"]


def test_the_binaries_cache_key_carries_the_patch():
    build = (LAB / "build.sh").read_text()
    assert 'PATCH_HASH=$(sha256sum "$PATCH"' in build
    assert '-kwok-$KWOK_VERSION-lab-$PATCH_HASH"' in build
    assert '-replace "sigs.k8s.io/kwok=$src"' in build
