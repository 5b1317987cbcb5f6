"""`hostAccess` in the answers: the mode (ssh | pod) with its shorthand, the pod's settings,
and the per-node override."""

from __future__ import annotations

import pytest

from installer.answers.model import (
    DEFAULT_POD_IMAGE,
    HOST_ACCESS_NAMESPACE,
    dump_answers,
    parse_answers,
)
from installer.errors import UserError
from tests.unit.test_answers import BASE


def test_ssh_is_the_default_and_pod_is_chosen_by_the_shorthand_or_the_block():
    assert parse_answers(BASE).host_access.mode == "ssh"
    short = parse_answers(BASE + "hostAccess: pod\n").host_access
    block = parse_answers(BASE + "hostAccess:\n  mode: pod\n").host_access
    assert short == block
    assert (short.mode, short.pod_image, short.namespace) == (
        "pod", DEFAULT_POD_IMAGE, HOST_ACCESS_NAMESPACE)


def test_a_node_overrides_the_mode_and_the_others_follow_the_top_level():
    answers = parse_answers(BASE + "hostAccess: pod\nnodes:\n  items:\n"
                            "    - {name: n1, choice: kata, hostAccess: ssh}\n"
                            "    - {name: n2, choice: kata}\n")
    mode = answers.host_access.mode
    assert [answers.nodes.access_for(n, mode) for n in ("n1", "n2", "n3")] == [
        "ssh", "pod", "pod"]


def test_the_settings_survive_saving():
    answers = parse_answers(BASE + "hostAccess:\n  mode: pod\n  podImage: "
                            "registry.example.com/busybox:1.37\n  namespace: ops\n")
    assert parse_answers(dump_answers(answers)) == answers


@pytest.mark.parametrize(("extra", "where"), [
    ("hostAccess: telnet\n", "hostAccess.mode"),
    ("hostAccess: {mode: pod, namespace: Not_A_Name}\n", "hostAccess.namespace"),
    ("hostAccess: {mode: pod, concurrency: 0}\n", "hostAccess.concurrency"),
    ("nodes:\n  items:\n    - {name: n1, choice: kata, hostAccess: telnet}\n",
     "nodes.items[0].hostAccess"),
])
def test_a_wrong_mode_or_setting_names_its_key(extra, where):
    with pytest.raises(UserError) as err:
        parse_answers(BASE + extra)
    assert [p.where for p in err.value.problems] == [where]
