"""What the text tasks share (``gpt``, ``word2vec``): the data section of a task that
reads the world's captions or a text file.

:class:`TextDataConfig`: ``data=world`` (the default) or ``data=text`` with ``data.path``;
``data=FILE`` on the command line (``name`` set to a path) means ``name=text path=FILE``,
and setting ``path`` alone also selects the file. :class:`HeldOutTextConfig` adds the
fractions of the file held out as val and test (its end, see
:func:`xmodal.text.lm_data.split_text`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from xmodal.engine.base import DataConfig
from xmodal.errors import ParameterError

__all__ = ["HeldOutTextConfig", "TextDataConfig"]


@dataclass
class TextDataConfig(DataConfig):
    """``name=world``: the world's captions; ``name=text``: the UTF-8 file ``path``
    (``data=FILE`` for short)."""

    sources: ClassVar[tuple[str, ...]] = ("world", "text")

    path: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ParameterError(
                f"data.name must be 'world', 'text' or a file path. Found: {self.name!r}"
            )
        if self.name not in self.sources:  # `data=FILE`: the name is the file
            if self.path is not None and self.path != self.name:
                raise ParameterError(
                    f"data={self.name!r} names a file, but data.path={self.path!r} names "
                    "another; give one of them"
                )
            self.path, self.name = self.name, "text"
        elif self.path is not None:
            self.name = "text"
        if self.name == "text" and not self.path:
            raise ParameterError("data.name=text needs data.path (a UTF-8 text file). Found: None")
        super().__post_init__()


@dataclass
class HeldOutTextConfig(TextDataConfig):
    """:class:`TextDataConfig` whose file's last ``val_fraction + test_fraction`` is held
    out: val, then test (each in (0, 1), together < 1)."""

    val_fraction: float = 0.05
    test_fraction: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("val_fraction", "test_fraction"):
            value = getattr(self, key)
            if not 0.0 < value < 1.0:
                raise ParameterError(f"data.{key} must be in (0, 1). Found: {value!r}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ParameterError(
                "data.val_fraction + data.test_fraction must be < 1. "
                f"Found: {self.val_fraction} + {self.test_fraction}"
            )
