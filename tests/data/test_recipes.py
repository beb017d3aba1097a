"""Recipes as im2recipe batches: the world's recipes held as drawn, their text encoded once
with the dish labels, the padded batch of ingredients and instructions, and recipes
without words refused by name."""

from __future__ import annotations

import pytest
import torch

from xmodal.data.recipes import (
    RECIPE_KEYS,
    EncodedRecipes,
    WorldRecipes,
    collate_recipes,
    encode_recipe,
)
from xmodal.errors import DataError, ParameterError
from xmodal.text.vocab import PAD_ID, Vocabulary
from xmodal.world import World
from xmodal.world.recipes import DISHES


@pytest.fixture(scope="module")
def world_recipes() -> WorldRecipes:
    return WorldRecipes(World(seed=0), "val", 5)


def _vocab(source) -> Vocabulary:
    return Vocabulary.build([t for r in source.recipes for t in (*r["ingredients"],
                                                                 *r["instructions"])])  # fmt: skip


def test_world_recipes_are_the_world_s_recipes_with_the_exporter_s_ids(world_recipes):
    world = World(seed=0)
    assert len(world_recipes) == 5 and world_recipes.class_names == tuple(DISHES)
    for i in (0, 4):
        want, item = world.recipe("val", i), world_recipes[i]
        assert torch.equal(item["image"], want.image) and item["image"].dtype == torch.uint8
        assert item["id"] == f"world_val_{i:06d}" and item["index"] == i
        assert (item["title"], item["dish"]) == (want.title, want.dish)
        assert item["ingredients"] == list(want.ingredients)
        assert item["instructions"] == list(want.instructions)
    # .recipes is a copy: editing it leaves the dataset as it was.
    world_recipes.recipes[0]["title"] = "changed"
    assert world_recipes[0]["title"] == world.recipe("val", 0).title
    with pytest.raises(ParameterError, match="size"):
        WorldRecipes(World(seed=0), "val", 0)


def test_encoded_recipes_hold_each_recipe_s_words_and_its_dish_label(world_recipes):
    vocab = _vocab(world_recipes)
    data = EncodedRecipes(world_recipes, vocab, DISHES, max_ingredient_words=6,
                          max_sentences=2, max_sentence_words=3)  # fmt: skip
    assert len(data) == 5
    for i in range(5):
        recipe, item = world_recipes.recipes[i], data[i]
        ingr, sents = encode_recipe(vocab, recipe, max_ingredient_words=6, max_sentences=2,
                                    max_sentence_words=3)  # fmt: skip
        assert item["ingredients"].tolist() == ingr and len(ingr) <= 6
        assert [s.tolist() for s in item["instructions"]] == sents and len(sents) <= 2
        assert item["label"] == DISHES.index(recipe["dish"]) and item["index"] == i
        assert torch.equal(item["image"], world_recipes[i]["image"])
    assert data.labels.tolist() == [DISHES.index(r["dish"]) for r in world_recipes.recipes]
    # text_batch: what collate_recipes gives for the same rows, without the images.
    rows = [3, 1]
    batch, full = data.text_batch(rows), collate_recipes([data[i] for i in rows])
    assert set(full) - set(batch) == {"image"}
    assert all(torch.equal(batch[k], full[k]) for k in batch)
    assert torch.equal(data.image_batch(rows), full["image"])
    # Without classes every label is -1; a dish not among the classes is refused.
    assert EncodedRecipes(world_recipes, vocab, None, max_ingredient_words=6, max_sentences=2,
                          max_sentence_words=3).labels.tolist() == [-1] * 5  # fmt: skip
    with pytest.raises(DataError, match="world_val_000000.*unknown dish class"):
        EncodedRecipes(world_recipes, vocab, ("soup",), max_ingredient_words=6,
                       max_sentences=2, max_sentence_words=3)  # fmt: skip


def test_collate_pads_ingredients_and_instructions_and_records_their_lengths():
    items = [
        {"ingredients": torch.tensor([4, 5, 6]), "instructions": [torch.tensor([7])],
         "label": 2, "index": 0},
        {"ingredients": torch.tensor([8]),
         "instructions": [torch.tensor([9, 10]), torch.tensor([11, 12, 13])],
         "label": 0, "index": 1},
    ]  # fmt: skip
    batch = collate_recipes(items)
    assert "image" not in batch and set(RECIPE_KEYS) <= set(batch)
    assert batch["ingredients"].tolist() == [[4, 5, 6], [8, PAD_ID, PAD_ID]]
    assert batch["ingredient_lengths"].tolist() == [3, 1]
    assert batch["instructions"].shape == (2, 2, 3)
    assert batch["instructions"][1].tolist() == [[9, 10, PAD_ID], [11, 12, 13]]
    assert batch["instructions"][0].tolist() == [[7, PAD_ID, PAD_ID], [PAD_ID] * 3]
    assert batch["n_sentences"].tolist() == [1, 2]
    assert batch["sentence_lengths"].tolist() == [[1, 0], [2, 3]]
    assert batch["label"].tolist() == [2, 0] and batch["index"].tolist() == [0, 1]
    images = [dict(it, image=torch.full((3, 2, 2), k)) for k, it in enumerate(items)]
    assert collate_recipes(images)["image"][:, 0, 0, 0].tolist() == [0, 1]


def test_a_recipe_without_words_is_refused_by_name():
    vocab = Vocabulary.build(["chop the onion", "2 onions"])
    recipe = {"id": "r", "ingredients": ["2 onions", "1 egg"],
              "instructions": ["chop the onion.", "!!", "serve"]}  # fmt: skip
    ingr, sents = encode_recipe(vocab, recipe)
    assert ingr == [vocab.token_to_id("2"), vocab.token_to_id("onions"), 3, 3]  # 1 egg: <unk>
    assert len(sents) == 2  # "!!" has no word
    with pytest.raises(DataError, match="recipe 'r2': its instructions have no words"):
        encode_recipe(vocab, {"id": "r2", "ingredients": ["1 egg"], "instructions": ["..."]})
    with pytest.raises(DataError, match="recipe 'r3': its ingredients have no words"):
        encode_recipe(vocab, {"id": "r3", "ingredients": [" "], "instructions": ["chop"]})
