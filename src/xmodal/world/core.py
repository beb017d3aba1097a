"""The world: every sample a pure function of (seed, split, index).

A :class:`World` holds only its seed and a :class:`WorldConfig`; there is no data on disk
and nothing is kept between samples. ``world.scene("train", 17)`` draws the 17th training
scene from random streams seeded by ``(seed, domain, split, index)``, so the same call
gives the same bytes in any process, DataLoader worker or run, and the splits are
disjoint by construction: they are different streams.

Each sample uses three independent streams, visual, text and audio, so asking for a
scene without its audio (faster) gives the same image and captions as with it.

Example:
    >>> world = World(seed=0)
    >>> scene = world.scene("train", 0)
    >>> scene.image.shape, scene.captions[0]
    (torch.Size([3, 64, 64]), 'a large red circle to the left of a small blue square')
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import numbers
import struct
import threading
from dataclasses import dataclass

import numpy as np
import torch

from xmodal._checks import check_bool, check_choice, check_positive_int, check_positive_number
from xmodal.errors import ParameterError
from xmodal.world import faces, language, recipes, render, sound, voices
from xmodal.world.schema import (
    COLOURS,
    PLACES,
    SHAPES,
    SIZES,
    SPLITS,
    Question,
    WorldObject,
    split_id,
)

__all__ = [
    "MIXTURE_CONDITIONS",
    "NARRATOR",
    "PlaceSample",
    "Scene",
    "SpokenCaption",
    "TwoSpeakerMixture",
    "Utterance",
    "World",
    "WorldConfig",
]

# The one voice that reads captions aloud (spoken captions, TTS, image-to-speech).
NARRATOR = voices.VoiceParams("m3", pitch=45, rate=160, pitch_range=50)

# Domain numbers in the seed of every sample: a new domain takes a new number, so adding
# one never changes the samples of another.
_SCENES = 0
_PLACES = 1
_FACES = 2
_RECIPES = 3
_MIXTURES = 4
_NEAR_MISSES = 5
_LABELLED_SOUNDS = 6
_STREAMS = {"visual": 0, "text": 1, "audio": 2}
_SIZE_WORDS = tuple(SIZES)

# The conditions of World.mixture: what tells the two speakers apart besides their faces.
MIXTURE_CONDITIONS = ("different-voice", "same-voice")

# Two-speaker mixtures draw their speakers from the first _MIX_IDENTITIES identities of
# the split and their sentences from the first captions of its first _MIX_SENTENCES
# scenes; the relative gain of speaker 2 is uniform in +-_MIX_GAIN_DB.
_MIX_IDENTITIES = 1000
_MIX_SENTENCES = 10_000
_MIX_GAIN_DB = 3.0
# Scale to a peak just under 1 so float32 rounding of the scaled sources and of their sum
# cannot push a sample past 1.
_MIX_PEAK = 1.0 - 2.0**-20

# World.dataset's factory, xmodal.world.datasets.make_dataset. The views are built on
# World, so that module imports this one, never the reverse: it installs the factory here
# as it loads, and xmodal/world/__init__.py imports it, so World.dataset works as soon as
# xmodal.world is imported.
_dataset_factory = None


def _install_dataset_factory(factory) -> None:
    global _dataset_factory
    _dataset_factory = factory


@dataclass(frozen=True)
class WorldConfig:
    """How the world is drawn. The defaults train well on a laptop CPU.

    Attributes:
        image_size: side of the square images in pixels.
        sample_rate: audio sample rate in Hz, at least 8000 (so every shape's timbre fits
            under Nyquist).
        clip_seconds: length of a scene's or a place's sound in seconds.
        min_objects, max_objects: objects per shapes scene (inclusive).
        sounding_prob: chance that each object beyond the first sounding one also sounds
            (every scene has at least one sounding object).
        n_captions: captions per scene.
        n_questions: questions per scene.
        compositional: keep the ``held_out`` (colour, shape) combinations out of the
            train, val and test splits and put them in the ``"compositional"`` split.
        held_out: the (colour, shape) combinations held out when ``compositional``.
        places: the place classes scenes and place samples are drawn from.
    """

    image_size: int = 64
    sample_rate: int = 16000
    clip_seconds: float = 1.0
    min_objects: int = 1
    max_objects: int = 3
    sounding_prob: float = 0.5
    n_captions: int = 5
    n_questions: int = 10
    compositional: bool = False
    held_out: tuple[tuple[str, str], ...] = (("red", "circle"), ("blue", "square"))
    places: tuple[str, ...] = PLACES

    def __post_init__(self) -> None:
        size = check_positive_int(self.image_size, "image_size", minimum=32)
        # Below 8 kHz the upper harmonics of the highest colour's note fall past Nyquist
        # and shapes stop sounding different.
        check_positive_int(self.sample_rate, "sample_rate", minimum=8000)
        check_positive_number(self.clip_seconds, "clip_seconds")
        low = check_positive_int(self.min_objects, "min_objects")
        high = check_positive_int(self.max_objects, "max_objects")
        if low > high:
            raise ParameterError(f"min_objects must be <= max_objects. Found: {low} > {high}")
        fit = render.max_objects(size)
        if high > fit:
            raise ParameterError(
                f"max_objects={high} objects do not fit reliably in a {size}x{size} image "
                f"(at most {fit}); lower max_objects or raise image_size"
            )
        prob = check_positive_number(self.sounding_prob, "sounding_prob", allow_zero=True)
        if prob > 1:
            raise ParameterError(f"sounding_prob must be in [0, 1]. Found: {prob}")
        check_positive_int(self.n_captions, "n_captions")
        check_positive_int(self.n_questions, "n_questions")
        check_bool(self.compositional, "compositional")
        for combo in self.held_out:
            if (
                not isinstance(combo, tuple)
                or len(combo) != 2
                or combo[0] not in COLOURS
                or combo[1] not in SHAPES
            ):
                raise ParameterError(
                    f"held_out must hold (colour, shape) pairs such as ('red', 'circle'). "
                    f"Found: {combo!r}"
                )
        if self.compositional and not self.held_out:
            raise ParameterError("compositional=True needs at least one held_out combination")
        if len(self.held_out) >= len(COLOURS) * len(SHAPES):
            raise ParameterError("held_out leaves no (colour, shape) combination for training")
        if not self.places:
            raise ParameterError("places must name at least one place")
        for place in self.places:
            if place not in PLACES:
                raise ParameterError(f"unknown place {place!r}; the places are {PLACES}")

    @property
    def n_samples(self) -> int:
        """Samples in one clip."""
        return int(round(self.sample_rate * self.clip_seconds))


@dataclass
class Scene:
    """A shapes scene with its ground truth.

    Attributes:
        image: ``(3, H, W)`` uint8.
        objects: the objects, in drawing order.
        masks: ``(K, H, W)`` bool, one per object (disjoint).
        place: the background's place class.
        captions: true descriptions of the scene.
        questions: questions with their answers and families.
        sounding: indices into ``objects`` of the objects that make a sound.
        sounding_mask: ``(H, W)`` bool, the union of the sounding objects' masks.
        audio: ``(T,)`` float32 mixture = ``sources.sum(0) + ambience`` (None if the scene
            was drawn without audio).
        sources: ``(len(sounding), T)`` float32, one clean waveform per sounding object,
            in the order of ``sounding``.
        ambience: ``(T,)`` float32, the place's ambient sound under the objects.
        sample_rate: Hz.
    """

    split: str
    index: int
    image: torch.Tensor
    objects: list[WorldObject]
    masks: torch.Tensor
    place: str
    captions: list[str]
    questions: list[Question]
    sounding: list[int]
    sounding_mask: torch.Tensor
    audio: torch.Tensor | None = None
    sources: torch.Tensor | None = None
    ambience: torch.Tensor | None = None
    sample_rate: int = 16000


@dataclass
class PlaceSample:
    """A place (scene class): its picture and its ambient sound.

    Attributes:
        place: the class name; ``label`` its index in the world's ``places``.
        image: ``(3, H, W)`` uint8 background of the place.
        audio: ``(T,)`` float32 ambient sound (None if drawn without audio).
    """

    split: str
    index: int
    place: str
    label: int
    image: torch.Tensor
    audio: torch.Tensor | None = None
    sample_rate: int = 16000


@dataclass
class Utterance:
    """An identity saying a sentence, with the talking face that goes with it.

    Attributes:
        identity: who speaks (face attributes and voice).
        text: what is said.
        audio: ``(T,)`` float32 speech at ``sample_rate``.
        frames: ``(F, 3, H, W)`` uint8 talking-face frames at ``fps``, the mouth opening
            following the speech (None if asked for without frames).
    """

    split: str
    identity: faces.Identity
    text: str
    audio: torch.Tensor
    frames: torch.Tensor | None
    sample_rate: int = 16000
    fps: int = 25


@dataclass
class TwoSpeakerMixture:
    """Two identities talking at once, with both clean sources and both talking faces.

    Both speakers start at sample 0; the shorter one is zero-padded at the end to the
    longer one's length ``T``. The identity ``mixture == sources.sum(0)`` holds exactly.

    Attributes:
        identities: the two speakers (different identities of ``split``): the faces seen.
        voices: the voices heard: ``identities[i].voice`` for ``"different-voice"`` (two
            different eSpeak variants); ``identities[0].voice`` twice for ``"same-voice"``.
        condition: one of :data:`MIXTURE_CONDITIONS`.
        texts: what each says (two different sentences).
        sentences: the scenes of ``split`` whose first captions are ``texts``, so
            ``world.utterance(split, k, sentences[i])`` is speaker ``i``'s clean speech.
        sources: ``(2, T)`` float32, row ``i`` = speaker ``i``'s utterance times
            ``factors[i]``, then zeros.
        mixture: ``(T,)`` float32, ``sources.sum(0)``; its peak is at most 1.
        frames: ``(2, F, 3, H, W)`` uint8 talking faces, ``F = ceil(T * fps / sample_rate)``;
            after a speaker's speech ends the mouth stays closed.
        lengths: samples of each clean utterance before padding.
        gain_db: speaker 2's gain relative to speaker 1, in dB, in [-3, 3].
        scale: the peak normalisation applied to both sources (1.0 when none was needed).
    """

    split: str
    index: int
    identities: tuple[faces.Identity, faces.Identity]
    voices: tuple[voices.VoiceParams, voices.VoiceParams]
    condition: str
    texts: tuple[str, str]
    sentences: tuple[int, int]
    sources: torch.Tensor
    mixture: torch.Tensor
    frames: torch.Tensor
    lengths: tuple[int, int]
    gain_db: float
    scale: float
    sample_rate: int = 16000
    fps: int = 25

    @property
    def factors(self) -> tuple[float, float]:
        """What each clean utterance was multiplied by: gain and normalisation together."""
        return self.scale, 10.0 ** (self.gain_db / 20.0) * self.scale


@dataclass
class SpokenCaption:
    """A scene's first caption read aloud by the narrator."""

    split: str
    index: int
    image: torch.Tensor
    caption: str
    audio: torch.Tensor
    sample_rate: int = 16000


# ------------------------------------------------------------------------------ seeding


def _state_words(words: tuple[int, ...]) -> tuple[int, int]:
    """A 128-bit PCG64 state and an odd increment from a tuple of integers.

    blake2b of the packed words: the same on every machine and process (unlike hash()),
    and any change to any word gives an unrelated state.
    """
    digest = hashlib.blake2b(struct.pack(f"<{len(words)}q", *words), digest_size=32).digest()
    return int.from_bytes(digest[:16], "little"), int.from_bytes(digest[16:], "little") | 1


_local = threading.local()


def _generator(slot: int, words: tuple[int, ...]) -> np.random.Generator:
    """A PCG64 generator whose state is a hash of ``words``.

    Building a Generator from a SeedSequence costs ~20 us, a noticeable part of a scene;
    hashing the words and setting the state of a reused one costs ~3 us. One reusable generator per
    (thread, slot): a caller uses a slot's generator only until it asks for that slot again.
    """
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    gen = pool.get(slot)
    if gen is None:
        gen = pool[slot] = np.random.Generator(np.random.PCG64(0))
    state, inc = _state_words(words)
    gen.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": state, "inc": inc},
        "has_uint32": 0,
        "uinteger": 0,
    }
    return gen


# ------------------------------------------------------------------------------ the world


class World:
    """The procedural multimodal world.

    Args:
        seed: the world's seed; two worlds with the same seed and config are identical.
        config: a :class:`WorldConfig`; or give its fields as keyword arguments.

    Example:
        >>> world = World(seed=0, image_size=64, compositional=True)
        >>> scene = world.scene("compositional", 3)   # holds a red circle or a blue square
    """

    def __init__(self, seed: int = 0, config: WorldConfig | None = None, **overrides) -> None:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ParameterError(f"seed must be an integer >= 0. Found: {seed!r}")
        self.seed = int(seed)
        config = config or WorldConfig()
        if overrides:
            names = {f.name for f in dataclasses.fields(WorldConfig)}
            unknown = sorted(set(overrides) - names)
            if unknown:
                raise ParameterError(
                    f"unknown world setting(s) {unknown}; the settings are {sorted(names)}"
                )
            config = dataclasses.replace(config, **overrides)
        self.config = config
        # Relations are only stated between objects whose centres differ by more than
        # this on the relation's axis, so every caption's relation is plain to see.
        self.margin = 0.1 * config.image_size
        self._combos = [
            (colour, shape)
            for colour in COLOURS
            for shape in SHAPES
            if not (config.compositional and (colour, shape) in config.held_out)
        ]

    def __repr__(self) -> str:
        return f"World(seed={self.seed}, config={self.config})"

    # -------------------------------------------------------------------- checks

    def _check(self, split: str, index: int) -> int:
        if split not in SPLITS:
            raise ParameterError(f"unknown split {split!r}; the splits are {SPLITS}")
        if split == "compositional" and not self.config.compositional:
            raise ParameterError("split 'compositional' exists only in World(compositional=True)")
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or index < 0:
            raise ParameterError(f"index must be an integer >= 0. Found: {index!r}")
        return split_id(split)

    # -------------------------------------------------------------------- scenes

    def _specs(self, rng: np.random.Generator, split: str):
        """The place, the (shape, colour, size) of each object, and which objects sound."""
        cfg = self.config
        # One vector of uniforms for every choice: a scalar draw costs as much as 16.
        u = rng.random(6 + 2 * cfg.max_objects).tolist()
        place = cfg.places[int(u[0] * len(cfg.places))]
        k = cfg.min_objects + int(u[1] * (cfg.max_objects - cfg.min_objects + 1))
        sizes, combos = _SIZE_WORDS, self._combos
        specs = []
        for j in range(k):
            colour, shape = combos[int(u[6 + 2 * j] * len(combos))]
            specs.append((shape, colour, sizes[int(u[7 + 2 * j] * len(sizes))]))
        if split == "compositional":
            # Every compositional scene shows at least one held-out combination.
            colour, shape = cfg.held_out[int(u[2] * len(cfg.held_out))]
            specs[int(u[3] * k)] = (shape, colour, sizes[int(u[4] * len(sizes))])
        first = int(u[5] * k)
        extra = rng.random(k).tolist()
        sounding = [j == first or extra[j] < cfg.sounding_prob for j in range(k)]
        return place, specs, sounding

    def scene(self, split: str, index: int, *, audio: bool = True, questions: bool = True) -> Scene:
        """The shapes scene ``index`` of ``split``.

        Args:
            split: ``"train"``, ``"val"``, ``"test"`` or (with ``compositional=True``)
                ``"compositional"``.
            index: any integer >= 0; every index is a different scene.
            audio: also synthesize the sounds.
            questions: also ask the questions (``scene.questions`` is empty without).

        Leaving out the audio or the questions is faster and changes nothing else: the
        image, captions and (if asked) questions are the same either way.
        """
        sid = self._check(split, index)
        cfg = self.config
        words = (self.seed, _SCENES, sid, int(index))
        vis = _generator(_STREAMS["visual"], words + (_STREAMS["visual"],))
        place, specs, sounding = self._specs(vis, split)
        objects = render.layout(vis, specs, image_size=cfg.image_size, sounding=sounding,
                                margin=self.margin)  # fmt: skip
        image, masks, objects = render.render(vis, place, objects, image_size=cfg.image_size)
        txt = _generator(_STREAMS["text"], words + (_STREAMS["text"],))
        if check_bool(questions, "questions"):
            captions, asked = language.scene_text(
                txt, objects, place, n_captions=cfg.n_captions, n_questions=cfg.n_questions,
                margin=self.margin,
            )  # fmt: skip
        else:  # captions come first from the text stream, so they do not change
            captions = language.captions(txt, objects, place, n=cfg.n_captions, margin=self.margin)
            asked = []
        sounding_idx = [i for i, o in enumerate(objects) if o.sounding]
        if len(sounding_idx) == 1:  # a copy: the scene's tensors must not share memory
            sounding_mask = masks[sounding_idx[0]].copy()
        else:
            sounding_mask = masks[sounding_idx].any(axis=0)
        scene = Scene(
            split=split,
            index=int(index),
            image=torch.from_numpy(image),
            objects=objects,
            masks=torch.from_numpy(masks),
            place=place,
            captions=captions,
            questions=asked,
            sounding=sounding_idx,
            sounding_mask=torch.from_numpy(sounding_mask),
            sample_rate=cfg.sample_rate,
        )
        if check_bool(audio, "audio"):
            aud = _generator(_STREAMS["audio"], words + (_STREAMS["audio"],))
            n = cfg.n_samples
            sources = [
                sound.object_sound(aud, objects[i], sr=cfg.sample_rate, n_samples=n)
                for i in sounding_idx
            ]
            ambience = sound.ambience(aud, place, sr=cfg.sample_rate, n_samples=n)
            scene.audio = torch.from_numpy(sound.mix(sources, ambience))
            scene.sources = torch.from_numpy(np.stack(sources))
            scene.ambience = torch.from_numpy(ambience)
        return scene

    # -------------------------------------------------------------------- labelled sounds

    @property
    def sound_classes(self) -> tuple[str, ...]:
        """The classes of :meth:`labelled_sound`: every ``"colour shape"`` object (its
        pitch names the colour, its timbre the shape), then every place's ambience."""
        objects = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)
        return objects + tuple(self.config.places)

    def labelled_sound(
        self, split: str, index: int, *, seconds: float = 5.0
    ) -> tuple[torch.Tensor, int]:
        """``(audio (T,) float32, label)``: a clip of one class of :attr:`sound_classes`,
        ``index % len(sound_classes)`` (classes balanced exactly, as ESC-50's): an object
        of a random size sounding over a random place's ambience, or a place's ambience
        alone. ``seconds`` long (ESC-50's clips are 5 s), at the world's sample rate."""
        sid = self._check(split, index)
        seconds = check_positive_number(seconds, "seconds")
        classes = self.sound_classes
        label = int(index) % len(classes)
        rng = _generator(_STREAMS["audio"], (self.seed, _LABELLED_SOUNDS, sid, int(index)))
        sr = self.config.sample_rate
        n = int(round(seconds * sr))
        places = self.config.places
        if label < len(classes) - len(places):  # an object over some place
            colour, shape = classes[label].split()
            size = _SIZE_WORDS[int(rng.integers(len(_SIZE_WORDS)))]
            obj = WorldObject(shape, colour, size, x=0.0, y=0.0, radius=1.0)
            place = places[int(rng.integers(len(places)))]
            sources = [sound.object_sound(rng, obj, sr=sr, n_samples=n)]
        else:
            place, sources = classes[label], []
        audio = sound.mix(sources, sound.ambience(rng, place, sr=sr, n_samples=n))
        return torch.from_numpy(audio), label

    # -------------------------------------------------------------------- places

    def place(self, split: str, index: int, *, audio: bool = True) -> PlaceSample:
        """The place sample ``index`` of ``split``: a scene class's picture and sound.

        Classes are balanced exactly: sample ``index`` is of class
        ``index % len(places)``.
        """
        sid = self._check(split, index)
        cfg = self.config
        label = int(index) % len(cfg.places)
        place = cfg.places[label]
        words = (self.seed, _PLACES, sid, int(index))
        vis = _generator(_STREAMS["visual"], words + (_STREAMS["visual"],))
        image = render.place_background(vis, place, cfg.image_size)
        sample = PlaceSample(
            split=split, index=int(index), place=place, label=label,
            image=torch.from_numpy(image), sample_rate=cfg.sample_rate,
        )  # fmt: skip
        if check_bool(audio, "audio"):
            aud = _generator(_STREAMS["audio"], words + (_STREAMS["audio"],))
            amb = sound.ambience(aud, place, sr=cfg.sample_rate, n_samples=cfg.n_samples)
            sample.audio = torch.from_numpy(amb)
        return sample

    # -------------------------------------------------------------------- recipes

    def recipe(self, split: str, index: int) -> recipes.Recipe:
        """The recipe ``index`` of ``split``: its text, the picture of the dish, its class.

        Classes are balanced exactly: sample ``index`` is a
        ``recipes.DISHES[index % len(DISHES)]``. Text and picture come from one stream,
        so the picture shows what the instructions did. ``image`` is a ``(3, H, W)``
        uint8 tensor.
        """
        sid = self._check(split, index)
        words = (self.seed, _RECIPES, sid, int(index))
        vis = _generator(_STREAMS["visual"], words + (_STREAMS["visual"],))
        dish = recipes.DISHES[int(index) % len(recipes.DISHES)]
        sample = recipes.recipe_sample(vis, image_size=self.config.image_size, dish=dish)
        return dataclasses.replace(sample, image=torch.from_numpy(sample.image))

    # -------------------------------------------------------------------- faces and voices

    def identity(self, split: str, k: int) -> faces.Identity:
        """Person ``k`` of ``split``: face attributes and the voice that goes with them.

        Identities are disjoint across splits by construction (see
        :func:`xmodal.world.faces.identity_id`).
        """
        sid = self._check(split, k)
        rng = _generator(_STREAMS["visual"], (self.seed, _FACES, sid, int(k), 0))
        return faces.identity(rng, id=faces.identity_id(split, k))

    def face(self, split: str, k: int, *, mouth_open: float = 0.0) -> torch.Tensor:
        """Person ``k``'s frontal face, ``(3, H, W)`` uint8, mouth open by ``mouth_open``."""
        ident = self.identity(split, k)
        rng = _generator(3, (self.seed, _FACES, split_id(split), int(k), 3))
        image = faces.draw_face(rng, ident, image_size=self.config.image_size,
                                mouth_open=mouth_open)  # fmt: skip
        return torch.from_numpy(image)

    def sentence(self, split: str, j: int) -> str:
        """Sentence ``j`` of ``split``, what people say: the first caption of scene ``j``."""
        return self.scene(split, j, audio=False, questions=False).captions[0]

    def utterance(
        self, split: str, k: int, j: int, *, fps: int = 25, frames: bool = True, cache_dir=None
    ) -> Utterance:
        """Person ``k`` of ``split`` saying :meth:`sentence` ``j``, with the talking face.

        Speech comes from eSpeak NG through the disk cache of :mod:`xmodal.world.voices`
        (the first call per sentence and voice takes ~35 ms, later ones well under 1 ms).
        ``frames=False`` skips drawing the talking face (``Utterance.frames`` is None).
        """
        return self._utterance(split, k, j, fps=fps, frames=frames, cache_dir=cache_dir)

    def _utterance(
        self, split: str, k: int, j: int, *, voice: voices.VoiceParams | None = None,
        fps: int, frames: bool, cache_dir,
    ) -> Utterance:  # fmt: skip
        """:meth:`utterance`, in ``voice`` (None for person ``k``'s own): the mouth follows
        the speech actually made, the pose is person ``k``'s for sentence ``j`` whatever
        the voice."""
        ident = self.identity(split, k)
        text = self.sentence(split, j)
        sr = self.config.sample_rate
        voice = ident.voice if voice is None else voice
        audio = voices.speak(text, voice, sr=sr, cache_dir=cache_dir)
        video = None
        if check_bool(frames, "frames"):
            rng = self._utterance_rng(split, k, j)
            size = self.config.image_size
            video = torch.from_numpy(
                faces.talking_face(rng, ident, audio, sr, fps=fps, image_size=size)
            )
        return Utterance(split=split, identity=ident, text=text, audio=torch.from_numpy(audio),
                         frames=video, sample_rate=sr, fps=fps)  # fmt: skip

    def _utterance_rng(self, split: str, k: int, j: int) -> np.random.Generator:
        """The generator of the pose of person ``k``'s face while saying sentence ``j``."""
        return _generator(3, (self.seed, _FACES, split_id(split), int(k), 4, int(j)))

    def mixture(
        self, split: str, index: int, *, fps: int = 25, condition: str = "different-voice",
        cache_dir=None,
    ) -> TwoSpeakerMixture:  # fmt: skip
        """Two-speaker mixture ``index`` of ``split``: audio-visual speech separation.

        Two different identities among the split's first 1,000 each say a different
        sentence (the first caption of one of the split's first 10,000 scenes), both from
        sample 0. The shorter utterance is zero-padded to the longer one's length, so no
        speech is ever cut and the length varies from mixture to mixture. Speaker 2 is
        scaled by a gain uniform in [-3, 3] dB (``gain_db``); if the mixture's peak then
        exceeds 1, both sources are scaled by the same factor, and ``mixture`` is their
        exact sum. Faces: each speaker's talking face (:meth:`utterance`), followed by
        closed-mouth frames of the same pose up to ``F = ceil(T * fps / sample_rate)``.

        ``condition`` (one of :data:`MIXTURE_CONDITIONS`) says what else tells the
        speakers apart:

        - ``"different-voice"``: each speaks in their own voice, and the two voices are
          different eSpeak variants (speaker 2 is the drawn identity or, if it has speaker
          1's variant, the next one that does not). Audio alone can tell them apart.
        - ``"same-voice"``: speaker 2 speaks in speaker 1's voice (the same
          :class:`~xmodal.world.voices.VoiceParams`), with their own face, whose mouth
          follows that speech. Only the faces tell who says what.

        Both conditions of one ``(split, index)`` share the identities, sentences, gain
        and poses on purpose, for paired comparisons: they differ only in speaker 2's
        voice (``voices``), hence in ``sources``, ``mixture``, speaker 2's mouth, and
        possibly ``scale`` and the length.

        Speech comes from the disk cache of :mod:`xmodal.world.voices` (``cache_dir``;
        None for the user cache).

        Example:
            >>> mix = World(seed=0).mixture("train", 0, condition="same-voice")
            >>> mix.voices[0] == mix.voices[1], mix.identities[0] != mix.identities[1]
            (True, True)
            >>> torch.equal(mix.mixture, mix.sources.sum(0))
            True
        """
        sid = self._check(split, index)
        fps = check_positive_int(fps, "fps")
        condition = check_choice(condition, "condition", MIXTURE_CONDITIONS)
        sr = self.config.sample_rate
        # Every draw up front: the utterances below reuse the generators' slots. The
        # condition is not in the key: both conditions draw the same speakers, sentences
        # and gain (see the docstring).
        rng = _generator(_STREAMS["audio"], (self.seed, _MIXTURES, sid, int(index)))
        u = rng.random(5).tolist()
        k1 = int(u[0] * _MIX_IDENTITIES)
        k2 = (k1 + 1 + int(u[1] * (_MIX_IDENTITIES - 1))) % _MIX_IDENTITIES
        j1 = int(u[2] * _MIX_SENTENCES)
        j2 = (j1 + 1 + int(u[3] * (_MIX_SENTENCES - 1))) % _MIX_SENTENCES
        gain_db = _MIX_GAIN_DB * (2.0 * u[4] - 1.0)
        # Walking on from the drawn identity keeps speaker 2's variant distributed as any
        # identity's given that it differs (identities are independent draws), and keeps
        # every pair of different variants as it was drawn.
        voice1 = self.identity(split, k1).voice
        while self.identity(split, k2).voice.variant == voice1.variant:
            k2 = (k2 + 1) % _MIX_IDENTITIES
        voice2 = voice1 if condition == "same-voice" else self.identity(split, k2).voice
        first = self.sentence(split, j1)
        # Two scenes can share a first caption; the next scene with another one is taken.
        while self.sentence(split, j2) == first:
            j2 = (j2 + 1) % _MIX_SENTENCES
        utts = [
            self._utterance(split, k, j, voice=v, fps=fps, frames=True, cache_dir=cache_dir)
            for k, j, v in ((k1, j1, voice1), (k2, j2, voice2))
        ]
        lengths = [len(utt.audio) for utt in utts]
        n = max(lengths)
        clean = np.zeros((2, n), np.float64)
        for row, utt in zip(clean, utts, strict=True):
            row[: len(utt.audio)] = utt.audio.numpy()
        gains = np.array([1.0, 10.0 ** (gain_db / 20.0)])
        peak = float(np.abs(gains @ clean).max())
        scale = _MIX_PEAK / peak if peak > _MIX_PEAK else 1.0
        sources = (clean * (gains * scale)[:, None]).astype(np.float32)
        mixture = sources.sum(0)
        n_frames = math.ceil(n * fps / sr)
        size = self.config.image_size
        frames = np.empty((2, n_frames, 3, size, size), np.uint8)
        for i, (k, j, utt) in enumerate(zip((k1, k2), (j1, j2), utts, strict=True)):
            f = len(utt.frames)
            frames[i, :f] = utt.frames.numpy()
            if f < n_frames:  # silence: the same pose with the mouth shut
                closed = faces.draw_face(self._utterance_rng(split, k, j), utt.identity,
                                         image_size=size, mouth_open=0.0)  # fmt: skip
                frames[i, f:] = closed
        return TwoSpeakerMixture(
            split=split, index=int(index),
            identities=(utts[0].identity, utts[1].identity),
            voices=(voice1, voice2), condition=condition,
            texts=(utts[0].text, utts[1].text),
            sentences=(j1, j2),
            sources=torch.from_numpy(sources), mixture=torch.from_numpy(mixture),
            frames=torch.from_numpy(frames), lengths=(lengths[0], lengths[1]),
            gain_db=gain_db, scale=scale, sample_rate=sr, fps=fps,
        )  # fmt: skip

    def spoken_caption(self, split: str, index: int, *, cache_dir=None) -> SpokenCaption:
        """Scene ``index``'s first caption read by the :data:`NARRATOR`."""
        scene = self.scene(split, index, audio=False, questions=False)
        sr = self.config.sample_rate
        audio = voices.speak(scene.captions[0], NARRATOR, sr=sr, cache_dir=cache_dir)
        return SpokenCaption(split=split, index=int(index), image=scene.image,
                             caption=scene.captions[0], audio=torch.from_numpy(audio),
                             sample_rate=sr)  # fmt: skip

    # -------------------------------------------------------------------- datasets

    def dataset(self, view: str, split: str, *, size: int | None = None, **options):
        """A ``torch.utils.data.Dataset`` of one of the tasks' views of this world.

        Views: ``"captioning"``, ``"retrieval"``, ``"vqa"``, ``"av-correspondence"``,
        ``"localization"``, ``"separation"``, ``"places"``, and the speech views
        ``"speech-separation"``, ``"voice-face"``, ``"tts"`` (options ``cache_dir``, and
        ``fps`` and ``condition`` for ``"speech-separation"``; see
        :mod:`xmodal.world.datasets`). ``size`` counts items; each dataset's
        ``collate_fn`` batches them for a DataLoader. The same as
        ``xmodal.world.datasets.make_dataset(world, view, split, ...)``.
        """
        assert _dataset_factory is not None, "xmodal.world imports xmodal.world.datasets"
        return _dataset_factory(self, view, split, size=size, **options)

    # -------------------------------------------------------------------- language

    @staticmethod
    def caption_facts(text: str) -> language.CaptionFacts:
        """The facts a caption asserts (colour, shape, size, count, relation, place)."""
        return language.caption_facts(text)

    def caption_is_true(self, text: str, scene: Scene) -> bool:
        """Whether every fact ``text`` asserts holds in ``scene``."""
        facts = language.caption_facts(text)
        return language.facts_hold(facts, scene.objects, scene.place, margin=self.margin)

    def near_misses(self, scene: Scene) -> list[str | None]:
        """For each of ``scene``'s captions, a caption one word away that is false of it
        (:func:`~xmodal.world.language.near_miss`: a relation reversed, a count, colour,
        size or shape changed, two attributes traded), or None where no edit found one:
        the hard negatives of NegCLIP. A function of the world's seed and the scene's
        split and index, like the scene itself.
        """
        if not isinstance(scene, Scene):
            raise ParameterError(f"scene must be a xmodal.world.Scene. Found: {type(scene)!r}")
        words = (self.seed, _NEAR_MISSES, self._check(scene.split, scene.index), scene.index)
        rng = _generator(_STREAMS["text"], words)
        most = self.config.max_objects
        return [
            language.near_miss(
                c, scene.objects, scene.place, rng, margin=self.margin, max_count=most
            )  # fmt: skip
            for c in scene.captions
        ]
