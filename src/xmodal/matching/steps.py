"""The loss of one training step of a matching model, from a collated batch: the images
and the texts each embedded once, then the loss that pulls matching pairs together.

- :func:`joint_embedding_step`: a :class:`~xmodal.matching.JointEmbedding` on a
  :func:`~xmodal.data.captions.collate_captioned` batch (each image with ``n`` captions,
  of which the step uses the given rows): InfoNCE, VSE++ (hinge, hardest negative) or the
  VSE triplet loss, the captions of one image never each other's negatives;
- :func:`im2recipe_step`: an :class:`~xmodal.matching.Im2Recipe` on a
  :func:`~xmodal.data.recipes.collate_recipes` batch: InfoNCE over the batch or the
  cosine loss on given pairs, plus the dish classifier's term
  (:func:`~xmodal.matching.recipe.im2recipe_loss`).

Both return ``(loss, parts)``, ``parts`` floats to log; with InfoNCE they hold the learned
temperature's ``logit_scale``.

Example::

    loss, parts = joint_embedding_step(model, batch, torch.arange(len(batch["tokens"])))
    loss.backward()
"""

from __future__ import annotations

import torch
from torch import nn

from xmodal._checks import check_choice, check_positive_number
from xmodal.errors import ParameterError

__all__ = ["JOINT_LOSSES", "check_temperature", "im2recipe_step", "joint_embedding_step"]

JOINT_LOSSES = ("vse++", "triplet", "infonce")


def check_temperature(value, name: str = "temperature") -> float:
    """``value`` if it is a starting temperature of InfoNCE: a number >= 0.01, so that
    the logit scale ``1 / value`` stays within :class:`~xmodal.nn.LogitScale`'s cap of
    100; a ParameterError naming ``name`` otherwise."""
    value = check_positive_number(value, name)
    if value < 0.01:
        raise ParameterError(f"{name} must be >= 0.01 (a logit scale <= 100). Found: {value}")
    return value


def joint_embedding_step(
    model: nn.Module,
    batch: dict,
    rows: torch.Tensor,
    *,
    loss: str = "infonce",
    margin=0.2,
    hard_negatives: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of ``model`` on the images of ``batch`` and its caption rows ``rows``
    (:func:`~xmodal.data.captions.caption_rows`: the same number of each image's, in
    image order). ``loss``: ``"infonce"`` (:func:`~xmodal.nn.losses.info_nce_loss` with
    ``model.logit_scale()``), ``"vse++"`` or ``"triplet"``
    (:func:`~xmodal.nn.losses.hinge_triplet_loss` with ``margin``, hardest negative or
    all of them). ``hard_negatives``: the batch's ``negative_tokens`` made from ``rows``
    are more negative texts of every image (NegCLIP)."""
    from xmodal.nn.losses import hinge_triplet_loss, info_nce_loss

    check_choice(loss, "loss", JOINT_LOSSES)
    rows = rows.to(batch["tokens"].device)
    per_image = len(rows) // len(batch["index"])
    img = model.embed_images(batch["image"])  # (B, D): each image encoded once
    txt = model.embed_texts(batch["tokens"][rows], batch["lengths"][rows])  # (B * k, D)
    img = img.repeat_interleave(per_image, dim=0)
    ids = batch["index"].repeat_interleave(per_image)
    extra, parts = None, {}
    if hard_negatives:
        if "negative_rows" not in batch:
            raise ParameterError(
                "hard_negatives=True needs a batch with negative_tokens (the world's captioning "
                "view with near_misses=True)"
            )
        use = torch.isin(batch["negative_rows"].to(rows.device), rows)
        if bool(use.any()):
            extra = model.embed_texts(batch["negative_tokens"][use], batch["negative_lengths"][use])
        parts["hard_negatives"] = float(use.sum())
    if loss == "infonce":
        scale = model.logit_scale()
        value = info_nce_loss(img, txt, scale, image_ids=ids, hard_negatives=extra)
        return value, {**parts, "logit_scale": float(scale.detach())}
    hardest = loss == "vse++"
    value = hinge_triplet_loss(
        img, txt, margin=margin, hardest=hardest, image_ids=ids, hard_negatives=extra
    )
    return value, parts


def im2recipe_step(
    model: nn.Module,
    batch: dict,
    pairs: tuple[torch.Tensor, torch.Tensor] | None = None,
    *,
    margin: float = 0.1,
    semantic_weight: float = 0.02,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of ``model`` on the images and recipes of ``batch``: InfoNCE over the batch
    when ``pairs`` is None, else the cosine loss with ``margin`` on the pairs ``(rows,
    target)`` of :func:`~xmodal.matching.recipe.pair_targets` (image ``i`` with recipe
    ``rows[i]``). With a classifier the semantic term weighs ``semantic_weight``."""
    from xmodal.data.recipes import RECIPE_KEYS
    from xmodal.matching.recipe import im2recipe_loss

    img = model.embed_images(batch["image"])  # (B, D)
    rec = model.embed_recipes(*(batch[k] for k in RECIPE_KEYS))  # (B, D)
    semantic = {}
    if model.classifier is not None:
        labels = batch["label"]
        semantic = {
            "img_logits": model.classify(img),
            "rec_logits": model.classify(rec),
            "img_labels": labels,
            "rec_labels": labels,
        }
    w = semantic_weight if semantic else 0.0
    if pairs is None:
        scale = model.logit_scale()
        loss, parts = im2recipe_loss(img, rec, logit_scale=scale, semantic_weight=w, **semantic)
        return loss, {**parts, "logit_scale": float(scale.detach())}
    rows, target = (t.to(img.device) for t in pairs)
    return im2recipe_loss(img, rec[rows], target, margin=margin, semantic_weight=w, **semantic)
