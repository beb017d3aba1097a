"""Running a VQA model over a split: every question's answer, where the hops looked, how
often their peaks fell on the objects, and the split's metrics.

:func:`answer_questions` takes a :class:`~xmodal.data.questions.QuestionsByImage` (each
image with every question about it, so each image is encoded once) and gives, for every
question of its split, the predicted answer class; with ``attention`` the attention maps
of a stacked-attention model; with ``pointing`` (items with ``referents``, the world) the
pointing game of each hop (:func:`~xmodal.metrics.localization.pointing_hits`).
:func:`score_answers` turns that into the split's metrics (:mod:`xmodal.metrics.vqa`).
:func:`answer_pairs` answers questions about image files (predict): each question's top
answers with their probabilities and the words the vocabulary lacks.

Example:
    >>> result = answer_questions(model, QuestionsByImage(split, vocab, classes, max_len=24),
    ...                           batch_size=100, pointing=True)
    >>> [classes[j] for j in result.answers]     # one per question of the split
    >>> 100.0 * result.hits / result.has         # each hop's hit rate
    >>> score_answers(result, split, classes, majority)["accuracy"]
    >>> qv = QuestionVocabulary.load(run_dir)    # the run's words and answer classes
    >>> records, images, maps = answer_pairs(model, [("scene.png", "what colour is it?")], qv,
    ...                                      image_size=64, max_len=24, top_k=3)
    >>> records[0]["text"]                       # 'red (0.91), blue (0.05), green (0.02)'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from xmodal._checks import check_positive_int
from xmodal.data.questions import (
    QuestionsByImage,
    QuestionSplit,
    QuestionVocabulary,
    collate_questions,
    unknown_words,
)
from xmodal.metrics.localization import pointing_hits, pointing_scores
from xmodal.metrics.vqa import vqa_scores

__all__ = ["AnsweredQuestions", "answer_pairs", "answer_questions", "score_answers"]


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


def score_answers(
    result: AnsweredQuestions, split: QuestionSplit, classes: list[str], majority: str
) -> dict[str, float]:
    """The metrics of ``result``, the answers (indices into ``classes``) to every question
    of ``split``, in percent: :func:`~xmodal.metrics.vqa.vqa_scores` overall and per
    family (``accuracy_<family>``, ``n_<family>``, ``n_questions``); the accuracy of always
    answering ``majority`` (``majority_accuracy``); where ``split`` names held-out
    combinations, ``accuracy_held_out_named`` over the ``n_held_out_named`` questions that
    name one; with pointing, ``pointing_hop<k>``; and ``n_images``, ``n_classes``."""
    predictions = [classes[int(j)] for j in result.answers]
    metrics = vqa_scores(predictions, split.answers, groups=split.families)
    baseline = vqa_scores([majority] * len(split.answers), split.answers)
    metrics["majority_accuracy"] = baseline["accuracy"]
    if split.named_held_out is not None and any(split.named_held_out):
        # the questions that name a held-out combination ("is there a red circle?")
        keep = [i for i, named in enumerate(split.named_held_out) if named]
        named = vqa_scores([predictions[i] for i in keep], [split.answers[i] for i in keep])
        metrics["accuracy_held_out_named"] = named["accuracy"]
        metrics["n_held_out_named"] = len(keep)
    if result.hits is not None:  # where the hops looked: their peaks on the objects
        metrics.update(pointing_scores(result.hits, result.has))
    metrics["n_images"] = len(split.groups)
    metrics["n_classes"] = len(classes)
    return metrics


@torch.no_grad()
def answer_pairs(
    model: nn.Module,
    pairs: Sequence[tuple[str, str]],
    vocab: QuestionVocabulary,
    *,
    image_size: int,
    max_len: int,
    top_k: int,
) -> tuple[list[dict], torch.Tensor, torch.Tensor | None]:
    """Each ``(image file, question)`` of ``pairs`` answered by ``model`` (a
    :class:`~xmodal.referencing.vqa.VQAModel`, put in eval mode, on its device): the
    image read at ``image_size`` (:func:`~xmodal.data.images.load_image`), the question
    by ``vocab.words`` (at most ``max_len`` tokens).

    Returns one record per pair, as predict writes it: ``input`` (``path 'question'``),
    ``image``, ``question``, ``answers`` (the ``top_k`` most probable of ``vocab.answers``,
    best first, each ``{"answer", "probability"}`` rounded to 4 places), ``unknown_words``
    (the words ``vocab.words`` lacks, read as <unk>), ``text`` (a line saying all that) and
    ``files`` (empty); the images ``(N, 3, H, W)``; and the attention maps ``(N, hops,
    h, w)`` on the CPU (None for a model without attention). Raises ParameterError for
    a question with no words, DataError for a file that is not an image.
    """
    from xmodal.data.images import load_image

    images = torch.stack([load_image(path, size=image_size) for path, _ in pairs])
    questions = [question for _, question in pairs]
    unknown = [unknown_words(vocab.words, question) for question in questions]
    device = next(model.parameters()).device
    tokens, lengths = vocab.words.encode_batch(questions, max_len=max_len, pad=False)
    model.eval()
    probs, ids, attention = model.answer(images.to(device), tokens.to(device), lengths, top_k=top_k)
    records = []
    for n, (path, question) in enumerate(pairs):
        answers = [
            {"answer": vocab.answers[int(j)], "probability": round(float(p), 4)}
            for p, j in zip(probs[n].cpu(), ids[n].cpu(), strict=True)
        ]
        text = ", ".join(f"{a['answer']} ({a['probability']:.2f})" for a in answers)
        if unknown[n]:
            text += f"  [not in the vocabulary, read as <unk>: {', '.join(unknown[n])}]"
        records.append(
            {
                "input": f"{path} {question!r}",
                "image": str(path),
                "question": question,
                "answers": answers,
                "unknown_words": unknown[n],
                "text": text,
                "files": [],
            }
        )
    return records, images, None if attention is None else attention.cpu()
