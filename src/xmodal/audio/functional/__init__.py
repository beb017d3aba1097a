"""The sound front end as pure functions on tensors of shape ``(..., time)``.

Waveform -> STFT (Hamming window by default) -> power spectrum -> spectrogram -> mel
spectrogram -> log (dB) -> MFCC, and back to a waveform with the inverse STFT or
Griffin-Lim. Names and parameters are the ones librosa users know; the defaults are the
speech-processing ones: 16 kHz, a 25 ms Hamming window (``win_length=400``) zero-padded to
``n_fft=512``, a 10 ms hop (``hop_length=160``), 80 mel bands and 13 MFCCs. Set any of
them to match librosa (``n_fft=2048, win_length=2048, hop_length=512, window="hann"``).

Every function takes a float32 or float64 tensor (or a numpy array) with any number of
leading batch dimensions, runs on the tensor's device, and is differentiable wherever
the mathematics is. Bad input raises :class:`~xmodal.errors.ParameterError` naming the
parameter and the value.

Example:
    >>> import torch
    >>> from xmodal.audio import functional as F
    >>> y = torch.sin(2 * torch.pi * 440 * torch.arange(16000) / 16000)
    >>> F.mfcc(y=y, sr=16000).shape        # (n_mfcc, frames)
    torch.Size([13, 101])

One module per topic: :mod:`~xmodal.audio.functional.fourier` (windows, STFT, inverse STFT,
spectrogram), :mod:`~xmodal.audio.functional.mel` (mel scale, filterbanks, mel
spectrogram), :mod:`~xmodal.audio.functional.cepstrum` (DCT, MFCC, deltas),
:mod:`~xmodal.audio.functional.phase` (Griffin-Lim, spectral convergence) and
:mod:`~xmodal.audio.functional.scale` (decibels, mu-law, power-law). Every name is
importable from here.
"""

from xmodal.audio.functional.cepstrum import N_MFCC as N_MFCC
from xmodal.audio.functional.cepstrum import _dct_matrix64 as _dct_matrix64
from xmodal.audio.functional.cepstrum import dct_matrix, delta, mfcc
from xmodal.audio.functional.fourier import _PAD_MODES as _PAD_MODES
from xmodal.audio.functional.fourier import HOP_LENGTH as HOP_LENGTH
from xmodal.audio.functional.fourier import N_FFT as N_FFT
from xmodal.audio.functional.fourier import SR as SR
from xmodal.audio.functional.fourier import WIN_LENGTH as WIN_LENGTH
from xmodal.audio.functional.fourier import _check_frames as _check_frames
from xmodal.audio.functional.fourier import _check_length_for as _check_length_for
from xmodal.audio.functional.fourier import _check_overlap as _check_overlap
from xmodal.audio.functional.fourier import _spectrogram as _spectrogram
from xmodal.audio.functional.fourier import get_window, istft, spectrogram, stft
from xmodal.audio.functional.mel import N_MELS as N_MELS
from xmodal.audio.functional.mel import _melspectrogram as _melspectrogram
from xmodal.audio.functional.mel import (
    fft_frequencies,
    hz_to_mel,
    mel_filterbank,
    mel_frequencies,
    mel_to_hz,
    melspectrogram,
)
from xmodal.audio.functional.phase import griffinlim, spectral_convergence
from xmodal.audio.functional.scale import _power_to_db as _power_to_db
from xmodal.audio.functional.scale import (
    amplitude_to_db,
    db_to_amplitude,
    db_to_power,
    mu_law_decode,
    mu_law_encode,
    power_law_compress,
    power_law_decompress,
    power_to_db,
)

__all__ = [
    "amplitude_to_db",
    "db_to_amplitude",
    "db_to_power",
    "dct_matrix",
    "delta",
    "fft_frequencies",
    "get_window",
    "griffinlim",
    "hz_to_mel",
    "istft",
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
    "spectral_convergence",
    "spectrogram",
    "stft",
]
