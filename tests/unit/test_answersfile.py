"""The wizard's save edits the operator's file: comments, order, quoting and unchanged values
survive; defaults are not added; secrets never written; the result loads to the same answers."""

from __future__ import annotations

import difflib
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from installer.answers.model import parse_answers, validate_answers
from installer.answers.save import answers_text, save_answers
from screens.state import WizardState, answers_data

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "installer" / "examples" / "answers.yaml").read_text()

SHORT = """\
# Lab cluster, kept by hand.
apiVersion: gpu-kata-installer.io/v1alpha1
kind: Answers

ssh:
  user: 'ops'   # the deploy user
  # port is the default

kataDeploy:
  version: "3.29.0"    # pinned: the verified one
gpuOperator:
  version: v26.3.1
"""


def edited(text: str, change) -> str:
    data = answers_data(parse_answers(text))
    change(data)
    answers = validate_answers(data)
    out = answers_text(answers, text)
    assert parse_answers(out) == answers  # what is written loads to the very same answers
    return out


def changed_lines(before: str, after: str) -> list[str]:
    return [ln for ln in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                              lineterm="", n=0)
            if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


def test_a_save_of_unchanged_answers_leaves_the_file_byte_identical():
    assert answers_text(parse_answers(EXAMPLE), EXAMPLE) == EXAMPLE
    assert answers_text(parse_answers(SHORT), SHORT) == SHORT


def test_one_changed_value_changes_that_line_only_keeping_its_comment():
    out = edited(EXAMPLE, lambda d: d["ssh"].update(user="deploy"))
    assert changed_lines(EXAMPLE, out) == [
        "-  user: ops                  # SSH user on the GPU hosts (per node overrides below)",
        "+  user: deploy               # SSH user on the GPU hosts (per node overrides below)",
    ]


def test_a_changed_value_keeps_its_quoting_and_no_default_is_added():
    out = edited(SHORT, lambda d: (d["ssh"].update(user="deploy"),
                                   d["kataDeploy"].update(version="4.1.0")))
    # Each comment keeps its column while there is room.
    assert changed_lines(SHORT, out) == [
        "-  user: 'ops'   # the deploy user", "+  user: 'deploy' # the deploy user",
        '-  version: "3.29.0"    # pinned: the verified one',
        '+  version: "4.1.0"     # pinned: the verified one',
    ]
    for default_key in ("port:", "sample:", "hostFixes:", "namespace:", "useAgent:"):
        assert default_key not in out


def test_a_new_key_goes_where_the_model_orders_it_and_a_default_beside_it_does_not():
    def change(d):
        d["ssh"]["port"] = 2222
        d["ssh"]["sudo"] = {"mode": "password", "passwordEnv": "SUDO_PASSWORD"}
        d["images"] = {"registry": "registry.example.com/mirror"}

    out = edited(SHORT, change)
    assert changed_lines(SHORT, out) == [
        "+  port: 2222", "+  sudo:", "+    mode: password", "+    passwordEnv: SUDO_PASSWORD",
        "+images:", "+  registry: registry.example.com/mirror",
    ]
    # After user's block, comment lines included: they were written below it.
    assert out.index("user: 'ops'") < out.index("# port is") < out.index("port: 2222")


def test_a_cleared_key_is_removed_and_the_comment_lines_below_it_stay():
    out = edited(EXAMPLE, lambda d: d["ssh"].pop("identityFile"))
    assert changed_lines(EXAMPLE, out) == ["-  identityFile: ~/.ssh/id_ed25519"]
    out = edited(EXAMPLE, lambda d: d["cluster"].update(kubeconfig=None, context="prod"))
    assert changed_lines(EXAMPLE, out) == ["-  kubeconfig: ~/.kube/config", "+  context: prod"]
    assert "  # context: my-cluster\n\nssh:" in out


def test_nodes_are_matched_by_name_so_a_nodes_comment_stays_with_it():
    def change(d):
        d["nodes"]["items"] = [i for i in d["nodes"]["items"] if i["name"] != "gpu-node-1"]
        d["nodes"]["items"].append({"name": "gpu-node-4", "choice": "leave"})

    out = edited(EXAMPLE, change)
    assert changed_lines(EXAMPLE, out) == [
        "-    - name: gpu-node-1", "-      choice: kata           # kata | traditional | leave",
        "+    - name: gpu-node-4", "+      choice: leave",
    ]
    assert "choice: kata\n      # address: 192.0.2.12" in out  # gpu-node-2's comment


def test_an_empty_inline_list_gets_its_items_inline_before_its_comment():
    out = edited(EXAMPLE, lambda d: d["checks"].update(ignore=["consumer-gpu"]))
    assert changed_lines(EXAMPLE, out) == [
        "-  ignore: []                 # check names to accept on purpose, e.g. [consumer-gpu]",
        "+  ignore: [consumer-gpu]     # check names to accept on purpose, e.g. [consumer-gpu]",
    ]


def test_a_new_file_holds_only_non_default_values_and_the_pinned_chart_versions():
    answers = parse_answers(EXAMPLE)
    out = answers_text(answers)
    assert parse_answers(out) == answers
    data = yaml.safe_load(out)
    assert data["kataDeploy"] == {"version": "3.29.0"}  # pinned though it is the default
    assert data["ssh"] == {"user": "ops", "identityFile": "~/.ssh/id_ed25519"}
    assert not {"hostFixes", "sample", "checks", "images"} & set(data)


def test_a_default_is_left_out_only_where_the_model_still_reads_the_same():
    """The GPU Operator chart's default is the NGC repository with `name: gpu-operator`; a
    changed repository still needs that name written, though it equals the default's."""
    data = answers_data(parse_answers(EXAMPLE))
    data["gpuOperator"]["chart"]["repo"] = "https://charts.example.com/nvidia"
    answers = validate_answers(data)
    out = yaml.safe_load(answers_text(answers))
    assert out["gpuOperator"]["chart"] == {"repo": "https://charts.example.com/nvidia",
                                           "name": "gpu-operator"}


def test_an_inline_secret_in_the_old_file_is_removed_and_references_stay():
    text = SHORT.replace("  # port is the default\n",
                         "  # port is the default\n  passphraseEnv: KEY_PASS\n"
                         "  sudo:\n    mode: password\n    password: hunter2\n")
    answers = validate_answers({**answers_data(parse_answers(SHORT)),
                                "ssh": {"user": "ops", "passphraseEnv": "KEY_PASS",
                                        "sudo": {"mode": "password",
                                                 "passwordPrompt": True}}})
    out = answers_text(answers, text)
    assert "hunter2" not in out and "password:" not in out
    assert "passphraseEnv: KEY_PASS" in out and "passwordPrompt: true" in out
    assert parse_answers(out) == answers


@pytest.mark.parametrize("existing", ["", "- a list\n", "{not: [yaml\n", "just text\n"])
def test_a_file_that_is_not_an_answers_mapping_is_written_fresh(existing):
    answers = parse_answers(SHORT)
    assert answers_text(answers, existing) == answers_text(answers)


def test_saving_keeps_the_file_private_and_edits_in_place(tmp_path):
    path = tmp_path / "answers.yaml"
    path.write_text(EXAMPLE)
    path.chmod(0o644)
    answers = validate_answers({**answers_data(parse_answers(EXAMPLE)), "images": {
        "pullSecrets": ["mirror-pull"]}})
    assert WizardState(answers=answers).save(path) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert changed_lines(EXAMPLE, path.read_text()) == [
        "+images:", "+  pullSecrets:", "+    - mirror-pull", "+"]
    fresh = save_answers(answers, tmp_path / "new" / "a.yaml")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600 and parse_answers(
        fresh.read_text()) == answers


def test_ruamel_is_imported_on_the_first_save_not_by_the_wizard_or_help():
    code = ("import sys, screens.state, screens.app, screens.cli\n"
            "print('ruamel' in sys.modules)\n")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True).stdout.strip() == "False"
    shown = subprocess.run([sys.executable, "-X", "importtime", "-m", "screens.cli", "--help"],
                           capture_output=True, text=True, cwd=ROOT, check=True)
    assert "ruamel" not in shown.stderr and "usage" in shown.stdout


def test_a_save_replaces_the_file_whole_and_leaves_nothing_beside_it(tmp_path, monkeypatch):
    """Written beside the file and renamed over it: a failed write leaves the operator's file
    as it was and no temporary file; a symlinked answers file stays a link to the new text."""
    real = tmp_path / "kept" / "answers.yaml"
    real.parent.mkdir()
    real.write_text(EXAMPLE)
    link = tmp_path / "answers.yaml"
    link.symlink_to(real)
    answers = validate_answers({**answers_data(parse_answers(EXAMPLE)), "images": {
        "pullSecrets": ["mirror-pull"]}})

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr("installer.answers.save.os.replace", full_disk)
        with pytest.raises(OSError):
            save_answers(answers, link)
    assert real.read_text() == EXAMPLE and sorted(p.name for p in real.parent.iterdir()) == [
        "answers.yaml"]
    save_answers(answers, link)
    assert link.is_symlink() and "mirror-pull" in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert sorted(p.name for p in real.parent.iterdir()) == ["answers.yaml"]
