"""The world's sounds: each object's pitch, timbre, loudness and rhythm say what it is,
each place sounds like itself, and the mixture is exactly the sum of its parts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.signal.windows import blackmanharris

from xmodal.audio import functional as F
from xmodal.errors import ParameterError
from xmodal.world import sound
from xmodal.world.schema import AMBIENCE_PEAK, COLOURS, PLACES, SHAPES, SIZES, WorldObject
from xmodal.world.sound import ambience, mix, object_sound

SR = 16000


def _obj(shape="square", colour="red", size="large") -> WorldObject:
    return WorldObject(shape, colour, size, x=10.0, y=10.0, radius=4.0)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _spectrum(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (Hz) and |rfft|^2 of a Hann-windowed signal."""
    power = np.abs(np.fft.rfft(y.astype(np.float64) * np.hanning(len(y)))) ** 2
    return np.fft.rfftfreq(len(y), 1 / sr), power


def _fundamental(y: np.ndarray, sr: int) -> float:
    """The strongest spectral peak below 600 Hz, refined by parabolic interpolation."""
    freqs, power = _spectrum(y, sr)
    mag = np.sqrt(power)
    k = int(np.argmax(np.where(freqs < 600, mag, 0)))
    a, b, c = np.log(mag[k - 1 : k + 2])
    return freqs[k] + 0.5 * (a - c) / (a - 2 * b + c) * (freqs[1] - freqs[0])


def _note(y: np.ndarray, sr: int) -> np.ndarray:
    """The longest stretch of sound between two silences, less 15 ms at either end.

    A note's timbre is measured inside one note: gating a tone on and off spreads its
    spectrum (the rhythm's sidebands), inside a note it is a steady harmonic sound.
    """
    width = max(1, sr // 200)
    sounding = np.convolve(np.abs(y), np.ones(width), mode="same") > 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], sounding.astype(int), [0]])))
    starts, stops = edges[::2], edges[1::2]
    longest = int(np.argmax(stops - starts))
    trim = round(0.015 * sr)
    return y[starts[longest] + trim : stops[longest] - trim].astype(np.float64)


def _note_spectrum(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (Hz) and power of the longest note, Blackman-Harris windowed (sidelobes
    below -90 dB) and zero-padded."""
    note = _note(y, sr)
    power = np.abs(np.fft.rfft(note * blackmanharris(len(note)), 8 * len(note))) ** 2
    return np.fft.rfftfreq(8 * len(note), 1 / sr), power


def _harmonic_amplitudes(y: np.ndarray, sr: int, f0: float, n: int) -> np.ndarray:
    """Amplitudes of harmonics 1..n of a note relative to the first: the energy within a
    quarter of the fundamental of each."""
    freqs, power = _note_spectrum(y, sr)
    near = [np.abs(freqs - k * f0) < f0 / 4 for k in range(1, n + 1)]
    energy = np.array([power[band].sum() for band in near])
    return np.sqrt(energy / energy[0])


def _onsets(y: np.ndarray, sr: int) -> np.ndarray:
    """Onset times (s): 5 ms frames whose RMS rises through a quarter of the loudest."""
    hop = sr // 200
    frames = y[: len(y) // hop * hop].reshape(-1, hop).astype(np.float64)
    rms = np.sqrt((frames**2).mean(axis=1))
    loud = rms > 0.25 * rms.max()
    return (np.flatnonzero(loud[1:] & ~loud[:-1]) + 1) * hop / sr


# ----------------------------------------------------------------- object sounds


def test_object_sound_is_float32_of_the_exact_length():
    for sr, n in ((16000, 16000), (8000, 1), (22050, 777), (44100, 44100), (1000, 1000)):
        y = object_sound(_rng(0), _obj(), sr=sr, n_samples=n)
        assert y.dtype == np.float32 and y.shape == (n,)
        assert np.isfinite(y).all()


def test_object_sound_same_seed_same_bytes_other_seed_other_rhythm():
    a = object_sound(_rng(7), _obj(), sr=SR, n_samples=SR)
    b = object_sound(_rng(7), _obj(), sr=SR, n_samples=SR)
    assert a.tobytes() == b.tobytes()
    c = object_sound(_rng(8), _obj(), sr=SR, n_samples=SR)
    onsets_a, onsets_c = _onsets(a, SR), _onsets(c, SR)
    assert len(onsets_a) != len(onsets_c) or not np.allclose(onsets_a, onsets_c, atol=0.01)


def test_object_peak_is_at_most_its_size_amplitude_and_reaches_it():
    for shape, colour, size, seed in itertools.product(SHAPES, COLOURS, SIZES, range(3)):
        y = object_sound(_rng(seed), _obj(shape, colour, size), sr=SR, n_samples=SR)
        peak, amp = float(np.abs(y).max()), SIZES[size][1]
        # Every second holds at least two note attacks, each reaching (nearly) the top.
        assert 0.95 * amp <= peak <= amp, (shape, colour, size, seed, peak)


def test_pitch_names_the_colour():
    pitches = np.array([hz for _, hz in COLOURS.values()])
    names = list(COLOURS)
    for shape, colour, size, seed in itertools.product(SHAPES, COLOURS, SIZES, range(2)):
        y = object_sound(_rng(seed), _obj(shape, colour, size), sr=SR, n_samples=2 * SR)
        f0 = _fundamental(y, SR)
        assert abs(f0 / COLOURS[colour][1] - 1) < 0.01, (shape, colour, f0)
        assert names[int(np.argmin(np.abs(pitches - f0)))] == colour


def test_wavetables_peak_at_exactly_one():
    # Tones are table lookups scaled by an envelope <= 1 and the size's amplitude, so a
    # table peak of exactly 1 is what bounds every object's peak by its amplitude.
    for shape in SHAPES:
        for n_harmonics in range(1, len(SHAPES[shape]) + 1):
            assert np.abs(sound._wavetable(shape, n_harmonics)).max() == 1.0


@pytest.mark.parametrize("shape", list(SHAPES))
def test_timbre_is_the_shape_harmonic_table(shape):
    # Red (220 Hz) at 16 kHz keeps all eight harmonics below Nyquist.
    f0 = COLOURS["red"][1]
    expected = np.zeros(8)
    expected[: len(SHAPES[shape])] = SHAPES[shape]
    y = object_sound(_rng(3), _obj(shape, "red"), sr=SR, n_samples=2 * SR)
    measured = _harmonic_amplitudes(y, SR, f0, 8)
    present = expected > 0
    # Harmonics in the table within 0.1 dB; the ones it leaves out (circle: all but the
    # first; square and triangle: the even ones; diamond: 6-8) at least 70 dB down.
    db = 20 * np.log10(measured[present] / expected[present])
    assert np.all(np.abs(db) < 0.1), (shape, measured, expected)
    assert np.all(measured[~present] < 10 ** (-70 / 20)), (shape, measured)


def test_timbres_differ_in_their_defining_harmonics():
    f0 = COLOURS["green"][1]
    sounds = {s: object_sound(_rng(1), _obj(s, "green"), sr=SR, n_samples=SR) for s in SHAPES}
    amps = {s: _harmonic_amplitudes(y, SR, f0, 8) for s, y in sounds.items()}
    assert amps["circle"][1:].max() < 0.01  # pure
    assert amps["square"][[1, 3, 5]].max() < 0.01 < amps["square"][2]  # odd only, bright
    assert amps["triangle"][2] < amps["square"][2] / 2  # odd only, soft
    assert amps["cross"][1] > 0.4 and amps["cross"][7] > 0.1  # every harmonic, buzzy
    assert amps["diamond"][1] > amps["cross"][1]  # the strongest second harmonic
    assert amps["diamond"][5:].max() < 0.01 < amps["diamond"][4]  # but only five


def test_loudness_follows_size():
    for shape, colour in itertools.product(SHAPES, COLOURS):
        # The same generator state draws the same rhythm, so only the scale differs.
        large = object_sound(_rng(5), _obj(shape, colour, "large"), sr=SR, n_samples=SR)
        small = object_sound(_rng(5), _obj(shape, colour, "small"), sr=SR, n_samples=SR)
        ratio = np.sqrt(
            np.mean(large.astype(np.float64) ** 2) / np.mean(small.astype(np.float64) ** 2)
        )
        assert ratio == pytest.approx(SIZES["large"][1] / SIZES["small"][1], rel=1e-3)


def test_rhythm_is_periodic_with_two_onsets_a_second():
    patterns = set()
    for seed, shape in zip(range(10), itertools.cycle(SHAPES)):
        y = object_sound(_rng(seed), _obj(shape, "blue"), sr=SR, n_samples=SR)
        onsets = _onsets(y, SR)
        assert len(onsets) >= 2, (seed, shape, onsets)
        gaps = np.diff(onsets)
        # One period per object: every gap equal to within a frame, 0.12-0.5 s long.
        assert np.ptp(gaps) <= 0.0051 and 0.115 <= gaps.mean() <= 0.505, (seed, onsets)
        patterns.add(tuple(np.round(onsets, 2)))
    assert len(patterns) == 10  # every generator state its own rhythm


def test_harmonics_above_nyquist_are_dropped():
    # At 9.5 x its fundamental, a purple cross keeps harmonics 1-4; an alias of 5-8
    # would fold to 4.5, 3.5, 2.5, 1.5 x f0, right between the harmonics.
    f0 = COLOURS["purple"][1]
    sr = round(9.5 * f0)

    def alias_fraction(y):
        freqs, power = _note_spectrum(y, sr)
        between = (np.abs(freqs / f0 % 1 - 0.5) < 0.25) & (freqs > f0)
        return power[between].sum() / power.sum()

    y = object_sound(_rng(2), _obj("cross", "purple"), sr=sr, n_samples=2 * sr)
    assert alias_fraction(y) < 1e-6
    assert _harmonic_amplitudes(y, sr, f0, 4)[3] == pytest.approx(0.25, rel=0.1)
    # The test can fail: a naive sum of all eight harmonics aliases.
    t = np.arange(2 * sr) / sr
    naive = sum(a * np.sin(2 * np.pi * k * f0 * t) for k, a in enumerate(SHAPES["cross"], 1))
    assert alias_fraction(naive) > 1e-2


# --------------------------------------------------------------------- ambience


def test_ambience_is_float32_of_the_exact_length_below_its_peak():
    for place, seed in itertools.product(PLACES, range(4)):
        for sr, n in ((16000, 16000), (8000, 3000), (22050, 1), (48000, 4800), (500, 500)):
            y = ambience(_rng(seed), place, sr=sr, n_samples=n)
            assert y.dtype == np.float32 and y.shape == (n,)
            peak = float(np.abs(y).max())
            assert peak <= AMBIENCE_PEAK, (place, seed, sr, peak)
            if n > 1:  # a single sample is its own peak, at whatever level was drawn
                assert peak >= 0.3 * AMBIENCE_PEAK, (place, seed, sr, peak)


def test_ambience_same_seed_same_bytes_even_after_the_bank_is_rebuilt():
    first = {p: ambience(_rng(11), p, sr=SR, n_samples=SR).tobytes() for p in PLACES}
    sound._bank.cache_clear()
    # Rebuild the banks in another order, after other draws: they depend on the key only.
    for p in reversed(PLACES):
        ambience(_rng(99), p, sr=SR, n_samples=SR)
    assert {p: ambience(_rng(11), p, sr=SR, n_samples=SR).tobytes() for p in PLACES} == first
    assert ambience(_rng(12), "beach", sr=SR, n_samples=SR).tobytes() != first["beach"]


def test_places_are_told_apart_by_their_sound():
    # Nearest centroid on log-mel band energies, 10 clips per place to learn, 10 to test.
    def features(seeds):
        clips = np.stack([ambience(_rng(s), p, sr=SR, n_samples=SR) for p in PLACES for s in seeds])
        mel = F.melspectrogram(clips, sr=SR, n_mels=40).numpy()  # (clips, mels, frames)
        return np.log(mel.mean(axis=-1) + 1e-10).reshape(len(PLACES), len(seeds), -1)

    centroids = features(range(10)).mean(axis=1)  # (places, mels)
    held_out = features(range(100, 110))
    distances = ((held_out[:, :, None, :] - centroids) ** 2).sum(axis=-1)
    predicted = distances.argmin(axis=-1)  # (places, seeds)
    accuracy = (predicted == np.arange(len(PLACES))[:, None]).mean()
    assert accuracy >= 0.9, predicted


def test_each_place_has_its_spectral_signature():
    def shares(place, seed):
        freqs, power = _spectrum(ambience(_rng(seed), place, sr=SR, n_samples=SR), SR)

        def share(lo, hi):
            return power[(freqs >= lo) & (freqs < hi)].sum() / power.sum()

        return share, freqs, power

    for seed in range(10):
        share, *_ = shares("night", seed)
        assert share(3800, 5200) > 0.7  # crickets
        share, *_ = shares("city", seed)
        assert share(0, 1000) > 0.75  # rumble and horns, little hiss
        share, *_ = shares("desert", seed)
        assert share(250, 1200) > 0.75 and share(0, 200) < 0.05  # band-passed wind
        share, *_ = shares("underwater", seed)
        assert share(0, 300) > 0.6 and share(2500, SR) < 0.01  # muffled
        share, *_ = shares("beach", seed)
        assert share(0, 300) > 0.2 and share(2500, SR) > 0.05  # surf and foam
        share, freqs, power = shares("field", seed)
        loudest = freqs[freqs > 1000][np.argmax(power[freqs > 1000])]
        assert 4500 <= loudest <= 7500  # the insects' buzz
    # Birds sing in phrases, so a second may hold little song; most hold much.
    assert np.median([shares("forest", s)[0](2000, 5000) for s in range(10)]) > 0.5
    for seed in range(10):
        # Snow: a hush near silence, its loudest moments the high crunch of footsteps.
        y = ambience(_rng(seed), "snow", sr=SR, n_samples=SR).astype(np.float64)
        spectrum = np.fft.rfft(y)
        high = np.fft.irfft(np.where(np.fft.rfftfreq(SR, 1 / SR) > 2500, spectrum, 0), SR)
        assert np.abs(high).max() > 0.6 * np.abs(y).max()
        assert np.abs(y).max() <= 0.5 * AMBIENCE_PEAK


# -------------------------------------------------------------------------- mix


def test_mix_is_exactly_the_sum_and_stays_in_range():
    for seed in range(5):
        rng = _rng(seed)
        sources = [
            object_sound(rng, _obj(s, c, "large"), sr=SR, n_samples=SR)
            for s, c in (("cross", "red"), ("square", "blue"), ("diamond", "purple"))
        ]
        amb = ambience(rng, PLACES[seed], sr=SR, n_samples=SR)
        y = mix(sources, amb)
        assert y.dtype == np.float32
        assert y.tobytes() == (np.stack(sources).sum(axis=0) + amb).tobytes()
        assert y.tobytes() == (((sources[0] + sources[1]) + sources[2]) + amb).tobytes()
        # The documented bound: even with all peaks at the same instant.
        worst = mix([np.abs(s).max(keepdims=True) for s in sources], np.abs(amb).max(keepdims=True))
        assert worst[0] <= 1.0
    amb = ambience(_rng(0), "city", sr=SR, n_samples=100)
    out = mix([], amb)
    assert out.tobytes() == amb.tobytes() and out is not amb


# -------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ambience(_rng(0), "moon", sr=SR, n_samples=SR), "moon"),
        (lambda: ambience(_rng(0), "beach", sr=0, n_samples=SR), "sr.*0"),
        (lambda: ambience(_rng(0), "beach", sr=SR, n_samples=-3), "n_samples.*-3"),
        (lambda: ambience(0, "beach", sr=SR, n_samples=SR), "rng.*int"),
        (lambda: object_sound(_rng(0), _obj(), sr=-1, n_samples=SR), "sr.*-1"),
        (lambda: object_sound(_rng(0), _obj(), sr=SR, n_samples=0), "n_samples.*0"),
        (lambda: object_sound(_rng(0), _obj(colour="pink"), sr=SR, n_samples=SR), "pink"),
        (lambda: object_sound(_rng(0), _obj(shape="star"), sr=SR, n_samples=SR), "star"),
        (lambda: object_sound(_rng(0), _obj(size="huge"), sr=SR, n_samples=SR), "huge"),
        (lambda: object_sound(_rng(0), _obj(colour="purple"), sr=600, n_samples=SR), "sr.*600"),
        (lambda: mix([np.zeros(3, np.float32)], np.zeros(4, np.float32)), r"sources\[0\].*\(3,\)"),
        (lambda: mix([], np.zeros(4)), "float64"),
    ],
)
def test_bad_input_names_the_value(call, match):
    with pytest.raises(ParameterError, match=match):
        call()


def test_unknown_place_lists_the_places():
    with pytest.raises(ParameterError) as info:
        ambience(_rng(0), "moon", sr=SR, n_samples=SR)
    assert all(p in str(info.value) for p in PLACES)
