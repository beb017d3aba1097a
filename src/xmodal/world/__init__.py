"""The world: a procedural multimodal dataset with ground truth for everything.

Every sample is a pure function of ``(seed, split, index)``: no files, no downloads, the
same bytes in every process. See :class:`World`.
"""

from xmodal.world import datasets  # noqa: F401  (installs World.dataset's factory)
from xmodal.world.core import (
    NARRATOR,
    PlaceSample,
    Scene,
    SpokenCaption,
    Utterance,
    World,
    WorldConfig,
)
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
    "NARRATOR",
    "PLACES",
    "RELATIONS",
    "SHAPES",
    "SIZES",
    "SPLITS",
    "Utterance",
    "PlaceSample",
    "Question",
    "Scene",
    "SpokenCaption",
    "World",
    "WorldConfig",
    "WorldObject",
]
