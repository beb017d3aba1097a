"""im2recipe's galleries: a split embedded in batches equals one pass over it, and image
queries find the recipes brute force finds, with their text and a figure."""

from __future__ import annotations

import json

import pytest
import torch

from xmodal.data.recipes import RECIPE_KEYS, EncodedRecipes, WorldRecipes, collate_recipes
from xmodal.matching.gallery import Embedder
from xmodal.matching.recipe import Im2Recipe
from xmodal.matching.recipe_search import embed_recipe_split, search_recipes
from xmodal.text.vocab import Vocabulary


@pytest.fixture(scope="module")
def gallery():
    """Five world recipes, encoded, and a small random Im2Recipe in train mode."""
    from xmodal.world import World
    from xmodal.world.recipes import DISHES

    source = WorldRecipes(World(seed=0), "test", 5)
    texts = [t for r in source.recipes for t in (*r["ingredients"], *r["instructions"])]
    vocab = Vocabulary.build(texts)
    data = EncodedRecipes(
        source, vocab, DISHES, max_ingredient_words=64, max_sentences=16, max_sentence_words=32
    )
    torch.manual_seed(0)
    model = Im2Recipe(
        len(vocab),
        encoder_kwargs={"channels": 4},
        embed_dim=6,
        word_dim=4,
        ingredient_hidden=3,
        sentence_hidden=3,
        instruction_hidden=5,
    )
    return source, data, model.train()


def test_a_split_embedded_in_batches_equals_one_pass_in_eval_mode(gallery):
    source, data, model = gallery
    img, rec = embed_recipe_split(model, data, batch_size=2)
    assert not model.training and img.shape == rec.shape == (5, 6)
    batch = collate_recipes([data[i] for i in range(5)])
    with torch.no_grad():
        assert torch.allclose(img, model.embed_images(batch["image"]), atol=1e-5)
        want = model.embed_recipes(*(batch[k] for k in RECIPE_KEYS))
        assert torch.allclose(rec, want, atol=1e-5)


def test_image_queries_get_the_closest_recipes_with_their_text(gallery, tmp_path):
    source, data, model = gallery
    embed = Embedder(model, 2)
    img, rec = embed_recipe_split(model, data, batch_size=2)
    queries = [source[3]["image"], source[0]["image"]]
    records = search_recipes(
        ["a/dish.png", "b/dish.png"],
        queries,
        tmp_path,
        embed,
        recipe_emb=rec,
        recipes=source.recipes,
        k=3,
    )
    assert [r["input"] for r in records] == ["a/dish.png", "b/dish.png"]
    for record, q in zip(records, queries, strict=True):
        want = (rec @ embed.images(q[None])[0]).topk(3)
        hits = record["results"]
        assert [h["index"] for h in hits] == want.indices.tolist()
        assert [h["score"] for h in hits] == [round(s, 4) for s in want.values.tolist()]
        j = hits[0]["index"]
        recipe = source.recipes[j]
        assert hits[0] == {
            "recipe": f"test/{j}",
            "index": j,
            "id": recipe["id"],
            "title": recipe["title"],
            "dish": recipe["dish"],
            "score": hits[0]["score"],
        }
        assert record["kind"] == "image" and record["text"].startswith(recipe["title"])
    files = [r["files"][0] for r in records]
    assert files == [
        str(tmp_path / "dish-0_top_recipes.png"),
        str(tmp_path / "dish-1_top_recipes.png"),
    ]
    assert all(open(f, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for f in files)
    json.dumps(records)  # what predict returns is JSON
