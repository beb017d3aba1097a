"""The world: a procedural multimodal dataset with ground truth for everything.

Every sample is a pure function of ``(seed, split, index)``: no files, no downloads, the
same bytes in every process. See :class:`World`.
"""

from xmodal.world.core import PlaceSample, Scene, World, WorldConfig
from xmodal.world.schema import (
    COLOURS,
    PLACES,
    RELATIONS,
    SHAPES,
    SIZES,
    SPLITS,
    Question,
    WorldObject,
)

__all__ = [
    "COLOURS",
    "PLACES",
    "RELATIONS",
    "SHAPES",
    "SIZES",
    "SPLITS",
    "PlaceSample",
    "Question",
    "Scene",
    "World",
    "WorldConfig",
    "WorldObject",
]
