"""Visual questions grouped by image, as training batches: each image with every question
about it, so a model encodes an image once however many questions ask about it.

A :class:`QuestionSplit` holds one split's questions, their human answers and families,
grouped by image; :func:`world_questions` makes one from the world's VQA view (scene by
scene, as the view numbers its questions) and :func:`vqa_questions` from a
:class:`~xmodal.data.vqa.VQAv2` split (by image id). :class:`QuestionsByImage` encodes a
split's questions with a vocabulary and its answers as soft targets over the answer
classes; :func:`collate_questions` makes batches of them. :func:`top_answers` picks the
classes; :func:`save_answers` / :func:`load_answers` keep them in a run folder.
:class:`QuestionVocabulary` holds both vocabularies of a run (question words, answer
classes), built from the training split, saved, loaded, and makes the datasets.
:func:`figure_questions` picks a question of each image to show.

    >>> split = world_questions(make_dataset(world, "vqa", "train", size=120))
    >>> ds = QuestionsByImage(split, vocab, classes, max_len=24)
    >>> batch = collate_questions([ds[0], ds[1]])
    >>> batch["image"].shape, batch["tokens"].shape     # (2, 3, H, W), (20, L)
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset

from xmodal._io import write_text
from xmodal.errors import DataError, ParameterError
from xmodal.text.vocab import PAD_ID, UNK_ID, Vocabulary, tokenize

__all__ = [
    "QuestionSplit",
    "QuestionVocabulary",
    "QuestionsByImage",
    "collate_questions",
    "described_pairs",
    "figure_questions",
    "image_question_pairs",
    "load_answers",
    "save_answers",
    "top_answers",
    "unknown_words",
    "vqa_questions",
    "world_questions",
]


@dataclass
class QuestionSplit:
    """The questions of a split grouped by image, without the images.

    ``groups[g]`` lists the questions (indices into ``questions``, ``answers`` and
    ``families``) about image ``g``; ``source`` gives the image (a world VQA view or a
    :class:`~xmodal.data.vqa.VQAv2`), ``image_keys[g]`` where it is there.
    """

    questions: list[str]
    answers: list[list[str]]  # the human answers (the world's one answer, 10 times)
    families: list[str]  # world: the question family; VQA files: the answer type
    groups: list[list[int]]
    source: object
    image_keys: list[int]
    # world: does the question name a held-out (colour, shape) combination
    named_held_out: list[bool] | None = None

    def __len__(self) -> int:
        """The number of images."""
        return len(self.groups)

    def image(self, g: int) -> torch.Tensor:
        """Image ``g``, ``(3, H, W)`` float in [0, 1]."""
        src = self.source
        if hasattr(src, "world"):  # the world's VQA view: key = scene index
            scene = src.world.scene(src.split, self.image_keys[g], audio=False, questions=False)
            return scene.image.to(torch.float32).div_(255.0)
        return src[self.image_keys[g]]["image"]  # VQAv2: key = an item of the image

    def image_and_referents(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        """World only: image ``g`` and, for each of its questions, where the objects it is
        about are: ``(n_q, 2, H, W)`` bool, the masks of the first and of the second look
        (:func:`~xmodal.world.language.question_referents`; all False where none)."""
        from xmodal.world.language import question_referents

        world, qs = self.source.world, self.groups[g]
        scene = world.scene(self.source.split, self.image_keys[g], audio=False)
        referents = torch.zeros(len(qs), 2, *scene.masks.shape[1:], dtype=torch.bool)
        for k, q in enumerate(scene.questions[: len(qs)]):
            looks = question_referents(q, scene.objects, margin=world.margin)
            for look, objects in enumerate(looks):
                if objects:
                    referents[k, look] = scene.masks[objects].any(dim=0)
        return scene.image.to(torch.float32).div_(255.0), referents


def world_questions(view) -> QuestionSplit:
    """The world's VQA view (:class:`~xmodal.world.datasets.VQADataset`) grouped by scene:
    question ``i`` of the view is question ``i % n`` of scene ``i // n``, exactly as the
    view gives it. Each question has its one certain answer ten times (ten annotators
    agree) and says whether it names a held-out combination of a compositional world."""
    n = view.world.config.n_questions
    held_out = set(view.world.config.held_out) if view.world.config.compositional else set()
    questions, answers, families, groups, keys, named = [], [], [], [], [], []
    for s in range(math.ceil(len(view) / n)):
        scene = view.world.scene(view.split, s, audio=False)
        count = min(n, len(view) - s * n)
        groups.append(list(range(len(questions), len(questions) + count)))
        keys.append(s)
        for q in scene.questions[:count]:
            questions.append(q.question)
            answers.append([q.answer] * 10)
            families.append(q.family)
            named.append(any(pair in held_out for pair in described_pairs(q.facts)))
    return QuestionSplit(questions, answers, families, groups, view, keys, named)


def described_pairs(facts: dict) -> list[tuple]:
    """The (colour, shape) pairs a world question's descriptions name (``facts`` itself,
    or its ``a`` and ``b`` for a relation)."""
    return [(d.get("colour"), d.get("shape"))
            for d in (facts, facts.get("a"), facts.get("b")) if isinstance(d, dict)]  # fmt: skip


def vqa_questions(ds) -> QuestionSplit:
    """A :class:`~xmodal.data.vqa.VQAv2` split grouped by image id (first seen first);
    a question's family is its answer type (``all`` where it has none)."""
    by_image: dict[int, list[int]] = {}
    for i, image_id in enumerate(ds.image_ids):
        by_image.setdefault(image_id, []).append(i)
    records = [ds.record(i) for i in range(len(ds))]
    return QuestionSplit(
        questions=[r["question"] for r in records],
        answers=[r["answers"] for r in records],
        families=[r["answer_type"] or "all" for r in records],
        groups=list(by_image.values()),
        source=ds,
        image_keys=[g[0] for g in by_image.values()],
    )


def figure_questions(split: QuestionSplit, n: int) -> list[int]:
    """One question (its index in ``split``) about each of the first ``n`` images, to
    show: image ``g`` gets a question of the ``g``-th family in turn (the families sorted,
    from the first again after the last) where it has one, else its question ``g`` (modulo
    its number of questions)."""
    families = sorted(set(split.families))
    picked = []
    for g in range(min(n, len(split.groups))):
        qs = split.groups[g]
        wanted = families[g % len(families)]
        picked.append(next((i for i in qs if split.families[i] == wanted), qs[g % len(qs)]))
    return picked


def top_answers(
    split: QuestionSplit, k: int, *, normalize: Callable[[str], str] | None = None
) -> tuple[list[str], str]:
    """The ``k`` most frequent answers of ``split`` (ties by name) and the most frequent
    one. With ``normalize`` (VQA files: the official normalisation,
    :func:`~xmodal.metrics.vqa.normalize_answer`) every human answer counts once,
    normalised; without (the world) each question's answer counts once."""
    if normalize is not None:
        counts = Counter(normalize(a) for ans in split.answers for a in ans)
    else:
        counts = Counter(ans[0] for ans in split.answers)
    counts.pop("", None)
    if not counts:
        raise DataError("the training questions have no answers")
    ranked = sorted(counts, key=lambda a: (-counts[a], a))
    return ranked[:k], ranked[0]


def save_answers(path: str | Path, answers: list[str], majority: str) -> Path:
    """Write the answer classes and the majority answer as JSON, atomically."""
    data = {"answers": answers, "majority": majority}
    return write_text(path, json.dumps(data, indent=1))


def load_answers(path: str | Path) -> tuple[list[str], str]:
    """The answer classes and the majority answer :func:`save_answers` wrote."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return list(data["answers"]), str(data["majority"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(f"{path} is not an answers file: {e}") from e


def image_question_pairs(inputs: Sequence[str], *, task: str = "vqa") -> list[tuple[str, str]]:
    """``inputs`` read as ``IMAGE QUESTION IMAGE QUESTION ...``: the ``(image file,
    question)`` pairs. Raises ParameterError for an odd count or a pair given question
    first (its question is a file, its image is not)."""
    inputs = list(inputs)
    if not inputs or len(inputs) % 2:
        raise ParameterError(
            f'predict {task} takes pairs IMAGE QUESTION (e.g. scene.png "what colour is '
            f'the circle?"). Found {len(inputs)} input(s): {inputs!r}'
        )
    pairs = list(zip(inputs[0::2], inputs[1::2], strict=True))
    for n, (path, question) in enumerate(pairs):
        if not Path(path).is_file() and Path(question).is_file():
            raise ParameterError(
                f"pair {n + 1} reads ({path!r}, {question!r}): give the image first, "
                "then its question"
            )
    return pairs


def unknown_words(vocab: Vocabulary, question: str) -> list[str]:
    """The words of ``question`` that ``vocab`` lacks (encoding reads them as <unk>).
    Raises ParameterError for a question that is not a string or has no words."""
    if not isinstance(question, str):
        raise ParameterError(f"a question must be a string. Found: {question!r}")
    words = tokenize(question)
    if not words:
        raise ParameterError(f"question {question!r} has no words")
    return [w for w in words if vocab.token_to_id(w) == UNK_ID]


class QuestionsByImage(Dataset):
    """Item ``g``: image ``g`` of a split with every question about it.

    ``image`` (3, H, W); ``tokens`` a list of LongTensors (<bos> ... <eos>); ``target``
    (n_q, K) float, each row the question's human answers among the K classes as a
    distribution (all zero when none is a class), the answers first mapped by
    ``normalize`` where given (:func:`~xmodal.metrics.vqa.normalize_answer` for VQA
    files); ``question_index`` the questions' positions in the split; with
    ``referents`` (world only) also ``referents`` (n_q, 2, H, W), where the objects of
    each question's two looks are.
    """

    def __init__(self, split: QuestionSplit, vocab: Vocabulary, classes: dict[str, int], *,
                 normalize: Callable[[str], str] | None = None, max_len: int,
                 referents: bool = False) -> None:  # fmt: skip
        self.split, self.vocab, self.classes = split, vocab, classes
        self.normalize, self.max_len, self.referents = normalize, max_len, referents

    def __len__(self) -> int:
        return len(self.split.groups)

    def target(self, answers: list[str]) -> torch.Tensor:
        """``(K,)``: the share of ``answers`` that gave each class."""
        row = torch.zeros(len(self.classes))
        for a in answers:
            j = self.classes.get(self.normalize(a) if self.normalize is not None else a)
            if j is not None:
                row[j] += 1.0
        total = row.sum()
        return row / total if total > 0 else row

    def __getitem__(self, g: int) -> dict:
        qs = self.split.groups[g]
        item = {
            "tokens": [
                torch.tensor(self.vocab.encode(self.split.questions[i], max_len=self.max_len))
                for i in qs
            ],
            "target": torch.stack([self.target(self.split.answers[i]) for i in qs]),
            "question_index": qs,
        }
        if self.referents:
            item["image"], item["referents"] = self.split.image_and_referents(g)
        else:
            item["image"] = self.split.image(g)
        return item


def collate_questions(items: list[dict]) -> dict:
    """``image`` (B, 3, H, W); ``tokens`` (Q, L) <pad>-padded and ``lengths`` (Q,) for all
    Q questions of the batch; ``image_index`` (Q,) the image row of each; ``target``
    (Q, K); ``question_index`` (Q,); and ``referents`` (Q, 2, H, W) when the items have
    them."""
    tokens = [t for it in items for t in it["tokens"]]
    batch = {
        "image": torch.stack([it["image"] for it in items]),
        "tokens": nn.utils.rnn.pad_sequence(tokens, batch_first=True, padding_value=PAD_ID),
        "lengths": torch.tensor([len(t) for t in tokens]),
        "image_index": torch.tensor([b for b, it in enumerate(items) for _ in it["tokens"]]),
        "target": torch.cat([it["target"] for it in items]),
        "question_index": torch.tensor([i for it in items for i in it["question_index"]]),
    }
    if "referents" in items[0]:
        batch["referents"] = torch.cat([it["referents"] for it in items])
    return batch


@dataclass
class QuestionVocabulary:
    """The vocabularies of a VQA run: the question ``words`` (saved as ``vocab.json``),
    the answer classes (``answers``, the most frequent training answers) and the most
    frequent answer (``majority``, both saved as ``answers.json``). ``normalize`` maps a
    human answer to its class (VQA files: :func:`~xmodal.metrics.vqa.normalize_answer`;
    None: answers as they are).

        >>> vocab = QuestionVocabulary.build(train, top_k=1000, min_freq=1)
        >>> vocab.save(run_dir)                      # vocab.json, answers.json
        >>> ds = vocab.dataset(val, max_len=24)      # a QuestionsByImage
    """

    words: Vocabulary
    answers: list[str]
    majority: str
    normalize: Callable[[str], str] | None = None

    files: ClassVar[tuple[str, str]] = ("vocab.json", "answers.json")

    @classmethod
    def build(
        cls,
        train: QuestionSplit,
        *,
        top_k: int,
        min_freq: int = 1,
        normalize: Callable[[str], str] | None = None,
    ) -> QuestionVocabulary:
        """The words of ``train``'s questions (at least ``min_freq`` times) and its
        ``top_k`` most frequent answers (:func:`top_answers`)."""
        words = Vocabulary.build(train.questions, min_freq=min_freq)
        answers, majority = top_answers(train, top_k, normalize=normalize)
        return cls(words, answers, majority, normalize)

    def save(self, folder: str | Path) -> None:
        """Write ``vocab.json`` and ``answers.json`` in ``folder``, atomically."""
        self.words.save(Path(folder) / self.files[0])
        save_answers(Path(folder) / self.files[1], self.answers, self.majority)

    @classmethod
    def load(
        cls, folder: str | Path, *, normalize: Callable[[str], str] | None = None
    ) -> QuestionVocabulary:
        """What :meth:`save` wrote in ``folder``."""
        words = Vocabulary.load(Path(folder) / cls.files[0])
        answers, majority = load_answers(Path(folder) / cls.files[1])
        return cls(words, answers, majority, normalize)

    def dataset(
        self, split: QuestionSplit, *, max_len: int, referents: bool = False
    ) -> QuestionsByImage:
        """``split``'s questions by image, encoded with these vocabularies
        (:class:`QuestionsByImage`)."""
        classes = {a: j for j, a in enumerate(self.answers)}
        return QuestionsByImage(
            split,
            self.words,
            classes,
            normalize=self.normalize,
            max_len=max_len,
            referents=referents,
        )
