"""Amplitude scales: power and amplitude in decibels and back, mu-law and power-law
companding."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
import torch

from xmodal._checks import (
    as_signal,
    check_bool,
    check_positive_int,
    check_positive_number,
)
from xmodal.errors import ParameterError

__all__ = [
    "amplitude_to_db",
    "db_to_amplitude",
    "db_to_power",
    "mu_law_decode",
    "mu_law_encode",
    "power_law_compress",
    "power_law_decompress",
    "power_to_db",
]


# --------------------------------------------------------------------------- decibels


def _is_max(ref) -> bool:
    return ref in (torch.max, torch.amax, np.max, np.amax, max)


def _per_clip_ref(S: torch.Tensor, ref) -> torch.Tensor | float:
    """``ref`` as a float or a tensor that broadcasts over each (freq, time) clip."""
    if callable(ref):
        if _is_max(ref):
            if S.ndim < 2:
                return S.amax()
            return S.amax(dim=(-2, -1), keepdim=True)
        if S.ndim <= 2:
            return torch.as_tensor(ref(S), dtype=S.dtype, device=S.device)
        clips = S.reshape((-1,) + S.shape[-2:])
        values = [torch.as_tensor(ref(c), dtype=S.dtype, device=S.device) for c in clips]
        return torch.stack(values).reshape(S.shape[:-2] + (1, 1))
    if isinstance(ref, torch.Tensor):
        return ref.abs().to(S.dtype)
    if isinstance(ref, bool) or not isinstance(ref, numbers.Real):
        raise ParameterError(f"ref must be a number, a tensor or a callable. Found: {ref!r}")
    return abs(float(ref))


def _top_db_floor(log_spec: torch.Tensor, top_db: float) -> torch.Tensor:
    # One clip is one (freq, time) matrix; a 1-D input is one spectrum.
    dims = (-2, -1) if log_spec.ndim >= 2 else (-1,)
    peak = log_spec.amax(dim=dims, keepdim=True)
    return torch.maximum(log_spec, peak - top_db)


def power_to_db(
    S,
    *,
    ref: float | torch.Tensor | Callable = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> torch.Tensor:
    """Power to decibels: ``10 * log10(max(S, amin) / ref)``, floored ``top_db`` below the peak.

    Matches ``librosa.power_to_db`` for one clip. For a batch ``(..., freq, time)`` the
    ``top_db`` floor and a callable ``ref`` (e.g. ``torch.max`` or ``np.max``) are applied
    to each clip on its own, so a quiet clip is not floored by a loud one next to it in the
    batch; librosa takes the peak over the whole array.

    Args:
        S: power, real ``(..., freq, time)`` (or ``(freq,)`` for one spectrum).
        ref: reference power: a number, a tensor that broadcasts, or a callable applied to
            each clip.
        amin: smallest power taken into account (avoids log of zero).
        top_db: dynamic range kept below each clip's peak, or ``None`` for no floor.
    """
    S = as_signal(S, "S")
    amin = check_positive_number(amin, "amin")
    if top_db is not None:
        top_db = check_positive_number(top_db, "top_db", allow_zero=True)
    return _power_to_db(S, ref, amin, top_db)


def _power_to_db(S, ref, amin: float, top_db: float | None) -> torch.Tensor:
    ref_value = _per_clip_ref(S, ref)
    log_spec = 10.0 * torch.log10(S.clamp(min=amin))
    if isinstance(ref_value, torch.Tensor):
        log_spec = log_spec - 10.0 * torch.log10(ref_value.clamp(min=amin))
    else:
        log_spec = log_spec - 10.0 * math.log10(max(amin, ref_value))
    if top_db is not None:
        log_spec = _top_db_floor(log_spec, top_db)
    return log_spec


def amplitude_to_db(
    S,
    *,
    ref: float | torch.Tensor | Callable = 1.0,
    amin: float = 1e-5,
    top_db: float | None = 80.0,
) -> torch.Tensor:
    """Amplitude (magnitude, or a complex STFT) to decibels: ``20 * log10(|S| / ref)``.

    As ``librosa.amplitude_to_db``, with ``top_db`` applied per clip (see
    :func:`power_to_db`).
    """
    S = as_signal(S, "S", complex_ok=True)
    amin = check_positive_number(amin, "amin")
    magnitude = S.abs()
    ref_value = _per_clip_ref(magnitude, ref)
    if isinstance(ref_value, torch.Tensor):
        ref_value = ref_value.square()
    else:
        ref_value = ref_value**2
    return power_to_db(magnitude.square(), ref=ref_value, amin=amin**2, top_db=top_db)


def db_to_power(S_db, *, ref: float = 1.0) -> torch.Tensor:
    """Inverse of :func:`power_to_db` (without the floor): ``ref * 10 ** (S_db / 10)``."""
    S_db = as_signal(S_db, "S_db")
    return check_positive_number(ref, "ref") * torch.pow(10.0, S_db / 10.0)


def db_to_amplitude(S_db, *, ref: float = 1.0) -> torch.Tensor:
    """Inverse of :func:`amplitude_to_db`: ``ref * 10 ** (S_db / 20)``."""
    S_db = as_signal(S_db, "S_db")
    return check_positive_number(ref, "ref") * torch.pow(10.0, S_db / 20.0)


# --------------------------------------------------------------------------- companding


def _check_channels(quantization_channels) -> int:
    return check_positive_int(quantization_channels, "quantization_channels", minimum=2)


def mu_law_encode(x, *, quantization_channels: int = 256, quantize: bool = True) -> torch.Tensor:
    """Mu-law companding, as used by WaveNet: ``sign(x) ln(1 + mu|x|) / ln(1 + mu)``.

    ``mu = quantization_channels - 1``. With ``quantize`` the result is an int64 class
    index in ``[0, mu]`` (as ``torchaudio.functional.mu_law_encoding``); without, the
    companded value in ``[-1, 1]`` (as ``librosa.mu_compress(..., quantize=False)``).

    Args:
        x: waveform in ``[-1, 1]``.
    """
    x = as_signal(x, "x")
    mu = float(_check_channels(quantization_channels) - 1)
    peak = x.abs().max().item()
    if peak > 1.0:
        raise ParameterError(f"x must lie in [-1, 1] for mu-law. Found a sample of size {peak}")
    x_mu = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    if not check_bool(quantize, "quantize"):
        return x_mu
    return ((x_mu + 1.0) / 2.0 * mu + 0.5).to(torch.int64)


def mu_law_decode(
    x_mu, *, quantization_channels: int = 256, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Inverse of :func:`mu_law_encode`.

    Integer input is read as class indices in ``[0, mu]``; floating input as companded
    values in ``[-1, 1]``. Returns a waveform in ``[-1, 1]``.
    """
    mu = float(_check_channels(quantization_channels) - 1)
    if isinstance(x_mu, torch.Tensor) and not x_mu.is_floating_point() and not x_mu.is_complex():
        if x_mu.numel() == 0:
            raise ParameterError(f"x_mu is empty. Found shape {tuple(x_mu.shape)}")
        low, high = int(x_mu.min()), int(x_mu.max())
        if low < 0 or high > mu:
            raise ParameterError(
                f"x_mu must hold class indices in [0, {int(mu)}]. Found range [{low}, {high}]"
            )
        x = x_mu.to(dtype) / mu * 2.0 - 1.0
    else:
        x = as_signal(x_mu, "x_mu")
        peak = x.abs().max().item()
        if peak > 1.0:
            raise ParameterError(
                f"x_mu (companded, floating point) must lie in [-1, 1]. "
                f"Found a value of size {peak}"
            )
    return torch.sign(x) * (torch.pow(1.0 + mu, x.abs()) - 1.0) / mu


def power_law_compress(S, *, power: float = 0.3) -> torch.Tensor:
    """Compress a (complex) spectrogram's magnitude as ``|S| ** power``, keeping its phase.

    Used by audio-visual speech separation (Looking to Listen uses ``power=0.3``) so that
    quiet time-frequency bins count in the loss. Real input keeps its sign. Zero bins stay
    0 with a gradient of 0 (``torch.polar(|S| ** power, angle(S))`` would give NaN there:
    the derivatives of ``|S| ** power`` for power < 1 and of the angle are infinite at 0).
    """
    S = as_signal(S, "S", complex_ok=True)
    power = check_positive_number(power, "power")
    mag = S.abs()
    nonzero = mag > 0
    safe = torch.where(nonzero, mag, torch.ones_like(mag))
    # The phase as a unit phasor (the sign, for real S): 0 where S is 0, and every operation
    # there sees a magnitude of 1, so torch.where sends the zero bins no gradient.
    return (S / safe) * torch.where(nonzero, safe.pow(power), torch.zeros_like(mag))


def power_law_decompress(S, *, power: float = 0.3) -> torch.Tensor:
    """Inverse of :func:`power_law_compress` with the same ``power``."""
    power = check_positive_number(power, "power")
    return power_law_compress(S, power=1.0 / power)
