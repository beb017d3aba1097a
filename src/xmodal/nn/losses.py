"""Contrastive losses for joint embeddings: the hinge triplet loss (VSE, and VSE++'s
hardest negative) and the symmetric InfoNCE loss with a learned temperature (CLIP).

Every loss takes L2-normalised embeddings ``img`` and ``txt`` of shape ``(B, D)`` whose
row ``k`` is a matching pair, so the positives are the diagonal of the score matrix
``S = img @ txt.T`` ``(B, B)``. When a batch holds several captions of the same image
(``image_ids`` gives each row's image), the off-diagonal pairs of the same image are
positives too: they are never used as negatives.

Example::

    img, txt = model(images, tokens, lengths)                 # (B, D) each, unit norm
    loss = hinge_triplet_loss(img, txt, margin=0.2, hardest=True)   # VSE++
    loss = info_nce_loss(img, txt, scale())                   # CLIP, scale = LogitScale()
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import as_signal, check_bool, check_int_vector, check_positive_number
from xmodal.errors import ParameterError

__all__ = ["LogitScale", "distillation_loss", "hinge_triplet_loss", "info_nce_loss"]


def _pairs(img, txt, image_ids) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Check the inputs; return ``(img, txt, negatives)`` with ``negatives`` a (B, B) bool
    mask of the pairs that may serve as negatives."""
    img = as_signal(img, "img", min_ndim=2)
    txt = as_signal(txt, "txt", min_ndim=2)
    if img.ndim != 2 or txt.ndim != 2 or img.shape != txt.shape:
        raise ParameterError(
            "img and txt must both have shape (B, D), row k a matching pair. "
            f"Found img {tuple(img.shape)} and txt {tuple(txt.shape)}"
        )
    b = img.shape[0]
    if image_ids is None:
        negatives = ~torch.eye(b, dtype=torch.bool, device=img.device)
    else:
        image_ids = check_int_vector(image_ids, "image_ids", b).to(img.device)
        negatives = image_ids[:, None] != image_ids[None, :]
    return img, txt, negatives


def _extra(hard_negatives, img: torch.Tensor) -> torch.Tensor | None:
    """``hard_negatives`` checked: ``(M, D)`` extra negative texts, or None."""
    if hard_negatives is None:
        return None
    neg = as_signal(hard_negatives, "hard_negatives", min_ndim=2)
    if neg.ndim != 2 or neg.shape[1] != img.shape[1]:
        raise ParameterError(
            f"hard_negatives must have shape (M, D) with D={img.shape[1]}, the embeddings' "
            f"dimension. Found {tuple(neg.shape)}"
        )
    return neg


def hinge_triplet_loss(
    img: torch.Tensor,
    txt: torch.Tensor,
    *,
    margin: float = 0.2,
    hardest: bool = False,
    image_ids: torch.Tensor | None = None,
    hard_negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """The bidirectional hinge (triplet ranking) loss of VSE; VSE++ with ``hardest=True``.

    With ``S = img @ txt.T`` and ``S[k, k]`` the positive of row/column ``k``:
    image→text terms ``[margin - S[i, i] + S[i, j]]_+`` over negative texts ``j``, and
    text→image terms ``[margin - S[j, j] + S[i, j]]_+`` over negative images ``i``. Each
    anchor sums its terms over the negatives (VSE) or keeps only the largest one, the
    hardest negative in the batch (VSE++'s max violation). The result is the sum of both
    directions, averaged over the ``B`` anchors (VSE++ sums over the batch: multiply by
    ``B`` for its value).

    Args:
        img, txt: ``(B, D)`` embeddings, row ``k`` of each a matching pair.
        margin: the margin, >= 0.
        hardest: only the hardest negative per anchor.
        image_ids: ``(B,)`` image of each row; rows of the same image are not negatives.
        hard_negatives: ``(M, D)`` extra negative texts of every image anchor (NegCLIP's
            hard negatives: a caption one word away from a true one, false of its own
            image; like any in-batch negative it may be true of another image).
    Returns:
        a scalar tensor.
    """
    margin = check_positive_number(margin, "margin", allow_zero=True)
    hardest = check_bool(hardest, "hardest")
    img, txt, negatives = _pairs(img, txt, image_ids)
    extra = _extra(hard_negatives, img)
    scores = img @ txt.T  # (B, B)
    positive = scores.diagonal()
    cost_txt = (margin + scores - positive[:, None]).clamp(min=0) * negatives  # anchor: image
    if extra is not None:  # (B, B + M)
        cost_extra = (margin + img @ extra.T - positive[:, None]).clamp(min=0)
        cost_txt = torch.cat([cost_txt, cost_extra], dim=1)
    cost_img = (margin + scores - positive[None, :]).clamp(min=0) * negatives  # anchor: text
    if hardest:
        return cost_txt.max(dim=1).values.mean() + cost_img.max(dim=0).values.mean()
    return cost_txt.sum(dim=1).mean() + cost_img.sum(dim=0).mean()


def info_nce_loss(
    img: torch.Tensor,
    txt: torch.Tensor,
    logit_scale: float | torch.Tensor,
    *,
    image_ids: torch.Tensor | None = None,
    hard_negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP): cross entropy of each image over the texts and of each
    text over the images, with logits ``logit_scale * img @ txt.T``, averaged.

    ``logit_scale`` is the inverse temperature (a number or a scalar tensor, e.g. the
    output of :class:`LogitScale`, through which it is learned). With ``image_ids``, the
    other captions of the same image are left out of each softmax (neither positive nor
    negative). ``hard_negatives`` ``(M, D)``: extra texts, more columns of every image's
    softmax (NegCLIP, Yuksekgonul et al., 2023: each a caption made false of its own image,
    which may, like any in-batch negative, be true of another); the text → image direction
    is unchanged. Returns a scalar tensor.
    """
    img, txt, negatives = _pairs(img, txt, image_ids)
    extra = _extra(hard_negatives, img)
    if isinstance(logit_scale, torch.Tensor):
        if logit_scale.numel() != 1 or not bool(torch.isfinite(logit_scale).all()):
            raise ParameterError(
                f"logit_scale must be one finite number. Found: {logit_scale.detach()!r}"
            )
        if float(logit_scale.detach()) <= 0:
            raise ParameterError(f"logit_scale must be > 0. Found: {float(logit_scale.detach())}")
        logit_scale = logit_scale.reshape(())
    else:
        check_positive_number(logit_scale, "logit_scale")
    logits = logit_scale * (img @ txt.T)  # (B, B)
    keep = negatives | torch.eye(len(img), dtype=torch.bool, device=img.device)
    logits = logits.masked_fill(~keep, float("-inf"))
    target = torch.arange(len(img), device=img.device)
    per_image = logits if extra is None else torch.cat([logits, logit_scale * (img @ extra.T)], 1)
    return 0.5 * (F.cross_entropy(per_image, target) + F.cross_entropy(logits.T, target))


class LogitScale(nn.Module):
    """A learned inverse temperature for :func:`info_nce_loss`, kept as its logarithm.

    ``forward()`` returns ``exp(log_scale)`` capped at ``max`` (CLIP clips it at 100 so the
    logits cannot blow up). ``init`` is the starting scale: CLIP starts at 1 / 0.07.

        >>> scale = LogitScale()
        >>> round(float(scale()), 2)
        14.29
    """

    def __init__(self, init: float = 1 / 0.07, max: float = 100.0) -> None:
        super().__init__()
        for name, value in (("init", init), ("max", max)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ParameterError(f"{name} must be a number > 0. Found: {value!r}")
        init = check_positive_number(init, "init")
        self.max = check_positive_number(max, "max")
        if init > self.max:
            raise ParameterError(f"init must be <= max={self.max}. Found: {init}")
        self.log_scale = nn.Parameter(torch.tensor(math.log(init)))

    def forward(self) -> torch.Tensor:
        return self.log_scale.clamp(max=math.log(self.max)).exp()

    def extra_repr(self) -> str:
        return f"max={self.max}"


def distillation_loss(
    student_logits: torch.Tensor, teacher_probs: torch.Tensor, *, temperature: float = 1.0
) -> torch.Tensor:
    """Knowledge distillation (Hinton et al., 2015; SoundNet's objective): the KL divergence
    ``KL(teacher || softmax(student_logits / temperature))`` averaged over the batch, times
    ``temperature ** 2`` so its gradients keep their size as the temperature changes.

    ``student_logits`` ``(B, K)``; ``teacher_probs`` ``(B, K)``, each row a distribution
    (already softened by the same temperature, if any). A row the teacher puts all its
    mass on one class gives the cross entropy of that class. Returns a scalar tensor.
    """
    logits = as_signal(student_logits, "student_logits", min_ndim=2)
    probs = as_signal(teacher_probs, "teacher_probs", min_ndim=2)
    if logits.ndim != 2 or probs.shape != logits.shape:
        raise ParameterError(
            "student_logits and teacher_probs must both have shape (B, K). Found "
            f"{tuple(logits.shape)} and {tuple(probs.shape)}"
        )
    sums = probs.sum(1)
    if bool((probs < 0).any()) or not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        raise ParameterError(
            "teacher_probs must be distributions: rows >= 0 that sum to 1. Found row sums "
            f"from {float(sums.min()):.4g} to {float(sums.max()):.4g}, minimum entry "
            f"{float(probs.min()):.4g}"
        )
    temperature = check_positive_number(temperature, "temperature")
    log_q = F.log_softmax(logits / temperature, dim=1)
    return F.kl_div(log_q, probs, reduction="batchmean") * temperature**2
