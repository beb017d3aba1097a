"""Bad input raises ParameterError (a ValueError) whose message names the parameter and echoes
the value; silence, which is valid, gives exact zeros and finite features."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from xmodal.audio import functional as F
from xmodal.audio import transforms as T
from xmodal.errors import ParameterError, XmodalError

Y = torch.from_numpy(np.random.default_rng(0).standard_normal(4000))  # float64, 0.25 s
S_COMPLEX = F.stft(Y)  # (257, 26) complex128
S_MAG = S_COMPLEX.abs()


def says(*parts: str) -> str:
    """A regex that needs every part (taken literally) somewhere in the message."""
    return "(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts)


def with_value(x: torch.Tensor, index: tuple, value: float) -> torch.Tensor:
    x = x.clone()
    x[index] = value
    return x


# (id, call, regex): the regex always holds the parameter's name and the offending value.
CASES = [
    # --- the signal itself
    ("empty", lambda: F.stft(torch.empty(0)), says("y is empty", "(0,)")),
    ("empty-batch", lambda: F.melspectrogram(torch.empty(3, 0)), says("y is empty", "(3, 0)")),
    ("0d-signal", lambda: F.stft(torch.tensor(0.5)), says("y must have at least 1", "shape ()")),
    ("1d-S-melspectrogram", lambda: F.melspectrogram(S=torch.rand(257)),
     says("S must have at least 2", "(257,)")),
    ("1d-S-griffinlim", lambda: F.griffinlim(torch.rand(257)),
     says("S must have at least 2", "(257,)")),
    ("1d-istft", lambda: F.istft(torch.randn(257, dtype=torch.complex128)),
     says("stft_matrix must have at least 2", "(257,)")),
    ("int16-pcm", lambda: F.stft(torch.zeros(4000, dtype=torch.int16)),
     says("y must have dtype", "int16")),
    ("int16-pcm-numpy", lambda: F.mfcc(np.zeros(4000, dtype=np.int16)),
     says("y must have dtype", "int16")),
    ("float16", lambda: F.spectrogram(torch.zeros(4000, dtype=torch.float16)),
     says("y must have dtype", "float16")),
    ("list", lambda: F.stft([0.1, 0.2, 0.3]), says("y must be a torch.Tensor", "list")),
    ("complex-y", lambda: F.spectrogram(S_COMPLEX), says("y must have dtype", "complex128")),
    ("complex-S-melspectrogram", lambda: F.melspectrogram(S=S_COMPLEX),
     says("S must have dtype", "complex128")),
    ("complex-power_to_db", lambda: F.power_to_db(S_COMPLEX), says("S must", "complex128")),
    ("complex-griffinlim", lambda: F.griffinlim(S_COMPLEX), says("S must", "complex128")),
    ("complex-delta", lambda: F.delta(S_COMPLEX), says("data must", "complex128")),
    ("real-istft", lambda: F.istft(S_MAG), says("stft_matrix must have dtype", "float64")),
    ("nan", lambda: F.stft(with_value(Y, (5,), math.nan)),
     says("y contains 1 non-finite", "nan at index (5,)")),
    ("inf", lambda: F.mfcc(with_value(with_value(Y, (7,), math.inf), (9,), -math.inf)),
     says("y contains 2 non-finite", "inf at index (7,)")),
    ("nan-batch", lambda: F.melspectrogram(with_value(Y.repeat(2, 1), (1, 3), math.nan)),
     says("y contains 1 non-finite", "(1, 3)")),
    ("nan-S", lambda: F.power_to_db(with_value(S_MAG, (0, 2), math.nan)),
     says("S contains 1 non-finite", "(0, 2)")),
    # --- frames
    ("n_fft<win_length", lambda: F.stft(Y, n_fft=256),
     says("win_length must be <= n_fft", "win_length=400, n_fft=256")),
    ("hop_length-0", lambda: F.stft(Y, hop_length=0), says("hop_length must", "Found: 0")),
    ("hop_length-negative", lambda: F.stft(Y, hop_length=-160),
     says("hop_length must", "Found: -160")),
    ("hop_length-float", lambda: F.stft(Y, hop_length=1.5), says("hop_length must", "1.5")),
    ("hop_length-str", lambda: F.spectrogram(Y, hop_length="160"),
     says("hop_length must", "'160'")),
    ("n_fft-0", lambda: F.stft(Y, n_fft=0), says("n_fft must", "Found: 0")),
    ("n_fft-negative", lambda: F.spectrogram(Y, n_fft=-512), says("n_fft must", "-512")),
    ("istft-hop_length-0", lambda: F.istft(S_COMPLEX, hop_length=0),
     says("hop_length must", "Found: 0")),
    ("istft-length-0", lambda: F.istft(S_COMPLEX, length=0), says("length must", "Found: 0")),
    ("istft-bins-for-n_fft", lambda: F.istft(S_COMPLEX, n_fft=256, win_length=256),
     says("257 frequency bins", "n_fft=256", "129")),
    # torch.istft cannot invert frames with gaps between them (hop longer than the window).
    ("istft-hop_length>win_length", lambda: F.istft(S_COMPLEX, hop_length=500),
     says("hop_length", "500")),
    ("power-0", lambda: F.spectrogram(Y, power=0), says("power must", "0")),
    ("center-not-bool", lambda: F.stft(Y, center="yes"), says("center must", "'yes'")),
    # --- window and padding
    ("window-name", lambda: F.stft(Y, window="hamm"), says("window must", "'hamm'")),
    ("window-length", lambda: F.stft(Y, window=torch.hann_window(300)),
     says("window must be 1-D of length win_length=400", "(300,)")),
    ("window-2d", lambda: F.stft(Y, window=torch.ones(2, 200)),
     says("window must be 1-D", "(2, 200)")),
    ("get_window-name", lambda: F.get_window("kaiser", 10), says("window must", "'kaiser'")),
    ("pad_mode", lambda: F.stft(Y, pad_mode="zeros"), says("pad_mode must", "'zeros'")),
    ("short-no-center", lambda: F.stft(torch.zeros(100), center=False),
     says("y has 100 samples", "n_fft=512")),
    ("short-reflect", lambda: F.stft(torch.zeros(200), pad_mode="reflect"),
     says("y has 200 samples", "reflect", "256")),
    # center=True pads n_fft // 2 = 256 samples each side; a 100-sample signal cannot wrap
    # around that far.
    ("short-wrap", lambda: F.stft(torch.randn(100), pad_mode="wrap"), says("100", "wrap")),
    # --- mel
    ("fmax>nyquist", lambda: F.melspectrogram(Y, fmax=9000.0),
     says("fmax must be <= sr / 2 = 8000", "fmax=9000")),
    ("fmax>nyquist-filterbank", lambda: F.mel_filterbank(sr=22050, fmax=12000.0),
     says("fmax must be <= sr / 2 = 11025", "fmax=12000")),
    ("fmin>fmax", lambda: F.mel_filterbank(fmin=4000.0, fmax=3000.0),
     says("fmin must be < fmax", "fmin=4000, fmax=3000")),
    ("fmin=nyquist", lambda: F.mfcc(Y, fmin=8000.0),
     says("fmin must be < fmax", "fmin=8000, fmax=8000")),
    ("n_mels-too-many", lambda: F.mel_filterbank(n_mels=256, n_fft=256),
     says("n_mels=256", "n_fft=256")),
    ("n_mels-too-many-melspectrogram",
     lambda: F.melspectrogram(Y, n_mels=256, n_fft=256, win_length=256),
     says("n_mels=256", "n_fft=256")),
    ("mel-norm", lambda: F.mel_filterbank(norm="l2"), says("norm must", "'l2'")),
    ("sr-0", lambda: F.mel_filterbank(sr=0), says("sr must", "0")),
    ("y-and-S", lambda: F.melspectrogram(Y, S=S_MAG), says("exactly one of y", "S")),
    # --- Griffin-Lim and spectral convergence
    ("momentum-1.2", lambda: F.griffinlim(S_MAG, momentum=1.2),
     r"momentum must be in range \[0, 1\)\. Found: 1\.2"),
    ("momentum-1", lambda: F.griffinlim(S_MAG, momentum=1.0), says("momentum must", "1.0")),
    ("momentum-negative", lambda: F.griffinlim(S_MAG, momentum=-0.5),
     says("momentum must", "-0.5")),
    ("negative-magnitude", lambda: F.griffinlim(with_value(S_MAG, (3, 4), -1.0)),
     says("S must be a magnitude", "negative")),
    ("silent-griffinlim", lambda: F.griffinlim(torch.zeros_like(S_MAG)),
     says("S is all zeros", "clip 0")),
    ("silent-clip-in-batch", lambda: F.griffinlim(torch.stack([S_MAG, 0 * S_MAG])),
     says("S is all zeros", "clip 1")),
    ("n_iter-negative", lambda: F.griffinlim(S_MAG, n_iter=-1), says("n_iter must", "-1")),
    ("init", lambda: F.griffinlim(S_MAG, init="zeros"), says("init must", "'zeros'")),
    ("griffinlim-bins-for-n_fft", lambda: F.griffinlim(S_MAG, n_fft=256, win_length=256),
     says("S has 257 frequency bins", "n_fft=256", "129")),
    ("griffinlim-pad_mode", lambda: F.griffinlim(S_MAG, pad_mode="zeros"),
     says("pad_mode must", "'zeros'")),
    ("silent-spectral_convergence", lambda: F.spectral_convergence(torch.zeros_like(S_MAG), Y),
     says("S is all zeros")),
    ("spectral_convergence-frames", lambda: F.spectral_convergence(S_MAG, Y[:3000]),
     says("S has shape (257, 26)", "(257, 19)")),
    # --- MFCC
    ("n_mfcc>n_mels", lambda: F.mfcc(Y, n_mfcc=100, n_mels=40), says("n_mfcc=100", "40")),
    ("n_mfcc>n_mels-S", lambda: F.mfcc(S=S_MAG[:20], n_mfcc=21), says("n_mfcc=21", "20")),
    ("dct_type-3", lambda: F.mfcc(Y, dct_type=3), says("dct_type must be 2", "Found: 3")),
    ("dct-norm", lambda: F.mfcc(Y, norm="l2"), says("norm must", "'l2'")),
    ("lifter-negative", lambda: F.mfcc(Y, lifter=-1), says("lifter must", "-1")),
    ("mfcc-neither", lambda: F.mfcc(), says("exactly one of y", "S")),
    ("dct_matrix-n_out>n_in", lambda: F.dct_matrix(20, 13), says("n_out=20", "n_in=13")),
    # --- delta
    ("width-even", lambda: F.delta(S_MAG, width=4), says("width must be an odd", "Found: 4")),
    ("width-2", lambda: F.delta(S_MAG, width=2), says("width must", "Found: 2")),
    ("width>frames-interp", lambda: F.delta(S_MAG[:, :5], width=9),
     says("width=9", "5 frames", "interp")),
    ("order>=width", lambda: F.delta(S_MAG, width=3, order=3),
     says("order must be < width", "order=3, width=3")),
    ("order-0", lambda: F.delta(S_MAG, order=0), says("order must", "Found: 0")),
    ("axis-out-of-range", lambda: F.delta(S_MAG, axis=2), says("axis must", "Found: 2")),
    ("axis-negative", lambda: F.delta(S_MAG, axis=-3), says("axis must", "Found: -3")),
    ("axis-not-int", lambda: F.delta(S_MAG, axis=0.5), says("axis", "0.5")),
    ("delta-mode", lambda: F.delta(S_MAG, mode="linear"), says("mode must", "'linear'")),
    ("mirror-short", lambda: F.delta(S_MAG[:, :3], width=9, mode="mirror"),
     says("mode='mirror'", "Found: 3")),
    # 'wrap' pads width // 2 = 4 frames each side; 3 frames cannot wrap around that far.
    ("wrap-short", lambda: F.delta(S_MAG[:, :3], width=9, mode="wrap"), says("wrap", "3")),
    # --- companding
    ("mu-law-|x|>1", lambda: F.mu_law_encode(torch.tensor([0.0, -0.2, 1.5])),
     says("x must lie in [-1, 1]", "1.5")),
    ("mu-law-channels", lambda: F.mu_law_encode(Y.clamp(-1, 1), quantization_channels=1),
     says("quantization_channels must", "1")),
    ("mu-law-codes-high", lambda: F.mu_law_decode(torch.tensor([0, 17, 300])),
     says("x_mu must hold class indices in [0, 255]", "[0, 300]")),
    ("mu-law-codes-negative", lambda: F.mu_law_decode(torch.tensor([-1, 3])),
     says("x_mu must hold class indices", "[-1, 3]")),
    ("mu-law-companded-out-of-range", lambda: F.mu_law_decode(torch.tensor([0.5, 1.5])),
     says("x_mu", "1.5")),
    ("mu-law-codes-empty", lambda: F.mu_law_decode(torch.empty(0, dtype=torch.int64)),
     says("x_mu", "(0,)")),
    ("power-law-0", lambda: F.power_law_compress(S_COMPLEX, power=0),
     says("power must", "Found: 0")),
    ("power-law-negative", lambda: F.power_law_compress(S_COMPLEX, power=-0.3),
     says("power must", "-0.3")),
    ("power-law-decompress-0", lambda: F.power_law_decompress(S_COMPLEX, power=0.0),
     says("power must", "Found: 0")),
    # --- decibels
    ("amin-0", lambda: F.power_to_db(S_MAG, amin=0), says("amin must", "Found: 0")),
    ("amin-negative", lambda: F.power_to_db(S_MAG, amin=-1e-10), says("amin must", "-1e-10")),
    ("top_db-negative", lambda: F.power_to_db(S_MAG, top_db=-10), says("top_db must", "-10")),
    ("ref-str", lambda: F.power_to_db(S_MAG, ref="max"), says("ref must", "'max'")),
    ("ref-None", lambda: F.power_to_db(S_MAG, ref=None), says("ref must", "None")),
    ("amplitude-amin-0", lambda: F.amplitude_to_db(S_MAG, amin=0.0), says("amin must", "0")),
    ("amplitude-top_db", lambda: F.amplitude_to_db(S_MAG, top_db=-1.0),
     says("top_db must", "-1")),
    ("db_to_power-ref-0", lambda: F.db_to_power(S_MAG, ref=0.0), says("ref must", "0")),
    ("db_to_amplitude-ref", lambda: F.db_to_amplitude(S_MAG, ref=-1.0), says("ref must", "-1")),
]  # fmt: skip

MODULE_CASES = [
    ("Spectrogram-hop_length", lambda: T.Spectrogram(hop_length=0),
     says("hop_length must", "Found: 0")),
    ("Spectrogram-n_fft<win_length", lambda: T.Spectrogram(n_fft=256),
     says("win_length must be <= n_fft", "win_length=400, n_fft=256")),
    ("Spectrogram-n_fft", lambda: T.Spectrogram(n_fft=0), says("n_fft must", "Found: 0")),
    ("Spectrogram-window", lambda: T.Spectrogram(window="hamm"), says("window must", "'hamm'")),
    ("Spectrogram-window-length", lambda: T.Spectrogram(window=torch.ones(300)),
     says("win_length=400", "(300,)")),
    ("Spectrogram-pad_mode", lambda: T.Spectrogram(pad_mode="zeros"),
     says("pad_mode must", "'zeros'")),
    ("Spectrogram-power", lambda: T.Spectrogram(power=0), says("power must", "0")),
    ("Spectrogram-center", lambda: T.Spectrogram(center=1), says("center must", "1")),
    ("MelSpectrogram-fmax", lambda: T.MelSpectrogram(fmax=9000.0),
     says("fmax must be <= sr / 2 = 8000", "fmax=9000")),
    ("MelSpectrogram-fmin>fmax", lambda: T.MelSpectrogram(fmin=4000.0, fmax=3000.0),
     says("fmin must be < fmax", "fmin=4000, fmax=3000")),
    ("MelSpectrogram-n_mels", lambda: T.MelSpectrogram(n_mels=256, n_fft=256, win_length=256),
     says("n_mels=256", "n_fft=256")),
    ("MelSpectrogram-norm", lambda: T.MelSpectrogram(norm="l2"), says("norm must", "'l2'")),
    ("MFCC-n_mfcc>n_mels", lambda: T.MFCC(n_mfcc=100, n_mels=40), says("n_mfcc=100", "40")),
    ("MFCC-norm", lambda: T.MFCC(norm="l2"), says("norm must", "'l2'")),
    ("MFCC-top_db", lambda: T.MFCC(top_db=-1), says("top_db must", "-1")),
    ("MFCC-lifter", lambda: T.MFCC(lifter=-1), says("lifter must", "-1")),
    ("MFCC-hop_length", lambda: T.MFCC(hop_length=1.5), says("hop_length must", "1.5")),
    ("GriffinLim-momentum", lambda: T.GriffinLim(momentum=1.2),
     r"momentum must be in range \[0, 1\)\. Found: 1\.2"),
    ("GriffinLim-momentum-negative", lambda: T.GriffinLim(momentum=-0.5),
     says("momentum must", "-0.5")),
    ("GriffinLim-n_iter", lambda: T.GriffinLim(n_iter=-1), says("n_iter must", "-1")),
    ("GriffinLim-init", lambda: T.GriffinLim(init="zeros"), says("init must", "'zeros'")),
    ("GriffinLim-length", lambda: T.GriffinLim(length=0), says("length must", "Found: 0")),
    ("GriffinLim-pad_mode", lambda: T.GriffinLim(pad_mode="zeros"),
     says("pad_mode must", "'zeros'")),
    ("GriffinLim-n_fft<win_length", lambda: T.GriffinLim(n_fft=256),
     says("win_length must be <= n_fft", "win_length=400, n_fft=256")),
    # The modules check their input as the functions do.
    ("Spectrogram(int16)", lambda: T.Spectrogram()(torch.zeros(4000, dtype=torch.int16)),
     says("y must have dtype", "int16")),
    ("MelSpectrogram(nan)", lambda: T.MelSpectrogram()(with_value(Y, (5,), math.nan)),
     says("y contains 1 non-finite", "(5,)")),
    ("MFCC(empty)", lambda: T.MFCC()(torch.empty(2, 0)), says("y is empty", "(2, 0)")),
    ("Spectrogram(short)", lambda: T.Spectrogram(center=False)(torch.zeros(100)),
     says("y has 100 samples", "n_fft=512")),
    ("GriffinLim(silent)", lambda: T.GriffinLim()(torch.zeros_like(S_MAG)),
     says("S is all zeros")),
    ("GriffinLim(negative)", lambda: T.GriffinLim()(-S_MAG), says("S must be a magnitude")),
]  # fmt: skip


def test_parameter_error_is_a_value_error():
    assert issubclass(ParameterError, ValueError)
    assert issubclass(ParameterError, XmodalError)


@pytest.mark.parametrize("call, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_functional_rejects_bad_input(call, pattern):
    with pytest.raises(ParameterError, match=pattern) as info:
        call()
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "call, pattern", [c[1:] for c in MODULE_CASES], ids=[c[0] for c in MODULE_CASES]
)
def test_modules_reject_bad_input(call, pattern):
    with pytest.raises(ParameterError, match=pattern) as info:
        call()
    assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------------- silence is valid


def test_stft_of_silence_is_exactly_zero(dtype):
    S = F.stft(torch.zeros(2, 4000, dtype=dtype))
    assert S.shape == (2, 257, 26)
    assert bool((S == 0).all())
    assert bool((F.spectrogram(torch.zeros(4000, dtype=dtype)) == 0).all())


def test_features_of_silence_are_finite(dtype):
    silence = torch.zeros(4000, dtype=dtype)
    assert bool((F.melspectrogram(silence) == 0).all())
    db = F.power_to_db(F.melspectrogram(silence))
    assert bool((db == -100.0).all())  # 10 log10(amin = 1e-10)
    out = F.mfcc(silence)
    assert out.shape == (13, 26)
    assert bool(torch.isfinite(out).all())
    assert bool(torch.isfinite(T.MFCC()(silence)).all())
    assert bool(torch.isfinite(F.delta(out)).all())


def test_silent_clip_next_to_a_loud_one_is_fine():
    batch = torch.stack([torch.zeros_like(Y), Y])
    out = F.mfcc(batch)
    assert bool(torch.isfinite(out).all())
    torch.testing.assert_close(out[1], F.mfcc(Y), rtol=1e-10, atol=1e-10)
