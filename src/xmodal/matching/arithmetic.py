"""Embedding arithmetic and tags in an image–text joint space, and their world measures.

In a joint embedding, words and images live in one space, so a word's vector can be added
to or taken away from an image's (Kiros et al., 2014: the image of a blue car − "blue" +
"red" lands near red cars). :func:`embedding_arithmetic` makes such a query;
:func:`arithmetic_success` measures it on scenes whose ground truth is known: for an
image whose only object is (colour ``c``, shape ``s``), ``image − s + s'`` should retrieve
an image holding a (``c``, ``s'``) object among its top ``k``.

Tags are single words searched like captions: tag → images ranks the gallery by a word's
vector, image → tags ranks the words by an image's. :func:`tag_metrics` scores both
against the attribute words each image really has. :func:`world_space_metrics` runs both
on a world split, where each image's objects are known.

Example::

    q = embedding_arithmetic(img_emb[i], minus=[word["circle"]], plus=[word["square"]])
    scores, ids = VectorIndex.build(img_emb).search(q, k=5)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from xmodal.errors import ParameterError

__all__ = ["arithmetic_success", "embedding_arithmetic", "tag_metrics", "world_space_metrics"]


def _vector(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 1 or not x.is_floating_point():
        found = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ParameterError(f"{name} must be a 1-d float tensor (D,). Found: {found}")
    return x


def embedding_arithmetic(query, minus=(), plus=()) -> torch.Tensor:
    """``normalize(query − Σ minus + Σ plus)``: the unit vector to search with.

    ``query`` and every term are ``(D,)`` vectors of the same space (unit vectors from a
    joint embedding). With no term the query comes back normalised.
    """
    q = _vector(query, "query").clone()
    for sign, terms, name in ((-1.0, minus, "minus"), (1.0, plus, "plus")):
        for j, t in enumerate(terms):
            t = _vector(t, f"{name}[{j}]")
            if t.shape != q.shape:
                raise ParameterError(
                    f"{name}[{j}] has dimension {t.shape[0]} but the query has {q.shape[0]}"
                )
            q += sign * t
    if float(q.norm()) == 0.0:
        raise ParameterError("the arithmetic cancels out to the zero vector: nothing to search")
    return F.normalize(q, dim=0)


def _chance_in_top(k: int, n: int, m: int) -> float:
    """P(at least one of ``k`` images drawn without replacement from ``n`` is one of ``m``)."""
    k = min(k, n)
    if m <= 0:
        return 0.0
    if n - m < k:
        return 1.0
    # 1 - C(n-m, k) / C(n, k), as a product to stay in floats.
    miss = math.prod((n - m - j) / (n - j) for j in range(k))
    return 1.0 - miss


def arithmetic_success(
    image_emb: torch.Tensor,
    word_emb: Mapping[str, torch.Tensor],
    objects: Sequence[Sequence[tuple[str, str]]],
    shapes: Sequence[str],
    *,
    k: int = 5,
) -> dict[str, float]:
    """The world's arithmetic test: ``image − s + s'`` finds a (``c``, ``s'``) image.

    Args:
        image_emb: ``(N, D)`` unit vectors of the gallery images.
        word_emb: the unit vector of each shape word (a one-word text through the model).
        objects: per gallery image, its objects as ``(colour, shape)`` pairs.
        shapes: the shape words; every image with exactly one object of colour ``c`` and
            shape ``s`` (one of them) is a query for every other shape ``s'``.
        k: how many results count.

    The query image itself is left out of its results. Returns ``arithmetic_top{k}``, the
    % of queries with a (``c``, ``s'``) object among the top ``k``; ``arithmetic_chance``,
    the same % expected of ``k`` images drawn at random; ``arithmetic_queries``.
    """
    if image_emb.ndim != 2 or len(image_emb) != len(objects):
        raise ParameterError(
            f"image_emb must be (N, D) with one row per entry of objects ({len(objects)}). "
            f"Found shape {tuple(image_emb.shape)}"
        )
    missing = [s for s in shapes if s not in word_emb]
    if missing:
        raise ParameterError(f"word_emb has no vector for the shapes {missing}")
    holders: dict[tuple[str, str], set[int]] = {}
    for i, objs in enumerate(objects):
        for pair in set(objs):
            holders.setdefault(tuple(pair), set()).add(i)
    rows, queries, wanted = [], [], []
    for i, objs in enumerate(objects):
        if len(objs) != 1 or objs[0][1] not in shapes:  # no word to take away
            continue
        colour, shape = objs[0]
        for other in shapes:
            if other == shape:
                continue
            rows.append(i)
            queries.append(embedding_arithmetic(image_emb[i], [word_emb[shape]], [word_emb[other]]))
            wanted.append((colour, other))
    if not queries:
        return {f"arithmetic_top{k}": 0.0, "arithmetic_chance": 0.0, "arithmetic_queries": 0}
    sims = torch.stack(queries) @ image_emb.T  # (Q, N)
    sims[torch.arange(len(rows)), torch.tensor(rows)] = -math.inf  # not the query image
    top = sims.topk(min(k, len(objects) - 1), dim=1).indices.tolist()
    n = len(objects) - 1
    hits, chance = 0, 0.0
    for i, pair, found in zip(rows, wanted, top, strict=True):
        good = holders.get(pair, set()) - {i}
        hits += any(j in good for j in found)
        chance += _chance_in_top(k, n, len(good))
    q = len(queries)
    return {
        f"arithmetic_top{k}": 100.0 * hits / q,
        "arithmetic_chance": 100.0 * chance / q,
        "arithmetic_queries": q,
    }


def tag_metrics(
    image_emb: torch.Tensor,
    tag_emb: torch.Tensor,
    tags: Sequence[str],
    image_tags: Sequence[set[str]],
    *,
    k: int = 10,
) -> dict[str, float]:
    """Word ↔ image retrieval scored against the words each image really has.

    ``tag_emb (T, D)``: the unit vector of each word of ``tags``; ``image_tags[i]``: the
    words true of image ``i`` (its objects' colours and shapes).

    - ``tag_i2t_rprec``: image → tags, R-precision: of an image's top ``r`` words, ``r``
      the number of its true words, the % that are true (100 when the true words rank
      first).
    - ``tag_t2i_P@{k}``: tag → images, the % of a word's top ``k`` images that have it
      (of all of them in a gallery under ``k``), averaged over the words some gallery
      image has.
    """
    if tag_emb.shape[0] != len(tags) or len(image_tags) != len(image_emb):
        raise ParameterError(
            f"tag_emb must have one row per tag ({len(tags)}) and image_tags one set per "
            f"image ({len(image_emb)}). Found {tuple(tag_emb.shape)} and {len(image_tags)}"
        )
    sims = image_emb @ tag_emb.T  # (N, T)
    order = sims.argsort(dim=1, descending=True).tolist()
    rprec = []
    for ranked, truth in zip(order, image_tags, strict=True):
        truth = set(truth) & set(tags)
        if truth:
            rprec.append(sum(tags[t] in truth for t in ranked[: len(truth)]) / len(truth))
    top = sims.T.topk(min(k, len(image_emb)), dim=1).indices.tolist()  # (T, k)
    precision = [
        sum(tag in image_tags[j] for j in found) / len(found)
        for tag, found in zip(tags, top, strict=True)
        if any(tag in t for t in image_tags)
    ]
    return {
        "tag_i2t_rprec": 100.0 * sum(rprec) / max(len(rprec), 1),
        f"tag_t2i_P@{k}": 100.0 * sum(precision) / max(len(precision), 1),
    }


def world_space_metrics(image_emb: torch.Tensor, world, split: str, embed) -> dict[str, float]:
    """:func:`arithmetic_success` (``image − s + s'``, top 5) and :func:`tag_metrics` (top
    10) on the scenes ``0 .. N - 1`` of a world split, whose images' vectors are
    ``image_emb (N, D)``. The words are the world's colours and shapes that ``embed.vocab``
    holds, each embedded as a one-word text by ``embed.texts``
    (:class:`~xmodal.matching.gallery.Embedder`); the truth is each scene's objects.

        >>> world_space_metrics(img_emb, world, "test", embed)  # doctest: +SKIP
        {'arithmetic_top5': 95.2, 'arithmetic_chance': 29.0, ..., 'tag_t2i_P@10': 100.0}
    """
    from xmodal.text.vocab import UNK_ID
    from xmodal.world.schema import COLOURS, SHAPES

    scenes = [world.scene(split, i, audio=False, questions=False) for i in range(len(image_emb))]
    objects = [[(o.colour, o.shape) for o in s.objects] for s in scenes]
    known = [w for w in (*COLOURS, *SHAPES) if embed.vocab.token_to_id(w) != UNK_ID]
    shapes = [s for s in SHAPES if s in known]
    tag_emb = embed.texts(known)
    out = arithmetic_success(image_emb, dict(zip(known, tag_emb, strict=True)), objects, shapes)
    truth = [{w for pair in objs for w in pair} for objs in objects]
    out.update(tag_metrics(image_emb, tag_emb, known, truth, k=10))
    return out
