"""The mel scale: Hz to mels and back, mel filterbanks and the mel spectrogram."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from xmodal._checks import (
    as_signal,
    check_bool,
    check_positive_int,
    check_positive_number,
)
from xmodal.audio.functional.fourier import (
    HOP_LENGTH,
    N_FFT,
    SR,
    WIN_LENGTH,
    _blocked_frames,
    _checked_framing,
    _PowerEmitter,
    _spectrogram,
    _uses_blocks,
)
from xmodal.errors import ParameterError

__all__ = [
    "fft_frequencies",
    "hz_to_mel",
    "mel_filterbank",
    "mel_frequencies",
    "mel_to_hz",
    "melspectrogram",
]

N_MELS = 80


def _as_float64(x):
    return torch.as_tensor(x, dtype=torch.float64)


def _like_input(result: torch.Tensor, x):
    if isinstance(x, torch.Tensor):
        return result
    if np.ndim(x) == 0:
        return float(result)
    return result.numpy()


# Slaney's Auditory Toolbox mel scale: linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(frequencies, *, htk: bool = False):
    """Hz to mels: Slaney's scale (default) or HTK's ``2595 log10(1 + f / 700)``.

    Takes and returns a float, a numpy array or a tensor (float64).
    """
    f = _as_float64(frequencies)
    if htk:
        mels = 2595.0 * torch.log10(1.0 + f / 700.0)
    else:
        linear = f / _F_SP
        log = _MIN_LOG_MEL + torch.log(f.clamp(min=_MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
        mels = torch.where(f >= _MIN_LOG_HZ, log, linear)
    return _like_input(mels, frequencies)


def mel_to_hz(mels, *, htk: bool = False):
    """Mels to Hz: the inverse of :func:`hz_to_mel`."""
    m = _as_float64(mels)
    if htk:
        f = 700.0 * (torch.pow(10.0, m / 2595.0) - 1.0)
    else:
        linear = _F_SP * m
        log = _MIN_LOG_HZ * torch.exp(_LOGSTEP * (m.clamp(min=_MIN_LOG_MEL) - _MIN_LOG_MEL))
        f = torch.where(m >= _MIN_LOG_MEL, log, linear)
    return _like_input(f, mels)


def mel_frequencies(
    n_mels: int = 128, *, fmin: float = 0.0, fmax: float = 11025.0, htk: bool = False
) -> torch.Tensor:
    """``n_mels`` frequencies (Hz, float64) evenly spaced on the mel scale from fmin to fmax."""
    n_mels = check_positive_int(n_mels, "n_mels")
    low = hz_to_mel(float(fmin), htk=htk)
    high = hz_to_mel(float(fmax), htk=htk)
    return mel_to_hz(torch.linspace(low, high, n_mels, dtype=torch.float64), htk=htk)


def fft_frequencies(*, sr: float = SR, n_fft: int = N_FFT) -> torch.Tensor:
    """Centre frequency (Hz, float64) of each of the ``1 + n_fft // 2`` STFT bins."""
    sr = check_positive_number(sr, "sr")
    n_fft = check_positive_int(n_fft, "n_fft")
    return torch.arange(1 + n_fft // 2, dtype=torch.float64) * (sr / n_fft)


def _check_mel_params(sr, n_fft, n_mels, fmin, fmax, htk, norm):
    sr = check_positive_number(sr, "sr")
    n_fft = check_positive_int(n_fft, "n_fft")
    n_mels = check_positive_int(n_mels, "n_mels")
    fmin = check_positive_number(fmin, "fmin", allow_zero=True)
    nyquist = sr / 2
    fmax = nyquist if fmax is None else check_positive_number(fmax, "fmax")
    if fmax > nyquist:
        raise ParameterError(f"fmax must be <= sr / 2 = {nyquist:g} Hz. Found: fmax={fmax:g}")
    if fmin >= fmax:
        raise ParameterError(f"fmin must be < fmax. Found: fmin={fmin:g}, fmax={fmax:g}")
    check_bool(htk, "htk")
    if norm is not None and norm != "slaney":
        if isinstance(norm, bool) or not isinstance(norm, (int, float)) or not norm > 0:
            raise ParameterError(
                f"norm must be None, 'slaney' or a p-norm order > 0 (e.g. 1, 2, math.inf). "
                f"Found: {norm!r}"
            )
    return sr, n_fft, n_mels, fmin, fmax


@lru_cache(maxsize=32)
def _mel_filterbank64(sr, n_fft, n_mels, fmin, fmax, htk, norm) -> torch.Tensor:
    fftfreqs = torch.arange(1 + n_fft // 2, dtype=torch.float64) * (sr / n_fft)
    mel_f = mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax, htk=htk)
    fdiff = torch.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = torch.minimum(lower, upper).clamp(min=0.0)
    empty = (weights.amax(dim=1) <= 0).nonzero().flatten().tolist()
    if empty:
        raise ParameterError(
            f"n_mels={n_mels} is too many for n_fft={n_fft} at sr={sr:g} between "
            f"{fmin:g} and {fmax:g} Hz: {len(empty)} mel filter(s) cover no FFT bin "
            f"(the first is band {empty[0]}); lower n_mels or raise n_fft"
        )
    if norm == "slaney":
        # Each triangle gets unit area in Hz, so the bands have constant energy per Hz.
        weights = weights * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    elif norm is not None:
        weights = weights / torch.linalg.vector_norm(weights, ord=norm, dim=1, keepdim=True)
    return weights


def mel_filterbank(
    *,
    sr: float = SR,
    n_fft: int = N_FFT,
    n_mels: int = N_MELS,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | float | None = "slaney",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Triangular mel filters, as ``librosa.filters.mel``.

    Args:
        fmax: highest frequency (Hz); defaults to ``sr / 2``.
        htk: HTK's mel formula instead of Slaney's.
        norm: ``"slaney"`` (each triangle has unit area in Hz), ``None``, or a p-norm
            order applied to each filter.

    Returns:
        ``(n_mels, 1 + n_fft // 2)``. ``mel = filterbank @ power_spectrogram``.

    Raises:
        ParameterError: if a filter covers no FFT bin (``n_mels`` too large for ``n_fft``),
        which librosa only warns about.
    """
    sr, n_fft, n_mels, fmin, fmax = _check_mel_params(sr, n_fft, n_mels, fmin, fmax, htk, norm)
    fb = _mel_filterbank64(sr, n_fft, n_mels, fmin, fmax, bool(htk), norm)
    return fb.to(dtype=dtype, device=device, copy=True)


def _melspectrogram(y, n_fft, hop_length, win_length, window, center, pad_mode, power, fb):
    """``fb @ |stft(y)| ** power`` for ``fb (n_mels, 1 + n_fft // 2)``."""
    if not _uses_blocks(y, window) or fb.requires_grad:
        S = _spectrogram(y, n_fft, hop_length, win_length, window, center, pad_mode, power)
        return torch.matmul(fb, S)
    emit = _PowerEmitter(n_fft, power, fb)
    return _blocked_frames(y, n_fft, hop_length, win_length, window, center, pad_mode,
                           fb.shape[0], y.dtype, emit)  # fmt: skip


def melspectrogram(
    y=None,
    *,
    sr: float = SR,
    S=None,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    win_length: int = WIN_LENGTH,
    window: str | torch.Tensor = "hamming",
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 2.0,
    n_mels: int = N_MELS,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | float | None = "slaney",
) -> torch.Tensor:
    """Mel spectrogram, as ``librosa.feature.melspectrogram``.

    Give either a waveform ``y (..., time)`` or a spectrogram ``S (..., 1 + n_fft // 2,
    frames)`` already raised to ``power`` (then ``n_fft`` is ``2 * (freq - 1)``).

    Returns:
        ``(..., n_mels, frames)``.
    """
    if (y is None) == (S is None):
        raise ParameterError("give exactly one of y (a waveform) or S (a spectrogram)")
    if S is None:
        power = check_positive_number(power, "power")
        y, frames = _checked_framing(y, n_fft, hop_length, win_length, window, center, pad_mode)
        fb = mel_filterbank(
            sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm,
            dtype=y.dtype, device=y.device,
        )  # fmt: skip
        return _melspectrogram(y, *frames, power, fb)
    S = as_signal(S, "S", min_ndim=2)
    fb = mel_filterbank(
        sr=sr, n_fft=2 * (S.shape[-2] - 1), n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk,
        norm=norm, dtype=S.dtype, device=S.device,
    )  # fmt: skip
    return torch.matmul(fb, S)
