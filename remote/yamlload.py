"""YAML parsing through libyaml when PyYAML was built with it.

Why: PyYAML's pure-Python parser takes ~10-20 ms for one kubelet config on this machine, and
every plan parses each Kata host's kubelet config twice (its check and its fix); libyaml's
parser builds the same values several times faster. The safe constructors are the same.
"""

from __future__ import annotations

from typing import Any

import yaml

SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """yaml.safe_load, with libyaml's parser when it is there (raises yaml.YAMLError).

    A document libyaml rejects is parsed again by the pure-Python parser, whose error is the
    one raised: it names the offending character ("found character '@' that cannot start
    any token"), which libyaml's leaves out - and an operator fixing the file needs it."""
    try:
        return yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError:
        if SAFE_LOADER is yaml.SafeLoader:
            raise
        return yaml.load(text, Loader=yaml.SafeLoader)
