"""What the tasks on the world's scenes share (``caption``, ``vqa``): the compositional
split.

With ``data.compositional=true`` the world keeps chosen (colour, shape) combinations out
of training, validation and test, and the run is also scored on the ``compositional``
split, whose every scene shows one of them (:class:`CompositionalConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass

from xmodal.engine.base import TaskConfig

__all__ = ["CompositionalConfig"]


@dataclass
class CompositionalConfig(TaskConfig):
    """The root of a task config whose ``data`` section has ``name`` and
    ``compositional``: the scored splits are ``test`` and, with the world's
    ``compositional`` on, ``compositional``."""

    @property
    def eval_splits(self) -> tuple[str, ...]:
        if self.data.name == "world" and self.data.compositional:
            return ("test", "compositional")
        return ("test",)
