"""Two-speaker mixtures and the speech views: exact sums, the speakers' own speech, shut mouths.

Every test speaks into a temporary cache (never the user's): a cold utterance costs ~35 ms,
so the module shares one cache and uses a handful of items.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader

from xmodal.errors import ParameterError
from xmodal.world import World, faces, voices
from xmodal.world.core import MIXTURE_CONDITIONS
from xmodal.world.datasets import DEFAULT_SIZES, make_dataset, pad_collate

H = 64  # the default world's image side
SR = 16000


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=0)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="module")
def mixes(world, cache):
    """Mixtures 0-3 of val: index 1 needs peak normalisation, index 0 does not."""
    return [world.mixture("val", i, cache_dir=cache) for i in range(4)]


@pytest.fixture(scope="module")
def paired(world, cache):
    """Mixtures 0, 9 and 10 of val under each condition. Today's draw for 9 and 10 paired
    two speakers of one variant; "different-voice" walks on to another identity."""
    return {
        condition: [world.mixture("val", i, condition=condition, cache_dir=cache)
                    for i in (0, 9, 10)]
        for condition in MIXTURE_CONDITIONS
    }  # fmt: skip


def _bytes(image: torch.Tensor) -> torch.Tensor:
    return (image * 255).round().to(torch.uint8)


# ---------------------------------------------------------------- World.mixture


def test_mixture_is_deterministic_across_worlds(world, cache, mixes):
    again = World(seed=0).mixture("val", 2, cache_dir=cache)
    first = mixes[2]
    for name in ("sources", "mixture", "frames"):
        a, b = getattr(first, name), getattr(again, name)
        assert a.dtype == b.dtype and torch.equal(a, b), name
        assert a.numpy().tobytes() == b.numpy().tobytes(), name
    assert again.identities == first.identities and again.texts == first.texts
    assert (again.gain_db, again.scale, again.lengths) == (first.gain_db, first.scale,
                                                           first.lengths)  # fmt: skip
    # another index, seed or split is another mixture
    assert mixes[3].texts != first.texts
    assert World(seed=1).mixture("val", 2, cache_dir=cache).texts != first.texts
    assert world.mixture("train", 2, cache_dir=cache).texts != first.texts


def test_two_different_identities_of_the_split_say_different_sentences(world, mixes):
    for mix in mixes:
        a, b = mix.identities
        assert a.id != b.id
        for ident in (a, b):
            split, k = faces.identity_split(ident.id)
            assert split == "val"
            assert world.identity("val", k) == ident
        assert mix.texts[0] != mix.texts[1]
        for text, j in zip(mix.texts, mix.sentences, strict=True):
            assert world.scene("val", j, audio=False, questions=False).captions[0] == text
    assert len({m.identities for m in mixes}) == len(mixes)


def test_mixture_is_exactly_the_sum_of_the_sources_and_peaks_at_most_one(mixes):
    scales = []
    for mix in mixes:
        n = max(mix.lengths)
        assert mix.sources.shape == (2, n) and mix.mixture.shape == (n,)
        assert mix.sources.dtype == mix.mixture.dtype == torch.float32
        assert torch.equal(mix.mixture, mix.sources.sum(0))
        assert float(mix.mixture.abs().max()) <= 1.0
        assert -3.0 <= mix.gain_db <= 3.0
        scales.append(mix.scale)
    # the normalised case (peak scaled to just under 1) and the untouched one both occur
    assert scales[0] == 1.0 and scales[1] < 1.0
    assert float(mixes[1].mixture.abs().max()) == pytest.approx(1.0, abs=1e-5)


def test_each_source_is_its_speakers_utterance_scaled_then_zero_padded(world, cache, mixes):
    for mix in mixes[:2]:
        for i, (ident, j) in enumerate(zip(mix.identities, mix.sentences, strict=True)):
            _, k = faces.identity_split(ident.id)
            utt = world.utterance("val", k, j, cache_dir=cache)
            n = len(utt.audio)
            assert n == mix.lengths[i] and utt.text == mix.texts[i]
            expected = (utt.audio.double() * mix.factors[i]).float()
            assert torch.equal(mix.sources[i, :n], expected)
            assert not bool(mix.sources[i, n:].any())
            # and so the relative level is the gain: speaker 2 / speaker 1 in dB
        ratio = mix.factors[1] / mix.factors[0]
        assert 20 * math.log10(ratio) == pytest.approx(mix.gain_db, abs=1e-9)


@pytest.mark.parametrize("fps", [25, 10])
def test_frames_cover_the_mixture_and_mouths_shut_after_speech(world, cache, fps):
    mix = world.mixture("val", 0, fps=fps, cache_dir=cache)
    n = max(mix.lengths)
    n_frames = math.ceil(n * fps / SR)
    assert mix.frames.shape == (2, n_frames, 3, H, H) and mix.frames.dtype == torch.uint8
    assert mix.fps == fps
    short = min(range(2), key=lambda i: mix.lengths[i])
    assert mix.lengths[short] < n  # one speaker is padded
    for i, (ident, j) in enumerate(zip(mix.identities, mix.sentences, strict=True)):
        _, k = faces.identity_split(ident.id)
        utt = world.utterance("val", k, j, fps=fps, cache_dir=cache)
        f = len(utt.frames)
        assert torch.equal(mix.frames[i, :f], utt.frames)
        if i != short:
            assert f == n_frames
            continue
        assert f < n_frames
        tail = mix.frames[i, f:]
        # the speaker's pose with the mouth shut, repeated: a silent frame of the utterance
        # (the pose does not depend on fps; at 25 fps the first frames are silent)
        at25 = world.utterance("val", k, j, cache_dir=cache)
        silent = int((faces.mouth_track(at25.audio, SR) == 0).nonzero()[0][0])
        assert torch.equal(tail, at25.frames[silent].expand_as(tail))
        top, bottom, left, right = faces.mouth_box(ident, image_size=H)
        mouth = tail[..., top:bottom, left:right]
        assert torch.equal(mouth, mouth[:1].expand_as(mouth))
        # while speaking the same mouth region moved
        spoken = utt.frames[..., top:bottom, left:right]
        assert not torch.equal(spoken, spoken[:1].expand_as(spoken))


@pytest.mark.parametrize(
    ("split", "index", "match"),
    [
        ("val", -1, "index.*-1"),
        ("val", 2.5, "index.*2.5"),
        ("val", True, "index.*True"),
        ("training", 0, "'training'"),
        ("compositional", 0, "compositional"),
    ],
)
def test_bad_mixture_inputs_name_the_value(world, cache, split, index, match):
    with pytest.raises(ParameterError, match=match):
        world.mixture(split, index, cache_dir=cache)


def test_bad_fps_names_the_value(world, cache):
    for fps in (0, 2.5):
        with pytest.raises(ParameterError, match=f"fps.*{fps}"):
            world.mixture("val", 0, fps=fps, cache_dir=cache)


# ---------------------------------------------------------------- conditions


def _speaker_k(ident: faces.Identity) -> int:
    split, k = faces.identity_split(ident.id)
    assert split == "val"
    return k


def test_default_condition_is_different_voice(mixes, paired):
    mix, default = paired["different-voice"][0], mixes[0]
    assert default.condition == "different-voice"
    assert default.identities == mix.identities and default.texts == mix.texts
    assert torch.equal(default.mixture, mix.mixture)


@pytest.mark.parametrize("condition", MIXTURE_CONDITIONS)
def test_each_condition_is_exactly_the_sum_of_its_sources(paired, condition):
    for mix in paired[condition]:
        assert mix.condition == condition
        assert torch.equal(mix.mixture, mix.sources.sum(0))
        assert float(mix.mixture.abs().max()) <= 1.0
        assert -3.0 <= mix.gain_db <= 3.0


def test_different_voice_pairs_have_different_variants(world, cache, paired):
    # val 9 and 10 are among the first 20 whose drawn pair shared a variant
    pairs = [world.mixture("val", i, cache_dir=cache).identities for i in range(20)]
    for ident in (m.identities for m in paired["different-voice"]):
        assert ident in pairs
    for a, b in pairs:
        assert a.id != b.id
        assert a.voice.variant != b.voice.variant
    for mix in paired["different-voice"]:
        assert mix.voices == (mix.identities[0].voice, mix.identities[1].voice)


def test_same_voice_is_two_faces_speaking_in_speaker_ones_voice(world, cache, paired):
    for mix in paired["same-voice"]:
        a, b = mix.identities
        assert a.id != b.id
        assert world.identity("val", _speaker_k(b)) == b  # the face seen is speaker 2's own
        assert mix.voices == (a.voice, a.voice)
        for i, text in enumerate(mix.texts):
            # the speech is what the shared voice says for that sentence, scaled
            y = torch.from_numpy(voices.speak(text, a.voice, sr=SR, cache_dir=cache))
            n = len(y)
            assert n == mix.lengths[i]
            assert torch.equal(mix.sources[i, :n], (y.double() * mix.factors[i]).float())
            assert not bool(mix.sources[i, n:].any())


def test_same_voice_mouth_follows_the_shared_speech(world, cache, paired):
    for mix in paired["same-voice"]:
        ident, j = mix.identities[1], mix.sentences[1]
        own = world.utterance("val", _speaker_k(ident), j, cache_dir=cache)
        said = voices.speak(mix.texts[1], mix.voices[1], sr=SR, cache_dir=cache)
        track = faces.mouth_track(said, SR)
        own_track = faces.mouth_track(own.audio, SR)
        assert len(track) != len(own_track)  # another voice, another length
        top, bottom, left, right = faces.mouth_box(ident, image_size=H)
        video = mix.frames[1]
        outside = video.clone()
        outside[..., top:bottom, left:right] = 0
        expect = own.frames[0].clone()
        expect[..., top:bottom, left:right] = 0
        assert torch.equal(outside, expect.expand_as(outside))  # speaker 2's pose
        mouth = video[..., top:bottom, left:right]
        own_mouth = own.frames[..., top:bottom, left:right]
        # Openings clip to exactly 1 at the loudest frames and to 0 in silence: frames of
        # one opening show one mouth, in either utterance, and after the speech it is shut.
        wide = own_mouth[torch.from_numpy(own_track == 1)][0]
        at = torch.from_numpy(track)
        opened = mouth[: len(track)][at == 1]
        assert len(opened) and torch.equal(opened, wide.expand_as(opened))
        tail = mouth[len(track) :]
        shut = mouth[: len(track)][at == 0]
        if len(tail) and len(shut):
            assert torch.equal(shut, tail[:1].expand_as(shut))
        closed = torch.cat([shut, tail, own_mouth[torch.from_numpy(own_track == 0)]])
        assert len(closed)
        assert torch.equal(closed, closed[:1].expand_as(closed))
        assert not torch.equal(closed[0], wide)


def test_both_conditions_of_an_index_share_faces_sentences_and_gain(paired):
    for a, b in zip(paired["different-voice"], paired["same-voice"], strict=True):
        assert a.identities == b.identities
        assert (a.texts, a.sentences, a.gain_db) == (b.texts, b.sentences, b.gain_db)
        assert a.voices[0] == b.voices[0] and a.voices[1] != b.voices[1]
        # speaker 1 is the same speech and the same talking face in both
        assert a.lengths[0] == b.lengths[0]
        n = a.lengths[0]
        # the same clean speech under each mixture's scale (float32 rounding apart)
        clean = a.sources[0, :n].double() / a.scale
        assert torch.allclose(b.sources[0, :n].double() / b.scale, clean, rtol=1e-6, atol=0)
        f = min(a.frames.shape[1], b.frames.shape[1])
        assert torch.equal(a.frames[0, :f], b.frames[0, :f])


def test_same_voice_is_deterministic(cache, paired):
    again = World(seed=0).mixture("val", 9, condition="same-voice", cache_dir=cache)
    first = paired["same-voice"][1]
    for name in ("sources", "mixture", "frames"):
        assert getattr(first, name).numpy().tobytes() == getattr(again, name).numpy().tobytes()
    assert (again.identities, again.voices, again.texts, again.gain_db, again.scale) == (
        first.identities, first.voices, first.texts, first.gain_db, first.scale,
    )  # fmt: skip


@pytest.mark.parametrize("condition", ["same", "Same-Voice", None])
def test_bad_condition_names_the_value_and_the_choices(world, cache, condition):
    match = f"condition.*'different-voice', 'same-voice'.*{condition!r}"
    with pytest.raises(ParameterError, match=match):
        world.mixture("val", 0, condition=condition, cache_dir=cache)
    with pytest.raises(ParameterError, match=match):
        make_dataset(world, "speech-separation", "val", condition=condition)


# ---------------------------------------------------------------- views


def test_speech_separation_items_are_the_mixtures_and_batch_padded(world, cache, mixes):
    ds = make_dataset(world, "speech-separation", "val", size=3, cache_dir=cache)
    assert len(ds) == 3 and ds.collate_fn is pad_collate
    items = [ds[i] for i in range(3)]
    for i, item in enumerate(items):
        mix = mixes[i]
        assert torch.equal(item["mixture"], mix.mixture)
        assert torch.equal(item["sources"], mix.sources)
        assert torch.equal(item["frames"], mix.frames)
        assert item["identities"].tolist() == [p.id for p in mix.identities]
        assert item["texts"] == list(mix.texts)
        assert item["gain_db"] == mix.gain_db and type(item["gain_db"]) is float
        assert item["condition"] == mix.condition == "different-voice"
        assert (item["length"], item["n_frames"]) == (mix.mixture.shape[0], mix.frames.shape[1])
    batches = list(DataLoader(ds, batch_size=2, num_workers=0, collate_fn=ds.collate_fn))
    assert [len(b["index"]) for b in batches] == [2, 1]
    batch, pair = batches[0], items[:2]
    t, f = max(it["length"] for it in pair), max(it["n_frames"] for it in pair)
    assert batch["mixture"].shape == (2, t) and batch["sources"].shape == (2, 2, t)
    assert batch["frames"].shape == (2, 2, f, 3, H, H) and batch["frames"].dtype == torch.uint8
    assert batch["identities"].shape == (2, 2)
    assert batch["texts"] == [it["texts"] for it in pair]
    assert batch["condition"] == ["different-voice"] * 2
    assert batch["gain_db"].dtype == torch.float32
    assert batch["gain_db"].tolist() == pytest.approx([it["gain_db"] for it in pair])
    assert batch["length"].tolist() == [it["length"] for it in pair]
    assert pair[0]["length"] != pair[1]["length"]  # the padding was exercised
    for b, it in enumerate(pair):
        n, nf = it["length"], it["n_frames"]
        assert torch.equal(batch["mixture"][b, :n], it["mixture"])
        assert not bool(batch["mixture"][b, n:].any())
        assert torch.equal(batch["sources"][b, :, :n], it["sources"])
        assert torch.equal(batch["frames"][b, :, :nf], it["frames"])
        assert not bool(batch["frames"][b, :, nf:].any())
        # the identity survives batching within the real part
        assert torch.equal(batch["mixture"][b], batch["sources"][b].sum(0))


def test_speech_separation_view_takes_the_condition(world, cache, paired):
    ds = make_dataset(world, "speech-separation", "val", size=11, condition="same-voice",
                      cache_dir=cache)  # fmt: skip
    for i, mix in zip((0, 9, 10), paired["same-voice"], strict=True):
        item = ds[i]
        assert item["condition"] == "same-voice" and item["gain_db"] == mix.gain_db
        assert torch.equal(item["mixture"], mix.mixture)
        assert torch.equal(item["frames"], mix.frames)
    batch = pad_collate([ds[9], ds[10]])
    assert batch["condition"] == ["same-voice"] * 2


def test_voice_face_items_pair_a_voice_with_its_face_and_attributes(world, cache):
    ds = make_dataset(world, "voice-face", "train", size=3, cache_dir=cache)
    items = [ds[i] for i in range(3)]
    for i, item in enumerate(items):
        ident = world.identity("train", i)
        utt = world.utterance("train", i, i, cache_dir=cache)
        assert torch.equal(item["audio"], utt.audio) and item["length"] == len(utt.audio)
        assert item["text"] == utt.text and item["identity"] == ident.id
        assert item["image"].shape == (3, H, H) and item["image"].dtype == torch.float32
        assert torch.equal(_bytes(item["image"]), world.face("train", i, mouth_open=0.0))
        assert faces.SEXES[item["sex"]] == ident.sex
        assert faces.AGES[item["age"]] == ident.age
        assert list(faces.SKIN_TONES)[item["skin"]] == ident.skin
        assert list(faces.HAIR_COLOURS)[item["hair_colour"]] == ident.hair_colour
        assert item["beard"] == int(ident.beard)
    batch = next(iter(DataLoader(ds, batch_size=3, num_workers=0, collate_fn=ds.collate_fn)))
    lengths = [it["length"] for it in items]
    assert batch["audio"].shape == (3, max(lengths))
    assert batch["length"].tolist() == lengths
    for key in ("sex", "age", "skin", "hair_colour", "beard"):
        assert batch[key].dtype == torch.int64
        assert batch[key].tolist() == [it[key] for it in items]
    for b, it in enumerate(items):
        assert torch.equal(batch["audio"][b, : it["length"]], it["audio"])
        assert not bool(batch["audio"][b, it["length"] :].any())


def test_tts_items_are_the_spoken_captions(world, cache):
    ds = make_dataset(world, "tts", "test", size=2, cache_dir=cache)
    items = [ds[i] for i in range(2)]
    for i, item in enumerate(items):
        spoken = world.spoken_caption("test", i, cache_dir=cache)
        scene = world.scene("test", i, audio=False, questions=False)
        assert item["text"] == spoken.caption == scene.captions[0]
        assert torch.equal(item["audio"], spoken.audio) and item["length"] == len(spoken.audio)
        assert torch.equal(_bytes(item["image"]), scene.image)
    batch = next(iter(DataLoader(ds, batch_size=2, num_workers=0, collate_fn=ds.collate_fn)))
    assert batch["text"] == [it["text"] for it in items]
    assert batch["audio"].shape == (2, max(it["length"] for it in items))
    assert batch["image"].shape == (2, 3, H, H)


def test_speech_views_default_to_the_user_cache(world, tmp_path, monkeypatch):
    # cache_dir=None means voices.default_cache_dir(), here pointed at tmp_path
    monkeypatch.setenv("XMODAL_CACHE", str(tmp_path))
    item = make_dataset(world, "tts", "val", size=1)[0]
    assert torch.equal(
        item["audio"], world.spoken_caption("val", 0, cache_dir=tmp_path / "speech").audio
    )
    assert len(list((tmp_path / "speech").glob("*.npy"))) == 1


@pytest.mark.parametrize("view", ["speech-separation", "voice-face", "tts"])
def test_speech_view_sizes_and_options(world, view):
    assert len(make_dataset(world, view, "val")) == DEFAULT_SIZES["val"]
    assert len(make_dataset(world, view, "train", size=5, cache_dir="unused")) == 5
    with pytest.raises(ParameterError, match="shuffle"):
        make_dataset(world, view, "train", shuffle=True)
    with pytest.raises(ParameterError, match="'speach'"):
        make_dataset(world, "speach", "train")


def test_option_checks_name_the_option(world):
    with pytest.raises(ParameterError, match="'tts'.*cache_dir.*'fps'"):
        make_dataset(world, "tts", "train", fps=25)
    with pytest.raises(ParameterError, match="takes no options.*cache_dir"):
        make_dataset(world, "places", "train", cache_dir="x")
    with pytest.raises(ParameterError, match="'captioning'.*near_misses.*cache_dir"):
        make_dataset(world, "captioning", "train", cache_dir="x")
    with pytest.raises(ParameterError, match="near_misses"):
        make_dataset(world, "captioning", "train", near_misses="yes")
    with pytest.raises(ParameterError, match="fps.*0"):
        make_dataset(world, "speech-separation", "train", fps=0)


def test_pad_collate_pads_every_dim_to_the_batch_max():
    items = [
        {"x": torch.ones(2, 3), "n": 3, "s": "a"},
        {"x": 2 * torch.ones(1, 5), "n": 5, "s": "b"},
    ]
    batch = pad_collate(items)
    assert batch["x"].tolist() == [
        [[1, 1, 1, 0, 0], [1, 1, 1, 0, 0]],
        [[2, 2, 2, 2, 2], [0, 0, 0, 0, 0]],
    ]
    assert batch["n"].tolist() == [3, 5] and batch["s"] == ["a", "b"]
    assert list(batch) == ["x", "n", "s"]
    with pytest.raises(ParameterError, match="'x'.*rank"):
        pad_collate([{"x": torch.ones(2)}, {"x": torch.ones(2, 2)}])
    with pytest.raises(ParameterError, match="at least one item"):
        pad_collate([])
