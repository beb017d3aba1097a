"""Reading and writing sound files: soundfile (libsndfile) for the formats, soxr to resample.

``load`` returns what ``librosa.load`` does, as a tensor: float samples in [-1, 1],
mono by default, at the file's own rate unless ``sr`` is given. Any file libsndfile
reads works: WAV, FLAC, OGG/Vorbis, MP3 (libsndfile >= 1.1), AIFF, ...

Example:
    >>> y, sr = load("speech.flac", sr=16000)     # (time,), 16000
    >>> save("speech.wav", y, sr)
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from xmodal._checks import as_signal, check_bool, check_positive_int, check_positive_number
from xmodal._io import atomic_path
from xmodal.errors import DataError, ParameterError

__all__ = ["available_formats", "info", "load", "load_clip", "resample", "save"]

_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


def available_formats() -> dict[str, str]:
    """File formats this libsndfile reads and writes: ``{"WAV": "WAV (Microsoft)", ...}``."""
    return dict(sf.available_formats())


def _existing_file(path) -> Path:
    try:
        path = Path(os.fspath(path))
    except TypeError:
        raise ParameterError(f"path must be a str or os.PathLike. Found: {path!r}") from None
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    return path


def _declared_wav_bytes(path: Path) -> tuple[int, int] | None:
    """(declared, present) byte counts of a RIFF/WAVE file's data chunk, if it has one.

    libsndfile reads a WAV file cut short without complaint, returning fewer samples than
    its header declares; this is how we notice.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                if chunk_size in (0, 0xFFFFFFFF):  # streamed: length left unknown
                    return None
                return chunk_size, size - pos - 8
            pos += 8 + chunk_size + (chunk_size & 1)
    return None


def info(path) -> sf._SoundFileInfo:
    """soundfile's description of a file (samplerate, channels, frames, format, subtype)."""
    path = _existing_file(path)
    try:
        return sf.info(str(path))
    except (sf.SoundFileError, RuntimeError) as err:
        raise DataError(f"{path}: cannot read as audio ({err})") from None


def resample(y, *, orig_sr: float, target_sr: float, quality: str = "HQ") -> torch.Tensor:
    """Resample ``y (..., time)`` from ``orig_sr`` to ``target_sr`` Hz with soxr.

    As ``librosa.resample``: soxr's "HQ" quality is librosa's default
    (``res_type="soxr_hq"``) and the output has ``ceil(time * target_sr / orig_sr)``
    samples. Runs on the CPU; the result comes back on ``y``'s device and dtype.
    """
    import soxr

    y = as_signal(y, "y")
    orig_sr = check_positive_number(orig_sr, "orig_sr")
    target_sr = check_positive_number(target_sr, "target_sr")
    if quality not in ("QQ", "LQ", "MQ", "HQ", "VHQ"):
        raise ParameterError(f"quality must be one of QQ, LQ, MQ, HQ, VHQ. Found: {quality!r}")
    if orig_sr == target_sr:
        return y
    x = y.detach().cpu().reshape(-1, y.shape[-1]).numpy().T  # soxr wants (time, channels)
    out = soxr.resample(np.ascontiguousarray(x), orig_sr, target_sr, quality=quality)
    # librosa's length: ceil(n * target / orig), zero-padded if soxr gives one sample less.
    n_out = int(np.ceil(y.shape[-1] * target_sr / orig_sr))
    out = np.pad(out[:n_out], ((0, max(0, n_out - out.shape[0])), (0, 0)))
    out = torch.from_numpy(np.ascontiguousarray(out.T))
    return out.reshape(y.shape[:-1] + out.shape[-1:]).to(dtype=y.dtype, device=y.device)


def load(
    path,
    *,
    sr: int | None = None,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, int]:
    """Read a sound file as float samples in [-1, 1].

    Args:
        path: the file.
        sr: resample to this rate (Hz); ``None`` keeps the file's rate.
        mono: average the channels.
        offset: start reading this many seconds in.
        duration: read at most this many seconds.
        dtype: ``torch.float32`` or ``torch.float64``.

    Returns:
        ``(y, sr)``: ``y`` is ``(time,)`` if mono, else ``(channels, time)``.

    Raises:
        DataError: the file is missing, not audio, corrupt, truncated, empty, or holds
            NaN/Inf samples; the message names the file.
        ParameterError: a bad argument.
    """
    path = _existing_file(path)
    if dtype not in _DTYPES:
        raise ParameterError(f"dtype must be torch.float32 or torch.float64. Found: {dtype}")
    mono = check_bool(mono, "mono")
    offset = check_positive_number(offset, "offset", allow_zero=True)
    if duration is not None:
        duration = check_positive_number(duration, "duration")
    if sr is not None:
        sr = check_positive_int(sr, "sr")
    try:
        with sf.SoundFile(str(path)) as f:
            native_sr = f.samplerate
            declared = f.frames
            start = int(round(offset * native_sr))
            if declared and start >= declared:
                raise ParameterError(
                    f"offset={offset} s is past the end of {path} ({declared / native_sr:.3f} s)"
                )
            count = -1 if duration is None else int(round(duration * native_sr))
            if start:
                f.seek(start)
            data = f.read(count, dtype=_DTYPES[dtype], always_2d=True)
    except (sf.SoundFileError, RuntimeError) as err:
        raise DataError(f"{path}: cannot read as audio ({err})") from None
    wav = _declared_wav_bytes(path)
    if wav is not None and wav[0] > wav[1]:
        raise DataError(
            f"{path}: truncated: the header declares {wav[0]} bytes of samples, "
            f"the file holds {wav[1]}"
        )
    expected = declared - start if count < 0 else min(count, declared - start)
    if declared and data.shape[0] < expected:
        raise DataError(f"{path}: truncated or corrupt: read {data.shape[0]} of {expected} frames")
    if data.shape[0] == 0:
        raise DataError(f"{path}: holds no samples")
    if not np.isfinite(data).all():
        raise DataError(f"{path}: holds NaN or Inf samples")
    y = torch.from_numpy(np.ascontiguousarray(data.T))  # (channels, time)
    if mono:
        y = y.mean(dim=0)
    if sr is not None and sr != native_sr:
        y = resample(y, orig_sr=native_sr, target_sr=sr)
        native_sr = sr
    return y, int(native_sr)


def load_clip(path, *, sr: int, n_samples: int) -> torch.Tensor:
    """A sound file as a dataset clip: :func:`load` mono at ``sr``, its first
    ``n_samples`` samples, zero-padded at the end when shorter (librosa's ``fix_length``)."""
    n_samples = check_positive_int(n_samples, "n_samples")
    # Read no more than needed, with a margin for the resampler's rounding.
    y, _ = load(path, sr=sr, mono=True, duration=(n_samples + 2) / sr)
    y = y[:n_samples]
    return torch.nn.functional.pad(y, (0, n_samples - len(y)))


def save(path, y, sr: int, *, subtype: str | None = None, format: str | None = None) -> Path:
    """Write ``y`` ((time,) or (channels, time), floats in [-1, 1]) to a sound file.

    The format comes from the file's extension (``.wav``, ``.flac``, ``.ogg``, ...) unless
    ``format`` names it; ``subtype`` defaults to soundfile's (16-bit PCM for WAV and
    FLAC, Vorbis for OGG). Written to a temporary file and renamed, so an interrupted
    write never leaves a half file behind.

    Raises:
        ParameterError: unknown format or subtype, bad shape, non-finite samples, or
            samples beyond [-1, 1] for an integer subtype (they would be clipped).
    """
    try:
        path = Path(os.fspath(path))
    except TypeError:
        raise ParameterError(f"path must be a str or os.PathLike. Found: {path!r}") from None
    y = as_signal(y, "y")
    if y.ndim > 2:
        raise ParameterError(f"y must be (time,) or (channels, time). Found shape {tuple(y.shape)}")
    if y.ndim == 2 and y.shape[0] > y.shape[1]:
        raise ParameterError(
            f"y has shape {tuple(y.shape)}: more channels than samples. save takes "
            f"(channels, time); pass y.T if y is (time, channels)"
        )
    sr = check_positive_int(sr, "sr")
    fmt = (format or path.suffix.lstrip(".")).upper()
    formats = sf.available_formats()
    if fmt not in formats:
        raise ParameterError(
            f"cannot tell the format of {path}: {fmt or 'no extension'!r} is not one of "
            f"{', '.join(sorted(formats))}; use a known extension or format="
        )
    if subtype is not None and not isinstance(subtype, str):
        raise ParameterError(f"subtype must be a name such as 'PCM_16'. Found: {subtype!r}")
    if subtype is not None and subtype.upper() not in sf.available_subtypes(fmt):
        raise ParameterError(
            f"subtype {subtype!r} is not available for {fmt}; "
            f"choose from {', '.join(sorted(sf.available_subtypes(fmt)))}"
        )
    chosen = (subtype or sf.default_subtype(fmt)).upper()
    peak = float(y.abs().max())
    if peak > 1.0 and chosen not in ("FLOAT", "DOUBLE"):
        raise ParameterError(
            f"y has a peak of {peak:.3g}, beyond [-1, 1]; {fmt} {chosen} would clip it. "
            f"Normalise y or use subtype='FLOAT' (WAV)"
        )
    data = y.detach().cpu().numpy().T  # soundfile wants (time, channels)
    # keep_mode: a file written over keeps its permissions, as a plain write would leave
    # them. No fsync: world exports write hundreds of clips into a folder swapped in whole.
    with atomic_path(path, keep_mode=True, sync=False) as tmp:
        try:
            sf.write(str(tmp), data, sr, subtype=subtype, format=fmt)
        except (sf.SoundFileError, RuntimeError) as err:
            channels = 1 if data.ndim == 1 else data.shape[1]
            raise ParameterError(
                f"cannot write {path} as {fmt} {chosen} with {channels} channel(s) at "
                f"{sr} Hz: {err}"
            ) from None
    return path
