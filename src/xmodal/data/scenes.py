"""Single-object scenes as text-to-image data: every (image, caption) pair of rendered
scenes, labelled with the object's colour and shape and with what the caption names.

A caption need not name everything about its object ("a yellow object" names the colour
only, "one thing" neither): :func:`named_attributes` reads what it names with the world's
caption parser, so that a loss on an image drawn from the caption asks only for that.

Example::

    scenes = [world.scene("train", i, audio=False, questions=False) for i in range(8)]
    pairs = CaptionPairs(scenes, vocab, max_len=24)   # 8 x 5 captions
    batch = collate_pairs([pairs[0], pairs[1]])
    batch["image"].shape, batch["named"].shape         # (2, 3, H, W), (2, 2)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from xmodal.text.vocab import PAD_ID, Vocabulary, tokenize
from xmodal.world import COLOURS, SHAPES, WorldObject
from xmodal.world.language import caption_facts

__all__ = [
    "SAMPLE_CAPTIONS",
    "CaptionPairs",
    "RenderedScenes",
    "attribute_class",
    "attribute_classes",
    "class_attributes",
    "collate_pairs",
    "named_attributes",
    "naming_caption",
    "same_attribute_images",
]

COLOUR_NAMES = tuple(COLOURS)
SHAPE_NAMES = tuple(SHAPES)
# Captions with every colour and shape, both sizes, and one naming the colour only: the
# rows of a generator's sample grid.
SAMPLE_CAPTIONS = (
    "a large red circle",
    "a small blue square",
    "a large green triangle",
    "a small yellow diamond",
    "a large purple cross",
    "a small orange circle",
    "a large blue diamond",
    "a green object",
)


def attribute_class(obj: WorldObject) -> int:
    """The (colour, shape) class of ``obj``: ``colour * len(SHAPES) + shape``, its
    indices into ``COLOURS`` and ``SHAPES``.

    >>> attribute_class(WorldObject("square", "orange", "large", 9, 9, 9))
    6
    """
    return COLOUR_NAMES.index(obj.colour) * len(SHAPE_NAMES) + SHAPE_NAMES.index(obj.shape)


def attribute_classes(scenes: Sequence) -> torch.Tensor:
    """``(N,)``: the :func:`attribute_class` of each scene's first object."""
    return torch.tensor([attribute_class(s.objects[0]) for s in scenes])


def class_attributes(label: torch.Tensor) -> list[torch.Tensor]:
    """:func:`attribute_class`'s classes ``(N,)`` back to ``[colours (N,), shapes (N,)]``."""
    return [label // len(SHAPE_NAMES), label % len(SHAPE_NAMES)]


def named_attributes(caption: str, obj: WorldObject) -> tuple[int, int]:
    """The object's ``(colour, shape)`` indices (into ``COLOURS``, ``SHAPES``) that
    ``caption`` names, ``-1`` for an attribute it does not name: "a yellow object" names
    the colour only, "one thing" neither. Read with the world's caption parser
    (:func:`~xmodal.world.language.caption_facts`): a noun phrase that claims at least
    one such object ("no squares" claims none) and names the object's colour or shape.

    >>> named_attributes("a yellow object", WorldObject("circle", "yellow", "large", 9, 9, 9))
    (2, -1)
    """
    colour = shape = -1
    for m in caption_facts(caption).mentions:
        if m.count == 0:
            continue
        if m.colour == obj.colour:
            colour = COLOUR_NAMES.index(obj.colour)
        if m.shape == obj.shape:
            shape = SHAPE_NAMES.index(obj.shape)
    return colour, shape


def naming_caption(scene) -> str:
    """The first caption of ``scene`` that names both its (first) object's colour and its
    shape; ``a {size} {colour} {shape}`` when none does."""
    o = scene.objects[0]
    found = (c for c in scene.captions if {o.colour, o.shape} <= set(tokenize(c)))
    return next(found, None) or f"a {o.size} {o.colour} {o.shape}"


def same_attribute_images(scenes: Sequence, candidates: Iterable, per: int) -> list[torch.Tensor]:
    """Real images alike to ``scenes``: for each (size, colour, shape) of their first
    objects, the first ``per`` scenes of ``candidates`` (taken in order, no further than
    needed) whose first object has it. Returns the groups of two or more, each ``(k, 3, H,
    W)`` float in [0, 1]."""

    def key(scene) -> tuple[str, str, str]:
        o = scene.objects[0]
        return o.size, o.colour, o.shape

    found: dict[tuple, list[torch.Tensor]] = {key(s): [] for s in scenes}

    def full() -> bool:
        return all(len(v) >= per for v in found.values())

    for s in () if full() else candidates:
        group = found.get(key(s))
        if group is not None and len(group) < per:
            group.append(s.image.float() / 255)
            if full():  # no further candidate is drawn (or rendered)
                break
    return [torch.stack(v) for v in found.values() if len(v) >= 2]


class RenderedScenes:
    """The scenes of ``world`` (no audio, no questions), each rendered once and kept by
    split, so that every use of the first ``n`` of a split (a vocabulary, pre-trainings,
    every epoch's batches, evaluators) shares them: 8,000 scenes at 64x64 take 100 MB."""

    def __init__(self, world) -> None:
        self.world = world
        self.kept: dict[str, list] = {}

    def first(self, split: str, n: int) -> list:
        """The first ``n`` scenes of ``split`` (those not kept yet are rendered and kept)."""
        kept = self.kept.setdefault(split, [])
        kept += [self._render(split, i) for i in range(len(kept), n)]
        return kept[:n]

    def images(self, split: str, n: int) -> tuple[torch.Tensor, list]:
        """The first ``n`` scenes' images ``(n, 3, H, W)`` uint8, and the scenes."""
        scenes = self.first(split, n)
        return torch.stack([s.image for s in scenes]), scenes

    def walk(self, split: str, limit: int) -> Iterator:
        """The first ``limit`` scenes of ``split`` in order, rendering (without keeping) those
        not kept: for a search that may stop early."""
        kept = self.kept.get(split, [])
        for i in range(limit):
            yield kept[i] if i < len(kept) else self._render(split, i)

    def clear(self) -> None:
        self.kept.clear()

    def _render(self, split: str, i: int):
        return self.world.scene(split, i, audio=False, questions=False)


class CaptionPairs(Dataset):
    """Every (scene, caption) pair of rendered world ``scenes``, scene by scene.

    Items: ``image`` (3, H, W) float in [0, 1], ``tokens`` LongTensor (<bos> ... <eos>,
    at most ``max_len``), ``label`` the first object's :func:`attribute_class`, ``named``
    its (colour, shape) indices that the caption names (:func:`named_attributes`),
    ``index`` the scene's position in ``scenes``.
    """

    def __init__(self, scenes: Sequence, vocab: Vocabulary, *, max_len: int) -> None:
        self.scenes, self.vocab, self.max_len = scenes, vocab, max_len
        self.items = [(i, j) for i, s in enumerate(scenes) for j in range(len(s.captions))]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> dict:
        i, j = self.items[k]
        scene = self.scenes[i]
        return {
            "image": scene.image.to(torch.float32).div_(255.0),
            "tokens": torch.tensor(self.vocab.encode(scene.captions[j], max_len=self.max_len)),
            "label": attribute_class(scene.objects[0]),
            "named": named_attributes(scene.captions[j], scene.objects[0]),
            "index": i,
        }


def collate_pairs(items: list[dict]) -> dict:
    """:class:`CaptionPairs` items as a batch: ``image`` (B, 3, H, W); ``tokens`` (B, L)
    <pad>-padded with ``lengths`` (B,); ``label`` (B,); ``named`` (B, 2); ``index`` (B,)."""
    tokens = [it["tokens"] for it in items]
    return {
        "image": torch.stack([it["image"] for it in items]),
        "tokens": nn.utils.rnn.pad_sequence(tokens, batch_first=True, padding_value=PAD_ID),
        "lengths": torch.tensor([len(t) for t in tokens]),
        "label": torch.tensor([it["label"] for it in items]),
        "named": torch.tensor([it["named"] for it in items]).view(len(items), 2),
        "index": torch.tensor([it["index"] for it in items]),
    }
