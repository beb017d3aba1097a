"""Fixtures for the engine tests: one trained run of the toy task (``toy``: tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory):
    """A finished 2-epoch toy run (read only: tests that change a run train their own)."""
    from xmodal.engine import train

    return train(toy, runs_dir=tmp_path_factory.mktemp("runs"))
