"""No module under screens/ is over 400 lines (the developer rule "no screens module over
~400 lines").

Why a test: a screen or widget that grows past that mixes concerns (the table widget reached
808 lines holding its row model, its drawing and its cursor at once) and is then split in a
hurry; failing here names the file while the split is still small. Split by concern, as
screens/widgets/keyedtable.py and its tablemodel, tablelines and tablecursor modules are.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def too_long(root: Path, limit: int = MAX_LINES) -> dict[str, int]:
    """Each .py file under `root` with more than `limit` lines, and its line count."""
    found: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        count = len(path.read_text(encoding="utf-8").splitlines())
        if count > limit:
            found[str(path.relative_to(root.parent))] = count
    return found


def test_the_count_finds_a_long_module(tmp_path):
    pkg = tmp_path / "screens"
    (pkg / "widgets").mkdir(parents=True)
    (pkg / "short.py").write_text("x = 1\n" * MAX_LINES)
    (pkg / "widgets" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert too_long(pkg) == {"screens/widgets/long.py": MAX_LINES + 1}


def test_no_screens_module_is_over_400_lines():
    files = list((ROOT / "screens").rglob("*.py"))
    assert ROOT / "screens" / "widgets" / "keyedtable.py" in files and len(files) > 10
    assert too_long(ROOT / "screens") == {}
