"""Where in the picture is the sound? Sound source localization (Senocak et al.,
"Learning to Localize Sound Source in Visual Scenes", CVPR 2018), with the hard negatives
of LVS (Chen et al., "Localizing Visual Sounds the Hard Way", CVPR 2021).

:class:`SoundSourceLocalizer` has a visual stream that ends in a spatial map of unit
vectors ``(B, D, h, w)`` and an audio stream that ends in one unit vector ``(B, D)``. The
localization map is their cosine at every position, ``(B, h, w)`` in [-1, 1]; the
attention is its softmax over positions at temperature ``attention_temperature``, and
the attended visual feature ``z = sum(attention * v)`` is what the sound is matched
against (Senocak's ``z``; ``z . a`` is the map's attention-weighted mean).

Objectives (:func:`localization_losses`):

- ``unsupervised``: each sound against every image of the batch, InfoNCE (cross entropy
  over the images at ``temperature``, its own image the positive). The score of sound
  ``i`` with image ``j`` is the attention-weighted mean of its map over image ``j``
  (Senocak's pooling) **less the map's mean over the whole image** (``background=
  "contrast"``, the default): the attended region is held against the image's own
  background, which makes up most of it, so a map scores only where it stands out. The
  world needs it: a clip's sound carries its place's ambience, and a plain score (``none``)
  or LVS's tri-map (``trimap``: the map's mean where it is below ``background_threshold``
  as one more negative logit) matches the ambience to the background and lights
  everything but the objects (pointing 0.3% with the tri-map; docs/localize.md).
- ``supervised``: Senocak's supervision: the cross entropy between the ground-truth
  sounding mask, pooled to the map's grid and normalised to sum 1, and the attention.
- ``semi-supervised``: both, the supervised term on the labelled clips of a batch only,
  weighted by ``supervised_weight``.

Example::

    model = SoundSourceLocalizer(create_encoder("small-cnn"), create_audio_encoder("vggish"))
    maps = model(images, waves)          # (B, h, w) cosines
    loss, parts = localization_losses(model, images, waves, masks, labelled,
                                      objective="semi-supervised")
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import check_choice, check_positive_int, check_positive_number
from xmodal.errors import ParameterError

__all__ = [
    "BACKGROUNDS",
    "OBJECTIVES",
    "SUPERVISIONS",
    "SoundSourceLocalizer",
    "attend",
    "localization_losses",
    "mask_targets",
    "upsample_maps",
]

OBJECTIVES = ("unsupervised", "supervised", "semi-supervised")
BACKGROUNDS = ("contrast", "trimap", "none")

SUPERVISIONS = ("attention", "mask")
# The supervised "mask" term's logit is the cosine over this width: a cosine of 0.3 says
# "source" at 95%.
_MASK_WIDTH = 0.1
# LVS's tri-map: the soft step's width (tau) in cosine units.
_TRIMAP_WIDTH = 0.03


class SoundSourceLocalizer(nn.Module):
    """A visual map and an audio vector in one space; their cosine is the localization.

    ``image_map(images (B, 3, H, W)) -> (B, D, h, w)`` unit vectors at each position (the
    image encoder's map, two 1x1 convolutions to ``embed_dim``); ``audio_vector(wave (B,
    T)) -> (B, D)`` unit vectors; ``forward(images, wave) -> (B, h, w)``, the cosine of
    each sound with each position of its own image. ``cross_maps`` gives every sound with
    every image, ``(B_audio, B_image, h, w)``. ``map_stride``: pixels per map cell, the
    encoder's stride (None) or a finer stage's (FPN's top-down path onto it).
    """

    def __init__(
        self,
        image_encoder: nn.Module,
        audio_encoder: nn.Module,
        *,
        embed_dim: int = 128,
        attention_temperature: float = 0.1,
        map_stride: int | None = None,
    ) -> None:
        super().__init__()
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.attention_temperature = check_positive_number(
            attention_temperature, "attention_temperature"
        )
        self.image = image_encoder
        self.audio = audio_encoder
        c = image_encoder.feature_info.channels
        self.map_stride = image_encoder.feature_info.stride if map_stride is None else map_stride
        self.lateral = None
        if self.map_stride != image_encoder.feature_info.stride:
            # FPN's top-down path: the final map upsampled onto a finer stage's, which a
            # 1x1 convolution brings to the same width.
            fine = _stage_channels(image_encoder, self.map_stride)
            self.lateral = nn.Conv2d(fine, c, 1)
        # Two layers (ReLU between): the joint space is a non-linear reading of the
        # features, position by position, as the sound's is of its vector.
        self.image_proj = nn.Sequential(
            nn.Conv2d(c, c, 1), nn.ReLU(inplace=True), nn.Conv2d(c, embed_dim, 1)
        )
        self.audio_proj = nn.Sequential(
            nn.Linear(audio_encoder.feature_info.channels, c), nn.ReLU(inplace=True),
            nn.Linear(c, embed_dim),
        )  # fmt: skip
        self.embed_dim = embed_dim

    def image_map(self, images: torch.Tensor) -> torch.Tensor:
        if self.lateral is None:
            mapped = self.image.forward_features(images)
        else:
            stages = self.image.forward_pyramid(images)
            features, fine = stages[max(stages)], stages[self.map_stride]
            coarse = F.interpolate(features, size=fine.shape[-2:], mode="bilinear",
                                   align_corners=False)  # fmt: skip
            mapped = self.lateral(fine) + coarse
        return F.normalize(self.image_proj(mapped), dim=1)

    def audio_vector(self, wave: torch.Tensor, lengths=None) -> torch.Tensor:
        return F.normalize(self.audio_proj(self.audio(wave, lengths)), dim=-1)

    @staticmethod
    def cross_maps(visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """``(Ba, Bi, h, w)``: the cosine of sound ``i`` with each position of image ``j``
        for unit ``visual (Bi, D, h, w)`` and ``audio (Ba, D)``."""
        return torch.einsum("jdhw,id->ijhw", visual, audio)

    def forward(self, images: torch.Tensor, wave: torch.Tensor, lengths=None) -> torch.Tensor:
        visual, audio = self.image_map(images), self.audio_vector(wave, lengths)
        return torch.einsum("bdhw,bd->bhw", visual, audio)  # (B, h, w)


def _stage_channels(encoder: nn.Module, stride: int) -> int:
    """The channels of ``encoder``'s stage map at ``stride`` (one dry run on a small
    black image)."""
    size = 8 * encoder.feature_info.stride
    was_training = encoder.training
    with torch.no_grad():
        stages = encoder.eval().forward_pyramid(torch.zeros(1, 3, size, size))
    encoder.train(was_training)
    if stride not in stages:
        raise ParameterError(f"map_stride must be one of the encoder's strides {sorted(stages)}. "
                             f"Found: {stride}")  # fmt: skip
    return stages[stride].shape[1]


def attend(maps: torch.Tensor, temperature: float) -> torch.Tensor:
    """The attention of maps ``(..., h, w)``: their softmax over positions at
    ``temperature``, same shape, each map summing to 1."""
    shape = maps.shape
    return (maps.flatten(-2) / temperature).softmax(-1).reshape(shape)


def mask_targets(masks: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Ground-truth masks ``(B, H, W)`` (0/1, or a consensus in [0, 1]) on a map's grid
    ``(h, w)``: the share of each cell they cover, ``(B, h, w)`` (each cell the mean of
    its pixels; H and W are multiples of h and w)."""
    if masks.ndim != 3:
        raise ParameterError(f"masks must be (B, H, W). Found shape {tuple(masks.shape)}")
    if masks.shape[1] % grid[0] or masks.shape[2] % grid[1]:
        raise ParameterError(
            f"masks of {tuple(masks.shape[1:])} pixels do not tile the map's {tuple(grid)} grid"
        )
    return F.adaptive_avg_pool2d(masks[:, None].float(), grid)[:, 0]


def upsample_maps(maps: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Maps ``(B, h, w)`` at the image's size ``(B, H, W)``: bilinear with pixel centres
    where they are (``align_corners=False``), as LVS's evaluation (``cv2.resize``, linear)
    upsamples its maps. EZ-VSL and SLAVC use ``align_corners=True``, which puts the
    corner cells' centres on the image's corner pixels: a cell of 8 pixels lands up to
    3.5 pixels off, and on the world an oracle map (each cell the share of it the source
    covers) scores 85.0% cIoU >= 0.5 and 91.6% pointing with it, 97.6% and 97.8% without."""
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def localization_losses(
    model: SoundSourceLocalizer,
    images: torch.Tensor,
    wave: torch.Tensor,
    masks: torch.Tensor | None = None,
    labelled: torch.Tensor | None = None,
    *,
    objective: str = "unsupervised",
    temperature: float = 0.07,
    background: str = "contrast",
    background_threshold: float = 0.4,
    supervised_weight: float = 1.0,
    supervision: str = "attention",
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss of a batch (see the module) and its parts for the log.

    ``images (B, 3, H, W)``, ``wave (B, T)``; for the supervised terms ``masks (B, H, W)``
    the sounding masks and ``labelled (B,)`` bool, the clips whose mask may be used (None:
    all). Returns ``(loss, {"contrastive": ..., "supervised": ..., "accuracy": ...})``
    (the parts the objective has; ``accuracy``: the share of sounds whose own image
    scores highest).
    """
    check_choice(objective, "objective", OBJECTIVES)
    check_choice(background, "background", BACKGROUNDS)
    check_choice(supervision, "supervision", SUPERVISIONS)
    visual, audio = model.image_map(images), model.audio_vector(wave)
    parts: dict[str, float] = {}
    loss = visual.new_zeros(())
    tau = model.attention_temperature
    if objective != "supervised":
        if len(images) < 2:
            raise ParameterError(
                f"the contrastive loss needs at least 2 clips. Found: {len(images)}"
            )
        cross = model.cross_maps(visual, audio)  # (B, B, h, w): sound i over image j
        scores = (attend(cross, tau) * cross).flatten(2).sum(-1)  # (B, B)
        logits = scores
        if background == "contrast":  # the attended region against the whole picture
            logits = scores - cross.flatten(2).mean(-1)
        elif background == "trimap":  # LVS: the own image where the map is low, softly
            own = cross.diagonal().permute(2, 0, 1).flatten(1)  # (B, h*w)
            weight = 1 - torch.sigmoid((own - background_threshold) / _TRIMAP_WIDTH)
            negative = (weight * own).sum(1) / weight.sum(1).clamp_min(1e-6)
            logits = torch.cat([scores, negative[:, None]], dim=1)
        target = torch.arange(len(images), device=images.device)
        contrastive = F.cross_entropy(logits / temperature, target)
        loss = loss + contrastive
        parts["contrastive"] = float(contrastive.detach())
        parts["accuracy"] = float((scores.argmax(1) == target).float().mean())
    if objective != "unsupervised":
        if masks is None:
            raise ParameterError(f"objective={objective!r} needs the sounding masks")
        keep = torch.ones(len(images), dtype=torch.bool, device=images.device)
        if labelled is not None:
            keep = labelled.to(images.device).bool()
        target = mask_targets(masks.to(images.device), visual.shape[-2:])
        keep = keep & (target.flatten(1).sum(1) > 0)  # a mask with no source teaches nothing
        if keep.any():
            maps = torch.einsum("bdhw,bd->bhw", visual[keep], audio[keep]).flatten(1)
            p = target[keep].flatten(1)
            if supervision == "attention":  # Senocak: where the attention should go
                p = p / p.sum(1, keepdim=True)
                supervised = -(p * (maps / tau).log_softmax(-1)).sum(1).mean()
            else:  # each cell: is it a source? (the map's sign says; its size, how sure)
                supervised = F.binary_cross_entropy_with_logits(maps / _MASK_WIDTH, p)
        else:
            supervised = visual.sum() * 0  # keeps the graph whole for DDP
        weight = 1.0 if objective == "supervised" else supervised_weight
        loss = loss + weight * supervised
        parts["supervised"] = float(supervised.detach())
    return loss, parts
