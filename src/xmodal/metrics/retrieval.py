"""Cross-modal retrieval metrics, the standard protocol of VSE++ and SCAN.

From a similarity matrix ``(n_images, n_texts)`` and the image of each text
(``text_image``, ``(n_texts,)``): image→text and text→image Recall@K (percent), median and
mean rank. A rank is 1-based: the position of the first correct item in the list sorted by
decreasing similarity. An image with several captions is retrieved by its best-ranked
caption. Ties count against the query: a wrong item scoring the same as the correct one
ranks ahead of it, so a constant similarity matrix scores as badly as it should.

Example::

    sims = img_emb @ txt_emb.T                       # (1000, 5000)
    m = retrieval_metrics(sims, text_image)           # text_image[t] = t // 5
    m["i2t_R@1"], m["t2i_R@1"], m["rsum"]
    fold_average(sims_5k, text_image_5k, n_folds=5)   # COCO 5K as 5 folds of 1K
    world_retrieval_ceiling(World(), "test", 1000)     # the best R@1 the world's captions allow
"""

from __future__ import annotations

import numpy as np
import torch

from xmodal._checks import as_signal, check_positive_int
from xmodal.errors import ParameterError

__all__ = [
    "KS",
    "fold_average",
    "near_miss_accuracy",
    "plausible_retrieval_metrics",
    "retrieval_ceiling",
    "retrieval_metrics",
    "retrieval_ranks",
    "world_near_misses",
    "world_retrieval_ceiling",
    "world_truth",
]

KS = (1, 5, 10)


def _check(similarity, text_image) -> tuple[torch.Tensor, torch.Tensor]:
    sims = as_signal(similarity, "similarity", min_ndim=2)
    if sims.ndim != 2:
        raise ParameterError(
            f"similarity must have shape (n_images, n_texts). Found {tuple(sims.shape)}"
        )
    if not isinstance(text_image, torch.Tensor):
        text_image = torch.as_tensor(np.asarray(text_image))
    n_images, n_texts = sims.shape
    if text_image.shape != (n_texts,) or text_image.is_floating_point():
        raise ParameterError(
            f"text_image must be an integer tensor of shape ({n_texts},) (n_texts). "
            f"Found {text_image.dtype} {tuple(text_image.shape)}"
        )
    text_image = text_image.to(torch.long).to(sims.device)
    if n_texts and (int(text_image.min()) < 0 or int(text_image.max()) >= n_images):
        raise ParameterError(
            f"text_image must hold image indices in [0, {n_images}). "
            f"Found {int(text_image.min())}..{int(text_image.max())}"
        )
    counts = torch.bincount(text_image, minlength=n_images)
    if bool((counts == 0).any()):
        missing = (counts == 0).nonzero()[0].item()
        raise ParameterError(f"image {missing} has no text in text_image: it cannot be retrieved")
    return sims, text_image


def retrieval_ranks(similarity, text_image) -> tuple[torch.Tensor, torch.Tensor]:
    """1-based ranks ``(i2t (n_images,), t2i (n_texts,))`` of the first correct item."""
    sims, text_image = _check(similarity, text_image)
    n_images, n_texts = sims.shape
    correct = text_image[None, :] == torch.arange(n_images, device=sims.device)[:, None]
    best = sims.masked_fill(~correct, float("-inf")).max(dim=1).values  # (n_images,)
    i2t = 1 + ((sims >= best[:, None]) & ~correct).sum(dim=1)
    own = sims[text_image, torch.arange(n_texts, device=sims.device)]  # (n_texts,)
    t2i = 1 + ((sims >= own[None, :]) & ~correct).sum(dim=0)
    return i2t.cpu(), t2i.cpu()


def _summary(ranks: torch.Tensor, prefix: str) -> dict[str, float]:
    r = ranks.double()
    out = {f"{prefix}_R@{k}": 100.0 * float((r <= k).double().mean()) for k in KS}
    # VSE++: floor(median(0-based rank)) + 1; mean over 1-based ranks.
    out[f"{prefix}_medr"] = float(np.floor(np.median((r - 1).numpy())) + 1)
    out[f"{prefix}_meanr"] = float(r.mean())
    return out


def retrieval_metrics(similarity, text_image) -> dict[str, float]:
    """Recall@1/5/10 (percent), median and mean rank both ways, and ``rsum``.

    Args:
        similarity: ``(n_images, n_texts)`` scores, higher is closer.
        text_image: ``(n_texts,)`` integer image index of each text; every image needs one.
    Returns:
        ``i2t_R@1``, ``i2t_R@5``, ``i2t_R@10``, ``i2t_medr``, ``i2t_meanr``, the same with
        ``t2i_``, and ``rsum`` (the six recalls added).
    """
    i2t, t2i = retrieval_ranks(similarity, text_image)
    out = {**_summary(i2t, "i2t"), **_summary(t2i, "t2i")}
    out["rsum"] = sum(out[f"{p}_R@{k}"] for p in ("i2t", "t2i") for k in KS)
    return out


def fold_average(similarity, text_image, *, n_folds: int = 5) -> dict[str, float]:
    """:func:`retrieval_metrics` on ``n_folds`` consecutive blocks of images (each with its
    own texts as the gallery), averaged: COCO's "1K test" figures from its 5K test set.

    The images must split evenly into the folds.
    """
    sims, text_image = _check(similarity, text_image)
    n_folds = check_positive_int(n_folds, "n_folds")
    n_images = sims.shape[0]
    if n_images % n_folds:
        raise ParameterError(
            f"n_folds must divide the {n_images} images evenly. Found: n_folds={n_folds}"
        )
    size = n_images // n_folds
    folds = []
    for f in range(n_folds):
        texts = ((text_image >= f * size) & (text_image < (f + 1) * size)).nonzero()[:, 0]
        block = sims[f * size : (f + 1) * size][:, texts]
        folds.append(retrieval_metrics(block, text_image[texts] - f * size))
    return {k: float(np.mean([m[k] for m in folds])) for k in folds[0]}


def retrieval_ceiling(true_of, text_image) -> dict[str, float]:
    """The R@1 an ideal model reaches when texts say less than their image shows.

    ``true_of`` ``(n_images, n_texts)`` bool: text ``t`` is true of image ``i`` (on the
    world, :meth:`World.caption_is_true`). The ideal model knows exactly that and scores
    a pair by ``P(image | text)`` under the assumption that a text comes from any image it
    is true of alike: ``true_of[i, t] / n_t``, ``n_t`` the images text ``t`` is true of.
    Ties are broken at random, so the result is that model's expected R@1:

    - ``t2i_R@1``: mean over texts of ``1 / n_t`` (0 for a text not true of its image);
    - ``i2t_R@1``: mean over images of the share of their own texts among the texts they
      score highest (the most specific texts true of them);

    plus ``texts_true_of_one_image`` (%) and ``median_images_per_text``. A learned model's
    R@1 can only pass these by reading more than the texts say (how a generator words
    what it sees), so they bound what retrieval can reach on such data.
    """
    truth = torch.as_tensor(np.asarray(true_of))
    if truth.ndim != 2 or truth.dtype != torch.bool:
        raise ParameterError(
            f"true_of must be a bool matrix (n_images, n_texts). Found {truth.dtype} "
            f"{tuple(truth.shape)}"
        )
    _, text_image = _check(truth.float(), text_image)
    n_images, n_texts = truth.shape
    n = truth.sum(0)  # (n_texts,)
    texts = torch.arange(n_texts)
    own = truth[text_image, texts].float()
    t2i = (own / n.clamp(min=1)).mean()
    post = truth.float() / n.clamp(min=1).float()  # (n_images, n_texts)
    best = post.max(1, keepdim=True).values
    top = (post == best) & (best > 0)
    mine = text_image[None, :] == torch.arange(n_images)[:, None]
    i2t = ((top & mine).sum(1).float() / top.sum(1).clamp(min=1).float()).mean()
    return {
        "i2t_R@1": 100.0 * float(i2t),
        "t2i_R@1": 100.0 * float(t2i),
        "texts_true_of_one_image": 100.0 * float((n == 1).float().mean()),
        "median_images_per_text": float(n.float().median()),
    }


def _plausible_summary(sims: torch.Tensor, truth: torch.Tensor, prefix: str) -> dict:
    """Rows are queries, columns the gallery; ``truth`` marks the plausible matches."""
    n_pos = truth.sum(1)
    has = n_pos > 0
    sims, truth, n_pos = sims[has].double(), truth[has], n_pos[has]
    out = {f"{prefix}_queries_without_match": int((~has).sum())}
    if not len(sims):
        return {**out, f"{prefix}_R@1": float("nan"), f"{prefix}_R-P": float("nan"),
                f"{prefix}_mAP@R": float("nan")}  # fmt: skip
    rel = _pessimistic_relevance(sims, truth)  # (q, n) 0/1 in rank order
    k = torch.arange(1, rel.shape[1] + 1, dtype=torch.float64)
    precision = rel.cumsum(1) / k
    within = k[None, :] <= n_pos[:, None]  # the first R ranks
    r = n_pos.double()
    out[f"{prefix}_R@1"] = 100.0 * float(rel[:, 0].mean())
    out[f"{prefix}_R-P"] = 100.0 * float(((rel * within).sum(1) / r).mean())
    out[f"{prefix}_mAP@R"] = 100.0 * float(((precision * rel * within).sum(1) / r).mean())
    return out


def _pessimistic_relevance(sims: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """``(q, n)`` float: 1 where the item at each rank is plausible, the items ordered by
    decreasing score and, among equal scores, the implausible ones first."""
    out = torch.empty(sims.shape, dtype=torch.float64)
    for q in range(len(sims)):
        order = np.lexsort((truth[q].numpy(), -sims[q].numpy()))
        out[q] = truth[q, torch.from_numpy(order)].double()
    return out


def plausible_retrieval_metrics(similarity, true_of) -> dict[str, float]:
    """Retrieval judged against every plausible match (ECCV Caption, Chun et al. 2022).

    ``true_of`` ``(n_images, n_texts)`` bool: text ``t`` is true of image ``i`` (on the
    world, :meth:`World.caption_is_true`); every such pair is a right answer, not only the
    image a text was written for. Both ways (``t2i``: each text ranks the images; ``i2t``:
    each image ranks the texts), in percent:

    - ``R@1``: the top item is plausible (ECCV Caption's "R@1" with its positives);
    - ``R-P``: R-Precision, the plausible share of the top ``R`` items, ``R`` the query's
      number of plausible matches;
    - ``mAP@R``: ``1/R * sum_{k<=R} P(k) * rel(k)``, as the ECCV Caption code;

    and ``queries_without_match``, queries with no plausible item (left out of the means).
    Ties count against the query, as in :func:`retrieval_ranks`.
    """
    sims = torch.as_tensor(np.asarray(similarity) if not torch.is_tensor(similarity)
                           else similarity).detach().cpu()  # fmt: skip
    truth = torch.as_tensor(np.asarray(true_of) if not torch.is_tensor(true_of)
                            else true_of).cpu()  # fmt: skip
    if truth.dtype != torch.bool or truth.shape != sims.shape or sims.ndim != 2:
        raise ParameterError(
            f"true_of must be a bool matrix shaped as similarity {tuple(sims.shape)}. "
            f"Found {truth.dtype} {tuple(truth.shape)}"
        )
    if not torch.isfinite(sims).all():
        raise ParameterError("similarity has values that are not finite")
    return {**_plausible_summary(sims, truth, "i2t"), **_plausible_summary(sims.T, truth.T, "t2i")}


def world_truth(world, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(true_of (n, n_texts) bool, text_image (n_texts,))`` of the first ``n`` scenes of
    a world split, each with all its captions in order: which image each caption is true
    of (the world's own caption parser). Slow: about a minute for the 1K test split."""
    from xmodal.world import language

    n = check_positive_int(n, "n")
    scenes = [world.scene(split, i, audio=False, questions=False) for i in range(n)]
    facts = [language.caption_facts(c) for s in scenes for c in s.captions]
    truth = torch.tensor(
        [
            [language.facts_hold(f, s.objects, s.place, margin=world.margin) for f in facts]
            for s in scenes
        ]
    )
    return truth, torch.tensor([i for i, s in enumerate(scenes) for _ in s.captions])


def world_retrieval_ceiling(world, split: str, n: int) -> dict[str, float]:
    """:func:`retrieval_ceiling` of the first ``n`` scenes of a world split, each with all
    its captions (:func:`world_truth`): the R@1 of a model that knows exactly which of the
    ``n`` images each caption is true of.

        >>> world_retrieval_ceiling(World(), "test", 1000)["t2i_R@1"]  # doctest: +SKIP
        26.8
    """
    return retrieval_ceiling(*world_truth(world, split, n))


def near_miss_accuracy(true_scores, miss_scores, kinds=None) -> dict[str, float]:
    """How often an image scores its own caption above the caption's near miss (the same
    caption with one word changed so it is false: ARO's test of whether a model reads
    more than a bag of words, Yuksekgonul et al., 2023): ``{"all": percent}``, and with
    ``kinds`` (one name per pair) the percent of each kind too. Ties count as failures;
    chance is 50.

        >>> near_miss_accuracy(torch.tensor([0.9, 0.2]), torch.tensor([0.1, 0.5]), ["a", "b"])
        {'all': 50.0, 'a': 100.0, 'b': 0.0}
    """
    true_scores = as_signal(true_scores, "true_scores", min_ndim=1)
    miss_scores = as_signal(miss_scores, "miss_scores", min_ndim=1)
    if true_scores.ndim != 1 or true_scores.shape != miss_scores.shape or not len(true_scores):
        raise ParameterError(
            "true_scores and miss_scores must be two vectors of one length > 0. Found "
            f"{tuple(true_scores.shape)} and {tuple(miss_scores.shape)}"
        )
    won = (true_scores > miss_scores).double()
    out = {"all": 100.0 * float(won.mean())}
    if kinds is not None:
        kinds = list(kinds)
        if len(kinds) != len(won):
            raise ParameterError(
                f"kinds must name each of the {len(won)} pairs. Found {len(kinds)} names"
            )
        for kind in dict.fromkeys(kinds):
            mine = torch.tensor([k == kind for k in kinds])
            out[kind] = 100.0 * float(won[mine].mean())
    return out


def world_near_misses(world, split: str, n: int) -> tuple[list, list, list, list]:
    """``(image, caption, near miss, kind)`` lists for every caption of the first ``n``
    scenes of a world split that has a near miss (:meth:`~xmodal.world.World.near_misses`,
    kinds of :func:`~xmodal.world.language.near_miss_kind`)."""
    from xmodal.world.language import near_miss_kind

    n = check_positive_int(n, "n")
    out: tuple[list, list, list, list] = ([], [], [], [])
    for i in range(n):
        scene = world.scene(split, i, audio=False, questions=False)
        for caption, miss in zip(scene.captions, world.near_misses(scene), strict=True):
            if miss is not None:
                for values, value in zip(out, (i, caption, miss, near_miss_kind(caption, miss)),
                                         strict=True):  # fmt: skip
                    values.append(value)
    return out
