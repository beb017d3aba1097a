"""Faces and voices: identities whose drawn face goes with their voice, as in real people.

An :class:`Identity` is a sex, an age group, face attributes (shape, skin tone, hair,
eyes, beard, wrinkles) and the :class:`~xmodal.world.voices.VoiceParams` they speak
with. The voice follows the face the way it does in people, with identity-level noise,
so a voice tells the face only in probability:

- women speak higher (pitch ~20 points up) with the female eSpeak variants, men lower
  with the male ones;
- the young speak faster (~190 words/min) and higher, the old slower (~135 words/min),
  lower and with a narrower pitch range; old voices sometimes use eSpeak's ``grandma``
  and ``grandpa`` variants;
- every identity then moves its pitch (sd 6), rate (sd 12 words/min) and pitch range
  (sd 8) by its own amount.

Splits: identity ids are partitioned by construction. The ``k``-th identity of a split
has id ``k * len(SPLITS) + split_id(split)`` (:func:`identity_id`): train ids are
0, 4, 8, ..., val 1, 5, 9, ..., test 2, 6, 10, ... So no id is in two splits for any
number of identities, and :func:`identity_split` recovers ``(split, k)`` from an id. The
world draws identity ``k`` of a split from the generator seeded by
``(seed, 2, split_id, k)``.

Drawing: :func:`draw_face` paints a frontal cartoon face from a cached per-identity
label image in ~80 us at 64 px (~0.9 ms the first time an identity is drawn at a size);
:func:`talking_face` draws the face once and only the mouth per frame, with the opening
from :func:`mouth_track`.

Example:
    >>> rng = np.random.default_rng(0)
    >>> person = identity(rng, id=identity_id("train", 0))
    >>> img = draw_face(rng, person, image_size=64, mouth_open=0.5)   # (3, 64, 64) uint8
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass

import numpy as np

from xmodal.errors import ParameterError
from xmodal.world.schema import SPLITS, split_id
from xmodal.world.voices import VoiceParams

__all__ = [
    "AGES",
    "EYE_COLOURS",
    "HAIR_COLOURS",
    "HAIR_LENGTHS",
    "SEXES",
    "SKIN_TONES",
    "Identity",
    "draw_face",
    "identity",
    "identity_id",
    "identity_split",
    "mouth_box",
    "mouth_track",
    "talking_face",
]

SEXES: tuple[str, ...] = ("female", "male")
AGES: tuple[str, ...] = ("young", "adult", "old")

SKIN_TONES: dict[str, tuple[int, int, int]] = {
    "light": (242, 208, 182),
    "fair": (226, 176, 140),
    "medium": (198, 140, 100),
    "tan": (158, 104, 70),
    "dark": (98, 64, 44),
}
HAIR_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (32, 26, 24),
    "brown": (104, 66, 36),
    "blonde": (222, 190, 112),
    "red": (168, 72, 32),
    "grey": (150, 150, 152),
    "white": (232, 232, 228),
}
HAIR_LENGTHS: tuple[str, ...] = ("bald", "short", "medium", "long")
EYE_COLOURS: dict[str, tuple[int, int, int]] = {
    "brown": (92, 56, 30),
    "blue": (60, 110, 190),
    "green": (70, 130, 70),
    "grey": (120, 130, 140),
}
_SHIRTS = ((70, 90, 150), (150, 50, 60), (60, 120, 80), (200, 170, 60), (90, 90, 90),
           (120, 70, 140), (230, 230, 235), (40, 40, 50))  # fmt: skip
_BACKGROUNDS = ((206, 220, 236), (224, 214, 196), (214, 232, 212), (232, 210, 220),
                (220, 220, 220), (200, 214, 214))  # fmt: skip

# Voice by sex and age group: (pitch, rate in words/min, pitch range) means, and the
# eSpeak variants drawn from (f3 and f5 are breathy; grandma/grandpa shake).
_PITCH = {("female", "young"): 68, ("female", "adult"): 58, ("female", "old"): 48,
          ("male", "young"): 50, ("male", "adult"): 38, ("male", "old"): 30}  # fmt: skip
_RATE = {"young": 190, "adult": 163, "old": 135}
_RANGE = {"young": 64, "adult": 50, "old": 34}
_VARIANTS = {
    ("female", "young"): ("f1", "f2", "f4", "f5"),
    ("female", "adult"): ("f1", "f2", "f3", "f4"),
    ("female", "old"): ("f1", "f3", "f4", "grandma"),
    ("male", "young"): ("m1", "m2", "m3", "m6"),
    ("male", "adult"): ("m1", "m2", "m3", "m4", "m6", "m7"),
    ("male", "old"): ("m1", "m4", "m7", "grandpa"),
}
_PITCH_SD, _RATE_SD, _RANGE_SD = 6.0, 12.0, 8.0


@dataclass(frozen=True)
class Identity:
    """A person of the world: who they are, what their face looks like, how they sound.

    Attributes:
        id: the identity's number; its split is :func:`identity_split` of it.
        sex: ``"female"`` or ``"male"``.
        age: ``"young"``, ``"adult"`` or ``"old"``.
        face_ratio: width / height of the head ellipse (men's faces are wider).
        skin: a key of :data:`SKIN_TONES`.
        hair_colour: a key of :data:`HAIR_COLOURS` (grey or white for most old people).
        hair_length: one of :data:`HAIR_LENGTHS` (only old men are bald).
        eye_colour: a key of :data:`EYE_COLOURS`.
        beard: only adult and old men have one.
        wrinkles: the old have them.
        eye_spacing, eye_size, nose_length, mouth_width: the face's own proportions, as
            fractions of the image side (eye_size a factor around 1).
        shirt: RGB of the shirt.
        voice: how they speak.
    """

    id: int
    sex: str
    age: str
    face_ratio: float
    skin: str
    hair_colour: str
    hair_length: str
    eye_colour: str
    beard: bool
    wrinkles: bool
    eye_spacing: float
    eye_size: float
    nose_length: float
    mouth_width: float
    shirt: tuple[int, int, int]
    voice: VoiceParams


# ------------------------------------------------------------------------------ identities


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)). Found: {rng!r}"
        )


def _check_index(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ParameterError(f"{name} must be an integer >= 0. Found: {value!r}")
    return int(value)


def identity_id(split: str, k: int) -> int:
    """The id of the ``k``-th identity of ``split``: ``k * len(SPLITS) + split_id(split)``.

    >>> identity_id("train", 0), identity_id("val", 0), identity_id("train", 1)
    (0, 1, 4)
    """
    if split not in SPLITS:
        raise ParameterError(f"unknown split {split!r}; the splits are {SPLITS}")
    return _check_index(k, "k") * len(SPLITS) + split_id(split)


def identity_split(id: int) -> tuple[str, int]:
    """``(split, k)`` of an identity id: the inverse of :func:`identity_id`."""
    k, s = divmod(_check_index(id, "id"), len(SPLITS))
    return SPLITS[s], k


def _pick(u: float, options):
    return options[min(int(u * len(options)), len(options) - 1)]


def _weighted(u: float, options: tuple, weights: tuple) -> str:
    total, acc = sum(weights), 0.0
    for option, w in zip(options, weights, strict=True):
        acc += w / total
        if u < acc:
            return option
    return options[-1]


def identity(rng: np.random.Generator, *, id: int) -> Identity:
    """A random person, a pure function of ``rng`` (and ``id``, which is only recorded).

    Sexes are equally likely and age groups too; the voice is drawn from the sex and age
    (see the module docstring), never from the rest of the face, so what a voice can
    tell about a face is sex and age and nothing else.

    Args:
        rng: the identity's generator; the only source of randomness.
        id: the identity's id (:func:`identity_id`).
    """
    _check_rng(rng)
    id = _check_index(id, "id")
    u = rng.random(16).tolist()
    g = rng.standard_normal(9).tolist()
    sex = _pick(u[0], SEXES)
    age = _pick(u[1], AGES)
    male = sex == "male"
    if age == "old":
        hair_colour = _weighted(u[2], tuple(HAIR_COLOURS), (1, 1, 0.5, 0.3, 6, 4))
    elif age == "adult":
        hair_colour = _weighted(u[2], tuple(HAIR_COLOURS), (4, 4, 2, 1, 0.7, 0))
    else:
        hair_colour = _weighted(u[2], tuple(HAIR_COLOURS), (4, 4, 2.5, 1, 0, 0))
    if male:
        weights = (3, 5, 1.5, 0.5) if age == "old" else (0, 7, 2, 1)
    else:
        weights = (0, 1, 3, 6)
    hair_length = _weighted(u[3], HAIR_LENGTHS, weights)
    beard = male and age != "young" and u[4] < (0.55 if age == "old" else 0.4)
    skin = _pick(u[5], tuple(SKIN_TONES))
    # Darker skin goes mostly with brown eyes, as in people.
    eye_weights = (6, 1, 1, 1) if skin in ("tan", "dark") else (3, 3, 2, 1)
    eye_colour = _weighted(u[6], tuple(EYE_COLOURS), eye_weights)
    shirt = _pick(u[7], _SHIRTS)
    face_ratio = (0.86 if male else 0.79) + 0.03 * g[0]
    eye_spacing = 0.125 + 0.008 * g[1]
    eye_size = (1.15 if age == "young" else 1.0) * (1.06 if not male else 1.0) + 0.05 * g[2]
    nose_length = (0.055 if male else 0.046) + 0.006 * g[3]
    mouth_width = (0.085 if male else 0.075) + 0.006 * g[4]

    variant = _pick(u[8], _VARIANTS[sex, age])
    pitch = int(np.clip(round(_PITCH[sex, age] + _PITCH_SD * g[5]), 0, 100))
    rate = int(np.clip(round(_RATE[age] + _RATE_SD * g[6]), 80, 450))
    prange = int(np.clip(round(_RANGE[age] + _RANGE_SD * g[7]), 0, 100))
    voice = VoiceParams(variant, pitch=pitch, rate=rate, pitch_range=prange)
    return Identity(
        id=id, sex=sex, age=age, face_ratio=round(face_ratio, 4), skin=skin,
        hair_colour=hair_colour, hair_length=hair_length, eye_colour=eye_colour,
        beard=beard, wrinkles=age == "old", eye_spacing=round(eye_spacing, 4),
        eye_size=round(eye_size, 4), nose_length=round(nose_length, 4),
        mouth_width=round(mouth_width, 4), shirt=shirt, voice=voice,
    )  # fmt: skip


# ------------------------------------------------------------------------------ drawing
#
# A face is drawn in two steps. Once per (identity, image size), every part but the mouth
# is rasterised, each in its own bounding box (pixel centres at i + 0.5), into a *label*
# image: one small integer per pixel naming the part (skin, hair, iris, ...), on a canvas
# a few pixels larger than the image, and kept in an LRU cache. Each call then takes a
# window of it (the head's jitter is an integer shift), draws the mouth in the window's
# labels, and looks every label up in the palette of the call's light: ~80 us at 64 px,
# against ~800 us for painting all ~30 parts anew.

_HEAD_RY = 0.33  # head half-height / S
_HEAD_CY = 0.48  # head centre / S
_MOUTH_Y = 0.215  # upper lip's lower edge below the head centre / S
_LIP = 0.018  # lip thickness / S
_MAX_OPEN = 0.07  # mouth opening at mouth_open = 1 / S
_SHIFT = 0.02  # the head moves by up to this fraction of S from call to call
_LIGHT = 0.04  # and the light by up to this factor either way

# The parts; a label is an index into the identity's palette.
(_BG, _SHIRT, _NECK, _HAIR, _EAR, _SKIN, _WRINKLE, _BEARD, _WHITE, _IRIS, _PUPIL, _BROW,
 _NOSE, _LIPS, _INSIDE, _TEETH, _LIPLINE) = range(17)  # fmt: skip
_N_LABELS = 17


def _box(lo: float, hi: float, n: int) -> tuple[int, int]:
    return max(0, int(math.floor(lo))), min(n, int(math.ceil(hi)))


def _ellipse_mask(cy, cx, ry, rx, h, w):
    """(y0, x0, mask) of the pixels whose centre lies in the ellipse, clipped to (h, w)."""
    y0, y1 = _box(cy - ry, cy + ry, h)
    x0, x1 = _box(cx - rx, cx + rx, w)
    if y1 <= y0 or x1 <= x0 or ry <= 0 or rx <= 0:
        return y0, x0, None
    dy = (np.arange(y0, y1) + (0.5 - cy)) / ry
    dx = (np.arange(x0, x1) + (0.5 - cx)) / rx
    return y0, x0, (dy * dy)[:, None] + dx * dx <= 1.0


def _fill(img, y0, x0, mask, label) -> None:
    if mask is not None:
        img[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]][mask] = label


def _ellipse(img, cy, cx, ry, rx, label) -> None:
    y0, x0, mask = _ellipse_mask(cy, cx, ry, rx, *img.shape)
    _fill(img, y0, x0, mask, label)


def _segment(img, ya, xa, yb, xb, label) -> None:
    """A 1-px line from (ya, xa) to (yb, xb) (pixel coordinates, centres at i + 0.5)."""
    n = int(max(abs(yb - ya), abs(xb - xa))) + 2
    ys = np.floor(np.linspace(ya, yb, n)).astype(np.intp)
    xs = np.floor(np.linspace(xa, xb, n)).astype(np.intp)
    keep = (ys >= 0) & (ys < img.shape[0]) & (xs >= 0) & (xs < img.shape[1])
    img[ys[keep], xs[keep]] = label


def _margin(size: int) -> int:
    return int(math.ceil(_SHIFT * size))


def _palette(ident: Identity) -> np.ndarray:
    """(_N_LABELS, 3) float64 RGB of each part at normal light (background left black)."""
    skin = np.asarray(SKIN_TONES[ident.skin], np.float64)
    hair = np.asarray(HAIR_COLOURS[ident.hair_colour], np.float64)
    grey = np.asarray(HAIR_COLOURS["grey"], np.float64)
    bald = ident.hair_length == "bald"
    pal = np.zeros((_N_LABELS, 3))
    pal[_SHIRT] = ident.shirt
    pal[_NECK] = 0.85 * skin
    pal[_HAIR] = hair
    pal[_EAR] = 0.9 * skin
    pal[_SKIN] = skin
    pal[_WRINKLE] = 0.72 * skin
    pal[_BEARD] = grey if bald else hair
    pal[_WHITE] = (245, 245, 242)
    pal[_IRIS] = EYE_COLOURS[ident.eye_colour]
    pal[_PUPIL] = (20, 20, 24)
    pal[_BROW] = grey if bald else hair
    pal[_NOSE] = 0.8 * skin
    if ident.sex == "female":  # lipstick red
        pal[_LIPS] = (176, 64, 78)
    else:
        pal[_LIPS] = 0.7 * 0.78 * skin + 0.3 * np.array([150.0, 60.0, 60.0])
    pal[_INSIDE] = (58, 18, 24)
    pal[_TEETH] = (236, 232, 222)
    pal[_LIPLINE] = (90, 40, 40)
    return pal


def _centre(size: int) -> tuple[float, float]:
    """(cy, cx) of the head on the label canvas (the image plus a margin on every side)."""
    m = _margin(size)
    return m + _HEAD_CY * size, m + 0.5 * size


@functools.lru_cache(maxsize=4096)
def _labels(ident: Identity, size: int) -> np.ndarray:
    """(S + 2m, S + 2m) uint8 labels of everything but the mouth, head at :func:`_centre`."""
    s = size
    n = s + 2 * _margin(s)
    cy, cx = _centre(s)
    img = np.full((n, n), _BG, np.uint8)
    ry = _HEAD_RY * s
    rx = ry * ident.face_ratio

    # Shoulders and neck, then the hair that falls behind the head.
    _ellipse(img, cy + (1.08 - _HEAD_CY) * s, cx, 0.24 * s, 0.44 * s, _SHIRT)
    y0, y1 = _box(cy + 0.6 * ry, cy + (0.9 - _HEAD_CY) * s, n)
    x0, x1 = _box(cx - 0.42 * rx, cx + 0.42 * rx, n)
    img[y0:y1, x0:x1] = _NECK
    if ident.hair_length in ("medium", "long"):
        _ellipse(img, cy - 0.05 * s, cx, ry * 1.1, rx * 1.2, _HAIR)
        bottom = cy + (0.42 if ident.hair_length == "long" else 0.16) * s
        y0, y1 = _box(cy - 0.05 * s, bottom, n)
        x0, x1 = _box(cx - rx * 1.2, cx + rx * 1.2, n)
        img[y0:y1, x0:x1] = _HAIR

    # Ears, head.
    for side in (-1, 1):
        _ellipse(img, cy + 0.02 * s, cx + side * rx, 0.07 * s, 0.04 * s, _EAR)
    _ellipse(img, cy, cx, ry, rx, _SKIN)

    # Wrinkles under everything else on the face (a beard hides the lower ones).
    if ident.wrinkles:
        for k in range(3):
            yk = cy - (0.1 + 0.035 * k) * s
            _segment(img, yk, cx - 0.1 * s, yk, cx + 0.1 * s, _WRINKLE)
        ey = cy - 0.02 * s
        for side in (-1, 1):
            ex = cx + side * (ident.eye_spacing + 0.07) * s
            _segment(img, ey - 0.02 * s, ex, ey - 0.04 * s, ex + side * 0.03 * s, _WRINKLE)
            _segment(img, ey + 0.02 * s, ex, ey + 0.04 * s, ex + side * 0.03 * s, _WRINKLE)
            _segment(img, cy + 0.09 * s, cx + side * 0.05 * s,
                     cy + 0.2 * s, cx + side * 0.1 * s, _WRINKLE)  # fmt: skip

    # Hair on top: the cap of a slightly larger ellipse above a hairline that dips at the
    # temples.
    if ident.hair_length != "bald":
        y0, x0, mask = _ellipse_mask(cy - 0.02 * s, cx, ry * 1.06, rx * 1.1, n, n)
        if mask is not None:
            ys = np.arange(y0, y0 + mask.shape[0]) + 0.5
            xs = (np.arange(x0, x0 + mask.shape[1]) + (0.5 - cx)) / rx
            hairline = cy - 0.17 * s + 0.16 * s * np.minimum(xs * xs, 1.5)
            _fill(img, y0, x0, mask & (ys[:, None] < hairline), _HAIR)

    # Beard: the head's lower part from below the nose, moustache included.
    if ident.beard:
        y0, x0, mask = _ellipse_mask(cy + 0.03 * s, cx, ry, rx * 1.04, n, n)
        if mask is not None:
            ys = np.arange(y0, y0 + mask.shape[0]) + 0.5
            _fill(img, y0, x0, mask & (ys[:, None] > cy + 0.13 * s), _BEARD)

    # Eyes, brows (men's thicker), nose.
    ey = cy - 0.02 * s
    thick = 0.017 if ident.sex == "male" else 0.011
    e = ident.eye_size
    for side in (-1, 1):
        ex = cx + side * ident.eye_spacing * s
        _ellipse(img, ey, ex, 0.034 * s * e, 0.055 * s * e, _WHITE)
        _ellipse(img, ey, ex, 0.028 * s * e, 0.028 * s * e, _IRIS)
        _ellipse(img, ey, ex, 0.013 * s * e, 0.013 * s * e, _PUPIL)
        _ellipse(img, ey - 0.07 * s, ex, thick * s, 0.062 * s, _BROW)
    _ellipse(img, cy + 0.06 * s, cx, ident.nose_length * s, 0.016 * s, _NOSE)
    img.flags.writeable = False
    return img


def _draw_mouth(labels: np.ndarray, ident: Identity, cy: float, cx: float, opening: float):
    """Lips and, when open, the dark mouth with the upper teeth, around the head centre
    (cy, cx) of ``labels``. The upper lip stays put and the lower lip drops with the jaw,
    so the mouth grows downwards only."""
    s = labels.shape[0]
    my, mw = cy + _MOUTH_Y * s, ident.mouth_width * s
    h = opening * _MAX_OPEN * s
    _ellipse(labels, my + h / 2, cx, h / 2 + _LIP * s, mw, _LIPS)
    if h >= 0.5:
        _ellipse(labels, my + h / 2, cx, h / 2, mw * 0.82, _INSIDE)
        y0, y1 = _box(my, my + min(h * 0.3, 0.02 * s), s)
        x0, x1 = _box(cx - mw * 0.5, cx + mw * 0.5, s)
        labels[y0:y1, x0:x1] = _TEETH
    else:  # a closed mouth: the line between the lips
        y = int(my)
        x0, x1 = _box(cx - mw * 0.85, cx + mw * 0.85, s)
        if 0 <= y < s:
            labels[y, x0:x1] = _LIPLINE


def _box_array(lo: np.ndarray, hi: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_box` of arrays of bounds."""
    return np.maximum(0, np.floor(lo)), np.minimum(n, np.ceil(hi))


def _ellipses_in_box(rows, cols, cy, ry, cx, rx, n) -> np.ndarray:
    """(K, len(rows), len(cols)) masks of the pixels that ``_ellipse`` fills for the K
    ellipses of centres (cy[k], cx) and radii (ry[k], rx), clipped to (n, n), over the
    pixels ``rows`` x ``cols``; the same float operations, so the same pixels."""
    y0, y1 = _box_array(cy - ry, cy + ry, n)
    x0, x1 = _box(cx - rx, cx + rx, n)
    valid = (y1 > y0) & (x1 > x0) & (ry > 0) & (rx > 0)
    dy = (rows + (0.5 - cy[:, None])) / np.where(ry > 0, ry, 1.0)[:, None]
    inside_rows = (rows >= y0[:, None]) & (rows < y1[:, None]) & valid[:, None]
    if rx > 0:
        dx = (cols + (0.5 - cx)) / rx
    else:
        dx = np.full(len(cols), np.inf)
    inside_cols = (cols >= x0) & (cols < x1)
    mask = (dy * dy)[:, :, None] + dx * dx <= 1.0
    return mask & inside_rows[:, :, None] & inside_cols


def _mouth_patches(window, ident: Identity, cy: float, cx: float, openings, box):
    """(K, bottom - top, right - left) uint8 labels of ``window[top:bottom, left:right]``
    after :func:`_draw_mouth` with each of the K ``openings`` (float64), all at once:
    the same pixels as K calls of it, given that ``box`` holds every pixel it touches."""
    top, bottom, left, right = box
    s = window.shape[0]
    rows = np.arange(top, bottom)
    cols = np.arange(left, right)
    my, mw = cy + _MOUTH_Y * s, ident.mouth_width * s
    h = openings * _MAX_OPEN * s
    centre = my + h / 2
    patches = np.repeat(window[None, top:bottom, left:right], len(openings), axis=0)
    lips = _ellipses_in_box(rows, cols, centre, h / 2 + _LIP * s, cx, mw, s)
    patches[lips] = _LIPS
    opened = h >= 0.5
    inside = _ellipses_in_box(rows, cols, centre, h / 2, cx, mw * 0.82, s)
    patches[inside & opened[:, None, None]] = _INSIDE
    y0, y1 = _box_array(np.full_like(h, my), my + np.minimum(h * 0.3, 0.02 * s), s)
    x0, x1 = _box(cx - mw * 0.5, cx + mw * 0.5, s)
    teeth_rows = (rows >= y0[:, None]) & (rows < y1[:, None]) & opened[:, None]
    teeth_cols = (cols >= x0) & (cols < x1)
    patches[teeth_rows[:, :, None] & teeth_cols] = _TEETH
    y = int(my)
    if 0 <= y < s and (~opened).any():
        x0, x1 = _box(cx - mw * 0.85, cx + mw * 0.85, s)
        line = (rows == y)[:, None] & (cols >= x0) & (cols < x1)
        patches[~opened] = np.where(line, _LIPLINE, patches[~opened])
    return patches


def _pose(rng: np.random.Generator, ident: Identity, size: int):
    """One call's jitter: (window of the label canvas, head centre in it, (3, K) palette)."""
    u = rng.random(4).tolist()
    m = _margin(size)
    oy, ox = int(u[0] * (2 * m + 1)), int(u[1] * (2 * m + 1))
    pal = _palette_cached(ident).copy()
    pal[_BG] = _BACKGROUNDS[_pick(u[3], range(len(_BACKGROUNDS)))]
    light = 1.0 + _LIGHT * (2.0 * u[2] - 1.0)
    palette = np.clip(np.rint(pal * light), 0, 255).astype(np.uint8).T.copy()
    window = _labels(ident, size)[oy : oy + size, ox : ox + size]
    cy, cx = _centre(size)
    return window, (cy - oy, cx - ox), palette


@functools.lru_cache(maxsize=4096)
def _palette_cached(ident: Identity) -> np.ndarray:
    pal = _palette(ident)
    pal.flags.writeable = False
    return pal


def mouth_box(ident: Identity, *, image_size: int = 64) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)``: the rows and columns (bottom and right exclusive)
    that the mouth of any :func:`draw_face` of ``ident`` can touch, over every jitter
    and opening."""
    return _mouth_box(_check_identity(ident), _check_image_size(image_size))


def _mouth_box(ident: Identity, s: int) -> tuple[int, int, int, int]:
    m = _margin(s)
    top = (_HEAD_CY + _MOUTH_Y - _LIP) * s - m
    bottom = (_HEAD_CY + _MOUTH_Y + _MAX_OPEN + _LIP) * s + m
    half = ident.mouth_width * s + m
    return (max(0, math.floor(top)), min(s, math.ceil(bottom) + 1),
            max(0, math.floor(0.5 * s - half)), min(s, math.ceil(0.5 * s + half) + 1))  # fmt: skip


def _check_image_size(image_size) -> int:
    # Below 32 px the eyes, brows and mouth are a pixel or two and blur into each other.
    if isinstance(image_size, bool) or not isinstance(image_size, numbers.Integral):
        raise ParameterError(f"image_size must be an integer >= 32. Found: {image_size!r}")
    if image_size < 32:
        raise ParameterError(f"image_size must be an integer >= 32. Found: {image_size}")
    return int(image_size)


def _check_open(mouth_open) -> float:
    if isinstance(mouth_open, bool) or not isinstance(mouth_open, numbers.Real):
        raise ParameterError(f"mouth_open must be a number in [0, 1]. Found: {mouth_open!r}")
    value = float(mouth_open)
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ParameterError(f"mouth_open must be in [0, 1]. Found: {mouth_open!r}")
    return value


def _check_identity(ident) -> Identity:
    if not isinstance(ident, Identity):
        raise ParameterError(f"ident must be an Identity (see identity()). Found: {ident!r}")
    return ident


def draw_face(
    rng: np.random.Generator, ident: Identity, *, image_size: int = 64, mouth_open: float = 0.0
) -> np.ndarray:
    """A frontal cartoon face of ``ident``: ``(3, image_size, image_size)`` uint8 RGB.

    Args:
        rng: the drawing's generator (four uniforms per call): it moves the head by up to
            2% of the image, changes the light by up to 4% and picks the background.
        ident: who to draw; the same identity always has the same face.
        image_size: side in pixels, >= 32.
        mouth_open: 0 (closed) to 1 (wide open); only pixels inside :func:`mouth_box`
            change with it.

    The first drawing of an identity at a size costs ~0.9 ms; later ones ~80 us (64 px).

    Example:
        >>> img = draw_face(np.random.default_rng(0), person, mouth_open=0.3)
        >>> img.shape, img.dtype
        ((3, 64, 64), dtype('uint8'))
    """
    _check_rng(rng)
    ident = _check_identity(ident)
    size = _check_image_size(image_size)
    mouth_open = _check_open(mouth_open)
    window, (cy, cx), palette = _pose(rng, ident, size)
    labels = window.copy()
    _draw_mouth(labels, ident, cy, cx, mouth_open)
    # np.take is ~6x faster than palette[:, labels] for a small table.
    return np.take(palette, labels, axis=1)


# ------------------------------------------------------------------------------ talking


def _as_audio(audio) -> np.ndarray:
    if hasattr(audio, "detach") and hasattr(audio, "numpy"):  # a torch tensor
        audio = audio.detach().cpu().numpy()
    if not isinstance(audio, np.ndarray):
        raise ParameterError(
            f"audio must be a numpy.ndarray or torch.Tensor. Found: {type(audio).__name__}"
        )
    if audio.ndim != 1 or audio.size == 0 or not np.issubdtype(audio.dtype, np.floating):
        raise ParameterError(
            f"audio must be a non-empty float (time,) waveform. "
            f"Found shape {audio.shape}, dtype {audio.dtype}"
        )
    if not np.isfinite(audio).all():
        raise ParameterError("audio contains NaN or Inf samples")
    return audio.astype(np.float64, copy=False)


def _check_rate(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ParameterError(f"{name} must be an integer > 0. Found: {value!r}")
    return int(value)


def _frame_rms(y: np.ndarray, sr: int, fps: int) -> np.ndarray:
    """RMS of each video frame's stretch of audio: frame t covers [t sr/fps, (t+1) sr/fps)."""
    n_frames = max(1, math.ceil(len(y) * fps / sr))
    starts = np.minimum((np.arange(n_frames) * sr) // fps, len(y) - 1)
    sums = np.add.reduceat(y * y, starts)
    counts = np.diff(np.append(starts, len(y)))
    return np.sqrt(sums / np.maximum(counts, 1))


def mouth_track(audio, sr: int, *, fps: int = 25) -> np.ndarray:
    """How open the mouth is in each video frame, from the loudness of the speech.

    The RMS of each frame's audio (40 ms at 25 fps), smoothed over three frames (so the
    mouth does not flicker), divided by its 95th percentile and clipped to [0, 1]; frames
    below 5% of that are silence and shut the mouth.

    Args:
        audio: ``(time,)`` float waveform (numpy or torch).
        sr: its sample rate in Hz.
        fps: video frames per second.

    Returns:
        float32 ``(frames,)`` in [0, 1], ``frames = ceil(time * fps / sr)``.
    """
    y = _as_audio(audio)
    sr = _check_rate(sr, "sr")
    fps = _check_rate(fps, "fps")
    if fps > sr:
        raise ParameterError(f"fps must be at most sr ({sr}). Found: {fps}")
    rms = _frame_rms(y, sr, fps)
    if len(rms) >= 3:
        padded = np.pad(rms, 1, mode="edge")
        rms = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
    scale = np.percentile(rms, 95)
    if scale <= 0:
        return np.zeros(len(rms), np.float32)
    track = np.clip(rms / scale, 0.0, 1.0)
    track[track < 0.05] = 0.0
    return track.astype(np.float32)


def talking_face(
    rng: np.random.Generator, ident: Identity, audio, sr: int, *, fps: int = 25,
    image_size: int = 64,
) -> np.ndarray:  # fmt: skip
    """Frames of ``ident`` saying ``audio``: ``(T, 3, H, W)`` uint8, T from :func:`mouth_track`.

    One pose (``rng`` is used as by one :func:`draw_face` call) for the whole clip; only
    the mouth moves, opened by :func:`mouth_track`. Frame ``t`` equals
    ``draw_face(rng_copy, ident, mouth_open=track[t])`` for a copy of ``rng``'s state.
    """
    _check_rng(rng)
    ident = _check_identity(ident)
    size = _check_image_size(image_size)
    track = mouth_track(audio, sr, fps=fps)
    window, (cy, cx), palette = _pose(rng, ident, size)
    # The face without a mouth is coloured once; the mouth only ever touches the pixels
    # of mouth_box, so only that box is drawn per distinct opening (silence and clipped
    # peaks repeat 0 and 1), all openings at once, and pasted into the frames.
    box = _mouth_box(ident, size)
    top, bottom, left, right = box
    openings, which = np.unique(track, return_inverse=True)
    patches = _mouth_patches(window, ident, cy, cx, openings.astype(np.float64), box)
    frames = np.empty((len(track), 3, size, size), np.uint8)
    frames[:] = np.take(palette, window, axis=1)
    coloured = np.take(palette, patches, axis=1).transpose(1, 0, 2, 3)  # (K, 3, h, w)
    frames[:, :, top:bottom, left:right] = coloured[which.reshape(-1)]
    return frames
