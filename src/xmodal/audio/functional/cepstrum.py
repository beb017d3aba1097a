"""The cepstrum: the DCT-II matrix, mel-frequency cepstral coefficients and delta
features."""

from __future__ import annotations

import math
import numbers
from functools import lru_cache

import numpy as np
import torch

from xmodal._checks import (
    as_signal,
    check_choice,
    check_positive_int,
    check_positive_number,
)
from xmodal.audio.functional.fourier import HOP_LENGTH, N_FFT, SR, WIN_LENGTH
from xmodal.audio.functional.mel import N_MELS, melspectrogram
from xmodal.audio.functional.scale import _power_to_db
from xmodal.errors import ParameterError

__all__ = ["dct_matrix", "delta", "mfcc"]

N_MFCC = 13


# --------------------------------------------------------------------------- cepstrum


@lru_cache(maxsize=32)
def _dct_matrix64(n_out: int, n_in: int, norm: str | None, lifter: float) -> torch.Tensor:
    n = torch.arange(n_in, dtype=torch.float64)
    k = torch.arange(n_out, dtype=torch.float64)[:, None]
    # scipy.fftpack.dct type II: y_k = 2 sum_n x_n cos(pi k (2n + 1) / (2N)).
    D = 2.0 * torch.cos(math.pi * k * (2.0 * n + 1.0) / (2.0 * n_in))
    if norm == "ortho":
        D[0] *= math.sqrt(1.0 / (4.0 * n_in))
        D[1:] *= math.sqrt(1.0 / (2.0 * n_in))
    if lifter > 0:
        # Sinusoidal liftering (HTK): boosts the higher cepstral coefficients.
        k1 = torch.arange(1, n_out + 1, dtype=torch.float64)
        lift = 1.0 + (lifter / 2.0) * torch.sin(math.pi * k1 / lifter)
        D = D * lift[:, None]
    return D


def dct_matrix(
    n_out: int,
    n_in: int,
    *,
    norm: str | None = "ortho",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The first ``n_out`` rows of the DCT-II matrix of size ``n_in``: ``(n_out, n_in)``.

    ``dct_matrix(n, n) @ x`` equals ``scipy.fftpack.dct(x, type=2, norm=norm, axis=0)``;
    with ``norm="ortho"`` the full matrix is orthogonal.
    """
    n_in = check_positive_int(n_in, "n_in")
    n_out = check_positive_int(n_out, "n_out")
    if n_out > n_in:
        raise ParameterError(f"n_out must be <= n_in. Found: n_out={n_out}, n_in={n_in}")
    check_choice(norm, "norm", ("ortho", None))
    return _dct_matrix64(n_out, n_in, norm, 0.0).to(dtype=dtype, device=device, copy=True)


def mfcc(
    y=None,
    *,
    sr: float = SR,
    S=None,
    n_mfcc: int = N_MFCC,
    dct_type: int = 2,
    norm: str | None = "ortho",
    lifter: float = 0.0,
    top_db: float | None = 80.0,
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
    mel_norm: str | float | None = "slaney",
) -> torch.Tensor:
    """Mel-frequency cepstral coefficients, as ``librosa.feature.mfcc``.

    ``DCT-II(power_to_db(melspectrogram(y)))``, keeping the first ``n_mfcc`` rows,
    optionally liftered. Give either a waveform ``y (..., time)`` or a log-power mel
    spectrogram ``S (..., n_mels, frames)`` in dB.

    Args:
        norm: DCT normalisation, ``"ortho"`` or ``None`` (scipy's convention).
        lifter: if > 0, multiply coefficient ``k`` by ``1 + (lifter / 2) sin(pi (k + 1) /
            lifter)``.
        top_db: the dB floor used on the mel spectrogram (per clip; see
            :func:`power_to_db`).
        mel_norm: ``norm`` of the mel filterbank.

    Returns:
        ``(..., n_mfcc, frames)``.
    """
    if (y is None) == (S is None):
        raise ParameterError("give exactly one of y (a waveform) or S (a log-mel spectrogram)")
    if dct_type != 2:
        raise ParameterError(f"dct_type must be 2 (DCT-II). Found: {dct_type!r}")
    check_choice(norm, "norm", ("ortho", None))
    n_mfcc = check_positive_int(n_mfcc, "n_mfcc")
    lifter = check_positive_number(lifter, "lifter", allow_zero=True)
    if S is None:
        mel = melspectrogram(
            y, sr=sr, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
            window=window, center=center, pad_mode=pad_mode, power=power,
            n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=mel_norm,
        )  # fmt: skip
        if top_db is not None:
            top_db = check_positive_number(top_db, "top_db", allow_zero=True)
        S = _power_to_db(mel, 1.0, 1e-10, top_db)  # mel was just made: no second check
    else:
        S = as_signal(S, "S", min_ndim=2)
    if n_mfcc > S.shape[-2]:
        raise ParameterError(
            f"n_mfcc must be <= the number of mel bands ({S.shape[-2]}). Found: n_mfcc={n_mfcc}"
        )
    D = _dct_matrix64(n_mfcc, S.shape[-2], norm, lifter).to(dtype=S.dtype, device=S.device)
    return torch.matmul(D, S)


# --------------------------------------------------------------------------- deltas

_DELTA_MODES = ("interp", "nearest", "mirror", "constant", "wrap")
_DELTA_PAD = {
    "nearest": "replicate",
    "mirror": "reflect",
    "constant": "constant",
    "wrap": "circular",
}


@lru_cache(maxsize=16)
def _savgol64(width: int, order: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Savitzky-Golay derivative taps, and the edge maps of scipy's ``mode='interp'``."""
    from scipy.signal import savgol_coeffs

    taps = torch.from_numpy(savgol_coeffs(width, order, deriv=order, use="dot").copy())
    # At the edges scipy fits one polynomial to the first (last) `width` samples and
    # differentiates it; that is a fixed linear map of those samples, built here once.
    x = np.arange(width, dtype=np.float64)
    coef = np.polyfit(x, np.eye(width), order)  # column j: the fit to impulse j
    half = width // 2
    left = np.empty((half, width))
    right = np.empty((half, width))
    for j in range(width):
        d = np.polyder(coef[:, j], order)
        left[:, j] = np.polyval(d, x[:half])
        right[:, j] = np.polyval(d, x[width - half :])
    return taps, torch.from_numpy(left), torch.from_numpy(right)


def delta(
    data, *, width: int = 9, order: int = 1, axis: int = -1, mode: str = "interp"
) -> torch.Tensor:
    """Local derivative of a feature sequence (delta features), as ``librosa.feature.delta``.

    A Savitzky-Golay filter of ``width`` taps and polynomial order ``order`` taking the
    ``order``-th derivative along ``axis``.

    Args:
        data: ``(..., frames)`` features, e.g. MFCCs.
        width: odd number of frames >= 3; with ``mode="interp"`` at most the length of
            ``axis``.
        order: derivative order (1: delta, 2: delta-delta).
        mode: ``"interp"`` (fit a polynomial at the edges, librosa's default),
            ``"nearest"``, ``"mirror"``, ``"constant"`` or ``"wrap"``.

    Returns:
        tensor of the shape of ``data``.
    """
    data = as_signal(data, "data")
    width = check_positive_int(width, "width", minimum=3)
    if width % 2 == 0:
        raise ParameterError(f"width must be an odd integer >= 3. Found: {width}")
    order = check_positive_int(order, "order")
    if order >= width:
        raise ParameterError(f"order must be < width. Found: order={order}, width={width}")
    check_choice(mode, "mode", _DELTA_MODES)
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise ParameterError(f"axis must be an integer. Found: {axis!r}")
    if not -data.ndim <= axis < data.ndim:
        raise ParameterError(f"axis must be in [{-data.ndim}, {data.ndim}). Found: {axis}")
    length = data.shape[axis]
    if mode == "interp" and width > length:
        raise ParameterError(
            f"width={width} cannot exceed the {length} frames along axis {axis} "
            f"when mode='interp'; lower width or use another mode"
        )
    taps, left, right = (
        t.to(dtype=data.dtype, device=data.device) for t in _savgol64(width, order)
    )
    x = data.movedim(axis, -1)
    lead = x.shape[:-1]
    flat = x.reshape(-1, 1, length)
    half = width // 2
    kernel = taps.view(1, 1, width)
    if mode == "interp":
        middle = torch.nn.functional.conv1d(flat, kernel).squeeze(1)
        head = flat[:, 0, :width] @ left.T
        tail = flat[:, 0, -width:] @ right.T
        out = torch.cat([head, middle, tail], dim=-1)
    else:
        if mode == "mirror" and length <= half:
            raise ParameterError(
                f"mode='mirror' needs more than width // 2 = {half} frames. Found: {length}"
            )
        if mode == "wrap" and length < half:
            raise ParameterError(
                f"mode='wrap' needs at least width // 2 = {half} frames. Found: {length}"
            )
        padded = torch.nn.functional.pad(flat, (half, half), mode=_DELTA_PAD[mode])
        out = torch.nn.functional.conv1d(padded, kernel).squeeze(1)
    return out.reshape(lead + (length,)).movedim(-1, axis)
