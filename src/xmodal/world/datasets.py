"""Views of the world as map-style ``torch.utils.data.Dataset`` objects, one per task family.

A view turns the world's samples into the dicts a task trains on. It keeps nothing but the
world, the split and its size: item ``i`` is drawn from ``world.scene(split, ...)`` or
``world.place(split, ...)`` when asked for, so a view costs no memory, gives the same item
in every DataLoader worker, and asks the world only for what it uses (a scene without its
audio is ~10x cheaper; without its questions, a little cheaper again).

Views (``make_dataset(world, view, split)``):

- ``"captioning"``: one item per scene: ``image``, all ``captions``, ``index`` (option
  ``near_misses``: each caption's hard negative too).
- ``"retrieval"``: one item per (scene, caption) pair: ``image``, ``caption``,
  ``image_index``, ``caption_index``.
- ``"vqa"``: one item per (scene, question): ``image``, ``question``, ``answer``, ``label``
  (the answer's index in :func:`answers`), ``family``, ``image_index``, ``question_index``.
- ``"av-correspondence"``: one item per scene: ``image`` with its own ``audio`` (``label``
  1, even items) or another scene's (``label`` 0, odd items); ``place``, ``index``,
  ``audio_index``.
- ``"localization"``: one item per scene: ``image``, ``audio``, ``sounding_mask``,
  ``index``.
- ``"separation"``: one item per scene: ``mixture``, per-object ``sources`` and ``masks``
  zero-padded to ``max_objects``, ``object_sounding``, ``n_sources``, ``ambience``,
  ``image``, ``index``.
- ``"places"``: one item per place sample: ``image``, ``audio``, ``label``, ``place``,
  ``index``.

Speech views (their audio comes from eSpeak NG through the disk cache of
:mod:`xmodal.world.voices`; option ``cache_dir``, None for the user cache). Their lengths
vary, so they batch with :func:`pad_collate` (their ``collate_fn``), which zero-pads to
the batch's longest item; each item's ``length`` (samples) and ``n_frames`` say how much
of a padded row is real:

- ``"speech-separation"``: one item per :meth:`World.mixture`: ``mixture`` (T,),
  ``sources`` (2, T), ``frames`` (2, F, 3, H, W) uint8, ``identities`` (2,) int64 ids,
  ``texts``, ``gain_db`` (speaker 2's gain, float), ``condition`` (str), ``length``,
  ``n_frames``, ``index`` (options ``fps``; ``condition``, ``"different-voice"`` or
  ``"same-voice"``, one per dataset: evaluate each condition with its own).
- ``"voice-face"``: one item per identity (item ``i`` is identity ``i`` saying the first
  caption of scene ``i``): ``audio``, ``length``, ``image`` (the face, mouth closed), the
  face's attributes as targets ``sex`` (0 female, 1 male), ``age`` (index in
  :data:`~xmodal.world.faces.AGES`), ``skin`` and ``hair_colour`` (indices in
  :data:`~xmodal.world.faces.SKIN_TONES` and :data:`~xmodal.world.faces.HAIR_COLOURS`),
  ``beard`` (0/1), and ``identity`` (its id), ``text``, ``index``.
- ``"tts"``: one item per scene: ``text`` (its first caption), ``audio`` (the narrator
  reading it, :meth:`World.spoken_caption`), ``length``, ``image``, ``index``.

Images are ``(3, H, W)`` float32 in [0, 1]; audio is ``(T,)`` float32 at
``world.config.sample_rate``. Video frames stay uint8 (a float batch of them would be 4x
larger); convert them where they are used.

``size`` counts items, so ``len(dataset) == size`` for every view. Flattened views
(retrieval, vqa) therefore cover ``ceil(size / n)`` scenes for ``n`` captions or questions
per scene. Default sizes: train 10,000; val 1,000; test 1,000; compositional 1,000
(:data:`DEFAULT_SIZES`).

Batch with :func:`collate` (``DataLoader(ds, batch_size=32, collate_fn=collate)``): it
stacks tensors and numbers and keeps strings and lists of strings as lists, which
PyTorch's default collate would transpose. It is a module-level function, so DataLoader
workers can pickle it.

Example:
    >>> world = World(seed=0)
    >>> ds = make_dataset(world, "vqa", "train", size=100)
    >>> item = ds[0]
    >>> item["image"].shape, item["question"], item["answer"]
    (torch.Size([3, 64, 64]), 'how many objects are there?', 'three')
"""

from __future__ import annotations

import numbers

import torch
from torch.utils.data import Dataset

from xmodal._checks import check_bool, check_choice, check_index
from xmodal.errors import ParameterError
from xmodal.world import core, faces
from xmodal.world.core import World
from xmodal.world.language import NUMBER_WORDS
from xmodal.world.schema import COLOURS, SHAPES, SPLITS

__all__ = [
    "DEFAULT_SIZES",
    "VIEWS",
    "AVCorrespondenceDataset",
    "CaptioningDataset",
    "LocalizationDataset",
    "PlacesDataset",
    "RetrievalDataset",
    "SeparationDataset",
    "SpeechSeparationDataset",
    "TTSDataset",
    "VQADataset",
    "VoiceFaceDataset",
    "WorldDataset",
    "answers",
    "collate",
    "make_dataset",
    "pad_collate",
]

DEFAULT_SIZES: dict[str, int] = {
    "train": 10_000,
    "val": 1_000,
    "test": 1_000,
    "compositional": 1_000,
}


def answers(world: World) -> list[str]:
    """Every answer the world's questions can have, sorted: a classifier's label set.

    yes/no, the count words up to ``max_objects`` (a count never exceeds the objects in
    a scene), and the colour and shape words.
    """
    counts = NUMBER_WORDS[: world.config.max_objects + 1]
    return sorted({"yes", "no", *counts, *COLOURS, *SHAPES})


def _as_float_image(image: torch.Tensor) -> torch.Tensor:
    return image.to(torch.float32).div_(255.0)


def collate(items: list[dict]) -> dict:
    """Batch a list of view items: tensors stacked, numbers as tensors, the rest as lists.

    Tensors must have the same shape in every item (every view's do); ints become an
    int64 tensor and floats a float32 tensor; strings and lists (``captions``) stay
    Python lists, one entry per item, so a caption list is never transposed.
    """
    if not items:
        raise ParameterError("collate needs at least one item. Found: []")
    batch = {}
    for key, first in items[0].items():
        values = [item[key] for item in items]
        if isinstance(first, torch.Tensor):
            batch[key] = torch.stack(values)
        elif isinstance(first, bool):
            batch[key] = torch.tensor(values, dtype=torch.bool)
        elif isinstance(first, numbers.Integral):
            batch[key] = torch.tensor(values, dtype=torch.int64)
        elif isinstance(first, numbers.Real):
            batch[key] = torch.tensor(values, dtype=torch.float32)
        else:
            batch[key] = values
    return batch


def _pad(values: list[torch.Tensor], key: str) -> torch.Tensor:
    """Zero-pad tensors of one rank to their largest size along every dim, then stack."""
    if len({v.dim() for v in values}) != 1:
        raise ParameterError(
            f"pad_collate cannot batch {key!r}: its tensors differ in rank. "
            f"Found shapes {[tuple(v.shape) for v in values]}"
        )
    shape = [max(sizes) for sizes in zip(*(v.shape for v in values), strict=True)]
    out = values[0].new_zeros((len(values), *shape))
    for row, v in zip(out, values, strict=True):
        row[tuple(slice(0, n) for n in v.shape)] = v
    return out


def pad_collate(items: list[dict]) -> dict:
    """:func:`collate` for items of different lengths: tensors are zero-padded at the end
    of every dim to the batch's largest, then stacked.

    The speech views' ``collate_fn``; their items carry ``length`` (and ``n_frames``), so
    the batch says how much of each padded row is real.
    """
    if not items:
        raise ParameterError("pad_collate needs at least one item. Found: []")
    tensors = [key for key, value in items[0].items() if isinstance(value, torch.Tensor)]
    rest = collate([{k: v for k, v in item.items() if k not in tensors} for item in items])
    padded = {key: _pad([item[key] for item in items], key) for key in tensors}
    return {key: padded[key] if key in padded else rest[key] for key in items[0]}


class WorldDataset(Dataset):
    """A view of ``size`` items of one split of a world; subclasses define :meth:`item`.

    Args:
        world: the :class:`~xmodal.world.World` to draw from.
        split: ``"train"``, ``"val"``, ``"test"`` or (compositional worlds)
            ``"compositional"``.
        size: number of items (``len(dataset)``); None for :data:`DEFAULT_SIZES`.
    """

    view = ""
    collate_fn = staticmethod(collate)

    def __init__(self, world: World, split: str, *, size: int | None = None) -> None:
        if not isinstance(world, World):
            raise ParameterError(f"world must be a xmodal.world.World. Found: {type(world)!r}")
        if split not in SPLITS:
            raise ParameterError(f"unknown split {split!r}; the splits are {list(SPLITS)}")
        if split == "compositional" and not world.config.compositional:
            raise ParameterError("split 'compositional' exists only in World(compositional=True)")
        if size is None:
            size = DEFAULT_SIZES[split]
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size <= 0:
            raise ParameterError(f"size must be an integer > 0. Found: {size!r}")
        self.world = world
        self.split = split
        self.size = int(size)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index) -> dict:
        return self.item(check_index(index, self.size, type(self).__name__))

    def item(self, i: int) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(split={self.split!r}, size={self.size}, world={self.world!r})"
        )


class CaptioningDataset(WorldDataset):
    """One item per scene: ``image`` (3, H, W) float32, ``captions`` (all of them), ``index``;
    with ``near_misses=True`` also ``near_misses``, each caption's hard negative
    (:meth:`~xmodal.world.World.near_misses`; None where there is none).

    Every caption is returned: which one a step trains on is the task's choice, and a
    choice made here by index would pin each image to one caption for every epoch.
    """

    view = "captioning"

    def __init__(
        self, world: World, split: str, *, size: int | None = None, near_misses: bool = False
    ) -> None:
        super().__init__(world, split, size=size)
        self.near_misses = check_bool(near_misses, "near_misses")

    def item(self, i: int) -> dict:
        scene = self.world.scene(self.split, i, audio=False, questions=False)
        item = {"image": _as_float_image(scene.image), "captions": scene.captions, "index": i}
        if self.near_misses:
            item["near_misses"] = self.world.near_misses(scene)
        return item


class RetrievalDataset(WorldDataset):
    """One item per (scene, caption): item ``i`` is caption ``i % n`` of scene ``i // n``.

    ``image_index`` names the scene (so every caption of an image shares it: the ground
    truth of retrieval metrics) and ``caption_index`` the caption within it.
    """

    view = "retrieval"

    def item(self, i: int) -> dict:
        n = self.world.config.n_captions
        scene_index, k = divmod(i, n)
        scene = self.world.scene(self.split, scene_index, audio=False, questions=False)
        return {
            "image": _as_float_image(scene.image),
            "caption": scene.captions[k],
            "image_index": scene_index,
            "caption_index": k,
        }


class VQADataset(WorldDataset):
    """One item per (scene, question): item ``i`` is question ``i % n`` of scene ``i // n``.

    ``label`` is the answer's index in :attr:`answers` (= :func:`answers` of the world), for
    classifier heads; ``family`` is the question family (exist, count, colour, shape,
    relation) for per-family accuracy.
    """

    view = "vqa"

    def __init__(self, world: World, split: str, *, size: int | None = None) -> None:
        super().__init__(world, split, size=size)
        self.answers = answers(world)
        self._label = {a: j for j, a in enumerate(self.answers)}

    def item(self, i: int) -> dict:
        n = self.world.config.n_questions
        scene_index, k = divmod(i, n)
        scene = self.world.scene(self.split, scene_index, audio=False)
        q = scene.questions[k]
        return {
            "image": _as_float_image(scene.image),
            "question": q.question,
            "answer": q.answer,
            "label": self._label[q.answer],
            "family": q.family,
            "image_index": scene_index,
            "question_index": k,
        }


class AVCorrespondenceDataset(WorldDataset):
    """Does this sound come from this picture? One item per scene, half of them mismatched.

    Item ``i`` shows scene ``i``. Even items carry its own audio (``label`` 1); odd items
    carry the audio of scene ``audio_index`` != ``i`` of the same dataset (``label`` 0),
    chosen from ``i`` alone so every epoch and worker sees the same pairs. The offset to
    the partner grows with ``i``, so mismatches are spread over the dataset rather than
    always the next scene. ``place`` is the picture's place.
    """

    view = "av-correspondence"

    def partner(self, i: int) -> int:
        """The scene whose audio item ``i`` carries (``i`` itself for even ``i``)."""
        if i % 2 == 0:
            return i
        if self.size == 1:  # no other scene inside the dataset: any other index is one
            return i + 1
        # an offset in [1, size - 1] never wraps back to i
        return (i + 1 + (i // 2) % (self.size - 1)) % self.size

    def item(self, i: int) -> dict:
        j = self.partner(i)
        if j == i:
            scene = self.world.scene(self.split, i, questions=False)
            audio = scene.audio
        else:
            scene = self.world.scene(self.split, i, audio=False, questions=False)
            audio = self.world.scene(self.split, j, questions=False).audio
        return {
            "image": _as_float_image(scene.image),
            "audio": audio,
            "label": int(j == i),
            "place": scene.place,
            "index": i,
            "audio_index": j,
        }


class LocalizationDataset(WorldDataset):
    """Where in the picture is the sound? ``image``, ``audio`` and the ground truth.

    ``sounding_mask`` (H, W) bool is the union of the sounding objects' masks: the target
    of supervised localization and the reference of cIoU.
    """

    view = "localization"

    def item(self, i: int) -> dict:
        scene = self.world.scene(self.split, i, questions=False)
        return {
            "image": _as_float_image(scene.image),
            "audio": scene.audio,
            "sounding_mask": scene.sounding_mask,
            "index": i,
        }


class SeparationDataset(WorldDataset):
    """Separate the mixture into the sounds of the objects in the picture.

    Rows follow the scene's objects and are zero-padded to ``max_objects``, so row ``k`` of
    ``sources`` is the clean sound of the object whose mask is row ``k`` of ``masks`` (a
    model conditions on the mask and predicts that row). Silent objects and padding rows
    have zero sources; ``object_sounding`` (max_objects,) bool tells which rows sound.
    ``mixture == sources.sum(0) + ambience``: the place's ambience is part of the mixture
    and of no source.

    Shapes: ``mixture`` and ``ambience`` (T,), ``sources`` (max_objects, T) float32,
    ``masks`` (max_objects, H, W) bool, ``image`` (3, H, W) float32, ``n_sources`` int.
    """

    view = "separation"

    def item(self, i: int) -> dict:
        cfg = self.world.config
        scene = self.world.scene(self.split, i, questions=False)
        n_obj = len(scene.objects)
        k_max, side = cfg.max_objects, cfg.image_size
        sources = torch.zeros(k_max, scene.audio.shape[-1], dtype=torch.float32)
        sources[scene.sounding] = scene.sources
        masks = torch.zeros(k_max, side, side, dtype=torch.bool)
        masks[:n_obj] = scene.masks
        sounding = torch.zeros(k_max, dtype=torch.bool)
        sounding[scene.sounding] = True
        return {
            "mixture": scene.audio,
            "sources": sources,
            "ambience": scene.ambience,
            "n_sources": len(scene.sounding),
            "image": _as_float_image(scene.image),
            "masks": masks,
            "object_sounding": sounding,
            "index": i,
        }


class PlacesDataset(WorldDataset):
    """Scene recognition by sight or sound: ``world.place(split, i)``.

    ``label`` is the index of ``place`` in ``world.config.places``; classes are balanced
    exactly (item ``i`` is class ``i % n_places``).
    """

    view = "places"

    def item(self, i: int) -> dict:
        sample = self.world.place(self.split, i)
        return {
            "image": _as_float_image(sample.image),
            "audio": sample.audio,
            "label": sample.label,
            "place": sample.place,
            "index": i,
        }


class _SpeechDataset(WorldDataset):
    """A view whose items hold speech: takes ``cache_dir`` and batches with padding."""

    collate_fn = staticmethod(pad_collate)

    def __init__(
        self, world: World, split: str, *, size: int | None = None, cache_dir=None
    ) -> None:
        super().__init__(world, split, size=size)
        self.cache_dir = cache_dir


class SpeechSeparationDataset(_SpeechDataset):
    """Looking to Listen: separate two speakers given their faces. Item ``i`` is
    ``world.mixture(split, i)``.

    ``mixture == sources.sum(0)`` exactly; row ``k`` of ``sources`` is the speech of the
    face in row ``k`` of ``frames``. Shapes: ``mixture`` (T,), ``sources`` (2, T) float32,
    ``frames`` (2, F, 3, H, W) uint8 at ``fps``, ``identities`` (2,) int64 identity ids,
    ``texts`` two strings; ``length`` = T and ``n_frames`` = F before batch padding;
    ``gain_db`` speaker 2's gain relative to speaker 1 in dB; ``condition`` the dataset's.

    Args:
        fps: video frame rate of ``frames``.
        condition: ``"different-voice"`` (two different voices; audio alone can separate
            them) or ``"same-voice"`` (both speak in speaker 1's voice; only the faces
            tell them apart); see :meth:`World.mixture`. Item ``i`` of both has the same
            faces, sentences and gain, so the two can be compared pair by pair.
        cache_dir: the speech cache (None for the user cache).
    """

    view = "speech-separation"

    def __init__(
        self, world: World, split: str, *, size: int | None = None, fps: int = 25,
        condition: str = "different-voice", cache_dir=None,
    ) -> None:  # fmt: skip
        super().__init__(world, split, size=size, cache_dir=cache_dir)
        if isinstance(fps, bool) or not isinstance(fps, numbers.Integral) or fps <= 0:
            raise ParameterError(f"fps must be an integer > 0. Found: {fps!r}")
        self.fps = int(fps)
        self.condition = check_choice(condition, "condition", core.MIXTURE_CONDITIONS)

    def item(self, i: int) -> dict:
        mix = self.world.mixture(self.split, i, fps=self.fps, condition=self.condition,
                                 cache_dir=self.cache_dir)  # fmt: skip
        return {
            "mixture": mix.mixture,
            "sources": mix.sources,
            "frames": mix.frames,
            "identities": torch.tensor([p.id for p in mix.identities], dtype=torch.int64),
            "texts": list(mix.texts),
            "gain_db": float(mix.gain_db),
            "condition": mix.condition,
            "length": int(mix.mixture.shape[-1]),
            "n_frames": int(mix.frames.shape[1]),
            "index": i,
        }


class VoiceFaceDataset(_SpeechDataset):
    """Speech2Face: from a voice to the face. Item ``i`` is identity ``i`` of the split
    saying the first caption of scene ``i``, with its face (mouth closed).

    Targets are the face's attributes as integers: ``sex`` (0 female, 1 male), ``age``
    (index in ``faces.AGES``), ``skin`` (index in ``faces.SKIN_TONES``), ``hair_colour``
    (index in ``faces.HAIR_COLOURS``), ``beard`` (0/1). By construction a voice carries
    sex and age only, so the other targets measure what a model invents.

    Shapes: ``audio`` (T,) float32 (``length`` = T), ``image`` (3, H, W) float32.
    """

    view = "voice-face"

    def item(self, i: int) -> dict:
        # The talking face is not needed here, and drawing it would cost 4x the rest.
        utt = self.world.utterance(self.split, i, i, frames=False, cache_dir=self.cache_dir)
        ident, text, audio = utt.identity, utt.text, utt.audio
        return {
            "audio": audio,
            "length": int(audio.shape[-1]),
            "image": _as_float_image(self.world.face(self.split, i, mouth_open=0.0)),
            "sex": faces.SEXES.index(ident.sex),
            "age": faces.AGES.index(ident.age),
            "skin": list(faces.SKIN_TONES).index(ident.skin),
            "hair_colour": list(faces.HAIR_COLOURS).index(ident.hair_colour),
            "beard": int(ident.beard),
            "identity": ident.id,
            "text": text,
            "index": i,
        }


class TTSDataset(_SpeechDataset):
    """Text (and picture) to speech: scene ``i``'s first caption read by the narrator.

    Shapes: ``audio`` (T,) float32 (``length`` = T), ``image`` (3, H, W) float32.
    """

    view = "tts"

    def item(self, i: int) -> dict:
        spoken = self.world.spoken_caption(self.split, i, cache_dir=self.cache_dir)
        return {
            "text": spoken.caption,
            "audio": spoken.audio,
            "length": int(spoken.audio.shape[-1]),
            "image": _as_float_image(spoken.image),
            "index": i,
        }


VIEWS: dict[str, type[WorldDataset]] = {
    cls.view: cls
    for cls in (
        CaptioningDataset,
        RetrievalDataset,
        VQADataset,
        AVCorrespondenceDataset,
        LocalizationDataset,
        SeparationDataset,
        PlacesDataset,
        SpeechSeparationDataset,
        VoiceFaceDataset,
        TTSDataset,
    )
}

# The options each view takes, beyond ``size``.
_OPTIONS: dict[str, tuple[str, ...]] = {
    "captioning": ("near_misses",),
    "speech-separation": ("cache_dir", "condition", "fps"),
    "voice-face": ("cache_dir",),
    "tts": ("cache_dir",),
}


def make_dataset(
    world: World, view: str, split: str, *, size: int | None = None, **options
) -> WorldDataset:
    """The ``view`` of ``split`` of ``world`` as a map-style Dataset of ``size`` items.

    Args:
        world: the world to draw from.
        view: one of :data:`VIEWS` (``"captioning"``, ``"retrieval"``, ``"vqa"``,
            ``"av-correspondence"``, ``"localization"``, ``"separation"``, ``"places"``,
            ``"speech-separation"``, ``"voice-face"``, ``"tts"``).
        split: ``"train"``, ``"val"``, ``"test"`` or ``"compositional"``.
        size: items in the dataset; None for :data:`DEFAULT_SIZES` of the split.
        options: view-specific settings: ``cache_dir`` for the speech views, ``fps`` and
            ``condition`` for ``"speech-separation"``, ``near_misses`` for
            ``"captioning"``. Any other is an error rather than silently ignored.

    Example:
        >>> ds = make_dataset(World(seed=0), "captioning", "val", size=8)
        >>> loader = DataLoader(ds, batch_size=4, collate_fn=collate)
    """
    if view not in VIEWS:
        raise ParameterError(f"unknown view {view!r}; the views are {list(VIEWS)}")
    accepted = _OPTIONS.get(view, ())
    unknown = sorted(set(options) - set(accepted))
    if unknown and not accepted:
        raise ParameterError(f"view {view!r} takes no options. Found: {unknown}")
    if unknown:
        raise ParameterError(f"view {view!r} takes the options {list(accepted)}. Found: {unknown}")
    return VIEWS[view](world, split, size=size, **options)


core._install_dataset_factory(make_dataset)  # World.dataset
