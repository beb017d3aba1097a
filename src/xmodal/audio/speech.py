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

import ctypes
import os
import threading

import numpy as np
import torch

from xmodal._checks import check_positive_int
from xmodal.errors import ParameterError, XmodalError

__all__ = ["list_voices", "synthesize"]

# espeak_AUDIO_OUTPUT, espeak_PARAMETER and espeak_POSITION_TYPE from speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_OK = 0
_RAND_SEED = 1

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

# eSpeak keeps one global synthesizer per process: calls are serialised, and a forked
# child (a DataLoader worker) initialises its own.
_lock = threading.Lock()
_state: dict = {"pid": None, "lib": None, "sr": None, "chunks": [], "callback": None}


def _library():
    if _state["pid"] == os.getpid():
        return _state["lib"]
    try:
        import espeakng_loader
    except ImportError:  # pragma: no cover - a runtime dependency, but say so if missing
        raise XmodalError(
            "speech synthesis needs the espeakng-loader package: pip install espeakng-loader"
        ) from None
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
        ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
    ]  # fmt: skip
    data = espeakng_loader.get_data_path().encode()
    sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
    if sr <= 0:
        raise XmodalError(f"eSpeak NG failed to initialise with its data at {data.decode()}")

    def collect(wav, numsamples, events):
        if numsamples > 0:
            _state["chunks"].append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0

    _state["callback"] = _CALLBACK(collect)  # kept alive: the C side holds the pointer
    lib.espeak_SetSynthCallback(_state["callback"])
    _state.update(pid=os.getpid(), lib=lib, sr=sr)
    return lib


def list_voices() -> list[str]:
    """Names of the voice variants that can follow ``+`` in a voice (``"en+f3"``)."""
    import espeakng_loader

    variants = os.path.join(espeakng_loader.get_data_path(), "voices", "!v")
    return sorted(os.listdir(variants))


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
        if variant not in list_voices():
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
    encoded = text.encode("utf-8")
    with _lock:
        lib = _library()
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ParameterError(f"voice {voice!r} is not known to eSpeak NG")
        for name, value in (("rate", rate), ("pitch", pitch), ("range", pitch_range),
                            ("wordgap", word_gap)):  # fmt: skip
            lib.espeak_SetParameter(_PARAM[name], value, 0)
        # eSpeak seeds its noise source (breathy variants such as f3) from the clock.
        lib.espeak_ng_SetRandSeed(_RAND_SEED)
        _state["chunks"] = []
        buf = ctypes.create_string_buffer(encoded)
        status = lib.espeak_Synth(buf, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                  None, None)  # fmt: skip
        lib.espeak_Synchronize()
        chunks, _state["chunks"] = _state["chunks"], []
        sr = _state["sr"]
    if status != _EE_OK or not chunks:
        raise XmodalError(f"eSpeak NG produced no audio for {text!r} (status {status})")
    y = np.concatenate(chunks).astype(np.float32) / 32768.0
    return torch.from_numpy(y), int(sr)
