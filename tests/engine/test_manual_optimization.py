"""Manual optimization through the engine: a task with two optimizers steps them itself.

The toy regression's MLP is split in two parameter sets, each with its own optimizer (the
first with an epoch scheduler the engine must step), updated one after the other in every
batch as a GAN updates its discriminator and generator.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.engine.toy_task import ToyTask
from xmodal.engine import train
from xmodal.engine.run import TrainingInterrupted, load_run
from xmodal.errors import DataError
from xmodal.registry import register_task, unregister_task


class ManualToyTask(ToyTask):
    name = "toy-manual"
    manual_optimization = True

    def configure_optimizers(self, model: nn.Module):
        first = torch.optim.Adam(model[0].parameters(), lr=self.config.lr)
        second = torch.optim.SGD(model[3].parameters(), lr=self.config.lr)
        sched = torch.optim.lr_scheduler.StepLR(first, step_size=1, gamma=0.5)
        return [first, second], [{"scheduler": sched, "interval": "epoch"}]

    def training_step(self, model, batch, step):
        if self.steps == self.config.interrupt_at_step:
            raise KeyboardInterrupt
        self.steps += 1
        first, second = step.optimizers
        logs = {}
        for name, opt in (("first", first), ("second", second)):
            pred = model(batch["x"]).squeeze(-1)  # dropout: each pass draws from the RNG
            loss = nn.functional.mse_loss(pred, batch["y"])
            opt.zero_grad()
            step.backward(loss)
            step.clip_gradients(opt)
            opt.step()
            logs[f"loss_{name}"] = loss.detach()
        return loss, logs


@pytest.fixture(scope="module")
def manual():
    register_task(ManualToyTask, overwrite=True)
    yield "toy-manual"
    unregister_task("toy-manual")


@pytest.fixture(scope="module")
def manual_run(manual, tmp_path_factory):
    return train(manual, runs_dir=tmp_path_factory.mktemp("runs"))


def _scores(run) -> dict:
    return {k: v for k, v in run.metrics.items() if k != "train"}


def test_both_parameter_sets_train_and_schedulers_step(manual_run):
    task, model = load_run(manual_run.run_dir)
    start = task.build_model()  # seeded: the weights training started from
    for i in (0, 3):  # each optimizer moved its own layer
        assert not torch.allclose(model[i].weight, start[i].weight)
    train_info = manual_run.metrics["train"]
    assert train_info["epochs"] == 2 and train_info["samples"] == 128
    assert train_info["steps"] == 2 * 16  # every optimizer.step() counts: two per batch
    ckpt = torch.load(manual_run.run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    lrs = [g["lr"] for state in ckpt["optimizer_states"] for g in state["param_groups"]]
    assert lrs == pytest.approx([0.05 * 0.5, 0.05])  # the epoch scheduler: before epoch 1
    assert manual_run.metrics["test"]["mse"] < 20.0  # the target's variance is ~ 270


def test_a_killed_manual_run_resumes_exactly_from_its_periodic_checkpoint(
    manual, manual_run, tmp_path, monkeypatch
):
    from xmodal.engine.module import LastCheckpoint

    def killed(self, trainer, pl_module, exception):
        self.interrupted = True  # a kill saves nothing

    monkeypatch.setattr(LastCheckpoint, "on_exception", killed)
    # global_step grows by 2 a batch: every 5 steps means after batches 3 (step 6) and 5
    # (step 10); the kill comes in batch 8.
    overrides = ["trainer.checkpoint_every_n_steps=5", "interrupt_at_step=7"]
    with pytest.raises(TrainingInterrupted) as err:
        train(manual, runs_dir=tmp_path, overrides=overrides)
    assert torch.load(err.value.checkpoint, weights_only=True)["global_step"] == 10
    monkeypatch.undo()
    resumed = train(manual, resume=err.value.run_dir, overrides=["interrupt_at_step=-1"])
    assert _scores(resumed) == _scores(manual_run)
    assert resumed.metrics["train"]["steps"] == 32


def test_ctrl_c_in_a_manual_run_saves_and_the_resume_finishes_identically(
    manual, manual_run, tmp_path
):
    with pytest.raises(TrainingInterrupted) as err:
        train(manual, runs_dir=tmp_path, overrides=["interrupt_at_step=11"])
    assert err.value.saved
    assert torch.load(err.value.checkpoint, weights_only=True)["global_step"] == 22
    resumed = train(manual, resume=err.value.run_dir, overrides=["interrupt_at_step=-1"])
    assert _scores(resumed) == _scores(manual_run)


def test_gradient_clipping_reaches_a_manual_task_and_a_nan_loss_stops_it(manual, tmp_path):
    clipped = train(manual, runs_dir=tmp_path, overrides=["trainer.gradient_clip_val=0.01"])
    unclipped_like = train(manual, runs_dir=tmp_path)
    assert clipped.metrics["test"]["mse"] != unclipped_like.metrics["test"]["mse"]
    with pytest.raises(DataError, match=r"training loss is (nan|inf)"):  # before a bad update
        train(manual, runs_dir=tmp_path, overrides=["lr=1e30"])
