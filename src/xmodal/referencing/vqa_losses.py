"""The objectives of VQA models: the answer loss against soft targets and the attention
supervision of the hops.

:func:`soft_cross_entropy` is VQA's answer loss: the cross-entropy against the share of
human answers each answer class got (a soft target when annotators disagree), over the
questions with an answer among the classes. :func:`attention_loss` holds each
attention hop to where the objects its question is about are (Qiao et al. 2018).

Example:
    >>> out = model(images, tokens, lengths, image_index)
    >>> loss, used = soft_cross_entropy(out.logits, target)       # target (Q, A)
    >>> look, _ = attention_loss(out.attention, referents)        # referents (Q, 2, H, W)
    >>> (loss + 1.0 * look).backward()
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xmodal.metrics.localization import look_targets

__all__ = ["attention_loss", "soft_cross_entropy"]


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Mean of ``-sum_k target_k log softmax(logits)_k`` over the rows whose target has
    mass (questions with an answer among the classes); ``(loss, rows used)``.

    ``logits (Q, A)``; ``target (Q, A)``, each row a distribution or all zero."""
    keep = target.sum(dim=-1) > 0
    used = int(keep.sum())
    if used == 0:
        return logits.sum() * 0.0, 0  # no answer in the classes: nothing to learn, no NaN
    loss = -(target[keep] * F.log_softmax(logits[keep], dim=-1)).sum(dim=-1)
    return loss.mean(), used


def attention_loss(attention: torch.Tensor, referents: torch.Tensor) -> tuple[torch.Tensor, int]:
    """How far each hop looked from the objects its question is about.

    ``attention (Q, K, h, w)``, each map summing to 1; ``referents (Q, 2, H, W)`` bool, the
    first and the second look's objects, H and W multiples of h and w. Hop 1 is held to
    the first look, hops 2..K to the second. The target of a hop is the share of each cell
    its objects cover (:func:`~xmodal.metrics.localization.look_targets`), normalised to
    sum to 1; the loss is the mean over the maps that have a target of
    ``-sum target * log map`` (a cross-entropy, as attention supervision does, Qiao et
    al. 2018). Returns ``(loss, maps used)``."""
    target = look_targets(attention, referents)
    mass = target.sum(dim=(2, 3))
    keep = mass > 0
    used = int(keep.sum())
    if used == 0:
        return attention.sum() * 0.0, 0
    target = target[keep] / mass[keep][:, None, None]
    loss = -(target * attention[keep].clamp_min(1e-12).log()).sum(dim=(1, 2))
    return loss.mean(), used
