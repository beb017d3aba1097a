"""The Lightning adapter's parts: atomic checkpoint IO, RNG state, batch sizes, loss checks."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from xmodal.engine.module import (
    AtomicCheckpointIO,
    TaskModule,
    batch_size_of,
    reseed,
    rng_state,
    set_rng_state,
)
from xmodal.engine.task import Task
from xmodal.errors import DataError


def test_atomic_checkpoint_io_round_trip_and_no_temp_files(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "ck" / "last.ckpt"
    io.save_checkpoint({"w": torch.arange(3), "step": 1}, path)
    io.save_checkpoint({"w": torch.arange(4), "step": 2}, path)
    loaded = io.load_checkpoint(path, weights_only=True)
    assert loaded["step"] == 2 and torch.equal(loaded["w"], torch.arange(4))
    # No temporary file left; the checkpoint before the last kept beside it.
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt", "previous.ckpt"]
    assert io.load_checkpoint(path.with_name("previous.ckpt"), weights_only=True)["step"] == 1
    assert path.stat().st_mode & 0o044  # readable like any file the user writes, not 0600


def test_a_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, path)

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert io.load_checkpoint(path, weights_only=True)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "previous.ckpt"]


def _draw():
    return random.random(), np.random.rand(), torch.rand(1).item()  # noqa: NPY002


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    reseed(1)
    torch.save(rng_state(), tmp_path / "rng.pt")
    expected = _draw()
    reseed(2)
    assert _draw() != expected
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert _draw() == expected


def test_batch_size_of():
    assert batch_size_of({"meta": ["a"], "x": torch.zeros(5, 2)}) == 5
    assert batch_size_of((torch.zeros(3), torch.zeros(4))) == 3
    assert batch_size_of({"ids": [1, 2]}) == 1
    assert batch_size_of({"nested": {"y": torch.zeros(7)}}) == 7


class _Bad(Task):
    name = "bad"

    def __init__(self, loss) -> None:
        super().__init__(type("C", (), {"seed": 0})())
        self.loss = loss

    def training_step(self, model, batch):
        return self.loss


@pytest.mark.parametrize(
    "out, match",
    [
        ((torch.tensor(float("nan")), {}), "training loss is nan at step 0"),
        ((torch.tensor([1.0, 2.0]), {}), "must return a scalar loss tensor"),
        (torch.tensor(1.0), "must return \\(loss, logs\\)"),
    ],
)
def test_training_step_checks_what_the_task_returns(out, match):
    module = TaskModule(_Bad(out), nn.Linear(1, 1))
    with pytest.raises(DataError, match=match):
        module.training_step({"x": torch.zeros(2, 1)}, 0)
