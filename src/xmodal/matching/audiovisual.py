"""An image and a sound in one space: audio–visual correspondence (Arandjelović &
Zisserman, "Look, Listen and Learn", 2017) and, as an option of the same model, CLIP's
symmetric InfoNCE over images and sounds.

:class:`AudioVisualEmbedding` has two streams, a :mod:`xmodal.vision` encoder and an
:mod:`xmodal.audio.encoders` encoder. Each stream is pooled and projected to ``embed_dim``
and L2-normalised. With ``objective="avc"``, L3-Net's fusion head (the two vectors
concatenated, two fully connected layers) says whether a sound belongs to a frame.

- :func:`correspondence_pairs`: L3's training pairs: each frame with its own sound and
  with the sound of another clip of the batch, never its own.
- :func:`avc_loss`: the cross entropy of the fusion head on those pairs.
- With InfoNCE the loss is :func:`xmodal.nn.info_nce_loss` on the two batches of vectors.

Example::

    model = AudioVisualEmbedding(create_encoder("small-cnn"), create_audio_encoder("vggish"))
    img, aud = model.embed_images(images), model.embed_audio(waves)   # (B, D) unit vectors
    sims = aud @ img.T                                              # sound → frame search
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import check_choice, check_positive_int
from xmodal.errors import ParameterError
from xmodal.nn.losses import LogitScale

__all__ = [
    "AV_OBJECTIVES",
    "AudioVisualEmbedding",
    "avc_loss",
    "correspondence_pairs",
    "nearest_place",
]

AV_OBJECTIVES = ("infonce", "avc")


class AudioVisualEmbedding(nn.Module):
    """Two streams, an image encoder and an audio encoder, projected into one unit sphere.

    ``embed_images(images (B, 3, H, W)) -> (B, D)``; ``embed_audio(wave (B, T), lengths) ->
    (B, D)``. Both are L2-normalised, so a dot product is a cosine. With
    ``objective="infonce"``, ``logit_scale`` is InfoNCE's learned temperature; with
    ``objective="avc"``, ``correspond(img, aud) -> (B, 2)`` holds the fusion head's logits
    (class 1: the sound belongs to the frame).
    """

    def __init__(
        self,
        image_encoder: nn.Module,
        audio_encoder: nn.Module,
        *,
        embed_dim: int = 128,
        objective: str = "infonce",
        fusion_hidden: int = 128,
    ) -> None:
        super().__init__()
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.objective = check_choice(objective, "objective", AV_OBJECTIVES)
        self.image = image_encoder
        self.audio = audio_encoder
        self.image_proj = nn.Linear(image_encoder.feature_info.channels, embed_dim)
        self.audio_proj = nn.Linear(audio_encoder.feature_info.channels, embed_dim)
        if self.objective == "infonce":
            self.logit_scale = LogitScale()
        else:  # L3-Net: concatenation, fc, ReLU, fc to two classes
            hidden = check_positive_int(fusion_hidden, "fusion_hidden")
            self.fusion = nn.Sequential(
                nn.Linear(2 * embed_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2)
            )
        self.embed_dim = embed_dim

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        features = self.image.forward_features(images)
        return F.normalize(self.image_proj(self.image.forward_head(features)), dim=-1)

    def embed_audio(self, wave: torch.Tensor, lengths=None) -> torch.Tensor:
        return F.normalize(self.audio_proj(self.audio(wave, lengths)), dim=-1)

    def correspond(self, img: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
        if self.objective != "avc":
            raise ParameterError(
                f"correspond needs objective='avc' (the fusion head). Found: {self.objective!r}"
            )
        return self.fusion(torch.cat([img, aud], dim=-1))


def correspondence_pairs(batch_size: int, generator: torch.Generator | None = None):
    """L3's pairs for a batch of ``batch_size`` clips: ``(frame, sound, label)`` index
    tensors of length ``2 * batch_size``; each frame once with its own sound (label 1)
    and once with the sound of another clip (label 0), a random other one (never its
    own: a shift of 1 .. B-1 along a random permutation).

        >>> f, s, y = correspondence_pairs(4, torch.Generator().manual_seed(0))
        >>> bool(((f == s) == (y == 1)).all())
        True
    """
    b = check_positive_int(batch_size, "batch_size")
    if b < 2:
        raise ParameterError(f"correspondence needs at least 2 clips per batch. Found: {b}")
    frames = torch.arange(b)
    order = torch.randperm(b, generator=generator)
    shift = int(torch.randint(1, b, (1,), generator=generator))
    other = torch.empty(b, dtype=torch.long)
    other[order] = order.roll(shift)  # a derangement: nobody keeps their own
    labels = torch.cat([torch.ones(b, dtype=torch.long), torch.zeros(b, dtype=torch.long)])
    return torch.cat([frames, frames]), torch.cat([frames, other]), labels


def avc_loss(model: AudioVisualEmbedding, img: torch.Tensor, aud: torch.Tensor, pairs):
    """The audio–visual correspondence loss: cross entropy of ``model.correspond`` on the
    ``pairs`` of :func:`correspondence_pairs`; ``(loss, accuracy)``."""
    frames, sounds, labels = (p.to(img.device) for p in pairs)
    logits = model.correspond(img[frames], aud[sounds])
    accuracy = (logits.argmax(1) == labels).float().mean()
    return F.cross_entropy(logits, labels), float(accuracy)


def nearest_place(sounds: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """The class of each vector of ``sounds`` ``(N, D)``: the row of ``prototypes``
    ``(P, D)`` of the highest dot product (a cosine, for unit vectors); a prototype row of
    NaN (a class without examples) is never chosen."""
    if sounds.ndim != 2 or prototypes.ndim != 2 or sounds.shape[1] != prototypes.shape[1]:
        raise ParameterError(
            f"sounds (N, D) and prototypes (P, D) must share D. Found {tuple(sounds.shape)} "
            f"and {tuple(prototypes.shape)}"
        )
    sims = (sounds @ prototypes.nan_to_num(0.0).T).masked_fill(
        prototypes.isnan().any(1)[None, :], float("-inf")
    )
    return sims.argmax(1)
