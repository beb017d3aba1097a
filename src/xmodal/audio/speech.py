"""Spoken sentences from text, offline, with the eSpeak NG formant synthesizer.

The library and its voice data come in the ``espeakng-loader`` wheel, so speech needs no
download and no system package. It is what the tests use as real speech.

Reproducibility: the first utterance a process synthesizes is the same, sample for
sample, in every process (the noise source of breathy voices is seeded with a fixed
seed before each utterance). eSpeak NG keeps waveform-generator state (glottal phase,
flutter, echo) from one utterance to the next and exposes no way to reset it
(``espeak_ng_SetRandSeed`` and re-initialising do not), so later utterances in the same
process differ by a few samples in length and phase. Code that needs identical bytes
across processes must synthesize each utterance in a fresh process.

Example:
    >>> y, sr = synthesize("the red circle is left of the blue square")
    >>> sr, y.dtype
    (22050, torch.float32)
"""

from __future__ import annotations

import functools
import os

import numpy as np
import torch

from xmodal._checks import check_positive_int
from xmodal._espeak import synthesize_pcm
from xmodal.errors import ParameterError

__all__ = ["list_voices", "synthesize"]


@functools.lru_cache(maxsize=1)
def _voice_variants() -> tuple[str, ...]:
    import espeakng_loader

    variants = os.path.join(espeakng_loader.get_data_path(), "voices", "!v")
    return tuple(sorted(os.listdir(variants)))


def list_voices() -> list[str]:
    """Names of the voice variants that can follow ``+`` in a voice (``"en+f3"``)."""
    return list(_voice_variants())


def synthesize(
    text: str,
    *,
    voice: str = "en",
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    word_gap: int = 0,
) -> tuple[torch.Tensor, int]:
    """Speak ``text`` and return ``(waveform, sample_rate)``.

    Args:
        text: what to say (UTF-8).
        voice: a language (``"en"``, ``"en-us"``, ``"de"``, ...) optionally with a voice
            variant: ``"en+f3"`` (a female voice), ``"en+m2"``; see :func:`list_voices`.
        rate: speaking rate in words per minute, 80 to 450.
        pitch: base pitch, 0 to 100 (50 is the voice's normal pitch).
        pitch_range: how much the pitch varies, 0 (monotone) to 100.
        word_gap: extra pause between words, in units of 10 ms.

    Returns:
        ``(y, sr)``: float32 ``(time,)`` in [-1, 1], and eSpeak's rate (22050 Hz).
        Resample with :func:`xmodal.audio.resample` for another rate.
    """
    if not isinstance(text, str) or not text.strip():
        raise ParameterError(f"text must be a non-empty string. Found: {text!r}")
    if not isinstance(voice, str) or not voice:
        raise ParameterError(f"voice must be a name like 'en' or 'en+f3'. Found: {voice!r}")
    if "+" in voice:
        variant = voice.split("+", 1)[1]
        if variant not in _voice_variants():
            # eSpeak would silently fall back to the default voice.
            raise ParameterError(
                f"voice variant {variant!r} (in voice {voice!r}) is not one of eSpeak NG's; "
                f"see xmodal.audio.speech.list_voices()"
            )
    rate = check_positive_int(rate, "rate", minimum=80)
    if rate > 450:
        raise ParameterError(f"rate must be in [80, 450] words per minute. Found: {rate}")
    for name, value in (("pitch", pitch), ("pitch_range", pitch_range)):
        check_positive_int(value, name, minimum=0)
        if value > 100:
            raise ParameterError(f"{name} must be in [0, 100]. Found: {value}")
    check_positive_int(word_gap, "word_gap", minimum=0)
    pcm, sr = synthesize_pcm(text, voice, rate=rate, pitch=pitch, pitch_range=pitch_range,
                             word_gap=word_gap)  # fmt: skip
    y = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
    return torch.from_numpy(y), int(sr)
