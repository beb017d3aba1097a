"""Cached deterministic speech: same bytes in every call and process, cache keys, bad input."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from xmodal.audio import resample
from xmodal.errors import ParameterError
from xmodal.world import voices
from xmodal.world.voices import VoiceParams, cache_key, default_cache_dir, speak, speak_many

TEXT = "the red circle is left of the blue square"
VOICE = VoiceParams("f2", pitch=62, rate=180, pitch_range=55)
OTHER = VoiceParams("m3", pitch=35, rate=150, pitch_range=40)


@pytest.fixture(scope="session")
def warm(tmp_path_factory):
    """A cache folder holding TEXT in both voices at 16 kHz, made in parallel."""
    folder = tmp_path_factory.mktemp("speech")
    speak_many([TEXT, TEXT], [VOICE, OTHER], cache_dir=folder)
    return folder


def test_speak_is_identical_across_calls_and_caches(warm, tmp_path):
    cached = speak(TEXT, VOICE, cache_dir=warm)
    fresh = speak(TEXT, VOICE, cache_dir=tmp_path)  # an empty cache: synthesized again
    assert cached.dtype == np.float32 and cached.ndim == 1
    assert 1.0 < len(cached) / 16000 < 4.0  # a sentence, not silence or a fallback
    assert np.abs(cached).max() > 0.05
    assert cached.tobytes() == fresh.tobytes()
    # Speech that followed other speech in the same child would differ; two voices do too.
    assert speak(TEXT, OTHER, cache_dir=warm).tobytes() != cached.tobytes()


def test_fresh_process_gives_the_same_bytes_as_synthesize(warm, tmp_path):
    """Another process (other hash seed, empty cache) gives the same bytes, and at eSpeak's
    own rate they equal xmodal.audio.speech.synthesize's first utterance of a process."""
    out = tmp_path / "out.npy"
    script = textwrap.dedent(
        f"""
        import numpy as np
        from xmodal.audio.speech import synthesize
        from xmodal.world.voices import VoiceParams, speak
        v = VoiceParams("f2", pitch=62, rate=180, pitch_range=55)
        first, sr = synthesize({TEXT!r}, voice=v.voice, rate=v.rate, pitch=v.pitch,
                               pitch_range=v.pitch_range)
        native = speak({TEXT!r}, v, sr=sr, cache_dir={str(tmp_path / "c1")!r})
        assert native.tobytes() == first.numpy().tobytes(), "differs from synthesize"
        np.save({str(out)!r}, speak({TEXT!r}, v, cache_dir={str(tmp_path / "c2")!r}))
        """
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert np.load(out).tobytes() == speak(TEXT, VOICE, cache_dir=warm).tobytes()


def test_cache_hit_does_not_synthesize(warm, monkeypatch):
    expected = speak(TEXT, VOICE, cache_dir=warm)

    def boom(*args, **kwargs):
        raise AssertionError("synthesized although cached")

    monkeypatch.setattr(voices, "_synthesize_fresh", boom)
    again = speak(TEXT, VOICE, cache_dir=warm)
    assert again.tobytes() == expected.tobytes()
    many = speak_many([TEXT, TEXT], [VOICE, OTHER], cache_dir=warm)
    assert many[0].tobytes() == expected.tobytes()
    # The caller owns the array: changing it does not change the next call's answer.
    again[:] = 0
    assert speak(TEXT, VOICE, cache_dir=warm).tobytes() == expected.tobytes()
    with pytest.raises(AssertionError, match="synthesized"):
        speak(TEXT + " twice", VOICE, cache_dir=warm)


def test_cache_file_is_an_npy_named_by_its_key(tmp_path):
    y = speak("a blue cross", OTHER, cache_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [cache_key("a blue cross", OTHER, 16000) + ".npy"]  # no temp file left
    assert np.load(tmp_path / files[0], allow_pickle=False).tobytes() == y.tobytes()


def test_damaged_cache_file_is_made_again(warm, tmp_path):
    expected = speak(TEXT, VOICE, cache_dir=warm)
    path = tmp_path / (cache_key(TEXT, VOICE, 16000) + ".npy")
    path.write_bytes(b"\x93NUMPY garbage")
    assert speak(TEXT, VOICE, cache_dir=tmp_path).tobytes() == expected.tobytes()
    assert np.load(path).tobytes() == expected.tobytes()


def test_cache_key_changes_with_every_parameter():
    base = cache_key(TEXT, VOICE, 16000)
    changed = [cache_key(TEXT + ".", VOICE, 16000), cache_key(TEXT, VOICE, 22050)]
    for field, value in (("variant", "f4"), ("pitch", 63), ("rate", 181),
                         ("pitch_range", 56), ("word_gap", 1)):  # fmt: skip
        changed.append(cache_key(TEXT, dataclasses.replace(VOICE, **{field: value}), 16000))
    assert len(set(changed) | {base}) == len(changed) + 1
    # Equal voices give equal keys, whatever integer type their numbers came as.
    same = VoiceParams("f2", pitch=np.int64(62), rate=180, pitch_range=np.int32(55))
    assert cache_key(TEXT, same, 16000) == base


def test_sample_rate_is_a_resampling_of_espeaks_own(warm):
    native = speak(TEXT, VOICE, sr=22050, cache_dir=warm)
    expected = resample(torch.from_numpy(native), orig_sr=22050, target_sr=16000).numpy()
    assert speak(TEXT, VOICE, cache_dir=warm).tobytes() == expected.tobytes()


def test_speak_many_equals_speak_and_makes_repeats_once(warm, tmp_path, monkeypatch):
    calls = []
    real = voices._synthesize_fresh

    def counting(text, voice):
        calls.append((text, voice))
        return real(text, voice)

    monkeypatch.setattr(voices, "_synthesize_fresh", counting)
    got = speak_many([TEXT, TEXT, TEXT], [VOICE, OTHER, VOICE], cache_dir=tmp_path)
    assert len(calls) == 2
    assert got[0].tobytes() == got[2].tobytes() == speak(TEXT, VOICE, cache_dir=warm).tobytes()
    assert got[1].tobytes() == speak(TEXT, OTHER, cache_dir=warm).tobytes()
    assert got[0] is not got[2]


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("XMODAL_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "speech"
    monkeypatch.delenv("XMODAL_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "xmodal" / "speech"


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"variant": "zz9"}, "'zz9'"),
        ({"variant": "f2", "pitch": 101}, "101"),
        ({"variant": "f2", "pitch": -1}, "-1"),
        ({"variant": "f2", "rate": 79}, "79"),
        ({"variant": "f2", "pitch_range": 150}, "150"),
        ({"variant": "f2", "pitch": 50.5}, "50.5"),
        ({"variant": "f2", "word_gap": True}, "True"),
    ],
)
def test_bad_voice_params_name_the_value(kwargs, shown):
    with pytest.raises(ParameterError, match=shown):
        VoiceParams(**kwargs)


def test_bad_speak_arguments_name_the_value(tmp_path):
    with pytest.raises(ParameterError, match="''"):
        speak("", VOICE, cache_dir=tmp_path)
    with pytest.raises(ParameterError, match="4000"):
        speak(TEXT, VOICE, sr=4000, cache_dir=tmp_path)
    with pytest.raises(ParameterError, match="'en\\+f2'"):
        speak(TEXT, "en+f2", cache_dir=tmp_path)
    with pytest.raises(ParameterError, match="one per text"):
        speak_many([TEXT, TEXT], [VOICE], cache_dir=tmp_path)
    with pytest.raises(ParameterError, match="texts\\[1\\]"):
        speak_many([TEXT, 3], VOICE, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing synthesized or written
