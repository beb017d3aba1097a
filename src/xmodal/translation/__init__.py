"""Translation: turn one modality into another (captioning, text-to-image, ...)."""

from xmodal.translation.captioning import (
    CaptionOutput,
    Generation,
    ShowAttendTell,
    ShowTell,
    beam_search_loop,
    caption_loss,
    target_mask,
)
from xmodal.translation.text_to_image import (
    Discriminator,
    Generator,
    TextToImageGAN,
    discriminator_loss,
    generator_loss,
    interpolate_texts,
)

__all__ = [
    "CaptionOutput",
    "Discriminator",
    "Generator",
    "TextToImageGAN",
    "discriminator_loss",
    "generator_loss",
    "interpolate_texts",
    "Generation",
    "ShowAttendTell",
    "ShowTell",
    "beam_search_loop",
    "caption_loss",
    "target_mask",
]
