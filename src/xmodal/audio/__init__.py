"""Sound as a representation: waveform, STFT, power spectrum, spectrogram, mel, MFCC, and back.

``xmodal.audio.functional`` holds the pure functions, ``xmodal.audio.transforms`` their
``nn.Module`` wrappers, ``xmodal.audio.io`` file reading and writing. The common names
are re-exported here::

    from xmodal import audio
    y, sr = audio.load("speech.wav", sr=16000)
    M = audio.mfcc(y=y, sr=sr)                  # (13, frames)
"""

from xmodal.audio import functional
from xmodal.audio.functional import *  # noqa: F403 - the names of functional.__all__
from xmodal.audio.io import available_formats, info, load, resample, save
from xmodal.audio.transforms import MFCC, GriffinLim, MelSpectrogram, Spectrogram

__all__ = [
    *functional.__all__,
    "MFCC",
    "GriffinLim",
    "MelSpectrogram",
    "Spectrogram",
    "available_formats",
    "info",
    "load",
    "resample",
    "save",
]
