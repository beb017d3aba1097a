"""Identities, their faces and voices: the voice tells sex and age, faces draw what they are,
the mouth follows the speech, and ids never cross splits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xmodal.errors import ParameterError
from xmodal.world import faces as F
from xmodal.world.faces import (
    HAIR_COLOURS,
    SKIN_TONES,
    draw_face,
    identity,
    identity_id,
    identity_split,
    mouth_box,
    mouth_track,
    talking_face,
)
from xmodal.world.schema import SPLITS
from xmodal.world.voices import speak, speak_many

SR = 16000
SENTENCE = "the small red circle is to the left of the big blue square"
N_PER_SPLIT = 40


def person(split: str, k: int) -> F.Identity:
    """The k-th identity of a split, seeded the way the world seeds it (by id)."""
    pid = identity_id(split, k)
    return identity(np.random.default_rng([7, pid]), id=pid)


def crowd(n: int = 300) -> list[F.Identity]:
    return [identity(np.random.default_rng(k), id=k) for k in range(n)]


@pytest.fixture(scope="session")
def spoken(tmp_path_factory):
    """SENTENCE spoken by N_PER_SPLIT train and N_PER_SPLIT test identities, in parallel."""
    folder = tmp_path_factory.mktemp("speech")
    people = [person(s, k) for s in ("train", "test") for k in range(N_PER_SPLIT)]
    audio = speak_many([SENTENCE] * len(people), [p.voice for p in people], cache_dir=folder)
    return people, audio, folder


# ------------------------------------------------------------------------------ identities


def test_identity_is_a_pure_function_of_rng():
    a = identity(np.random.default_rng(3), id=8)
    assert a == identity(np.random.default_rng(3), id=8)
    assert len({identity(np.random.default_rng(k), id=0) for k in range(20)}) == 20


def test_identity_ids_are_disjoint_across_splits_and_invertible():
    ids = {s: {identity_id(s, k) for k in range(500)} for s in SPLITS}
    for i, a in enumerate(SPLITS):
        assert len(ids[a]) == 500
        for b in SPLITS[i + 1 :]:
            assert not ids[a] & ids[b]
    assert all(identity_split(identity_id(s, k)) == (s, k) for s in SPLITS for k in (0, 7, 999))
    assert (identity_id("train", 0), identity_id("val", 0), identity_id("train", 1)) == (0, 1, 4)


def test_voice_goes_with_sex_and_age_with_noise():
    people = crowd(600)

    def mean(attr, **where):
        sel = [p for p in people if all(getattr(p, k) == v for k, v in where.items())]
        return np.mean([getattr(p.voice, attr) for p in sel]), sel

    female, women = mean("pitch", sex="female")
    male, men = mean("pitch", sex="male")
    assert female > male + 12
    assert all(p.voice.variant.startswith("f") or p.voice.variant == "grandma" for p in women)
    assert all(p.voice.variant.startswith("m") or p.voice.variant == "grandpa" for p in men)
    rates = [mean("rate", age=a)[0] for a in ("young", "adult", "old")]
    assert rates[0] > rates[1] + 15 and rates[1] > rates[2] + 15
    assert mean("pitch_range", age="old")[0] < mean("pitch_range", age="young")[0] - 15
    # Probabilistic, not a lookup: within one sex and age group voices spread out, and
    # some old people speak faster than some young ones.
    group = [p.voice.pitch for p in people if (p.sex, p.age) == ("female", "adult")]
    assert np.std(group) > 3 and len(set(group)) > 8
    old = [p.voice.rate for p in people if p.age == "old"]
    young = [p.voice.rate for p in people if p.age == "young"]
    assert max(old) > min(young)


def test_face_attributes_follow_sex_and_age():
    people = crowd(600)
    assert all(not p.beard for p in people if p.sex == "female" or p.age == "young")
    assert any(p.beard for p in people if p.sex == "male" and p.age == "old")
    assert all(p.wrinkles == (p.age == "old") for p in people)
    assert all(p.sex == "male" and p.age == "old" for p in people if p.hair_length == "bald")
    old_grey = np.mean([p.hair_colour in ("grey", "white") for p in people if p.age == "old"])
    young_grey = np.mean([p.hair_colour in ("grey", "white") for p in people if p.age == "young"])
    assert old_grey > 0.6 and young_grey == 0.0


def test_voice_tells_sex_and_age_of_held_out_identities(spoken):
    """Fit on train identities' voices, predict sex and age group of unseen test ones."""
    import librosa

    people, audio, _ = spoken
    train_ids = {p.id for p in people[:N_PER_SPLIT]}
    assert not train_ids & {p.id for p in people[N_PER_SPLIT:]}

    def features(y):
        f0 = librosa.yin(y, fmin=60, fmax=500, sr=SR, frame_length=1024, hop_length=256)
        rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=256)[0][: len(f0)]
        voiced = rms > 0.1 * rms.max()
        log_f0 = np.log(f0[voiced])
        centroid = librosa.feature.spectral_centroid(y=y, sr=SR, n_fft=1024, hop_length=256)
        loud = np.flatnonzero(np.abs(y) > 0.02)
        return [
            np.median(log_f0),
            np.percentile(log_f0, 90) - np.percentile(log_f0, 10),  # pitch range
            np.log((loud[-1] - loud[0]) / SR),  # the same sentence: duration ~ 1 / rate
            np.log(np.median(centroid[0][: len(f0)][voiced])),
        ]

    x = np.array([features(y) for y in audio])
    n = N_PER_SPLIT
    z = (x - x[:n].mean(0)) / x[:n].std(0)
    z = np.c_[z, np.ones(len(z))]

    def accuracy(labels, classes):
        onehot = np.array([[lab == c for c in classes] for lab in labels], float)
        w = np.linalg.lstsq(z[:n], onehot[:n], rcond=None)[0]
        return float(np.mean((z[n:] @ w).argmax(1) == onehot[n:].argmax(1)))

    sex = accuracy([p.sex for p in people], F.SEXES)
    age = accuracy([p.age for p in people], F.AGES)
    print(f"held-out accuracy from the voice: sex {sex:.3f}, age group {age:.3f}")
    assert sex >= 0.8  # chance 0.5
    assert age >= 0.5  # chance 1/3


# ------------------------------------------------------------------------------ drawing


def test_draw_face_is_deterministic_and_identities_differ():
    p, q = person("train", 0), person("train", 1)
    a = draw_face(np.random.default_rng(5), p)
    assert a.shape == (3, 64, 64) and a.dtype == np.uint8
    assert a.tobytes() == draw_face(np.random.default_rng(5), p).tobytes()
    assert a.tobytes() != draw_face(np.random.default_rng(5), q).tobytes()
    assert draw_face(np.random.default_rng(5), p, image_size=96).shape == (3, 96, 96)


def test_mouth_open_changes_only_the_mouth_region():
    lower_third = []
    for k in range(60):
        p = person("train", k)
        closed = draw_face(np.random.default_rng(k), p, mouth_open=0.0)
        wide = draw_face(np.random.default_rng(k), p, mouth_open=1.0)
        rows, cols = np.nonzero((closed != wide).any(0))
        assert len(rows) >= 30  # visibly open
        top, bottom, left, right = mouth_box(p)
        assert rows.min() >= top and rows.max() < bottom
        assert cols.min() >= left and cols.max() < right
        lower_third.append(np.mean(rows >= 64 * 2 / 3))
    assert min(lower_third) >= 0.7 and np.mean(lower_third) >= 0.9


def test_mouth_grows_darker_as_it_opens():
    p = person("val", 2)
    top, bottom, left, right = mouth_box(p)
    dark = [
        int((draw_face(np.random.default_rng(0), p, mouth_open=m)[:, top:bottom, left:right]
             .max(0) < 80).sum())
        for m in (0.0, 0.25, 0.5, 1.0)
    ]  # fmt: skip
    assert dark == sorted(dark) and dark[-1] > dark[0] + 20


def _patch_colour(img, rows, cols):
    return np.median(img[:, rows[0] : rows[1], cols[0] : cols[1]].reshape(3, -1), axis=1)


def test_beard_shows_only_on_bearded_identities():
    """Between the mouth and the chin a bearded face has the beard's colour, others skin."""
    checked = {True: 0, False: 0}
    for p in crowd(200):
        if p.sex != "male" or p.age == "young":
            continue
        img = draw_face(np.random.default_rng(0), p).astype(float)
        chin = _patch_colour(img, (int(0.76 * 64), int(0.8 * 64)), (28, 36))
        beard = HAIR_COLOURS["grey" if p.hair_length == "bald" else p.hair_colour]
        to_beard = np.abs(chin - beard).sum()
        to_skin = np.abs(chin - SKIN_TONES[p.skin]).sum()
        assert (to_beard < to_skin) == p.beard, p
        checked[p.beard] += 1
    assert min(checked.values()) >= 10


def test_wrinkles_are_darker_lines_on_the_upper_face():
    p = next(q for q in crowd(100) if q.age == "old" and not q.beard)
    smooth = dataclasses.replace(p, wrinkles=False)
    a = draw_face(np.random.default_rng(1), p).astype(int)
    b = draw_face(np.random.default_rng(1), smooth).astype(int)
    rows, _ = np.nonzero((a != b).any(0))
    assert len(rows) > 20
    assert (a.sum(0) <= b.sum(0)).all()  # lines only ever darken
    assert rows.max() < 0.75 * 64  # forehead, eyes and cheeks; not the chin


# ------------------------------------------------------------------------------ talking


def frame_rms(y, sr=SR, fps=25):
    hop = sr // fps
    n = -(-len(y) // hop)
    padded = np.pad(y.astype(float), (0, n * hop - len(y)))
    return np.sqrt((padded.reshape(n, hop) ** 2).mean(1))


def test_mouth_track_follows_the_speech_envelope(spoken):
    _, audio, _ = spoken
    for y in audio[:5]:
        track = mouth_track(y, SR, fps=25)
        assert track.dtype == np.float32 and len(track) == -(-len(y) * 25 // SR)
        assert track.min() >= 0.0 and track.max() == 1.0
        assert np.corrcoef(track, frame_rms(y))[0, 1] > 0.8


def test_mouth_track_is_shut_in_silence_and_open_in_sound():
    t = np.arange(SR) / SR
    y = np.where(t >= 0.5, 0.3 * np.sin(2 * np.pi * 200 * t), 0.0)
    track = mouth_track(y, SR, fps=25)
    assert len(track) == 25
    assert (track[:11] == 0).all() and (track[14:] == 1).all()
    assert (mouth_track(np.zeros(800), SR) == 0).all()
    assert len(mouth_track(np.ones(SR // 2) * 0.1, SR, fps=30)) == 15


def test_talking_face_mouth_follows_the_track(spoken):
    people, audio, _ = spoken
    p, y = people[3], audio[3]
    frames = talking_face(np.random.default_rng(9), p, y, SR, fps=25)
    track = mouth_track(y, SR, fps=25)
    assert frames.shape == (len(track), 3, 64, 64) and frames.dtype == np.uint8
    for t in (0, len(track) // 2, len(track) - 1):
        same = draw_face(np.random.default_rng(9), p, mouth_open=float(track[t]))
        assert frames[t].tobytes() == same.tobytes()
    closed = draw_face(np.random.default_rng(9), p, mouth_open=0.0).astype(int)
    top, bottom, left, right = mouth_box(p)
    change = np.abs(frames.astype(int) - closed).sum(axis=(1, 2, 3))
    inside = np.abs(frames.astype(int) - closed)[:, :, top:bottom, left:right].sum(axis=(1, 2, 3))
    assert (change == inside).all()  # nothing outside the mouth moves
    assert np.corrcoef(change, track)[0, 1] > 0.8


def _talking_face_reference(rng, ident, audio, sr, *, fps=25, image_size=64):
    """talking_face as it was before it drew only the mouth box: every frame drawn whole."""
    track = mouth_track(audio, sr, fps=fps)
    window, (cy, cx), palette = F._pose(rng, ident, image_size)
    labels = np.empty((len(track), image_size, image_size), np.uint8)
    labels[:] = window
    for t, opening in enumerate(track.tolist()):
        F._draw_mouth(labels[t], ident, cy, cx, opening)
    return np.ascontiguousarray(np.take(palette, labels, axis=1).transpose(1, 0, 2, 3))


def _clips(n: int = 5) -> list[np.ndarray]:
    """Speech-like waveforms: bursts of noise under a wobbling envelope, with pauses; and
    silence and a constant tone (every frame shut or open alike)."""
    g = np.random.default_rng(123)
    clips = []
    for _ in range(n):
        size = int(SR * g.uniform(0.3, 2.5))
        t = np.arange(size) / SR
        envelope = np.abs(np.sin(2 * np.pi * g.uniform(1, 6) * t)) ** g.uniform(0.5, 3)
        voiced = (g.random(size // 400 + 1) > 0.3)[np.arange(size) // 400]
        clips.append((envelope * voiced * g.standard_normal(size)).astype(np.float32))
    return clips + [np.zeros(SR // 2, np.float32), np.full(SR // 3, 0.1, np.float32)]


@pytest.mark.parametrize(("image_size", "fps"), [(64, 25), (32, 30), (97, 25)])
def test_talking_face_is_byte_identical_to_drawing_every_frame_whole(image_size, fps):
    clips = _clips()
    for k in range(50):
        p = identity(np.random.default_rng([11, k]), id=k)
        for c, y in enumerate(clips):
            seed = [k, c, image_size]
            rng_new, rng_old = np.random.default_rng(seed), np.random.default_rng(seed)
            new = talking_face(rng_new, p, y, SR, fps=fps, image_size=image_size)
            old = _talking_face_reference(rng_old, p, y, SR, fps=fps, image_size=image_size)
            assert new.shape == old.shape and new.dtype == old.dtype
            assert new.flags.c_contiguous
            assert new.tobytes() == old.tobytes(), (k, c)
            assert rng_new.bit_generator.state == rng_old.bit_generator.state


def test_mouth_patches_match_draw_mouth_for_any_opening():
    g = np.random.default_rng(5)
    edge = [0.5 / (F._MAX_OPEN * s) for s in (32, 64, 128)]  # the closed/open threshold
    openings = np.concatenate([[0.0, 1.0], edge, np.nextafter(edge, 0), g.random(60)])
    for k in range(30):
        p = identity(np.random.default_rng([12, k]), id=k)
        for size in (32, 64, 128):
            window, (cy, cx), _ = F._pose(np.random.default_rng(k), p, size)
            box = top, bottom, left, right = mouth_box(p, image_size=size)
            patches = F._mouth_patches(window, p, cy, cx, openings, box)
            for opening, patch in zip(openings.tolist(), patches, strict=True):
                labels = window.copy()
                F._draw_mouth(labels, p, cy, cx, opening)
                outside = labels.copy()
                outside[top:bottom, left:right] = window[top:bottom, left:right]
                assert (outside == window).all()  # the mouth stays in its box
                assert (labels[top:bottom, left:right] == patch).all()


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan"), True, "open"])
def test_bad_mouth_open_names_the_value(value):
    with pytest.raises(ParameterError, match=f"mouth_open.*{value!r}"):
        draw_face(np.random.default_rng(0), person("train", 0), mouth_open=value)


def test_bad_arguments_name_the_value(spoken):
    _, audio, _ = spoken
    rng, p = np.random.default_rng(0), person("train", 0)
    with pytest.raises(ParameterError, match="fps.*0"):
        mouth_track(audio[0], SR, fps=0)
    with pytest.raises(ParameterError, match="fps.*-5"):
        talking_face(rng, p, audio[0], SR, fps=-5)
    with pytest.raises(ParameterError, match="sr.*0"):
        mouth_track(audio[0], 0)
    with pytest.raises(ParameterError, match="image_size.*16"):
        draw_face(rng, p, image_size=16)
    with pytest.raises(ParameterError, match="ident"):
        draw_face(rng, "alice")
    with pytest.raises(ParameterError, match="rng.*42"):
        draw_face(42, p)
    with pytest.raises(ParameterError, match="shape \\(2, 100\\)"):
        mouth_track(np.zeros((2, 100)), SR)
    with pytest.raises(ParameterError, match="NaN"):
        mouth_track(np.full(100, np.nan), SR)
    with pytest.raises(ParameterError, match="'dev'"):
        identity_id("dev", 0)
    with pytest.raises(ParameterError, match="-1"):
        identity_id("train", -1)
    with pytest.raises(ParameterError, match="-3"):
        identity(np.random.default_rng(0), id=-3)


def test_spoken_fixture_is_cached(spoken, monkeypatch):
    """The voices the faces tests use come back from the cache, as the world's will."""
    from xmodal.world import voices

    people, audio, folder = spoken
    monkeypatch.setattr(voices, "_synthesize_fresh", None)  # any synthesis would fail
    assert speak(SENTENCE, people[0].voice, cache_dir=folder).tobytes() == audio[0].tobytes()
