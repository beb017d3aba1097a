"""Captioned images as training batches: each image with ``k`` of its captions encoded
(:class:`CaptionSets`, captioning) or with all of them (:class:`CaptionedImages`,
retrieval).

Works on any dataset whose items are ``{"image": (3, H, W), "captions": [str, ...],
"index": int}`` — the world's captioning view and :class:`~xmodal.data.KarpathyCaptions`
alike.

    >>> sets = CaptionSets(images, vocab, k=5, max_len=24)
    >>> batch = collate_sets([sets[0], sets[1]])
    >>> batch["image"].shape, batch["tokens"].shape     # (2, 3, H, W), (10, L)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from xmodal.errors import DataError
from xmodal.text.vocab import PAD_ID, Vocabulary, tokenize

__all__ = [
    "CaptionSets",
    "CaptionedImages",
    "all_captions",
    "caption_rows",
    "collate_captioned",
    "collate_images",
    "collate_sets",
    "duplicate_captions",
    "image_captions",
]


class CaptionSets(Dataset):
    """Each image with ``k`` of its captions, encoded with ``vocab``.

    Items: ``image`` (3, H, W) float, ``tokens`` a list of ``k`` LongTensors (<bos> ...
    <eos>), ``index``. An image with fewer than ``k`` captions repeats them in turn; one
    with more uses its first ``k``. A training step decodes all ``k`` captions of every
    image while running the encoder once per image (Show and Tell and Show, Attend and
    Tell both train on every reference of an image).
    """

    def __init__(self, images: Dataset, vocab: Vocabulary, *, k: int, max_len: int):
        self.images, self.vocab, self.k, self.max_len = images, vocab, k, max_len

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        item = self.images[i]
        captions = item["captions"]
        if not captions:
            raise DataError(f"image {item['index']} has no caption")
        tokens = [
            torch.tensor(self.vocab.encode(captions[j % len(captions)], max_len=self.max_len))
            for j in range(self.k)
        ]
        return {"image": item["image"], "tokens": tokens, "index": item["index"]}


def collate_sets(items: list[dict]) -> dict:
    """Stack images; every caption of every image as one (B * k, L) <pad>-padded batch."""
    tokens = nn.utils.rnn.pad_sequence(
        [t for it in items for t in it["tokens"]], batch_first=True, padding_value=PAD_ID
    )
    return {
        "image": torch.stack([it["image"] for it in items]),
        "tokens": tokens,
        "index": torch.tensor([it["index"] for it in items]),
    }


def collate_images(items: list[dict]) -> dict:
    """Stack images; keep the captions (lists of strings) as a list."""
    return {
        "image": torch.stack([it["image"] for it in items]),
        "captions": [it["captions"] for it in items],
        "index": torch.tensor([it["index"] for it in items]),
    }


def image_captions(images: Dataset, world=None) -> list[list[str]]:
    """The captions of each image of ``images``, without decoding an image: a Karpathy set
    keeps them in ``captions``; the world's view reads them from ``world``'s scenes."""
    captions = getattr(images, "captions", None)
    if captions is not None:
        return [list(cs) for cs in captions]
    return [
        list(world.scene(images.split, i, audio=False, questions=False).captions)
        for i in range(len(images))
    ]


def all_captions(images: Dataset, world=None) -> list[str]:
    """Every caption of ``images`` in order (:func:`image_captions`, flattened)."""
    return [c for cs in image_captions(images, world) for c in cs]


class CaptionedImages(Dataset):
    """Each image with all its captions encoded: ``image`` (3, H, W), ``tokens`` a list of
    LongTensors (<bos> ... <eos>), ``index``; where the images carry ``near_misses`` (the
    world's, one hard negative per caption or None), ``negatives`` too, encoded alike."""

    def __init__(self, images: Dataset, vocab: Vocabulary, *, max_len: int):
        self.images, self.vocab, self.max_len = images, vocab, max_len

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        item = self.images[i]
        if not item["captions"]:
            raise DataError(f"image {item['index']} has no caption")
        tokens = [
            torch.tensor(self.vocab.encode(c, max_len=self.max_len)) for c in item["captions"]
        ]
        out = {"image": item["image"], "tokens": tokens, "index": item["index"]}
        if "near_misses" in item:
            out["negatives"] = [
                None if c is None else torch.tensor(self.vocab.encode(c, max_len=self.max_len))
                for c in item["near_misses"]
            ]
        return out


def _padded(rows: list[torch.Tensor]) -> torch.Tensor:
    if not rows:
        return torch.full((0, 1), PAD_ID, dtype=torch.long)
    return nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=PAD_ID)


def collate_captioned(items: list[dict]) -> dict:
    """``image`` (B, 3, H, W); ``tokens`` (B * n, L) padded, ``lengths`` (B * n,): the
    ``n`` captions of image ``b`` are rows ``b * n ... b * n + n - 1``; ``index`` (B,).
    Items with ``negatives`` add ``negative_tokens`` (M, L), ``negative_lengths`` (M,) and
    ``negative_rows`` (M,), the caption row each hard negative was made from."""
    n = min(len(it["tokens"]) for it in items)
    rows = [t for it in items for t in it["tokens"][:n]]
    batch = {
        "image": torch.stack([it["image"] for it in items]),
        "tokens": _padded(rows),
        "lengths": torch.tensor([len(t) for t in rows]),
        "index": torch.tensor([it["index"] for it in items]),
    }
    if all("negatives" in it for it in items):
        negatives = [
            (b * n + j, t)
            for b, it in enumerate(items)
            for j, t in enumerate(it["negatives"][:n])
            if t is not None
        ]
        batch["negative_tokens"] = _padded([t for _, t in negatives])
        batch["negative_lengths"] = torch.tensor([len(t) for _, t in negatives], dtype=torch.long)
        batch["negative_rows"] = torch.tensor([r for r, _ in negatives], dtype=torch.long)
    return batch


def caption_rows(index: Sequence[int], n: int, k: int | None, *, seed: int, epoch: int):
    """The rows of a :func:`collate_captioned` batch (images ``index``, ``n`` captions
    each) that a training step uses: ``k`` captions of each image, drawn from (``seed``,
    ``epoch``, the image's index) alone, so a resumed run draws the same; all of them when
    ``k`` is None or not smaller than ``n``. A LongTensor of row numbers, in order."""
    if k is None or k >= n:
        return torch.arange(len(index) * n)
    rows = []
    for b, i in enumerate(index):
        rng = np.random.default_rng([seed, epoch, i])
        rows += [b * n + int(j) for j in sorted(rng.permutation(n)[:k])]
    return torch.tensor(rows)


def duplicate_captions(captions: Sequence[Sequence[str]]) -> int:
    """How many captions (of ``captions[i]``, the captions of image ``i``) are word for word
    a caption of another image: a text query cannot tell those images apart."""
    owners: dict[str, set[int]] = {}
    for i, cs in enumerate(captions):
        for c in cs:
            owners.setdefault(" ".join(tokenize(c)), set()).add(i)
    return sum(len(owners[" ".join(tokenize(c))]) > 1 for cs in captions for c in cs)
