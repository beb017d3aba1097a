"""eSpeak NG through ctypes, with nothing heavier than the standard library.

The one place that drives the synthesizer. :mod:`xmodal.audio.speech` calls
:func:`synthesize_pcm` in-process; :mod:`xmodal.world.voices` runs this module as a
fresh child process per utterance (``python -m xmodal._espeak``), because eSpeak keeps
waveform state from one utterance to the next and only a process's first utterance is
reproducible. Importing it loads no torch or numpy, so such a child starts in ~30 ms.

Child protocol: arguments ``voice rate pitch pitch_range word_gap``, the UTF-8 text on
stdin; on stdout a 4-byte little-endian sample rate, then the raw int16 samples.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import threading

from xmodal.errors import ParameterError, XmodalError

__all__ = ["synthesize_pcm"]

# espeak_AUDIO_OUTPUT, espeak_PARAMETER and espeak_POSITION_TYPE from speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_OK = 0
# eSpeak seeds its noise source (breathy variants such as f3) from the clock otherwise.
_RAND_SEED = 1

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

# One global synthesizer per process: calls are serialised, and a forked child (a
# DataLoader worker) initialises its own.
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
            _state["chunks"].append(ctypes.string_at(wav, 2 * numsamples))
        return 0

    _state["callback"] = _CALLBACK(collect)  # kept alive: the C side holds the pointer
    lib.espeak_SetSynthCallback(_state["callback"])
    _state.update(pid=os.getpid(), lib=lib, sr=sr)
    return lib


def synthesize_pcm(
    text: str, voice: str, *, rate: int, pitch: int, pitch_range: int, word_gap: int
) -> tuple[bytes, int]:
    """``(little-endian int16 samples, sample rate)`` of ``text`` spoken by ``voice``.

    Arguments are not validated here (callers do); an unknown voice is a ParameterError.
    """
    encoded = text.encode("utf-8")
    with _lock:
        lib = _library()
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ParameterError(f"voice {voice!r} is not known to eSpeak NG")
        for name, value in (("rate", rate), ("pitch", pitch), ("range", pitch_range),
                            ("wordgap", word_gap)):  # fmt: skip
            lib.espeak_SetParameter(_PARAM[name], int(value), 0)
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
    return b"".join(chunks), int(sr)


def main() -> None:
    """The child process of :mod:`xmodal.world.voices` (see the module docstring)."""
    voice, rate, pitch, pitch_range, word_gap = sys.argv[1:6]
    text = sys.stdin.buffer.read().decode("utf-8")
    try:
        pcm, sr = synthesize_pcm(text, voice, rate=int(rate), pitch=int(pitch),
                                 pitch_range=int(pitch_range), word_gap=int(word_gap))  # fmt: skip
    except XmodalError as err:
        sys.exit(str(err))
    sys.stdout.buffer.write(struct.pack("<i", sr) + pcm)


if __name__ == "__main__":
    main()
