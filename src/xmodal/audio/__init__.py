"""Sound as a representation: waveform, STFT, power spectrum, spectrogram, mel, MFCC, and back.

``xmodal.audio.functional`` holds the pure functions, ``xmodal.audio.transforms`` their
``nn.Module`` wrappers, ``xmodal.audio.io`` file reading and writing. The common names
are re-exported here::

    from xmodal import audio
    y, sr = audio.load("speech.wav", sr=16000)
    M = audio.mfcc(y=y, sr=sr)                  # (13, frames)
"""

from xmodal.audio.functional import (
    amplitude_to_db,
    db_to_amplitude,
    db_to_power,
    dct_matrix,
    delta,
    fft_frequencies,
    get_window,
    griffinlim,
    hz_to_mel,
    istft,
    mel_filterbank,
    mel_frequencies,
    mel_to_hz,
    melspectrogram,
    mfcc,
    mu_law_decode,
    mu_law_encode,
    power_law_compress,
    power_law_decompress,
    power_to_db,
    spectral_convergence,
    spectrogram,
    stft,
)
from xmodal.audio.io import available_formats, info, load, resample, save
from xmodal.audio.transforms import MFCC, GriffinLim, MelSpectrogram, Spectrogram

__all__ = [
    "MFCC",
    "GriffinLim",
    "MelSpectrogram",
    "Spectrogram",
    "amplitude_to_db",
    "available_formats",
    "db_to_amplitude",
    "db_to_power",
    "dct_matrix",
    "delta",
    "fft_frequencies",
    "get_window",
    "griffinlim",
    "hz_to_mel",
    "info",
    "istft",
    "load",
    "mel_filterbank",
    "mel_frequencies",
    "mel_to_hz",
    "melspectrogram",
    "mfcc",
    "mu_law_decode",
    "mu_law_encode",
    "power_law_compress",
    "power_law_decompress",
    "power_to_db",
    "resample",
    "save",
    "spectral_convergence",
    "spectrogram",
    "stft",
]
