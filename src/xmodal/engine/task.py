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

from xmodal.errors import ParameterError

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
    - after training and in ``xmodal eval``: ``evaluate(model, split)`` for each of
      ``config.eval_splits``, then ``figures(model)``, whose figures the engine writes;
    - ``xmodal predict``: ``predict(model, inputs, out_dir, **options)``, the options
      being the fields of the task's :attr:`PredictOptions` dataclass.

    What every task shares is here: :meth:`data` picks the source ``data=NAME`` names,
    :meth:`configure_optimizers` builds the ``optim`` section's optimizer and schedule
    for :meth:`total_steps`.
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
    # The task's own ``xmodal predict`` options: a dataclass whose fields become flags
    # (see xmodal.engine.options) and reach predict() as keyword arguments.
    PredictOptions: ClassVar[type | None] = None
    # Other tasks' runs this task uses (xmodal.engine.upstream.Upstream): the engine
    # resolves each before setup("fit"), training the upstream's defaults if need be.
    upstream: ClassVar[tuple] = ()

    def __init__(self, config) -> None:
        self.config = config
        self._world = None
        self._data: dict[str, Any] = {}
        # Set by the engine before setup("fit"): True when the run continues from a
        # checkpoint, whose weights replace whatever build_model prepares (a task can skip
        # costly initialisation such as a pretraining stage).
        self.resuming = False

    @property
    def world(self):
        """The world of ``config.data``: its ``world_seed`` and, where the data config has
        them, ``image_size``, ``compositional`` and ``clip_seconds``; made on first use."""
        if self._world is None:
            from xmodal.world import World

            d = self.config.data
            keys = ("image_size", "compositional", "clip_seconds")
            options = {k: getattr(d, k) for k in keys if hasattr(d, k)}
            self._world = World(seed=d.world_seed, **options)
        return self._world

    @staticmethod
    def model_device(model: nn.Module) -> torch.device:
        """The device ``model``'s parameters are on: where evaluate, figures and predict
        move their inputs."""
        return next(model.parameters()).device

    # ------------------------------------------------------------------ data

    def data(self, split: str):
        """The dataset of ``split`` from the source ``config.data.name``, made once: the
        task's method ``<name>_data(split)`` (``world_data``, ``karpathy_data``, ...; a
        ``-`` of the name is a ``_`` of the method: ``av-manifest`` → ``av_manifest_data``)."""
        if split not in self._data:
            name = self.config.data.name
            method = f"{name.replace('-', '_')}_data"
            read = getattr(self, method, None)
            if read is None:
                raise ParameterError(
                    f"task {self.name!r} cannot read data source {name!r} "
                    f"(it has no {method} method)"
                )
            self._data[split] = read(split)
        return self._data[split]

    def setup(self, run_dir: Path, stage: str) -> None:
        """Build data and vocabularies (``"fit"``), or read them from ``run_dir``.

        With several training processes every one calls ``setup(run_dir, "fit")``: files
        it writes must come out identical in each (a pure function of the config) and be
        written atomically (temp file + rename).
        """

    def artifacts(self) -> list[str]:
        """Files (relative to the run folder) that ``setup("fit")`` writes and eval needs."""
        return []

    def train_loader(
        self, dataset, *, collate_fn=None, drop_last: bool = False, shuffle: bool = True
    ) -> DataLoader:
        """A loader over ``dataset`` with ``data.batch_size`` and ``data.num_workers``,
        shuffled (or not) in an order that is a pure function of (``seed``, epoch)
        (:func:`~xmodal.engine.data.seeded_loader`, which also resumes mid-epoch): what
        ``train_dataloader`` returns."""
        from xmodal.engine.data import seeded_loader

        d = self.config.data
        return seeded_loader(
            dataset,
            batch_size=d.batch_size,
            shuffle=shuffle,
            seed=self.config.seed,
            num_workers=d.num_workers,
            collate_fn=collate_fn,
            drop_last=drop_last,
        )

    def train_dataloader(self) -> DataLoader:
        raise NotImplementedError

    def val_dataloader(self) -> DataLoader | None:
        return None

    # ------------------------------------------------------------------ model

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def steps_per_epoch(self) -> int:
        """Optimizer steps in one process's epoch: the training set's batches (the last
        partial batch dropped)."""
        from xmodal.engine.schedule import world_size

        return len(self.data("train")) // (self.config.data.batch_size * world_size())

    def total_steps(self) -> int:
        """The steps the run will take (:func:`~xmodal.engine.schedule.planned_steps`):
        what the learning-rate schedule spans."""
        from xmodal.engine.schedule import planned_steps

        return planned_steps(self.config.trainer, self.steps_per_epoch())

    def configure_optimizers(self, model: nn.Module) -> Any:
        """What ``LightningModule.configure_optimizers`` returns: by default the ``optim``
        section's ``configure(parameters, total_steps)`` (e.g.
        :class:`~xmodal.engine.schedule.AdamConfig`: Adam, warm-up, cosine decay)."""
        optim = getattr(self.config, "optim", None)
        if not callable(getattr(optim, "configure", None)):
            raise NotImplementedError(
                f"{type(self).__name__} has no optim section with configure(); "
                "override configure_optimizers"
            )
        return optim.configure(model.parameters(), self.total_steps())

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

    def export(self, model: nn.Module, run_dir: Path) -> list[str]:
        """After training, beside ``model.safetensors``: the trained model in its field's
        own formats (word2vec's ``vectors.bin``, ...), written atomically; the files'
        names. None by default."""
        return []

    def figures(self, model: nn.Module) -> dict[str, Any]:
        """The task's figures by name: matplotlib ``Figure`` objects, which the engine
        writes as ``figures/<name>.png`` (:func:`xmodal.viz.save_figure`: atomically, one
        dpi) and closes; a ``str`` is text shown with them (sampled sentences), written as
        ``figures/<name>``, a name ending in ``.txt``. Names are file names: letters,
        digits, ``_``, ``-``, ``.``."""
        return {}

    def predict(
        self, model: nn.Module, inputs: Sequence[str], out_dir: Path, **options
    ) -> list[dict]:
        """Run the model on user inputs (file paths, texts); one record per input or query.

        ``options`` are the task's own, the fields of :attr:`PredictOptions` (none by
        default). Each record is JSON-serialisable; ``"text"`` (if present) is printed by
        the CLI and files it wrote are listed under ``"files"``.
        """
        raise NotImplementedError
