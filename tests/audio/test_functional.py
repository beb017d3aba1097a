"""Analytic answers and invariants of the sound front end, and its nn.Module wrappers.

Each test checks a number that follows from the mathematics (a tone's bin, Parseval's
theorem, the area of a Slaney triangle, the derivative of a polynomial), an invariant
(round trip, batched equals per-item, dtype in equals dtype out), a gradient, or, for
Griffin-Lim, a figure of merit against librosa run with the same settings.
"""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import scipy.fftpack
import torch

from xmodal.audio import functional as F
from xmodal.audio import transforms as T

SR = 16000
COMPLEX = {torch.float64: torch.complex128, torch.float32: torch.complex64}


def rel_close(actual, expected, tol: float) -> None:
    """``actual == expected`` to ``tol`` relative, with an absolute floor of tol * peak."""
    expected = torch.as_tensor(expected)
    torch.testing.assert_close(
        actual,
        expected.to(actual.dtype),
        rtol=tol,
        atol=tol * float(expected.abs().max()),
    )


def sine(freq: float, seconds: float = 0.5, sr: int = SR) -> torch.Tensor:
    t = torch.arange(int(seconds * sr), dtype=torch.float64) / sr
    return torch.sin(2 * math.pi * freq * t)


# --------------------------------------------------------------------------- STFT


@pytest.mark.parametrize("freq", [440.0, 1000.0, 1234.5, 2017.0, 3000.0, 5512.5, 7000.0])
@pytest.mark.parametrize("window", ["hamming", "hann"])
def test_tone_energy_peaks_in_its_bin(freq, window):
    n_fft = 512
    power = F.spectrogram(sine(freq), n_fft=n_fft, window=window)
    # Leave out the edge frames, where the zero padding of center=True cuts the tone.
    spectrum = power[:, 3:-3].mean(dim=-1)
    assert int(spectrum.argmax()) == round(freq * n_fft / SR)


def test_parseval_rectangular_window(signal):
    n_fft = 256
    y = torch.from_numpy(signal[: (len(signal) // n_fft) * n_fft])
    S = F.stft(y, n_fft=n_fft, hop_length=n_fft, win_length=n_fft, window="ones", center=False)
    assert S.shape[-1] == len(y) // n_fft  # the frames tile the signal exactly
    power = S.abs().square()
    # The one-sided STFT holds DC and Nyquist once and every other bin for two.
    two_sided = power[0] + power[-1] + 2 * power[1:-1].sum(dim=0)
    torch.testing.assert_close(two_sided.sum() / n_fft, y.square().sum(), rtol=1e-10, atol=0)


@pytest.mark.parametrize("window", ["hamming", "hann"])
@pytest.mark.parametrize("lead", [(), (3,), (2, 3)], ids=["1d", "batch3", "batch2x3"])
def test_istft_inverts_stft(dtype, window, lead):
    rng = np.random.default_rng(7)
    y = torch.from_numpy(0.1 * rng.standard_normal(lead + (4001,))).to(dtype)
    S = F.stft(y, window=window)
    back = F.istft(S, n_fft=512, window=window, length=y.shape[-1])
    assert back.dtype == dtype
    assert back.shape == y.shape
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(back, y, rtol=0, atol=tol)


def test_istft_inverts_stft_of_each_signal(signal):
    y = torch.from_numpy(signal)
    back = F.istft(F.stft(y), length=len(y))
    torch.testing.assert_close(back, y, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- batched == per-item


@pytest.fixture
def batch() -> torch.Tensor:
    """(2, 3, time) float64 noise, each clip at a different loudness (0 dB to -100 dB)."""
    rng = np.random.default_rng(11)
    y = torch.from_numpy(rng.standard_normal((2, 3, 4000)))
    gains = torch.logspace(0, -5, 6, dtype=torch.float64).reshape(2, 3, 1)
    return y * gains


def assert_per_item(batched: torch.Tensor, per_item, inputs: torch.Tensor) -> None:
    for i in range(inputs.shape[0]):
        for j in range(inputs.shape[1]):
            expected = per_item(inputs[i, j])
            rel_close(batched[i, j], expected, 1e-10)


@pytest.mark.parametrize(
    "fn",
    [
        F.stft,
        F.spectrogram,
        lambda y: F.melspectrogram(y),
        lambda y: F.mfcc(y),
        lambda y: F.power_to_db(F.melspectrogram(y)),
        lambda y: F.power_to_db(F.melspectrogram(y), ref=torch.max),
        lambda y: F.delta(F.mfcc(y), width=5),
    ],
    ids=["stft", "spectrogram", "melspectrogram", "mfcc", "power_to_db", "power_to_db-max",
         "delta"],
)  # fmt: skip
def test_batched_equals_per_item(batch, fn):
    assert_per_item(fn(batch), fn, batch)


def test_power_to_db_batch_uses_each_clips_own_floor(batch):
    """A clip 100 dB below its neighbours keeps its own 80 dB range, not theirs."""
    mel = F.melspectrogram(batch)
    db = F.power_to_db(mel, top_db=80.0)
    for i in range(2):
        for j in range(3):
            peak = db[i, j].max()
            assert db[i, j].min() >= peak - 80.0 - 1e-9
            torch.testing.assert_close(db[i, j].max(), 10 * torch.log10(mel[i, j].max()))


def test_griffinlim_batched_equals_per_item(batch):
    S = F.stft(batch).abs()

    def run(x):
        return F.griffinlim(x, n_iter=8, init=None, length=batch.shape[-1])

    assert_per_item(run(S), run, S)


def test_griffinlim_random_init_is_seeded():
    S = F.stft(sine(700.0, 0.25)).abs()
    a = F.griffinlim(S, n_iter=4, generator=torch.Generator().manual_seed(3))
    b = F.griffinlim(S, n_iter=4, generator=torch.Generator().manual_seed(3))
    c = F.griffinlim(S, n_iter=4, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize(
    "fn, complex_out",
    [
        (F.stft, True),
        (F.spectrogram, False),
        (F.melspectrogram, False),
        (F.mfcc, False),
        (lambda y: F.power_to_db(F.spectrogram(y)), False),
        (lambda y: F.amplitude_to_db(F.stft(y)), False),
        (lambda y: F.delta(F.mfcc(y)), False),
        (lambda y: F.istft(F.stft(y)), False),
        (lambda y: F.griffinlim(F.spectrogram(y, power=1.0), n_iter=2), False),
        (lambda y: F.power_law_compress(F.stft(y)), True),
        (lambda y: F.mu_law_encode(y.clamp(-1, 1), quantize=False), False),
    ],
    ids=["stft", "spectrogram", "melspectrogram", "mfcc", "power_to_db", "amplitude_to_db",
         "delta", "istft", "griffinlim", "power_law", "mu_law"],
)  # fmt: skip
def test_output_dtype_follows_input(dtype, fn, complex_out):
    y = (0.1 * torch.randn(3200, generator=torch.Generator().manual_seed(0))).to(dtype)
    out = fn(y)
    assert out.dtype == (COMPLEX[dtype] if complex_out else dtype)


def test_numpy_input_gives_the_tensor_result(speech):
    torch.testing.assert_close(F.mfcc(speech), F.mfcc(torch.from_numpy(speech)), rtol=0, atol=0)


# --------------------------------------------------------------------------- mel scale


def test_hz_to_mel_known_values():
    expected = 2595.0 * math.log10(1 + 1000 / 700)
    assert F.hz_to_mel(1000.0, htk=True) == pytest.approx(expected, rel=1e-12)
    # Slaney: linear at 3 / 200 mel per Hz below 1 kHz, so 1 kHz is 15 mel ...
    assert F.hz_to_mel(1000.0) == pytest.approx(15.0, rel=1e-12)
    assert F.hz_to_mel(500.0) == pytest.approx(7.5, rel=1e-12)
    assert F.hz_to_mel(200.0 / 3) == pytest.approx(1.0, rel=1e-12)
    # ... and 27 mel per factor 6.4 above it.
    assert F.hz_to_mel(6400.0) == pytest.approx(15.0 + 27.0, rel=1e-12)
    assert F.hz_to_mel(6400.0 * 6.4) == pytest.approx(15.0 + 54.0, rel=1e-12)


@pytest.mark.parametrize("htk", [False, True])
def test_mel_scale_round_trip_and_types(htk):
    hz = np.linspace(0.0, 22050.0, 1001)
    mels = F.hz_to_mel(hz, htk=htk)
    assert isinstance(mels, np.ndarray)
    assert np.all(np.diff(mels) > 0)
    np.testing.assert_allclose(F.mel_to_hz(mels, htk=htk), hz, rtol=1e-12, atol=1e-9)
    as_tensor = F.hz_to_mel(torch.from_numpy(hz), htk=htk)
    assert isinstance(as_tensor, torch.Tensor)
    np.testing.assert_allclose(as_tensor.numpy(), mels, rtol=1e-15)
    assert isinstance(F.mel_to_hz(3.0, htk=htk), float)
    np.testing.assert_allclose(mels, librosa.hz_to_mel(hz, htk=htk), rtol=1e-12)


def test_fft_frequencies_are_bin_centres():
    f = F.fft_frequencies(sr=SR, n_fft=512)
    assert f.shape == (257,)
    assert f[0] == 0 and f[-1] == SR / 2
    torch.testing.assert_close(torch.diff(f), torch.full((256,), SR / 512, dtype=torch.float64))


MEL_SETTINGS = [
    dict(sr=16000, n_fft=512, n_mels=80, fmin=0.0, fmax=None, htk=False),
    dict(sr=16000, n_fft=512, n_mels=40, fmin=100.0, fmax=7000.0, htk=True),
    dict(sr=22050, n_fft=2048, n_mels=128, fmin=0.0, fmax=None, htk=False),
]


@pytest.mark.parametrize("cfg", MEL_SETTINGS, ids=["speech", "htk-band", "librosa"])
def test_mel_filters_are_the_triangles_between_mel_points(cfg):
    fb = F.mel_filterbank(**cfg, norm=None, dtype=torch.float64)
    fmax = cfg["fmax"] or cfg["sr"] / 2
    edges = F.mel_frequencies(cfg["n_mels"] + 2, fmin=cfg["fmin"], fmax=fmax, htk=cfg["htk"])
    freqs = F.fft_frequencies(sr=cfg["sr"], n_fft=cfg["n_fft"]).numpy()
    assert bool((fb >= 0).all())
    for i in range(cfg["n_mels"]):
        lo, mid, hi = edges[i : i + 3].tolist()
        triangle = np.interp(freqs, [lo, mid, hi], [0.0, 1.0, 0.0], left=0.0, right=0.0)
        np.testing.assert_allclose(fb[i].numpy(), triangle, rtol=1e-12, atol=1e-12)
        # The sampled peak is one of the two FFT bins either side of the band's centre
        # (not always the nearer one: the triangle's two slopes differ).
        assert abs(freqs[int(fb[i].argmax())] - mid) < cfg["sr"] / cfg["n_fft"]


@pytest.mark.parametrize("cfg", MEL_SETTINGS, ids=["speech", "htk-band", "librosa"])
def test_slaney_norm_gives_each_triangle_unit_area_in_hz(cfg):
    plain = F.mel_filterbank(**cfg, norm=None, dtype=torch.float64)
    slaney = F.mel_filterbank(**cfg, norm="slaney", dtype=torch.float64)
    fmax = cfg["fmax"] or cfg["sr"] / 2
    edges = F.mel_frequencies(cfg["n_mels"] + 2, fmin=cfg["fmin"], fmax=fmax, htk=cfg["htk"])
    for i in range(cfg["n_mels"]):
        support = plain[i] > 0
        scale = slaney[i][support] / plain[i][support]
        # Slaney scales the whole unit-height triangle by one factor: its height.
        torch.testing.assert_close(scale, scale[0].expand_as(scale), rtol=1e-12, atol=0)
        base = edges[i + 2] - edges[i]
        area = 0.5 * base * scale[0]  # a triangle of base `base` Hz and that height
        assert float(area) == pytest.approx(1.0, rel=1e-12)


def test_slaney_area_is_also_the_riemann_sum_for_wide_filters():
    # With bins much narrower than the filters, sum(weights) * bin_width approximates the
    # integral of each triangle, which Slaney normalization makes 1.
    n_fft, sr = 16384, 16000
    fb = F.mel_filterbank(sr=sr, n_fft=n_fft, n_mels=20, dtype=torch.float64)
    area = fb.sum(dim=1) * (sr / n_fft)
    torch.testing.assert_close(area, torch.ones(20, dtype=torch.float64), rtol=0, atol=1e-2)


@pytest.mark.parametrize("norm", [1, 2, math.inf])
def test_p_norm_filters_have_unit_norm(norm):
    fb = F.mel_filterbank(norm=norm, dtype=torch.float64)
    norms = torch.linalg.vector_norm(fb, ord=norm, dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms), rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- DCT, MFCC


@pytest.mark.parametrize("n", [8, 13, 40])
def test_dct_matrix_ortho_is_orthogonal_and_equals_scipy(n):
    D = F.dct_matrix(n, n, norm="ortho", dtype=torch.float64)
    torch.testing.assert_close(D @ D.T, torch.eye(n, dtype=torch.float64), rtol=0, atol=1e-12)
    x = np.random.default_rng(n).standard_normal((n, 5))
    expected = scipy.fftpack.dct(x, type=2, norm="ortho", axis=0)
    np.testing.assert_allclose((D @ torch.from_numpy(x)).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_dct_matrix_unnormed_and_truncated_equal_scipy():
    x = np.random.default_rng(0).standard_normal((40, 3))
    D = F.dct_matrix(13, 40, norm=None, dtype=torch.float64)
    expected = scipy.fftpack.dct(x, type=2, norm=None, axis=0)[:13]
    np.testing.assert_allclose((D @ torch.from_numpy(x)).numpy(), expected, rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("lifter", [0.0, 2.0, 22.0])
def test_mfcc_from_log_mel_is_the_liftered_dct(lifter):
    log_mel = torch.from_numpy(np.random.default_rng(1).standard_normal((40, 30)) * 20 - 50)
    out = F.mfcc(S=log_mel, n_mfcc=13, lifter=lifter)
    k = np.arange(1, 14)
    lift = 1.0 + (lifter / 2) * np.sin(np.pi * k / lifter) if lifter else np.ones(13)
    expected = scipy.fftpack.dct(log_mel.numpy(), type=2, norm="ortho", axis=0)[:13]
    expected = expected * lift[:, None]
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-10)


def test_mfcc_of_silence_is_the_dct_of_the_floor():
    """All-zero input: every mel band is at the amin floor, -100 dB; only c0 is nonzero."""
    out = F.mfcc(torch.zeros(8000, dtype=torch.float64), n_mels=40)
    assert bool(torch.isfinite(out).all())
    torch.testing.assert_close(
        out[0], torch.full_like(out[0], -100.0 * math.sqrt(40)), rtol=1e-12, atol=0
    )
    torch.testing.assert_close(out[1:], torch.zeros_like(out[1:]), rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- delta


@pytest.mark.parametrize("width", [3, 5, 9])
def test_delta_of_a_ramp_is_its_slope(width):
    t = torch.arange(50, dtype=torch.float64)
    ramp = torch.stack([0.75 * t - 3.0, -2.0 * t + 1.0])
    d = F.delta(ramp, width=width, order=1, mode="interp")
    torch.testing.assert_close(d[0], torch.full_like(t, 0.75), rtol=0, atol=1e-10)
    torch.testing.assert_close(d[1], torch.full_like(t, -2.0), rtol=0, atol=1e-10)


@pytest.mark.parametrize("width", [3, 5, 9])
def test_delta_order_2_of_a_quadratic_is_its_second_derivative(width):
    t = torch.arange(50, dtype=torch.float64)
    quad = 0.3 * t**2 - 2.0 * t + 5.0
    d2 = F.delta(quad, width=width, order=2, mode="interp")
    torch.testing.assert_close(d2, torch.full_like(t, 0.6), rtol=0, atol=1e-9)


def test_delta_along_axis_0_equals_along_the_last_axis_transposed():
    x = torch.randn(30, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(F.delta(x, axis=0), F.delta(x.T, axis=-1).T, rtol=0, atol=0)


# --------------------------------------------------------------------------- Griffin-Lim


GL_KW = dict(n_iter=32, hop_length=160, win_length=400, n_fft=512, window="hamming",
             center=True, pad_mode="constant", momentum=0.99)  # fmt: skip


@pytest.mark.parametrize("name", ["speech", "chirp"])
def test_griffinlim_from_zero_phase_matches_librosa(request, name):
    """Same start (zero phase), same settings: the same algorithm gives the same waveform."""
    y = request.getfixturevalue(name)
    S = F.stft(torch.from_numpy(y)).abs()
    ours = F.griffinlim(S, init=None, length=len(y), **GL_KW)
    theirs = librosa.griffinlim(S.numpy(), init=None, length=len(y), **GL_KW)
    rel_close(ours, theirs, 1e-8)
    sc_ours = float(F.spectral_convergence(S, ours))
    sc_theirs = float(F.spectral_convergence(S, torch.from_numpy(theirs)))
    assert sc_ours <= sc_theirs + 0.01
    # And the retrieval is real: far better than the zero phase it started from.
    start = F.griffinlim(S, n_iter=0, init=None, length=len(y))
    assert sc_ours < 0.5 * float(F.spectral_convergence(S, start))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["speech", "chirp"])
def test_griffinlim_from_random_phase_converges_as_well_as_librosa(request, name):
    """Random starts differ between the libraries (torch vs numpy generators), and one
    start's result varies by a few hundredths of spectral convergence from seed to seed in
    either library, so compare the mean over the same four seeds (random_state 0..3)."""
    y = request.getfixturevalue(name)
    S = F.stft(torch.from_numpy(y)).abs()
    sc_ours, sc_theirs = [], []
    for seed in range(4):
        gen = torch.Generator().manual_seed(seed)
        ours = F.griffinlim(S, init="random", generator=gen, length=len(y), **GL_KW)
        theirs = librosa.griffinlim(S.numpy(), init="random", random_state=seed,
                                    length=len(y), **GL_KW)  # fmt: skip
        sc_ours.append(float(F.spectral_convergence(S, ours)))
        sc_theirs.append(float(F.spectral_convergence(S, torch.from_numpy(theirs))))
    assert np.mean(sc_ours) <= np.mean(sc_theirs) + 0.01, (sc_ours, sc_theirs)


def test_griffinlim_without_momentum_converges(chirp):
    y = torch.from_numpy(chirp)
    S = F.stft(y).abs()
    scs = []
    for n_iter in [0, 4, 16, 48]:
        gen = torch.Generator().manual_seed(5)
        rebuilt = F.griffinlim(S, n_iter=n_iter, momentum=0.0, generator=gen, length=len(y))
        scs.append(float(F.spectral_convergence(S, rebuilt)))
    assert bool(np.all(np.diff(scs) < 0)), scs


def test_spectral_convergence_is_zero_for_the_signal_itself(speech):
    y = torch.from_numpy(speech)
    S = F.stft(y).abs()
    assert float(F.spectral_convergence(S, y)) == pytest.approx(0.0, abs=1e-12)
    # ... and the relative Frobenius distance otherwise.
    sc = F.spectral_convergence(S, 0.5 * y)
    assert float(sc) == pytest.approx(0.5, rel=1e-12)


# --------------------------------------------------------------------------- companding


def test_mu_law_encode_known_codes():
    x = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    assert F.mu_law_encode(x).tolist() == [0, 128, 255]
    assert F.mu_law_encode(x).dtype == torch.int64


def test_mu_law_round_trip_within_one_quantization_step():
    x = torch.linspace(-1, 1, 20001, dtype=torch.float64)
    mu = 255
    codes = F.mu_law_encode(x)
    assert codes.min() == 0 and codes.max() == mu
    decoded = F.mu_law_decode(codes, dtype=torch.float64)
    # In the companded domain the codes are 2 / mu apart and rounding moves half a step.
    gap = (F.mu_law_encode(decoded, quantize=False) - F.mu_law_encode(x, quantize=False)).abs()
    assert float(gap.max()) <= 1.0 / mu + 1e-12
    # And decode is monotone, so the waveform error is bounded by the widest step (at |x|=1).
    assert bool((torch.diff(decoded) >= 0).all())


def test_mu_law_continuous_matches_librosa(speech):
    x = speech / np.abs(speech).max()
    ours = F.mu_law_encode(torch.from_numpy(x), quantize=False)
    np.testing.assert_allclose(ours.numpy(), librosa.mu_compress(x, mu=255, quantize=False),
                               rtol=1e-12, atol=1e-15)  # fmt: skip
    back = F.mu_law_decode(ours)
    np.testing.assert_allclose(back.numpy(), librosa.mu_expand(ours.numpy(), mu=255,
                               quantize=False), rtol=1e-12, atol=1e-15)  # fmt: skip
    np.testing.assert_allclose(back.numpy(), x, rtol=1e-10, atol=1e-13)


def test_power_law_keeps_phase_and_compresses_magnitude():
    gen = torch.Generator().manual_seed(0)
    S = torch.randn(64, 20, dtype=torch.complex128, generator=gen)
    C = F.power_law_compress(S, power=0.3)
    torch.testing.assert_close(C.angle(), S.angle(), rtol=0, atol=1e-12)
    torch.testing.assert_close(C.abs(), S.abs() ** 0.3, rtol=1e-12, atol=0)
    torch.testing.assert_close(F.power_law_decompress(C, power=0.3), S, rtol=1e-10, atol=1e-12)


def test_power_law_on_real_input_keeps_sign():
    x = torch.tensor([-8.0, -1.0, 0.0, 0.5, 27.0], dtype=torch.float64)
    C = F.power_law_compress(x, power=1 / 3)
    torch.testing.assert_close(C, torch.tensor([-2.0, -1.0, 0.0, 0.5 ** (1 / 3), 3.0],
                               dtype=torch.float64))  # fmt: skip
    torch.testing.assert_close(F.power_law_decompress(C, power=1 / 3), x)


# --------------------------------------------------------------------------- decibels


def test_amplitude_to_db_is_20_log10():
    S = torch.tensor([[1e-7, 1e-3, 0.5], [1.0, 2.0, 100.0]], dtype=torch.float64)
    out = F.amplitude_to_db(S, ref=2.0, top_db=None)
    expected = 20 * torch.log10(S.clamp(min=1e-5) / 2.0)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    floored = F.amplitude_to_db(S, top_db=80.0)
    assert float(floored.min()) == pytest.approx(40.0 - 80.0)  # 20 log10(100) - 80


def test_db_to_power_inverts_power_to_db_above_amin():
    S = torch.tensor([[1e-12, 1e-10, 1e-6], [0.3, 1.0, 5e3]], dtype=torch.float64)
    back = F.db_to_power(F.power_to_db(S, top_db=None))
    torch.testing.assert_close(back, S.clamp(min=1e-10), rtol=1e-12, atol=0)
    back = F.db_to_power(F.power_to_db(S, ref=2.0, top_db=None), ref=2.0)
    torch.testing.assert_close(back, S.clamp(min=1e-10), rtol=1e-12, atol=0)


def test_db_to_amplitude_inverts_amplitude_to_db_above_amin():
    S = torch.tensor([1e-3, 0.25, 1.0, 40.0], dtype=torch.float64)
    back = F.db_to_amplitude(F.amplitude_to_db(S, top_db=None))
    torch.testing.assert_close(back, S, rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- gradients

TINY = dict(n_fft=16, win_length=12, hop_length=4)


@pytest.fixture
def tiny_signal() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(64, dtype=torch.float64, generator=gen).requires_grad_()


@pytest.mark.parametrize(
    "fn",
    [
        lambda y: F.stft(y, **TINY),
        lambda y: F.spectrogram(y, **TINY),
        lambda y: F.spectrogram(y, power=1.0, **TINY),
        lambda y: F.melspectrogram(y, sr=8000, n_mels=4, **TINY),
        lambda y: F.mfcc(y, sr=8000, n_mels=4, n_mfcc=3, top_db=None, **TINY),
        lambda y: F.delta(y.reshape(4, 16), width=5),
        lambda y: F.istft(F.stft(y, **TINY), **TINY, length=64),
    ],
    ids=["stft", "spectrogram", "magnitude", "melspectrogram", "mfcc", "delta", "istft"],
)
def test_gradcheck(tiny_signal, fn):
    assert torch.autograd.gradcheck(fn, (tiny_signal,), eps=1e-6, atol=1e-5)


def test_gradcheck_power_law_compress():
    gen = torch.Generator().manual_seed(1)
    S = torch.polar(
        0.5 + torch.rand(6, 5, dtype=torch.float64, generator=gen),
        2 * math.pi * torch.rand(6, 5, dtype=torch.float64, generator=gen),
    ).requires_grad_()
    assert torch.autograd.gradcheck(lambda s: F.power_law_compress(s, power=0.3), (S,))


# --------------------------------------------------------------------------- nn.Modules

MODULE_CASES = [
    (T.Spectrogram, F.spectrogram, dict(n_fft=400, hop_length=100, win_length=300, power=1.0)),
    (T.MelSpectrogram, F.melspectrogram,
     dict(sr=16000, n_fft=1024, hop_length=256, n_mels=64, fmin=30.0, fmax=7600.0, htk=True)),
    (T.MFCC, F.mfcc, dict(n_mfcc=20, lifter=22.0, n_mels=40, window="hann", top_db=60.0)),
]  # fmt: skip
MODULE_IDS = ["Spectrogram", "MelSpectrogram", "MFCC"]


@pytest.mark.parametrize("cls, fn, kw", MODULE_CASES, ids=MODULE_IDS)
def test_module_equals_functional(dtype, cls, fn, kw):
    y = torch.from_numpy(np.random.default_rng(3).standard_normal((2, 8000))).to(dtype)
    out = cls(**kw)(y)
    assert out.dtype == dtype
    assert torch.equal(out, fn(y, **kw))


@pytest.mark.parametrize("cls, fn, kw", MODULE_CASES, ids=MODULE_IDS)
@pytest.mark.parametrize("module_dtype", [torch.float64, torch.float32])
def test_module_after_to_dtype_matches_functional_for_its_inputs_dtype(cls, fn, kw, module_dtype):
    """`model.to(dtype)` must not change what the module computes for matching input."""
    module = cls(**kw).to(module_dtype)
    y = torch.from_numpy(np.random.default_rng(3).standard_normal(8000)).to(module_dtype)
    assert torch.equal(module(y), fn(y, **kw))


@pytest.mark.parametrize("cls, fn, kw", MODULE_CASES, ids=MODULE_IDS)
def test_module_cast_to_float32_still_gives_float64_precision(cls, fn, kw):
    """The buffers are documented to stay float64, so float64 input keeps full precision
    even after `model.float()` (as a model holding the front end is often cast)."""
    module = cls(**kw).float()
    y = torch.from_numpy(np.random.default_rng(3).standard_normal(8000))
    rel_close(module(y), fn(y, **kw), 1e-12)


@pytest.mark.parametrize("init", [None, "random"])
def test_griffinlim_module_equals_functional(dtype, init):
    y = torch.from_numpy(np.random.default_rng(4).standard_normal(4000)).to(dtype)
    stft_kw = dict(n_fft=256, hop_length=64, win_length=256, window="hann")
    S = F.stft(y, **stft_kw).abs()
    kw = dict(stft_kw, momentum=0.5)
    module = T.GriffinLim(n_iter=5, length=4000, init=init, **kw)
    out = module(S, generator=torch.Generator().manual_seed(9))
    expected = F.griffinlim(S, n_iter=5, length=4000, init=init,
                            generator=torch.Generator().manual_seed(9), **kw)  # fmt: skip
    assert out.dtype == dtype
    assert torch.equal(out, expected)


@pytest.mark.parametrize(
    "module, buffers",
    [
        (T.Spectrogram(), {"window"}),
        (T.MelSpectrogram(), {"window", "fb"}),
        (T.MFCC(), {"mel.window", "mel.fb", "dct"}),
        (T.GriffinLim(), {"window"}),
    ],
    ids=["Spectrogram", "MelSpectrogram", "MFCC", "GriffinLim"],
)
def test_modules_keep_no_persistent_state(module, buffers):
    assert set(dict(module.named_buffers())) == buffers
    assert len(module.state_dict()) == 0
    assert list(module.parameters()) == []
    module.load_state_dict({}, strict=True)


def test_module_repr_shows_config():
    assert "n_fft=1024, hop_length=256, win_length=800" in repr(
        T.Spectrogram(n_fft=1024, hop_length=256, win_length=800)
    )
    text = repr(T.MelSpectrogram(sr=22050, n_mels=64))
    assert "sr=22050" in text and "n_mels=64" in text
    text = repr(T.MFCC(n_mfcc=20, top_db=None, n_mels=40))
    assert "n_mfcc=20" in text and "top_db=None" in text and "n_mels=40" in text
    text = repr(T.GriffinLim(n_fft=1024, win_length=1024, n_iter=60, momentum=0.9))
    assert "n_fft=1024" in text and "n_iter=60" in text and "momentum=0.9" in text


@pytest.mark.parametrize("name", ["hamming", "hann"])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("n", [16, 400, 401])
def test_windows_equal_scipy(name, periodic, n):
    from scipy.signal import get_window

    expected = get_window(name, n, fftbins=periodic)
    got = F.get_window(name, n, periodic=periodic, dtype=torch.float64)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-15)
    # Hamming 0.54 - 0.46 cos: never zero; the symmetric window is symmetric, the periodic
    # one is the symmetric window of n + 1 points without its last point.
    if name == "hamming":
        assert float(got.min()) == pytest.approx(0.08)
    if not periodic:
        np.testing.assert_allclose(got.numpy(), got.numpy()[::-1], atol=1e-15)
    else:
        longer = F.get_window(name, n + 1, periodic=False, dtype=torch.float64)
        np.testing.assert_allclose(got.numpy(), longer.numpy()[:-1], atol=1e-15)


def test_window_tensor_is_used_as_given():
    w = torch.linspace(0.1, 1.0, 400, dtype=torch.float64)
    assert torch.equal(F.get_window(w, 400, dtype=torch.float64), w)
    y = torch.randn(4000, dtype=torch.float64)
    torch.testing.assert_close(
        F.stft(y, window=w),
        torch.stft(y, 512, 160, 400, window=w, pad_mode="constant", return_complex=True),
    )
