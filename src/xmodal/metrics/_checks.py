"""Input checks the caption metrics share (:mod:`~xmodal.metrics.captioning` and
:mod:`~xmodal.metrics.grounding`)."""

from __future__ import annotations

from collections.abc import Sequence

from xmodal.errors import ParameterError


def check_strings(values, name: str) -> list[str]:
    """``values`` as a list of strings; ParameterError naming ``name`` otherwise."""
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ParameterError(
            f"{name} must be a sequence of strings. Found: {type(values).__name__}"
        )
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise ParameterError(f"{name}[{i}] must be a string. Found: {v!r}")
    return list(values)


def check_lengths(n: int, m: int, a: str, b: str) -> None:
    """``a`` and ``b`` (``n`` and ``m`` entries) must have one entry per image."""
    if n != m:
        raise ParameterError(f"{a} and {b} must have one entry per image. Found {n} and {m}")
