"""im2recipe's parts: the model's shapes and padding invariance, the loss against values
worked by hand, the one dish classifier both modalities share, the 20% negative pairs, and
the Recipe1M-like loader against the world it was exported from, bad files included."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xmodal.data.recipe1m import Recipe1M
from xmodal.data.recipes import collate_recipes
from xmodal.errors import DataError, ParameterError
from xmodal.matching.recipe import Im2Recipe, RecipeEncoder, im2recipe_loss, pair_targets
from xmodal.world import World
from xmodal.world.export import export

SIZES = {"train": 4, "val": 2, "test": 3}


def _model(**kwargs) -> Im2Recipe:
    torch.manual_seed(0)
    args = dict(n_classes=5, encoder_kwargs={"channels": 8}, embed_dim=6, word_dim=4,
                ingredient_hidden=3, sentence_hidden=3, instruction_hidden=5)  # fmt: skip
    return Im2Recipe(20, **{**args, **kwargs}).eval()


def _recipes(n: int) -> list[dict]:
    """``n`` random recipes as encoded items (ids 4..19), 1-3 ingredients words and 1-4
    sentences of 1-5 words."""
    g = torch.Generator().manual_seed(n)

    def ids(k):
        return torch.randint(4, 20, (k,), generator=g)

    def count(hi):
        return int(torch.randint(1, hi + 1, (1,), generator=g))

    return [{"ingredients": ids(count(3)), "instructions": [ids(count(5)) for _ in range(count(4))],
             "label": i % 5, "index": i} for i in range(n)]  # fmt: skip


KEYS = ("ingredients", "ingredient_lengths", "instructions", "n_sentences", "sentence_lengths")


# ----------------------------------------------------------------------------- model


def test_embeddings_are_unit_vectors_of_embed_dim():
    model = _model()
    batch = collate_recipes(_recipes(5))
    with torch.no_grad():
        rec = model.embed_recipes(*(batch[k] for k in KEYS))
        img = model.embed_images(torch.rand(5, 3, 32, 32))
    assert rec.shape == img.shape == (5, 6)
    assert torch.allclose(rec.norm(dim=-1), torch.ones(5), atol=1e-6)
    assert torch.allclose(img.norm(dim=-1), torch.ones(5), atol=1e-6)


def test_a_batch_embeds_each_recipe_as_it_would_alone():
    # Padding (words, sentences) never changes a recipe's embedding.
    model = _model()
    items = _recipes(6)
    with torch.no_grad():
        batch = collate_recipes(items)
        together = model.embed_recipes(*(batch[k] for k in KEYS))
        for i, item in enumerate(items):
            one = collate_recipes([item])
            alone = model.embed_recipes(*(one[k] for k in KEYS))
            assert torch.allclose(together[i], alone[0], atol=1e-5), i


def test_recipe_encoder_reads_ingredients_and_instructions():
    model = _model()
    item = _recipes(1)[0]
    other = dict(item, instructions=[torch.tensor([7, 8, 9])])
    swap = dict(item, ingredients=torch.tensor([11, 12]))
    with torch.no_grad():
        emb = [model.embed_recipes(*(collate_recipes([x])[k] for k in KEYS)) for x in
               (item, other, swap)]  # fmt: skip
    assert not torch.allclose(emb[0], emb[1]) and not torch.allclose(emb[0], emb[2])


def test_bad_recipe_tensors_are_refused_with_the_value():
    enc = RecipeEncoder(20, word_dim=4, ingredient_hidden=3, sentence_hidden=3,
                        instruction_hidden=3, embed_dim=4)  # fmt: skip
    batch = collate_recipes(_recipes(2))
    args = [batch[k] for k in KEYS]
    with pytest.raises(ParameterError, match="ingredients must be an integer tensor"):
        enc(args[0].float(), *args[1:])
    with pytest.raises(ParameterError, match="n_sentences must be in"):
        enc(*args[:3], torch.tensor([99, 1]), args[4])
    with pytest.raises(ParameterError, match="at least one ingredient word"):
        enc(args[0], torch.tensor([0, 1]), *args[2:])
    with pytest.raises(ParameterError, match="word_init must have shape"):
        RecipeEncoder(20, word_dim=4, word_init=torch.zeros(3, 4))


def test_the_dish_classifier_is_one_module_shared_by_both_modalities():
    model = _model()
    heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 5]
    assert heads == [model.classifier]
    # Both sides' cross entropy trains the same weights: each alone gives them a gradient.
    batch = collate_recipes(_recipes(4))
    labels = batch["label"]
    model.train()
    img = model.embed_images(torch.rand(4, 3, 32, 32))
    rec = model.embed_recipes(*(batch[k] for k in KEYS))
    grads = []
    for emb in (img, rec):
        model.zero_grad()
        F.cross_entropy(model.classify(emb), labels).backward(retain_graph=True)
        grads.append(model.classifier.weight.grad.clone())
    assert all(g.abs().sum() > 0 for g in grads) and not torch.allclose(grads[0], grads[1])
    assert _model(n_classes=0).classifier is None


# ----------------------------------------------------------------------------- loss


def test_cosine_loss_matches_hand_computed_values():
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    rec = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([1.0, -1.0, -1.0])
    # pair 0 matches at cos 1: 0; pair 1 is apart at cos 0 < margin: 0;
    # pair 2 is a negative at cos 1/sqrt(2): 1/sqrt(2) - 0.1.
    want = (1 / math.sqrt(2) - 0.1) / 3
    loss, parts = im2recipe_loss(img, rec, target, margin=0.1, semantic_weight=0)
    assert float(loss) == pytest.approx(want, abs=1e-6)
    assert parts == {"cos": pytest.approx(want, abs=1e-6)}
    # Positives cost 1 - cos: 0 at cos 1, 1 at cos 0.
    loss, _ = im2recipe_loss(img[:2], rec[[1, 0]], torch.tensor([1.0, 1.0]), semantic_weight=0)
    assert float(loss) == pytest.approx((0.0 + 1.0) / 2, abs=1e-6)


def test_semantic_term_is_weighted_as_in_the_paper_code():
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    rec = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    target = torch.tensor([1.0, 1.0])  # cos loss: (0 + 1) / 2 = 0.5
    logits = torch.log(torch.tensor([[1.0, 3.0], [1.0, 1.0]]))
    labels = torch.tensor([1, 0])
    ce = -(math.log(3 / 4) + math.log(1 / 2)) / 2  # softmax of [1, 3] and [1, 1]
    loss, parts = im2recipe_loss(img, rec, target, margin=0.1, semantic_weight=0.02,
                                 img_logits=logits, rec_logits=logits.flip(0),
                                 img_labels=labels, rec_labels=labels.flip(0))  # fmt: skip
    assert parts["cls_img"] == pytest.approx(ce) and parts["cls_rec"] == pytest.approx(ce)
    assert float(loss) == pytest.approx(0.98 * 0.5 + 0.01 * ce + 0.01 * ce, abs=1e-6)
    with pytest.raises(ParameterError, match="needs img/rec logits"):
        im2recipe_loss(img, rec, target, semantic_weight=0.02)
    with pytest.raises(ParameterError, match="margin must be in"):
        im2recipe_loss(img, rec, target, margin=1.5)


def test_pairs_hold_twenty_percent_negatives_each_with_another_recipe():
    for n in (5, 10, 64, 100):
        rows, target = pair_targets(n, negatives=0.2, rng=np.random.default_rng(n))
        neg = target == -1
        assert int(neg.sum()) == round(0.2 * n)
        assert bool((rows[neg] != torch.arange(n)[neg]).all())
        assert bool((rows[~neg] == torch.arange(n)[~neg]).all())
        assert bool(((rows >= 0) & (rows < n)).all())
    a = pair_targets(64, negatives=0.2, rng=np.random.default_rng(7))
    b = pair_targets(64, negatives=0.2, rng=np.random.default_rng(7))
    c = pair_targets(64, negatives=0.2, rng=np.random.default_rng(8))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    rows, target = pair_targets(1, negatives=0.2, rng=np.random.default_rng(0))
    assert rows.tolist() == [0] and target.tolist() == [1.0]
    with pytest.raises(ParameterError, match="negatives must be a fraction"):
        pair_targets(4, negatives=1.0, rng=np.random.default_rng(0))


# ----------------------------------------------------------------------------- Recipe1M


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return export(World(seed=0), "recipe1m", tmp_path_factory.mktemp("r1m") / "recipe1m",
                  sizes=SIZES)  # fmt: skip


def test_loader_equals_the_world_on_its_export(exported):
    world = World(seed=0)
    for split, n in SIZES.items():
        ds = Recipe1M(exported, split)
        assert len(ds) == n
        for i in range(n):
            want, got = world.recipe(split, i), ds[i]
            assert got["id"] == f"world_{split}_{i:06d}" and got["index"] == i
            assert got["title"] == want.title and got["dish"] == want.dish
            assert got["ingredients"] == want.ingredients
            assert got["instructions"] == want.instructions
            assert torch.equal((got["image"] * 255).round().to(torch.uint8), want.image)
        assert ds.recipes[0]["title"] == world.recipe(split, 0).title
    assert Recipe1M(exported, "test", image_size=32)[0]["image"].shape == (3, 32, 32)
    dishes = {world.recipe(s, i).dish for s, n in SIZES.items() for i in range(n)}
    assert ds.class_names == tuple(sorted(dishes))


def _broken(exported: Path, tmp_path: Path, edit) -> Path:
    root = tmp_path / "broken"
    import shutil

    shutil.copytree(exported, root)
    layer1 = json.loads((root / "layer1.json").read_text())
    edit(layer1, root)
    (root / "layer1.json").write_text(json.dumps(layer1))
    return root


def _edit_layer2(root: Path, edit) -> None:
    layer2 = json.loads((root / "layer2.json").read_text())
    edit(layer2)
    (root / "layer2.json").write_text(json.dumps(layer2))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda l1, r: l1[1].pop("instructions"), r"\[1\] has no field 'instructions'"),
        (lambda l1, r: l1.insert(1, 5), r"layer1.json: \[1\] must be an object. Found: 5"),
        (lambda l1, r: l1[2].update(title=["soup"]), r"\[2\]\.title must be a str. Found: list"),
        (
            lambda l1, r: _edit_layer2(r, lambda l2: l2[0]["images"].append("a.jpg")),
            r"layer2.json: \[0\]\.images\[\d\] must be an object. Found: 'a.jpg'",
        ),
        (lambda l1, r: l1[0].pop("title"), r"\[0\] has no field 'title'"),
        (
            lambda l1, r: l1[2].update(ingredients=[]),
            r"recipe 'world_train_000002'\) is empty: it has no ingredients",
        ),
        (lambda l1, r: l1[0].update(instructions=[]), "is empty: it has no instructions"),
        (lambda l1, r: l1[0].update(partition="restval"), "partition is 'restval'"),
        (
            lambda l1, r: l1[3]["ingredients"].append({"txt": "1 egg"}),
            r"\[3\].ingredients\[\d\] has no field 'text'",
        ),
        (
            lambda l1, r: (r / "classes.json").write_text("{}"),
            "has no class for recipe 'world_train_000000'",
        ),
        (lambda l1, r: (r / "layer2.json").write_text("not json"), "is not a JSON file"),
    ],
)
def test_a_broken_layer_names_the_entry_and_field(exported, tmp_path, edit, message):
    root = _broken(exported, tmp_path, edit)
    with pytest.raises(DataError, match=message):
        Recipe1M(root, "test")


def test_an_image_that_fails_to_load_names_the_recipe_and_file(exported, tmp_path):
    root = _broken(exported, tmp_path, lambda l1, r: None)
    bad = root / "images" / "test" / "world_test_000001.png"
    bad.write_bytes(b"not a png")
    (root / "images" / "test" / "world_test_000002.png").unlink()
    ds = Recipe1M(root, "test")
    ds[0]  # the others still load
    with pytest.raises(
        DataError, match=r"recipe 'world_test_000001' \(test item 1\).*not an image"
    ):
        ds[1]
    with pytest.raises(DataError, match="world_test_000002.png does not exist"):
        ds[2]


def test_loader_arguments_are_checked(exported, tmp_path):
    with pytest.raises(ParameterError, match="unknown split 'restval'"):
        Recipe1M(exported, "restval")
    with pytest.raises(DataError, match="is not a folder"):
        Recipe1M(tmp_path / "nowhere", "train")
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match="layer1.json does not exist"):
        Recipe1M(tmp_path, "train")


def test_the_infonce_matching_term_is_clip_s_and_excludes_a_target():
    torch.manual_seed(0)
    img = F.normalize(torch.randn(5, 3), dim=-1)
    rec = F.normalize(torch.randn(5, 3), dim=-1)
    loss, parts = im2recipe_loss(img, rec, logit_scale=10.0, semantic_weight=0.0)
    logits = 10.0 * img @ rec.T
    want = 0.5 * (
        F.cross_entropy(logits, torch.arange(5)) + F.cross_entropy(logits.T, torch.arange(5))
    )
    assert float(loss) == pytest.approx(float(want), rel=1e-6) and set(parts) == {"nce"}
    for kwargs in ({}, {"target": torch.ones(5), "logit_scale": 10.0}):
        with pytest.raises(ParameterError, match="give target .* or logit_scale"):
            im2recipe_loss(img, rec, **kwargs, semantic_weight=0.0)
