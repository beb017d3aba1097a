"""The task contract: what a task gives the engine (config, data, model, steps, metrics,
figures, predictions). The engine (Lightning underneath) does everything else: run folders,
checkpoints, logging, export, reports, resume and scale-out.

A task never imports Lightning; its model is a plain ``nn.Module``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader

__all__ = ["Task"]


class Task:
    """Base class of every task; subclasses fill the class attributes and the methods.

    Lifecycle (the engine calls, in order):

    - ``Task(config)`` with an instance of ``Config`` (already validated);
    - ``setup(run_dir, stage)``: ``stage="fit"`` builds what training needs and writes
      the files listed by :meth:`artifacts` into ``run_dir`` (e.g. ``vocab.json``);
      ``stage="eval"`` / ``"predict"`` reads them back from ``run_dir``;
    - ``build_model()`` (after ``setup``);
    - training: ``train_dataloader()``, ``val_dataloader()``, ``configure_optimizers()``,
      ``training_step()`` / ``validation_step()``, with ``on_train_epoch_start(epoch)``;
      with ``manual_optimization = True`` the task steps its optimizers itself (see
      :meth:`training_step`);
    - after training and in ``xmodal eval``: ``evaluate(model, split)``, ``figures()``;
    - ``xmodal predict``: ``predict(model, inputs, out_dir, **options)``, the options
      being those :meth:`add_predict_arguments` declares.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""  # "representations", "matching", "translation", "referencing"
    summary: ClassVar[str] = ""
    default_data: ClassVar[str] = "world"
    Config: ClassVar[type]  # a dataclass with at least ``seed: int`` and ``trainer``
    # True: training_step(model, batch, step) steps the optimizers itself (several
    # optimizers, e.g. a GAN's); False: the engine minimises the loss it returns.
    manual_optimization: ClassVar[bool] = False
    # Suffixes (".png") for which ``xmodal predict --out FILE`` names a file, not a folder:
    # predict then gets ``out_file=FILE`` and ``out_dir`` its folder.
    predict_out_suffixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config) -> None:
        self.config = config
        self._world = None
        # Set by the engine before setup("fit"): True when the run continues from a
        # checkpoint, whose weights replace whatever build_model prepares (a task can skip
        # costly initialisation such as a pretraining stage).
        self.resuming = False

    @property
    def world(self):
        """The world of ``config.data``: its ``world_seed``, ``image_size`` and, where the
        data config has one, ``compositional``; made on first use."""
        if self._world is None:
            from xmodal.world import World

            d = self.config.data
            self._world = World(
                seed=d.world_seed,
                image_size=d.image_size,
                compositional=getattr(d, "compositional", False),
            )
        return self._world

    @staticmethod
    def model_device(model: nn.Module) -> torch.device:
        """The device ``model``'s parameters are on: where evaluate, figures and predict
        move their inputs."""
        return next(model.parameters()).device

    # ------------------------------------------------------------------ data

    def setup(self, run_dir: Path, stage: str) -> None:
        """Build data and vocabularies (``"fit"``), or read them from ``run_dir``.

        With several training processes every one calls ``setup(run_dir, "fit")``: files
        it writes must come out identical in each (a pure function of the config) and be
        written atomically (temp file + rename).
        """

    def artifacts(self) -> list[str]:
        """Files (relative to the run folder) that ``setup("fit")`` writes and eval needs."""
        return []

    def train_dataloader(self) -> DataLoader:
        raise NotImplementedError

    def val_dataloader(self) -> DataLoader | None:
        return None

    # ------------------------------------------------------------------ model

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def configure_optimizers(self, model: nn.Module) -> Any:
        """Return what ``LightningModule.configure_optimizers`` returns."""
        raise NotImplementedError

    def training_step(
        self, model: nn.Module, batch, step=None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """``(loss, logs)``: the loss to minimise and scalars to log (e.g. its parts).

        With ``manual_optimization = True`` the engine passes ``step``, a
        :class:`~xmodal.engine.module.ManualStep`: ``step.optimizers`` (those of
        :meth:`configure_optimizers`, in order), ``step.backward(loss)`` and
        ``step.clip_gradients(optimizer)``. The task zeroes, backpropagates and steps
        each optimizer itself; the ``loss`` it returns is then only checked (finite) and
        logged as ``train/loss``. Schedulers are stepped by the engine. ``global_step``
        counts every optimizer step (two per batch with two optimizers), and so do
        ``trainer.max_steps`` and ``trainer.checkpoint_every_n_steps``.
        """
        raise NotImplementedError

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        """Scalars for one validation batch; the engine logs their means as ``val/<key>``."""
        return {}

    def on_train_epoch_start(self, epoch: int) -> None:
        """Called before each training epoch (0-based)."""

    # ------------------------------------------------------------------ results

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """Every metric of the task on ``split``, computed the standard way.

        The engine calls it under ``torch.no_grad()`` with the model in eval mode, on the
        device it trained on (a GPU after GPU training): move inputs to
        ``next(model.parameters()).device``. The same holds for :meth:`figures` and
        :meth:`predict`. Values are numbers (or nested dicts of numbers) for metrics.json.
        """
        raise NotImplementedError

    def figures(self, model: nn.Module, out_dir: Path) -> list[Path]:
        """Write the task's figures (PNG) into ``out_dir``; return their paths."""
        return []

    def predict(
        self, model: nn.Module, inputs: Sequence[str], out_dir: Path, **options
    ) -> list[dict]:
        """Run the model on user inputs (file paths, texts); one record per input or query.

        ``options`` are the task's own, declared by :meth:`add_predict_arguments` (none by
        default). Each record is JSON-serialisable; ``"text"`` (if present) is printed by
        the CLI and files it wrote are listed under ``"files"``.
        """
        raise NotImplementedError

    @classmethod
    def add_predict_arguments(cls, parser) -> None:
        """Declare the task's own ``xmodal predict TASK`` options on ``parser`` (an
        ``argparse`` parser): each reaches :meth:`predict` as a keyword argument named by
        its ``dest``, with its default when not given. None by default.

        >>> parser.add_argument("--text", action="append", help="a text query")
        """
