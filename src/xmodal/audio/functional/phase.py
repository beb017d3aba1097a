"""Phase retrieval: fast Griffin-Lim, and the spectral convergence that scores it."""

from __future__ import annotations

import math

import torch

from xmodal._checks import (
    as_signal,
    check_bool,
    check_choice,
    check_positive_int,
    check_positive_number,
)
from xmodal.audio.functional.fourier import (
    _BLOCK_ROWS,
    _PAD_MODES,
    HOP_LENGTH,
    WIN_LENGTH,
    _check_inverse_frames,
    _frame_blocks,
    _istft,
    _stft,
    _window_for,
    stft,
)
from xmodal.errors import ParameterError

__all__ = ["griffinlim", "spectral_convergence"]


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
    n_fft, hop_length, win_length = _check_inverse_frames(S, "S", n_fft, hop_length, win_length)
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
