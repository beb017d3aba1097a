"""Retrieval scored on random galleries drawn from a larger test set: the protocol of
im2recipe (Salvador et al. 2017), median rank and Recall@K on 10 random subsets of 1K
(and 10K) test pairs, averaged.

Example::

    m = drawn_galleries(img, rec, sizes=(1000, 10000), draws=10, seed=0,
                        prefixes=("im2recipe", "recipe2im"))
    m["1k"]["im2recipe_medr"], m["10k"]["recipe2im_R@1"]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from xmodal._checks import check_positive_int
from xmodal.errors import ParameterError
from xmodal.metrics.retrieval import retrieval_metrics

__all__ = ["drawn_galleries", "size_key"]


def size_key(size: int) -> str:
    """A gallery size as a metrics key: ``1000`` → ``"1k"``, ``10`` → ``"10"``."""
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def drawn_galleries(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    *,
    sizes: Sequence[int],
    draws: int,
    seed: int,
    prefixes: tuple[str, str] = ("i2t", "t2i"),
) -> dict[str, dict[str, float]]:
    """:func:`~xmodal.metrics.retrieval.retrieval_metrics` of ``draws`` random galleries
    of each size in ``sizes``, averaged: ``{size_key(size): metrics}``.

    Args:
        image_emb, text_emb: ``(N, D)``, row ``i`` of one the match of row ``i`` of the
            other.
        sizes: gallery sizes; those over ``N`` are skipped (all of them: the whole set
            is scored once per draw).
        draws: galleries drawn per size, each ``size`` distinct pairs, from
            ``numpy.random.default_rng([seed, size])``.
        prefixes: the names of the image→text and text→image keys (``i2t``, ``t2i``).
    """
    n = len(image_emb)
    if text_emb.shape[0] != n:
        raise ParameterError(
            f"image_emb and text_emb must hold the same number of pairs. "
            f"Found {n} and {text_emb.shape[0]}"
        )
    draws = check_positive_int(draws, "draws")
    out = {}
    for size in sorted({s for s in sizes if s <= n} or {n}):
        rng = np.random.default_rng([seed, size])
        scores = []
        for _ in range(draws):
            idx = torch.from_numpy(np.sort(rng.choice(n, size=size, replace=False)))
            scores.append(retrieval_metrics(image_emb[idx] @ text_emb[idx].T, torch.arange(size)))
        out[size_key(size)] = {
            _renamed(k, prefixes): float(np.mean([s[k] for s in scores])) for k in scores[0]
        }
    return out


def _renamed(key: str, prefixes: tuple[str, str]) -> str:
    for old, new in zip(("i2t_", "t2i_"), prefixes, strict=True):
        if key.startswith(old):
            return f"{new}_{key[len(old) :]}"
    return key
