"""The config sections every task extends: data, eval and the root with seed and trainer.

A task's config is a tree of dataclasses. The parts every task has live here, once, with
their checks; a task subclasses them and adds only its own fields (or new defaults), and
declares ``trainer`` last with :func:`trainer_defaults` (see ``tasks/caption.py``).

``data=NAME`` picks one of the section's ``sources``; the task reads that source with its
method ``NAME_data(split)`` (see :meth:`xmodal.engine.task.Task.data`).

A section's checks are declared with its fields, so a section is its list of keys::

    @dataclass
    class ModelConfig(Section):
        key: ClassVar[str] = "model"
        arch: str = choice("show-attend-tell", ARCHS)
        hidden_dim: int = integer(256)           # an int >= 1
        dropout: float = fraction(0.1)           # in [0, 1)
        gate: bool = flag(True)                  # True or False
        alpha_c: float = number(0.0)             # a finite number >= 0
        word2vec: str | None = None              # no check

Each one raises ParameterError naming the dotted key (``model.dropout must be in [0, 1).
Found: 1.5``). Checks between fields go in ``__post_init__`` after ``super().__post_init__()``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from xmodal._checks import (
    check_bool,
    check_choice,
    check_dropout,
    check_positive_int,
    check_positive_number,
)
from xmodal.engine.config import TrainerConfig

__all__ = [
    "DataConfig",
    "EvalConfig",
    "ImageDataConfig",
    "Section",
    "TaskConfig",
    "choice",
    "flag",
    "fraction",
    "integer",
    "number",
    "older_run_values",
    "trainer_defaults",
]

SPLITS = ("train", "val", "test")


def _checked(default, check, optional: bool) -> dataclasses.Field:
    return field(default=default, metadata={"check": check, "optional": optional})


def integer(default, *, minimum: int = 1, optional: bool = False) -> dataclasses.Field:
    """A field holding an int ``>= minimum`` (or None, when ``optional``)."""
    return _checked(default, lambda v, k: check_positive_int(v, k, minimum=minimum), optional)


def number(default, *, positive: bool = False, optional: bool = False) -> dataclasses.Field:
    """A field holding a finite number ``>= 0`` (``> 0`` when ``positive``)."""
    return _checked(
        default, lambda v, k: check_positive_number(v, k, allow_zero=not positive), optional
    )


def fraction(default, *, optional: bool = False) -> dataclasses.Field:
    """A field holding a number in ``[0, 1)`` (a dropout, a probability short of 1)."""
    return _checked(default, check_dropout, optional)


def flag(default: bool | None, *, optional: bool = False) -> dataclasses.Field:
    """A field holding True or False (also when the section is built in Python, where no
    YAML reading checks the type); ``optional``: or None."""
    return _checked(default, check_bool, optional)


def choice(default, options, *, optional: bool = False) -> dataclasses.Field:
    """A field holding one of ``options``."""
    return _checked(default, lambda v, k: check_choice(v, k, options), optional)


@dataclass
class Section:
    """A config section whose fields carry their checks (:func:`integer`, :func:`number`,
    :func:`fraction`, :func:`choice`, :func:`flag`); ``key`` is its name in the config
    (``model``; "" for the root)."""

    key: ClassVar[str] = ""

    @classmethod
    def _checks(cls) -> dict[str, tuple]:
        """Each field's (check, optional); a field a subclass declares again with a plain
        default (``train_size: int = 1000``) keeps the check of the class it came from."""
        checks: dict[str, tuple] = {}
        for klass in reversed(cls.__mro__):
            for name, f in getattr(klass, "__dataclass_fields__", {}).items():
                if f.metadata.get("check") is not None:
                    checks[name] = (f.metadata["check"], f.metadata.get("optional", False))
        return checks

    def __post_init__(self) -> None:
        for name, (check, optional) in self._checks().items():
            value = getattr(self, name)
            if not (value is None and optional):
                check(value, f"{self.key}.{name}" if self.key else name)


@dataclass
class DataConfig(Section):
    """Where the samples come from and how they are batched.

    ``name`` is one of ``sources`` (the class's list: ``world`` for every task, then the
    real dataset layouts it reads). On the world: ``world_seed`` and the split sizes;
    every source: ``batch_size`` and the loader's ``num_workers``.
    """

    key: ClassVar[str] = "data"
    sources: ClassVar[tuple[str, ...]] = ("world",)

    name: str = "world"
    world_seed: int = integer(0, minimum=0)
    train_size: int = integer(10_000)
    val_size: int = integer(500)
    test_size: int = integer(1_000)
    batch_size: int = integer(32)
    num_workers: int = integer(2, minimum=0)

    def __post_init__(self) -> None:
        check_choice(self.name, "data.name", self.sources)
        super().__post_init__()

    def size(self, split: str) -> int:
        """The world's number of samples in ``split`` (``test_size`` for any other split,
        such as ``compositional``)."""
        return {"train": self.train_size, "val": self.val_size}.get(split, self.test_size)


@dataclass
class ImageDataConfig(DataConfig):
    """:class:`DataConfig` for tasks with images: ``image_size``, the side of the world's
    images and of real images once resized."""

    image_size: int = integer(64)


@dataclass
class EvalConfig(Section):
    """Evaluation: ``batch_size`` of the evaluation passes, ``n_figures`` drawn per run."""

    key: ClassVar[str] = "eval"

    batch_size: int = integer(250)
    n_figures: int = integer(4, minimum=0)


def trainer_defaults(**defaults) -> dataclasses.Field:
    """A ``trainer`` field whose defaults are ``TrainerConfig(**defaults)``: a task's
    own number of epochs, gradient clipping, ..."""
    return field(default_factory=lambda: TrainerConfig(**defaults))


@dataclass
class TaskConfig(Section):
    """The root of a task's config: ``seed``, of everything random in a run. A task adds
    its ``model``, ``data``, ``optim`` and ``eval`` sections and, last (``--print-config``
    shows the task's own keys first), ``trainer`` with its defaults from
    :func:`trainer_defaults`.

    ``eval_splits`` are the splits scored after training: ``("test",)``; a task with
    more (a compositional split) overrides the property.
    """

    seed: int = integer(0, minimum=0)

    @property
    def eval_splits(self) -> tuple[str, ...]:
        return ("test",)


def older_run_values(run_dir: str | Path, section, **values) -> None:
    """For each key of ``values`` missing from the ``section.key`` section (``model``, ...)
    of ``run_dir``'s ``config.yaml``: set that field of ``section`` (a config section) to
    the value given. A config.yaml that cannot be read changes nothing."""
    import yaml

    try:
        saved = yaml.safe_load((Path(run_dir) / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return
    keys = saved.get(section.key) if isinstance(saved, dict) else None
    if isinstance(keys, dict):
        for key, value in values.items():
            if key not in keys:
                setattr(section, key, value)
