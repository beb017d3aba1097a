"""Intrinsic evaluation of word vectors: analogies and word similarity, scored as gensim does.

- :func:`evaluate_analogies` reads a file in the ``questions-words.txt`` format (Mikolov
  et al. 2013): sections introduced by ``": name"``, then lines ``a b c d`` meaning
  "a is to b as c is to d". The answer is the word nearest (cosine) to
  ``unit(b) - unit(a) + unit(c)`` among the first ``restrict_vocab`` words, the question
  words excluded (3CosAdd). Questions with a word outside those ``restrict_vocab`` words
  are skipped. The scores equal gensim's ``KeyedVectors.evaluate_word_analogies``.
- :func:`evaluate_similarity` reads a ``wordsim353.tsv``-format file (``word1<TAB>word2
  <TAB>score``, ``#`` comments) and correlates the human scores with the cosines
  (Spearman and Pearson), as gensim's ``evaluate_word_pairs``.

Both compare words case-insensitively by default: a question word matches the most
frequent vocabulary word that is equal to it up to case.

- :func:`category_precision` needs no file: given groups of words of one kind (colours,
  shapes, ...), how often a word's nearest neighbours are of its own kind, with the level
  a random ranking would reach.

Example::

    result = evaluate_analogies(wv, "questions-words.txt", restrict_vocab=30000)
    result.accuracy, {s.name: s.accuracy for s in result.sections}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xmodal._checks import check_bool, check_positive_int
from xmodal.errors import DataError, ParameterError

__all__ = ["AnalogyResult", "AnalogySection", "SimilarityResult", "category_precision",
           "evaluate_analogies", "evaluate_similarity"]  # fmt: skip

_BATCH = 256  # questions scored per matrix product
_TOPN = 5  # gensim looks at the 5 best answers for one that is not a question word


@dataclass
class AnalogySection:
    """One section of an analogy file: the questions answered right and wrong.

    Each question is ``(a, b, c, expected)``, upper-cased when the evaluation is case
    insensitive (as gensim reports them).
    """

    name: str
    correct: list[tuple[str, str, str, str]] = field(default_factory=list)
    incorrect: list[tuple[str, str, str, str]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.correct) + len(self.incorrect)

    @property
    def accuracy(self) -> float:
        """Fraction answered right; 0.0 for a section with no question evaluated."""
        return len(self.correct) / self.n if self.n else 0.0


@dataclass
class AnalogyResult:
    """accuracy: over every evaluated question (gensim's score). sections: per section,
    in file order (gensim's list without its final "Total accuracy" entry).
    n_questions: well-formed questions read; n_oov: skipped for a word outside the
    vocabulary; oov_ratio: that in percent; skipped_lines: malformed lines."""

    accuracy: float
    sections: list[AnalogySection]
    n_questions: int
    n_oov: int
    skipped_lines: int

    @property
    def oov_ratio(self) -> float:
        return 100.0 * self.n_oov / self.n_questions if self.n_questions else 0.0

    @property
    def n_evaluated(self) -> int:
        return sum(s.n for s in self.sections)

    def section(self, name: str) -> AnalogySection:
        for s in self.sections:
            if s.name == name:
                return s
        raise ParameterError(
            f"no section {name!r}; sections: {', '.join(s.name for s in self.sections)}"
        )

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "correct": sum(len(s.correct) for s in self.sections),
            "evaluated": self.n_evaluated,
            "questions": self.n_questions,
            "oov_ratio": self.oov_ratio,
            "sections": {s.name: {"accuracy": s.accuracy, "correct": len(s.correct), "n": s.n}
                         for s in self.sections},
        }  # fmt: skip


@dataclass
class SimilarityResult:
    """spearman / pearson: correlation of the cosines with the human scores, with the
    two-sided p-values; n_pairs: pairs scored; n_oov: pairs skipped for an unknown word;
    oov_ratio: percent of pairs skipped (gensim's third return value)."""

    spearman: float
    spearman_pvalue: float
    pearson: float
    pearson_pvalue: float
    n_pairs: int
    n_oov: int

    @property
    def oov_ratio(self) -> float:
        total = self.n_pairs + self.n_oov
        return 100.0 * self.n_oov / total if total else 0.0

    def to_dict(self) -> dict:
        return {"spearman": self.spearman, "pearson": self.pearson, "pairs": self.n_pairs,
                "oov": self.n_oov, "oov_ratio": self.oov_ratio}  # fmt: skip


def _ok_vocab(vectors, restrict_vocab: int, case_insensitive: bool) -> dict[str, int]:
    """Key -> row among the first ``restrict_vocab`` words; the most frequent case wins."""
    words = vectors.words[:restrict_vocab]
    if case_insensitive:
        return {w.upper(): i for i, w in reversed(list(enumerate(words)))}
    return {w: i for i, w in reversed(list(enumerate(words)))}


def _check_inputs(vectors, path, restrict_vocab, case_insensitive):
    from xmodal.text.word2vec_vectors import WordVectors

    if not isinstance(vectors, WordVectors):
        raise ParameterError(f"vectors must be WordVectors. Found: {type(vectors).__name__}")
    restrict_vocab = check_positive_int(restrict_vocab, "restrict_vocab")
    case_insensitive = check_bool(case_insensitive, "case_insensitive")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    text = path.read_bytes().decode("utf-8", errors="replace")
    return path, text, min(restrict_vocab, len(vectors)), case_insensitive


def evaluate_analogies(
    vectors, path, *, restrict_vocab: int = 300000, case_insensitive: bool = True
) -> AnalogyResult:
    """Score ``vectors`` on an analogy file (3CosAdd); see the module docstring.

    Raises DataError for a missing file, a question before the first section header, or a
    file without any question.
    """
    path, text, restrict_vocab, case_insensitive = _check_inputs(
        vectors, path, restrict_vocab, case_insensitive
    )
    ok = _ok_vocab(vectors, restrict_vocab, case_insensitive)
    sections: list[AnalogySection] = []
    pending: list[tuple[AnalogySection, tuple[str, str, str, str]]] = []
    n_questions = n_oov = skipped = 0
    for line_no, line in enumerate(text.split("\n")):
        if line.startswith(": "):
            sections.append(AnalogySection(line.lstrip(": ").strip()))
            continue
        if not sections:
            if not line.strip():
                continue
            raise DataError(f"{path}: line {line_no + 1} comes before the first section "
                            f"header (': name'). Found: {line!r:.80}")  # fmt: skip
        parts = line.split()
        if len(parts) != 4:
            skipped += bool(line.strip())
            continue
        q = tuple(w.upper() for w in parts) if case_insensitive else tuple(parts)
        n_questions += 1
        if any(w not in ok for w in q):
            n_oov += 1
            continue
        pending.append((sections[-1], q))
    if n_questions == 0:
        raise DataError(f"{path}: holds no analogy question ('a b c d' lines under ': section')")

    unit = vectors.unit_vectors[:restrict_vocab]
    words = vectors.words
    for start in range(0, len(pending), _BATCH):
        batch = pending[start : start + _BATCH]
        rows = np.array([[ok[w] for w in q[:3]] for _, q in batch])  # (B, 3): a, b, c
        # gensim: the mean of unit(b), unit(c), -unit(a), scaled to length 1.
        query = (unit[rows[:, 1]] + unit[rows[:, 2]] - unit[rows[:, 0]]) / np.float32(3)
        query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-30)
        sims = query @ unit.T  # (B, restrict_vocab)
        np.put_along_axis(sims, rows, -np.inf, axis=1)
        k = min(_TOPN, sims.shape[1])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else None
        for b, (section, q) in enumerate(batch):
            cand = top[b] if top is not None else np.arange(sims.shape[1])
            cand = cand[np.argsort(-sims[b, cand], kind="stable")]
            cand = [i for i in cand.tolist() if sims[b, i] > -np.inf][:_TOPN]
            ignore = set(q[:3])
            predicted = None
            for i in cand:
                predicted = words[i].upper() if case_insensitive else words[i]
                if predicted in ok and predicted not in ignore:
                    break
            (section.correct if predicted == q[3] else section.incorrect).append(q)
    correct = sum(len(s.correct) for s in sections)
    total = sum(s.n for s in sections)
    return AnalogyResult(
        accuracy=correct / total if total else 0.0,
        sections=sections,
        n_questions=n_questions,
        n_oov=n_oov,
        skipped_lines=skipped,
    )


def evaluate_similarity(
    vectors,
    path,
    *,
    delimiter: str = "\t",
    restrict_vocab: int = 300000,
    case_insensitive: bool = True,
) -> SimilarityResult:
    """Correlate cosine similarities with human scores from a wordsim353-format file.

    Lines starting with ``#`` are comments; malformed lines are skipped; pairs with a word
    outside the first ``restrict_vocab`` words are skipped and counted. Raises DataError if
    no pair can be scored.
    """
    from scipy import stats

    path, text, restrict_vocab, case_insensitive = _check_inputs(
        vectors, path, restrict_vocab, case_insensitive
    )
    if not isinstance(delimiter, str) or not delimiter:
        raise ParameterError(f"delimiter must be a non-empty str. Found: {delimiter!r}")
    ok = _ok_vocab(vectors, restrict_vocab, case_insensitive)
    unit = vectors.unit_vectors
    gold: list[float] = []
    model: list[float] = []
    n_oov = 0
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        parts = line.split(delimiter)
        if len(parts) != 3:
            continue
        a, b, score = parts
        if case_insensitive:
            a, b = a.upper(), b.upper()
        try:
            score = float(score)
        except ValueError:
            continue
        if a not in ok or b not in ok:
            n_oov += 1
            continue
        gold.append(score)
        model.append(float(unit[ok[a]] @ unit[ok[b]]))
    if not gold:
        raise DataError(
            f"{path}: no word pair could be scored ({n_oov} pair(s) with unknown words; the "
            "format is 'word1<TAB>word2<TAB>score' per line)"
        )
    if len(gold) < 2:
        raise DataError(f"{path}: only one word pair could be scored; a correlation needs two")
    spearman = stats.spearmanr(gold, model)
    pearson = stats.pearsonr(gold, model)
    return SimilarityResult(
        spearman=float(spearman[0]),
        spearman_pvalue=float(spearman[1]),
        pearson=float(pearson[0]),
        pearson_pvalue=float(pearson[1]),
        n_pairs=len(gold),
        n_oov=n_oov,
    )


def category_precision(vectors, categories: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """How often a word's nearest neighbours are words of its own category.

    A category's words found in ``vectors`` (a :class:`WordVectors`) are ``m`` (at least
    2, else the category is left out); each of them scores the fraction of its ``m - 1``
    nearest words (cosine over the whole vocabulary, itself left out, ties by vocabulary
    order) that are of its category: R-precision, averaged over the category's words.
    Returns that per category, ``mean`` over every scored word, and ``chance``: the same
    mean for a random ranking, ``(m - 1) / (V - 1)`` per word. ``{}`` if no category
    has two words in the vocabulary.

    >>> from xmodal.text.word2vec_vectors import WordVectors
    >>> wv = WordVectors(["red", "cat", "blue", "dog"], [[1, 0], [0, 1], [0.9, 0.2], [0.2, 0.9]])
    >>> category_precision(wv, {"colour": ["red", "blue", "pink"], "animal": ["cat", "dog"]})
    {'colour': 1.0, 'animal': 1.0, 'mean': 1.0, 'chance': 0.3333333333333333}
    """
    from xmodal.text.word2vec_vectors import WordVectors

    if not isinstance(vectors, WordVectors):
        raise ParameterError(f"vectors must be WordVectors. Found: {type(vectors).__name__}")
    if not isinstance(categories, Mapping):
        raise ParameterError(f"categories must map names to words. Found: {categories!r:.80}")
    unit = vectors.unit_vectors
    n = len(vectors)
    out: dict[str, float] = {}
    scores, chances = [], []
    for name, words in categories.items():
        if isinstance(words, str) or not isinstance(words, Sequence):
            raise ParameterError(f"categories[{name!r}] must be a list of words. Found: {words!r}")
        rows = [vectors.key_to_index[w] for w in dict.fromkeys(words) if w in vectors]
        m = len(rows)
        if m < 2:
            continue
        sims = unit[rows] @ unit.T  # (m, V)
        sims[np.arange(m), rows] = -np.inf
        nearest = np.argsort(-sims, axis=1, kind="stable")[:, : m - 1]
        hits = np.isin(nearest, rows).mean(axis=1)
        out[name] = float(hits.mean())
        scores += hits.tolist()
        chances += [(m - 1) / (n - 1)] * m
    if not scores:
        return {}
    out["mean"] = float(np.mean(scores))
    out["chance"] = float(np.mean(chances))
    return out
