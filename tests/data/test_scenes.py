"""Single-object scenes as text-to-image data (:mod:`xmodal.data.scenes`): the attribute
classes, what a caption names, the caption that names both attributes, the scenes rendered
once, real images alike to given scenes, and the (image, caption) pairs with their batch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from xmodal.data.scenes import (
    SAMPLE_CAPTIONS,
    CaptionPairs,
    RenderedScenes,
    attribute_class,
    attribute_classes,
    class_attributes,
    collate_pairs,
    named_attributes,
    naming_caption,
    same_attribute_images,
)
from xmodal.text.vocab import PAD_ID, Vocabulary
from xmodal.world import COLOURS, SHAPES, World, WorldObject


def test_named_attributes_reads_what_the_caption_says_about_the_object():
    obj = WorldObject("triangle", "purple", "large", 30, 30, 10)
    c, s = list(COLOURS).index("purple"), list(SHAPES).index("triangle")
    assert named_attributes("a scene with a large purple triangle in the forest", obj) == (c, s)
    assert named_attributes("a purple object", obj) == (c, -1)
    assert named_attributes("there is one triangle", obj) == (-1, s)
    assert named_attributes("one thing", obj) == (-1, -1)
    assert named_attributes("a large object in a forest", obj) == (-1, -1)
    assert named_attributes("no purple triangles", obj) == (-1, -1)  # claims none
    items = [{"image": torch.zeros(3, 4, 4), "tokens": torch.tensor([1, 2]), "label": 0,
              "named": named_attributes(t, obj), "index": 0}
             for t in ("a purple object", "one thing")]  # fmt: skip
    assert collate_pairs(items)["named"].tolist() == [[c, -1], [-1, -1]]


def test_attribute_classes_are_distinct_and_decode_back():
    objects = [
        WorldObject(shape, colour, "small", 9, 9, 9) for colour in COLOURS for shape in SHAPES
    ]
    labels = torch.tensor([attribute_class(o) for o in objects])
    assert sorted(labels.tolist()) == list(range(len(COLOURS) * len(SHAPES)))
    colour, shape = class_attributes(labels)
    assert [list(COLOURS)[i] for i in colour] == [o.colour for o in objects]
    assert [list(SHAPES)[i] for i in shape] == [o.shape for o in objects]
    scenes = [SimpleNamespace(objects=[o]) for o in objects[:3]]
    assert torch.equal(attribute_classes(scenes), labels[:3])


def test_the_sample_captions_name_every_colour_and_shape_and_both_sizes():
    named = [set(c.split()) for c in SAMPLE_CAPTIONS]
    for words in (COLOURS, SHAPES, ("large", "small")):
        assert all(any(w in n for n in named) for w in words), words
    assert named[-1] & set(COLOURS) and not named[-1] & set(SHAPES)  # one names no shape


def test_naming_caption_is_the_first_naming_colour_and_shape():
    obj = WorldObject("circle", "red", "small", 9, 9, 9)
    scene = SimpleNamespace(
        objects=[obj],
        captions=["a red object", "one circle", "A small red circle.", "a red circle"],
    )
    assert naming_caption(scene) == "A small red circle."
    scene.captions = ["a red object", "one circle"]
    assert naming_caption(scene) == "a small red circle"  # none does: the scene's name


def _scene(shape: str, colour: str, value: int, size: str = "large"):
    image = torch.full((3, 2, 2), value, dtype=torch.uint8)
    return SimpleNamespace(objects=[WorldObject(shape, colour, size, 9, 9, 9)], image=image)


def test_same_attribute_images_groups_alike_scenes_and_stops_when_full():
    wanted = [_scene("circle", "red", 0), _scene("square", "blue", 0), _scene("circle", "red", 0)]
    pool = [_scene("circle", "red", 51), _scene("cross", "red", 0), _scene("square", "blue", 102),
            _scene("circle", "red", 153), _scene("circle", "red", 255),
            _scene("square", "blue", 204), _scene("square", "blue", 255)]  # fmt: skip
    taken = []

    def candidates():
        for s in pool:
            taken.append(s)
            yield s

    groups = same_attribute_images(wanted, candidates(), 2)
    # One group per (size, colour, shape): the first two red circles, in [0, 1]; the squares.
    assert [g.shape for g in groups] == [(2, 3, 2, 2), (2, 3, 2, 2)]
    assert groups[0][:, 0, 0, 0].tolist() == pytest.approx([0.2, 0.6])
    assert groups[1][:, 0, 0, 0].tolist() == pytest.approx([0.4, 0.8])
    assert len(taken) == 6  # the seventh scene was not needed
    small = same_attribute_images([_scene("circle", "red", 0, "small")], iter(pool), 2)
    assert small == []  # fewer than two alike: no group


def test_rendered_scenes_renders_each_scene_once():
    calls = []

    class Counting:
        def scene(self, split, index, **kwargs):
            calls.append((split, index, kwargs["audio"], kwargs["questions"]))
            return SimpleNamespace(image=torch.full((3, 2, 2), index, dtype=torch.uint8))

    scenes = RenderedScenes(Counting())
    assert len(scenes.first("train", 3)) == 3
    images, five = scenes.images("train", 5)
    assert images.shape == (5, 3, 2, 2) and images[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4]
    assert scenes.first("train", 2) == five[:2]
    assert calls == [("train", i, False, False) for i in range(5)]  # each once, no audio
    walked = [int(s.image[0, 0, 0]) for s in scenes.walk("train", 7)]
    assert walked == list(range(7)) and len(calls) == 7  # two more rendered ...
    assert len(scenes.first("train", 6)) == 6 and len(calls) == 8  # ... but not kept
    scenes.clear()
    scenes.first("train", 1)
    assert len(calls) == 9


def test_caption_pairs_give_every_caption_of_every_scene():
    world = World(seed=0, image_size=32, min_objects=1, max_objects=1)
    scenes = [world.scene("train", i, audio=False, questions=False) for i in range(3)]
    vocab = Vocabulary.build([c for s in scenes for c in s.captions], min_freq=1)
    pairs = CaptionPairs(scenes, vocab, max_len=24)
    assert len(pairs) == sum(len(s.captions) for s in scenes)
    k = len(scenes[0].captions) + 1  # scene 1, its second caption
    item = pairs[k]
    assert item["index"] == 1 and torch.equal(item["image"], scenes[1].image.float() / 255)
    assert item["tokens"].tolist() == vocab.encode(scenes[1].captions[1], max_len=24)
    assert item["label"] == attribute_class(scenes[1].objects[0])
    assert item["named"] == named_attributes(scenes[1].captions[1], scenes[1].objects[0])
    batch = collate_pairs([pairs[0], pairs[k]])
    lengths = [len(pairs[0]["tokens"]), len(item["tokens"])]
    assert batch["image"].shape == (2, 3, 32, 32) and batch["lengths"].tolist() == lengths
    assert batch["tokens"].shape == (2, max(lengths))
    short = lengths.index(min(lengths))
    assert (batch["tokens"][short, min(lengths) :] == PAD_ID).all()
    assert batch["label"].shape == (2,) and batch["named"].shape == (2, 2)
