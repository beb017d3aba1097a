"""Where a model looked against where the objects are: attention maps scored on the
objects' masks.

:func:`look_targets` puts object masks on an attention map's grid (the share of each cell
the objects cover); :func:`pointing_hits` is the pointing game of Zhang et al. (2016):
a map hits when its most attended cell holds part of the objects. Both take the maps of
several hops per question (a stacked-attention VQA model's) and the masks of the two
looks a question makes (:func:`xmodal.world.language.question_referents`): hop 1 is held
to the first look, hops 2..K to the second.

For sound source localization, the public protocol of LVS and EZ-VSL:
:func:`binarize_maps` (min-max, then the median or half the range), :func:`ciou` per
image and :func:`ciou_summary` (cIoU >= 0.5 and the AUC over thresholds 0 .. 1);
:func:`map_pointing`, the pointing game of a map; and SLAVC's open-set test with sounds
that have no source in the picture: :func:`map_confidence` and :func:`detection_scores`
(AP and max-F1 over pairs with and without a source).

Example:
    >>> hit, has = pointing_hits(attention, referents)   # (Q, K) bool each
    >>> 100.0 * hit.sum(0) / has.sum(0).clamp_min(1)     # the hit rate of each hop
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xmodal.errors import ParameterError

__all__ = [
    "binarize_maps",
    "ciou",
    "ciou_summary",
    "detection_scores",
    "look_targets",
    "map_confidence",
    "map_pointing",
    "pointing_hits",
    "pointing_scores",
]


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


# ----------------------------------------------------------------------------- sound sources


def binarize_maps(maps: torch.Tensor, rule: str = "median") -> torch.Tensor:
    """Sound source localization maps ``(N, H, W)`` (already at the image's size) made
    0/1 as the public evaluation code does: each map min-max normalised, then 1 where it
    exceeds its threshold. ``rule="median"`` (LVS and EZ-VSL: the value at sorted
    position ``H * W // 2``, which assumes the source covers half the image) or ``"half"``
    (0.5 of the normalised range: the world's exact-mask protocol, for sources smaller
    than half the image). A constant map is all 0."""
    from xmodal._checks import as_signal, check_choice

    maps = as_signal(maps, "maps", min_ndim=3)
    check_choice(rule, "rule", ("median", "half"))
    if maps.ndim != 3:
        raise ParameterError(f"maps must be (N, H, W). Found shape {tuple(maps.shape)}")
    flat = maps.flatten(1).double()
    low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    norm = (flat - low) / (high - low).clamp_min(1e-12)
    if rule == "median":
        threshold = norm.sort(1).values[:, flat.shape[1] // 2 : flat.shape[1] // 2 + 1]
    else:
        threshold = torch.full_like(low, 0.5)
    return (norm > threshold).reshape(maps.shape)


def ciou(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """The consensus IoU of LVS (Chen et al., 2021) per image: ``sum(pred * gt) /
    (sum(gt) + sum(pred * (gt == 0)))`` for 0/1 maps ``(N, H, W)``; an image without a
    source (``sum(gt) == 0``) scores 0."""
    if pred.shape != truth.shape or pred.ndim != 3:
        raise ParameterError(
            f"pred and truth must both be (N, H, W). Found {tuple(pred.shape)} and "
            f"{tuple(truth.shape)}"
        )
    p, g = pred.double().flatten(1), truth.double().flatten(1)
    denominator = g.sum(1) + (p * (g == 0)).sum(1)
    return (p * g).sum(1) / denominator.clamp_min(1e-12)


def ciou_summary(cious: torch.Tensor) -> dict[str, float]:
    """The public protocol's numbers from per-image cIoU: ``ciou@0.5``, the share (percent)
    of images with cIoU >= 0.5, and ``auc``, the area (trapezoids, as scikit-learn's
    ``auc``) under the share of images with cIoU >= t for t = 0, 0.05, ..., 1."""
    cious = torch.as_tensor(cious, dtype=torch.float64).flatten()
    if not len(cious):
        raise ParameterError("cious is empty")
    # The thresholds as the reference code makes them (0.05 * i, so 0.15 is a hair above
    # 0.15), compared with >= as it does.
    t = torch.tensor([0.05 * i for i in range(21)], dtype=torch.float64)
    share = (cious[None, :] >= t[:, None]).double().mean(1)
    return {"ciou@0.5": 100.0 * float((cious >= 0.5).double().mean()),
            "auc": float(torch.trapezoid(share, t))}  # fmt: skip


def map_pointing(maps: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """The pointing game for localization maps: ``(N,)`` bool, the peak of each map
    ``(N, H, W)`` (its first, in row-major order, on ties) falls on the ground truth
    ``(N, H, W)`` (> 0)."""
    if maps.shape != truth.shape or maps.ndim != 3:
        raise ParameterError(
            f"maps and truth must both be (N, H, W). Found {tuple(maps.shape)} and "
            f"{tuple(truth.shape)}"
        )
    peak = maps.flatten(1).argmax(1, keepdim=True)
    return truth.flatten(1).gather(1, peak)[:, 0] > 0


def map_confidence(scores: torch.Tensor) -> torch.Tensor:
    """SLAVC's confidence that a map ``(N, H, W)`` shows a source: the mean of its top
    quarter of values (the scores on an absolute scale, not normalised per map, so a
    weak map stays weak), ``(N,)``."""
    flat = scores.flatten(1).double()
    k = (flat.shape[1] + 3) // 4  # SLAVC's [-n // 4:] slice: the top ceil(n / 4)
    return flat.topk(k, dim=1).values.mean(1)


def _precision_recall(has, cious, conf, threshold, ciou_threshold):
    detected = conf >= threshold
    good = has & (cious >= ciou_threshold)
    tp = int((detected & good).sum())
    fp = int((detected & ~good).sum())  # a source in the wrong place, or none there at all
    fn = int((~detected & has).sum())
    precision = 1.0 if tp + fp == 0 else tp / (tp + fp)
    recall = 1.0 if tp + fn == 0 else tp / (tp + fn)
    return precision, recall


def detection_scores(
    cious: torch.Tensor, confidences: torch.Tensor, has_source: torch.Tensor,
    ciou_threshold: float = 0.5,
) -> dict[str, float]:  # fmt: skip
    """SLAVC's open-set localization (Mo & Morgado, 2022): pairs with a source
    (``has_source``) and pairs without (silence, another scene's sound) each give a map
    with a ``confidence`` (:func:`map_confidence`); a pair is detected when its confidence
    reaches a threshold, and a detection is right when the pair has a source and its
    ``ciou`` reaches ``ciou_threshold``. Returns ``ap`` (percent; SLAVC's
    ``EvaluatorFull.calc_ap``: thresholds at every ``max(1, n // 200)``-th sorted
    confidence from the top, the largest left out, precision made monotone, summed over
    the recall steps) and ``max_f1`` (percent; the best F1 over every confidence as the
    threshold: SLAVC prints F1 at ten of them).
    """
    cious = torch.as_tensor(cious, dtype=torch.float64).flatten()
    conf = torch.as_tensor(confidences, dtype=torch.float64).flatten()
    has = torch.as_tensor(has_source, dtype=torch.bool).flatten()
    if not len(conf) == len(cious) == len(has) or len(conf) < 2:
        raise ParameterError(
            "cious, confidences and has_source must have the same length, at least 2. "
            f"Found {len(cious)}, {len(conf)} and {len(has)}"
        )
    ordered = conf.sort().values
    skip = max(1, len(conf) // 200)
    curve = [_precision_recall(has, cious, conf, float(t), ciou_threshold)
             for t in ordered[:-1].flip(0)[::skip]]  # fmt: skip
    precision = [p for p, _ in curve]
    recall = [r for _, r in curve]
    best = [max(precision[i:]) for i in range(len(precision))]
    ap = sum(best[i] * (recall[i + 1] - recall[i]) for i in range(len(best) - 1))
    f1 = []
    for t in ordered.unique():
        p, r = _precision_recall(has, cious, conf, float(t), ciou_threshold)
        f1.append(0.0 if p + r == 0 else 2 * p * r / (p + r))
    return {"ap": 100.0 * ap, "max_f1": 100.0 * max(f1)}
