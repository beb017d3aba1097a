"""``nn.Module`` wrappers of :mod:`xmodal.audio.functional`, for use inside models.

Each constructor validates its parameters once and precomputes its constant tensors (the
window, the mel filterbank, the DCT matrix) as buffers, so ``.to(device)`` moves them and
``forward`` only computes. The buffers are kept in float64 and cast to the input's dtype
in ``forward`` (a few hundred values), so float32 and float64 inputs both get the
functional result to their own precision. They are not saved in ``state_dict``: they
follow from the constructor's arguments.

Example:
    >>> mel = MelSpectrogram(sr=16000, n_mels=80)
    >>> mel(torch.randn(4, 16000)).shape      # (batch, n_mels, frames)
    torch.Size([4, 80, 101])
"""

from __future__ import annotations

import torch
from torch import nn

from xmodal._checks import (
    as_signal,
    check_bool,
    check_choice,
    check_positive_int,
    check_positive_number,
)
from xmodal.audio import functional as F
from xmodal.errors import ParameterError

__all__ = ["MFCC", "GriffinLim", "MelSpectrogram", "Spectrogram"]


class _Float64Constants(nn.Module):
    """Keeps derived constants (window, filterbank, DCT) in float64 whatever the module's dtype.

    They are non-persistent buffers, so ``.to(device)`` moves them; ``_apply`` then
    restores float64 after a dtype cast such as ``model.float()``, so a float64 input
    still gets float64 precision. ``forward`` casts them to the input's dtype.
    """

    def _constant(self, name: str, value: torch.Tensor) -> None:
        self.register_buffer(name, value.detach().to(torch.float64).clone(), persistent=False)

    def _apply(self, fn, recurse=True):
        masters = {name: buf.clone() for name, buf in self._buffers.items() if buf is not None}
        super()._apply(fn, recurse)
        for name, master in masters.items():
            self._buffers[name] = master.to(device=self._buffers[name].device)
        return self


class Spectrogram(_Float64Constants):
    """``|stft(y)| ** power``: ``(..., time)`` -> ``(..., 1 + n_fft // 2, frames)``.

    Args: as :func:`xmodal.audio.functional.spectrogram`.
    """

    def __init__(
        self,
        *,
        n_fft: int = F.N_FFT,
        hop_length: int = F.HOP_LENGTH,
        win_length: int = F.WIN_LENGTH,
        window: str | torch.Tensor = "hamming",
        center: bool = True,
        pad_mode: str = "constant",
        power: float = 2.0,
    ) -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.win_length = F._check_frames(
            n_fft, hop_length, win_length
        )
        self.center = check_bool(center, "center")
        self.pad_mode = check_choice(pad_mode, "pad_mode", tuple(F._PAD_MODES))
        self._torch_pad = F._PAD_MODES[pad_mode]
        self.power = check_positive_number(power, "power")
        self._constant("window", F.get_window(window, self.win_length, dtype=torch.float64))

    def extra_repr(self) -> str:
        return (
            f"n_fft={self.n_fft}, hop_length={self.hop_length}, win_length={self.win_length}, "
            f"center={self.center}, pad_mode={self.pad_mode!r}, power={self.power}"
        )

    def _framing(self, y) -> tuple[torch.Tensor, tuple]:
        y = as_signal(y, "y")
        F._check_length_for(y, self.n_fft, self.center, self._torch_pad)
        w = self.window.to(device=y.device, dtype=y.dtype)
        return y, (self.n_fft, self.hop_length, self.win_length, w, self.center, self._torch_pad)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        y, frames = self._framing(y)
        return F._spectrogram(y, *frames, self.power)


class MelSpectrogram(Spectrogram):
    """Mel spectrogram: ``(..., time)`` -> ``(..., n_mels, frames)``.

    Args: as :func:`xmodal.audio.functional.melspectrogram`.
    """

    def __init__(
        self,
        *,
        sr: float = F.SR,
        n_fft: int = F.N_FFT,
        hop_length: int = F.HOP_LENGTH,
        win_length: int = F.WIN_LENGTH,
        window: str | torch.Tensor = "hamming",
        center: bool = True,
        pad_mode: str = "constant",
        power: float = 2.0,
        n_mels: int = F.N_MELS,
        fmin: float = 0.0,
        fmax: float | None = None,
        htk: bool = False,
        norm: str | float | None = "slaney",
    ) -> None:
        super().__init__(
            n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window,
            center=center, pad_mode=pad_mode, power=power,
        )  # fmt: skip
        fb = F.mel_filterbank(
            sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm,
            dtype=torch.float64,
        )  # fmt: skip
        self.sr, self.n_mels = sr, n_mels
        self._constant("fb", fb)

    def extra_repr(self) -> str:
        return f"sr={self.sr}, n_mels={self.n_mels}, " + super().extra_repr()

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        y, frames = self._framing(y)
        return F._melspectrogram(y, *frames, self.power, self.fb.to(y.dtype))


class MFCC(_Float64Constants):
    """MFCCs: ``(..., time)`` -> ``(..., n_mfcc, frames)``.

    ``DCT-II(power_to_db(mel))`` with the first ``n_mfcc`` rows kept and optional
    liftering folded into the DCT matrix. Args: as :func:`xmodal.audio.functional.mfcc`.
    """

    def __init__(
        self,
        *,
        sr: float = F.SR,
        n_mfcc: int = F.N_MFCC,
        norm: str | None = "ortho",
        lifter: float = 0.0,
        top_db: float | None = 80.0,
        n_fft: int = F.N_FFT,
        hop_length: int = F.HOP_LENGTH,
        win_length: int = F.WIN_LENGTH,
        window: str | torch.Tensor = "hamming",
        center: bool = True,
        pad_mode: str = "constant",
        power: float = 2.0,
        n_mels: int = F.N_MELS,
        fmin: float = 0.0,
        fmax: float | None = None,
        htk: bool = False,
        mel_norm: str | float | None = "slaney",
    ) -> None:
        super().__init__()
        self.mel = MelSpectrogram(
            sr=sr, n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window,
            center=center, pad_mode=pad_mode, power=power, n_mels=n_mels, fmin=fmin,
            fmax=fmax, htk=htk, norm=mel_norm,
        )  # fmt: skip
        check_choice(norm, "norm", ("ortho", None))
        self.n_mfcc = check_positive_int(n_mfcc, "n_mfcc")
        if self.n_mfcc > n_mels:
            raise ParameterError(f"n_mfcc must be <= n_mels={n_mels}. Found: n_mfcc={n_mfcc}")
        lifter = check_positive_number(lifter, "lifter", allow_zero=True)
        if top_db is not None:
            top_db = check_positive_number(top_db, "top_db", allow_zero=True)
        self.top_db = top_db
        dct = F._dct_matrix64(self.n_mfcc, n_mels, norm, lifter)
        self._constant("dct", dct)

    def extra_repr(self) -> str:
        return f"n_mfcc={self.n_mfcc}, top_db={self.top_db}"

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        mel_db = F._power_to_db(self.mel(y), 1.0, 1e-10, self.top_db)
        return torch.matmul(self.dct.to(mel_db.dtype), mel_db)


class GriffinLim(_Float64Constants):
    """Fast Griffin-Lim: magnitude ``(..., 1 + n_fft // 2, frames)`` -> ``(..., time)``.

    Args: as :func:`xmodal.audio.functional.griffinlim`.
    """

    def __init__(
        self,
        *,
        n_fft: int = F.N_FFT,
        n_iter: int = 32,
        hop_length: int = F.HOP_LENGTH,
        win_length: int = F.WIN_LENGTH,
        window: str | torch.Tensor = "hamming",
        center: bool = True,
        pad_mode: str = "constant",
        momentum: float = 0.99,
        init: str | None = "random",
        length: int | None = None,
    ) -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.win_length = F._check_frames(
            n_fft, hop_length, win_length
        )
        F._check_overlap(self.hop_length, self.win_length)
        self.n_iter = check_positive_int(n_iter, "n_iter", minimum=0)
        momentum = check_positive_number(momentum, "momentum", allow_zero=True)
        if momentum >= 1.0:
            raise ParameterError(f"momentum must be in range [0, 1). Found: {momentum}")
        self.momentum = momentum
        self.center = check_bool(center, "center")
        self.pad_mode = check_choice(pad_mode, "pad_mode", tuple(F._PAD_MODES))
        self.init = check_choice(init, "init", ("random", None))
        self.length = None if length is None else check_positive_int(length, "length")
        self._constant("window", F.get_window(window, self.win_length, dtype=torch.float64))

    def extra_repr(self) -> str:
        return (
            f"n_fft={self.n_fft}, n_iter={self.n_iter}, hop_length={self.hop_length}, "
            f"win_length={self.win_length}, momentum={self.momentum}, init={self.init!r}, "
            f"length={self.length}"
        )

    def forward(self, S: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return F.griffinlim(
            S, n_iter=self.n_iter, hop_length=self.hop_length, win_length=self.win_length,
            n_fft=self.n_fft, window=self.window, center=self.center, length=self.length,
            pad_mode=self.pad_mode, momentum=self.momentum, init=self.init,
            generator=generator,
        )  # fmt: skip
