"""Every op runs on the input's device and agrees with the CPU result.

On a machine without an accelerator only the CPU case runs; with CUDA the same
assertions check the GPU path (outputs stay on the device, numbers match the CPU).
"""

from __future__ import annotations

import pytest
import torch

from xmodal.audio import functional as F
from xmodal.audio import transforms as T

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


def _close(got: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
    torch.testing.assert_close(
        got.cpu(), expected, rtol=tol, atol=tol * float(expected.abs().max())
    )


def test_functions_stay_on_device_and_match_cpu(device, speech):
    y = torch.from_numpy(speech[:16000]).float().expand(2, -1).contiguous()
    on = y.to(device)
    for fn in (F.stft, F.spectrogram, F.melspectrogram, F.mfcc):
        out = fn(on)
        assert out.device.type == device.type
        _close(out, fn(y), 1e-4)
    S = F.spectrogram(y, power=1)
    rebuilt = F.griffinlim(S.to(device), n_iter=8, init=None, length=y.shape[-1])
    assert rebuilt.device.type == device.type
    _close(rebuilt, F.griffinlim(S, n_iter=8, init=None, length=y.shape[-1]), 1e-3)
    C = F.mfcc(y)
    _close(F.delta(C.to(device)), F.delta(C), 1e-4)


def test_modules_move_with_to(device, speech):
    y = torch.from_numpy(speech[:8000]).float()
    for module in (T.Spectrogram(), T.MelSpectrogram(), T.MFCC()):
        expected = module(y)
        moved = module.to(device)
        assert all(b.device.type == device.type for b in moved.buffers())
        _close(moved(y.to(device)), expected, 1e-4)
