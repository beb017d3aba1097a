"""The world's sounds: one rhythmic harmonic tone per object and an ambience per place.

An object's sound says what it is: its shape is the timbre (the harmonic amplitudes of
``SHAPES``), its colour the pitch (``COLOURS``), its size the loudness (``SIZES``), and
each object plays its own rhythm, so two sources in a mixture can be told apart by
their onsets as well as by their spectra. A place sounds like itself: waves on a beach,
birds in a forest, traffic in a city (see :func:`ambience`).

Every function is a pure function of its arguments and the ``numpy.random.Generator``
it is given. Speed matters (the world makes over a thousand scenes a second on one
core), so the hot path is table lookup and a few vectorised array operations:

- tones read a band-limited single-cycle wavetable (cached per shape and harmonic
  count) with a 32-bit fixed-point phase accumulator, so no ``sin`` is evaluated per
  sample;
- envelopes are built for one rhythm period and tiled;
- ambiences slice a noise and texture bank that is computed once per
  ``(place, sr, n_samples)`` (a deterministic function of that key only) and add a few
  pre-rendered events (chirps, horns, bubbles ...) at times drawn from the generator.

Example:
    >>> import numpy as np
    >>> from xmodal.world.schema import WorldObject
    >>> obj = WorldObject("square", "red", "large", x=10, y=10, radius=5)
    >>> y = object_sound(np.random.default_rng(0), obj, sr=16000, n_samples=16000)
    >>> y.shape, y.dtype, bool(np.abs(y).max() <= 0.3)
    ((16000,), dtype('float32'), True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from xmodal._checks import check_positive_int
from xmodal.errors import ParameterError
from xmodal.world.schema import AMBIENCE_PEAK, COLOURS, PLACES, SHAPES, SIZES, WorldObject

__all__ = ["ambience", "mix", "object_sound"]

# ----------------------------------------------------------------------------- tones

_TABLE_BITS = 13  # 8192-point wavetables: phase truncation spurs stay below -70 dB
_TABLE_SIZE = 1 << _TABLE_BITS
_PHASE_SHIFT = np.uint32(32 - _TABLE_BITS)
_TWO32 = 4294967296.0

# Pitch wobble of a source: a fixed detune plus a slow vibrato, together at most 0.5%,
# so the fundamental stays well inside the 1% a pitch (colour) classifier can rely on.
_MAX_DETUNE = 0.003
_VIBRATO_DEPTH = (0.0005, 0.002)
_VIBRATO_RATES = (4.0, 4.5, 5.0, 5.5, 6.0, 6.5)  # Hz
_MAX_DEVIATION = _MAX_DETUNE + _VIBRATO_DEPTH[1]

# Rhythm: a note every 0.12-0.5 s (so at least two onsets in any second), sounding for
# 35-75% of the period, so the gaps between notes (>= 30 ms) are clearly audible.
_PERIOD = (0.12, 0.5)  # seconds
_DUTY = (0.35, 0.75)
_SUSTAIN = (0.45, 0.9)  # level the note decays to before its release
_ATTACK = 0.005  # seconds; ramps of a few ms keep the onsets free of clicks
_RELEASE = 0.010


@lru_cache(maxsize=16)
def _largest_float32_at_most(x: float) -> np.float32:
    """The float32 nearest ``x`` from below, so a scaled peak never exceeds ``x``."""
    y = np.float32(x)
    return y if float(y) <= x else np.nextafter(y, np.float32(0))


@lru_cache(maxsize=64)
def _wavetable(shape: str, n_harmonics: int) -> np.ndarray:
    """One cycle of ``shape``'s timbre with its first ``n_harmonics`` harmonics.

    Normalised so the table's largest magnitude is exactly 1: output samples are table
    entries (lookup without interpolation), so the tone's peak is exactly 1 before the
    envelope and the size's amplitude scale it.
    """
    amps = np.asarray(SHAPES[shape][:n_harmonics], dtype=np.float64)
    phase = np.arange(_TABLE_SIZE) / _TABLE_SIZE
    k = np.arange(1, len(amps) + 1)
    table = amps @ np.sin(2 * np.pi * k[:, None] * phase[None, :])
    table = (table / np.abs(table).max()).astype(np.float32)
    table.flags.writeable = False
    return table


@lru_cache(maxsize=16)
def _sample_counter(n_samples: int) -> np.ndarray:
    counter = np.arange(n_samples, dtype=np.uint32)
    counter.flags.writeable = False
    return counter


@lru_cache(maxsize=64)
def _knot_grid(n_samples: int, sr: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Knot times (s) every ``block`` samples covering the clip, and the in-block ramp."""
    n_blocks = -(-n_samples // block)
    times = np.arange(n_blocks + 1) * (block / sr)
    ramp = (np.arange(block) / block).astype(np.float32)
    times.flags.writeable = False
    ramp.flags.writeable = False
    return times, ramp


def _piecewise_linear(knots: np.ndarray, ramp: np.ndarray, n_samples: int) -> np.ndarray:
    """Linear interpolation between knots one block apart, as one broadcast (no np.interp).

    A slow curve (swell, gust, passing traffic) needs only a few knots; filling the
    blocks between them by broadcasting costs two array operations instead of a search
    per sample.
    """
    knots = knots.astype(np.float32)
    curve = np.multiply.outer(knots[1:] - knots[:-1], ramp)  # (blocks, block)
    curve += knots[:-1, None]
    return curve.reshape(-1)[:n_samples]


def _check_sr_n(sr, n_samples) -> tuple[int, int]:
    return check_positive_int(sr, "sr"), check_positive_int(n_samples, "n_samples")


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(f"rng must be a numpy.random.Generator. Found: {type(rng).__name__}")


def _check_object(obj) -> None:
    if not isinstance(obj, WorldObject):
        raise ParameterError(f"obj must be a WorldObject. Found: {type(obj).__name__}")
    for name, table in (("shape", SHAPES), ("colour", COLOURS), ("size", SIZES)):
        value = getattr(obj, name)
        if value not in table:
            options = ", ".join(repr(k) for k in table)
            raise ParameterError(f"obj.{name} must be one of {options}. Found: {value!r}")


@lru_cache(maxsize=16)
def _ramps(sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attack ramp 0 -> 1, release ramp 1 -> 0, and a 0, 1, 2 ... counter as long as the
    longest rhythm period, the pieces every note envelope at ``sr`` is cut from."""
    attack = max(1, round(_ATTACK * sr))
    release = max(1, round(_RELEASE * sr))
    # Raised-cosine ramps start and end with zero slope: the rhythm's sidebands around
    # each harmonic fall off fast, so the timbre stays clean between the harmonics.
    up = (0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)).astype(np.float32)
    down = (0.5 + 0.5 * np.cos(np.pi * np.arange(release) / release)).astype(np.float32)
    count = np.arange(math.ceil(_PERIOD[1] * sr) + 1, dtype=np.float32)
    for a in (up, down, count):
        a.flags.writeable = False
    return up, down, count


def _note_envelope(sr: int, period: int, duty: float, sustain: float) -> np.ndarray:
    """One rhythm period of ``period`` samples, peak 1: attack, linear decay to
    ``sustain``, release, then silence for the last ``1 - duty`` of the period."""
    up, down, count = _ramps(sr)
    note = min(period, max(round(duty * period), len(up) + len(down) + 1))
    decay = note - len(up) - len(down)
    assert decay > 0, (sr, period, note)  # every sr that passes the Nyquist check
    return np.concatenate(
        [
            up,
            count[:decay] * np.float32((sustain - 1) / decay) + np.float32(1),
            down * np.float32(sustain),
            np.zeros(period - note, dtype=np.float32),
        ]
    )


@lru_cache(maxsize=8)
def _vibrato_bank(sr: int, n_samples: int) -> np.ndarray:
    """``(len(_VIBRATO_RATES), n_samples + one slowest period)`` unit cosines at the
    vibrato rates: a source's vibrato is one row, sliced at a random phase and scaled,
    so no cosine is evaluated per call."""
    t = np.arange(n_samples + math.ceil(sr / _VIBRATO_RATES[0])) / sr
    bank = np.cos(2 * np.pi * np.asarray(_VIBRATO_RATES)[:, None] * t).astype(np.float32)
    bank.flags.writeable = False
    return bank


def object_sound(
    rng: np.random.Generator, obj: WorldObject, *, sr: int, n_samples: int
) -> np.ndarray:
    """The sound ``obj`` makes: a rhythmic harmonic tone.

    - timbre: the harmonic amplitudes ``SHAPES[obj.shape]``, those at or above the
      Nyquist frequency dropped (no aliasing), the cycle normalised to peak 1;
    - pitch: ``COLOURS[obj.colour][1]`` Hz, detuned by at most 0.3% and with a vibrato
      of 4-6.5 Hz and at most 0.2% depth, so sources are not perfectly stationary but
      the pitch names the colour;
    - loudness: peak amplitude at most ``SIZES[obj.size][1]`` (reached at the end of an
      attack wherever the waveform is at its peak);
    - rhythm: a note every 0.12-0.5 s with a 35-75% duty cycle, 5 ms attack, a decay
      to 45-90%, 10 ms release, and a random phase, all drawn from ``rng``: at least
      two onsets in every second of sound.

    Args:
        rng: the generator every random choice is drawn from.
        obj: the object; only ``shape``, ``colour`` and ``size`` are heard.
        sr: sample rate in Hz; must leave the fundamental below the Nyquist frequency.
        n_samples: length of the sound in samples.

    Returns:
        ``(n_samples,)`` float32.

    Example:
        >>> obj = WorldObject("circle", "blue", "small", x=0, y=0, radius=1)
        >>> y = object_sound(np.random.default_rng(1), obj, sr=8000, n_samples=8000)
        >>> float(np.abs(y).max()) <= SIZES["small"][1]
        True
    """
    _check_rng(rng)
    _check_object(obj)
    sr, n = _check_sr_n(sr, n_samples)
    f0 = COLOURS[obj.colour][1]
    # Harmonics are kept only while they stay below Nyquist at the highest instantaneous
    # frequency the detune and vibrato can reach; the count depends on (colour, sr) only,
    # so the table cache stays small.
    n_harmonics = min(len(SHAPES[obj.shape]), math.ceil(sr / (2 * f0 * (1 + _MAX_DEVIATION))) - 1)
    if n_harmonics < 1:
        raise ParameterError(
            f"sr must be above twice the {obj.colour} pitch of {f0 * (1 + _MAX_DEVIATION):.2f}"
            f" Hz (with vibrato) to carry the object's fundamental. Found: {sr}"
        )
    table = _wavetable(obj.shape, n_harmonics)

    # One draw for every random choice keeps the generator cost to a single call.
    u = rng.random(9).tolist()
    period = max(1, round((_PERIOD[0] + (_PERIOD[1] - _PERIOD[0]) * u[0]) * sr))
    duty = _DUTY[0] + (_DUTY[1] - _DUTY[0]) * u[1]
    sustain = _SUSTAIN[0] + (_SUSTAIN[1] - _SUSTAIN[0]) * u[2]
    offset = int(u[3] * period)
    freq = f0 * (1 + _MAX_DETUNE * (2 * u[4] - 1))
    depth = _VIBRATO_DEPTH[0] + (_VIBRATO_DEPTH[1] - _VIBRATO_DEPTH[0]) * u[5]
    which = min(int(u[6] * len(_VIBRATO_RATES)), len(_VIBRATO_RATES) - 1)
    vib_phase = u[7]  # in cycles of the vibrato
    start_phase = u[8]

    # Envelope: one period (attack, decay, release, rest), tiled and shifted by the
    # random phase.
    one = _note_envelope(sr, period, duty, sustain)
    env = np.tile(one, -(-(n + offset) // period))[offset : offset + n]

    # Phase in 32-bit fixed point (2**32 = one cycle): sample i has phase i * inc (mod
    # 2**32, the uint32 wrap-around) plus the start phase plus the vibrato's phase
    # deviation. A frequency deviation of depth*freq*sin(2*pi*rate*t) Hz deviates the
    # phase by depth*freq/(2*pi*rate) cycles times a (negated) cosine, a row of the bank
    # at a random phase. That is far below half a cycle, so it fits int32.
    inc = np.uint32(round(freq / sr * _TWO32))  # freq < sr / 2, so below 2**31
    rate = _VIBRATO_RATES[which]
    curve = _vibrato_bank(sr, n)[which]
    start = int(vib_phase * sr / rate)
    scale = np.float32(depth * freq / (2 * np.pi * rate) * _TWO32)
    offsets = (curve[start : start + n] * scale).astype(np.int32).view(np.uint32)
    # Adding half a table step rounds the phase to the nearest entry instead of truncating.
    phase0 = np.uint32((round(start_phase * _TWO32) + (1 << (31 - _TABLE_BITS))) % (1 << 32))
    phase = _sample_counter(n) * inc
    phase += offsets
    phase += phase0
    phase >>= _PHASE_SHIFT
    wave = table.take(phase)
    # The largest float32 not above the size's amplitude keeps the peak guarantee exact
    # after rounding: |table| <= 1 and env <= 1.
    env *= _largest_float32_at_most(SIZES[obj.size][1])
    wave *= env
    return wave


# ------------------------------------------------------------------------- ambience

# Each place's peak is drawn from this fraction range of AMBIENCE_PEAK; the top stays a
# little below 1 so float32 rounding of the rescaled peak cannot pass AMBIENCE_PEAK.
_LEVEL = (0.5, 0.95)
# Snow is near silent: a hush with the odd crunch.
_PLACE_LEVEL = {"snow": (0.3, 0.5)}
_BANK_SALT = 0x50A2D5  # any constant; the bank's seed is (salt, place index, sr, n)
_SLOW_BLOCK = 0.02  # seconds between the knots of swells, gusts and traffic curves

Bank = dict  # name -> a bed (1-D float32) or a tuple of event templates


def _band(f: float, sr: int) -> float:
    """``f`` Hz, moved below Nyquist when ``sr`` is too low to carry it (8 kHz audio
    still gets crickets, only lower ones)."""
    return min(f, 0.45 * sr)


def _shaped_noise(
    gen: np.random.Generator, length: int, sr: int, low: float | None, high: float | None,
    order: int = 2,
) -> np.ndarray:  # fmt: skip
    """Unit-RMS Gaussian noise through a Butterworth-magnitude band (``low``..``high`` Hz,
    either may be None), shaped in the frequency domain: an exact response, and the
    result is circular, so every slice of it is as good as any other."""
    f = np.fft.rfftfreq(length, 1 / sr)
    gain = np.ones_like(f)
    if low is not None:
        gain /= np.sqrt(1 + (_band(low, sr) / np.maximum(f, 1e-9)) ** (2 * order))
    if high is not None:
        gain /= np.sqrt(1 + (f / _band(high, sr)) ** (2 * order))
    x = np.fft.irfft(np.fft.rfft(gen.standard_normal(length)) * gain, length)
    return x / np.sqrt(np.mean(x**2))


def _sweep(f_start: float, f_end: float, seconds: float, sr: int) -> tuple[np.ndarray, ...]:
    """Time (s) and phase (radians) of an exponential sweep ``f_start`` -> ``f_end``."""
    t = np.arange(max(2, round(seconds * sr))) / sr
    ratio = f_end / f_start
    if abs(ratio - 1) < 1e-9:
        return t, 2 * np.pi * f_start * t
    k = np.log(ratio) / seconds
    return t, 2 * np.pi * f_start * np.expm1(k * t) / k


def _unit_peak(x: np.ndarray) -> np.ndarray:
    """``x`` scaled to peak 1 (left silent if it is: a horn at 500 Hz sampling has no
    harmonic below Nyquist)."""
    peak = np.abs(x).max()
    return (x / peak if peak > 0 else x).astype(np.float32)


def _chirp_phrases(gen: np.random.Generator, sr: int, count: int) -> tuple[np.ndarray, ...]:
    """Birdsong: phrases of 2-5 repeats of one 30-110 ms sweep within 2-5 kHz."""
    phrases = []
    for _ in range(count):
        f_a, f_b = gen.uniform(2000, 5000, 2)
        t, phase = _sweep(_band(f_a, sr), _band(f_b, sr), gen.uniform(0.03, 0.11), sr)
        chirp = np.sin(phase) * np.sin(np.pi * t / t[-1]) ** 2
        gap = round(gen.uniform(0.02, 0.08) * sr)
        repeats = int(gen.integers(2, 6))
        phrase = np.zeros(repeats * (len(t) + gap))
        for r in range(repeats):
            # Later notes of a phrase fade a little, as a bird's do.
            phrase[r * (len(t) + gap) : r * (len(t) + gap) + len(t)] = chirp * 0.85**r
        phrases.append(_unit_peak(phrase))
    return tuple(phrases)


def _horns(gen: np.random.Generator, sr: int, count: int) -> tuple[np.ndarray, ...]:
    """Car horns: a major third of two buzzy tones near 400-520 Hz, one or two honks."""
    horns = []
    for _ in range(count):
        f = gen.uniform(380, 520)
        honk = gen.uniform(0.12, 0.4)
        t = np.arange(round(honk * sr)) / sr
        tone = np.zeros_like(t)
        tone += sum(
            a * np.sin(2 * np.pi * k * ff * t)
            for ff in (f, 1.25 * f)
            for k, a in ((1, 1.0), (2, 0.5), (3, 0.33), (4, 0.25))
            if k * ff < 0.45 * sr
        )
        ramp = np.minimum(1, np.minimum(t, t[-1] - t) / 0.01)
        tone = tone * ramp
        if gen.random() < 0.5:
            tone = np.concatenate([tone, np.zeros(round(0.08 * sr)), tone])
        horns.append(_unit_peak(tone))
    return tuple(horns)


def _crunches(gen: np.random.Generator, sr: int, count: int) -> tuple[np.ndarray, ...]:
    """Footsteps in snow: clusters of 4-10 high-passed noise ticks over 60-150 ms."""
    steps = []
    for _ in range(count):
        length = round(gen.uniform(0.06, 0.15) * sr)
        step = np.zeros(length + round(0.01 * sr))
        for start in np.sort(gen.integers(0, length, gen.integers(4, 11))):
            tick_len = max(2, round(gen.uniform(0.002, 0.008) * sr))
            decay = np.exp(-np.arange(tick_len) / (tick_len / 4))
            step[start : start + tick_len] += gen.uniform(0.3, 1) * decay
        # The ticks' envelope times high-passed noise: crisp, with no low thud.
        texture = _shaped_noise(gen, len(step), sr, 3000, None, order=3)
        steps.append(_unit_peak(step * texture))
    return tuple(steps)


def _bubbles(gen: np.random.Generator, sr: int, count: int) -> tuple[np.ndarray, ...]:
    """Bubbles: 1-3 short rising sinusoids (300-1200 Hz, up 1.5-3x) with a fast decay."""
    out = []
    for _ in range(count):
        blips = []
        for _ in range(int(gen.integers(1, 4))):
            f = gen.uniform(300, 1200)
            seconds = gen.uniform(0.015, 0.05)
            t, phase = _sweep(_band(f, sr), _band(f * gen.uniform(1.5, 3), sr), seconds, sr)
            env = np.minimum(1, t / 0.001) * np.exp(-t / (seconds / 3))
            blips.append(np.concatenate([np.sin(phase) * env, np.zeros(round(0.02 * sr))]))
        out.append(_unit_peak(np.concatenate(blips)))
    return tuple(out)


def _crickets(gen: np.random.Generator, sr: int, length: int) -> np.ndarray:
    """A cricket: trains of 3-5 pulses of a 4-5 kHz tone, the trains every 0.25-0.45 s."""
    t = np.arange(length) / sr
    carrier = np.sin(2 * np.pi * _band(gen.uniform(4000, 5000), sr) * t)
    pulse_rate = gen.uniform(25, 45)
    pulses = int(gen.integers(3, 6))
    train = gen.uniform(0.25, 0.45)
    in_train = (t + gen.uniform(0, train)) % train
    k = in_train * pulse_rate
    # Each pulse is the first half of its slot, shaped by sin^2 so it starts and ends at 0.
    shape = np.where((k < pulses) & (k % 1 < 0.5), np.sin(2 * np.pi * (k % 1)) ** 2, 0)
    return (carrier * shape).astype(np.float32)


def _bed(
    gen: np.random.Generator, length: int, sr: int, low: float | None, high: float | None,
    order: int = 2,
) -> np.ndarray:  # fmt: skip
    return _shaped_noise(gen, length, sr, low, high, order).astype(np.float32)


@lru_cache(maxsize=64)
def _bank(place: str, sr: int, n_samples: int) -> Bank:
    """The place's noise beds (twice the clip, sliced at a random offset per call) and
    event templates (placed at random times per call).

    A deterministic function of the key only: its generator is seeded from the place's
    index, ``sr`` and ``n_samples``, so every process builds the same bank.
    """
    gen = np.random.default_rng([_BANK_SALT, PLACES.index(place), sr, n_samples])
    length = 2 * n_samples
    if place == "beach":
        bank = {"surf": _bed(gen, length, sr, None, 900), "foam": _bed(gen, length, sr, 2500, None)}
    elif place == "forest":
        bank = {"leaves": _bed(gen, length, sr, 150, 1500, 1), "birds": _chirp_phrases(gen, sr, 16)}
    elif place == "city":
        bank = {
            "rumble": _bed(gen, length, sr, 50, 300),
            "tyres": _bed(gen, length, sr, 500, 3000, order=1),
            "horns": _horns(gen, sr, 8),
        }
    elif place == "desert":
        bank = {
            "wind": _bed(gen, length, sr, 250, 1200, 3),
            "howl": _bed(gen, length, sr, 520, 680, 4),
        }
    elif place == "snow":
        bank = {"hush": _bed(gen, length, sr, None, 300), "steps": _crunches(gen, sr, 12)}
    elif place == "night":
        bank = {
            "cricket_a": _crickets(gen, sr, length),
            "cricket_b": _crickets(gen, sr, length),
            "hush": _bed(gen, length, sr, None, 250),
        }
    elif place == "field":
        # Insects: a high noise band, amplitude-modulated at ~28 Hz into a buzz.
        buzz = _shaped_noise(gen, length, sr, 5000, 7000, order=3)
        t = np.arange(length) / sr
        flutter = (0.5 + 0.5 * np.sin(2 * np.pi * gen.uniform(24, 32) * t)) ** 2
        bank = {
            "buzz": (buzz * flutter).astype(np.float32),
            "breeze": _bed(gen, length, sr, None, 600),
        }
    else:
        assert place == "underwater", place
        bank = {"murk": _bed(gen, length, sr, None, 250, order=3), "bubbles": _bubbles(gen, sr, 16)}
    for value in bank.values():
        for a in value if isinstance(value, tuple) else (value,):
            a.flags.writeable = False
    return bank


def _slice(bed: np.ndarray, u: float, n: int) -> np.ndarray:
    """``n`` samples of ``bed`` from offset ``u`` (a fraction of the free range): a view."""
    start = int(u * (len(bed) - n + 1))
    return bed[start : start + n]


def _slow(sr: int, n: int, curve: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``curve(t)`` (t in seconds) evaluated every 20 ms and linearly interpolated."""
    times, ramp = _knot_grid(n, sr, max(1, round(_SLOW_BLOCK * sr)))
    return _piecewise_linear(curve(times), ramp, n)


def _events(
    rng: np.random.Generator,
    out: np.ndarray,
    templates: Sequence[np.ndarray],
    gain: tuple[float, float],
    *,
    count: int | None = None,
    starts: list[int] | None = None,
) -> None:
    """Add templates drawn from ``rng`` at ``starts`` (or at ``count`` random starts),
    each with a gain drawn from ``gain``; events running past the end are cut."""
    n = len(out)
    if starts is None:
        starts = (rng.random(count) * n).astype(int).tolist()
    # One draw for the picks and gains of all events: a generator call costs more than
    # the arithmetic.
    u = rng.random(2 * len(starts)).tolist()
    lo, hi = gain
    for i, start in enumerate(starts):
        event = templates[min(int(u[2 * i] * len(templates)), len(templates) - 1)][: n - start]
        out[start : start + len(event)] += (lo + (hi - lo) * u[2 * i + 1]) * event


def _rate(rng: np.random.Generator, per_second: float, n: int, sr: int, least: int) -> int:
    """How many events a clip of ``n`` samples gets: Poisson, at least ``least``."""
    return max(least, int(rng.poisson(per_second * n / sr)))


def _sine(f: float, phase: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda t: np.sin(2 * np.pi * (f * t + phase))


def _beach(rng, bank, n, sr):
    u = rng.random(5).tolist()
    # One swell (0.1-0.3 Hz) lifts the surf and, more sharply near its crest, the foam's
    # hiss; even in a trough both are heard.
    swell = _slow(sr, n, _sine(0.1 + 0.2 * u[0], u[1]))
    swell = np.float32(0.5) + np.float32(0.5) * swell
    out = _slice(bank["surf"], u[2], n) * (np.float32(0.3) + np.float32(0.7) * swell)
    swell *= swell
    foam = np.float32(0.3) + np.float32(0.7) * swell
    out += _slice(bank["foam"], u[3], n) * foam * np.float32(0.35 + 0.25 * u[4])
    return out


def _forest(rng, bank, n, sr):
    u = rng.random(2).tolist()
    out = _slice(bank["leaves"], u[0], n) * np.float32(0.08 + 0.07 * u[1])
    _events(rng, out, bank["birds"], (0.5, 1.0), count=_rate(rng, 3.0, n, sr, 2))
    return out


def _city(rng, bank, n, sr):
    u = rng.random(5).tolist()
    # Traffic swells as cars pass (0.2-0.8 Hz).
    passing = _slow(sr, n, _sine(0.2 + 0.6 * u[0], u[1]))
    out = _slice(bank["rumble"], u[2], n) * (np.float32(0.75) + np.float32(0.25) * passing)
    out += _slice(bank["tyres"], u[3], n) * np.float32(0.15 + 0.15 * u[4])
    _events(rng, out, bank["horns"], (1.5, 3.0), count=_rate(rng, 0.6, n, sr, 0))
    return out


def _desert(rng, bank, n, sr):
    u = rng.random(7).tolist()
    # Gusts: two slow sinusoids, never quite calm.
    f1, f2 = 0.3 + 0.5 * u[0], 0.8 + 0.7 * u[1]

    def gusts(t):
        g = (
            0.55
            + 0.3 * np.sin(2 * np.pi * (f1 * t + u[2]))
            + 0.2 * np.sin(2 * np.pi * (f2 * t + u[3]))
        )
        return np.maximum(g, 0.1)

    gust = _slow(sr, n, gusts)
    out = _slice(bank["wind"], u[4], n) * gust
    gust *= gust
    out += _slice(bank["howl"], u[5], n) * gust * np.float32(0.3 + 0.3 * u[6])
    return out


def _snow(rng, bank, n, sr):
    u = rng.random(3).tolist()
    out = _slice(bank["hush"], u[0], n) * np.float32(0.08 + 0.06 * u[1])
    # Footsteps: one every 0.45-0.7 s from a random phase, each a different crunch.
    interval = round((0.45 + 0.25 * u[2]) * sr)
    starts = np.arange(int(rng.integers(0, interval)), n, interval).tolist()
    _events(rng, out, bank["steps"], (0.6, 1.0), starts=starts)
    return out


def _night(rng, bank, n, sr):
    u = rng.random(6).tolist()
    out = _slice(bank["cricket_a"], u[0], n) * np.float32(0.6 + 0.4 * u[1])
    out += _slice(bank["cricket_b"], u[2], n) * np.float32(0.7 * u[3])
    out += _slice(bank["hush"], u[4], n) * np.float32(0.03 + 0.03 * u[5])
    return out


def _field(rng, bank, n, sr):
    u = rng.random(5).tolist()
    swell = _slow(sr, n, _sine(0.3 + 0.7 * u[0], u[1]))
    out = _slice(bank["buzz"], u[2], n) * (np.float32(0.7) + np.float32(0.3) * swell)
    out += _slice(bank["breeze"], u[3], n) * np.float32(0.2 + 0.2 * u[4])
    return out


def _underwater(rng, bank, n, sr):
    u = rng.random(3).tolist()
    surge = _slow(sr, n, _sine(0.15 + 0.25 * u[0], u[1]))
    out = _slice(bank["murk"], u[2], n) * (np.float32(0.8) + np.float32(0.2) * surge)
    _events(rng, out, bank["bubbles"], (0.8, 2.0), count=_rate(rng, 4.0, n, sr, 1))
    return out


_RECIPES: dict[str, Callable[..., np.ndarray]] = {
    "beach": _beach,
    "forest": _forest,
    "city": _city,
    "desert": _desert,
    "snow": _snow,
    "night": _night,
    "field": _field,
    "underwater": _underwater,
}
assert set(_RECIPES) == set(PLACES)


def ambience(rng: np.random.Generator, place: str, *, sr: int, n_samples: int) -> np.ndarray:
    """The ambient sound of ``place``, with peak amplitude at most ``AMBIENCE_PEAK``.

    - beach: surf (noise below ~900 Hz) and foam hiss rising and falling with a
      0.1-0.3 Hz swell;
    - forest: rustling leaves under phrases of birdsong (repeated 2-5 kHz sweeps);
    - city: traffic rumble (50-300 Hz) and tyre noise, now and then a car horn;
    - desert: wind (250-1200 Hz noise) with a howl near 600 Hz, in slow gusts;
    - snow: a near-silent hush and the high-passed crunch of footsteps;
    - night: crickets, regular trains of 4-5 kHz pulses;
    - field: insects (a 5-7 kHz band buzzing at ~28 Hz) and a light breeze;
    - underwater: muffled noise below ~250 Hz with bubbles (short rising sinusoids).

    Each sound is cut from a noise and event bank cached per ``(place, sr, n_samples)``;
    the cut, the events' times and gains, the slow swells and the level (a peak of
    50-95% of ``AMBIENCE_PEAK``, 30-50% for snow) are drawn from ``rng``. Frequencies
    above 0.45 * ``sr`` are moved down to it.

    Args:
        rng: the generator every random choice is drawn from.
        place: one of ``PLACES``.
        sr: sample rate in Hz.
        n_samples: length in samples.

    Returns:
        ``(n_samples,)`` float32.

    Example:
        >>> y = ambience(np.random.default_rng(0), "beach", sr=16000, n_samples=16000)
        >>> y.shape, bool(np.abs(y).max() <= AMBIENCE_PEAK)
        ((16000,), True)
    """
    _check_rng(rng)
    if place not in PLACES:
        raise ParameterError(f"place must be one of {', '.join(PLACES)}. Found: {place!r}")
    sr, n = _check_sr_n(sr, n_samples)
    out = _RECIPES[place](rng, _bank(place, sr, n), n, sr)
    lo, hi = _PLACE_LEVEL.get(place, _LEVEL)
    peak = max(float(out.max()), -float(out.min()))
    target = (lo + (hi - lo) * rng.random()) * AMBIENCE_PEAK
    out *= np.float32(target / peak) if peak > 0 else np.float32(0)
    return out


# ------------------------------------------------------------------------------ mix


def mix(sources: Sequence[np.ndarray], ambience: np.ndarray) -> np.ndarray:
    """The mixture ``((sources[0] + sources[1]) + ...) + ambience``, summed in float32.

    Exactly the sum of its parts, in the order ``np.stack(sources).sum(0) + ambience``
    adds them, so a model can be scored against the clean sources. With the schema's
    amplitudes it never leaves [-1, 1] for up to three sources: an object's peak is at
    most its size's amplitude (0.3 for a large one) and an ambience's at most 95% of
    ``AMBIENCE_PEAK`` (0.1), so even peaks at the same instant sum to at most 0.995,
    which float32 rounding of three additions cannot push past 1.

    Args:
        sources: 1-D float32 arrays, all as long as ``ambience``; may be empty.
        ambience: ``(n_samples,)`` float32.

    Returns:
        ``(n_samples,)`` float32, a new array.
    """
    ambience = np.asarray(ambience)
    if ambience.ndim != 1 or ambience.dtype != np.float32:
        raise ParameterError(
            "ambience must be a 1-D float32 array."
            f" Found shape {ambience.shape}, dtype {ambience.dtype}"
        )
    out = None
    for i, source in enumerate(sources):
        source = np.asarray(source)
        if source.shape != ambience.shape or source.dtype != np.float32:
            raise ParameterError(
                f"sources[{i}] must be a float32 array of the ambience's shape {ambience.shape}."
                f" Found shape {source.shape}, dtype {source.dtype}"
            )
        if out is None:
            out = source.copy()
        else:
            out += source
    if out is None:
        return ambience.copy()
    out += ambience
    return out
