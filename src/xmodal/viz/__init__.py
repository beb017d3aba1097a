"""Figures that explain what a representation or a model does (audio views for now)."""

from xmodal.viz.audio import (
    audio_figure,
    plot_melspectrogram,
    plot_mfcc,
    plot_power_spectrum,
    plot_spectrogram,
    plot_waveform,
)

__all__ = [
    "audio_figure",
    "plot_melspectrogram",
    "plot_mfcc",
    "plot_power_spectrum",
    "plot_spectrogram",
    "plot_waveform",
]
