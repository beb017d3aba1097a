"""The renderer: layout invariants, what the pixels and masks say, places, determinism."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from xmodal.errors import ParameterError
from xmodal.world import render as R
from xmodal.world.render import layout, max_objects, place_background, render
from xmodal.world.schema import COLOURS, PLACES, SHAPES, SIZES, WorldObject

SHAPE_LIST = list(SHAPES)
COLOUR_LIST = list(COLOURS)
SIZE_LIST = list(SIZES)


def random_specs(rng: np.random.Generator, n: int, size: str | None = None):
    return [
        (
            SHAPE_LIST[int(rng.integers(len(SHAPE_LIST)))],
            COLOUR_LIST[int(rng.integers(len(COLOUR_LIST)))],
            size or SIZE_LIST[int(rng.integers(len(SIZE_LIST)))],
        )
        for _ in range(n)
    ]


def scene(seed: int, image_size: int = 64, n: int | None = None, place: str | None = None):
    """A scene as the world makes one: layout, then render, from one generator."""
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(1, 4))
    place = place or PLACES[int(rng.integers(len(PLACES)))]
    objects = layout(rng, random_specs(rng, n), image_size=image_size)
    return render(rng, place, objects, image_size=image_size)


def fill_of(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The object's filled pixels: its mask less the near-black outline.

    Every fill colour has a channel >= 160 even at the lowest jitter; the outline has none
    above 60.
    """
    return mask & (image.max(axis=0) >= 60)


def extent(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


# --- determinism -------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes():
    for seed in range(5):
        a_img, a_masks, a_objs = scene(seed)
        b_img, b_masks, b_objs = scene(seed)
        assert a_img.tobytes() == b_img.tobytes()
        assert a_masks.tobytes() == b_masks.tobytes()
        assert a_objs == b_objs


def test_different_seeds_give_different_images():
    images = {scene(seed)[0].tobytes() for seed in range(30)}
    assert len(images) == 30
    for place in PLACES:
        backgrounds = {
            place_background(np.random.default_rng(seed), place, 64).tobytes() for seed in range(10)
        }
        assert len(backgrounds) == 10, place


def test_background_bank_depends_on_its_key_only():
    def draw():
        return [place_background(np.random.default_rng(s), p, 32) for p in PLACES for s in (0, 1)]

    first = draw()
    R._bank.cache_clear()
    # Build the banks in another order, after other draws: the content must not change.
    for p in reversed(PLACES):
        place_background(np.random.default_rng(99), p, 48)
        place_background(np.random.default_rng(99), p, 32)
    second = draw()
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, second, strict=True))


def _digest(seeds, image_size) -> str:
    h = hashlib.sha256()
    for seed in seeds:
        image, masks, objects = scene(seed, image_size)
        h.update(image.tobytes())
        h.update(masks.tobytes())
        h.update(repr(objects).encode())
    return h.hexdigest()


def test_same_bytes_in_another_process_with_another_hash_seed():
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from test_render import _digest; print(_digest(range(8), 32))"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run(
        [sys.executable, "-c", code, os.path.dirname(__file__)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == _digest(range(8), 32)


# --- layout ------------------------------------------------------------------------------


@pytest.mark.parametrize("image_size", [32, 64])
def test_layout_invariants(image_size):
    margin = 0.1 * image_size
    for seed in range(300):
        rng = np.random.default_rng([seed, image_size])
        n = int(rng.integers(1, max_objects(image_size) + 1))
        specs = random_specs(rng, n)
        objects = layout(rng, specs, image_size=image_size)
        assert [(o.shape, o.colour, o.size) for o in objects] == specs
        for o in objects:
            assert o.radius == SIZES[o.size][0] * image_size
            assert o.bbox == (0, 0, 0, 0) and o.sounding is False
        for i, a in enumerate(objects):
            for b in objects[i + 1 :]:
                dx, dy = a.x - b.x, a.y - b.y
                assert math.hypot(dx, dy) >= a.radius + b.radius + 2
                assert abs(dx) > margin or abs(dy) > margin
        image, masks, drawn = render(rng, "snow", objects, image_size=image_size)
        assert masks.sum(axis=0).max() <= 1  # no overlap
        for k, o in enumerate(drawn):
            fill = fill_of(image, masks[k])
            # Wholly inside with a 1-px border: the fill never reaches the image's edge,
            # and its outline closes around it (every 4-neighbour of a fill pixel is in
            # the object's mask), so nothing was clipped.
            assert not (fill[0].any() or fill[-1].any() or fill[:, 0].any() or fill[:, -1].any())
            ys, xs = np.nonzero(fill)
            for ny, nx in ((ys - 1, xs), (ys + 1, xs), (ys, xs - 1), (ys, xs + 1)):
                assert masks[k][ny, nx].all(), (seed, o)


def test_layout_keeps_a_larger_margin_and_sounding():
    for seed in range(100):
        rng = np.random.default_rng(seed)
        sounding = [True, False, True]
        objects = layout(rng, random_specs(rng, 3), image_size=64, sounding=sounding, margin=15.0)
        assert [o.sounding for o in objects] == sounding
        for i, a in enumerate(objects):
            for b in objects[i + 1 :]:
                assert abs(a.x - b.x) > 15.0 or abs(a.y - b.y) > 15.0


def test_layout_raises_when_objects_do_not_fit():
    rng = np.random.default_rng(0)
    with pytest.raises(ParameterError, match=r"cannot place 8 objects in a 32x32 image"):
        layout(rng, [("circle", "red", "large")] * 8, image_size=32)
    with pytest.raises(ParameterError, match=r"cannot place 2 objects"):
        layout(rng, [("circle", "red", "small")] * 2, image_size=32, margin=40.0)


@pytest.mark.parametrize("image_size", [32, 64])
def test_max_objects_are_placed_reliably(image_size):
    k = max_objects(image_size)
    for seed in range(400):
        rng = np.random.default_rng([seed, image_size, 1])
        layout(rng, random_specs(rng, k, size="large"), image_size=image_size)
    # Triangles are the bulkiest shape (their outline's apex and corners reach furthest).
    for seed in range(200):
        rng = np.random.default_rng([seed, image_size, 2])
        layout(rng, [("triangle", "red", "large")] * k, image_size=image_size)


def test_max_objects_grows_with_the_image():
    counts = [max_objects(s) for s in range(16, 257)]
    assert counts == sorted(counts)
    assert max_objects(32) >= 3 and max_objects(64) >= 3  # the world's 1-3 objects fit
    # One more than max_objects fails often: the bound is not needlessly low.
    fails = 0
    for seed in range(50):
        rng = np.random.default_rng(seed)
        try:
            layout(rng, [("square", "red", "large")] * (max_objects(64) + 1), image_size=64)
        except ParameterError:
            fails += 1
    assert fails > 10


# --- render ------------------------------------------------------------------------------


@pytest.mark.parametrize("image_size", [32, 64])
def test_masks_bboxes_and_background(image_size):
    for seed in range(60):
        image, masks, objects = scene(seed, image_size)
        assert image.shape == (3, image_size, image_size) and image.dtype == np.uint8
        assert masks.shape == (len(objects), image_size, image_size) and masks.dtype == bool
        assert masks.sum(axis=0).max() <= 1  # disjoint
        for mask, o in zip(masks, objects, strict=True):
            assert mask.any()
            assert o.bbox == extent(mask)
        # Outside every mask the image is the background alone: drawn from the same
        # generator state, it comes first.
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 4))
        place = PLACES[int(rng.integers(len(PLACES)))]
        layout(rng, random_specs(rng, n), image_size=image_size)
        background = place_background(rng, place, image_size)
        outside = ~masks.any(axis=0)
        assert np.array_equal(image[:, outside], background[:, outside])


def test_mask_pixels_have_the_objects_colour():
    for seed in range(60):
        image, masks, objects = scene(seed, 64)
        for mask, o in zip(masks, objects, strict=True):
            fill = fill_of(image, mask)
            pixels = image[:, fill].T.astype(float)  # (N, 3)
            rgb = np.array(COLOURS[o.colour][0], float)
            assert np.all(np.abs(pixels - rgb) <= 0.06 * rgb + 1.0), o
            assert np.all(pixels == pixels[0])  # one jittered colour per object
            # Mostly fill: the outline is a 1-px ring around it.
            assert fill.sum() >= 0.5 * mask.sum(), o
            outline = image[:, mask & ~fill]
            assert outline.max() < 60  # near black


def one(shape: str, size: str = "large", image_size: int = 64, x=31.3, y=30.6, colour="red"):
    obj = WorldObject(shape, colour, size, x, y, SIZES[size][0] * image_size)
    image, masks, (drawn,) = render(np.random.default_rng(0), "night", [obj], image_size=image_size)
    return image, masks[0], drawn


@pytest.mark.parametrize("shape", ["circle", "square", "diamond"])
def test_centre_pixel_is_filled(shape):
    for seed in range(30):
        image, masks, objects = scene(seed)
        for mask, o in zip(masks, objects, strict=True):
            if o.shape == shape:
                fill = fill_of(image, mask)
                assert fill[int(o.y), int(o.x)]


def test_shape_areas():
    areas = {}
    for shape in SHAPES:
        for size in SIZES:
            image, mask, o = one(shape, size)
            areas[shape, size] = fill_of(image, mask).sum()
        assert areas[shape, "large"] > 2 * areas[shape, "small"], shape
    for size in SIZES:
        r = SIZES[size][0] * 64
        assert abs(areas["circle", size] / (math.pi * r * r) - 1) < 0.1
        # Comparable sizes: no shape is less than half or more than the circle.
        for shape in SHAPES:
            assert 0.45 <= areas[shape, size] / areas["circle", size] <= 1.0, shape


def test_shapes_look_like_their_names():
    def fill_box(shape):
        image, mask, _ = one(shape)
        fill = fill_of(image, mask)
        x0, y0, x1, y1 = extent(fill)
        return fill[y0:y1, x0:x1]

    square, circle, diamond = fill_box("square"), fill_box("circle"), fill_box("diamond")
    assert square.all()  # fills its box
    assert 0.72 < circle.mean() < 0.85  # pi / 4 of it
    assert 0.42 < diamond.mean() < 0.6  # half of it, the corners empty
    assert not (diamond[0, 0] or diamond[0, -1] or diamond[-1, 0] or diamond[-1, -1])
    triangle = fill_box("triangle")
    widths = triangle.sum(axis=1)
    assert widths[0] < 0.25 * widths[-1] and np.all(np.diff(widths) >= 0)  # upright
    cross = fill_box("cross")
    h, w = cross.shape
    assert cross[h // 2].all() and cross[:, w // 2].all()  # the arms span it
    assert not (cross[0, 0] or cross[0, -1] or cross[-1, 0] or cross[-1, -1])
    assert 0.3 < cross[h // 2 - 1 : h // 2 + 2].all(axis=0).mean()  # arms are thick


def test_overlapping_objects_later_one_on_top():
    a = WorldObject("circle", "red", "large", 30.0, 30.0, 10.0)
    b = WorldObject("square", "blue", "large", 38.0, 30.0, 10.0)
    hidden = WorldObject("circle", "green", "small", 38.0, 30.0, 3.0)
    image, masks, (da, db) = render(np.random.default_rng(0), "city", [a, b], image_size=64)
    assert not (masks[0] & masks[1]).any()
    assert masks[1].sum() == one("square", x=38.0, y=30.0)[1].sum()  # b is whole
    assert da.bbox == extent(masks[0]) and da.bbox[2] < extent(one("circle", x=30, y=30)[1])[2]
    _, masks, (dh, _) = render(np.random.default_rng(0), "city", [hidden, b], image_size=64)
    assert not masks[0].any() and dh.bbox == (0, 0, 0, 0)


# --- places ------------------------------------------------------------------------------


def place_features(image: np.ndarray) -> np.ndarray:
    h = image.shape[1] // 2
    return np.concatenate([image[:, :h].mean(axis=(1, 2)), image[:, h:].mean(axis=(1, 2))])


@pytest.mark.parametrize("image_size", [32, 64])
def test_places_are_distinguishable(image_size):
    """Nearest centroid on the mean colours of the top and bottom halves, objects included."""

    def features(place, seeds):
        out = []
        for seed in seeds:
            rng = np.random.default_rng([seed, image_size])
            objects = layout(rng, random_specs(rng, int(rng.integers(1, 4))), image_size=image_size)
            image, _, _ = render(rng, place, objects, image_size=image_size)
            assert image.shape == (3, image_size, image_size) and image.dtype == np.uint8
            out.append(place_features(image))
        return np.array(out)

    centroids = np.array([features(p, range(20)).mean(axis=0) for p in PLACES])
    correct = 0
    for label, place in enumerate(PLACES):
        test = features(place, range(1000, 1020))
        distances = ((test[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
        correct += int((distances.argmin(axis=1) == label).sum())
    assert correct / (20 * len(PLACES)) >= 0.9


def test_place_background_shape_and_variety():
    for place in PLACES:
        for image_size in (16, 32, 64):
            img = place_background(np.random.default_rng(0), place, image_size)
            assert img.shape == (3, image_size, image_size) and img.dtype == np.uint8
            assert img.flags.writeable and img.flags.c_contiguous
        # Not a flat colour: a picture with structure.
        assert img.std(axis=(1, 2)).max() > 5, place


# --- bad input ---------------------------------------------------------------------------


def test_bad_input_names_the_value():
    rng = np.random.default_rng(0)
    good = WorldObject("circle", "red", "small", 20.0, 20.0, 5.76)
    with pytest.raises(ParameterError, match=r"place must be one of 'beach'.*Found: 'moon'"):
        place_background(rng, "moon", 64)
    with pytest.raises(ParameterError, match=r"'underwater'. Found: 'moon'"):
        render(rng, "moon", [good], image_size=64)
    with pytest.raises(ParameterError, match=r"shape must be one of .*Found: 'hexagon'"):
        layout(rng, [("hexagon", "red", "small")], image_size=64)
    with pytest.raises(ParameterError, match=r"colour must be one of .*Found: 'pink'"):
        layout(rng, [("circle", "pink", "small")], image_size=64)
    with pytest.raises(ParameterError, match=r"size must be one of .*Found: 'huge'"):
        layout(rng, [("circle", "red", "huge")], image_size=64)
    with pytest.raises(ParameterError, match=r"specs\[1\] must be a \(shape, colour, size\)"):
        layout(rng, [("circle", "red", "small"), "circle"], image_size=64)
    with pytest.raises(ParameterError, match=r"objects\[0\] shape .*Found: 'hexagon'"):
        render(rng, "beach", [WorldObject("hexagon", "red", "small", 9, 9, 3)], image_size=64)
    with pytest.raises(ParameterError, match=r"objects\[0\] colour .*Found: 'pink'"):
        render(rng, "beach", [WorldObject("circle", "pink", "small", 9, 9, 3)], image_size=64)
    for bad in (8, 15, 0, -3, 32.0, True, "64"):
        with pytest.raises(ParameterError, match=rf"image_size must be an integer >= 16.*{bad!r}"):
            place_background(rng, "beach", bad)
        with pytest.raises(ParameterError, match=r"image_size must be an integer >= 16"):
            layout(rng, [("circle", "red", "small")], image_size=bad)
        with pytest.raises(ParameterError, match=r"image_size must be an integer >= 16"):
            render(rng, "beach", [good], image_size=bad)
        with pytest.raises(ParameterError, match=r"image_size must be an integer >= 16"):
            max_objects(bad)
    with pytest.raises(ParameterError, match=r"margin must be .*Found: -1"):
        layout(rng, [("circle", "red", "small")], image_size=64, margin=-1)
    with pytest.raises(ParameterError, match=r"sounding must be 1 booleans.*\[True, False\]"):
        layout(rng, [("circle", "red", "small")], image_size=64, sounding=[True, False])
    with pytest.raises(ParameterError, match=r"rng must be a numpy.random.Generator.*Found: 0"):
        layout(0, [("circle", "red", "small")], image_size=64)
    with pytest.raises(ParameterError, match=r"objects\[0\] \(small red circle\).*\(70.0, 20.0\)"):
        render(
            rng, "beach", [WorldObject("circle", "red", "small", 70.0, 20.0, 5.0)], image_size=64
        )
    with pytest.raises(ParameterError, match=r"objects\[0\].radius must be .*Found: 0.0"):
        render(rng, "beach", [WorldObject("circle", "red", "small", 7.0, 20.0, 0.0)], image_size=64)
