"""What a caption says about a world scene, and where its words looked.

Read by the world's own caption parser (:func:`xmodal.world.language.caption_facts`), so
a paraphrase scores like the phrasing it paraphrases; the world's ground truth (each
object's colour, shape and mask) is the answer key:

- :func:`content_precision`: the fraction of captions that name a colour-shape pair and
  are right about every pair they name.
- :func:`attention_grounding`: the fraction of colour and shape words whose attention
  map peaks on an object of that colour or shape; :func:`grounding_chance` is the same
  fraction for a peak placed uniformly at random.
- :func:`held_out_recall`: on the compositional split, how often the caption names a
  held-out colour-shape pair that the image shows.

Example:
    >>> content_precision(["a red circle", "a blue circle"], [[red_circle], [red_circle]])
    0.5
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from xmodal._checks import as_signal, check_bool
from xmodal.errors import ParameterError
from xmodal.metrics._checks import check_lengths, check_strings
from xmodal.world.language import caption_facts, word_attribute
from xmodal.world.schema import COLOURS, SHAPES, WorldObject

__all__ = [
    "attention_grounding",
    "content_precision",
    "grounding_chance",
    "held_out_recall",
    "world_caption_metrics",
]


# ------------------------------------------------------------------- world content metrics


def _check_objects(objects, n: int, against: str) -> list[list[WorldObject]]:
    if isinstance(objects, (str, WorldObject)) or not isinstance(objects, Sequence):
        raise ParameterError(
            "objects must be a sequence with one list of WorldObjects per image. "
            f"Found: {type(objects).__name__}"
        )
    check_lengths(n, len(objects), against, "objects")
    out = []
    for i, objs in enumerate(objects):
        if not isinstance(objs, Sequence) or not all(isinstance(o, WorldObject) for o in objs):
            raise ParameterError(f"objects[{i}] must be a list of WorldObjects. Found: {objs!r}")
        out.append(list(objs))
    return out


def _pairs_named(caption: str) -> tuple[set, set]:
    """(colour, shape) pairs a caption says are present, and those it says are absent."""
    present, absent = set(), set()
    for m in caption_facts(caption).mentions:
        if m.colour is not None and m.shape is not None:
            (absent if m.count == 0 else present).add((m.colour, m.shape))
    return present, absent


def content_precision(captions: Sequence[str], objects: Sequence[Sequence[WorldObject]]) -> float:
    """The fraction of captions that name a colour-shape pair and get every pair right.

    A caption is precise when it says that at least one (colour, shape) pair is there
    ("a red circle", "two big blue squares", "the green cross") and every pair it names
    is right: pairs said to be there are among the image's objects, pairs said to be
    absent ("no red circles") are not. Sizes, counts, relations and places are not
    checked. A caption that names no pair ("two shapes", "a red thing") is not precise:
    the score asks for content, as a caption model is asked for it.

    Args:
        captions: ``(N,)`` one caption per image.
        objects: ``(N, K_i)`` the objects of each image (a world scene's ``objects``).

    Returns:
        A fraction in [0, 1].

    Example:
        >>> content_precision(["a red circle", "a blue circle", "two things"],
        ...                   [[red_circle], [red_circle], [red_circle]])
        0.3333333333333333
    """
    captions = check_strings(captions, "captions")
    if not captions:
        raise ParameterError("captions is empty: there is nothing to score")
    objects = _check_objects(objects, len(captions), "captions")
    precise = 0
    for caption, objs in zip(captions, objects, strict=True):
        present, absent = _pairs_named(caption)
        there = {(o.colour, o.shape) for o in objs}
        precise += bool(present) and present <= there and not (absent & there)
    return precise / len(captions)


def held_out_recall(
    captions: Sequence[str],
    objects: Sequence[Sequence[WorldObject]],
    held_out: Sequence[tuple[str, str]],
) -> float:
    """How often a caption names a held-out colour-shape pair its image shows.

    Over every (image, held-out pair present in the image), the fraction whose caption
    says the pair is there (a mention with that colour and that shape, "a red circle",
    "two red circles"; "no red circles" does not count). On the compositional split of
    a ``World(compositional=True)``, whose every image shows a held-out pair, this is
    the zero-shot recall of combinations never seen in training.

    Args:
        captions: ``(N,)`` one caption per image.
        objects: ``(N, K_i)`` the objects of each image.
        held_out: the (colour, shape) pairs, e.g. ``world.config.held_out``.

    Returns:
        A fraction in [0, 1]; NaN, with a warning, when no image shows a held-out pair.
    """
    captions = check_strings(captions, "captions")
    if not captions:
        raise ParameterError("captions is empty: there is nothing to score")
    objects = _check_objects(objects, len(captions), "captions")
    if isinstance(held_out, str) or not isinstance(held_out, Sequence) or not held_out:
        raise ParameterError(
            f"held_out must be a non-empty sequence of (colour, shape) pairs. Found: {held_out!r}"
        )
    pairs = set()
    for pair in held_out:
        if not (
            isinstance(pair, Sequence)
            and len(pair) == 2
            and pair[0] in COLOURS
            and pair[1] in SHAPES
        ):
            raise ParameterError(
                f"held_out must hold (colour, shape) pairs such as ('red', 'circle'). "
                f"Found: {pair!r}"
            )
        pairs.add(tuple(pair))
    hits = total = 0
    for caption, objs in zip(captions, objects, strict=True):
        shown = pairs & {(o.colour, o.shape) for o in objs}
        if shown:
            named, _ = _pairs_named(caption)
            total += len(shown)
            hits += len(shown & named)
    if total == 0:
        warnings.warn(
            "held_out_recall: no image shows a held-out pair; returning NaN", stacklevel=2
        )
        return math.nan
    return hits / total


# ---------------------------------------------------------------------------- grounding


def _check_masks(masks, objects: list[list[WorldObject]]) -> list[torch.Tensor]:
    """Each image's masks as one ``(K, H, W)`` bool tensor; every image the same (H, W)."""
    if isinstance(masks, str) or not isinstance(masks, (Sequence, torch.Tensor, np.ndarray)):
        raise ParameterError(
            f"masks must hold one (K, H, W) mask stack per image. Found: {type(masks).__name__}"
        )
    check_lengths(len(objects), len(masks), "objects", "masks")
    out, size = [], None
    for i, (m, objs) in enumerate(zip(masks, objects, strict=True)):
        if isinstance(m, (list, tuple)):  # one (H, W) mask per object
            if len(m) != len(objs):
                raise ParameterError(
                    f"masks[{i}] must hold one mask per object ({len(objs)}). Found {len(m)}"
                )
            if not m:  # an image without objects: nothing to look up
                out.append(None)
                continue
            try:
                m = torch.stack([torch.as_tensor(np.asarray(x)) for x in m])
            except RuntimeError as e:
                raise ParameterError(f"masks[{i}]: the object masks differ in size ({e})") from e
        elif isinstance(m, np.ndarray):
            m = torch.from_numpy(m)
        if not isinstance(m, torch.Tensor) or m.ndim != 3 or m.shape[0] != len(objs):
            shape = tuple(m.shape) if hasattr(m, "shape") else type(m).__name__
            raise ParameterError(
                f"masks[{i}] must have shape (K, H, W) with K = {len(objs)} objects. Found {shape}"
            )
        if m.dtype != torch.bool:
            raise ParameterError(f"masks[{i}] must be boolean. Found dtype {m.dtype}")
        if size is None:
            size = tuple(m.shape[1:])
        elif tuple(m.shape[1:]) != size:
            raise ParameterError(
                f"masks[{i}] has size {tuple(m.shape[1:])}; masks[0] has {size}: "
                "every image must have the same size"
            )
        out.append(m)
    return out


def _check_words(words) -> list[list[str]]:
    if isinstance(words, str) or not isinstance(words, Sequence):
        raise ParameterError(
            "words must be a sequence with one list of words per image. "
            f"Found: {type(words).__name__}"
        )
    out = []
    for i, ws in enumerate(words):
        if isinstance(ws, str):
            raise ParameterError(
                f"words[{i}] must be a list of words, not one string (split it: caption.split())"
            )
        out.append(check_strings(ws, f"words[{i}]"))
    if not out:
        raise ParameterError("words is empty: there is nothing to score")
    return out


def _targets(ws: list[str], objs: list[WorldObject], m, present_only: bool) -> list:
    """``(step, region)`` for each word that counts: the union ``(H, W)`` of the masks of
    the objects it names, or None when it names nothing in the image."""
    out = []
    for t, word in enumerate(ws):
        attr = word_attribute(word)
        if attr is None:
            continue
        kind, value = attr
        hits = [k for k, o in enumerate(objs) if getattr(o, kind) == value]
        if hits:
            out.append((t, m[hits].any(0)))
        elif not present_only:
            out.append((t, None))
    return out


def _empty_result(name: str) -> float:
    warnings.warn(f"{name}: no colour or shape word to ground; returning NaN", stacklevel=3)
    return math.nan


def attention_grounding(
    words: Sequence[Sequence[str]],
    alphas,
    objects: Sequence[Sequence[WorldObject]],
    masks,
    *,
    present_only: bool = True,
    return_counts: bool = False,
):
    """The fraction of colour and shape words whose attention peaks on what they name.

    For each generated word that names a colour or a shape
    (:func:`~xmodal.world.language.word_attribute`), its attention map ``(h, w)`` is
    upsampled to the image size ``(H, W)`` by bilinear interpolation (``align_corners=
    False``, as :func:`xmodal.viz.attention.plot_caption_attention` draws it) and its
    highest pixel taken (the first, in row-major order, on a tie). The word is grounded
    when that pixel lies in the mask of an object of that colour (a colour word) or that
    shape (a shape word). Compare with :func:`grounding_chance`.

    Args:
        words: ``(N, L_i)`` the generated words of each image.
        alphas: ``(N, T_i, h, w)`` attention maps, one per generated word (a tensor or
            one tensor per image), ``T_i >= L_i``: extra steps (``<end>``) are ignored.
        objects: ``(N, K_i)`` the objects of each image.
        masks: ``(N, K_i, H, W)`` bool, each object's mask (a world scene's ``masks``).
        present_only: count only words naming a colour or shape some object of the image
            has; with False a word naming something absent counts as not grounded (that
            mixes caption errors, which :func:`content_precision` scores, into grounding).
        return_counts: also return the number of grounded and counted words.

    Returns:
        The fraction in [0, 1] (NaN with a warning when no word counts), or
        ``(fraction, grounded, counted)`` with ``return_counts``.

    Raises:
        ParameterError: lengths that differ, maps or masks of the wrong shape, fewer
            attention steps than words, non-finite attention.
    """
    words = _check_words(words)
    objects = _check_objects(objects, len(words), "words")
    masks = _check_masks(masks, objects)
    present_only = check_bool(present_only, "present_only")
    return_counts = check_bool(return_counts, "return_counts")
    if isinstance(alphas, (str, bytes)) or not isinstance(
        alphas, (Sequence, torch.Tensor, np.ndarray)
    ):
        raise ParameterError(
            f"alphas must hold one (T, h, w) tensor per image. Found: {type(alphas).__name__}"
        )
    check_lengths(len(words), len(alphas), "words", "alphas")
    grounded = counted = 0
    for i, (ws, a, objs, m) in enumerate(zip(words, alphas, objects, masks, strict=True)):
        a = as_signal(torch.as_tensor(a) if isinstance(a, np.ndarray) else a, f"alphas[{i}]")
        if a.ndim != 3 or a.shape[0] < len(ws):
            raise ParameterError(
                f"alphas[{i}] must have shape (T, h, w) with T >= {len(ws)} words. "
                f"Found {tuple(a.shape)}"
            )
        targets = _targets(ws, objs, m, present_only)
        counted += len(targets)
        live = [(t, region) for t, region in targets if region is not None]
        if not live:
            continue
        steps = torch.tensor([t for t, _ in live])
        up = F.interpolate(
            a[steps].unsqueeze(1), size=live[0][1].shape, mode="bilinear", align_corners=False
        )  # (n, 1, H, W)
        peaks = up.flatten(1).argmax(1)  # the first maximum in row-major order
        for (_, region), p in zip(live, peaks.tolist(), strict=True):
            grounded += bool(region.flatten()[p])
    score = grounded / counted if counted else _empty_result("attention_grounding")
    return (score, grounded, counted) if return_counts else score


def grounding_chance(
    words: Sequence[Sequence[str]],
    objects: Sequence[Sequence[WorldObject]],
    masks,
    *,
    present_only: bool = True,
) -> float:
    """:func:`attention_grounding` of a peak placed uniformly at random in the image.

    The expected fraction of grounded words: for each counted word, the fraction of the
    image covered by the objects it names, averaged over the words. An attention model
    is grounded when it beats this.

    Args:
        words, objects, masks, present_only: as for :func:`attention_grounding`.

    Returns:
        A fraction in [0, 1]; NaN with a warning when no word counts.
    """
    words = _check_words(words)
    objects = _check_objects(objects, len(words), "words")
    masks = _check_masks(masks, objects)
    present_only = check_bool(present_only, "present_only")
    total = 0.0
    counted = 0
    for ws, objs, m in zip(words, objects, masks, strict=True):
        for _, region in _targets(ws, objs, m, present_only):
            counted += 1
            total += 0.0 if region is None else float(region.float().mean())
    return total / counted if counted else _empty_result("grounding_chance")


def world_caption_metrics(
    world, split: str, indices: Sequence[int], captions: Sequence[str], words=None, alphas=None
) -> dict[str, float]:
    """The world's content metrics of ``captions`` of scenes ``indices`` of ``split``:
    ``content_precision``; with attention (``words`` and their ``alphas``, one ``(T, h, w)``
    map per caption) ``attention_grounding`` and its ``grounding_chance``; on the
    ``compositional`` split ``held_out_recall`` of the world's held-out combinations."""
    scenes = [world.scene(split, i, audio=False, questions=False) for i in indices]
    objects = [s.objects for s in scenes]
    masks = [s.masks for s in scenes]
    out = {"content_precision": content_precision(captions, objects)}
    if alphas:
        out["attention_grounding"] = attention_grounding(
            words, alphas, objects, masks, present_only=False
        )
        out["grounding_chance"] = grounding_chance(words, objects, masks, present_only=False)
    if split == "compositional":
        out["held_out_recall"] = held_out_recall(captions, objects, world.config.held_out)
    return out
