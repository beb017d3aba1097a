"""The exceptions xmodal raises on bad input.

Every error a user can cause is an :class:`XmodalError`, so one ``except`` catches them
all. :class:`ParameterError` is also a :class:`ValueError`, as in librosa and as callers
of PyTorch expect for a bad argument; :class:`DataError` is for data that cannot be read
or is not what it claims to be (a corrupt file, a truncated stream, NaN samples in a file).
"""

from __future__ import annotations

__all__ = ["XmodalError", "ParameterError", "DataError"]


class XmodalError(Exception):
    """Root of every exception xmodal raises on purpose."""


class ParameterError(XmodalError, ValueError):
    """A function or constructor was given a value it cannot work with.

    The message names the parameter and echoes the value, e.g.
    ``"hop_length must be > 0. Found: 0"``.
    """


class DataError(XmodalError):
    """Data (a file, a stream, a dataset record) cannot be used as it is."""
