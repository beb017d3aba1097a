"""Captioned images as retrieval batches: every caption of each image in its rows, the
seeded captions a step draws, and the captions that two images share."""

from __future__ import annotations

import pytest
import torch

from xmodal.data.captions import (
    CaptionedImages,
    all_captions,
    caption_rows,
    collate_captioned,
    duplicate_captions,
    image_captions,
)
from xmodal.errors import DataError
from xmodal.text.vocab import PAD_ID, Vocabulary


class _Images:
    """Tiny images with the given captions: image ``i`` is filled with ``i``."""

    def __init__(self, captions):
        self.captions = captions

    def __len__(self):
        return len(self.captions)

    def __getitem__(self, i):
        return {"image": torch.full((3, 4, 4), float(i)), "captions": self.captions[i], "index": i}


def test_a_batch_keeps_the_fewest_captions_any_image_has_in_image_order():
    captions = [["a red circle", "a circle", "red"], ["a blue square", "a square"]]
    vocab = Vocabulary.build([c for cs in captions for c in cs])
    data = CaptionedImages(_Images(captions), vocab, max_len=8)
    batch = collate_captioned([data[0], data[1]])
    assert batch["image"].shape == (2, 3, 4, 4) and batch["index"].tolist() == [0, 1]
    # n = 2: image b's captions are rows 2b, 2b + 1; the third caption of image 0 is left out.
    want = [captions[0][0], captions[0][1], captions[1][0], captions[1][1]]
    assert batch["lengths"].tolist() == [len(vocab.encode(c, max_len=8)) for c in want]
    for row, caption in enumerate(want):
        ids = batch["tokens"][row, : batch["lengths"][row]].tolist()
        assert ids == vocab.encode(caption, max_len=8)
        assert (batch["tokens"][row, batch["lengths"][row] :] == PAD_ID).all()


def test_an_image_without_captions_is_refused_by_index():
    data = CaptionedImages(_Images([["a"], []]), Vocabulary.build(["a"]), max_len=8)
    with pytest.raises(DataError, match="image 1 has no caption"):
        data[1]


def test_caption_rows_draw_k_captions_per_image_from_seed_epoch_and_index():
    index, n = [7, 3, 9], 5
    rows = caption_rows(index, n, 2, seed=0, epoch=0).tolist()
    assert len(rows) == 6
    for b in range(3):
        mine = rows[2 * b : 2 * b + 2]
        assert mine == sorted(mine) and len(set(mine)) == 2
        assert all(b * n <= r < (b + 1) * n for r in mine)
    assert caption_rows(index, n, 2, seed=0, epoch=0).tolist() == rows
    # The draw of an image depends on its index, not on where it sits in the batch.
    moved = caption_rows([3, 7], n, 2, seed=0, epoch=0).tolist()
    assert [r - n for r in moved[2:]] == rows[:2] and moved[:2] == [r - n for r in rows[2:4]]
    epochs = {tuple(caption_rows(index, n, 2, seed=0, epoch=e).tolist()) for e in range(6)}
    seeds = {tuple(caption_rows(index, n, 2, seed=s, epoch=0).tolist()) for s in range(6)}
    assert len(epochs) > 1 and len(seeds) > 1


@pytest.mark.parametrize("k", [None, 5, 9])
def test_caption_rows_are_all_rows_when_k_is_none_or_not_smaller(k):
    assert caption_rows([4, 2], 5, k, seed=0, epoch=3).tolist() == list(range(10))


def test_duplicate_captions_counts_captions_another_image_has():
    caps = [["a red circle", "A red  circle!"], ["a red circle", "a star"], ["a star", "x"]]
    # "a red circle" (3 copies over images 0 and 1) and "a star" (images 1 and 2) count.
    assert duplicate_captions(caps) == 5
    assert duplicate_captions([["a b", "a b"], ["c"]]) == 0  # same image: no ambiguity


def test_image_captions_come_from_the_set_or_from_the_world_s_scenes():
    from xmodal.world import World
    from xmodal.world.datasets import make_dataset

    captions = [["a red circle", "a circle"], ["a blue square"]]
    assert image_captions(_Images(captions)) == captions
    assert all_captions(_Images(captions)) == ["a red circle", "a circle", "a blue square"]
    world = World(seed=0)
    view = make_dataset(world, "captioning", "val", size=3)
    got = image_captions(view, world)
    assert got == [view[i]["captions"] for i in range(3)] and all(len(cs) == 5 for cs in got)
    assert all_captions(view, world) == [c for cs in got for c in cs]
