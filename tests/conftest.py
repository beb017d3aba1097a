"""Signals shared by the tests: noise, tones, a chirp and a spoken sentence, made here.

Nothing is downloaded: speech comes from eSpeak NG (the espeakng-loader wheel), synthesized
once per test session and resampled to 16 kHz.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

SR = 16000


@pytest.fixture(autouse=True, scope="session")
def _own_cache(tmp_path_factory):
    """Upstream runs the engine trains go to a cache of the test session's own, never the
    user's ``~/.cache/xmodal``."""
    import os

    before = os.environ.get("XMODAL_CACHE")
    os.environ["XMODAL_CACHE"] = str(tmp_path_factory.mktemp("xmodal-cache"))
    yield
    if before is None:
        os.environ.pop("XMODAL_CACHE", None)
    else:
        os.environ["XMODAL_CACHE"] = before


@pytest.fixture(scope="session")
def sr() -> int:
    return SR


@pytest.fixture(scope="session")
def noise() -> np.ndarray:
    """1.5 s of Gaussian noise at 16 kHz, float64, peak well inside [-1, 1]."""
    rng = np.random.default_rng(1234)
    return 0.1 * rng.standard_normal(int(1.5 * SR))


@pytest.fixture(scope="session")
def tone() -> np.ndarray:
    """1 s of a 1 kHz sine at 16 kHz (exactly on STFT bin 32 with n_fft=512), float64."""
    t = np.arange(SR) / SR
    return 0.5 * np.sin(2 * math.pi * 1000.0 * t)


@pytest.fixture(scope="session")
def chirp() -> np.ndarray:
    """1 s linear chirp from 100 Hz to 6 kHz with an amplitude envelope, float64."""
    from scipy.signal import chirp as scipy_chirp

    t = np.arange(SR) / SR
    return 0.4 * np.hanning(SR) * scipy_chirp(t, f0=100.0, t1=1.0, f1=6000.0)


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    """A spoken English sentence at 16 kHz, float64 (eSpeak NG, resampled with soxr)."""
    from xmodal.audio import resample
    from xmodal.audio.speech import synthesize

    y, native = synthesize("the small red circle is to the left of the big blue square")
    y16 = resample(y.double(), orig_sr=native, target_sr=SR)
    return y16.numpy()


@pytest.fixture(params=["noise", "tone", "chirp", "speech"])
def signal(request) -> np.ndarray:
    """Each test signal in turn."""
    return request.getfixturevalue(request.param)


@pytest.fixture(params=[torch.float64, torch.float32], ids=["float64", "float32"])
def dtype(request) -> torch.dtype:
    return request.param


@pytest.fixture(scope="module")
def toy():
    """The engine's toy task (tests/engine/toy_task.py) registered as 'toy' for a module."""
    from tests.engine.toy_task import ToyTask
    from xmodal.registry import register_task, unregister_task

    register_task(ToyTask, overwrite=True)
    yield "toy"
    unregister_task("toy")
