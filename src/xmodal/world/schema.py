"""The world's vocabulary and the records every part of it exchanges.

Everything a scene can contain is named here once: shapes, colours, sizes, places and
spatial relations, with the physical values each maps to (an RGB colour, a radius, a
pitch, a loudness). Renderer, caption grammar, question generator and sound synthesizer
all read these tables, so a word and what it denotes can never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "AMBIENCE_PEAK",
    "COLOURS",
    "PLACES",
    "RELATIONS",
    "SHAPES",
    "SIZES",
    "SPLITS",
    "Question",
    "WorldObject",
    "split_id",
]

# shape -> timbre: the relative amplitudes of harmonics 1..8 of its sound, so each shape
# sounds different at any pitch (circle: pure, square: odd harmonics like a clarinet,
# triangle: soft odd harmonics, diamond: bright, cross: buzzy).
SHAPES: dict[str, tuple[float, ...]] = {
    "circle": (1.0,),
    "square": (1.0, 0.0, 1 / 3, 0.0, 1 / 5, 0.0, 1 / 7),
    "triangle": (1.0, 0.0, 1 / 9, 0.0, 1 / 25, 0.0, 1 / 49),
    "diamond": (1.0, 0.7, 0.5, 0.35, 0.25),
    "cross": (1.0, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 6, 1 / 7, 1 / 8),
}

# colour -> (RGB, pitch in Hz): each colour has its own note (A3 up a major scale), so
# a source's fundamental tells its colour.
COLOURS: dict[str, tuple[tuple[int, int, int], float]] = {
    "red": ((220, 40, 40), 220.00),
    "orange": ((245, 140, 20), 246.94),
    "yellow": ((240, 220, 40), 277.18),
    "green": ((40, 170, 60), 293.66),
    "blue": ((40, 80, 220), 329.63),
    "purple": ((150, 60, 190), 369.99),
}

# size -> (radius as a fraction of the image side, peak amplitude of its sound). Three
# large sources (0.3 each) and the ambience (peak <= 0.1) sum to at most 1: the mixture
# never clips and is exactly the sum of its parts.
SIZES: dict[str, tuple[float, float]] = {
    "small": (0.09, 0.12),
    "large": (0.16, 0.3),
}
AMBIENCE_PEAK = 0.1

# The places: scene classes with their own background and ambient sound.
PLACES: tuple[str, ...] = (
    "beach",
    "forest",
    "city",
    "desert",
    "snow",
    "night",
    "field",
    "underwater",
)

# relation -> how the first object's centre lies from the second's (image coordinates,
# y grows downwards).
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")

SPLITS: tuple[str, ...] = ("train", "val", "test", "compositional")


def split_id(split: str) -> int:
    """A stable small integer per split, used in the seed of every sample."""
    return SPLITS.index(split)


@dataclass(frozen=True)
class WorldObject:
    """One object of a shapes scene.

    Attributes:
        shape, colour, size: words from SHAPES, COLOURS, SIZES.
        x, y: centre in pixels (x to the right, y downwards).
        radius: the radius the shape is drawn at, in pixels (a circle's radius; see render
            for the other shapes).
        bbox: (x0, y0, x1, y1) in pixels, inclusive-exclusive, of its mask.
        sounding: whether it makes a sound in this scene.
    """

    shape: str
    colour: str
    size: str
    x: float
    y: float
    radius: float
    bbox: tuple[int, int, int, int] = (0, 0, 0, 0)
    sounding: bool = False

    @property
    def name(self) -> str:
        """``"small red circle"``."""
        return f"{self.size} {self.colour} {self.shape}"


# Not frozen: a scene makes ten of these, and a frozen dataclass costs 3x as much to build.
@dataclass(slots=True)
class Question:
    """A question about a scene, its answer (one word or a number word), and its family."""

    question: str
    answer: str
    family: str  # "exist", "count", "colour", "shape", "relation"
    facts: dict = field(default_factory=dict, compare=False)


def relation(a: WorldObject, b: WorldObject, *, margin: float = 0.0) -> list[str]:
    """Relations that hold from ``a`` to ``b``: ``a`` is <relation> ``b``.

    A relation holds when the centres differ by more than ``margin`` pixels on its axis.
    """
    out = []
    dx, dy = a.x - b.x, a.y - b.y
    if dx < -margin:
        out.append("left of")
    if dx > margin:
        out.append("right of")
    if dy < -margin:
        out.append("above")
    if dy > margin:
        out.append("below")
    return out
