"""Deterministic, cached speech for the world: the same text and voice give the same bytes.

eSpeak NG keeps waveform-generator state from one utterance to the next in a process (see
:mod:`xmodal.audio.speech`), so only the first utterance of a process is reproducible.
:func:`speak` therefore synthesizes every utterance in a fresh child process and keeps
the result in a disk cache, where a later call finds it in tens of microseconds.

The child is ``python -m xmodal._espeak``: the same ctypes engine that
:func:`xmodal.audio.speech.synthesize` drives in-process, importing neither torch nor
numpy, writing the 16-bit samples to stdout. Measured
on a 2-core CPU, a 10-word sentence costs ~35 ms that way; a ``spawn`` process pool with
one task per child costs ~1.6 s per utterance (every child imports torch), and a
``forkserver`` pool ~21 ms per utterance after a ~1.5 s start and with process-global
preload settings. Warm, :func:`speak` costs ~0.15 ms (a hash and an ``np.load``).

The cache lives in ``$XMODAL_CACHE/speech`` if ``XMODAL_CACHE`` is set, otherwise in
``~/.cache/xmodal/speech``. A file's name is the sha256 of everything that shapes the
audio: the text, every voice parameter, the sample rate, the eSpeak NG library (its
package version, file size and mtime), the soxr version and :data:`CACHE_VERSION`; so
a stale entry is never read, only left behind. Files are ``.npy`` float32, written
atomically (temp file + ``os.replace``), so concurrent writers and readers never see
half a file. Deleting the folder is always safe.

Example:
    >>> voice = VoiceParams("f2", pitch=60, rate=170, pitch_range=55)
    >>> y = speak("the red circle is left of the square", voice)   # float32 (time,), 16 kHz
"""

from __future__ import annotations

import functools
import hashlib
import json
import numbers
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from xmodal._io import atomic_path
from xmodal.errors import ParameterError, XmodalError

__all__ = ["CACHE_VERSION", "VoiceParams", "cache_key", "default_cache_dir", "speak", "speak_many"]

# Bump when anything about how the audio is made changes that the key does not see.
CACHE_VERSION = 1

_LANGUAGE = "en"
_QUALITY = "HQ"  # soxr quality, librosa's default
_WORKERS = 2


# ------------------------------------------------------------------------------ voices


@functools.lru_cache(maxsize=1)
def _variants() -> frozenset[str]:
    from xmodal.audio.speech import list_voices

    return frozenset(list_voices())


def _check_int(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"{name} must be an integer in [{low}, {high}]. Found: {value!r}")
    if not low <= value <= high:
        raise ParameterError(f"{name} must be in [{low}, {high}]. Found: {value}")
    return int(value)


@dataclass(frozen=True)
class VoiceParams:
    """An English eSpeak NG voice: a variant and the settings :func:`speak` passes on.

    Attributes:
        variant: an eSpeak NG voice variant such as ``"f2"`` (female) or ``"m3"`` (male);
            see :func:`xmodal.audio.speech.list_voices`.
        pitch: base pitch, 0 to 100 (50 is the variant's normal pitch).
        rate: speaking rate in words per minute, 80 to 450.
        pitch_range: how much the pitch moves, 0 (monotone) to 100.
        word_gap: extra pause between words, in units of 10 ms, 0 to 100.
    """

    variant: str
    pitch: int = 50
    rate: int = 175
    pitch_range: int = 50
    word_gap: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.variant, str) or self.variant not in _variants():
            # eSpeak would fall back to its default voice without a word.
            raise ParameterError(
                f"variant must be an eSpeak NG voice variant such as 'f2' or 'm3' "
                f"(see xmodal.audio.speech.list_voices()). Found: {self.variant!r}"
            )
        # Plain ints in the dataclass, so the cache key's JSON is the same for np.int64(5).
        object.__setattr__(self, "pitch", _check_int(self.pitch, "pitch", 0, 100))
        object.__setattr__(self, "rate", _check_int(self.rate, "rate", 80, 450))
        object.__setattr__(self, "pitch_range", _check_int(self.pitch_range, "pitch_range", 0, 100))
        object.__setattr__(self, "word_gap", _check_int(self.word_gap, "word_gap", 0, 100))

    @property
    def voice(self) -> str:
        """The eSpeak voice name, language and variant: ``"en+f2"``."""
        return f"{_LANGUAGE}+{self.variant}"


# ------------------------------------------------------------------------------ the cache


def default_cache_dir() -> Path:
    """``$XMODAL_CACHE/speech`` if ``XMODAL_CACHE`` is set, else ``~/.cache/xmodal/speech``."""
    root = os.environ.get("XMODAL_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "xmodal"
    return base / "speech"


@functools.lru_cache(maxsize=1)
def _engine_fingerprint() -> str:
    """What identifies the synthesizer and resampler: versions, library size and mtime.

    Cached for the process: stat-ing the library on every call would cost more than the
    rest of a warm :func:`speak`, and a library replaced under a running process is not
    the one it has loaded anyway.
    """
    from importlib.metadata import PackageNotFoundError, version

    import espeakng_loader
    import soxr

    lib = os.path.realpath(espeakng_loader.get_library_path())
    stat = os.stat(lib)
    try:
        loader = version("espeakng-loader")
    except PackageNotFoundError:  # pragma: no cover - an unusual install
        loader = "unknown"
    return f"{loader}|{os.path.basename(lib)}|{stat.st_size}|{stat.st_mtime_ns}|{soxr.__version__}"


def cache_key(text: str, voice: VoiceParams, sr: int) -> str:
    """The sha256 (hex) naming the cached waveform of ``text`` spoken by ``voice`` at ``sr``."""
    payload = json.dumps(
        {
            "version": CACHE_VERSION,
            "text": text,
            "language": _LANGUAGE,
            "voice": asdict(voice),
            "sr": sr,
            "quality": _QUALITY,
            "engine": _engine_fingerprint(),
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _cache_path(cache_dir, text: str, voice: VoiceParams, sr: int) -> Path:
    folder = default_cache_dir() if cache_dir is None else Path(os.fspath(cache_dir))
    return folder / f"{cache_key(text, voice, sr)}.npy"


def _load(path: Path) -> np.ndarray | None:
    try:
        y = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # a foreign or damaged file: make it again
        return None
    if y.dtype != np.float32 or y.ndim != 1:
        return None
    return y


def _store(path: Path, y: np.ndarray) -> None:
    # A cache: an entry lost in a crash is only synthesized again, so no fsync.
    with atomic_path(path, sync=False) as tmp, open(tmp, "wb") as f:
        np.save(f, y, allow_pickle=False)


# ------------------------------------------------------------------------------ synthesis


def _synthesize_fresh(text: str, voice: VoiceParams) -> tuple[np.ndarray, int]:
    """``(int16 samples, sample rate)`` of ``text``, as the first utterance of a new process.

    The child runs :mod:`xmodal._espeak`, the engine :func:`xmodal.audio.speech.synthesize`
    drives in-process, so the two agree sample for sample (a test checks it).
    """
    args = [str(v) for v in (voice.voice, voice.rate, voice.pitch, voice.pitch_range,
                             voice.word_gap)]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "xmodal._espeak", *args],
        input=text.encode("utf-8"),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0 or len(proc.stdout) < 6:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise XmodalError(
            f"eSpeak NG failed to speak {text!r} with voice {voice}: "
            f"{message[-1] if message else f'exit status {proc.returncode}'}"
        )
    sr = int.from_bytes(proc.stdout[:4], "little", signed=True)
    return np.frombuffer(proc.stdout[4:], dtype="<i2"), sr


def _make(text: str, voice: VoiceParams, sr: int) -> np.ndarray:
    import torch

    from xmodal.audio.io import resample

    pcm, native = _synthesize_fresh(text, voice)
    # As xmodal.audio.speech.synthesize: int16 / 32768 in float32.
    y = pcm.astype(np.float32) / 32768.0
    if native != sr:
        y = resample(torch.from_numpy(y), orig_sr=native, target_sr=sr, quality=_QUALITY)
        y = y.numpy()
    return np.ascontiguousarray(y, dtype=np.float32)


def _check_text(text, name: str = "text") -> str:
    if not isinstance(text, str) or not text.strip():
        raise ParameterError(f"{name} must be a non-empty string. Found: {text!r}")
    if "\x00" in text:
        raise ParameterError(f"{name} must not contain NUL characters. Found: {text!r}")
    return text


def _check_voice(voice, name: str = "voice") -> VoiceParams:
    if not isinstance(voice, VoiceParams):
        raise ParameterError(f"{name} must be a VoiceParams. Found: {voice!r}")
    return voice


def _check_sr(sr) -> int:
    # Below 8 kHz speech loses the formants that tell voices apart.
    return _check_int(sr, "sr", 8000, 192000)


def speak(
    text: str, voice: VoiceParams, *, sr: int = 16000, cache_dir: str | Path | None = None
) -> np.ndarray:
    """``text`` spoken by ``voice``: float32 ``(time,)`` in [-1, 1] at ``sr`` Hz.

    The same arguments give the same bytes in every call and every process: each
    utterance is synthesized as the first of a fresh process (see the module docstring)
    and then read from the disk cache. The returned array is the caller's own.

    Args:
        text: what to say (UTF-8).
        voice: a :class:`VoiceParams`.
        sr: sample rate in Hz, 8000 to 192000 (eSpeak's own 22050 Hz is resampled
            with soxr, as :func:`xmodal.audio.resample` does).
        cache_dir: the cache folder; ``None`` for :func:`default_cache_dir`.

    Example:
        >>> y = speak("hello", VoiceParams("m3", pitch=35, rate=160), sr=16000)
        >>> y.dtype, y.ndim
        (dtype('float32'), 1)
    """
    text = _check_text(text)
    voice = _check_voice(voice)
    sr = _check_sr(sr)
    path = _cache_path(cache_dir, text, voice, sr)
    y = _load(path)
    if y is None:
        y = _make(text, voice, sr)
        _store(path, y)
    return y


def speak_many(
    texts: Sequence[str],
    voices: VoiceParams | Sequence[VoiceParams],
    *,
    sr: int = 16000,
    cache_dir: str | Path | None = None,
    workers: int = _WORKERS,
) -> list[np.ndarray]:
    """:func:`speak` for many utterances, synthesizing the missing ones in parallel.

    Meant for warming the cache: each missing utterance is still its own fresh process,
    ``workers`` of them at a time, so the results are the bytes :func:`speak` gives.

    Args:
        texts: the utterances.
        voices: one :class:`VoiceParams` for all, or one per text.
        sr, cache_dir: as for :func:`speak`.
        workers: child processes at a time (>= 1).

    Returns:
        One float32 ``(time,)`` array per text, in order.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ParameterError(f"texts must be a sequence of strings. Found: {texts!r}")
    texts = [_check_text(t, f"texts[{i}]") for i, t in enumerate(texts)]
    if isinstance(voices, VoiceParams):
        voices = [voices] * len(texts)
    elif not isinstance(voices, Sequence) or len(voices) != len(texts):
        raise ParameterError(
            f"voices must be one VoiceParams or one per text ({len(texts)}). Found: {voices!r}"
        )
    voices = [_check_voice(v, f"voices[{i}]") for i, v in enumerate(voices)]
    sr = _check_sr(sr)
    workers = _check_int(workers, "workers", 1, 64)
    paths = [_cache_path(cache_dir, t, v, sr) for t, v in zip(texts, voices, strict=True)]
    out = [_load(p) for p in paths]
    # One job per distinct missing file: a repeated (text, voice) is made once.
    missing: dict[Path, tuple[str, VoiceParams]] = {}
    for y, p, t, v in zip(out, paths, texts, voices, strict=True):
        if y is None:
            missing.setdefault(p, (t, v))

    def job(item: tuple[Path, tuple[str, VoiceParams]]) -> tuple[Path, np.ndarray]:
        path, (text, voice) = item
        y = _make(text, voice, sr)
        _store(path, y)
        return path, y

    # Threads suffice: the work is in the child processes and soxr, both outside the GIL.
    with ThreadPoolExecutor(max_workers=min(workers, max(1, len(missing)))) as pool:
        made = dict(pool.map(job, missing.items()))
    return [y if y is not None else made[p].copy() for y, p in zip(out, paths, strict=True)]
