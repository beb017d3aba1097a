"""A training step's loss of the matching models against the losses computed by hand from
the model's embeddings: InfoNCE, VSE++ and VSE on the caption rows a step uses, im2recipe's
InfoNCE and cosine pairs with and without the dish classifier; the temperature's bound."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xmodal.errors import ParameterError
from xmodal.matching.joint import JointEmbedding
from xmodal.matching.recipe import Im2Recipe, pair_targets
from xmodal.matching.steps import check_temperature, im2recipe_step, joint_embedding_step
from xmodal.nn.losses import hinge_triplet_loss, info_nce_loss

KEYS = ("ingredients", "ingredient_lengths", "instructions", "n_sentences", "sentence_lengths")


def _captioned_batch() -> dict:
    """Three 16x16 images with two captions each (rows 2b, 2b + 1), ids 4..9."""
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([3, 5, 4, 2, 5, 3])
    tokens = torch.randint(4, 10, (6, 5), generator=g) * (torch.arange(5) < lengths[:, None])
    return {
        "image": torch.rand(3, 3, 16, 16, generator=g),
        "tokens": tokens,
        "lengths": lengths,
        "index": torch.tensor([7, 2, 9]),
    }


@pytest.fixture(scope="module")
def joint() -> JointEmbedding:
    torch.manual_seed(0)
    model = JointEmbedding(10, encoder_kwargs={"channels": 4}, embed_dim=8, word_dim=4, hidden=4)
    return model.eval()


@pytest.mark.parametrize("rows", [torch.arange(6), torch.tensor([1, 2, 5])])
@torch.no_grad()
def test_the_joint_step_is_the_loss_of_each_image_with_its_caption_rows(joint, rows):
    batch = _captioned_batch()
    per_image = len(rows) // 3
    img = joint.embed_images(batch["image"]).repeat_interleave(per_image, dim=0)
    txt = joint.embed_texts(batch["tokens"][rows], batch["lengths"][rows])
    ids = batch["index"].repeat_interleave(per_image)
    scale = joint.logit_scale()
    loss, parts = joint_embedding_step(joint, batch, rows)
    assert float(loss) == pytest.approx(float(info_nce_loss(img, txt, scale, image_ids=ids)))
    assert parts == {"logit_scale": pytest.approx(float(scale))}
    for name, hardest in (("vse++", True), ("triplet", False)):
        loss, parts = joint_embedding_step(joint, batch, rows, loss=name, margin=0.3)
        want = hinge_triplet_loss(img, txt, margin=0.3, hardest=hardest, image_ids=ids)
        assert float(loss) == pytest.approx(float(want)) and parts == {}
    with pytest.raises(ParameterError, match="loss must be one of 'vse\\+\\+', 'triplet'"):
        joint_embedding_step(joint, batch, rows, loss="hinge")


@torch.no_grad()
def test_hard_negatives_of_the_used_rows_join_every_images_softmax(joint):
    batch = _captioned_batch()
    g = torch.Generator().manual_seed(2)
    batch["negative_tokens"] = torch.randint(4, 10, (3, 4), generator=g)
    batch["negative_lengths"] = torch.tensor([4, 2, 3])
    batch["negative_rows"] = torch.tensor([0, 3, 4])  # made from caption rows 0, 3 and 4
    rows = torch.tensor([1, 2, 4])  # one caption of each image: row 4's negative is used
    img = joint.embed_images(batch["image"])
    txt = joint.embed_texts(batch["tokens"][rows], batch["lengths"][rows])
    extra = joint.embed_texts(batch["negative_tokens"][2:], batch["negative_lengths"][2:])
    scale = joint.logit_scale()
    loss, parts = joint_embedding_step(joint, batch, rows, hard_negatives=True)
    want = info_nce_loss(img, txt, scale, image_ids=batch["index"], hard_negatives=extra)
    assert float(loss) == pytest.approx(float(want))
    assert parts["hard_negatives"] == 1
    loss, _ = joint_embedding_step(joint, batch, rows, loss="triplet", hard_negatives=True)
    want = hinge_triplet_loss(img, txt, image_ids=batch["index"], hard_negatives=extra)
    assert float(loss) == pytest.approx(float(want))
    plain = {k: v for k, v in batch.items() if not k.startswith("negative")}
    assert float(joint_embedding_step(joint, plain, rows)[0]) == pytest.approx(
        float(info_nce_loss(img, txt, scale, image_ids=batch["index"]))
    )
    with pytest.raises(ParameterError, match="hard_negatives=True needs .*negative_tokens"):
        joint_embedding_step(joint, plain, rows, hard_negatives=True)


def _recipe_batch() -> dict:
    from xmodal.data.recipes import collate_recipes

    g = torch.Generator().manual_seed(1)

    def ids(k):
        return torch.randint(4, 20, (k,), generator=g)

    items = [
        {
            "image": torch.rand(3, 16, 16, generator=g),
            "ingredients": ids(1 + i % 3),
            "instructions": [ids(2), ids(1 + i % 4)],
            "label": i % 5,
            "index": i,
        }
        for i in range(5)
    ]
    return collate_recipes(items)


@pytest.mark.parametrize("n_classes", [5, 0])
@torch.no_grad()
def test_the_im2recipe_step_is_infonce_or_the_cosine_loss_plus_the_dish_term(n_classes):
    torch.manual_seed(0)
    model = Im2Recipe(
        20,
        n_classes=n_classes,
        encoder_kwargs={"channels": 4},
        embed_dim=6,
        word_dim=4,
        ingredient_hidden=3,
        sentence_hidden=3,
        instruction_hidden=5,
    ).eval()
    batch = _recipe_batch()
    img = model.embed_images(batch["image"])
    rec = model.embed_recipes(*(batch[k] for k in KEYS))
    w = 0.2 if n_classes else 0.0  # no classifier: no dish term, whatever the weight
    dish = 0.0
    if n_classes:
        labels = batch["label"]
        dish = F.cross_entropy(model.classify(img), labels) + F.cross_entropy(
            model.classify(rec), labels
        )
    loss, parts = im2recipe_step(model, batch, semantic_weight=0.2)
    want = (1 - w) * info_nce_loss(img, rec, model.logit_scale()) + w / 2 * dish
    assert float(loss) == pytest.approx(float(want), rel=1e-5)
    assert set(parts) == {"nce", "logit_scale"} | ({"cls_img", "cls_rec"} if n_classes else set())
    rows, target = pair_targets(5, negatives=0.4, rng=np.random.default_rng(0))
    loss, parts = im2recipe_step(model, batch, (rows, target), margin=0.1, semantic_weight=0.2)
    cosine = F.cosine_embedding_loss(img, rec[rows], target, margin=0.1)
    assert float(loss) == pytest.approx(float((1 - w) * cosine + w / 2 * dish), rel=1e-5)
    assert "cos" in parts and "logit_scale" not in parts


def test_a_temperature_under_a_hundredth_is_refused():
    assert check_temperature(0.07) == 0.07 and check_temperature(0.01) == 0.01
    with pytest.raises(ParameterError, match=r"model.temperature must be >= 0.01 \(a logit"):
        check_temperature(0.001, "model.temperature")
    with pytest.raises(ParameterError, match="temperature must be a finite number > 0"):
        check_temperature(0)
