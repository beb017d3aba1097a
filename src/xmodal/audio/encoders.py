"""Audio encoders behind one interface, as in timm (and :mod:`xmodal.vision.encoders`).

Every encoder is an :class:`AudioEncoder` that takes raw waveforms at its ``sample_rate``
and computes its own front end (none, or a log-mel spectrogram) inside the module:

- ``forward_features(wave, lengths=None)``: ``(B, T)`` samples → sequence ``(B, C, T')``;
- ``forward_head(features, lengths=None)``: ``(B, C, T')`` → ``(B, C)``, the mean over
  the valid steps;
- ``forward(wave, lengths) == forward_head(forward_features(wave, lengths),
  output_lengths(lengths))``;
- ``feature_info``: :class:`FeatureInfo` with ``channels`` C, ``stride`` and
  ``receptive_field``, both in samples.

Time is never padded: every layer along time (the STFT frames, convolutions, pools) is
"valid", so output step ``t`` is computed from exactly the samples
``[t * stride, t * stride + receptive_field)``, and for ``T >= receptive_field``::

    T' = output_length(T) = (T - receptive_field) // stride + 1

(floors of stacked valid layers compose: ``((n - k1) // s1 + 1 - k2) // s2 + 1 ==
(n - k1 - (k2 - 1) * s1) // (s1 * s2) + 1``). Padded batches pass ``lengths`` (samples):
step ``t`` of item ``b`` is valid when its samples all lie in ``[0, lengths[b])``, that is
``t < output_lengths(lengths)[b]``. Valid steps equal those of the unpadded item, the
others are set to zero, and ``forward_head`` averages the valid ones only, so padding
never changes an item's features or vector (in eval mode: BatchNorm in training mode
takes its statistics over the padding too).

Encoders are made by name::

    >>> enc = create_encoder("vggish", width=0.25).eval()
    >>> enc.feature_info
    FeatureInfo(channels=128, stride=2560, receptive_field=11440)
    >>> enc(torch.randn(2, 16000)).shape
    torch.Size([2, 128])
    >>> enc.output_length(16000), enc.forward_features(torch.randn(16000)).shape
    (2, torch.Size([1, 128, 2]))
    >>> list_encoders()
    ['mel-tcn', 'soundnet', 'vggish']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from xmodal._checks import (
    as_signal,
    check_bool,
    check_int_vector,
    check_positive_int,
    check_positive_number,
)
from xmodal._registry import Registry
from xmodal.audio import functional as F
from xmodal.audio.transforms import MelSpectrogram
from xmodal.errors import ParameterError

__all__ = [
    "AudioEncoder",
    "FeatureInfo",
    "MelTCN",
    "SoundNet",
    "VGGish",
    "create_encoder",
    "list_encoders",
    "register_encoder",
]


@dataclass(frozen=True)
class FeatureInfo:
    """What ``forward_features`` returns: ``channels`` C; ``stride`` (samples between
    output steps) and ``receptive_field`` (samples seen by one step)."""

    channels: int
    stride: int
    receptive_field: int


def _span(layers: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """``(receptive_field, stride)`` of a stack of unpadded ``(kernel, stride)`` layers."""
    field, stride = 1, 1
    for k, s in layers:
        field += (k - 1) * stride
        stride *= s
    return field, stride


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


class AudioEncoder(nn.Module):
    """Base of every audio encoder; subclasses set ``feature_info`` and implement ``_features``.

    ``_features`` receives checked waveforms ``(B, T)`` in the module's dtype.
    """

    feature_info: FeatureInfo

    def __init__(self, sample_rate: int) -> None:
        super().__init__()
        self.sample_rate = check_positive_int(sample_rate, "sample_rate")

    def _features(self, wave: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def output_length(self, n_samples: int) -> int:
        """Output steps T' for ``n_samples`` input samples; 0 below the receptive field."""
        n = check_positive_int(n_samples, "n_samples", minimum=0)
        field, stride = self.feature_info.receptive_field, self.feature_info.stride
        return (n - field) // stride + 1 if n >= field else 0

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid output steps ``(B,)`` for ``lengths`` ``(B,)`` in samples (0 if too short)."""
        lengths = torch.as_tensor(lengths)
        if lengths.ndim != 1 or lengths.is_floating_point() or lengths.is_complex():
            raise ParameterError(
                f"lengths must be an integer tensor (B,). Found {lengths.dtype} "
                f"{tuple(lengths.shape)}"
            )
        field, stride = self.feature_info.receptive_field, self.feature_info.stride
        steps = torch.div(lengths.long() - field, stride, rounding_mode="floor") + 1
        return steps.clamp(min=0)

    def _too_short(self, n: int, what: str) -> ParameterError:
        field = self.feature_info.receptive_field
        return ParameterError(
            f"{what} has {n} samples, fewer than the receptive field of {field} samples "
            f"({field / self.sample_rate:.3g} s at {self.sample_rate} Hz): no output step "
            f"would see only real samples. Use longer audio or a smaller encoder"
        )

    def _prepare(self, wave, lengths) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Check ``wave`` (and ``lengths``); return ``(B, T)`` in the module's dtype."""
        wave = as_signal(wave, "wave")  # a float tensor, finite, not empty
        if wave.ndim == 1:
            wave = wave.unsqueeze(0)
        elif wave.ndim != 2:
            raise ParameterError(
                f"wave must be (B, T) or (T,) samples. Found shape {tuple(wave.shape)}"
            )
        batch, n = wave.shape
        if n < self.feature_info.receptive_field:
            raise self._too_short(n, "wave")
        if lengths is not None:
            lengths = check_int_vector(lengths, "lengths", batch).to(wave.device)
            shortest, longest = int(lengths.min()), int(lengths.max())
            if longest > n:
                raise ParameterError(f"lengths must be <= T = {n} samples. Found {longest}")
            if shortest < self.feature_info.receptive_field:
                raise self._too_short(shortest, "an item (lengths)")
        return wave.to(next(self.parameters()).dtype), lengths

    def forward_features(self, wave: torch.Tensor, lengths=None) -> torch.Tensor:
        """``(B, T)`` or ``(T,)`` samples → ``(B, C, T')`` with ``T' = output_length(T)``.

        With ``lengths`` ``(B,)`` (samples), steps ``t >= output_lengths(lengths)[b]`` of
        item ``b`` see padding and are set to zero.
        """
        wave, lengths = self._prepare(wave, lengths)
        features = self._features(wave)  # (B, C, T')
        assert features.shape[-1] == self.output_length(wave.shape[-1])
        if lengths is not None:
            steps = torch.arange(features.shape[-1], device=features.device)
            valid = steps < self.output_lengths(lengths).to(features.device)[:, None]
            features = features.masked_fill(~valid[:, None, :], 0.0)
        return features

    def forward_head(self, features: torch.Tensor, lengths=None) -> torch.Tensor:
        """``(B, C, T')`` → ``(B, C)``: the mean over steps, or over the first
        ``lengths[b]`` steps of item ``b`` (``lengths`` in steps, e.g. ``output_lengths``)."""
        c = self.feature_info.channels
        if not isinstance(features, torch.Tensor) or features.ndim != 3 or features.shape[1] != c:
            found = tuple(features.shape) if isinstance(features, torch.Tensor) else features
            raise ParameterError(f"features must have shape (B, {c}, T'). Found: {found}")
        if lengths is None:
            return features.mean(dim=-1)
        batch, _, steps = features.shape
        lengths = check_int_vector(lengths, "lengths", batch).to(features.device)
        if int(lengths.min()) < 1 or int(lengths.max()) > steps:
            raise ParameterError(
                f"lengths must be in [1, {steps}] steps. "
                f"Found {int(lengths.min())}..{int(lengths.max())}"
            )
        valid = torch.arange(steps, device=features.device) < lengths[:, None]  # (B, T')
        total = features.masked_fill(~valid[:, None, :], 0.0).sum(dim=-1)
        return total / lengths[:, None].to(features.dtype)

    def forward(self, wave: torch.Tensor, lengths=None) -> torch.Tensor:
        """``(B, T)`` or ``(T,)`` samples → ``(B, C)``."""
        features = self.forward_features(wave, lengths)
        steps = None if lengths is None else self.output_lengths(lengths)
        return self.forward_head(features, steps)


# --------------------------------------------------------------------------- registry

_ENCODERS = Registry("encoder")
# Decorator: make ``fn(**kwargs) -> AudioEncoder`` (a function or a class) available as
# ``create_encoder(name, **kwargs)``.
register_encoder = _ENCODERS.register


def list_encoders() -> list[str]:
    """Names :func:`create_encoder` accepts, sorted."""
    return _ENCODERS.names()


def create_encoder(name: str, **kwargs) -> AudioEncoder:
    """Build the audio encoder registered as ``name`` with its keyword arguments.

    >>> create_encoder("mel-tcn", channels=64).feature_info
    FeatureInfo(channels=64, stride=160, receptive_field=5200)
    """
    return _ENCODERS.create(name, **kwargs)


# --------------------------------------------------------------------------- SoundNet

# SoundNet-8 (Aytar, Vondrick & Torralba 2016): (channels, kernel, stride, max-pool after).
_SOUNDNET8 = (
    (16, 64, 2, 8),
    (32, 32, 2, 8),
    (64, 16, 2, 1),
    (128, 8, 2, 1),
    (256, 4, 2, 4),
    (512, 4, 2, 1),
    (1024, 4, 2, 1),
    (1024, 8, 2, 1),
)


class SoundNet(AudioEncoder):
    """SoundNet's raw-waveform 1-D CNN: conv1..conv8, each conv-BN-ReLU, max-pools (8, 8, 4)
    after conv1, conv2 and conv5, with the reference's kernels (64, 32, 16, 8, 4, 4, 4, 8),
    strides 2 and widths ``width * (16, 32, ..., 1024)``.

    Differences from the reference: no padding along time (so padded batches are exact);
    conv8 gives 1024 features with BN and ReLU where the reference maps to 1000 object and
    401 scene logits; ``sample_rate`` defaults to 16000 Hz (the paper used 22050 Hz), and
    a waveform is taken as it is, never resampled.

    The receptive field grows fast: ``num_layers=8`` sees 320542 samples (20 s at 16 kHz)
    per step with a stride of 65536; ``num_layers=5``: 17438 and 8192; ``num_layers=4``:
    8222 and 1024, which gives 8 steps on a 1 s clip.
    """

    def __init__(self, *, sample_rate: int = 16000, width: float = 1.0,
                 num_layers: int = 8) -> None:  # fmt: skip
        super().__init__(sample_rate)
        width = check_positive_number(width, "width")
        num_layers = check_positive_int(num_layers, "num_layers")
        if num_layers > len(_SOUNDNET8):
            raise ParameterError(f"num_layers must be in [1, 8]. Found: {num_layers}")
        blocks, layers, c_in = [], [], 1
        for c, kernel, stride, pool in _SOUNDNET8[:num_layers]:
            c_out = _scaled(c, width)
            block = [nn.Conv1d(c_in, c_out, kernel, stride=stride, bias=False),
                     nn.BatchNorm1d(c_out), nn.ReLU(inplace=True)]  # fmt: skip
            layers.append((kernel, stride))
            if pool > 1:
                block.append(nn.MaxPool1d(pool))
                layers.append((pool, pool))
            blocks.append(nn.Sequential(*block))
            c_in = c_out
        self.body = nn.Sequential(*blocks)
        field, stride = _span(layers)
        self.feature_info = FeatureInfo(channels=c_in, stride=stride, receptive_field=field)

    def _features(self, wave: torch.Tensor) -> torch.Tensor:
        return self.body(wave.unsqueeze(1))  # (B, 1, T) -> (B, C, T')


@register_encoder("soundnet")
def soundnet(**kwargs) -> SoundNet:
    return SoundNet(**kwargs)


# --------------------------------------------------------------------------- log-mel front end


class _LogMel(nn.Module):
    """``(B, T)`` samples → log-mel ``(B, n_mels, frames)``, frames of 25 ms every 10 ms.

    The FFT is the next power of two >= the window, and frames are not centred: frame ``t``
    windows exactly the samples ``[t * hop_length, t * hop_length + win_length)``, so
    ``frames = (T - win_length) // hop_length + 1``. (The waveform is zero-padded by
    ``(n_fft - win_length) / 2`` on each side; those samples fall outside the window.)
    ``log_offset=None`` gives dB (:func:`~xmodal.audio.functional.power_to_db`, no
    ``top_db`` floor, which would couple frames); a number gives ``log(mel + log_offset)``.
    """

    def __init__(self, sample_rate: int, n_mels: int, *, power: float, window: str,
                 fmin: float, fmax: float | None, htk: bool, norm: str | None,
                 log_offset: float | None) -> None:  # fmt: skip
        super().__init__()
        self.win_length = max(1, round(0.025 * sample_rate))
        self.hop_length = max(1, round(0.010 * sample_rate))
        n_fft = 1 << (self.win_length - 1).bit_length()
        self.mel = MelSpectrogram(
            sr=sample_rate, n_fft=n_fft, hop_length=self.hop_length, win_length=self.win_length,
            window=window, center=False, power=power, n_mels=n_mels, fmin=fmin, fmax=fmax,
            htk=htk, norm=norm,
        )  # fmt: skip
        left = (n_fft - self.win_length) // 2
        self.pad = (left, n_fft - self.win_length - left)
        self.log_offset = log_offset

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        mel = self.mel(nn.functional.pad(wave, self.pad))  # (B, n_mels, frames)
        if self.log_offset is None:
            return F.power_to_db(mel, top_db=None)
        return torch.log(mel + self.log_offset)


# --------------------------------------------------------------------------- VGGish

# VGGish (Hershey et al. 2017): (channels, convs) per block; each block ends in a 2x2 pool.
_VGGISH = ((64, 1), (128, 1), (256, 2), (512, 2))


class VGGish(AudioEncoder):
    """A VGGish-like log-mel 2-D CNN: ``(B, T)`` → ``(B, 512 * width, T')``.

    Front end as VGGish: magnitude mel spectrogram, 64 HTK mel bands over 125-7500 Hz,
    25 ms periodic Hann window, 10 ms hop, ``log(mel + 0.01)``. Then four blocks of 3x3
    conv-BN-ReLU (1, 1, 2, 2 convs; ``width * (64, 128, 256, 512)`` channels), each ending
    in a 2x2 max-pool, and the mean over the remaining frequency bins (``n_mels // 16``).
    Convolutions are zero-padded along frequency and unpadded along time, so at 16 kHz
    the stride is 16 frames (2560 samples, 160 ms) and the receptive field 70 frames
    (11440 samples, 0.715 s). BatchNorm is added to the original VGGish, which has none.
    """

    def __init__(self, *, sample_rate: int = 16000, n_mels: int = 64,
                 width: float = 1.0) -> None:  # fmt: skip
        super().__init__(sample_rate)
        n_mels = check_positive_int(n_mels, "n_mels", minimum=16)  # four 2x2 pools
        width = check_positive_number(width, "width")
        self.frontend = _LogMel(self.sample_rate, n_mels, power=1.0, window="hann",
                                fmin=125.0, fmax=min(7500.0, self.sample_rate / 2), htk=True,
                                norm=None, log_offset=0.01)  # fmt: skip
        fe = self.frontend
        blocks, layers, c_in = [], [(fe.win_length, fe.hop_length)], 1
        for c, n_convs in _VGGISH:
            c_out = _scaled(c, width)
            for _ in range(n_convs):
                blocks += [nn.Conv2d(c_in, c_out, 3, padding=(1, 0), bias=False),
                           nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]  # fmt: skip
                layers.append((3, 1))
                c_in = c_out
            blocks.append(nn.MaxPool2d(2))
            layers.append((2, 2))
        self.body = nn.Sequential(*blocks)
        field, stride = _span(layers)
        self.feature_info = FeatureInfo(channels=c_in, stride=stride, receptive_field=field)

    def _features(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.frontend(wave).unsqueeze(1)  # (B, 1, n_mels, frames)
        x = self.body(x)  # (B, C, n_mels // 16, T')
        return x.mean(dim=2)  # (B, C, T')


@register_encoder("vggish")
def vggish(**kwargs) -> VGGish:
    return VGGish(**kwargs)


# --------------------------------------------------------------------------- mel TCN


class MelTCN(AudioEncoder):
    """A temporal conv net on log-mel frames: ``(B, T)`` → ``(B, channels, T')``.

    Front end: power mel spectrogram in dB (Slaney mel, 25 ms Hamming window, 10 ms hop),
    ``(B, n_mels, frames)``. Then ``num_layers`` unpadded 1-D conv-BN-ReLU layers over time
    with ``kernel_size`` and dilation ``2 ** i`` (``dilated=True``) or 1. The stride is one
    hop (160 samples at 16 kHz); the receptive field is ``win_length + hop_length *
    (kernel_size - 1) * sum(dilations)``: 400 + 160 * 2 * 15 = 5200 samples by default.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        n_mels: int = 64,
        channels: int = 256,
        num_layers: int = 4,
        kernel_size: int = 3,
        dilated: bool = True,
    ) -> None:
        super().__init__(sample_rate)
        n_mels = check_positive_int(n_mels, "n_mels")
        channels = check_positive_int(channels, "channels")
        num_layers = check_positive_int(num_layers, "num_layers")
        kernel_size = check_positive_int(kernel_size, "kernel_size")
        dilated = check_bool(dilated, "dilated")
        self.frontend = _LogMel(self.sample_rate, n_mels, power=2.0, window="hamming",
                                fmin=0.0, fmax=None, htk=False, norm="slaney",
                                log_offset=None)  # fmt: skip
        fe = self.frontend
        blocks, layers, c_in = [], [(fe.win_length, fe.hop_length)], n_mels
        for i in range(num_layers):
            d = 2**i if dilated else 1
            blocks += [nn.Conv1d(c_in, channels, kernel_size, dilation=d, bias=False),
                       nn.BatchNorm1d(channels), nn.ReLU(inplace=True)]  # fmt: skip
            layers.append((d * (kernel_size - 1) + 1, 1))
            c_in = channels
        self.body = nn.Sequential(*blocks)
        field, stride = _span(layers)
        self.feature_info = FeatureInfo(channels=channels, stride=stride, receptive_field=field)

    def _features(self, wave: torch.Tensor) -> torch.Tensor:
        return self.body(self.frontend(wave))  # (B, n_mels, frames) -> (B, C, T')


@register_encoder("mel-tcn")
def mel_tcn(**kwargs) -> MelTCN:
    return MelTCN(**kwargs)
