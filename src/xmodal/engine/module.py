"""The Lightning side of the engine: one LightningModule for every task, the ``last.ckpt``
callback and an atomic checkpoint writer.

:class:`TaskModule` turns a :class:`~xmodal.engine.Task` and its plain ``nn.Module`` into
a LightningModule: steps, logging, optimizers and the per-epoch reseeding that makes a
resumed run identical to one that was never stopped; a task with
``manual_optimization = True`` steps its optimizers itself through a :class:`ManualStep`
(GANs: two optimizers). :class:`LastCheckpoint` keeps
``checkpoints/last.ckpt`` fresh (every epoch end, every N steps, and on Ctrl-C) and, with
the sampler of :func:`~xmodal.engine.seeded_loader`, resumes a mid-epoch checkpoint at the
batch where it stopped with the random state it had there.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from torch import nn

from xmodal._io import atomic_path
from xmodal.engine.data import SeededSampler, mix_seed
from xmodal.engine.task import Task
from xmodal.errors import DataError

__all__ = ["AtomicCheckpointIO", "LastCheckpoint", "ManualStep", "TaskModule", "reseed"]


# ------------------------------------------------------------------------------ RNG


def reseed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators, silently."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the global generator is the point
    torch.manual_seed(seed)  # seeds every CUDA device too


def rng_state() -> dict[str, Any]:
    """The global RNG states, as data ``torch.load(weights_only=True)`` accepts."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                  float(cached)],
        "torch": torch.get_rng_state(),
    }  # fmt: skip
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy().astype(np.uint32)
    np.random.set_state((name, keys, pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------ module


def _first_tensor(batch) -> torch.Tensor | None:
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, Mapping):
        items = batch.values()
    elif isinstance(batch, (list, tuple)):
        items = batch
    else:
        return None
    for item in items:
        found = _first_tensor(item)
        if found is not None:
            return found
    return None


def batch_size_of(batch) -> int:
    """The leading size of the first tensor in ``batch`` (a dict, list or tensor); 1 if none."""
    t = _first_tensor(batch)
    return int(t.shape[0]) if t is not None and t.ndim > 0 else 1


def _scalar(value, where: str):
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise DataError(
                f"{where} must be a scalar. Found a tensor of shape {tuple(value.shape)}"
            )
        return value.detach().reshape(())
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise DataError(f"{where} must be a number. Found: {value!r}")
    return float(value)


def _check_loss(task: Task, loss, step: int, epoch: int) -> None:
    """DataError unless ``loss`` is a finite scalar tensor."""
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        name = type(task).__name__
        raise DataError(f"{name}.training_step must return a scalar loss tensor. Found: {loss!r}")
    if not torch.isfinite(loss.detach()).all():
        raise DataError(
            f"the training loss is {loss.item()} at step {step} (epoch {epoch}); lower the "
            "learning rate or set trainer.gradient_clip_val"
        )


class ManualStep:
    """What the engine hands a manual-optimization task's ``training_step`` as ``step``.

    ``optimizers``: the optimizers of ``configure_optimizers``, in its order (Lightning's
    wrappers: ``zero_grad()`` and ``step()`` as on any ``torch.optim.Optimizer``);
    ``backward(loss)``: backpropagates ``loss`` (Lightning's ``manual_backward``, so mixed
    precision and several processes work) after checking it is a finite scalar;
    ``clip_gradients(optimizer)``: clips the gradients of ``optimizer``'s parameters to
    ``trainer.gradient_clip_val`` (a no-op when it is unset). A task uses them as::

        opt_d, opt_g = step.optimizers
        opt_d.zero_grad(); step.backward(loss_d); step.clip_gradients(opt_d); opt_d.step()

    or, the same in one call, ``step.update(0, loss_d)``.

    Learning-rate schedulers are stepped by the engine: ``interval: "step"`` ones after
    each ``training_step``, ``"epoch"`` ones at the start of every epoch after the first
    (so a run resumed from an epoch-end checkpoint steps them exactly once).
    """

    def __init__(self, module: TaskModule) -> None:
        self._module = module

    @property
    def optimizers(self) -> list:
        opts = self._module.optimizers()
        return list(opts) if isinstance(opts, (list, tuple)) else [opts]

    def backward(self, loss: torch.Tensor) -> None:
        m = self._module
        _check_loss(m.task, loss, m.global_step, m.current_epoch)
        m.manual_backward(loss)

    def clip_gradients(self, optimizer) -> None:
        value = self._module.clip_val
        if value:
            self._module.clip_gradients(optimizer, gradient_clip_val=value,
                                        gradient_clip_algorithm="norm")  # fmt: skip

    def update(self, i: int, loss: torch.Tensor) -> None:
        """Minimise ``loss`` by one step of ``optimizers[i]``: zero its gradients,
        :meth:`backward` (a loss that is not finite raises), :meth:`clip_gradients`, step."""
        optimizer = self.optimizers[i]
        optimizer.zero_grad()
        self.backward(loss)
        self.clip_gradients(optimizer)
        optimizer.step()


class TaskModule(pl.LightningModule):
    """A LightningModule around ``(task, model)``; the model stays a plain ``nn.Module``.

    Logs ``train/loss`` (and the task's logs as ``train/<key>``) per step
    (``train/<key>_step``) and as batch-size-weighted epoch means (``train/<key>_epoch``,
    kept in checkpoints), ``val/<key>`` as batch-size-weighted epoch means, and
    ``samples/s`` on the progress bar. Before each training epoch the global RNGs are
    reseeded from (seed, epoch).

    A task whose ``manual_optimization`` is true gets Lightning's manual optimization: its
    ``training_step(model, batch, step)`` receives a :class:`ManualStep` and steps the
    optimizers itself; the loss it returns is only checked and logged. Lightning then
    counts every ``optimizer.step()`` in ``global_step`` (two per batch for a GAN), so
    ``trainer.max_steps`` and ``trainer.checkpoint_every_n_steps`` count optimizer steps
    too; ``trainer.gradient_clip_val`` reaches the task through
    :meth:`ManualStep.clip_gradients` (Lightning cannot clip for it).
    """

    def __init__(self, task: Task, model: nn.Module) -> None:
        super().__init__()
        self.task = task
        self.model = model
        self.seed = int(task.config.seed)
        self.samples_seen = 0  # over the whole run, across resumes
        self.samples_timed = 0  # those whose step time was measured (not an epoch's first)
        self.train_seconds = 0.0  # in training steps (what samples/s divides by)
        self.wall_before = 0.0  # wall-clock seconds of fit in earlier sessions of the run
        self._fit_t0 = time.perf_counter()
        self._t_last: float | None = None
        self._rate: float | None = None
        self._updating = False  # True between the optimizer update and on_train_batch_end
        self.clip_val: float | None = None  # manual optimization: trainer.gradient_clip_val
        # The epoch so far: {"train/<key>": [sum of value × batch size, samples]}, and the
        # batch in progress, added to it as the batch ends (commit_epoch_logs).
        self._epoch_sums: dict[str, list] = {}
        self._pending: tuple[dict[str, float], int] | None = None
        if getattr(task, "manual_optimization", False):
            self.automatic_optimization = False
            self._manual = ManualStep(self)

    # ------------------------------------------------------------------ training

    def on_fit_start(self) -> None:
        self._fit_t0 = time.perf_counter()

    @property
    def wall_seconds(self) -> float:
        """Wall-clock seconds of training over every session of the run, so far."""
        return self.wall_before + time.perf_counter() - self._fit_t0

    def on_train_epoch_start(self) -> None:
        epoch = self.current_epoch
        reseed(mix_seed(self.seed, epoch))
        if not self.automatic_optimization and epoch > 0:
            # At the next epoch's start, not at the end of this one: the epoch-end
            # checkpoint is written before, and a run resumed from it steps here too.
            self._step_schedulers("epoch")
        self.task.on_train_epoch_start(epoch)
        self._t_last = None
        self._epoch_sums = {}

    def training_step(self, batch, batch_idx: int):
        if self.automatic_optimization:
            out = self.task.training_step(self.model, batch)
        else:
            out = self.task.training_step(self.model, batch, self._manual)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise DataError(
                f"{type(self.task).__name__}.training_step must return (loss, logs). Found: "
                f"{type(out).__name__}"
            )
        loss, logs = out
        _check_loss(self.task, loss, self.global_step, self.current_epoch)
        if not self.automatic_optimization:
            self._step_schedulers("step")
            loss = loss.detach()  # the task has stepped; Lightning must not backpropagate
        bs = batch_size_of(batch)
        values = {"train/loss": float(loss.detach())}
        for key, value in (logs or {}).items():
            values[f"train/{key}"] = float(_scalar(value, f"training_step log {key!r}"))
        for key, value in values.items():
            self.log(f"{key}_step", value, prog_bar=key == "train/loss", on_step=True,
                     on_epoch=False, batch_size=bs)  # fmt: skip
        self._pending = (values, bs)
        self._throughput(bs)
        return loss

    def commit_epoch_logs(self) -> None:
        """Add the finished batch's logs to the epoch's batch-size-weighted sums. Called
        as the batch ends (first by :class:`LastCheckpoint`, before it saves): a batch
        stopped halfway is not counted, and the sums go into the checkpoint, so a run
        resumed inside an epoch logs the same epoch means as one never stopped (Lightning
        does not checkpoint its own)."""
        if self._pending is None:
            return
        (values, bs), self._pending = self._pending, None
        for key, value in values.items():
            total = self._epoch_sums.setdefault(key, [0.0, 0])
            total[0] += value * bs
            total[1] += bs

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.commit_epoch_logs()

    def on_train_epoch_end(self) -> None:
        self.commit_epoch_logs()
        for key, (total, weight) in self._epoch_sums.items():
            self.log(f"{key}_epoch", total / weight, prog_bar=key == "train/loss",
                     on_step=False, on_epoch=True)  # fmt: skip

    def _throughput(self, bs: int) -> None:
        now = time.perf_counter()
        if self._t_last is not None:
            dt = now - self._t_last
            self.train_seconds += dt
            self.samples_timed += bs
            rate = bs / max(dt, 1e-9)
            self._rate = rate if self._rate is None else 0.9 * self._rate + 0.1 * rate
            self.log("samples/s", self._rate, prog_bar=True, on_step=True, on_epoch=False,
                     logger=False, batch_size=bs)  # fmt: skip
        self._t_last = now
        self.samples_seen += bs

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        def closure():
            out = optimizer_closure()
            # From here the weights change: a checkpoint taken before on_train_batch_end
            # would pair updated weights with a batch counted as not done.
            self._updating = True
            return out

        super().optimizer_step(epoch, batch_idx, optimizer,
                               closure if optimizer_closure is not None else None)  # fmt: skip

    def on_before_optimizer_step(self, optimizer) -> None:
        if not self.automatic_optimization:
            self._updating = True  # the first optimizer.step() of the batch is under way

    def _step_schedulers(self, interval: str) -> None:
        """Manual optimization: step the schedulers of ``interval`` as Lightning would."""
        for config in self.trainer.lr_scheduler_configs:
            if config.interval != interval:
                continue
            if interval == "epoch":
                count = self.current_epoch  # epochs finished
            else:
                count = self.trainer.fit_loop.epoch_loop.batch_idx + 1
            if count % config.frequency == 0:
                config.scheduler.step()

    def configure_optimizers(self):
        return self.task.configure_optimizers(self.model)

    # ------------------------------------------------------------------ validation

    def validation_step(self, batch, batch_idx: int) -> None:
        logs = self.task.validation_step(self.model, batch) or {}
        bs = batch_size_of(batch)
        for i, (key, value) in enumerate(logs.items()):
            value = _scalar(value, f"validation_step value {key!r}")
            self.log(f"val/{key}", value, on_step=False, on_epoch=True, prog_bar=i == 0,
                     batch_size=bs, sync_dist=True)  # fmt: skip

    # ------------------------------------------------------------------ checkpoints

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["xmodal"] = {
            "task": type(self.task).name,
            "samples_seen": int(self.samples_seen),
            "samples_timed": int(self.samples_timed),
            "train_seconds": float(self.train_seconds),
            "wall_seconds": float(self.wall_seconds),
            "epoch_sums": {k: [float(t), int(w)] for k, (t, w) in self._epoch_sums.items()},
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("xmodal", {})
        self.samples_seen = int(state.get("samples_seen", 0))
        self.samples_timed = int(state.get("samples_timed", 0))
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.wall_before = float(state.get("wall_seconds", 0.0))
        sums = state.get("epoch_sums") or {}
        self._epoch_sums = {str(k): [float(t), int(w)] for k, (t, w) in sums.items()}


# ------------------------------------------------------------------------------ callback


def _seeded_sampler(loader) -> SeededSampler | None:
    for obj in (getattr(loader, "sampler", None),
                getattr(getattr(loader, "batch_sampler", None), "sampler", None)):  # fmt: skip
        if isinstance(obj, SeededSampler):
            return obj
    return None


class LastCheckpoint(pl.Callback):
    """Keeps ``dirpath/last.ckpt``: at every epoch end, every ``every_n_steps`` optimizer
    steps (0: never mid-epoch), and when the run is stopped (Ctrl-C, or SIGTERM at the end
    of the batch it arrived in).

    The checkpoint carries the global RNG state at the end of the last finished batch and
    the position in the epoch (``epoch``, ``done``: batches finished); on a resume from
    mid-epoch the engine has the seeded sampler skip those batches before the loader's
    first iterator exists (:func:`resume_position`; loader workers prefetch indices as soon
    as one does), and that RNG state is restored, so the run continues exactly where it
    stopped.
    """

    def __init__(self, dirpath: str | Path, *, every_n_steps: int = 0) -> None:
        self.dirpath = Path(dirpath)
        self.every_n_steps = int(every_n_steps)
        self.interrupted = False
        self.signal: str | None = None  # what stopped the run: "SIGINT" (Ctrl-C), "SIGTERM"
        self.signal_name = "SIGTERM"  # "SIGUSR1" when the engine turned that into SIGTERM
        self.saved_on_interrupt = False
        self._rng: dict | None = None
        self._position: tuple[int, int] | None = None  # (epoch, batches finished in it)
        self._restored: dict | None = None
        self._last_step_saved = -1

    @property
    def path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def _save(self, trainer: pl.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)
        self._last_step_saved = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        pl_module._updating = False
        pl_module.commit_epoch_logs()
        self._rng = rng_state()
        self._position = (trainer.current_epoch, trainer.fit_loop.epoch_loop.batch_progress
                          .current.processed)  # fmt: skip
        step, n = trainer.global_step, self.every_n_steps
        # A multiple of n passed since the last save: with manual optimization global_step
        # grows by one per optimizer.step(), several per batch, and may jump over it.
        if n and step // n > max(self._last_step_saved, 0) // n:
            self._save(trainer)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._rng = None  # None: "at the epoch start", whose state is the (seed, epoch) reseed
        self._position = None

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._position = (trainer.current_epoch + 1, 0)  # a resume starts the next epoch
        self._save(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        # SIGTERM (a preemption, `kill`, a scheduler's end of job): Lightning finishes the
        # batch, then raises SIGTERMException; its state is as consistent as Ctrl-C's.
        if isinstance(exception, SIGTERMException):
            self.signal = self.signal_name
        elif isinstance(exception, KeyboardInterrupt):
            self.signal = "SIGINT"
        else:
            return
        self.interrupted = True
        # Only a consistent state is saved: not halfway through an optimizer update, and
        # not from one rank of several (saving would wait for ranks that may have stopped).
        # Stopped in the first batch of an epoch after the first, or of a resumed run,
        # last.ckpt already holds the state to go back to. The previous one is kept then.
        if (
            trainer.state.fn != "fit"
            or trainer.fit_loop.epoch_progress.current.ready == 0
            or pl_module._updating
            or trainer.world_size > 1
            or (self._rng is None and trainer.global_step > 0)
        ):
            return
        self._save(trainer)
        self.saved_on_interrupt = True

    def state_dict(self) -> dict[str, Any]:
        epoch, done = self._position if self._position is not None else (None, 0)
        return {"rng": self._rng, "epoch": epoch, "done": done}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = state_dict

    def on_train_start(self, trainer, pl_module) -> None:
        self._last_step_saved = trainer.global_step  # 0, or the step resumed from
        restored, self._restored = self._restored, None
        if not restored or not getattr(trainer.fit_loop, "restarted_mid_epoch", False):
            return
        # Lightning skips on_train_epoch_start when it resumes inside an epoch: do its work
        # here, with the random state of the checkpoint instead of a fresh reseed. (The
        # sampler's skip was set before the fit: resume_position.)
        epoch = trainer.current_epoch
        if restored.get("rng") is not None:
            set_rng_state(restored["rng"])
        else:  # stopped in the epoch's first batch: the state of the epoch start
            reseed(mix_seed(pl_module.seed, epoch))
        pl_module.task.on_train_epoch_start(epoch)


# ------------------------------------------------------------------------------ IO


PREVIOUS = "previous.ckpt"  # beside last.ckpt: the checkpoint before it


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary file beside it, fsyncs it and renames it into
    place, so a crash leaves either the old checkpoint or the new one, never half of one.
    The one it replaces is kept as ``previous.ckpt`` (a hard link, so no copy is made):
    a resume falls back to it if ``last.ckpt`` is damaged (a disk that lost its end, a
    file replaced by something else).
    """

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        if path.is_file():
            _keep_as_previous(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save(checkpoint, f)


def _keep_as_previous(path: Path) -> None:
    """``path`` (the current checkpoint) also as ``previous.ckpt`` beside it, atomically."""
    import shutil

    with atomic_path(path.with_name(PREVIOUS)) as tmp:
        tmp.unlink()
        try:
            os.link(path, tmp)
        except OSError:  # a file system without hard links: a copy
            shutil.copyfile(path, tmp)


def resume_position(checkpoint: Mapping[str, Any]) -> tuple[int, int] | None:
    """Where a run resumed from a :class:`LastCheckpoint` checkpoint goes on: ``(epoch,
    batches of it already done)`` (the next epoch and 0 after an epoch's end); None for a
    checkpoint that does not say (written by an older xmodal)."""
    for key, state in (checkpoint.get("callbacks") or {}).items():
        if str(key).startswith("LastCheckpoint") and isinstance(state, Mapping):
            epoch, done = state.get("epoch"), state.get("done")
            if isinstance(epoch, int) and isinstance(done, int):
                return epoch, done
    return None


def skip_done_batches(loader, position: tuple[int, int] | None) -> None:
    """Set ``loader``'s seeded sampler to the epoch of ``position`` (from
    :func:`resume_position`) and have it skip the batches already done. Call it before the
    loader's first iterator is made: worker processes take indices from the sampler as soon
    as one exists, before Lightning sets the epoch. (One process; with several, each rank's
    share of an epoch differs.)"""
    sampler = _seeded_sampler(loader)
    batch_size = getattr(loader, "batch_size", None)
    if position is None or sampler is None or not batch_size:
        return
    epoch, done = position
    sampler.set_epoch(epoch)
    if done:
        sampler.skip_once(done * batch_size, epoch)
