"""xmodal.audio.speech: eSpeak NG through ctypes, offline."""

from __future__ import annotations

import subprocess
import sys
import time

import librosa
import numpy as np
import pytest
import torch

from xmodal.audio.speech import list_voices, synthesize
from xmodal.errors import ParameterError

SENTENCE = "the small red circle is to the left of the big blue square"


def _duration(text: str, **kwargs) -> float:
    y, sr = synthesize(text, **kwargs)
    return len(y) / sr


def _median_f0(y: torch.Tensor, sr: int) -> float:
    """Median YIN F0 (Hz) over the frames with at least a fifth of the loudest frame's RMS."""
    x = y.numpy().astype(np.float64)
    frame, hop = 2048, 256
    f0 = librosa.yin(x, fmin=50, fmax=500, sr=sr, frame_length=frame, hop_length=hop)
    rms = librosa.feature.rms(y=x, frame_length=frame, hop_length=hop)[0]
    n = min(len(f0), len(rms))
    voiced = rms[:n] > 0.2 * rms[:n].max()
    assert voiced.sum() > 50  # enough frames for a median to mean something
    return float(np.median(f0[:n][voiced]))


def test_synthesize_output():
    y, sr = synthesize(SENTENCE)
    assert sr == 22050
    assert isinstance(y, torch.Tensor)
    assert y.dtype == torch.float32
    assert y.ndim == 1
    assert 1.0 < len(y) / sr < 10.0  # a 13-word sentence at 175 wpm is a few seconds
    assert float(y.abs().max()) <= 1.0
    assert float(y.square().mean().sqrt()) > 0.01  # audible, not silence
    assert bool(torch.isfinite(y).all())


def test_duration_grows_with_text():
    short = _duration("hello")
    long = _duration("hello there my friend, it is a fine day for a walk in the park")
    assert long > 3 * short


def test_higher_rate_is_shorter():
    slow = _duration(SENTENCE, rate=120)
    fast = _duration(SENTENCE, rate=300)
    # 2.5 times the words per minute; pauses do not scale fully, so ask for a clear drop only.
    assert fast < 0.7 * slow


def test_higher_pitch_gives_higher_f0():
    low = _median_f0(*synthesize(SENTENCE, pitch=20))
    high = _median_f0(*synthesize(SENTENCE, pitch=80))
    assert 50 < low < high
    assert high > 1.4 * low


def test_female_variant_is_higher_than_default():
    default = _median_f0(*synthesize(SENTENCE))
    female = _median_f0(*synthesize(SENTENCE, voice="en+f3"))
    assert female > 1.5 * default


def test_list_voices_has_variants():
    voices = list_voices()
    assert {"f3", "m2"} <= set(voices)
    assert voices == sorted(voices)


# Each voice's utterance comes from a forked child of a process that has not loaded eSpeak
# yet (speech.py loads it on first use), so each is the first utterance of a fresh
# synthesizer while the interpreter and torch start only once per run.
_FIRST_UTTERANCE = """
import hashlib, os, sys
from xmodal.audio.speech import synthesize
for voice in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        y, sr = synthesize("the quick brown fox jumps over the lazy dog", voice=voice)
        print(voice, hashlib.sha256(y.numpy().tobytes()).hexdigest(), len(y), sr, flush=True)
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
"""
_REPRO_VOICES = ["en", "en+f3"]  # en+f3 adds breath noise, drawn from eSpeak's random generator


@pytest.fixture(scope="module")
def first_utterances() -> dict[str, list[list[str]]]:
    """Run ``python -c`` twice; for each voice, what the two runs printed.

    eSpeak NG seeds its generator from time(NULL) when it initialises, so the second run
    starts in a later wall-clock second than the first ended: equal output must come from
    the synthesis itself, not from two runs that happened to share a second.
    """
    runs = []
    for i in range(2):
        if i:
            time.sleep(1.05 - time.time() % 1.0)
        out = subprocess.run(
            [sys.executable, "-c", _FIRST_UTTERANCE, *_REPRO_VOICES],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        runs.append({line.split()[0]: line.split()[1:] for line in out.splitlines()})
    assert all(sorted(run) == sorted(_REPRO_VOICES) for run in runs)
    return {v: [run[v] for run in runs] for v in _REPRO_VOICES}


@pytest.mark.parametrize("voice", _REPRO_VOICES)
def test_first_utterance_is_reproducible_across_processes(first_utterances, voice):
    first, second = first_utterances[voice]
    digest, length, sr = first
    assert len(digest) == 64
    assert int(length) > 22050  # about two seconds of speech, not an empty buffer
    assert sr == "22050"
    assert second == first


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"text": ""}, r"text.*''"),
        ({"text": "   "}, r"text.*'   '"),
        ({"text": 42}, r"text.*42"),
        ({"text": None}, r"text.*None"),
        ({"text": "hi", "voice": "xx-nonexistent"}, r"voice 'xx-nonexistent'"),
        ({"text": "hi", "voice": ""}, r"voice.*''"),
        ({"text": "hi", "rate": 50}, r"rate.*Found: 50"),
        ({"text": "hi", "rate": 500}, r"rate.*Found: 500"),
        ({"text": "hi", "rate": 175.0}, r"rate.*Found: 175.0"),
        ({"text": "hi", "pitch": -1}, r"pitch.*Found: -1"),
        ({"text": "hi", "pitch": 101}, r"pitch.*Found: 101"),
        ({"text": "hi", "pitch_range": 101}, r"pitch_range.*Found: 101"),
        ({"text": "hi", "word_gap": -1}, r"word_gap.*Found: -1"),
    ],
)
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ParameterError, match=pattern):
        synthesize(**kwargs)


def test_unknown_voice_variant_is_rejected():
    # eSpeak NG silently falls back to the plain language for an unknown variant, so a typo
    # ("en+f33") would give the default male voice without a word.
    assert "f33" not in list_voices()
    with pytest.raises(ParameterError, match="f33"):
        synthesize("hi", voice="en+f33")
