"""Metrics of generated images: whether a judge classifier sees the attributes their
condition names, whether an image–text embedding finds their caption again (P@1 among a
pool of captions, the R-precision of AttnGAN at rank 1), and how much they vary under one
condition (diversity).

Example::

    both, (colour, shape) = attribute_accuracy(judge(fake), [colours, shapes])  # percent

    mean_pairwise_rms(images.view(n_captions, n_noises, 3, H, W))   # in [0, 1] units
    caption_p_at_1(embed_images(fake), embed_texts(captions))        # percent; chance 1
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from xmodal.errors import ParameterError

__all__ = ["attribute_accuracy", "caption_p_at_1", "mean_pairwise_rms"]


def attribute_accuracy(
    logits: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]
) -> tuple[float, list[float]]:
    """``(all, per_attribute)`` in percent: the items whose every attribute is classified
    right (the argmax of ``logits[a]`` ``(N, K_a)`` equals ``targets[a]`` ``(N,)``), and each
    attribute's accuracy.

    >>> logits = [torch.eye(2), torch.eye(2)]  # both items: classes 0, 1 of each attribute
    >>> attribute_accuracy(logits, [torch.tensor([0, 1]), torch.tensor([0, 0])])
    (50.0, [100.0, 50.0])
    """
    if len(logits) != len(targets) or not logits:
        raise ParameterError(
            f"attribute_accuracy needs one target per attribute. Found: {len(logits)} logits, "
            f"{len(targets)} targets"
        )
    hits = [lg.argmax(-1) == y for lg, y in zip(logits, targets, strict=True)]
    every = hits[0]
    for h in hits[1:]:
        every = every & h

    def percent(ok: torch.Tensor) -> float:
        return 100.0 * float(ok.float().mean())

    return percent(every), [percent(h) for h in hits]


def mean_pairwise_rms(groups: torch.Tensor | Sequence[torch.Tensor]) -> float:
    """``groups`` ``(G, K, ...)``, ``K >= 2`` images each: the RMS pixel distance of every
    pair within a group, averaged over the pairs and then over the groups. A list of groups
    of their own sizes ``[(K_g, ...), ...]``: the mean of each group's value.

    >>> mean_pairwise_rms(torch.stack([torch.zeros(4), torch.ones(4)])[None])
    1.0
    """
    if not isinstance(groups, torch.Tensor):
        return float(torch.tensor([mean_pairwise_rms(g[None]) for g in groups]).mean())
    if groups.dim() < 3 or groups.shape[1] < 2:
        raise ParameterError(
            f"groups must have shape (G, K >= 2, ...). Found: {tuple(groups.shape)}"
        )
    flat = groups.flatten(2).double()  # (G, K, P)
    d = torch.cdist(flat, flat) / flat.shape[-1] ** 0.5  # (G, K, K): RMS distances
    k = flat.shape[1]
    return float(d.sum(dim=(1, 2)).div(k * (k - 1)).mean())


def caption_p_at_1(images: torch.Tensor, texts: torch.Tensor, *, pool: int = 100) -> float:
    """Percent of images ranked first by their own caption among ``pool`` captions.

    ``images`` ``(N, D)`` and ``texts`` ``(N, D)`` are embeddings, row ``i`` of both the
    same pair; image ``i``'s pool is caption ``i`` and the ``pool - 1`` captions after it
    (cyclically). Scores are dot products (cosines for unit vectors); a tie goes to the
    first, its own caption. Chance is ``100 / pool``.
    """
    n = len(images)
    if images.dim() != 2 or texts.shape != images.shape:
        raise ParameterError(
            "images and texts must be (N, D) embeddings of one shape. Found: "
            f"{tuple(images.shape)} and {tuple(texts.shape)}"
        )
    if not 1 <= pool <= n:
        raise ParameterError(f"pool must be in [1, {n}] (N). Found: {pool}")
    hits = 0
    for i in range(n):  # one (pool, D) @ (D,) each: the scores do not depend on N
        ids = [(i + k) % n for k in range(pool)]
        hits += int((texts[ids] @ images[i]).argmax()) == 0
    return 100.0 * hits / n
