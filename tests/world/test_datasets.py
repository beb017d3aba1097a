"""The world's dataset views: items are exactly the world's samples, batched without loss."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch.utils.data import DataLoader

from xmodal.errors import ParameterError
from xmodal.world import World
from xmodal.world.datasets import (
    DEFAULT_SIZES,
    VIEWS,
    AVCorrespondenceDataset,
    answers,
    collate,
    make_dataset,
)

H = 64  # the default world's image side
T = 16000  # the default world's clip length in samples


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=0)


def _bytes(image: torch.Tensor) -> torch.Tensor:
    """A view's float image back to the world's uint8 bytes (exact: k / 255 round-trips)."""
    return (image * 255).round().to(torch.uint8)


def _assert_same(a, b) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert a[key].dtype == b[key].dtype, key
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


# (shape or Python type, dtype) of every key of every view
SPEC = {
    "captioning": {"image": ((3, H, H), torch.float32), "captions": list, "index": int},
    "retrieval": {
        "image": ((3, H, H), torch.float32),
        "caption": str,
        "image_index": int,
        "caption_index": int,
    },
    "vqa": {
        "image": ((3, H, H), torch.float32),
        "question": str,
        "answer": str,
        "label": int,
        "family": str,
        "image_index": int,
        "question_index": int,
    },
    "av-correspondence": {
        "image": ((3, H, H), torch.float32),
        "audio": ((T,), torch.float32),
        "label": int,
        "place": str,
        "index": int,
        "audio_index": int,
    },
    "localization": {
        "image": ((3, H, H), torch.float32),
        "audio": ((T,), torch.float32),
        "sounding_mask": ((H, H), torch.bool),
        "index": int,
    },
    "separation": {
        "mixture": ((T,), torch.float32),
        "sources": ((3, T), torch.float32),
        "ambience": ((T,), torch.float32),
        "n_sources": int,
        "image": ((3, H, H), torch.float32),
        "masks": ((3, H, H), torch.bool),
        "object_sounding": ((3,), torch.bool),
        "index": int,
    },
    "places": {
        "image": ((3, H, H), torch.float32),
        "audio": ((T,), torch.float32),
        "label": int,
        "place": str,
        "index": int,
    },
}


# Speech views vary in length and need a speech cache: tests/world/test_mixtures.py.
SPEECH_VIEWS = {"speech-separation", "voice-face", "tts"}


def test_every_view_is_specified():
    assert set(SPEC) | SPEECH_VIEWS == set(VIEWS)
    assert not set(SPEC) & SPEECH_VIEWS


@pytest.mark.parametrize("view", list(SPEC))
def test_item_keys_shapes_dtypes(world, view):
    item = make_dataset(world, view, "train", size=3)[1]
    assert set(item) == set(SPEC[view])
    for key, spec in SPEC[view].items():
        if isinstance(spec, tuple):
            shape, dtype = spec
            assert tuple(item[key].shape) == shape, key
            assert item[key].dtype == dtype, key
        else:
            assert type(item[key]) is spec, key
    image = item["image"]
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert float(image.max()) > float(image.min())  # not a blank or saturated picture


# ---------------------------------------------------------------- items are the world's


def test_captioning_items_are_the_scenes(world):
    ds = make_dataset(world, "captioning", "val", size=4)
    for i in range(4):
        scene = world.scene("val", i, audio=False, questions=False)
        item = ds[i]
        assert torch.equal(_bytes(item["image"]), scene.image)
        assert item["captions"] == scene.captions
        assert len(item["captions"]) == world.config.n_captions
        assert item["index"] == i


def test_near_misses_are_false_of_their_scene_and_fixed_by_it(world):
    ds = make_dataset(world, "captioning", "train", size=6, near_misses=True)
    assert "near_misses" not in make_dataset(world, "captioning", "train", size=1)[0]
    for i in range(6):
        scene = world.scene("train", i, audio=False, questions=False)
        misses = ds[i]["near_misses"]
        assert len(misses) == len(scene.captions) and misses == world.near_misses(scene)
        for text, miss in zip(scene.captions, misses, strict=True):
            assert world.caption_is_true(text, scene)
            assert miss is None or not world.caption_is_true(miss, scene)
    assert sum(m is not None for i in range(6) for m in ds[i]["near_misses"]) >= 25
    other = World(seed=1).near_misses(world.scene("train", 0, audio=False, questions=False))
    assert other != ds[0]["near_misses"]  # another world's seed draws other edits
    with pytest.raises(ParameterError, match="scene must be"):
        world.near_misses("a red circle")


def test_retrieval_pairs_each_caption_with_its_image(world):
    n = world.config.n_captions
    ds = make_dataset(world, "retrieval", "test", size=2 * n + 1)
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        scene = world.scene("test", item["image_index"], audio=False, questions=False)
        assert item["caption"] == scene.captions[item["caption_index"]]
        assert torch.equal(_bytes(item["image"]), scene.image)
        seen.add((item["image_index"], item["caption_index"]))
    # every caption of scenes 0 and 1, then the first of scene 2: each pair once
    assert seen == {(s, k) for s in range(2) for k in range(n)} | {(2, 0)}
    assert len(seen) == len(ds)


def test_vqa_flattening_covers_every_scene_question_once(world):
    n = world.config.n_questions
    ds = make_dataset(world, "vqa", "train", size=3 * n)
    pairs = [(ds[i]["image_index"], ds[i]["question_index"]) for i in range(len(ds))]
    assert sorted(pairs) == [(s, k) for s in range(3) for k in range(n)]
    for i in (0, n - 1, n, 3 * n - 1):
        item = ds[i]
        scene = world.scene("train", i // n, audio=False)
        q = scene.questions[i % n]
        assert (item["question"], item["answer"], item["family"]) == (
            q.question,
            q.answer,
            q.family,
        )
        assert torch.equal(_bytes(item["image"]), scene.image)
        assert ds.answers[item["label"]] == item["answer"]


def test_answer_vocabulary_holds_every_answer_and_nothing_impossible(world):
    vocab = answers(world)
    assert vocab == sorted(set(vocab))
    seen = {q.answer for i in range(300) for q in world.scene("train", i, audio=False).questions}
    assert seen <= set(vocab)
    # a count above max_objects cannot be an answer, so it is not a class
    assert "four" not in vocab
    assert "three" not in answers(World(seed=0, max_objects=2))


def test_av_correspondence_is_half_matched(world):
    size = 10
    ds = make_dataset(world, "av-correspondence", "train", size=size)
    labels = [ds[i]["label"] for i in range(size)]
    assert labels == [1, 0] * (size // 2)
    for i in range(size):
        item = ds[i]
        scene = world.scene("train", i, questions=False)
        assert torch.equal(_bytes(item["image"]), scene.image)
        assert item["place"] == scene.place
        j = item["audio_index"]
        if item["label"] == 1:
            assert j == i
            assert torch.equal(item["audio"], scene.audio)
        else:
            assert j != i and 0 <= j < size
            assert torch.equal(item["audio"], world.scene("train", j, questions=False).audio)
            assert not torch.equal(item["audio"], scene.audio)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 50])
def test_av_correspondence_partner_is_another_scene_of_the_dataset(world, size):
    ds = AVCorrespondenceDataset(world, "train", size=size)
    for i in range(1, size, 2):
        j = ds.partner(i)
        assert j != i and 0 <= j < size
    if size == 1:  # the only item is a positive: nothing to mismatch it with
        assert ds[0]["label"] == 1


def test_localization_items_carry_the_sounding_mask(world):
    ds = make_dataset(world, "localization", "val", size=3)
    for i in range(3):
        scene = world.scene("val", i, questions=False)
        item = ds[i]
        assert torch.equal(item["sounding_mask"], scene.sounding_mask)
        assert bool(item["sounding_mask"].any())  # every scene has a sounding object
        assert torch.equal(item["audio"], scene.audio)
        assert torch.equal(_bytes(item["image"]), scene.image)


def test_separation_rows_follow_objects_and_mixture_adds_ambience(world):
    ds = make_dataset(world, "separation", "train", size=12)
    k_max = world.config.max_objects
    padded = silent = 0
    for i in range(len(ds)):
        item = ds[i]
        scene = world.scene("train", i, questions=False)
        k = len(scene.objects)
        rest = item["mixture"] - item["sources"].sum(0)
        # the ambience is in the mixture and in no source
        assert not torch.allclose(rest, torch.zeros(T), atol=1e-3)
        torch.testing.assert_close(rest, scene.ambience, rtol=0, atol=1e-6)
        assert torch.equal(item["ambience"], scene.ambience)
        assert torch.equal(item["mixture"], scene.audio)
        assert item["n_sources"] == len(scene.sounding) == int(item["object_sounding"].sum())
        assert item["object_sounding"].tolist() == [
            j < k and scene.objects[j].sounding for j in range(k_max)
        ]
        assert torch.equal(item["sources"][scene.sounding], scene.sources)
        assert torch.equal(item["masks"][:k], scene.masks)
        # rows of silent objects and padding rows are zero
        quiet = ~item["object_sounding"]
        assert not bool(item["sources"][quiet].any())
        assert not bool(item["masks"][k:].any())
        padded += k < k_max
        silent += int(quiet[:k].sum())
    assert padded and silent  # both kinds of zero rows were met


def test_places_items_are_balanced_and_the_worlds(world):
    n = len(world.config.places)
    ds = make_dataset(world, "places", "test", size=n + 2)
    for i in range(len(ds)):
        sample = world.place("test", i)
        item = ds[i]
        assert item["label"] == i % n
        assert item["place"] == world.config.places[item["label"]] == sample.place
        assert torch.equal(_bytes(item["image"]), sample.image)
        assert torch.equal(item["audio"], sample.audio)


# ---------------------------------------------------------------- batching, determinism


@pytest.mark.parametrize("view", list(SPEC))
def test_dataloader_workers_batch_equals_items(world, view):
    ds = make_dataset(world, view, "train", size=6)
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate)
    batches = list(loader)
    assert [len(b["image"]) for b in batches] == [4, 2]
    for start, batch in zip((0, 4), batches, strict=True):
        items = [ds[i] for i in range(start, min(start + 4, len(ds)))]
        assert batch.keys() == items[0].keys()
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):
                expected = torch.stack([torch.as_tensor(it[key]) for it in items])
                assert torch.equal(value, expected.to(value.dtype)), key
            else:
                assert value == [it[key] for it in items], key


def test_collate_keeps_caption_lists_per_item(world):
    ds = make_dataset(world, "captioning", "train", size=3)
    batch = collate([ds[0], ds[1], ds[2]])
    # PyTorch's default collate would zip these into n_captions tuples of 3
    assert batch["captions"] == [ds[i]["captions"] for i in range(3)]
    assert batch["index"].dtype == torch.int64 and batch["index"].tolist() == [0, 1, 2]
    assert batch["image"].shape == (3, 3, H, H)


@pytest.mark.parametrize("view", list(SPEC))
def test_two_instances_give_the_same_items(view):
    a = make_dataset(World(seed=3), view, "val", size=4)
    b = make_dataset(World(seed=3), view, "val", size=4)
    for i in (3, 0, 1):  # out of order: an item must not depend on what came before
        _assert_same(a[i], b[i])


def test_world_dataset_is_make_dataset(world):
    # World.dataset reaches the views without world.core importing world.datasets.
    ds = world.dataset("vqa", "train", size=5)
    want = make_dataset(world, "vqa", "train", size=5)
    assert type(ds) is type(want) and len(ds) == 5
    for i in range(5):
        _assert_same(ds[i], want[i])
    with pytest.raises(ParameterError, match="unknown view 'nope'"):
        world.dataset("nope", "train")
    with pytest.raises(ParameterError, match="takes the options"):
        world.dataset("tts", "train", size=1, fps=25)


def test_speech_separation_condition_is_a_checked_option(world):
    # Building a speech view speaks nothing, so no speech cache is needed here.
    assert make_dataset(world, "speech-separation", "val", size=2).condition == "different-voice"
    ds = world.dataset("speech-separation", "val", size=2, condition="same-voice")
    assert ds.condition == "same-voice" and pickle.loads(pickle.dumps(ds)).condition == "same-voice"
    with pytest.raises(ParameterError, match="condition.*'different-voice', 'same-voice'.*'x'"):
        make_dataset(world, "speech-separation", "val", condition="x")
    with pytest.raises(ParameterError, match="'tts' takes the options.*'condition'"):
        make_dataset(world, "tts", "val", condition="same-voice")


def test_pickled_dataset_gives_the_same_items(world):
    # DataLoader workers started by "spawn" receive the dataset pickled
    ds = make_dataset(world, "separation", "train", size=4)
    copy = pickle.loads(pickle.dumps(ds))
    _assert_same(copy[2], ds[2])
    assert pickle.loads(pickle.dumps(collate)) is collate


def test_seeds_and_splits_differ(world):
    a = make_dataset(world, "captioning", "train", size=2)[0]
    b = make_dataset(world, "captioning", "val", size=2)[0]
    c = make_dataset(World(seed=1), "captioning", "train", size=2)[0]
    assert not torch.equal(a["image"], b["image"])
    assert not torch.equal(a["image"], c["image"])


# ---------------------------------------------------------------- sizes and bad input


@pytest.mark.parametrize("view", list(SPEC))
def test_len_is_size_and_defaults_per_split(world, view):
    assert len(make_dataset(world, view, "train", size=7)) == 7
    for split in ("train", "val", "test"):
        assert len(make_dataset(world, view, split)) == DEFAULT_SIZES[split]
    comp = World(seed=0, compositional=True)
    assert len(make_dataset(comp, view, "compositional")) == DEFAULT_SIZES["compositional"]


def test_compositional_split_holds_held_out_combinations():
    comp = World(seed=0, compositional=True)
    ds = make_dataset(comp, "vqa", "compositional", size=3)
    scene = comp.scene("compositional", 0, audio=False)
    assert torch.equal(_bytes(ds[0]["image"]), scene.image)
    held = set(comp.config.held_out)
    assert any((o.colour, o.shape) in held for o in scene.objects)


def test_index_out_of_range_and_negative_indices(world):
    ds = make_dataset(world, "captioning", "train", size=3)
    with pytest.raises(IndexError, match="3"):
        ds[3]
    with pytest.raises(IndexError):
        ds[-4]
    _assert_same(ds[-1], ds[2])
    with pytest.raises(TypeError):
        ds[1.0]


def test_iteration_stops_at_size(world):
    # a Dataset without __iter__ is iterated through __getitem__ until IndexError
    ds = make_dataset(world, "captioning", "train", size=3)
    assert [item["index"] for item in ds] == [0, 1, 2]


def test_bad_inputs_name_the_value(world):
    with pytest.raises(ParameterError, match="'captions'.*captioning.*separation"):
        make_dataset(world, "captions", "train")
    with pytest.raises(ParameterError, match="'training'.*train.*compositional"):
        make_dataset(world, "vqa", "training")
    with pytest.raises(ParameterError, match="compositional"):
        make_dataset(world, "vqa", "compositional")
    for size in (0, -5, 2.5, True, "10"):
        with pytest.raises(ParameterError, match="size"):
            make_dataset(world, "vqa", "train", size=size)
    with pytest.raises(ParameterError, match="shuffle"):
        make_dataset(world, "vqa", "train", shuffle=True)
    with pytest.raises(ParameterError, match="World"):
        make_dataset("world", "vqa", "train")
    with pytest.raises(ParameterError, match="at least one item"):
        collate([])
