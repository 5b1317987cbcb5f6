"""remote.yamlload parses with libyaml, yet a bad document's error names what is wrong."""

from __future__ import annotations

import pytest
import yaml

from remote.yamlload import safe_load


def test_a_document_reads_as_yaml_safe_load_reads_it():
    text = "featureGates:\n  KubeletPodResourcesGet: true\nport: 10250\nname: null\n"
    assert safe_load(text) == yaml.safe_load(text)


def test_the_error_names_the_offending_character_and_its_line():
    with pytest.raises(yaml.YAMLError) as caught:
        safe_load("apiVersion: v1\nclusters: [\n@oops\n")
    assert "found character '@' that cannot start any token" in str(caught.value)
    assert caught.value.problem_mark.line == 2


def test_unsafe_tags_are_refused():
    with pytest.raises(yaml.YAMLError):
        safe_load("!!python/object/apply:os.system ['true']")
