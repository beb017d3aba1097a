"""Fixtures for the engine tests: the toy task registered as 'toy', and one trained run."""

from __future__ import annotations

import pytest

from xmodal.registry import register_task, unregister_task


@pytest.fixture(scope="module")
def toy():
    """The toy task registered as 'toy' while the module's tests run."""
    from tests.engine.toy_task import ToyTask

    register_task(ToyTask, overwrite=True)
    yield "toy"
    unregister_task("toy")


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory):
    """A finished 2-epoch toy run (read only: tests that change a run train their own)."""
    from xmodal.engine import train

    return train(toy, runs_dir=tmp_path_factory.mktemp("runs"))
