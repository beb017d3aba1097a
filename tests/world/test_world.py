"""The world's contract: determinism, splits, and ground truth that agrees with itself."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from xmodal.errors import ParameterError
from xmodal.world import COLOURS, PLACES, SIZES, World, WorldConfig
from xmodal.world.schema import relation

N = 40  # scenes per property check: enough to meet every object count and place


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=0)


@pytest.fixture(scope="module")
def scenes(world):
    return [world.scene("train", i) for i in range(N)]


def _digest(scene) -> str:
    h = hashlib.sha256()
    for t in (scene.image, scene.masks, scene.sounding_mask, scene.audio, scene.sources):
        h.update(t.numpy().tobytes())
    h.update("|".join(scene.captions).encode())
    h.update("|".join(f"{q.question}={q.answer}" for q in scene.questions).encode())
    return h.hexdigest()


# ------------------------------------------------------------------ determinism


def test_same_call_same_bytes_and_indices_differ(world):
    a, b = world.scene("train", 5), world.scene("train", 5)
    assert _digest(a) == _digest(b)
    assert len({_digest(world.scene("train", i)) for i in range(10)}) == 10


def test_same_bytes_in_a_fresh_process(world):
    code = (
        "import hashlib; from xmodal.world import World; w = World(seed=0); s = w.scene('val', 3);"
        "h = hashlib.sha256();"
        "[h.update(t.numpy().tobytes()) for t in (s.image, s.masks, s.sounding_mask, s.audio,"
        " s.sources)];"
        "h.update('|'.join(s.captions).encode());"
        "h.update('|'.join(f'{q.question}={q.answer}' for q in s.questions).encode());"
        "print(h.hexdigest())"
    )
    env = {"PYTHONHASHSEED": "123"}  # a different str hash must not change anything
    import os

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **env}, check=True)  # fmt: skip
    assert out.stdout.strip() == _digest(world.scene("val", 3))


class _Scenes(Dataset):
    def __init__(self, world):
        self.world = world

    def __len__(self):
        return 8

    def __getitem__(self, i):
        s = self.world.scene("test", i)
        return s.image, s.audio


def test_dataloader_workers_give_the_same_samples(world):
    loader = DataLoader(_Scenes(world), batch_size=4, num_workers=2, shuffle=False)
    images, audio = zip(*[(x, a) for x, a in loader], strict=True)
    for i in range(8):
        s = world.scene("test", i)
        assert torch.equal(images[i // 4][i % 4], s.image)
        assert torch.equal(audio[i // 4][i % 4], s.audio)


def test_audio_flag_leaves_image_and_text_unchanged(world):
    with_audio, without = world.scene("train", 9), world.scene("train", 9, audio=False)
    assert torch.equal(with_audio.image, without.image)
    assert with_audio.captions == without.captions
    assert [q.question for q in with_audio.questions] == [q.question for q in without.questions]
    assert without.audio is None and without.sources is None


def test_questions_flag_leaves_image_and_captions_unchanged(world):
    full, lean = world.scene("val", 4), world.scene("val", 4, audio=False, questions=False)
    assert torch.equal(full.image, lean.image) and torch.equal(full.masks, lean.masks)
    assert full.captions == lean.captions
    assert lean.questions == [] and len(full.questions) == world.config.n_questions


def test_seed_changes_the_world():
    assert _digest(World(seed=1).scene("train", 0)) != _digest(World(seed=2).scene("train", 0))


# ------------------------------------------------------------------ splits


def test_splits_are_different_streams(world):
    digests = {split: {_digest(world.scene(split, i)) for i in range(20)}
               for split in ("train", "val", "test")}  # fmt: skip
    assert not digests["train"] & digests["val"]
    assert not digests["train"] & digests["test"]
    assert not digests["val"] & digests["test"]


def test_compositional_split_holds_out_its_combinations():
    world = World(seed=0, compositional=True, held_out=(("red", "circle"), ("blue", "square")))
    held = {("red", "circle"), ("blue", "square")}
    for split in ("train", "val", "test"):
        for i in range(150):
            s = world.scene(split, i, audio=False)
            assert not {(o.colour, o.shape) for o in s.objects} & held, (split, i)
    for i in range(50):
        s = world.scene("compositional", i, audio=False)
        assert {(o.colour, o.shape) for o in s.objects} & held


def test_compositional_split_needs_the_option(world):
    with pytest.raises(ParameterError, match="compositional"):
        world.scene("compositional", 0)


# ------------------------------------------------------------------ ground truth


def test_scene_shapes_and_types(scenes, world):
    cfg = world.config
    for s in scenes:
        k = len(s.objects)
        assert cfg.min_objects <= k <= cfg.max_objects
        assert s.image.shape == (3, cfg.image_size, cfg.image_size) and s.image.dtype == torch.uint8
        assert s.masks.shape == (k, cfg.image_size, cfg.image_size) and s.masks.dtype == torch.bool
        assert s.audio.shape == (cfg.n_samples,) and s.audio.dtype == torch.float32
        assert s.sources.shape == (len(s.sounding), cfg.n_samples)
        assert len(s.captions) == cfg.n_captions and len(s.questions) == cfg.n_questions
        assert s.place in PLACES
    assert {len(s.objects) for s in scenes} == {1, 2, 3}


def test_masks_bboxes_and_sounding_mask_agree(scenes):
    for s in scenes:
        assert not (s.masks.sum(0) > 1).any()  # disjoint
        for obj, mask in zip(s.objects, s.masks, strict=True):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert len(xs) > 0
            assert obj.bbox == (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        expected = torch.zeros_like(s.sounding_mask)
        for i in s.sounding:
            expected |= s.masks[i]
        assert torch.equal(s.sounding_mask, expected)
        assert s.sounding and s.sounding == [i for i, o in enumerate(s.objects) if o.sounding]


def test_object_pixels_have_their_colour(scenes):
    for s in scenes:
        for obj, mask in zip(s.objects, s.masks, strict=True):
            rgb = torch.tensor(COLOURS[obj.colour][0], dtype=torch.float32)
            pixels = s.image[:, mask].T.float()
            near = ((pixels - rgb).abs().max(dim=1).values < 40).float().mean()
            assert near > 0.6, (obj, float(near))


def test_every_caption_is_true_of_its_scene(world, scenes):
    for s in scenes:
        for caption in s.captions:
            assert world.caption_is_true(caption, s), (caption, s.objects, s.place)


def test_captions_of_other_scenes_are_often_false(world, scenes):
    false = total = 0
    for a, b in zip(scenes[:-1], scenes[1:], strict=True):
        for caption in a.captions:
            total += 1
            false += not world.caption_is_true(caption, b)
    assert false / total > 0.5


def test_mixture_is_sources_plus_ambience(scenes):
    for s in scenes:
        torch.testing.assert_close(s.audio, s.sources.sum(0) + s.ambience, rtol=0, atol=1e-6)
        assert float(s.audio.abs().max()) <= 1.0


def test_each_source_sounds_at_its_objects_pitch(scenes):
    pitches = {c: p for c, (_, p) in COLOURS.items()}
    for s in scenes[:15]:
        for row, i in enumerate(s.sounding):
            obj = s.objects[i]
            x = s.sources[row].double().numpy()
            spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
            freqs = np.fft.rfftfreq(len(x), 1 / s.sample_rate)
            band = freqs < 600
            f0 = freqs[band][np.argmax(spectrum[band])]
            nearest = min(pitches, key=lambda c: abs(pitches[c] - f0))
            assert nearest == obj.colour, (obj, f0)
            # Louder for larger objects: peak follows SIZES.
            assert float(s.sources[row].abs().max()) <= SIZES[obj.size][1] + 1e-6


def test_relations_in_objects_are_clear(world, scenes):
    for s in scenes:
        for a in s.objects:
            for b in s.objects:
                if a is not b:
                    assert relation(a, b, margin=world.margin)


def test_places_are_balanced_and_deterministic(world):
    samples = [world.place("train", i) for i in range(2 * len(PLACES))]
    assert [p.place for p in samples] == list(PLACES) * 2
    assert [p.label for p in samples] == list(range(len(PLACES))) * 2
    again = world.place("train", 3)
    assert torch.equal(again.image, samples[3].image) and torch.equal(again.audio, samples[3].audio)
    assert samples[0].image.shape == (3, 64, 64) and samples[0].audio.shape == (16000,)
    assert not torch.equal(samples[0].image, samples[len(PLACES)].image)


def test_recipes_are_balanced_and_deterministic(world):
    from xmodal.world.recipes import DISHES

    samples = [world.recipe("train", i) for i in range(len(DISHES))]
    assert [r.dish for r in samples] == list(DISHES)
    again = world.recipe("train", 2)
    assert torch.equal(again.image, samples[2].image)
    assert again.instructions == samples[2].instructions
    assert samples[0].image.shape == (3, 64, 64) and samples[0].image.dtype == torch.uint8
    other = world.recipe("val", 2)
    assert other.dish == samples[2].dish and not torch.equal(other.image, samples[2].image)


def test_identities_are_disjoint_and_deterministic(world):
    ids = {split: {world.identity(split, k).id for k in range(30)} for split in ("train", "val")}
    assert not ids["train"] & ids["val"]
    assert world.identity("test", 5) == world.identity("test", 5)
    assert torch.equal(world.face("test", 5), world.face("test", 5))
    opened = world.face("test", 5, mouth_open=1.0)
    assert not torch.equal(opened, world.face("test", 5))


def test_utterance_speaks_a_caption_with_a_talking_face(world, tmp_path):
    from xmodal.world import voices

    u = world.utterance("val", 2, 7, cache_dir=tmp_path)
    assert u.text == world.scene("val", 7, audio=False).captions[0]
    assert u.identity == world.identity("val", 2)
    expected = voices.speak(u.text, u.identity.voice, sr=16000, cache_dir=tmp_path)
    assert torch.equal(u.audio, torch.from_numpy(expected))
    assert u.frames.shape[1:] == (3, 64, 64)
    assert abs(u.frames.shape[0] - len(u.audio) / 16000 * u.fps) <= 1
    again = world.utterance("val", 2, 7, cache_dir=tmp_path)
    assert torch.equal(again.frames, u.frames) and torch.equal(again.audio, u.audio)
    voice_only = world.utterance("val", 2, 7, frames=False, cache_dir=tmp_path)
    assert voice_only.frames is None and torch.equal(voice_only.audio, u.audio)
    assert world.sentence("val", 7) == u.text
    with pytest.raises(ParameterError, match="frames"):
        world.utterance("val", 2, 7, frames="no", cache_dir=tmp_path)


def test_spoken_caption_is_the_narrator_reading_caption_0(world, tmp_path):
    from xmodal.world import voices
    from xmodal.world.core import NARRATOR

    sc = world.spoken_caption("train", 3, cache_dir=tmp_path)
    scene = world.scene("train", 3, audio=False)
    assert sc.caption == scene.captions[0] and torch.equal(sc.image, scene.image)
    expected = voices.speak(sc.caption, NARRATOR, sr=16000, cache_dir=tmp_path)
    assert torch.equal(sc.audio, torch.from_numpy(expected))


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(image_size=0), "image_size"),
        (dict(image_size=16), "image_size.*16"),
        (dict(max_objects=12), "max_objects=12"),
        (dict(min_objects=3, max_objects=2), "min_objects"),
        (dict(sample_rate=0), "sample_rate"),
        (dict(sample_rate=4000), "sample_rate.*4000"),
        (dict(clip_seconds=-1.0), "clip_seconds"),
        (dict(sounding_prob=1.5), "sounding_prob"),
        (dict(held_out=(("pink", "circle"),)), "pink"),
        (dict(places=("moon",)), "moon"),
        (dict(colour_count=3), "colour_count"),
    ],
)
def test_bad_config_names_the_value(kwargs, pattern):
    with pytest.raises(ParameterError, match=pattern):
        World(seed=0, **kwargs)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda w: w.scene("training", 0), "training"),
        (lambda w: w.scene("train", -1), "index.*-1"),
        (lambda w: w.scene("train", 1.5), "index.*1.5"),
        (lambda w: w.place("dev", 0), "dev"),
    ],
)
def test_bad_calls_name_the_value(world, call, pattern):
    with pytest.raises(ParameterError, match=pattern):
        call(world)


def test_bad_seed():
    with pytest.raises(ParameterError, match="seed.*-3"):
        World(seed=-3)


def test_config_object_and_overrides():
    cfg = WorldConfig(image_size=32, max_objects=2)
    world = World(seed=4, config=cfg, n_captions=3)
    s = world.scene("train", 0, audio=False)
    assert s.image.shape == (3, 32, 32) and len(s.captions) == 3 and len(s.objects) <= 2


def test_labelled_sounds_are_balanced_seeded_and_as_loud_as_their_parts():
    from xmodal.world.sound import AMBIENCE_PEAK

    world = World(seed=0)
    classes = world.sound_classes
    assert len(classes) == 30 + len(world.config.places) and classes[0] == "red circle"
    assert classes[-len(world.config.places) :] == tuple(world.config.places)
    for i in (0, 5, 37, 38, 75):
        audio, label = world.labelled_sound("test", i, seconds=1.0)
        assert label == i % len(classes) and audio.shape == (16000,)
        again, _ = world.labelled_sound("test", i, seconds=1.0)
        assert torch.equal(audio, again)
        if label >= 30:  # a place's ambience alone
            assert float(audio.abs().max()) <= AMBIENCE_PEAK
    a, _ = world.labelled_sound("test", 0, seconds=1.0)
    b, _ = world.labelled_sound("test", 38, seconds=1.0)  # the same class, another clip
    assert not torch.equal(a, b)
    with pytest.raises(ParameterError, match="seconds"):
        world.labelled_sound("test", 0, seconds=0)
