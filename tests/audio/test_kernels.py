"""The blocked CPU kernels equal torch.stft and the plain formulas they replace.

The STFT, power spectrogram and mel projection run frames through cache-sized blocks on
the CPU: whole clips per block when clips are short, runs of frames when a clip is long
(more than 1024 frames, about 10 s at a 10 ms hop). Both layouts, remainders and the
mel band grouping are checked against torch.stft, and against the autograd path.
"""

from __future__ import annotations

import pytest
import torch

from xmodal.audio import functional as F
from xmodal.audio import transforms as T

FRAMES = dict(n_fft=512, hop_length=160, win_length=400)


def _reference_stft(y: torch.Tensor, pad_mode: str = "constant") -> torch.Tensor:
    flat = y.reshape(-1, y.shape[-1])
    S = torch.stft(flat, 512, hop_length=160, win_length=400,
                   window=torch.hamming_window(400, dtype=y.dtype), center=True,
                   pad_mode=pad_mode, return_complex=True)  # fmt: skip
    return S.reshape(y.shape[:-1] + S.shape[-2:])


def _signals():
    g = torch.Generator().manual_seed(7)
    return {
        "long clip (blocks along time, with a remainder)": torch.randn(
            2 * 1024 * 160 + 12345, generator=g, dtype=torch.float64
        ),
        "5 clips of 700 frames (one clip per block)": torch.randn(
            5, 700 * 160, generator=g, dtype=torch.float64
        ),
        "7 clips of 300 frames (3 per block, remainder 1)": torch.randn(
            7, 300 * 160, generator=g, dtype=torch.float64
        ),
        "(2, 3) clips of 50 frames": torch.randn(2, 3, 50 * 160, generator=g, dtype=torch.float64),
    }


@pytest.fixture(params=list(_signals()), ids=lambda s: s.split(" (")[0])
def y(request) -> torch.Tensor:
    return _signals()[request.param]


def _close(got, expected, tol=1e-12):
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol * float(expected.abs().max()))


def test_stft_equals_torch_stft(y):
    for pad_mode in ("constant", "reflect"):
        _close(F.stft(y, pad_mode=pad_mode, **FRAMES), _reference_stft(y, pad_mode))


@pytest.mark.parametrize("power", [2.0, 1.0, 1.5])
def test_spectrogram_equals_powered_torch_stft(y, power):
    _close(F.spectrogram(y, power=power, **FRAMES), _reference_stft(y).abs() ** power)


@pytest.mark.parametrize(
    "mel", [dict(n_mels=80), dict(n_mels=8), dict(n_mels=40, fmin=300.0, fmax=3400.0, htk=True)]
)
def test_melspectrogram_equals_filterbank_times_power(y, mel):
    fb = F.mel_filterbank(sr=16000, n_fft=512, dtype=y.dtype, **mel)
    expected = fb @ (_reference_stft(y).abs() ** 2)
    _close(F.melspectrogram(y, sr=16000, **mel, **FRAMES), expected)
    _close(T.MelSpectrogram(sr=16000, **mel).double()(y), expected)


def test_float32_blocks_match_float64(y):
    expected = F.melspectrogram(y)
    got = F.melspectrogram(y.float())
    assert got.dtype == torch.float32
    _close(got.double(), expected, tol=1e-5)


def test_autograd_path_gives_the_same_numbers(y):
    # With gradients on, torch.stft is used; the values must not depend on the path.
    leaf = y.clone().requires_grad_()
    for fn in (F.stft, F.spectrogram, F.melspectrogram):
        with_grad = fn(leaf)
        assert with_grad.requires_grad
        _close(with_grad.detach(), fn(y))
