"""Figures that explain what a representation or a model does: audio views and attention."""

from xmodal.viz.attention import plot_caption_attention, upsample_attention
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
    "plot_caption_attention",
    "plot_melspectrogram",
    "plot_mfcc",
    "plot_power_spectrum",
    "plot_spectrogram",
    "plot_waveform",
    "upsample_attention",
]
