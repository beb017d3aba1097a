"""Windows, the short-time Fourier transform and its inverse, and the spectrogram.

Also the blocked CPU kernels the rest of the front end builds on: :func:`_blocked_frames`
windows and transforms the frames of a signal a block at a time in a cache-sized buffer,
and :class:`_PowerEmitter` turns each block into power (and mel power, for
:mod:`xmodal.audio.functional.mel`) without writing out the complex STFT.
"""

from __future__ import annotations

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

__all__ = ["get_window", "istft", "spectrogram", "stft"]

# Lecture defaults: 16 kHz, 25 ms Hamming window, 10 ms hop, 512-point FFT (80 mel bands
# and 13 MFCCs: N_MELS in mel.py, N_MFCC in cepstrum.py).
SR = 16000
N_FFT = 512
WIN_LENGTH = 400
HOP_LENGTH = 160

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


def _check_inverse_frames(
    S: torch.Tensor, name: str, n_fft, hop_length, win_length
) -> tuple[int, int, int]:
    """The frame sizes of an inverse transform of ``S (..., freq, frames)``, named ``name``
    in errors: ``n_fft`` None means ``2 * (freq - 1)``; the bins must match ``n_fft`` and
    the hop must not exceed the window."""
    if n_fft is None:
        n_fft = 2 * (S.shape[-2] - 1)
    n_fft, hop_length, win_length = _check_frames(n_fft, hop_length, win_length)
    _check_overlap(hop_length, win_length)
    if S.shape[-2] != 1 + n_fft // 2:
        raise ParameterError(
            f"{name} has {S.shape[-2]} frequency bins; n_fft={n_fft} needs {1 + n_fft // 2}"
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
    n_fft, hop_length, win_length = _check_inverse_frames(
        S, "stft_matrix", n_fft, hop_length, win_length
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
