"""The learning-rate plan every task shares: steps planned from the trainer config, and a
linear warm-up then cosine decay, as a Lightning ``configure_optimizers`` answer.

No Lightning import: a task builds its optimizer and hands it here::

    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    total = planned_steps(config.trainer, n_train // (batch_size * world_size()))
    return warmup_cosine(optimizer, warmup_steps=100, total_steps=total, min_lr_ratio=0.02)

or, with Adam, keeps an :class:`AdamConfig` as its ``optim`` config section and calls
``config.optim.configure(model.parameters(), total)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from xmodal.engine.base import Section, integer, number
from xmodal.engine.config import TrainerConfig
from xmodal.errors import ParameterError

__all__ = ["AdamConfig", "planned_steps", "warmup_cosine", "world_size"]


@dataclass
class AdamConfig(Section):
    """Adam with a linear warm-up and a cosine decay to ``min_lr_ratio * lr``: the
    ``optim`` config section of the tasks that train with Adam. A task with another
    default learning rate subclasses it and sets ``lr``."""

    key: ClassVar[str] = "optim"

    lr: float = number(2e-3, positive=True)
    weight_decay: float = number(0.0)
    warmup_steps: int = integer(100, minimum=0)
    min_lr_ratio: float = 0.02

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ParameterError(
                f"optim.min_lr_ratio must be in [0, 1]. Found: {self.min_lr_ratio}"
            )

    def configure(self, params, total_steps: int) -> dict:
        """Adam over ``params`` on this plan for ``total_steps`` steps, as
        ``configure_optimizers`` returns it."""
        optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        return warmup_cosine(
            optimizer,
            warmup_steps=self.warmup_steps,
            total_steps=total_steps,
            min_lr_ratio=self.min_lr_ratio,
        )


def world_size() -> int:
    """Processes training together (1 without torch.distributed): each sees 1/world_size
    of the data, so the optimizer steps of an epoch are counted per process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def planned_steps(trainer: TrainerConfig, per_epoch: int) -> int:
    """The optimizer steps a run will take: ``trainer.max_steps`` when set, else
    ``per_epoch`` (batches of one process's epoch) cut by ``limit_train_batches``, times
    ``max_epochs``; at least 1."""
    if trainer.max_steps and trainer.max_steps > 0:
        return trainer.max_steps
    limit = trainer.limit_train_batches
    if isinstance(limit, int):
        per_epoch = min(per_epoch, limit)
    elif limit < 1.0:
        per_epoch = int(per_epoch * limit)
    return max(1, per_epoch * trainer.max_epochs)


def warmup_cosine(
    optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int, min_lr_ratio: float
) -> dict:
    """``optimizer`` with a per-step LambdaLR: the factor rises linearly to 1 over
    ``warmup_steps``, then falls along a half cosine to ``min_lr_ratio`` at
    ``total_steps`` (and stays there)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
