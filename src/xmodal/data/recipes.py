"""Recipes with their dish pictures as training batches (im2recipe).

A recipe source is a dataset of ``{"image", "title", "ingredients", "instructions",
"dish", "id", "index"}`` items with a ``recipes`` list of their text alone:
:class:`WorldRecipes` (the world's, kept in memory) or
:class:`~xmodal.data.recipe1m.Recipe1M`. :class:`EncodedRecipes` encodes the text of one
once (:func:`encode_recipe`), and :func:`collate_recipes` pads a batch of them.

    >>> data = EncodedRecipes(WorldRecipes(world, "train", 64), vocab, DISHES,
    ...                       max_ingredient_words=64, max_sentences=16,
    ...                       max_sentence_words=32)  # doctest: +SKIP
    >>> batch = collate_recipes([data[0], data[1]])  # doctest: +SKIP
    >>> model.embed_recipes(*(batch[k] for k in RECIPE_KEYS))  # (2, D) # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from xmodal._checks import check_positive_int
from xmodal.errors import DataError
from xmodal.text.vocab import PAD_ID, Vocabulary

__all__ = ["RECIPE_KEYS", "EncodedRecipes", "WorldRecipes", "collate_recipes", "encode_recipe"]

# The keys of a collate_recipes batch that Im2Recipe.embed_recipes takes, in its order.
RECIPE_KEYS = ("ingredients", "ingredient_lengths", "instructions", "n_sentences",
               "sentence_lengths")  # fmt: skip


class WorldRecipes(Dataset):
    """The world's recipes ``0 .. size - 1`` of ``split``, drawn once and kept in memory
    (a recipe costs ~2 ms to draw, an epoch would redraw all of them).

    Items as :class:`~xmodal.data.recipe1m.Recipe1M`'s: ``image`` (3, H, W) uint8,
    ``title``, ``ingredients``, ``instructions``, ``dish``, ``id`` (the exporter's
    ``world_{split}_{index:06d}``), ``index``.
    """

    def __init__(self, world, split: str, size: int) -> None:
        from xmodal.world.recipes import DISHES

        size = check_positive_int(size, "size")
        drawn = [world.recipe(split, i) for i in range(size)]
        self.images = torch.stack([r.image for r in drawn])  # (N, 3, H, W) uint8
        self._recipes = [
            {"id": f"world_{split}_{i:06d}", "title": r.title, "ingredients": list(r.ingredients),
             "instructions": list(r.instructions), "dish": r.dish}
            for i, r in enumerate(drawn)
        ]  # fmt: skip
        self.class_names: tuple[str, ...] = tuple(DISHES)

    def __len__(self) -> int:
        return len(self._recipes)

    def __getitem__(self, i: int) -> dict:
        r = self._recipes[i]
        return {"image": self.images[i], **r, "index": i}

    @property
    def recipes(self) -> list[dict]:
        return [dict(r) for r in self._recipes]


def encode_recipe(
    vocab: Vocabulary,
    recipe: dict,
    *,
    max_ingredient_words: int = 64,
    max_sentences: int = 16,
    max_sentence_words: int = 32,
) -> tuple[list[int], list[list[int]]]:
    """A recipe's ``(ingredient ids, [sentence ids, ...])``: the words of all ingredient
    lines in order, and each instruction's words (no <bos>/<eos>; a sentence without a
    word is dropped), cut to the caps. Raises DataError naming the recipe when nothing is
    left of its ingredients or of its instructions."""
    rid = recipe.get("id", recipe.get("title"))
    ingredients = [i for line in recipe["ingredients"]
                   for i in vocab.encode(line, add_bos=False, add_eos=False)]  # fmt: skip
    if not ingredients:
        raise DataError(f"recipe {rid!r}: its ingredients have no words: {recipe['ingredients']!r}")
    sentences = [vocab.encode(s, add_bos=False, add_eos=False)[:max_sentence_words]
                 for s in recipe["instructions"]]  # fmt: skip
    sentences = [s for s in sentences if s][:max_sentences]
    if not sentences:
        raise DataError(
            f"recipe {rid!r}: its instructions have no words: {recipe['instructions']!r}"
        )
    return ingredients[:max_ingredient_words], sentences


class EncodedRecipes(Dataset):
    """A recipe source (:class:`WorldRecipes` or :class:`~xmodal.data.recipe1m.Recipe1M`)
    with its text encoded once: items ``image``, ``ingredients`` LongTensor,
    ``instructions`` list of LongTensors, ``label`` (the dish's index in ``class_names``,
    -1 without classes), ``index``."""

    def __init__(self, source, vocab: Vocabulary, class_names, *, max_ingredient_words: int,
                 max_sentences: int, max_sentence_words: int) -> None:  # fmt: skip
        self.source = source
        index = {c: k for k, c in enumerate(class_names or ())}
        self._text, self._labels = [], []
        for r in source.recipes:
            ingr, sents = encode_recipe(
                vocab, r, max_ingredient_words=max_ingredient_words,
                max_sentences=max_sentences, max_sentence_words=max_sentence_words,
            )  # fmt: skip
            self._text.append((torch.tensor(ingr), [torch.tensor(s) for s in sents]))
            if class_names and r["dish"] not in index:
                raise DataError(f"recipe {r['id']!r}: unknown dish class {r['dish']!r}")
            self._labels.append(index[r["dish"]] if class_names else -1)

    def __len__(self) -> int:
        return len(self._text)

    def __getitem__(self, i: int) -> dict:
        ingr, sents = self._text[i]
        return {"image": self.source[i]["image"], "ingredients": ingr, "instructions": sents,
                "label": self._labels[i], "index": i}  # fmt: skip

    def text_batch(self, rows: Sequence[int]) -> dict:
        """The recipe tensors of ``rows`` as :func:`collate_recipes` gives them (no image)."""
        items = [{"ingredients": self._text[i][0], "instructions": self._text[i][1],
                  "label": self._labels[i], "index": i} for i in rows]  # fmt: skip
        return collate_recipes(items)

    def image_batch(self, rows: Sequence[int]) -> torch.Tensor:
        """The images of ``rows``: ``(len(rows), 3, H, W)``."""
        return torch.stack([self.source[i]["image"] for i in rows])

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor(self._labels)


def collate_recipes(items: list[dict]) -> dict:
    """``image`` (B, 3, H, W) when the items have one; ``ingredients`` (B, Li) padded and
    ``ingredient_lengths`` (B,); ``instructions`` (B, S, W) padded, ``n_sentences`` (B,),
    ``sentence_lengths`` (B, S) (0 for the padding sentences); ``label``, ``index`` (B,)."""
    b = len(items)
    ingr = [it["ingredients"] for it in items]
    s = max(len(it["instructions"]) for it in items)
    w = max(len(t) for it in items for t in it["instructions"])
    instructions = torch.full((b, s, w), PAD_ID, dtype=torch.long)
    sentence_lengths = torch.zeros(b, s, dtype=torch.long)
    for k, it in enumerate(items):
        for j, t in enumerate(it["instructions"]):
            instructions[k, j, : len(t)] = t
            sentence_lengths[k, j] = len(t)
    batch = {
        "ingredients": nn.utils.rnn.pad_sequence(ingr, batch_first=True, padding_value=PAD_ID),
        "ingredient_lengths": torch.tensor([len(t) for t in ingr]),
        "instructions": instructions,
        "n_sentences": torch.tensor([len(it["instructions"]) for it in items]),
        "sentence_lengths": sentence_lengths,
        "label": torch.tensor([it["label"] for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
    }
    if "image" in items[0]:
        batch["image"] = torch.stack([it["image"] for it in items])
    return batch
