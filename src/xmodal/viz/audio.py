"""Pictures of sound: waveform, one frame's power spectrum, spectrogram, mel spectrogram, MFCC.

Every plot takes an optional matplotlib ``Axes`` and returns the one it drew on; axes are
labelled in seconds and Hz (mel plots are spaced on the mel scale but ticked in Hz), and
dB images carry a colour bar. :func:`audio_figure` puts the four views of a clip in one
figure, as ``xmodal audio show`` draws it. Figures are made without pyplot, so nothing
here touches global state or needs a display.

Example:
    >>> fig = audio_figure(y, sr=16000)
    >>> fig.savefig("speech.png")
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from xmodal._checks import as_signal, check_positive_int, check_positive_number
from xmodal.audio import functional as F
from xmodal.errors import ParameterError

__all__ = [
    "audio_figure",
    "plot_melspectrogram",
    "plot_mfcc",
    "plot_power_spectrum",
    "plot_spectrogram",
    "plot_waveform",
]

_CMAP = "magma"


def _axes(ax: Axes | None, figsize=(8, 3)) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=figsize, layout="constrained").add_subplot()


def _mono(y, name: str = "y") -> np.ndarray:
    y = as_signal(y, name)
    if y.ndim != 1:
        raise ParameterError(f"{name} must be one clip of shape (time,). Found {tuple(y.shape)}")
    return y.detach().cpu().double().numpy()


def _image(S, name: str) -> np.ndarray:
    S = as_signal(S, name, min_ndim=2)
    if S.ndim != 2:
        raise ParameterError(
            f"{name} must be one clip of shape (freq, frames). Found {tuple(S.shape)}"
        )
    return S.detach().cpu().double().numpy()


def _frame_times(n_frames: int, sr: float, hop_length: int) -> np.ndarray:
    # With center=True frame t is centred on sample t * hop_length.
    return np.arange(n_frames) * hop_length / sr


def _db_colorbar(ax: Axes, mesh, label: str = "dB") -> None:
    bar = ax.figure.colorbar(mesh, ax=ax, format="%+.0f")
    bar.set_label(label)


def _label_time_plot(ax: Axes, ylabel: str, title: str, db_mesh=None) -> Axes:
    """Label a plot against time (s); a dB image ``db_mesh`` also gets its colour bar."""
    ax.set_xlabel("Time (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if db_mesh is not None:
        _db_colorbar(ax, db_mesh)
    return ax


def plot_waveform(y, *, sr: float, ax: Axes | None = None, title: str = "Waveform") -> Axes:
    """Amplitude against time (s) of a clip ``y (time,)``."""
    y = _mono(y)
    sr = check_positive_number(sr, "sr")
    ax = _axes(ax)
    t = np.arange(len(y)) / sr
    ax.plot(t, y, linewidth=0.6)
    ax.set_xlim(0, len(y) / sr)
    return _label_time_plot(ax, "Amplitude", title)


def plot_power_spectrum(
    y,
    *,
    sr: float,
    time: float | None = None,
    n_fft: int = F.N_FFT,
    hop_length: int = F.HOP_LENGTH,
    win_length: int = F.WIN_LENGTH,
    window: str = "hamming",
    ax: Axes | None = None,
) -> Axes:
    """Power spectrum (dB against Hz) of the STFT frame nearest ``time`` seconds.

    ``time`` defaults to the loudest frame. This is one column of the spectrogram.
    """
    y = _mono(y)
    sr = check_positive_number(sr, "sr")
    S = F.spectrogram(
        torch.from_numpy(y), n_fft=n_fft, hop_length=hop_length, win_length=win_length,
        window=window,
    ).numpy()  # fmt: skip
    if time is None:
        frame = int(S.sum(axis=0).argmax())
    else:
        duration = len(y) / sr
        if not 0 <= time <= duration:
            raise ParameterError(f"time must be in [0, {duration:.3f}] s. Found: {time}")
        frame = min(int(round(time * sr / hop_length)), S.shape[1] - 1)
    db = F.power_to_db(torch.from_numpy(S[:, frame]), ref=float(S.max()), top_db=80.0)
    ax = _axes(ax)
    ax.plot(F.fft_frequencies(sr=sr, n_fft=n_fft).numpy(), db.numpy(), linewidth=0.8)
    ax.set_xlim(0, sr / 2)
    ax.set_xlabel("Frequency (Hz)")
    ax.set_ylabel("Power (dB)")
    ax.set_title(f"Power spectrum at {frame * hop_length / sr:.2f} s ({window} window)")
    return ax


def plot_spectrogram(
    S_db,
    *,
    sr: float,
    hop_length: int = F.HOP_LENGTH,
    ax: Axes | None = None,
    title: str = "Spectrogram",
    colorbar: bool = True,
) -> Axes:
    """A (power or magnitude) spectrogram in dB, ``(1 + n_fft // 2, frames)``, on a Hz axis."""
    S_db = _image(S_db, "S_db")
    sr = check_positive_number(sr, "sr")
    hop_length = check_positive_int(hop_length, "hop_length")
    n_fft = 2 * (S_db.shape[0] - 1)
    freqs = F.fft_frequencies(sr=sr, n_fft=n_fft).numpy()
    times = _frame_times(S_db.shape[1], sr, hop_length)
    ax = _axes(ax)
    mesh = ax.pcolormesh(times, freqs, S_db, shading="nearest", cmap=_CMAP, rasterized=True)
    ax.set_ylim(0, sr / 2)
    return _label_time_plot(ax, "Frequency (Hz)", title, mesh if colorbar else None)


def plot_melspectrogram(
    M_db,
    *,
    sr: float,
    hop_length: int = F.HOP_LENGTH,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    ax: Axes | None = None,
    title: str = "Mel spectrogram",
    colorbar: bool = True,
) -> Axes:
    """A mel spectrogram in dB, ``(n_mels, frames)``: bands evenly spaced, ticks in Hz.

    ``fmin``, ``fmax`` and ``htk`` must be those the mel spectrogram was made with.
    """
    M_db = _image(M_db, "M_db")
    sr = check_positive_number(sr, "sr")
    fmax = sr / 2 if fmax is None else fmax
    centres = F.mel_frequencies(M_db.shape[0] + 2, fmin=fmin, fmax=fmax, htk=htk)
    centres = centres[1:-1].numpy()
    times = _frame_times(M_db.shape[1], sr, hop_length)
    ax = _axes(ax)
    mesh = ax.pcolormesh(times, centres, M_db, shading="nearest", cmap=_CMAP, rasterized=True)

    def forward(f):
        return F.hz_to_mel(np.maximum(np.asarray(f, dtype=float), 0.0), htk=htk)

    def inverse(m):
        return F.mel_to_hz(np.asarray(m, dtype=float), htk=htk)

    ax.set_yscale("function", functions=(forward, inverse))
    ticks = [f for f in (0, 250, 500, 1000, 2000, 4000, 8000, 16000) if fmin <= f <= fmax]
    ax.set_yticks(ticks, [f"{f:g}" for f in ticks])
    ax.set_ylim(fmin, fmax)
    return _label_time_plot(ax, "Frequency (Hz, mel scale)", title, mesh if colorbar else None)


def plot_mfcc(
    mfccs,
    *,
    sr: float,
    hop_length: int = F.HOP_LENGTH,
    ax: Axes | None = None,
    title: str = "MFCC",
    colorbar: bool = True,
) -> Axes:
    """MFCCs ``(n_mfcc, frames)``: coefficient index against time (s).

    The colour scale is symmetric and set by coefficients 1 and up; c0 (log energy) may
    saturate.
    """
    mfccs = _image(mfccs, "mfccs")
    sr = check_positive_number(sr, "sr")
    times = _frame_times(mfccs.shape[1], sr, hop_length)
    ax = _axes(ax)
    coefficients = np.arange(mfccs.shape[0])
    # c0 is the log energy, far larger than the rest: scale the colours to c1 and up (c0
    # saturates) so the coefficients that carry the spectral envelope stay visible.
    shape = mfccs[1:] if mfccs.shape[0] > 1 else mfccs
    limit = float(np.abs(shape).max()) or 1.0
    mesh = ax.pcolormesh(times, coefficients, mfccs, shading="nearest", cmap="coolwarm",
                         vmin=-limit, vmax=limit, rasterized=True)  # fmt: skip
    _label_time_plot(ax, "Coefficient", title)
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax).set_label("value")
    return ax


def audio_figure(
    y,
    *,
    sr: float,
    n_fft: int = F.N_FFT,
    hop_length: int = F.HOP_LENGTH,
    win_length: int = F.WIN_LENGTH,
    window: str = "hamming",
    n_mels: int = F.N_MELS,
    n_mfcc: int = F.N_MFCC,
    title: str | None = None,
) -> Figure:
    """Waveform, spectrogram, mel spectrogram and MFCC of one clip, stacked, sharing time."""
    y_np = _mono(y)
    sr = check_positive_number(sr, "sr")
    y_t = torch.from_numpy(y_np)
    frames = dict(n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window)
    S = F.spectrogram(y_t, **frames)
    M = F.melspectrogram(S=S, sr=sr, n_mels=n_mels)
    C = F.mfcc(S=F.power_to_db(M), n_mfcc=n_mfcc)
    fig = Figure(figsize=(9, 10), layout="constrained")
    axes = fig.subplots(4, 1, sharex=True)
    plot_waveform(y_np, sr=sr, ax=axes[0])
    plot_spectrogram(F.power_to_db(S, ref=torch.max), sr=sr, hop_length=hop_length, ax=axes[1],
                     title=f"Spectrogram ({window} window, {win_length} samples)")  # fmt: skip
    plot_melspectrogram(F.power_to_db(M, ref=torch.max), sr=sr, hop_length=hop_length,
                        ax=axes[2], title=f"Mel spectrogram ({n_mels} bands)")  # fmt: skip
    plot_mfcc(C, sr=sr, hop_length=hop_length, ax=axes[3], title=f"MFCC ({n_mfcc})")
    for ax in axes[:-1]:
        ax.set_xlabel("")
    axes[0].set_xlim(0, len(y_np) / sr)
    if title:
        fig.suptitle(title)
    return fig
