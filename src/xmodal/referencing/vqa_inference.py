"""Running a VQA model over a split: every question's answer, where the hops looked, and
how often their peaks fell on the objects.

:func:`answer_questions` takes a :class:`~xmodal.data.questions.QuestionsByImage` (each
image with every question about it, so each image is encoded once) and gives, for every
question of its split, the predicted answer class; with ``attention`` the attention maps
of a stacked-attention model; with ``pointing`` (items with ``referents``, the world) the
pointing game of each hop (:func:`~xmodal.metrics.localization.pointing_hits`).

Example:
    >>> result = answer_questions(model, QuestionsByImage(split, vocab, classes, max_len=24),
    ...                           batch_size=100, pointing=True)
    >>> [classes[j] for j in result.answers]     # one per question of the split
    >>> 100.0 * result.hits / result.has         # each hop's hit rate
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from xmodal._checks import check_positive_int
from xmodal.data.questions import QuestionsByImage, collate_questions
from xmodal.metrics.localization import pointing_hits

__all__ = ["AnsweredQuestions", "answer_questions"]


@dataclass
class AnsweredQuestions:
    """``answers (n,)``: the answer class of each of the split's ``n`` questions (-1 for
    questions of images not run); ``attention``: ``{question: (hops, h, w)}``; ``hits``
    and ``has`` ``(hops,)``: per hop the maps whose peak fell on their objects and the
    maps that had objects (None without pointing or attention)."""

    answers: torch.Tensor
    attention: dict[int, torch.Tensor] = field(default_factory=dict)
    hits: torch.Tensor | None = None
    has: torch.Tensor | None = None


@torch.no_grad()
def answer_questions(
    model: nn.Module,
    dataset: QuestionsByImage,
    *,
    batch_size: int,
    num_workers: int = 0,
    limit: int | None = None,
    attention: bool = False,
    pointing: bool = False,
) -> AnsweredQuestions:
    """Run ``model`` (a :class:`~xmodal.referencing.vqa.VQAModel`, put in eval mode) on
    the first ``limit`` images of ``dataset`` (all by default), ``batch_size`` images a
    batch, on the model's device. ``attention`` keeps the maps; ``pointing`` plays the
    pointing game, for a dataset made with ``referents=True``."""
    check_positive_int(batch_size, "batch_size")
    model.eval()
    n_images = len(dataset) if limit is None else min(limit, len(dataset))
    loader = DataLoader(Subset(dataset, range(n_images)), batch_size=batch_size,
                        collate_fn=collate_questions, num_workers=num_workers)  # fmt: skip
    device = next(model.parameters()).device
    out = AnsweredQuestions(torch.full((len(dataset.split.questions),), -1, dtype=torch.long))
    for batch in loader:
        result = model(batch["image"].to(device), batch["tokens"].to(device),
                       batch["lengths"], batch["image_index"].to(device))  # fmt: skip
        out.answers[batch["question_index"]] = result.logits.argmax(dim=-1).cpu()
        if result.attention is None:
            continue
        maps = result.attention.cpu()
        if attention:
            out.attention.update(zip(batch["question_index"].tolist(), maps, strict=True))
        if pointing:
            hit, has = pointing_hits(maps, batch["referents"])
            out.hits = hit.sum(dim=0) + (0 if out.hits is None else out.hits)
            out.has = has.sum(dim=0) + (0 if out.has is None else out.has)
    return out
