"""The sound front end as pure functions on tensors of shape ``(..., time)``.

Waveform -> STFT (Hamming window by default) -> power spectrum -> spectrogram -> mel
spectrogram -> log (dB) -> MFCC, and back to a waveform with the inverse STFT or
Griffin-Lim. Names and parameters are the ones librosa users know; the defaults are the
speech-processing ones: 16 kHz, a 25 ms Hamming window (``win_length=400``) zero-padded to
``n_fft=512``, a 10 ms hop (``hop_length=160``), 80 mel bands and 13 MFCCs. Set any of
them to match librosa (``n_fft=2048, win_length=2048, hop_length=512, window="hann"``).

Every function takes a float32 or float64 tensor (or a numpy array) with any number of
leading batch dimensions, runs on the tensor's device, and is differentiable wherever
the mathematics is. Bad input raises :class:`~xmodal.errors.ParameterError` naming the
parameter and the value.

Example:
    >>> import torch
    >>> from xmodal.audio import functional as F
    >>> y = torch.sin(2 * torch.pi * 440 * torch.arange(16000) / 16000)
    >>> F.mfcc(y=y, sr=16000).shape        # (n_mfcc, frames)
    torch.Size([13, 101])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch

from xmodal._checks import (
    as_signal,
    check_bool,
    check_choice,
    check_positive_int,
    check_positive_number,
)
from xmodal.errors import ParameterError

__all__ = [
    "amplitude_to_db",
    "db_to_amplitude",
    "db_to_power",
    "dct_matrix",
    "delta",
    "fft_frequencies",
    "get_window",
    "griffinlim",
    "hz_to_mel",
    "istft",
    "mel_filterbank",
    "mel_frequencies",
    "mel_to_hz",
    "melspectrogram",
    "mfcc",
    "mu_law_decode",
    "mu_law_encode",
    "power_law_compress",
    "power_law_decompress",
    "power_to_db",
    "spectral_convergence",
    "spectrogram",
    "stft",
]

# Lecture defaults: 16 kHz, 25 ms Hamming window, 10 ms hop, 512-point FFT.
SR = 16000
N_FFT = 512
WIN_LENGTH = 400
HOP_LENGTH = 160
N_MELS = 80
N_MFCC = 13

# np.pad / librosa names on the left, torch.nn.functional.pad names on the right.
_PAD_MODES = {
    "constant": "constant",
    "reflect": "reflect",
    "edge": "replicate",
    "replicate": "replicate",
    "wrap": "circular",
    "circular": "circular",
}


# --------------------------------------------------------------------------- windows


def get_window(
    window: str | torch.Tensor = "hamming",
    win_length: int = WIN_LENGTH,
    *,
    periodic: bool = True,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A window function of ``win_length`` samples.

    Args:
        window: ``"hamming"`` (0.54 - 0.46 cos), ``"hann"`` (alias ``"hanning"``),
            ``"ones"`` (alias ``"boxcar"``, ``"rectangular"``), or a 1-D tensor of length
            ``win_length`` used as given.
        win_length: window length in samples.
        periodic: ``True`` gives the periodic (DFT-even) window used for spectral
            analysis, as ``scipy.signal.get_window(..., fftbins=True)`` and librosa do;
            ``False`` the symmetric one used for filter design.

    Returns:
        ``(win_length,)`` tensor. Computed in float64 and rounded once to ``dtype``.
    """
    win_length = check_positive_int(win_length, "win_length")
    check_bool(periodic, "periodic")
    if isinstance(window, (torch.Tensor, np.ndarray)):
        w = as_signal(window, "window")
        if w.ndim != 1 or w.shape[0] != win_length:
            raise ParameterError(
                f"window must be 1-D of length win_length={win_length}. "
                f"Found shape {tuple(w.shape)}"
            )
        return w.to(dtype=dtype, device=device)
    if not isinstance(window, str):
        raise ParameterError(f"window must be a name or a 1-D tensor. Found: {window!r}")
    name = window.lower()
    if name == "hamming":
        w = torch.hamming_window(win_length, periodic=periodic, dtype=torch.float64)
    elif name in ("hann", "hanning"):
        w = torch.hann_window(win_length, periodic=periodic, dtype=torch.float64)
    elif name in ("ones", "boxcar", "rectangular"):
        w = torch.ones(win_length, dtype=torch.float64)
    else:
        raise ParameterError(
            f"window must be 'hamming', 'hann', 'ones' or a tensor. Found: {window!r}"
        )
    return w.to(dtype=dtype, device=device)


def _window_for(window, win_length: int, like: torch.Tensor) -> torch.Tensor:
    real = like.real if like.is_complex() else like
    return get_window(window, win_length, dtype=real.dtype, device=like.device)


# --------------------------------------------------------------------------- STFT


def _check_overlap(hop_length: int, win_length: int) -> None:
    # Overlap-add needs every sample covered by some window.
    if hop_length > win_length:
        raise ParameterError(
            f"hop_length must be <= win_length for the inverse STFT. "
            f"Found: hop_length={hop_length}, win_length={win_length}"
        )


def _check_frames(n_fft, hop_length, win_length) -> tuple[int, int, int]:
    n_fft = check_positive_int(n_fft, "n_fft")
    hop_length = check_positive_int(hop_length, "hop_length")
    win_length = check_positive_int(win_length, "win_length")
    if win_length > n_fft:
        raise ParameterError(
            f"win_length must be <= n_fft. Found: win_length={win_length}, n_fft={n_fft}"
        )
    return n_fft, hop_length, win_length


def _check_length_for(y: torch.Tensor, n_fft: int, center: bool, pad_mode: str) -> None:
    n = y.shape[-1]
    if not center and n < n_fft:
        raise ParameterError(
            f"y has {n} samples, fewer than n_fft={n_fft}; use center=True or a longer signal"
        )
    if center and pad_mode == "reflect" and n <= n_fft // 2:
        raise ParameterError(
            f"y has {n} samples; pad_mode='reflect' needs more than n_fft // 2 = {n_fft // 2}"
        )
    if center and pad_mode == "circular" and n < n_fft // 2:
        raise ParameterError(
            f"y has {n} samples; pad_mode='wrap' needs at least n_fft // 2 = {n_fft // 2}"
        )


def _uses_blocks(y: torch.Tensor, window: torch.Tensor) -> bool:
    """The blocked CPU kernels below serve inference; autograd and GPUs use torch.stft."""
    needs_grad = torch.is_grad_enabled() and (y.requires_grad or window.requires_grad)
    return not needs_grad and y.device.type == "cpu"


# Frames per block in the CPU kernels: 2 MiB of float32 frames and their spectra, which
# stays in cache (512 and 2048 measured slower; docs/benchmarks.md).
_BLOCK_ROWS = 1024


def _frame_blocks(n_clips: int, n_frames: int, rows: int) -> list[tuple[slice, int, int]]:
    """``(clips, first_frame, end_frame)`` blocks of at most ``rows`` frames in all."""
    if n_frames >= rows:  # long clips: runs of frames
        return [
            (slice(c, c + 1), t, min(t + rows, n_frames))
            for c in range(n_clips)
            for t in range(0, n_frames, rows)
        ]
    per = rows // n_frames  # short clips: several whole clips per block
    return [(slice(c, c + per), 0, n_frames) for c in range(0, n_clips, per)]


def _blocked_frames(y, n_fft, hop_length, win_length, window, center, pad_mode, width, dtype,
                    emit):  # fmt: skip
    """Window and transform the STFT frames of ``y`` a block at a time on the CPU.

    torch.stft writes every windowed frame into one (frames, n_fft) temporary before the
    FFT reads it back, which costs about as much as the FFT itself; whatever follows (the
    power, the mel projection) then makes more full-size passes. Here each block of
    frames is windowed into a buffer that stays in cache, and ``emit(block, out)`` turns
    it into that block's rows of the result: (..., width) per frame. Same arithmetic.

    Returns:
        ``(..., width, frames)``, a transposed view of frames-major memory, as torch.stft
        returns its result.
    """
    lead = y.shape[:-1]
    flat = y.reshape(-1, y.shape[-1])
    if center:
        pad = n_fft // 2
        flat = torch.nn.functional.pad(flat.unsqueeze(0), (pad, pad), mode=pad_mode)[0]
    left = (n_fft - win_length) // 2  # the window sits centred in the n_fft frame
    frames = flat.unfold(-1, n_fft, hop_length)[..., left : left + win_length]
    n_clips, n_frames = frames.shape[:2]
    out = torch.empty((n_clips, n_frames, width), dtype=dtype, device=y.device)
    buffer = y.new_zeros(min(_BLOCK_ROWS, n_clips * n_frames) * n_fft)
    for c, t0, t1 in _frame_blocks(n_clips, n_frames, _BLOCK_ROWS):
        src, dst = frames[c, t0:t1], out[c, t0:t1]
        block = buffer[: src.shape[:-1].numel() * n_fft].view(src.shape[:-1] + (n_fft,))
        torch.mul(src, window, out=block[..., left : left + win_length])
        emit(block, dst)
    return out.transpose(-1, -2).reshape(lead + (width, n_frames))


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _stft(y, n_fft, hop_length, win_length, window, center, pad_mode):
    if not _uses_blocks(y, window):
        # torch.stft takes (time,) or (batch, time): fold every leading dimension into one.
        S = torch.stft(
            y.reshape(-1, y.shape[-1]),
            n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=window,
            center=center,
            pad_mode=pad_mode,
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        return S.reshape(y.shape[:-1] + S.shape[-2:])

    def emit(block, dst):
        torch.fft.rfft(block, out=dst)

    return _blocked_frames(y, n_fft, hop_length, win_length, window, center, pad_mode,
                           n_fft // 2 + 1, _complex_dtype(y.dtype), emit)  # fmt: skip


class _PowerEmitter:
    """``emit`` for _blocked_frames: |rfft(frame)| ** power, optionally projected by ``fb``.

    The spectrum and the power of a block live in buffers reused from block to block, so
    neither the complex STFT nor the full power spectrogram is ever written out.
    """

    def __init__(self, n_fft: int, power: float, fb=None):
        self.n_bins, self.power = n_fft // 2 + 1, power
        self.spec = self.pow = None
        self.groups = []
        if fb is not None:
            # Mel filters are bands of neighbouring bins: project each run of bands from
            # only the bins they cover. The products skipped are exact zeros.
            n_mels = fb.shape[0]
            n_groups = 4 if n_mels >= 16 else 1
            edges = [round(i * n_mels / n_groups) for i in range(n_groups + 1)]
            for a, b in zip(edges[:-1], edges[1:], strict=True):
                support = (fb[a:b] != 0).any(dim=0).nonzero().flatten()
                lo, hi = int(support[0]), int(support[-1]) + 1
                self.groups.append((a, b, lo, hi, fb[a:b, lo:hi].T.contiguous()))

    def _buffers(self, block):
        shape = block.shape[:-1] + (self.n_bins,)
        n = shape.numel()
        if self.spec is None or self.spec.numel() < n:
            self.spec = torch.empty(n, dtype=_complex_dtype(block.dtype), device=block.device)
            self.pow = torch.empty(n, dtype=block.dtype, device=block.device)
        return self.spec[:n].view(shape), self.pow[:n].view(shape)

    def __call__(self, block, dst):
        spec, pw = self._buffers(block)
        torch.fft.rfft(block, out=spec)
        # |z|^2: square the interleaved (re, im) pairs in place, one contiguous pass, then
        # add each pair; faster than reading the strided real and imaginary views twice.
        squares = torch.view_as_real(spec).square_()
        target = pw if self.groups else dst
        torch.add(squares[..., 0], squares[..., 1], out=target)
        if self.power != 2.0:
            target.pow_(self.power / 2.0)
        for a, b, lo, hi, weights in self.groups:
            torch.matmul(pw[..., lo:hi], weights, out=dst[..., a:b])


def _spectrogram(y, n_fft, hop_length, win_length, window, center, pad_mode, power):
    if not _uses_blocks(y, window):
        return _power(_stft(y, n_fft, hop_length, win_length, window, center, pad_mode), power)
    emit = _PowerEmitter(n_fft, power)
    return _blocked_frames(y, n_fft, hop_length, win_length, window, center, pad_mode,
                           n_fft // 2 + 1, y.dtype, emit)  # fmt: skip


def _melspectrogram(y, n_fft, hop_length, win_length, window, center, pad_mode, power, fb):
    """``fb @ |stft(y)| ** power`` for ``fb (n_mels, 1 + n_fft // 2)``."""
    if not _uses_blocks(y, window) or fb.requires_grad:
        S = _spectrogram(y, n_fft, hop_length, win_length, window, center, pad_mode, power)
        return torch.matmul(fb, S)
    emit = _PowerEmitter(n_fft, power, fb)
    return _blocked_frames(y, n_fft, hop_length, win_length, window, center, pad_mode,
                           fb.shape[0], y.dtype, emit)  # fmt: skip


def stft(
    y,
    *,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    win_length: int = WIN_LENGTH,
    window: str | torch.Tensor = "hamming",
    center: bool = True,
    pad_mode: str = "constant",
) -> torch.Tensor:
    """Short-time Fourier transform, as ``librosa.stft``.

    The window (``win_length`` samples) is zero-padded on both sides to ``n_fft``. With
    ``center=True`` the signal is padded by ``n_fft // 2`` on both sides (zeros by
    default, as librosa >= 0.10), so frame ``t`` is centred on sample ``t * hop_length``.

    Args:
        y: waveform ``(..., time)``, float32 or float64.
        pad_mode: ``"constant"`` (zeros), ``"reflect"``, ``"edge"`` or ``"wrap"``.

    Returns:
        complex tensor ``(..., 1 + n_fft // 2, frames)`` with
        ``frames = 1 + time // hop_length`` when ``center`` is true.
    """
    y, frames = _checked_framing(y, n_fft, hop_length, win_length, window, center, pad_mode)
    return _stft(y, *frames)


def _checked_framing(y, n_fft, hop_length, win_length, window, center, pad_mode):
    """Validate a signal and its STFT framing; returns ``(y, kernel arguments)``."""
    y = as_signal(y, "y")
    n_fft, hop_length, win_length = _check_frames(n_fft, hop_length, win_length)
    center = check_bool(center, "center")
    pad = _PAD_MODES[check_choice(pad_mode, "pad_mode", tuple(_PAD_MODES))]
    _check_length_for(y, n_fft, center, pad)
    w = _window_for(window, win_length, y)
    return y, (n_fft, hop_length, win_length, w, center, pad)


def _istft(S, n_fft, hop_length, win_length, window, center, length):
    lead = S.shape[:-2]
    try:
        y = torch.istft(
            S.reshape((-1,) + S.shape[-2:]),
            n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=window,
            center=center,
            normalized=False,
            onesided=True,
            length=length,
            return_complex=False,
        )
    except RuntimeError as err:
        if "NOLA" in str(err) or "window overlap" in str(err):
            raise ParameterError(
                f"the window does not overlap-add to a nonzero sum with "
                f"hop_length={hop_length}, win_length={win_length} (NOLA fails); "
                f"use a smaller hop_length, center=True or a window without zeros at its ends"
            ) from None
        raise
    return y.reshape(lead + y.shape[-1:])


def istft(
    stft_matrix,
    *,
    hop_length: int = HOP_LENGTH,
    win_length: int = WIN_LENGTH,
    n_fft: int | None = None,
    window: str | torch.Tensor = "hamming",
    center: bool = True,
    length: int | None = None,
) -> torch.Tensor:
    """Inverse STFT by weighted overlap-add, as ``librosa.istft``.

    Args:
        stft_matrix: complex ``(..., 1 + n_fft // 2, frames)``.
        n_fft: defaults to ``2 * (freq - 1)``.
        length: pad or trim the output to exactly this many samples.

    Returns:
        real waveform ``(..., time)``; ``istft(stft(y), length=len(y))`` equals ``y``.
    """
    S = as_signal(stft_matrix, "stft_matrix", min_ndim=2, complex_ok=True, real_ok=False)
    if n_fft is None:
        n_fft = 2 * (S.shape[-2] - 1)
    n_fft, hop_length, win_length = _check_frames(n_fft, hop_length, win_length)
    _check_overlap(hop_length, win_length)
    if S.shape[-2] != 1 + n_fft // 2:
        raise ParameterError(
            f"stft_matrix has {S.shape[-2]} frequency bins; n_fft={n_fft} needs {1 + n_fft // 2}"
        )
    center = check_bool(center, "center")
    if length is not None:
        length = check_positive_int(length, "length")
    w = _window_for(window, win_length, S)
    return _istft(S, n_fft, hop_length, win_length, w, center, length)


def _power(S: torch.Tensor, power: float) -> torch.Tensor:
    if power == 2.0:
        # re^2 + im^2: no square root for abs() to take and the square to undo. Computed on
        # the (..., frames, freq) view, the memory order _stft writes, so both passes are
        # sequential and the result has the same layout as S.
        frames_major = S.transpose(-1, -2)
        P = frames_major.real.square()
        P.addcmul_(frames_major.imag, frames_major.imag)
        return P.transpose(-1, -2)
    if power == 1.0:
        return S.abs()
    return S.abs().pow(power)


def spectrogram(
    y,
    *,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    win_length: int = WIN_LENGTH,
    window: str | torch.Tensor = "hamming",
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 2.0,
) -> torch.Tensor:
    """``|stft(y)| ** power``: the power spectrogram (``power=2``) or magnitude (``1``).

    Each column is the power spectrum of one frame.

    Returns:
        real ``(..., 1 + n_fft // 2, frames)``.
    """
    power = check_positive_number(power, "power")
    y, frames = _checked_framing(y, n_fft, hop_length, win_length, window, center, pad_mode)
    return _spectrogram(y, *frames, power)


def spectral_convergence(
    S,
    y,
    *,
    n_fft: int | None = None,
    hop_length: int = HOP_LENGTH,
    win_length: int = WIN_LENGTH,
    window: str | torch.Tensor = "hamming",
    center: bool = True,
    pad_mode: str = "constant",
) -> torch.Tensor:
    """How far the magnitude of ``stft(y)`` is from a target magnitude ``S``.

    ``||S - |stft(y)| ||_F / ||S||_F`` per clip (over frequency and time): 0 is a perfect
    match. The usual figure of merit for phase retrieval (Griffin-Lim).

    Args:
        S: target magnitude ``(..., 1 + n_fft // 2, frames)``, not all zero.
        y: waveform ``(..., time)`` whose STFT has the same number of frames.

    Returns:
        ``(...)`` tensor, one value per clip.
    """
    S = as_signal(S, "S", min_ndim=2)
    if n_fft is None:
        n_fft = 2 * (S.shape[-2] - 1)
    S_hat = stft(
        y,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
    ).abs()
    if S_hat.shape != S.shape:
        raise ParameterError(
            f"stft(y) has shape {tuple(S_hat.shape)} but S has shape {tuple(S.shape)}; "
            f"give y the length the frames of S cover"
        )
    ref = torch.linalg.matrix_norm(S)
    if bool((ref == 0).any()):
        raise ParameterError("S is all zeros (silent); spectral convergence is undefined")
    return torch.linalg.matrix_norm(S - S_hat) / ref


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


# --------------------------------------------------------------------------- mel scale


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


# --------------------------------------------------------------------------- phase retrieval


def griffinlim(
    S,
    *,
    n_iter: int = 32,
    hop_length: int = HOP_LENGTH,
    win_length: int = WIN_LENGTH,
    n_fft: int | None = None,
    window: str | torch.Tensor = "hamming",
    center: bool = True,
    length: int | None = None,
    pad_mode: str = "constant",
    momentum: float = 0.99,
    init: str | None = "random",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A waveform whose STFT magnitude approximates ``S``: fast Griffin-Lim.

    Alternates inverse STFT and STFT, keeping the phase and restoring the magnitude, with
    the momentum ("fast Griffin-Lim", Perraudin et al. 2013) that librosa uses. Measure the
    result with :func:`spectral_convergence`.

    Args:
        S: magnitude spectrogram ``(..., 1 + n_fft // 2, frames)`` (not power), nonnegative.
        n_iter: number of iterations.
        length: output length in samples (e.g. the original signal's).
        momentum: in ``[0, 1)``; 0 gives the original Griffin-Lim.
        init: ``"random"`` phases, or ``None`` for zero phase.
        generator: random generator for the initial phases.

    Returns:
        waveform ``(..., time)``.
    """
    S = as_signal(S, "S", min_ndim=2)
    if n_fft is None:
        n_fft = 2 * (S.shape[-2] - 1)
    n_fft, hop_length, win_length = _check_frames(n_fft, hop_length, win_length)
    _check_overlap(hop_length, win_length)
    if S.shape[-2] != 1 + n_fft // 2:
        raise ParameterError(
            f"S has {S.shape[-2]} frequency bins; n_fft={n_fft} needs {1 + n_fft // 2}"
        )
    n_iter = check_positive_int(n_iter, "n_iter", minimum=0)
    momentum = check_positive_number(momentum, "momentum", allow_zero=True)
    if not 0.0 <= momentum < 1.0:
        raise ParameterError(f"momentum must be in range [0, 1). Found: {momentum}")
    check_choice(init, "init", ("random", None))
    center = check_bool(center, "center")
    pad = _PAD_MODES[check_choice(pad_mode, "pad_mode", tuple(_PAD_MODES))]
    if length is not None:
        length = check_positive_int(length, "length")
    if bool((S < 0).any()):
        raise ParameterError("S must be a magnitude (>= 0); found negative values")
    silent = (S.reshape((-1,) + S.shape[-2:]).amax(dim=(-2, -1)) == 0).nonzero()
    if len(silent):
        raise ParameterError(
            f"S is all zeros (silent) for clip {silent[0].item()}: there is no phase to retrieve"
        )
    w = _window_for(window, win_length, S)
    complex_dtype = torch.complex128 if S.dtype == torch.float64 else torch.complex64
    if init == "random":
        phase = torch.rand(S.shape, generator=generator, dtype=S.dtype, device=S.device)
        angles = torch.polar(torch.ones_like(S), 2 * math.pi * phase)
    else:
        angles = torch.ones(S.shape, dtype=complex_dtype, device=S.device)
    eps = torch.finfo(S.dtype).tiny
    alpha = momentum / (1.0 + momentum)
    if torch.is_grad_enabled() and (S.requires_grad or w.requires_grad):
        # Differentiable: out-of-place steps that autograd can follow back to S.
        tprev = None
        for _ in range(n_iter):
            inverse = _istft(S * angles, n_fft, hop_length, win_length, w, center, length)
            rebuilt = _stft(inverse, n_fft, hop_length, win_length, w, center, pad)
            angles = rebuilt if tprev is None else rebuilt - alpha * tprev
            angles = angles / (angles.abs() + eps)
            tprev = rebuilt
        return _istft(S * angles, n_fft, hop_length, win_length, w, center, length)

    # Without autograd every buffer is allocated once and reused; torch.istft would
    # recompute the window envelope and allocate (frames, n_fft) temporaries at every
    # step. Spectra are kept frames-major, (clips, frames, freq), so every FFT reads and
    # writes contiguous rows, and each pass runs over blocks of frames that stay in cache.
    n_bins, n_frames = S.shape[-2:]
    mag = S.reshape(-1, n_bins, n_frames).transpose(1, 2).contiguous()
    n_clips = mag.shape[0]
    spec = angles.reshape(n_clips, n_bins, n_frames).transpose(1, 2).contiguous().mul_(mag)
    tprev = torch.zeros_like(spec)  # rebuilt - alpha * 0 == rebuilt: plain first step
    rows = _BLOCK_ROWS if S.device.type == "cpu" else n_clips * n_frames
    blocks = _frame_blocks(n_clips, n_frames, rows)

    # The signal the frames cover, and the part of it kept (trimmed as torch.istft does).
    covered = n_fft + hop_length * (n_frames - 1)
    start = n_fft // 2 if center else 0
    if length is not None:
        end = start + length
    else:
        end = covered - n_fft // 2 if center else covered
    # Overlap-add as strided views: frames `phases` hops apart do not overlap, so each
    # phase is added in place to non-overlapping windows of the signal.
    left = (n_fft - win_length) // 2  # the window sits centred in the n_fft frame
    phases = -(-win_length // hop_length)
    step = phases * hop_length
    signal = S.new_zeros(n_clips, max(covered, end + start))

    def overlap_add(out, frames, first_frame):  # frames (..., n, win_length)
        for k in range(min(phases, frames.shape[-2])):
            part = frames[..., k::phases, :]
            a = left + (first_frame + k) * hop_length
            b = a + (part.shape[-2] - 1) * step + win_length
            out[..., a:b].unfold(-1, win_length, step).add_(part)

    envelope = torch.zeros_like(signal[0])
    overlap_add(envelope, (w * w).expand(n_frames, win_length), 0)
    kept = envelope[start : min(end, covered)]
    if bool((kept.abs() < 1e-11).any()):
        raise ParameterError(
            f"the window does not overlap-add to a nonzero sum with hop_length={hop_length}, "
            f"win_length={win_length} (NOLA fails); use a smaller hop_length, center=True "
            f"or a window without zeros at its ends"
        )
    if n_iter and 1 + (end + start - n_fft) // hop_length != n_frames:
        raise ParameterError(
            f"length={length} gives {max(0, 1 + (end + start - n_fft) // hop_length)} STFT "
            f"frames but S has {n_frames}; pass the length of the signal S came from"
        )
    # One multiply normalises the kept samples and zeroes the rest, which is then the
    # zero padding the next STFT needs (pad_mode="constant") and the tail past `covered`.
    inverse_envelope = torch.zeros_like(envelope)
    inverse_envelope[start : min(end, covered)] = 1.0 / kept

    def synthesise():  # signal <- istft(spec), trimmed samples zero
        signal.zero_()
        for c, t0, t1 in blocks:
            frames = torch.fft.irfft(spec[c, t0:t1], n=n_fft)[..., left : left + win_length]
            overlap_add(signal[c], frames.mul_(w), t0)
        signal.mul_(inverse_envelope)

    buffer = S.new_zeros(min(rows, n_clips * n_frames) * n_fft)
    for _ in range(n_iter):
        synthesise()
        if center and pad != "constant":
            padded = signal[:, start:end].unsqueeze(0)
            padded = torch.nn.functional.pad(padded, (start, start), mode=pad)[0]
        else:
            padded = signal[:, : end + start]
        analysis = padded.unfold(-1, n_fft, hop_length)[..., left : left + win_length]
        for c, t0, t1 in blocks:
            src = analysis[c, t0:t1]
            block = buffer[: src.shape[:-1].numel() * n_fft].view(src.shape[:-1] + (n_fft,))
            torch.mul(src, w, out=block[..., left : left + win_length])
            rebuilt = torch.fft.rfft(block)
            prev = tprev[c, t0:t1]
            angles = torch.sub(rebuilt, prev, alpha=alpha)  # rebuilt - alpha * tprev
            prev.copy_(rebuilt)
            re_im = torch.view_as_real(angles)
            norm = re_im[..., 0].square().addcmul_(re_im[..., 1], re_im[..., 1]).sqrt_()
            # S * angles / (|angles| + eps), with one complex multiply.
            torch.mul(angles, mag[c, t0:t1] / norm.add_(eps), out=spec[c, t0:t1])
    synthesise()
    return signal[:, start:end].reshape(S.shape[:-2] + (end - start,))


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
    quiet time-frequency bins count in the loss. Real input keeps its sign.
    """
    S = as_signal(S, "S", complex_ok=True)
    power = check_positive_number(power, "power")
    if S.is_complex():
        return torch.polar(S.abs().pow(power), S.angle())
    return torch.sign(S) * S.abs().pow(power)


def power_law_decompress(S, *, power: float = 0.3) -> torch.Tensor:
    """Inverse of :func:`power_law_compress` with the same ``power``."""
    power = check_positive_number(power, "power")
    return power_law_compress(S, power=1.0 / power)
