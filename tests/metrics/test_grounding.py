"""World content metrics (content precision, held-out recall, attention grounding) on
constructed scenes with known answers and on the world's ground truth."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from xmodal.errors import ParameterError
from xmodal.metrics import (
    attention_grounding,
    content_precision,
    grounding_chance,
    held_out_recall,
)
from xmodal.viz import upsample_attention
from xmodal.world import COLOURS, SHAPES, World, WorldObject
from xmodal.world.language import word_attribute

RED_CIRCLE = WorldObject("circle", "red", "large", 10, 10, 8)
BLUE_SQUARE = WorldObject("square", "blue", "small", 40, 40, 5)
GREEN_CROSS = WorldObject("cross", "green", "small", 40, 10, 5)


@pytest.fixture(scope="module")
def scenes():
    world = World(seed=0)
    return [world.scene("test", i, audio=False, questions=False) for i in range(60)]


# ------------------------------------------------------------------------- word_attribute


def test_word_attribute_reads_colours_shapes_plurals_and_nothing_else():
    for colour in COLOURS:
        assert word_attribute(colour) == ("colour", colour)
    for shape in SHAPES:
        assert word_attribute(shape) == ("shape", shape)
    assert word_attribute("crosses") == ("shape", "cross")
    assert word_attribute("Circles,") == ("shape", "circle")
    assert word_attribute("RED") == ("colour", "red")
    for word in ("thing", "things", "object", "shape", "big", "little", "left", "the", "dog", ""):
        assert word_attribute(word) is None
    with pytest.raises(ParameterError, match="word must be a string"):
        word_attribute(3)


# ---------------------------------------------------------------------- content_precision


def test_content_precision_on_constructed_captions():
    objs = [RED_CIRCLE, BLUE_SQUARE]
    cases = {
        "a red circle": True,
        "there is a big red circle left of two blue squares": True,  # counts not checked
        "a red square": False,
        "a red circle and no blue squares": False,  # a named-absent pair that is there
        "a red circle and no green crosses": True,
        "two things": False,  # no colour-shape pair named
        "a red thing and a square": False,
        "no green crosses": False,  # nothing said to be there
    }
    for caption, precise in cases.items():
        assert content_precision([caption], [objs]) == float(precise), caption
    got = content_precision(list(cases), [objs] * len(cases))
    assert got == pytest.approx(sum(cases.values()) / len(cases))


def test_reference_captions_are_precise_whenever_they_name_a_pair(scenes):
    def names_a_pair(caption):
        return any(
            m.colour and m.shape and m.count != 0 for m in World.caption_facts(caption).mentions
        )

    captions, right, wrong = [], [], []
    for i, scene in enumerate(scenes):
        for caption in filter(names_a_pair, scene.captions):
            captions.append(caption)
            right.append(scene.objects)
            wrong.append(scenes[(i + 1) % len(scenes)].objects)
    assert len(captions) > 50
    assert content_precision(captions, right) == 1.0
    # The same captions about the next image are mostly wrong.
    assert content_precision(captions, wrong) < 0.3


def test_content_precision_refuses_bad_input():
    with pytest.raises(ParameterError, match="one entry per image. Found 2 and 1"):
        content_precision(["a", "b"], [[RED_CIRCLE]])
    with pytest.raises(ParameterError, match=r"objects\[0\] must be a list of WorldObjects"):
        content_precision(["a"], [["red circle"]])
    with pytest.raises(ParameterError, match="captions must be a sequence of strings"):
        content_precision("a red circle", [[RED_CIRCLE]])


# ------------------------------------------------------------------------ held_out_recall


def test_held_out_recall_on_constructed_captions():
    held = [("red", "circle"), ("blue", "square")]
    captions = ["a red circle", "a circle", "no red circles", "a blue square", "a green cross"]
    objects = [[RED_CIRCLE], [RED_CIRCLE], [RED_CIRCLE], [RED_CIRCLE, BLUE_SQUARE], [GREEN_CROSS]]
    # pairs shown: 1 + 1 + 1 + 2 (+ none in the last); named: first, and blue square of 4th
    assert held_out_recall(captions, objects, held) == pytest.approx(2 / 5)
    with pytest.warns(UserWarning, match="no image shows a held-out pair"):
        assert math.isnan(held_out_recall(["a green cross"], [[GREEN_CROSS]], held))
    with pytest.raises(ParameterError, match="held_out must hold"):
        held_out_recall(["a"], [[RED_CIRCLE]], [("red", "circles")])


def test_held_out_recall_on_the_compositional_split():
    world = World(seed=0, compositional=True)
    scenes = [world.scene("compositional", i, audio=False, questions=False) for i in range(40)]
    objects = [s.objects for s in scenes]
    held = world.config.held_out
    full = [" and ".join(f"a {o.colour} {o.shape}" for o in objs) for objs in objects]
    assert held_out_recall(full, objects, held) == 1.0
    first = held_out_recall([s.captions[0] for s in scenes], objects, held)
    assert 0.0 < first < 1.0  # references name the pair only sometimes
    none = ["a " + ("green cross" if i % 2 else "yellow diamond") for i in range(len(scenes))]
    assert held_out_recall(none, objects, held) == 0.0


# -------------------------------------------------------------------------- grounding


def _deltas(scene, words, where) -> torch.Tensor:
    """(len(words), H, W) maps, each 1 at where(scene, word) (a pixel) and 0 elsewhere."""
    H, W = scene.masks.shape[1:]
    alphas = torch.zeros(len(words), H, W)
    for t, word in enumerate(words):
        y, x = where(scene, word)
        alphas[t, y, x] = 1.0
    return alphas


def _on_object(scene, word):
    attr = word_attribute(word)
    if attr is None:
        return (0, 0)
    hits = [k for k, o in enumerate(scene.objects) if getattr(o, attr[0]) == attr[1]]
    if not hits:  # "no diamonds": a word naming nothing present is not counted
        return (0, 0)
    ys, xs = scene.masks[hits].any(0).nonzero(as_tuple=True)
    return int(ys[len(ys) // 2]), int(xs[len(xs) // 2])


def test_attention_on_the_named_object_grounds_all_words_and_a_corner_none(scenes):
    words = [s.captions[0].replace(",", " ").split() for s in scenes]
    objects = [s.objects for s in scenes]
    masks = [s.masks for s in scenes]
    on = [_deltas(s, w, _on_object) for s, w in zip(scenes, words, strict=True)]
    score, grounded, counted = attention_grounding(words, on, objects, masks, return_counts=True)
    assert score == 1.0 and grounded == counted > 40

    def empty_pixel(scene, word):
        ys, xs = (~scene.masks.any(0)).nonzero(as_tuple=True)
        return int(ys[0]), int(xs[0])

    off = [_deltas(s, w, empty_pixel) for s, w in zip(scenes, words, strict=True)]
    assert attention_grounding(words, off, objects, masks) == 0.0


def test_grounding_upsamples_a_coarse_grid_bilinearly():
    # A 16x16 image, a 4x4 grid: a delta on cell (1, 2) peaks inside that cell's 4x4
    # footprint (rows 4-7, columns 8-11), as the figure draws it.
    alphas = torch.zeros(1, 4, 4)
    alphas[0, 1, 2] = 1.0
    footprint = torch.zeros(1, 16, 16, dtype=torch.bool)
    footprint[0, 4:8, 8:12] = True
    neighbour = torch.zeros(1, 16, 16, dtype=torch.bool)
    neighbour[0, 4:8, 12:16] = True
    circle = [WorldObject("circle", "red", "small", 10, 6, 2)]
    assert attention_grounding([["circle"]], [alphas], [circle], [footprint]) == 1.0
    assert attention_grounding([["circle"]], [alphas], [circle], [neighbour]) == 0.0
    peak = upsample_attention(alphas, (16, 16))[0].flatten().argmax()
    assert footprint[0].flatten()[peak]


def test_grounding_counts_only_words_naming_something_present():
    masks = torch.zeros(1, 8, 8, dtype=torch.bool)
    masks[0, :4, :4] = True
    alphas = torch.zeros(3, 8, 8)
    alphas[:, 1, 1] = 1.0  # every word looks at the red circle
    words = [["red", "green", "circle"]]
    got = attention_grounding(words, [alphas], [[RED_CIRCLE]], [masks], return_counts=True)
    assert got == (1.0, 2, 2)  # "green" names nothing in the image: not counted
    got = attention_grounding(
        words, [alphas], [[RED_CIRCLE]], [masks], present_only=False, return_counts=True
    )
    assert got == (pytest.approx(2 / 3), 2, 3)
    with pytest.warns(UserWarning, match="no colour or shape word"):
        assert math.isnan(attention_grounding([["a", "thing"]], [alphas], [[RED_CIRCLE]], [masks]))


def test_grounding_chance_is_the_area_of_the_named_objects():
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[0, :4, :4] = True  # red circle: a quarter of the image
    masks[1, 4:, :] = True  # blue square: half
    objs = [[RED_CIRCLE, BLUE_SQUARE]]
    assert grounding_chance([["red", "circle"]], objs, [masks]) == pytest.approx(0.25)
    assert grounding_chance([["red", "square"]], objs, [masks]) == pytest.approx(0.375)
    # Masks as one (H, W) array per object work the same.
    as_list = [[m.numpy() for m in masks]]
    assert grounding_chance([["blue", "thing"]], objs, as_list) == pytest.approx(0.5)


def test_grounding_chance_of_the_world_is_small(scenes):
    words = [c.replace(",", " ").split() for s in scenes for c in s.captions]
    objects = [s.objects for s in scenes for _ in s.captions]
    masks = [s.masks for s in scenes for _ in s.captions]
    chance = grounding_chance(words, objects, masks)
    assert 0.02 < chance < 0.15  # objects cover a small part of each image


def test_grounding_refuses_bad_shapes():
    masks = torch.zeros(1, 8, 8, dtype=torch.bool)
    alphas = torch.rand(2, 4, 4)
    objs = [[RED_CIRCLE]]
    with pytest.raises(
        ParameterError, match=r"alphas\[0\] must have shape \(T, h, w\) with T >= 3"
    ):
        attention_grounding([["a", "red", "circle"]], [alphas], objs, [masks])
    with pytest.raises(ParameterError, match=r"masks\[0\] must have shape \(K, H, W\) with K = 1"):
        attention_grounding([["red"]], [alphas], objs, [masks[0]])
    with pytest.raises(ParameterError, match=r"masks\[0\] must be boolean"):
        attention_grounding([["red"]], [alphas], objs, [masks.float()])
    with pytest.raises(ParameterError, match="one entry per image. Found 1 and 2"):
        attention_grounding([["red"]], [alphas, alphas], objs, [masks])
    with pytest.raises(ParameterError, match=r"words\[0\] must be a list of words"):
        attention_grounding(["red circle"], [alphas], objs, [masks])
    with pytest.raises(ParameterError, match="non-finite"):
        attention_grounding([["red"]], [alphas * float("nan")], objs, [masks])
    big = torch.zeros(1, 16, 16, dtype=torch.bool)
    with pytest.raises(ParameterError, match="same size"):
        grounding_chance([["red"], ["red"]], objs * 2, [masks, big])


def test_batched_alphas_and_masks_equal_per_image_lists(scenes):
    picked = [s for s in scenes if len(s.objects) == 2][:4]
    words = [s.captions[0].replace(",", " ").split()[:6] for s in picked]
    alphas = torch.rand(len(picked), 6, 8, 8, generator=torch.Generator().manual_seed(0))
    objects = [s.objects for s in picked]
    masks = torch.stack([s.masks for s in picked])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a draw with nothing to count is fine here
        batched = attention_grounding(words, alphas, objects, masks, return_counts=True)
        listed = attention_grounding(words, list(alphas), objects, list(masks), return_counts=True)
    assert batched == listed
