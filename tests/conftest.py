"""Session fixtures shared by the test tiers.

`lab` brings the lab up once per test session (reusing one that is already up) and tears it
down at the end unless LAB_KEEP=1 or it was already up before the session. `lab_bare` resets
the cluster to bare (no releases, no chart leftovers, host trees as in their fixtures) before
the test that asks for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.lab.handle import LabHandle
from tests.lab.lab import Lab

# Host fixture trees hold sysfs-style symlink cycles (device -> iommu_group -> devices ->
# device); collecting inside them never ends. Neither they nor the charts hold tests.
collect_ignore = ["fixtures", "lab/charts", "lab/simbin"]


@pytest.fixture(scope="session")
def lab() -> Iterator[LabHandle]:
    lab = Lab()
    was_up = lab.status().get("up", False)
    info = lab.up()
    yield LabHandle(lab, info)
    if not was_up and os.environ.get("LAB_KEEP") != "1":
        lab.down()


@pytest.fixture
def lab_bare(lab: LabHandle) -> LabHandle:
    lab.reset()
    return lab
