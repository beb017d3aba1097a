"""Looking to Listen (Ephrat et al., "Looking to Listen at the Cocktail Party", SIGGRAPH
2018): separate the speakers of a mixture given their faces, by complex ratio masks.

:class:`LookingToListen` predicts one complex mask per speaker from the power-law
compressed mixture STFT and, with ``visual=True``, one face track per speaker; the
separated spectrogram of speaker ``s`` is ``mask_s * mixture`` and its waveform the iSTFT
(:meth:`LookingToListen.separate`). With ``visual=False`` it is the paper's audio-only
baseline: the same audio stream, BLSTM and heads, trained with permutation-invariant
training (:func:`separation_batch_loss` with ``permutation_invariant=True``).

Architecture (ours at the defaults / the paper's):

====================  ======================================  ==================================
piece                 ours (defaults, CPU-sized)              paper
====================  ======================================  ==================================
audio input           compressed STFT (p = 0.3), 2 channels   same, 257 bins x 100 frames/s
                      (real, imag), 257 bins, 100 frames/s    (3 s chunks)
audio stream          7 conv2d, 32 ch, BN + ReLU:             15 conv2d, 96 ch, BN + ReLU:
                      1x7, 7x1, 5x5 dilated (time, freq)      1x7, 7x1, 5x5 dilated (time, freq)
                      1x1, 2x1, 4x1, 2x2, 4x4                 1x1, 2x1 ... 32x1, 1x1, 2x2 ... 32x32
                      then 1x1 conv to 8 ch (8 x 257)         then 1x1 conv to 8 ch (8 x 257)
face features         ``small-cnn`` on raw 64x64 frames,      precomputed FaceNet embeddings
                      trained end to end, pooled to 32        (1792-d, frozen) of face crops
face stream           3 conv1d, 32 ch, kernel 5,              6 conv1d, 256 ch, kernel 7,
                      dilations 1, 2, 4                       dilations 1, 1, 2, 4, 8, 16
upsampling            nearest, 25 fps -> 100 frames/s (x4)    nearest, 25 fps -> 100 (x4)
fusion                per speaker: [audio, own face,          [audio, face 1, ..., face S]
                      mean of the other faces]                concatenated in order
BLSTM                 64 units each way                       400 units each way
FC                    2 x 128, ReLU                           3 x 600, ReLU
masks                 complex, ``bound_mask`` (K=10, C=0.1)   complex, sigmoid
====================  ======================================  ==================================

Two deliberate departures, both for what a user relies on:

- Speaker order follows the faces *exactly*. The paper concatenates the S face streams in
  order and outputs the S masks from one joint head, so swapping two faces only swaps
  the masks to the extent that training taught it. Here every speaker goes through the
  same BLSTM and head with ``[audio, its face, the mean of the other faces]``, so swapping
  face tracks swaps the masks by construction (tested), and the visual model never needs
  PIT. The audio-only model has no faces to key on and keeps one joint head of S masks.
- The masks are bounded with Williamson's ``K tanh(C x / 2)`` (:func:`~xmodal.audio.
  separation.bound_mask`: each part in (-10, 10)) rather than a sigmoid: a complex ratio
  mask ``S / Y`` has negative parts wherever the source's phase differs from the
  mixture's, and magnitudes above 1 wherever the sources partly cancel; a sigmoid can
  represent neither.

Example::

    model = LookingToListen()                              # visual, 2 speakers
    waves, masks, estimates = model.separate(batch["mixture"], batch["frames"])
    loss, parts = separation_batch_loss(model, batch["mixture"], batch["sources"],
                                        batch["frames"], permutation_invariant=False)
"""

from __future__ import annotations

import torch
from torch import nn

from xmodal._checks import as_signal, check_bool, check_int_vector, check_positive_int
from xmodal.audio.functional.fourier import istft, stft
from xmodal.audio.functional.scale import power_law_compress
from xmodal.audio.separation import (
    apply_complex_mask,
    bound_mask,
    pit_loss,
    separation_loss,
    unbound_mask,
)
from xmodal.errors import ParameterError
from xmodal.vision.encoders import create_encoder

__all__ = ["AUDIO_LAYERS", "PAPER_AUDIO_LAYERS", "LookingToListen", "separation_batch_loss"]

# (kernel (time, freq), dilation (time, freq)) per audio conv layer. The first two are
# the paper's 1x7 and 7x1; the rest 5x5, dilated first in time, then in time and frequency.
AUDIO_LAYERS = (
    ((1, 7), (1, 1)),
    ((7, 1), (1, 1)),
    ((5, 5), (1, 1)),
    ((5, 5), (2, 1)),
    ((5, 5), (4, 1)),
    ((5, 5), (2, 2)),
    ((5, 5), (4, 4)),
)
# The paper's 14 layers before its 1x1 reduction (Table 1 of Ephrat et al.), for reference
# and for ``LookingToListen(audio_layers=PAPER_AUDIO_LAYERS, audio_channels=96, ...)``.
PAPER_AUDIO_LAYERS = (
    ((1, 7), (1, 1)),
    ((7, 1), (1, 1)),
    *(((5, 5), (d, 1)) for d in (1, 2, 4, 8, 16, 32)),
    *(((5, 5), (d, d)) for d in (1, 2, 4, 8, 16, 32)),
)


def _conv2d_block(c_in: int, c_out: int, kernel, dilation) -> nn.Sequential:
    # Inputs are (B, C, F, T); layers are specified as (time, freq) like the paper's table.
    k = (kernel[1], kernel[0])
    d = (dilation[1], dilation[0])
    pad = tuple(di * (ki - 1) // 2 for ki, di in zip(k, d, strict=True))
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, dilation=d, padding=pad, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _conv1d_block(c_in: int, c_out: int, kernel: int, dilation: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(
            c_in, c_out, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2, bias=False
        ),
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True),
    )


def _check_layers(layers) -> tuple:
    try:
        out = tuple(((int(k[0]), int(k[1])), (int(d[0]), int(d[1]))) for k, d in layers)
    except (TypeError, ValueError, IndexError) as err:
        raise ParameterError(
            f"audio_layers must be ((kernel_t, kernel_f), (dilation_t, dilation_f)) pairs. "
            f"Found: {layers!r}"
        ) from err
    for k, d in out:
        if min(k + d) < 1 or k[0] % 2 == 0 or k[1] % 2 == 0:
            raise ParameterError(
                f"audio_layers need odd kernels >= 1 and dilations >= 1 (so that 'same' "
                f"padding keeps the shape). Found: kernel {k}, dilation {d}"
            )
    if not out:
        raise ParameterError("audio_layers must hold at least one layer. Found: ()")
    return out


class LookingToListen(nn.Module):
    """Audio-visual speech separation by complex masks (see the module for the table of
    our sizes against the paper's).

    Args:
        n_speakers: S, the number of speakers (and of face tracks), >= 1.
        visual: use the faces; False gives the audio-only baseline (train it with PIT).
        n_freq: STFT bins F; the STFT has ``n_fft = 2 (F - 1)`` (257 → 512, the paper's).
        sample_rate: Hz (16000, the paper's).
        hop_length, win_length: STFT hop and window in samples (160 and 400: 10 ms and
            25 ms at 16 kHz, the paper's; 100 STFT frames per second).
        fps: face-track frame rate (25, the paper's): video frame ``floor(t * hop / sr *
            fps)`` is shown at STFT frame ``t`` (nearest-neighbour upsampling).
        power: power-law compression of the network's input (0.3, the paper's).
        audio_channels: conv channels of the audio stream (paper 96).
        audio_layers: ``((kernel_t, kernel_f), (dilation_t, dilation_f))`` per layer
            (default :data:`AUDIO_LAYERS`, 7 layers; paper :data:`PAPER_AUDIO_LAYERS`, 14).
        audio_reduced_channels: the 1x1 conv that ends the audio stream (8, as the paper:
            ``8 x F`` features per frame).
        visual_channels: the ``small-cnn`` face encoder's width, and the face stream's.
        visual_kernel, visual_dilations: the face stream's temporal convs (paper: 7 and
            ``(1, 1, 2, 4, 8, 16)`` with 256 channels).
        lstm_hidden: BLSTM units each way (paper 400).
        fc_sizes: hidden sizes of the fully connected layers (paper ``(600, 600, 600)``).

    Shapes: ``forward(mixture_spec (B, F, T) complex, faces (B, S, Fv, 3, H, W))`` →
    masks ``(B, S, F, T, 2)`` real, (real, imaginary) in (-10, 10).

    Face tracks (``faces``): uint8 in [0, 255] or float in [0, 1], 64x64 for ``small-cnn``.
    A track must cover the audio: STFT frame ``T - 1`` needs video frame
    ``n = floor((T - 1) hop / sr * fps)``. A track of ``n`` frames (one short, which is
    what a centred STFT of a clip of exactly ``n / fps`` seconds asks for) is extended by
    repeating its last frame; a shorter one raises :class:`ParameterError`. Frames beyond
    the audio are ignored.

    >>> model = LookingToListen()
    >>> Y = stft(torch.randn(1, 16000), n_fft=512, hop_length=160, win_length=400)
    >>> model(Y, torch.zeros(1, 2, 25, 3, 64, 64, dtype=torch.uint8)).shape
    torch.Size([1, 2, 257, 101, 2])
    """

    def __init__(
        self,
        *,
        n_speakers: int = 2,
        visual: bool = True,
        n_freq: int = 257,
        sample_rate: int = 16000,
        hop_length: int = 160,
        win_length: int = 400,
        fps: int = 25,
        power: float = 0.3,
        audio_channels: int = 32,
        audio_layers=AUDIO_LAYERS,
        audio_reduced_channels: int = 8,
        visual_channels: int = 32,
        visual_kernel: int = 5,
        visual_dilations: tuple[int, ...] = (1, 2, 4),
        lstm_hidden: int = 64,
        fc_sizes: tuple[int, ...] = (128, 128),
    ) -> None:
        super().__init__()
        self.n_speakers = check_positive_int(n_speakers, "n_speakers")
        self.visual = check_bool(visual, "visual")
        self.n_freq = check_positive_int(n_freq, "n_freq", minimum=2)
        self.n_fft = 2 * (self.n_freq - 1)
        self.sample_rate = check_positive_int(sample_rate, "sample_rate")
        self.hop_length = check_positive_int(hop_length, "hop_length")
        self.win_length = check_positive_int(win_length, "win_length")
        if self.win_length > self.n_fft:
            raise ParameterError(
                f"win_length must be <= n_fft = 2 (n_freq - 1) = {self.n_fft}. "
                f"Found: {self.win_length}"
            )
        self.fps = check_positive_int(fps, "fps")
        if isinstance(power, bool) or not isinstance(power, (int, float)) or power <= 0:
            raise ParameterError(f"power must be a number > 0. Found: {power!r}")
        self.power = float(power)
        c_a = check_positive_int(audio_channels, "audio_channels")
        c_r = check_positive_int(audio_reduced_channels, "audio_reduced_channels")
        layers = _check_layers(audio_layers)
        hidden = check_positive_int(lstm_hidden, "lstm_hidden")
        fc_sizes = tuple(check_positive_int(h, "fc_sizes") for h in fc_sizes)

        blocks, c_in = [], 2
        for kernel, dilation in layers:
            blocks.append(_conv2d_block(c_in, c_a, kernel, dilation))
            c_in = c_a
        blocks.append(_conv2d_block(c_a, c_r, (1, 1), (1, 1)))
        self.audio_stream = nn.Sequential(*blocks)
        fused = c_r * self.n_freq

        if self.visual:
            c_v = check_positive_int(visual_channels, "visual_channels", minimum=4)
            k_v = check_positive_int(visual_kernel, "visual_kernel")
            if k_v % 2 == 0:
                raise ParameterError(f"visual_kernel must be odd. Found: {k_v}")
            dilations = tuple(check_positive_int(d, "visual_dilations") for d in visual_dilations)
            self.face_encoder = create_encoder("small-cnn", channels=c_v)
            self.face_stream = nn.Sequential(*(_conv1d_block(c_v, c_v, k_v, d) for d in dilations))
            # Own face and the mean of the others: symmetric in the others, so the model
            # is equivariant to the order of the face tracks.
            fused += 2 * c_v
        else:
            self.face_encoder = None
            self.face_stream = None

        self.blstm = nn.LSTM(fused, hidden, batch_first=True, bidirectional=True)
        fc, width = [], 2 * hidden
        for h in fc_sizes:
            fc += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        self.fc = nn.Sequential(*fc)
        # Visual: one mask per (speaker, pass); audio-only: all S masks from one pass.
        n_masks = 1 if self.visual else self.n_speakers
        self.mask_head = nn.Linear(width, n_masks * self.n_freq * 2)
        with torch.no_grad():
            # Start every estimate at mixture / S (real part 1/S, imaginary 0): training
            # begins from the mixture's even split instead of silence.
            self.mask_head.weight.mul_(0.1)
            bias = self.mask_head.bias.view(n_masks, self.n_freq, 2)
            bias.zero_()
            bias[..., 0] = unbound_mask(torch.tensor([1.0 / self.n_speakers])).item()

    # ------------------------------------------------------------------ helpers

    def stft(self, y: torch.Tensor) -> torch.Tensor:
        """Waveform ``(..., time)`` → complex ``(..., n_freq, frames)`` with this model's
        framing (Hamming window, centred)."""
        return stft(y, n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length)

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Complex ``(..., n_freq, frames)`` → waveform ``(..., length)``."""
        return istft(spec, n_fft=self.n_fft, hop_length=self.hop_length,
                     win_length=self.win_length, length=length)  # fmt: skip

    def video_index(self, n_frames: int, device=None) -> torch.Tensor:
        """``(n_frames,)`` int64: the video frame shown at each STFT frame (floor)."""
        t = torch.arange(n_frames, device=device, dtype=torch.int64)
        return (t * self.hop_length * self.fps) // self.sample_rate

    def _check_faces(self, faces, batch: int, n_frames: int, device) -> torch.Tensor:
        if not self.visual:
            if faces is not None:
                raise ParameterError(
                    "this LookingToListen is audio-only (visual=False); faces must be None. "
                    f"Found: {type(faces).__name__}"
                )
            return None
        if faces is None:
            raise ParameterError(
                "this LookingToListen is audio-visual (visual=True); faces are required, "
                f"(B, {self.n_speakers}, frames, 3, H, W). Found: None"
            )
        if not isinstance(faces, torch.Tensor):
            raise ParameterError(f"faces must be a torch.Tensor. Found: {type(faces).__name__}")
        if faces.dtype != torch.uint8 and faces.dtype not in (torch.float32, torch.float64):
            raise ParameterError(
                f"faces must be uint8 in [0, 255] or float in [0, 1]. Found: {faces.dtype}"
            )
        if faces.ndim != 6 or faces.shape[:2] != (batch, self.n_speakers) or faces.shape[3] != 3:
            raise ParameterError(
                f"faces must be (B, S, frames, 3, H, W) = ({batch}, {self.n_speakers}, "
                f"frames, 3, H, W). Found: {tuple(faces.shape)}"
            )
        needed = int(self.video_index(n_frames)[-1]) + 1
        if faces.shape[2] < needed - 1:
            raise ParameterError(
                f"the face tracks are too short for the audio: {n_frames} STFT frames "
                f"({n_frames * self.hop_length / self.sample_rate:.2f} s) need {needed} "
                f"video frames at {self.fps} fps (one less is padded). "
                f"Found: {faces.shape[2]} video frames"
            )
        # Trim to the frames the audio shows, and repeat the last one when one is missing,
        # before the temporal convs: their output then does not depend on how much video
        # there is past the audio.
        faces = faces[:, :, :needed]
        if faces.shape[2] < needed:
            faces = torch.cat([faces, faces[:, :, -1:]], dim=2)
        return faces

    # ------------------------------------------------------------------ model

    def forward(self, mixture_spec, faces=None) -> torch.Tensor:
        """Masks for every speaker.

        Args:
            mixture_spec: complex ``(B, F, T)``, the mixture's STFT (e.g. :meth:`stft`).
            faces: ``(B, S, Fv, 3, H, W)`` uint8 or float, speaker ``s``'s face track in
                row ``s``; None for the audio-only model.

        Returns:
            ``(B, S, F, T, 2)`` real masks (real, imaginary parts) in (-10, 10); mask
            ``s`` goes with face track ``s``.
        """
        Y = as_signal(mixture_spec, "mixture_spec", min_ndim=3, complex_ok=True, real_ok=False)
        if Y.ndim != 3 or Y.shape[1] != self.n_freq:
            raise ParameterError(
                f"mixture_spec must be complex (B, {self.n_freq}, T). Found: {tuple(Y.shape)}"
            )
        B, F, T = Y.shape
        S = self.n_speakers
        faces = self._check_faces(faces, B, T, Y.device)

        x = torch.view_as_real(power_law_compress(Y, power=self.power))  # (B, F, T, 2)
        x = x.permute(0, 3, 1, 2).to(self.mask_head.weight.dtype)  # (B, 2, F, T)
        a = self.audio_stream(x)  # (B, 8, F, T)
        a = a.flatten(1, 2).transpose(1, 2)  # (B, T, 8F)

        if self.visual:
            Fv = faces.shape[2]
            v = self.face_encoder(faces.flatten(0, 2))  # (B S Fv, Cv)
            v = v.view(B * S, Fv, -1).transpose(1, 2)  # (B S, Cv, Fv)
            v = self.face_stream(v)
            idx = self.video_index(T, device=v.device)
            v = v[:, :, idx].transpose(1, 2).reshape(B, S, T, -1)  # (B, S, T, Cv)
            total = v.sum(dim=1, keepdim=True)
            others = (total - v) / max(S - 1, 1)  # mean of the other speakers' faces
            a = a.unsqueeze(1).expand(B, S, T, a.shape[-1])
            h = torch.cat([a, v, others], dim=-1).flatten(0, 1)  # (B S, T, 8F + 2Cv)
        else:
            h = a  # (B, T, 8F)

        h, _ = self.blstm(h)  # (N, T, 2H)
        m = self.mask_head(self.fc(h))  # (N, T, masks * F * 2)
        m = m.view(B, T, S, F, 2) if not self.visual else m.view(B, S, T, F, 2)
        if not self.visual:
            m = m.transpose(1, 2)  # (B, S, T, F, 2)
        return bound_mask(m.transpose(2, 3))  # (B, S, F, T, 2)

    def separate(self, mixture, faces=None, lengths=None):
        """Separate waveforms: STFT, masks, masked mixture, iSTFT.

        Args:
            mixture: ``(B, time)`` float waveform at ``sample_rate``.
            faces: as :meth:`forward`.
            lengths: optional ``(B,)`` valid samples per item (a padded batch); the
                waveforms are zero beyond them.

        Returns:
            ``(waves (B, S, time), masks (B, S, F, T, 2), estimates (B, S, F, T)
            complex)``.
        """
        y = as_signal(mixture, "mixture", min_ndim=2)
        if y.ndim != 2:
            raise ParameterError(f"mixture must be (B, time). Found: {tuple(y.shape)}")
        Y = self.stft(y)  # (B, F, T)
        masks = self(Y, faces)
        estimates = apply_complex_mask(Y.unsqueeze(1), masks)  # (B, S, F, T)
        waves = self.istft(estimates, length=y.shape[-1])  # (B, S, time)
        if lengths is not None:
            lengths = check_int_vector(lengths, "lengths", y.shape[0]).to(y.device)
            valid = torch.arange(y.shape[-1], device=y.device) < lengths[:, None]
            waves = waves * valid[:, None, :]
        return waves, masks, estimates


def separation_batch_loss(model: LookingToListen, mixture, sources, faces=None, *,
                          permutation_invariant: bool):  # fmt: skip
    """The Looking to Listen loss of a batch: :func:`~xmodal.audio.separation.
    separation_loss` (compressed spectrogram MSE, p = 0.3) between the masked mixture and
    the sources' STFTs.

    Args:
        model: a :class:`LookingToListen`.
        mixture: ``(B, time)``; sources: ``(B, S, time)`` (zero-padded batches are fine:
            padded bins are 0 in both).
        faces: ``(B, S, Fv, 3, H, W)`` for a visual model (source ``s`` is face ``s``'s),
            None for an audio-only one.
        permutation_invariant: score the best assignment of estimates to sources
            (:func:`~xmodal.audio.separation.pit_loss`): True for the audio-only model,
            False for the visual one, whose order the faces give.

    Returns:
        ``(loss, parts)``: a scalar tensor and ``{"separation": float}`` (and
        ``"swapped"``, the share of items whose best assignment is not the identity,
        under PIT).
    """
    if not isinstance(model, LookingToListen):
        raise ParameterError(f"model must be a LookingToListen. Found: {type(model).__name__}")
    permutation_invariant = check_bool(permutation_invariant, "permutation_invariant")
    y = as_signal(mixture, "mixture", min_ndim=2)
    s = as_signal(sources, "sources", min_ndim=3)
    if y.ndim != 2 or s.ndim != 3 or s.shape[0] != y.shape[0] or s.shape[-1] != y.shape[-1] \
            or s.shape[1] != model.n_speakers:  # fmt: skip
        raise ParameterError(
            f"mixture must be (B, time) and sources (B, {model.n_speakers}, time). "
            f"Found: {tuple(y.shape)} and {tuple(s.shape)}"
        )
    Y = model.stft(y)
    targets = model.stft(s)  # (B, S, F, T)
    masks = model(Y, faces)
    estimates = apply_complex_mask(Y.unsqueeze(1), masks)
    parts: dict[str, float] = {}
    if permutation_invariant:

        def per_item(est, tgt):
            return separation_loss(est, tgt, p=model.power, reduction="none")

        loss, perm = pit_loss(estimates, targets, loss_fn=per_item)
        identity = torch.arange(model.n_speakers, device=perm.device)
        parts["swapped"] = float((perm != identity).any(dim=1).float().mean())
    else:
        loss = separation_loss(estimates, targets, p=model.power)
    parts["separation"] = float(loss.detach())
    return loss, parts
