"""Translation: turn one modality into another (captioning, text-to-image, ...)."""

from xmodal.translation import captioning
from xmodal.translation.captioning import *  # noqa: F403 - the names of captioning.__all__
from xmodal.translation.text_to_image import (
    Discriminator,
    Generator,
    TextToImageGAN,
    discriminator_loss,
    generator_loss,
    interpolate_texts,
)

__all__ = [
    *captioning.__all__,
    "Discriminator",
    "Generator",
    "TextToImageGAN",
    "discriminator_loss",
    "generator_loss",
    "interpolate_texts",
]
