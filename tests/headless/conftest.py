from __future__ import annotations

import os
from unittest import mock

import pytest

from tests.headless.inprocess import cli_files


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """The values a flag may get, and a state directory, KUBECONFIG and working directory
    that keep every in-process run away from any real cluster or file of the operator's."""
    return cli_files(tmp_path_factory.mktemp("flags"))


@pytest.fixture
def isolated(files):
    env = {"XDG_STATE_HOME": files["state"], "KUBECONFIG": files["missing"]}
    cwd = os.getcwd()
    os.chdir(files["cwd"])  # a default bundle path would land here
    try:
        with mock.patch.dict(os.environ, env):
            yield files
    finally:
        os.chdir(cwd)
