"""Names to constructors: the registry behind each encoder family's ``create_*``,
``list_*`` and ``register_*`` (timm's shape), written once.

    >>> ENCODERS = Registry("encoder")
    >>> @ENCODERS.register("tiny")
    ... def tiny(width=8): ...
    >>> ENCODERS.names()
    ['tiny']
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from xmodal._checks import check_choice
from xmodal.errors import ParameterError

__all__ = ["Registry"]


class Registry:
    """Constructors by name; ``kind`` names what they build in messages (``"encoder"``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._makers: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable:
        """Decorator: make ``fn(**kwargs)`` (a function or a class) available as
        ``create(name, **kwargs)``. A name taken or empty raises ParameterError."""
        if not isinstance(name, str) or not name:
            raise ParameterError(f"a {self.kind} name must be a non-empty string. Found: {name!r}")

        def wrap(fn: Callable) -> Callable:
            if name in self._makers:
                raise ParameterError(f"{self.kind} name is already registered. Found: {name!r}")
            self._makers[name] = fn
            return fn

        return wrap

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._makers)

    def create(self, name: str, **kwargs):
        """What ``name``'s constructor builds with ``kwargs``. An unknown name, a keyword
        the constructor does not take or a required one left out raises ParameterError
        (a misspelt option reads like every other bad value, not as a TypeError)."""
        check_choice(name, "name", self.names())
        maker = self._makers[name]
        self._check_arguments(name, maker, kwargs)
        return maker(**kwargs)

    def _check_arguments(self, name: str, maker: Callable, kwargs: dict) -> None:
        try:
            params = inspect.signature(maker).parameters.values()
        except (TypeError, ValueError):  # no signature to read: the maker checks its own
            return
        named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            unknown = [k for k in kwargs if k not in {p.name for p in named}]
            if unknown:
                raise ParameterError(
                    f"{self.kind} {name!r} takes the arguments "
                    f"{', '.join(p.name for p in named)}. "
                    f"Found: {', '.join(f'{k}={kwargs[k]!r}' for k in unknown)}"
                )
        missing = [p.name for p in named if p.default is p.empty and p.name not in kwargs]
        if missing:
            raise ParameterError(
                f"{self.kind} {name!r} needs the argument(s) {', '.join(missing)}. "
                f"Found: {', '.join(sorted(kwargs)) or 'no arguments'}"
            )
