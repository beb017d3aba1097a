"""The config sections every task extends: data, eval and the root with seed and trainer.

A task's config is a tree of dataclasses. The parts every task has live here, once, with
their checks; a task subclasses them and adds only its own fields (or new defaults), and
declares ``trainer`` last with :func:`trainer_defaults` (see ``tasks/caption.py``).

``data=NAME`` picks one of the section's ``sources``; the task reads that source with its
method ``NAME_data(split)`` (see :meth:`xmodal.engine.task.Task.data`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

from xmodal._checks import check_choice, check_positive_int
from xmodal.engine.config import TrainerConfig

__all__ = ["DataConfig", "EvalConfig", "ImageDataConfig", "TaskConfig", "trainer_defaults"]

SPLITS = ("train", "val", "test")


@dataclass
class DataConfig:
    """Where the samples come from and how they are batched.

    ``name`` is one of ``sources`` (the class's list: ``world`` for every task, then the
    real dataset layouts it reads). On the world: ``world_seed`` and the split sizes;
    every source: ``batch_size`` and the loader's ``num_workers``.
    """

    sources: ClassVar[tuple[str, ...]] = ("world",)

    name: str = "world"
    world_seed: int = 0
    train_size: int = 10_000
    val_size: int = 500
    test_size: int = 1_000
    batch_size: int = 32
    num_workers: int = 2

    def __post_init__(self) -> None:
        check_choice(self.name, "data.name", self.sources)
        check_positive_int(self.world_seed, "data.world_seed", minimum=0)
        for key in ("train_size", "val_size", "test_size", "batch_size"):
            check_positive_int(getattr(self, key), f"data.{key}")
        check_positive_int(self.num_workers, "data.num_workers", minimum=0)

    def size(self, split: str) -> int:
        """The world's number of samples in ``split`` (``test_size`` for any other split,
        such as ``compositional``)."""
        return {"train": self.train_size, "val": self.val_size}.get(split, self.test_size)


@dataclass
class ImageDataConfig(DataConfig):
    """:class:`DataConfig` for tasks with images: ``image_size``, the side of the world's
    images and of real images once resized."""

    image_size: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int(self.image_size, "data.image_size")


@dataclass
class EvalConfig:
    """Evaluation: ``batch_size`` of the evaluation passes, ``n_figures`` drawn per run."""

    batch_size: int = 250
    n_figures: int = 4

    def __post_init__(self) -> None:
        check_positive_int(self.batch_size, "eval.batch_size")
        check_positive_int(self.n_figures, "eval.n_figures", minimum=0)


def trainer_defaults(**defaults) -> dataclasses.Field:
    """A ``trainer`` field whose defaults are ``TrainerConfig(**defaults)``: a task's
    own number of epochs, gradient clipping, ..."""
    return field(default_factory=lambda: TrainerConfig(**defaults))


@dataclass
class TaskConfig:
    """The root of a task's config: ``seed``, of everything random in a run. A task adds
    its ``model``, ``data``, ``optim`` and ``eval`` sections and, last (``--print-config``
    shows the task's own keys first), ``trainer`` with its defaults from
    :func:`trainer_defaults`.

    ``eval_splits`` are the splits scored after training: ``("test",)``; a task with
    more (a compositional split) overrides the property.
    """

    seed: int = 0

    @property
    def eval_splits(self) -> tuple[str, ...]:
        return ("test",)
