"""The audio figures: right axes, units and extents, and the data they claim to show."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from xmodal.audio import functional as F
from xmodal.errors import ParameterError
from xmodal.viz import (
    audio_figure,
    plot_melspectrogram,
    plot_mfcc,
    plot_power_spectrum,
    plot_spectrogram,
    plot_waveform,
)


def test_waveform_axes_span_the_clip(speech, sr):
    ax = plot_waveform(speech, sr=sr)
    x, y = ax.lines[0].get_data()
    assert ax.get_xlabel() == "Time (s)"
    assert ax.get_xlim() == pytest.approx((0, len(speech) / sr))
    np.testing.assert_array_equal(y, speech)
    assert x[-1] == pytest.approx((len(speech) - 1) / sr)


def test_power_spectrum_of_a_tone_peaks_at_its_frequency(tone, sr):
    ax = plot_power_spectrum(tone, sr=sr, time=0.5)
    freqs, db = ax.lines[0].get_data()
    assert ax.get_xlabel() == "Frequency (Hz)" and ax.get_ylabel() == "Power (dB)"
    assert freqs[np.argmax(db)] == pytest.approx(1000.0)
    assert db.max() == pytest.approx(0.0) and db.min() >= -80.0 - 1e-9
    assert freqs[-1] == pytest.approx(sr / 2)
    with pytest.raises(ParameterError, match="time must be in"):
        plot_power_spectrum(tone, sr=sr, time=5.0)


def test_spectrogram_has_hz_axis_time_axis_and_db_colorbar(chirp, sr):
    S_db = F.power_to_db(F.spectrogram(torch.from_numpy(chirp)), ref=torch.max)
    ax = plot_spectrogram(S_db, sr=sr)
    assert ax.get_ylabel() == "Frequency (Hz)" and ax.get_xlabel() == "Time (s)"
    assert ax.get_ylim() == pytest.approx((0, sr / 2))
    mesh = ax.collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(S_db.shape), S_db.numpy())
    colorbars = [a for a in ax.figure.axes if a is not ax]
    assert len(colorbars) == 1 and colorbars[0].get_ylabel() == "dB"
    # The chirp rises: the loudest bin of a late frame is above that of an early one.
    assert S_db[:, -20].argmax() > S_db[:, 20].argmax()


def test_melspectrogram_is_mel_spaced_with_hz_ticks(speech, sr):
    M_db = F.power_to_db(F.melspectrogram(torch.from_numpy(speech), sr=sr), ref=torch.max)
    ax = plot_melspectrogram(M_db, sr=sr)
    assert ax.get_yscale() == "function"
    ticks = list(ax.get_yticks())
    assert {500.0, 1000.0, 4000.0, 8000.0} <= set(ticks)
    # On the mel scale the 1-2 kHz octave takes less room than 0-1 kHz (linear below 1 kHz).
    to_display = ax.transData.transform
    y0, y1, y2 = (to_display([(0, f)])[0, 1] for f in (0.0, 1000.0, 2000.0))
    assert (y2 - y1) < (y1 - y0)
    assert ax.get_ylim() == pytest.approx((0, sr / 2))


def test_mfcc_plot_shows_every_coefficient(speech, sr):
    C = F.mfcc(torch.from_numpy(speech), sr=sr, n_mfcc=20)
    ax = plot_mfcc(C, sr=sr)
    assert np.asarray(ax.collections[0].get_array()).size == C.numel()
    vmin, vmax = ax.collections[0].get_clim()
    assert vmin == -vmax == -float(C[1:].abs().max())


def test_audio_figure_stacks_four_views_sharing_time(speech, sr, tmp_path):
    fig = audio_figure(speech, sr=sr, title="speech")
    assert isinstance(fig, Figure)
    main_axes = [a for a in fig.axes if a.get_title()]
    assert [a.get_title().split(" (")[0] for a in main_axes] == [
        "Waveform", "Spectrogram", "Mel spectrogram", "MFCC",
    ]  # fmt: skip
    for ax in main_axes:
        assert ax.get_xlim() == pytest.approx((0, len(speech) / sr))
    out = tmp_path / "fig.png"
    fig.savefig(out, dpi=30)
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_plots_reject_batches_and_bad_values(speech, sr):
    with pytest.raises(ParameterError, match=r"one clip of shape \(time,\)"):
        plot_waveform(np.stack([speech, speech]), sr=sr)
    with pytest.raises(ParameterError, match=r"one clip of shape \(freq, frames\)"):
        plot_spectrogram(torch.zeros(2, 257, 10), sr=sr)
    with pytest.raises(ParameterError, match="sr must be a finite number > 0"):
        plot_waveform(speech, sr=0)
    with pytest.raises(ParameterError, match="non-finite"):
        plot_waveform(np.array([0.0, np.nan, 0.1]), sr=sr)
