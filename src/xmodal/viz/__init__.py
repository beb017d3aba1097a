"""Figures that explain what a representation or a model does: audio views, attention maps,
word-vector projections and grids of generated images."""

from xmodal.viz.attention import plot_caption_attention, upsample_attention
from xmodal.viz.audio import (
    audio_figure,
    plot_melspectrogram,
    plot_mfcc,
    plot_power_spectrum,
    plot_spectrogram,
    plot_waveform,
)
from xmodal.viz.figure import FIGURE_DPI, save_figure, save_figures, unique_stems
from xmodal.viz.grid import image_grid, plot_image_grid
from xmodal.viz.projection import plot_projection, project_words
from xmodal.viz.transformer_attention import plot_attention_map

__all__ = [
    "FIGURE_DPI",
    "audio_figure",
    "image_grid",
    "plot_attention_map",
    "plot_caption_attention",
    "plot_image_grid",
    "plot_melspectrogram",
    "plot_mfcc",
    "plot_power_spectrum",
    "plot_projection",
    "plot_spectrogram",
    "plot_waveform",
    "project_words",
    "save_figure",
    "save_figures",
    "unique_stems",
    "upsample_attention",
]
