"""Parity with librosa: the same parameters must give the same numbers.

Tolerances are per precision: 1e-6 relative in float64 and 1e-4 in float32, with an
absolute floor of the same size times the reference's peak, so bins near zero are judged
against the scale of the clip rather than against themselves.
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from xmodal.audio import functional as F

TOL = {torch.float64: 1e-6, torch.float32: 1e-4}
NP_DTYPE = {torch.float64: np.float64, torch.float32: np.float32}
COMPLEX = {torch.float64: torch.complex128, torch.float32: torch.complex64}

SR = 16000
# Our defaults, spelled out so that librosa gets exactly the same ones.
STFT_KW = dict(
    n_fft=512, hop_length=160, win_length=400, window="hamming", center=True, pad_mode="constant"
)
MEL_KW = dict(n_mels=80, fmin=0.0, fmax=None, htk=False, norm="slaney")
LIBROSA_DEFAULTS = dict(n_fft=2048, hop_length=512, win_length=2048, window="hann", n_mels=128)


def assert_matches(actual: torch.Tensor, expected: np.ndarray, dtype: torch.dtype) -> None:
    """``actual`` equals ``expected`` to TOL[dtype], relative to the clip's peak."""
    tol = TOL[dtype]
    expected = np.asarray(expected)
    np.testing.assert_allclose(
        actual.detach().cpu().numpy(),
        expected,
        rtol=tol,
        atol=tol * float(np.abs(expected).max()),
    )


def as_input(y: np.ndarray, dtype: torch.dtype) -> tuple[torch.Tensor, np.ndarray]:
    """The same samples for both libraries, in the precision under test."""
    y_np = np.ascontiguousarray(y, dtype=NP_DTYPE[dtype])
    return torch.from_numpy(y_np.copy()), y_np


def librosa_mel_dtype(dtype: torch.dtype) -> dict:
    # librosa builds the filterbank in float32 unless told otherwise, even for float64 input.
    return {"dtype": np.float64} if dtype == torch.float64 else {}


# --------------------------------------------------------------------------- STFT


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"center": False},
        {"pad_mode": "reflect"},
        {"window": "hann", "win_length": 512},
        {"n_fft": 2048, "hop_length": 512, "win_length": 2048, "window": "hann"},
    ],
    ids=["defaults", "no-center", "reflect", "hann", "librosa-defaults"],
)
def test_stft_matches_librosa(signal, dtype, config):
    kw = {**STFT_KW, **config}
    y_t, y_np = as_input(signal, dtype)
    ours = F.stft(y_t, **kw)
    ref = librosa.stft(y_np, **kw)
    assert ours.dtype == COMPLEX[dtype]
    assert ours.shape == ref.shape
    assert_matches(ours, ref, dtype)


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_spectrogram_matches_librosa(signal, dtype, power):
    y_t, y_np = as_input(signal, dtype)
    ours = F.spectrogram(y_t, power=power, **STFT_KW)
    ref = np.abs(librosa.stft(y_np, **STFT_KW)) ** power
    assert ours.dtype == dtype
    assert_matches(ours, ref, dtype)


# --------------------------------------------------------------------------- mel


@pytest.mark.parametrize(
    "sr, n_fft, n_mels, fmin, fmax",
    [
        (16000, 512, 80, 0.0, None),
        (22050, 2048, 128, 0.0, None),
        (16000, 400, 40, 20.0, 7600.0),
        (8000, 256, 23, 300.0, 3800.0),
        (44100, 1024, 64, 50.0, 16000.0),
    ],
)
@pytest.mark.parametrize("htk", [False, True], ids=["slaney-scale", "htk-scale"])
@pytest.mark.parametrize("norm", ["slaney", None, 2], ids=["norm-slaney", "norm-none", "norm-2"])
def test_mel_filterbank_matches_librosa(dtype, sr, n_fft, n_mels, fmin, fmax, htk, norm):
    ours = F.mel_filterbank(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm, dtype=dtype
    )
    ref = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm,
        dtype=NP_DTYPE[dtype],
    )  # fmt: skip
    assert ours.dtype == dtype
    assert ours.shape == ref.shape == (n_mels, 1 + n_fft // 2)
    assert_matches(ours, ref, dtype)


@pytest.mark.parametrize(
    "mel_config",
    [{}, {"htk": True, "norm": None, "fmin": 50.0, "fmax": 7000.0, "n_mels": 64}],
    ids=["defaults", "htk-unnormed-band"],
)
def test_melspectrogram_matches_librosa(signal, dtype, mel_config):
    kw = {**MEL_KW, **mel_config}
    y_t, y_np = as_input(signal, dtype)
    ours = F.melspectrogram(y_t, sr=SR, **STFT_KW, **kw)
    ref = librosa.feature.melspectrogram(y=y_np, sr=SR, **STFT_KW, **kw, **librosa_mel_dtype(dtype))
    assert ours.dtype == dtype
    assert ours.shape == ref.shape
    assert_matches(ours, ref, dtype)


def test_melspectrogram_from_spectrogram_matches_librosa(speech):
    S = np.abs(librosa.stft(speech, **STFT_KW)) ** 2
    ours = F.melspectrogram(S=torch.from_numpy(S), sr=SR)
    ref = librosa.feature.melspectrogram(S=S, sr=SR, n_mels=80, dtype=np.float64)
    assert_matches(ours, ref, torch.float64)


# --------------------------------------------------------------------------- decibels


@pytest.mark.parametrize("ref", [1.0, np.max], ids=["ref-1", "ref-max"])
@pytest.mark.parametrize("top_db", [80.0, None], ids=["top_db-80", "top_db-none"])
def test_power_to_db_matches_librosa(signal, dtype, ref, top_db):
    y_np = signal.astype(NP_DTYPE[dtype])
    S = librosa.feature.melspectrogram(y=y_np, sr=SR, **STFT_KW, **librosa_mel_dtype(dtype))
    ours = F.power_to_db(torch.from_numpy(S), ref=ref, top_db=top_db)
    expected = librosa.power_to_db(S, ref=ref, top_db=top_db)
    assert ours.dtype == dtype
    assert_matches(ours, expected, dtype)


# librosa warns that the phase of a complex input is dropped: that is the point here.
@pytest.mark.filterwarnings("ignore:amplitude_to_db was called on complex input:UserWarning")
@pytest.mark.parametrize("ref", [1.0, np.max], ids=["ref-1", "ref-max"])
@pytest.mark.parametrize("top_db", [80.0, None], ids=["top_db-80", "top_db-none"])
@pytest.mark.parametrize("complex_input", [False, True], ids=["magnitude", "complex"])
def test_amplitude_to_db_matches_librosa(signal, dtype, ref, top_db, complex_input):
    y_np = signal.astype(NP_DTYPE[dtype])
    D = librosa.stft(y_np, **STFT_KW)
    S = D if complex_input else np.abs(D)
    ours = F.amplitude_to_db(torch.from_numpy(S), ref=ref, top_db=top_db)
    expected = librosa.amplitude_to_db(S, ref=ref, top_db=top_db)
    assert ours.dtype == dtype
    assert_matches(ours, expected, dtype)


@pytest.mark.parametrize("ref", [1.0, np.max], ids=["ref-1", "ref-max"])
def test_power_to_db_top_db_is_per_clip_unlike_librosa(speech, ref):
    """Documented difference: a quiet clip next to a loud one keeps its own dynamic range."""
    loud = np.abs(librosa.stft(speech, **STFT_KW)) ** 2
    quiet = 1e-6 * loud  # 60 dB quieter
    batch = np.stack([loud, quiet])

    ours = F.power_to_db(torch.from_numpy(batch), ref=ref, top_db=80.0)

    per_clip = np.stack([librosa.power_to_db(c, ref=ref, top_db=80.0) for c in batch])
    assert_matches(ours, per_clip, torch.float64)
    # librosa floors the whole stack 80 dB below the loud clip's peak, which flattens most
    # of the quiet clip; ours does not.
    stacked = librosa.power_to_db(batch, ref=ref, top_db=80.0)
    quiet_ours = ours[1].numpy()
    changed = ~np.isclose(quiet_ours, stacked[1], rtol=1e-6, atol=1e-6 * np.abs(stacked).max())
    assert changed.mean() > 0.1
    np.testing.assert_allclose(ours[0].numpy(), stacked[0], rtol=1e-6)


# --------------------------------------------------------------------------- MFCC


@pytest.mark.parametrize("lifter", [0.0, 22.0], ids=["no-lifter", "lifter-22"])
@pytest.mark.parametrize("norm", ["ortho", None], ids=["ortho", "unnormed"])
def test_mfcc_matches_librosa(signal, dtype, lifter, norm):
    y_t, y_np = as_input(signal, dtype)
    ours = F.mfcc(y_t, sr=SR, n_mfcc=13, norm=norm, lifter=lifter, **STFT_KW, n_mels=80)
    ref = librosa.feature.mfcc(
        y=y_np, sr=SR, n_mfcc=13, norm=norm, lifter=lifter, **STFT_KW, n_mels=80,
        **librosa_mel_dtype(dtype),
    )  # fmt: skip
    assert ours.dtype == dtype
    assert ours.shape == ref.shape
    assert_matches(ours, ref, dtype)


# --------------------------------------------------------------------------- librosa defaults


def test_melspectrogram_with_librosa_defaults(signal):
    """Every default of ours can be set to librosa's: compare with librosa left at its own."""
    ours = F.melspectrogram(torch.from_numpy(signal), sr=SR, **LIBROSA_DEFAULTS)
    ref = librosa.feature.melspectrogram(y=signal, sr=SR, dtype=np.float64)
    assert ours.shape == ref.shape
    assert_matches(ours, ref, torch.float64)


def test_mfcc_with_librosa_defaults(signal):
    ours = F.mfcc(torch.from_numpy(signal), sr=SR, n_mfcc=20, **LIBROSA_DEFAULTS)
    ref = librosa.feature.mfcc(y=signal, sr=SR, dtype=np.float64)
    assert ours.shape == ref.shape == (20, 1 + len(signal) // 512)
    assert_matches(ours, ref, torch.float64)


# --------------------------------------------------------------------------- delta


@pytest.fixture(scope="module", params=["noise", "tone", "chirp", "speech"])
def features(request) -> np.ndarray:
    """MFCCs of each test signal: (13, frames), the usual input of delta; made once."""
    y = request.getfixturevalue(request.param)
    return librosa.feature.mfcc(y=y, sr=SR, n_mfcc=13, **STFT_KW, dtype=np.float64)


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("mode", ["interp", "nearest", "mirror", "constant", "wrap"])
@pytest.mark.parametrize("width", [3, 5, 9])
@pytest.mark.parametrize("order", [1, 2])
def test_delta_matches_librosa(features, dtype, order, width, mode, axis):
    data = features.astype(NP_DTYPE[dtype])
    ours = F.delta(torch.from_numpy(data), width=width, order=order, axis=axis, mode=mode)
    ref = librosa.feature.delta(data, width=width, order=order, axis=axis, mode=mode)
    assert ours.dtype == dtype
    assert ours.shape == ref.shape
    assert_matches(ours, ref, dtype)
