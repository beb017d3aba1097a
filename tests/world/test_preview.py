"""World preview figures: one image panel per sample, showing that sample's own data."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from xmodal.errors import ParameterError
from xmodal.world import World
from xmodal.world.preview import DOMAINS, frame_indices, preview


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


def test_faces_show_each_person_and_the_first_one_talking(world, tmp_path):
    fig = preview(world, "faces", n=4, split="val", cache_dir=tmp_path)
    images = _axes(fig, "image")
    assert [ax.get_label() for ax in images] == [f"image:val:{i}" for i in range(4)]
    for i, ax in enumerate(images):
        person = world.identity("val", i)
        np.testing.assert_array_equal(ax.images[0].get_array(),
                                      world.face("val", i).permute(1, 2, 0))  # fmt: skip
        assert ax.get_title() == f"{person.sex}, {person.age}"
        voice = person.voice
        assert ax.get_xlabel() == f"voice {voice.variant}, pitch {voice.pitch}, rate {voice.rate}"
    talk = world.utterance("val", 0, 0, cache_dir=tmp_path)
    [frames], [strip] = _axes(fig, "frames"), _axes(fig, "spectrogram")
    assert frames.get_label() == "frames:val:0" and strip.get_label() == "spectrogram:val:0"
    assert frames.get_title().replace("\n", " ") == f"person 0 says: {talk.text}"
    # The strip is the chosen frames side by side, in time order, the mouth moving.
    picked = frame_indices(len(talk.frames))
    assert len(picked) == 8 and picked[0] == 0 and picked[-1] == len(talk.frames) - 1
    expected = np.concatenate([talk.frames[k].permute(1, 2, 0).numpy() for k in picked], axis=1)
    shown = np.asarray(frames.images[0].get_array())
    np.testing.assert_array_equal(shown, expected)
    assert not np.array_equal(expected[:, :64], expected[:, 64:128])
    assert strip.images[0].get_extent()[:2] == [0, len(talk.audio) / talk.sample_rate]
    # Speech went to the given cache, not the user's.
    assert any(tmp_path.iterdir())


def test_frame_indices_spread_over_the_clip():
    assert frame_indices(64).tolist() == [0, 9, 18, 27, 36, 45, 54, 63]
    assert frame_indices(3).tolist() == [0, 1, 2]
    assert frame_indices(1).tolist() == [0]


def test_recipes_show_the_dish_title_and_first_steps(world):
    fig = preview(world, "recipes", n=3, split="test")
    images = _axes(fig, "image")
    assert [ax.get_label() for ax in images] == [f"image:test:{i}" for i in range(3)]
    assert _axes(fig, "spectrogram") == []
    for i, ax in enumerate(images):
        recipe = world.recipe("test", i)
        np.testing.assert_array_equal(ax.images[0].get_array(), recipe.image.permute(1, 2, 0))
        assert ax.get_title().replace("\n", " ") == recipe.title
        assert ax.get_xlabel().replace("\n", " ") == " ".join(recipe.instructions[:2])
    assert len({ax.get_title() for ax in images}) == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"domain": "voices"}, r"'voices'.*scenes, places, faces, recipes"),
        ({"cache_dir": 3}, r"cache_dir must be None, a str or os.PathLike. Found: 3"),
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
    assert DOMAINS == ("scenes", "places", "faces", "recipes")
