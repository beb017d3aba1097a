"""Validation at the public boundary: every check raises ParameterError naming the value.

Internal invariants use ``assert``; anything a user can pass goes through here, so the
messages read the same everywhere: ``"<name> must be ... Found: <value>"``. The one
exception, :func:`check_index`, raises what a list raises (TypeError, IndexError), as
``Dataset.__getitem__`` must.
"""

from __future__ import annotations

import numbers
import operator

import numpy as np
import torch

from xmodal.errors import ParameterError

__all__ = [
    "as_signal",
    "check_bool",
    "check_choice",
    "check_dropout",
    "check_index",
    "check_int_vector",
    "check_positive_int",
    "check_positive_number",
]

_REAL_DTYPES = (torch.float32, torch.float64)
_COMPLEX_DTYPES = (torch.complex64, torch.complex128)


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an integer >= ``minimum``; raise ParameterError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"{name} must be an integer >= {minimum}. Found: {value!r}")
    if value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}. Found: {value}")
    return int(value)


def check_positive_number(value, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as float if it is a finite number > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name} must be a real number. Found: {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ParameterError(f"{name} must be a finite number {bound}. Found: {value}")
    return value


def check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{name} must be True or False. Found: {value!r}")
    return bool(value)


def check_dropout(value, name: str) -> float:
    """Return ``value`` as float if it is a real number in ``[0, 1)`` (a dropout probability)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ParameterError(f"{name} must be in [0, 1). Found: {value!r}")
    return float(value)


def check_choice(value, name: str, choices) -> str:
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ParameterError(f"{name} must be one of {options}. Found: {value!r}")
    return value


def check_index(index, size: int, what: str) -> int:
    """``index`` as a position in ``[0, size)``, counted from the end when negative, as a
    list does: TypeError for a float or str, IndexError naming ``what`` (e.g. "VQAv2")
    when it is out of range."""
    i = operator.index(index)
    if i < 0:
        i += size
    if not 0 <= i < size:
        raise IndexError(f"{what} index out of range: {index} (size {size})")
    return i


def check_int_vector(value, name: str, n: int) -> torch.Tensor:
    """``value`` (a tensor, or a list that is converted) if it is an integer tensor of
    shape ``(n,)``, e.g. one length or id per row of a batch."""
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value)
    if value.shape != (n,) or value.is_floating_point() or value.is_complex():
        raise ParameterError(
            f"{name} must be an integer tensor of shape ({n},). "
            f"Found {value.dtype} {tuple(value.shape)}"
        )
    return value


def as_signal(
    x,
    name: str,
    *,
    min_ndim: int = 1,
    complex_ok: bool = False,
    real_ok: bool = True,
    check_finite: bool = True,
) -> torch.Tensor:
    """Return ``x`` as a float32/float64 (or complex) tensor after checking it is usable.

    Accepts a ``torch.Tensor`` or a ``numpy.ndarray`` (converted without a copy). Raises
    ParameterError for other types, integer or half dtypes, too few dimensions, an empty
    array, and NaN or Inf values, naming ``name`` and the offending value.
    """
    if isinstance(x, np.ndarray):
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise ParameterError(f"{name} must hold numbers. Found numpy dtype {x.dtype}")
        x = torch.from_numpy(x)
    elif not isinstance(x, torch.Tensor):
        raise ParameterError(
            f"{name} must be a torch.Tensor or numpy.ndarray. Found: {type(x).__name__}"
        )
    allowed = (_REAL_DTYPES if real_ok else ()) + (_COMPLEX_DTYPES if complex_ok else ())
    if x.dtype not in allowed:
        kinds = " or ".join(str(d).replace("torch.", "") for d in allowed)
        hint = ""
        if not x.is_floating_point() and not x.is_complex():
            hint = " (integer PCM: divide by the full-scale value, e.g. y.float() / 32768)"
        elif x.is_complex() and not complex_ok:
            hint = " (a complex spectrogram: pass its magnitude, S.abs())"
        raise ParameterError(f"{name} must have dtype {kinds}. Found: {x.dtype}{hint}")
    if x.ndim < min_ndim:
        raise ParameterError(
            f"{name} must have at least {min_ndim} dimension(s). Found shape {tuple(x.shape)}"
        )
    if x.numel() == 0:
        raise ParameterError(f"{name} is empty. Found shape {tuple(x.shape)}")
    # One reduction tells whether anything is NaN or Inf (either makes the sum non-finite);
    # only then look element by element, to name the first bad index. A sum that merely
    # overflows sends us to the element-wise check, which then finds nothing.
    if check_finite and not bool(torch.isfinite(x.sum())):
        finite = torch.isfinite(x)
        if not bool(finite.all()):
            bad = (~finite).nonzero()[0].tolist()
            count = int((~finite).sum())
            value = x[tuple(bad)].item()
            raise ParameterError(
                f"{name} contains {count} non-finite value(s) (NaN or Inf); "
                f"the first is {value} at index {tuple(bad)}"
            )
    return x


def check_padded(tokens, lengths, name: str = "tokens") -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch of sequences: ``tokens`` an integer ``(B, L)`` tensor with ``B >= 1``
    and ``lengths`` ``(B,)`` integers in ``[1, L]`` (a list is converted)."""
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.is_floating_point():
        found = (
            f"{tokens.dtype} {tuple(tokens.shape)}"
            if isinstance(tokens, torch.Tensor)
            else type(tokens).__name__
        )
        raise ParameterError(f"{name} must be an integer tensor (B, L). Found: {found}")
    lengths = check_int_vector(lengths, "lengths", tokens.shape[0])
    if tokens.shape[0] == 0:
        raise ParameterError(f"{name} is empty: nothing to encode")
    if int(lengths.min()) < 1 or int(lengths.max()) > tokens.shape[1]:
        raise ParameterError(
            f"lengths must be in [1, {tokens.shape[1]}] (the padded length). "
            f"Found {int(lengths.min())}..{int(lengths.max())}"
        )
    return tokens, lengths
