"""World preview figures: one image panel per sample, showing that sample's own data."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from xmodal.errors import ParameterError
from xmodal.world import World
from xmodal.world.preview import DOMAINS, preview


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=0)


def _axes(fig: Figure, kind: str) -> list:
    return [ax for ax in fig.axes if ax.get_label().startswith(f"{kind}:")]


def test_scenes_show_each_scene_with_its_caption_question_and_sound(world):
    fig = preview(world, "scenes", n=5, split="val")
    images, strips = _axes(fig, "image"), _axes(fig, "spectrogram")
    assert [ax.get_label() for ax in images] == [f"image:val:{i}" for i in range(5)]
    assert [ax.get_label() for ax in strips] == [f"spectrogram:val:{i}" for i in range(5)]
    for i, (ax, strip) in enumerate(zip(images, strips, strict=True)):
        scene = world.scene("val", i)
        np.testing.assert_array_equal(ax.images[0].get_array(), scene.image.permute(1, 2, 0))
        # Titles and labels are wrapped over lines; the words are the caption's.
        assert ax.get_title().replace("\n", " ") == scene.captions[0]
        qa = scene.questions[0]
        assert ax.get_xlabel().replace("\n", " ") == f"Q: {qa.question} A: {qa.answer}"
        # The strip is this scene's sound: its time axis spans the clip.
        assert strip.images[0].get_extent()[:2] == [0, len(scene.audio) / scene.sample_rate]
    # Neighbouring scenes differ, so the strips show different sounds.
    a, b = (s.images[0].get_array() for s in strips[:2])
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_places_show_the_class_and_its_picture(world):
    fig = preview(world, "places", n=3)
    images = _axes(fig, "image")
    assert len(images) == 3 and len(_axes(fig, "spectrogram")) == 3
    for i, ax in enumerate(images):
        sample = world.place("train", i)
        assert ax.get_title() == sample.place == world.config.places[i]
        np.testing.assert_array_equal(ax.images[0].get_array(), sample.image.permute(1, 2, 0))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"domain": "faces"}, r"'faces'.*scenes, places.*faces, voices and recipes are coming"),
        ({"n": 0}, r"n must be an integer >= 1. Found: 0"),
        ({"n": 1000}, r"n must be at most 256. Found: 1000"),
        ({"split": "dev"}, r"unknown split 'dev'"),
        ({"split": "compositional"}, r"compositional=True"),
    ],
)
def test_bad_arguments_name_the_value(world, kwargs, match):
    args = {"domain": "scenes", **kwargs}
    with pytest.raises(ParameterError, match=match):
        preview(world, args.pop("domain"), **args)


def test_bad_world():
    with pytest.raises(ParameterError, match="Found: int"):
        preview(0, "scenes")
    assert DOMAINS == ("scenes", "places")
