"""Where a model looked against where the objects are: attention maps scored on the
objects' masks.

:func:`look_targets` puts object masks on an attention map's grid (the share of each cell
the objects cover); :func:`pointing_hits` is the pointing game of Zhang et al. (2016):
a map hits when its most attended cell holds part of the objects. Both take the maps of
several hops per question (a stacked-attention VQA model's) and the masks of the two
looks a question makes (:func:`xmodal.world.language.question_referents`): hop 1 is held
to the first look, hops 2..K to the second.

Example:
    >>> hit, has = pointing_hits(attention, referents)   # (Q, K) bool each
    >>> 100.0 * hit.sum(0) / has.sum(0).clamp_min(1)     # the hit rate of each hop
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["look_targets", "pointing_hits", "pointing_scores"]


def look_targets(attention: torch.Tensor, referents: torch.Tensor) -> torch.Tensor:
    """``(Q, K, h, w)``: the share of each cell of hop k's map covered by its look's
    objects (hop 1: the first look; hops 2..K: the second).

    ``attention (Q, K, h, w)``; ``referents (Q, 2, H, W)`` bool, the first and the second
    look's objects, H and W multiples of h and w (each cell the mean of its pixels).
    """
    k = attention.shape[1]
    target = F.adaptive_avg_pool2d(referents.to(attention.dtype), attention.shape[2:])
    return target[:, [min(j, 1) for j in range(k)]]


def pointing_hits(
    attention: torch.Tensor, referents: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The pointing game (Zhang et al. 2016) for attention hops: ``(hit, has)``, both
    ``(Q, K)`` bool; ``has``: hop k's look has objects (:func:`look_targets` pairs hops
    and looks); ``hit``: and the map's most attended cell holds part of them."""
    target = look_targets(attention, referents).flatten(2)  # (Q, K, h*w)
    has = target.sum(dim=-1) > 0
    peak = attention.flatten(2).argmax(dim=-1, keepdim=True)
    hit = target.gather(2, peak).squeeze(2) > 0
    return hit & has, has


def pointing_scores(hits: torch.Tensor, has: torch.Tensor) -> dict[str, float]:
    """``{"pointing_hop<k>": percent}``: each hop's share of hits among its maps that have
    objects (0 where none has), from the ``(K,)`` counts of :func:`pointing_hits` summed
    over questions."""
    hits, has = hits.tolist(), has.tolist()
    return {
        f"pointing_hop{k + 1}": 100.0 * h / max(n, 1)
        for k, (h, n) in enumerate(zip(hits, has, strict=True))
    }
