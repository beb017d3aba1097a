"""Drawing shapes scenes: where objects go, what they look like, and the place behind them.

Three pure functions of their arguments and a ``numpy.random.Generator``:

- :func:`layout` puts objects at random centres so that none is clipped by the image
  border, no two touch, and every pair is clearly left/right of or above/below each
  other (so a relation caption is never a coin toss).
- :func:`place_background` draws a place (beach, forest, city, ...) as a (3, H, W) image.
- :func:`render` draws objects on their place and returns the image, one mask per object
  and the objects with their bounding boxes.

Everything runs in tens of microseconds per scene: a place is a window into one of a
small bank of panoramas drawn once per (place, image_size), and each shape is rasterised
only inside its own bounding box. The bank depends on its key alone (its generator is
seeded from the place's index and the image size), so the same rng state gives the same
bytes in every process.

Pixel (row i, column j) has its centre at (x, y) = (j + 0.5, i + 0.5); x grows to the
right and y downwards, as in :class:`~xmodal.world.schema.WorldObject`.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import NamedTuple

import numpy as np

from xmodal._checks import check_positive_int
from xmodal.errors import ParameterError
from xmodal.world.schema import COLOURS, PLACES, SHAPES, SIZES, WorldObject

__all__ = ["MIN_IMAGE_SIZE", "layout", "max_objects", "place_background", "render"]

MIN_IMAGE_SIZE = 16

# Shape proportions, as fractions of the object's radius r. The square's half side is
# below r so that its area (2.9 r^2) is close to the circle's (3.1 r^2); the triangle
# (apex at -r, base at +0.8 r, half base 0.9 r) and the cross (half arm width 0.35 r, so
# the arms are 35% of its span) are likewise sized to look as big as the rest.
_SQUARE_HALF = 0.85
_TRIANGLE_BASE = 0.8
_TRIANGLE_HALF_BASE = 0.9
_CROSS_HALF_ARM = 0.35

# The outline is the 1-px ring just outside the fill; near black reads as an edge on every
# background, snow included.
_OUTLINE_RGB = (25, 25, 30)
_JITTER = 0.06  # per-object brightness jitter of the fill: factor in [0.94, 1.06]

# Layout: a visible 1-px strip of background between any two objects' masks (outline
# included), tries before giving up, and candidate centres drawn per object per try.
_GAP = 1.0
_TRIES = 200
_CANDIDATES = 8

# max_objects: the most large objects that layout placed in every one of 10,000 random
# layouts, for each shape alone and for random mixes, at 16, 18, 24, 32, 44, 48, 64, 96
# and 128 px (3 at 20 px and 4 at 40 px failed a few times in 10,000; 5 fail often even
# at 128 px). Sizes between rows use the row below: a larger image never makes placing
# harder, since gaps and outlines are fixed in pixels while the objects grow with it.
_MAX_OBJECTS = ((16, 2), (24, 3), (44, 4))


# --- validation ------------------------------------------------------------------------


def _check_image_size(image_size) -> int:
    if type(image_size) is int and image_size >= MIN_IMAGE_SIZE:  # the hot path
        return image_size
    return check_positive_int(image_size, "image_size", minimum=MIN_IMAGE_SIZE)


def _check_word(value, name: str, table) -> None:
    if not isinstance(value, str) or value not in table:
        options = ", ".join(repr(c) for c in table)
        raise ParameterError(f"{name} must be one of {options}. Found: {value!r}")


def _check_place(place) -> None:
    _check_word(place, "place", PLACES)


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)). Found: {rng!r}"
        )


# Every valid (shape, colour, size): one set lookup validates a spec on the hot path.
_SPECS = frozenset((sh, c, sz) for sh in SHAPES for c in COLOURS for sz in SIZES)


def _is_spec(spec) -> bool:
    try:
        return tuple(spec) in _SPECS
    except TypeError:  # not iterable, or an unhashable word
        return False


def _check_spec(spec, name: str) -> None:
    """Raise ParameterError saying what is wrong with the (shape, colour, size) ``spec``."""
    if not isinstance(spec, (tuple, list)) or len(spec) != 3:
        raise ParameterError(f"{name} must be a (shape, colour, size) tuple. Found: {spec!r}")
    _check_word(spec[0], f"{name} shape", SHAPES)
    _check_word(spec[1], f"{name} colour", COLOURS)
    _check_word(spec[2], f"{name} size", SIZES)


# --- shape geometry --------------------------------------------------------------------
#
# A pixel is filled when its centre lies in the shape; the outline is every other pixel
# 4-adjacent to the fill, a 1-px ring that closes around it (no background pixel touches
# the fill). An outline pixel's centre is within 1 px of a fill pixel's, so the mask
# (fill + outline) reaches 1 px beyond the shape: the reaches below, which layout keeps
# apart and inside the image.
_SQRT_2 = math.sqrt(2.0)


def _reach(shape: str, r: float) -> tuple[float, float, float, float]:
    """(half width, up, down, circumradius) of the mask (fill + outline) of ``shape``."""
    if shape == "square":
        h = _SQUARE_HALF * r
        return h + 1.0, h + 1.0, h + 1.0, h * _SQRT_2 + 1.0
    if shape == "triangle":
        half, down = _TRIANGLE_HALF_BASE * r, _TRIANGLE_BASE * r
        return half + 1.0, r + 1.0, down + 1.0, max(r, math.hypot(half, down)) + 1.0
    if shape == "cross":
        return r + 1.0, r + 1.0, r + 1.0, math.hypot(r, _CROSS_HALF_ARM * r) + 1.0
    # circle and diamond: within r + 1 in every direction.
    return r + 1.0, r + 1.0, r + 1.0, r + 1.0


def _inside(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Whether the points (dy[:, None], dx[None, :]) from the centre lie in the shape."""
    if shape == "circle":
        return (dy * dy)[:, None] + dx * dx <= r * r
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "square":
        return np.maximum(ay[:, None], ax) <= _SQUARE_HALF * r
    if shape == "diamond":
        return ay[:, None] + ax <= r
    if shape == "cross":
        t = _CROSS_HALF_ARM * r
        return ((ay <= t)[:, None] & (ax <= r)) | ((ay <= r)[:, None] & (ax <= t))
    # triangle: below both sides (outward normals (+-2, -1)) and above the base.
    return ((2.0 * ax)[None, :] <= (dy + r)[:, None]) & (dy <= _TRIANGLE_BASE * r)[:, None]


# --- layout ----------------------------------------------------------------------------


def max_objects(image_size: int) -> int:
    """The most objects, all large and of any shapes, that :func:`layout` places reliably.

    Measured: 10,000 random layouts of that many large objects (each shape alone, and
    random mixes) all succeeded; smaller objects only make it easier. 2 from 16 px, 3
    from 24 px, 4 from 44 px.

    >>> max_objects(64)
    4
    """
    image_size = _check_image_size(image_size)
    best = _MAX_OBJECTS[0][1]
    for size, count in _MAX_OBJECTS:
        if image_size >= size:
            best = count
    return best


def layout(
    rng: np.random.Generator,
    specs: list[tuple[str, str, str]],
    *,
    image_size: int,
    sounding: list[bool] | None = None,
    margin: float | None = None,
) -> list[WorldObject]:
    """Random centres for objects given as (shape, colour, size), in the order given.

    Guarantees, for the returned objects: each one's mask (fill and outline, as
    :func:`render` draws it) lies wholly inside the image, so its fill keeps at least 1 px
    from the border; any two objects' centres are at least r1 + r2 + 2 px apart and their
    masks do not overlap, with about a pixel of background between them; and every
    pair's centres differ by more than ``margin`` pixels along x or along y, so one of
    "left of"/"right of"/"above"/"below" clearly holds.

    Args:
        rng: the sample's generator; the only source of randomness.
        specs: one (shape, colour, size) per object, words from SHAPES, COLOURS, SIZES.
        image_size: side of the square image in pixels (>= 16).
        sounding: whether each object sounds; default all False.
        margin: pixels; default ``0.1 * image_size``.

    Returns:
        WorldObjects with x, y, radius = SIZES[size][0] * image_size, bbox (0, 0, 0, 0)
        (:func:`render` fills it) and ``sounding``.

    Raises:
        ParameterError: for an unknown word, a bad image_size, margin or sounding, or when
            no layout is found in 200 tries (too many objects for the image; see
            :func:`max_objects`).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> objs = layout(rng, [("circle", "red", "large"), ("cross", "blue", "small")],
        ...               image_size=64)
        >>> [o.name for o in objs]
        ['large red circle', 'small blue cross']
    """
    _check_rng(rng)
    image_size = _check_image_size(image_size)
    n = len(specs)
    geometry = []
    for i, spec in enumerate(specs):
        if not _is_spec(spec):
            _check_spec(spec, f"specs[{i}]")
        geometry.append(_geometry(spec[0], spec[2], image_size))
    if sounding is None:
        sounding = [False] * n
    elif len(sounding) != n or not all(isinstance(s, (bool, np.bool_)) for s in sounding):
        raise ParameterError(f"sounding must be {n} booleans, one per object. Found: {sounding!r}")
    if margin is None:
        margin = 0.1 * image_size
    elif (
        isinstance(margin, bool)
        or not isinstance(margin, numbers.Real)
        or not math.isfinite(margin)
        or margin < 0
    ):
        raise ParameterError(f"margin must be a finite number >= 0 (pixels). Found: {margin!r}")
    if n == 0:
        return []
    for (shape, colour, sz), geo in zip(specs, geometry, strict=True):
        if geo.span_x < 0 or geo.span_y < 0:
            raise ParameterError(
                f"a {sz} {colour} {shape} (radius {geo.r:.1f} px) does not fit in a "
                f"{image_size}x{image_size} image"
            )
    # Bulkiest first: the last object placed has the least room, so make it the smallest.
    order = sorted(range(n), key=lambda i: -geometry[i].circ) if n > 1 else [0]

    for _ in range(_TRIES):
        u = rng.random(2 * _CANDIDATES * n).tolist()
        placed: list[tuple[float, float, _Geometry]] = []
        centres: list[tuple[float, float]] = [(0.0, 0.0)] * n
        for k, i in enumerate(order):
            g = geometry[i]
            for c in range(2 * _CANDIDATES * k, 2 * _CANDIDATES * (k + 1), 2):
                x, y = g.half + u[c] * g.span_x, g.up + u[c + 1] * g.span_y
                for px, py, p in placed:
                    dx, dy = x - px, y - py
                    d2 = dx * dx + dy * dy
                    if d2 < (g.r + p.r + 2.0) ** 2 or (abs(dx) <= margin and abs(dy) <= margin):
                        break
                    # The masks are apart if their circumcircles or their boxes are.
                    if d2 >= (g.circ + p.circ + _GAP) ** 2 or abs(dx) >= g.half + p.half + _GAP:
                        continue
                    if dy >= g.up + p.down + _GAP or -dy >= p.up + g.down + _GAP:
                        continue
                    break
                else:
                    placed.append((x, y, g))
                    centres[i] = (x, y)
                    break
            else:
                break  # no candidate fits: start the whole layout again
        else:
            # Positional construction: keywords cost a fifth more on this hot path.
            return [
                WorldObject(shape, colour, sz, x, y, geo.r, (0, 0, 0, 0), bool(sound))
                for (shape, colour, sz), (x, y), geo, sound in zip(
                    specs, centres, geometry, sounding, strict=True
                )
            ]
    raise ParameterError(
        f"cannot place {n} objects in a {image_size}x{image_size} image without overlap "
        f"(margin {margin:g} px) in {_TRIES} tries; use at most max_objects({image_size}) = "
        f"{max_objects(image_size)} or a larger image_size"
    )


class _Geometry(NamedTuple):
    """An object's extent for layout, in pixels: radius r and the reaches of its mask."""

    r: float
    half: float  # mask within x +- half
    up: float  # mask within [y - up, y + down]
    down: float
    circ: float  # mask within circ of the centre
    span_x: float  # the centre's x may lie in [half, half + span_x]
    span_y: float  # and its y in [up, up + span_y]; a span < 0: it does not fit


@functools.lru_cache(maxsize=1024)
def _geometry(shape: str, size: str, image_size: int) -> _Geometry:
    r = SIZES[size][0] * image_size
    half, up, down, circ = _reach(shape, r)
    return _Geometry(r, half, up, down, circ, image_size - 2 * half, image_size - up - down)


# --- backgrounds -----------------------------------------------------------------------
#
# A place is drawn as one of _VARIANTS panoramas (each with its own horizon, elements
# and tint, plus its mirror image), _PAN_W x image_size wide and 1 + _PAN_H times as tall
# as the image; a sample is a window into one of them. Windows slide the horizon by up
# to a quarter of the image and the elements by a full width, so samples differ while
# the class stays obvious.

_VARIANTS = 16
_PAN_W = 2
_PAN_H = 0.25


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell_y: float, cell_x: float):
    """Value noise in [0, 1], (h, w): a random grid with cells of cell_y x cell_x pixels."""
    gy, gx = int(h / cell_y) + 2, int(w / cell_x) + 2
    grid = rng.random((gy, gx))
    y, x = np.arange(h) / cell_y, np.arange(w) / cell_x
    y0, x0 = y.astype(np.int64), x.astype(np.int64)
    fy, fx = y - y0, x - x0
    fy, fx = (fy * fy * (3 - 2 * fy))[:, None], (fx * fx * (3 - 2 * fx))[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _lerp(c0, c1, t: np.ndarray) -> np.ndarray:
    """Colours from c0 (t = 0) to c1 (t = 1): t (...) -> (..., 3)."""
    c0, c1 = np.asarray(c0, np.float64), np.asarray(c1, np.float64)
    return c0 + (c1 - c0) * np.clip(t, 0.0, 1.0)[..., None]


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x), each (h, w)."""
    y, x = np.mgrid[0:h, 0:w] + 0.5
    return y, x


def _put(img: np.ndarray, where: np.ndarray, colour) -> None:
    img[where] = colour


def _beach(rng, h, w, s):
    y, x = _grid(h, w)
    horizon = h * rng.uniform(0.30, 0.40)
    shore = (
        horizon
        + h * rng.uniform(0.16, 0.22)
        + 0.02 * s * np.sin(2 * np.pi * x / (s * rng.uniform(0.5, 0.9)) + rng.uniform(0, 6.3))
    )
    img = _lerp((105, 165, 225), (190, 220, 245), y[:, 0] / horizon)[:, None, :].repeat(w, 1)
    sea = (y >= horizon) & (y < shore)
    depth = (y - horizon) / (shore - horizon)
    img[sea] = _lerp((25, 95, 150), (55, 160, 185), np.broadcast_to(depth, (h, w))[sea])
    waves = _smooth_noise(rng, h, w, max(1.0, s / 32), s / 6) > 0.78
    _put(img, sea & waves & (depth > 0.15), (150, 200, 215))
    _put(img, (y >= shore - max(1.0, s / 40)) & (y < shore + 0.5), (235, 240, 240))
    sand = y >= shore + 0.5
    tex = 1 + 0.08 * (_smooth_noise(rng, h, w, s / 12, s / 8) - 0.5)
    tex = tex + 0.06 * (rng.random((h, w)) - 0.5)
    img[sand] = (np.array([225.0, 205.0, 160.0]) * tex[..., None])[sand]
    return img


def _forest(rng, h, w, s):
    y, x = _grid(h, w)
    depth_noise = _smooth_noise(rng, h, w, s / 5, s / 5)
    img = _lerp((20, 45, 25), (45, 85, 40), depth_noise)
    ground_y = h * rng.uniform(0.72, 0.80)
    canopy_y = h * rng.uniform(0.22, 0.32) + 0.12 * h * _smooth_noise(rng, 1, w, 1, s / 6)
    # Trunks, darker and thinner behind, broader in front.
    n = int(rng.integers(7, 11))
    for k in range(n):
        cx = rng.uniform(0, w)
        half = s * rng.uniform(0.015, 0.035) if k < n // 2 else s * rng.uniform(0.03, 0.06)
        tone = rng.uniform(0.6, 0.8) if k < n // 2 else rng.uniform(0.9, 1.15)
        trunk = (np.abs(x - cx) <= max(half, 0.5)) & (y < ground_y + 0.02 * h)
        shade = 1 - 0.25 * ((x - cx) / max(half, 0.5)).clip(-1, 1)  # lit from the left
        colour = np.array([85.0, 58.0, 35.0]) * tone
        img[trunk] = (colour * np.broadcast_to(shade, (h, w))[trunk][:, None]).clip(0, 255)
    leaves = _smooth_noise(rng, h, w, s / 14, s / 14)
    canopy = y < canopy_y + 0.1 * h * (leaves - 0.5)
    img[canopy] = _lerp((25, 65, 30), (80, 130, 55), leaves)[canopy]
    ground = y >= ground_y
    litter = _smooth_noise(rng, h, w, s / 24, s / 10) + 0.3 * rng.random((h, w))
    img[ground] = _lerp((40, 45, 22), (90, 95, 45), litter / 1.3)[ground]
    return img


def _city(rng, h, w, s):
    y = np.arange(h)[:, None] + 0.5
    img = _lerp((150, 155, 165), (200, 200, 205), y[:, 0] / h)[:, None, :].repeat(w, 1)
    street_y = int(h * rng.uniform(0.82, 0.88))
    pitch = max(2, round(s / 16))  # window grid: windows of pitch // 2 px, at 32 px still 1 px
    win = max(1, pitch // 2)
    x = 0
    while x < w:
        bw = max(3 * pitch, int(s * rng.uniform(0.14, 0.3)))
        top = int(h * rng.uniform(0.12, 0.5))
        grey = rng.uniform(70, 135)
        tint = rng.uniform(-8, 8, 3)
        img[top:street_y, x : x + bw] = grey + tint
        lit = rng.random((h // pitch + 1, bw // pitch + 1)) < 0.4
        for i, wy in enumerate(range(top + pitch // 2, street_y - pitch, pitch)):
            for j, wx in enumerate(range(x + pitch // 2, x + bw - win, pitch)):
                colour = (225, 210, 140) if lit[i, j] else (45, 50, 62)
                img[wy : wy + win, wx : wx + win] = colour
        x += bw + int(rng.integers(0, max(1, s // 16) + 1))
    img[street_y:] = (62, 62, 66)
    lane = street_y + (h - street_y) // 2
    dash = max(2, s // 10)
    xs = np.arange(w)
    img[lane, (xs // dash) % 2 == 0] = (200, 200, 195)
    return img


def _desert(rng, h, w, s):
    y, x = _grid(h, w)
    horizon = h * rng.uniform(0.35, 0.45)
    img = _lerp((180, 200, 222), (240, 232, 208), y[:, 0] / horizon)[:, None, :].repeat(w, 1)
    layers = (
        (0.0, (232, 185, 125)),
        (0.2, (222, 158, 88)),
        (0.42, (208, 136, 70)),
    )
    for offset, colour in layers:
        period = s * rng.uniform(0.6, 1.1)
        phase = rng.uniform(0, 2 * np.pi)
        top = horizon + offset * (h - horizon) - 0.06 * h * np.sin(2 * np.pi * x / period + phase)
        dune = y >= top
        # The slope facing the light is brighter: the sign of the profile's derivative.
        lit = 1 + 0.07 * np.sign(np.cos(2 * np.pi * x / period + phase))
        ripple = 1 + 0.04 * np.sin(2 * np.pi * (y - 0.3 * x) / max(2.0, s / 10))
        tone = np.broadcast_to(lit * ripple, (h, w))
        img[dune] = np.clip(np.array(colour, np.float64) * tone[dune][:, None], 0, 255)
    return img


def _snow(rng, h, w, s):
    y, x = _grid(h, w)
    horizon = h * rng.uniform(0.32, 0.42)
    img = _lerp((165, 190, 228), (222, 230, 245), y[:, 0] / horizon)[:, None, :].repeat(w, 1)
    # Grey-white mountains behind the snowfield, white above the snow line.
    period = s * rng.uniform(0.5, 0.9)
    phase = rng.uniform(0, period)
    tri = np.abs(((x + phase) / period) % 1.0 - 0.5) * 2  # 0 at peaks, 1 in valleys
    height = h * rng.uniform(0.12, 0.2)
    peak = horizon - height * (1 - tri)
    mountain = (y >= peak) & (y < horizon)
    _put(img, mountain, (172, 180, 196))
    _put(img, mountain & (y < horizon - 0.55 * height), (238, 241, 248))
    # Wind-blown drifts: long, low bands of blue shadow on white.
    ground = y >= horizon
    drift = _smooth_noise(rng, h, w, max(1.5, s / 20), s / 3)
    sparkle = 0.15 * rng.random((h, w))
    img[ground] = _lerp((196, 208, 232), (248, 249, 253), 0.35 + drift + sparkle)[ground]
    flakes = (rng.random((h, w)) < 0.012) & ~ground
    _put(img, flakes, (250, 250, 255))
    return img


def _night(rng, h, w, s):
    y, x = _grid(h, w)
    horizon = h * rng.uniform(0.72, 0.82)
    img = _lerp((4, 6, 26), (24, 34, 72), y[:, 0] / horizon)[:, None, :].repeat(w, 1)
    stars = (rng.random((h, w)) < 0.02) & (y < horizon - 2)
    img[stars] = np.array([255.0, 250.0, 225.0]) * rng.uniform(0.6, 1.0, (int(stars.sum()), 1))
    r = s * rng.uniform(0.06, 0.09)
    mx, my = rng.uniform(r + 2, w - r - 2), rng.uniform(r + 2, 0.45 * h)
    moon = (x - mx) ** 2 + (y - my) ** 2 <= r * r
    if rng.random() < 0.5:  # a crescent: the full moon less an offset disc
        moon &= (x - mx - 0.5 * r) ** 2 + (y - my + 0.2 * r) ** 2 > r * r
    _put(img, moon, (235, 232, 205))
    hills = horizon - 0.05 * h * np.sin(
        2 * np.pi * x / (s * rng.uniform(0.5, 1.0)) + rng.uniform(0, 6.3)
    )
    _put(img, y >= hills, (10, 14, 20))
    return img


def _field(rng, h, w, s):
    y, x = _grid(h, w)
    horizon = h * rng.uniform(0.36, 0.48) + 0.02 * h * np.sin(
        2 * np.pi * x / (s * rng.uniform(0.8, 1.6)) + rng.uniform(0, 6.3)
    )
    img = _lerp((85, 145, 225), (175, 210, 242), y[:, 0] / horizon.mean())[:, None, :].repeat(w, 1)
    clouds = _smooth_noise(rng, h, w, s / 8, s / 3)
    cloud = np.clip((clouds - 0.6) * 4, 0, 1)
    img += (np.array([245.0, 245.0, 248.0]) - img) * cloud[..., None]
    grass = y >= horizon
    depth = np.broadcast_to((y - horizon) / (h - horizon), (h, w))
    blades = _smooth_noise(rng, h, w, max(2.0, s / 12), max(0.7, s / 64))
    tone = 0.82 + 0.3 * blades
    colour = _lerp((110, 165, 70), (70, 130, 42), depth) * tone[..., None]
    img[grass] = colour[grass]
    return img


def _underwater(rng, h, w, s):
    y, x = _grid(h, w)
    img = _lerp((55, 165, 195), (8, 42, 90), np.broadcast_to(y / h, (h, w)))
    period = s * rng.uniform(0.18, 0.3)
    rays = np.sin(2 * np.pi * (x + 0.45 * y) / period + rng.uniform(0, 6.3)) ** 8
    rays = rays * np.clip(1.1 - y / h, 0, 1) * 0.35
    img += (np.array([210.0, 245.0, 250.0]) - img) * rays[..., None]
    for _ in range(int(rng.integers(8, 14))):
        r = max(1.0, s * rng.uniform(0.015, 0.04))
        bx, by = rng.uniform(0, w), rng.uniform(0, 0.85 * h)
        d = np.sqrt((x - bx) ** 2 + (y - by) ** 2)
        _put(img, np.abs(d - r) <= 0.5, (185, 230, 245))
    floor = y >= h - 0.08 * h - 0.03 * h * np.sin(x / s * 7 + rng.uniform(0, 6.3))
    _put(img, floor, (70, 92, 95))
    return img


_PAINTERS = {
    "beach": _beach,
    "forest": _forest,
    "city": _city,
    "desert": _desert,
    "snow": _snow,
    "night": _night,
    "field": _field,
    "underwater": _underwater,
}


@functools.lru_cache(maxsize=64)
def _bank(place: str, image_size: int) -> np.ndarray:
    """(2 * _VARIANTS, 3, H + slack, _PAN_W * W) uint8 panoramas of ``place``, mirrors last.

    A function of its key only: each variant's generator is seeded from the place's index,
    the image size and the variant number.
    """
    h = image_size + int(_PAN_H * image_size)
    w = _PAN_W * image_size
    painter = _PAINTERS[place]
    bank = np.empty((2 * _VARIANTS, 3, h, w), np.uint8)
    for v in range(_VARIANTS):
        rng = np.random.default_rng([PLACES.index(place), image_size, v])
        img = painter(rng, h, w, image_size)
        # A per-variant tint and brightness, so even the same layout varies in colour.
        img = img * (1 + rng.normal(0, 0.015, 3)) * rng.uniform(0.93, 1.07)
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8).transpose(2, 0, 1)
        bank[v] = img
        bank[_VARIANTS + v] = img[:, :, ::-1]
    bank.flags.writeable = False
    return bank


def place_background(rng: np.random.Generator, place: str, image_size: int) -> np.ndarray:
    """A picture of ``place``: (3, image_size, image_size) uint8 RGB.

    The sample is a window into one of a bank of panoramas of the place (its own horizon,
    elements and tint, or their mirror image); ``rng`` picks the panorama and the window,
    moving the horizon by up to a quarter of the image and the elements by a full width.
    The first call for a (place, image_size) draws the bank (milliseconds); later calls
    take a couple of microseconds.

    Example:
        >>> img = place_background(np.random.default_rng(0), "beach", 64)
        >>> img.shape, img.dtype
        ((3, 64, 64), dtype('uint8'))
    """
    _check_rng(rng)
    _check_place(place)
    image_size = _check_image_size(image_size)
    return _background(rng, place, image_size)


def _background(rng: np.random.Generator, place: str, image_size: int) -> np.ndarray:
    bank = _bank(place, image_size)
    n, _, h, w = bank.shape
    u, v, t = rng.random(3).tolist()
    oy = int(u * (h - image_size + 1))
    ox = int(v * (w - image_size + 1))
    return bank[int(t * n), :, oy : oy + image_size, ox : ox + image_size].copy()


# --- rendering -------------------------------------------------------------------------
#
# A shape is rasterised once per (shape, radius, centre's position within its pixel,
# snapped to 1/_SUBPIXEL px) into a stamp cropped to its mask; drawing an object is then
# two masked copies. Layout draws only two radii per image size, so the cache stays small.

_SUBPIXEL = 8


@functools.lru_cache(maxsize=2048)
def _stamp(shape: str, r: float, sx: int, sy: int):
    """``(fill, mask, x0, y0)`` for a shape centred at (bx + sx/8, by + sy/8), bx, by ints.

    fill and mask are (h, w) bool, cropped to the mask's extent; the stamp's top-left
    pixel is at column bx + x0, row by + y0.
    """
    half, up, down, _ = _reach(shape, r)
    cx, cy = sx / _SUBPIXEL, sy / _SUBPIXEL
    # Columns j (relative to bx) whose centre j + 0.5 can be within reach of cx, and a
    # spare one each side.
    jx0, jx1 = math.floor(cx - half - 0.5) - 1, math.ceil(cx + half + 0.5) + 1
    jy0, jy1 = math.floor(cy - up - 0.5) - 1, math.ceil(cy + down + 0.5) + 1
    dx = np.arange(jx0, jx1) + 0.5 - cx
    dy = np.arange(jy0, jy1) + 0.5 - cy
    fill = _inside(shape, dx, dy, r)
    assert not (fill[0].any() or fill[-1].any() or fill[:, 0].any() or fill[:, -1].any())
    mask = fill.copy()
    mask[1:] |= fill[:-1]
    mask[:-1] |= fill[1:]
    mask[:, 1:] |= fill[:, :-1]
    mask[:, :-1] |= fill[:, 1:]
    if not fill.any():  # so small it misses every pixel centre: a dot of outline
        mask[-jy0, -jx0] = True
    x0, y0, x1, y1 = _extent(mask)
    fill, mask = fill[y0:y1, x0:x1].copy(), mask[y0:y1, x0:x1].copy()
    fill.flags.writeable = False
    mask.flags.writeable = False
    return fill, mask, jx0 + x0, jy0 + y0


def _extent(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), inclusive-exclusive, of a non-empty 2-D mask's True pixels."""
    rows, cols = mask.any(1), mask.any(0)
    y0, x0 = int(rows.argmax()), int(cols.argmax())
    y1, x1 = len(rows) - int(rows[::-1].argmax()), len(cols) - int(cols[::-1].argmax())
    return x0, y0, x1, y1


def render(
    rng: np.random.Generator,
    place: str,
    objects: list[WorldObject],
    *,
    image_size: int,
) -> tuple[np.ndarray, np.ndarray, list[WorldObject]]:
    """Draw ``objects`` on a picture of ``place``.

    Each object is filled with its colour's RGB times a brightness jitter in
    [0.94, 1.06] (steps of 0.5%) and ringed by a 1-px near-black outline just outside the
    shape. Its mask covers fill and outline, so the pixels outside every mask are exactly
    the background.
    Objects are drawn in order, a later one on top: where two overlap, the pixels belong
    to the later object's mask only, so masks are always disjoint (an object hidden
    entirely gets an empty mask and bbox (0, 0, 0, 0)). Objects from :func:`layout` never
    overlap, and each has a non-empty mask.

    Shapes, for radius r: circle of radius r; axis-aligned square of half side 0.85 r;
    upright triangle with apex at y - r, base at y + 0.8 r, half base 0.9 r; diamond
    |dx| + |dy| <= r; cross (plus sign) of span 2 r and arm width 0.7 r. A pixel belongs
    to a shape when its centre does; centres are snapped to 1/8 px for this.

    Args:
        rng: the sample's generator: it draws the background, then the jitters.
        place: a word from PLACES.
        objects: WorldObjects with centres inside the image and radius <= image_size.
        image_size: side of the square image in pixels (>= 16).

    Returns:
        ``(image, masks, objects)``: image (3, H, W) uint8 RGB; masks (K, H, W) bool, one
        per object; the objects with ``bbox`` = (x0, y0, x1, y1) of their mask,
        inclusive-exclusive.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> objs = layout(rng, [("square", "green", "large")], image_size=64)
        >>> image, masks, objs = render(rng, "field", objs, image_size=64)
        >>> image.shape, masks.shape
        ((3, 64, 64), (1, 64, 64))
    """
    _check_rng(rng)
    _check_place(place)
    image_size = _check_image_size(image_size)
    size = float(image_size)
    for k, obj in enumerate(objects):
        if not isinstance(obj, WorldObject):
            raise ParameterError(f"objects[{k}] must be a WorldObject. Found: {obj!r}")
        if not _is_spec((obj.shape, obj.colour, obj.size)):
            _check_spec((obj.shape, obj.colour, obj.size), f"objects[{k}]")
        if not (0.0 <= obj.x <= size and 0.0 <= obj.y <= size):
            raise ParameterError(
                f"objects[{k}] ({obj.name}) must have its centre inside the "
                f"{image_size}x{image_size} image. Found: ({obj.x}, {obj.y})"
            )
        if not (0.0 < obj.radius <= size):
            raise ParameterError(
                f"objects[{k}].radius must be in (0, image_size = {image_size}]. "
                f"Found: {obj.radius!r}"
            )

    image = _background(rng, place, image_size)
    n = len(objects)
    masks = np.zeros((n, image_size, image_size), bool)
    if n == 0:
        return image, masks, []
    levels = [int(u * _LEVELS) for u in rng.random(n).tolist()]
    boxes: list[tuple[int, int, int, int]] = []
    for k, obj in enumerate(objects):
        bx, sx = divmod(round(obj.x * _SUBPIXEL), _SUBPIXEL)
        by, sy = divmod(round(obj.y * _SUBPIXEL), _SUBPIXEL)
        fill, mask, ox, oy = _stamp(obj.shape, float(obj.radius), sx, sy)
        h, w = mask.shape
        x0, y0 = bx + ox, by + oy
        x1, y1 = x0 + w, y0 + h
        if x0 < 0 or y0 < 0 or x1 > image_size or y1 > image_size:
            # Clipped by the border (never for layout's objects).
            cx0, cy0 = max(x0, 0), max(y0, 0)
            cx1, cy1 = min(x1, image_size), min(y1, image_size)
            fill = fill[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
            mask = mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
            ex0, ey0, ex1, ey1 = _extent(mask)
            x0, y0, x1, y1 = cx0, cy0, cx1, cy1
            box = (x0 + ex0, y0 + ey0, x0 + ex1, y0 + ey1)
        else:
            box = (x0, y0, x1, y1)
        colour = _fill_colours(obj.colour)[levels[k]]
        region = image[:, y0:y1, x0:x1]
        np.copyto(region, _OUTLINE, where=mask)
        np.copyto(region, colour, where=fill)
        masks[k, y0:y1, x0:x1] = mask
        # Earlier objects lose what this one covers; their boxes are measured again below.
        for e, (ex0, ey0, ex1, ey1) in enumerate(boxes):
            ix0, iy0, ix1, iy1 = max(x0, ex0), max(y0, ey0), min(x1, ex1), min(y1, ey1)
            if ix0 < ix1 and iy0 < iy1:
                earlier = masks[e, iy0:iy1, ix0:ix1]
                covered = mask[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
                if (earlier & covered).any():
                    earlier &= ~covered
                    boxes[e] = _masked_box(masks[e], boxes[e])
        boxes.append(box)

    # Positional construction: dataclasses.replace costs more than the drawing itself.
    out = [
        WorldObject(o.shape, o.colour, o.size, o.x, o.y, o.radius, box, o.sounding)
        for o, box in zip(objects, boxes, strict=True)
    ]
    return image, masks, out


_LEVELS = 25  # jitter steps of 0.5% from 0.94 to 1.06


@functools.cache
def _fill_colours(colour: str) -> tuple[np.ndarray, ...]:
    """The fill of ``colour`` at each jitter level: _LEVELS arrays (3, 1, 1) uint8."""
    rgb = np.array(COLOURS[colour][0], np.float64)
    out = []
    for factor in np.linspace(1.0 - _JITTER, 1.0 + _JITTER, _LEVELS):
        c = np.clip(np.rint(rgb * factor), 0, 255).astype(np.uint8).reshape(3, 1, 1)
        c.flags.writeable = False
        out.append(c)
    return tuple(out)


_OUTLINE = np.array(_OUTLINE_RGB, np.uint8).reshape(3, 1, 1)
_OUTLINE.flags.writeable = False


def _masked_box(mask: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The extent of ``mask`` (H, W) inside ``box``, or (0, 0, 0, 0) where it is empty."""
    x0, y0, x1, y1 = box
    local = mask[y0:y1, x0:x1]
    if x1 <= x0 or y1 <= y0 or not local.any():
        return (0, 0, 0, 0)
    ex0, ey0, ex1, ey1 = _extent(local)
    return (x0 + ex0, y0 + ey0, x0 + ex1, y0 + ey1)
