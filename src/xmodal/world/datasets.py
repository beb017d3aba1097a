"""Views of the world as map-style ``torch.utils.data.Dataset`` objects, one per task family.

A view turns the world's samples into the dicts a task trains on. It keeps nothing but the
world, the split and its size: item ``i`` is drawn from ``world.scene(split, ...)`` or
``world.place(split, ...)`` when asked for, so a view costs no memory, gives the same item
in every DataLoader worker, and asks the world only for what it uses (a scene without its
audio is ~10x cheaper; without its questions, a little cheaper again).

Views (``make_dataset(world, view, split)``):

- ``"captioning"``: one item per scene: ``image``, all ``captions``, ``index``.
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

Images are ``(3, H, W)`` float32 in [0, 1]; audio is ``(T,)`` float32 at
``world.config.sample_rate``.

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
import operator

import torch
from torch.utils.data import Dataset

from xmodal.errors import ParameterError
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
    "VQADataset",
    "WorldDataset",
    "answers",
    "collate",
    "make_dataset",
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
        i = operator.index(index)  # TypeError for a float or str, as a list gives
        if i < 0:
            i += self.size
        if not 0 <= i < self.size:
            raise IndexError(
                f"{type(self).__name__} index out of range: {index} (size {self.size})"
            )
        return self.item(i)

    def item(self, i: int) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(split={self.split!r}, size={self.size}, world={self.world!r})"
        )


class CaptioningDataset(WorldDataset):
    """One item per scene: ``image`` (3, H, W) float32, ``captions`` (all of them), ``index``.

    Every caption is returned: which one a step trains on is the task's choice, and a
    choice made here by index would pin each image to one caption for every epoch.
    """

    view = "captioning"

    def item(self, i: int) -> dict:
        scene = self.world.scene(self.split, i, audio=False, questions=False)
        return {"image": _as_float_image(scene.image), "captions": scene.captions, "index": i}


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
    )
}


def make_dataset(
    world: World, view: str, split: str, *, size: int | None = None, **options
) -> WorldDataset:
    """The ``view`` of ``split`` of ``world`` as a map-style Dataset of ``size`` items.

    Args:
        world: the world to draw from.
        view: one of :data:`VIEWS` (``"captioning"``, ``"retrieval"``, ``"vqa"``,
            ``"av-correspondence"``, ``"localization"``, ``"separation"``, ``"places"``).
        split: ``"train"``, ``"val"``, ``"test"`` or ``"compositional"``.
        size: items in the dataset; None for :data:`DEFAULT_SIZES` of the split.
        options: view-specific settings (no view takes any yet; any given is an error
            rather than silently ignored).

    Example:
        >>> ds = make_dataset(World(seed=0), "captioning", "val", size=8)
        >>> loader = DataLoader(ds, batch_size=4, collate_fn=collate)
    """
    if view not in VIEWS:
        raise ParameterError(f"unknown view {view!r}; the views are {list(VIEWS)}")
    if options:
        raise ParameterError(f"view {view!r} takes no options. Found: {sorted(options)}")
    return VIEWS[view](world, split, size=size)
