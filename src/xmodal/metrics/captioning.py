"""Caption metrics: the COCO scores and the human agreement baseline.

Word overlap with references, computed exactly as the COCO caption evaluation server
does (the ``pycocoevalcap`` package, imported on first use):

- :func:`coco_scores`: BLEU-1..4, METEOR, ROUGE-L and CIDEr-D of one predicted caption
  per image against that image's references. Both sides are tokenized by the Stanford
  PTB tokenizer (lower-cased, punctuation tokens dropped); BLEU is the corpus-level
  ``"closest"``-reference-length BLEU, ROUGE-L and CIDEr-D are averaged over images.
  pycocoevalcap's ``Cider`` *is* coco-caption's CIDEr-D (clipped n-gram counts and a
  Gaussian length penalty, sigma 6, scaled by 10); its idf comes from the references of
  the images scored together, so CIDEr-D is a corpus score: on a single image every
  n-gram has idf 0 and CIDEr-D is 0 by construction.
- :func:`leave_one_out_scores`: the same scores for human captions, each reference in
  turn against the others: the agreement a caption model is compared with.

Java runs the tokenizer (one short-lived JVM, about 0.2 s) and METEOR (a second JVM that
loads a paraphrase table, several seconds): each is started once per call. Without
``java`` on the PATH the tokenizer falls back to a PTB-like rule in Python (the same
tokens on plain English captions; see :func:`_simple_tokenize`) and METEOR is left out,
each with a warning.

What a caption says about a world scene (content precision, attention grounding,
held-out recall) is scored by :mod:`xmodal.metrics.grounding`.

Example:
    >>> s = coco_scores(["a red circle on the beach", "two blue squares at night"],
    ...                 [["a red circle on the beach", "a big red circle"],
    ...                  ["two blue squares at night"]], meteor=False)
    >>> {k: round(v, 3) for k, v in s.items()}
    {'BLEU-1': 1.0, 'BLEU-2': 1.0, 'BLEU-3': 1.0, 'BLEU-4': 1.0, 'ROUGE-L': 1.0, 'CIDEr-D': 8.015}
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np

from xmodal._checks import check_bool
from xmodal.errors import ParameterError, XmodalError
from xmodal.metrics._checks import check_lengths, check_strings

__all__ = [
    "METRICS",
    "best_reference_scores",
    "coco_scores",
    "leave_one_out_scores",
]

METRICS: tuple[str, ...] = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")

_INSTALL = "pip install pycocoevalcap"

# ----------------------------------------------------------------------------- input checks


def _check_references(references, name: str = "references") -> list[list[str]]:
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise ParameterError(
            f"{name} must be a sequence with one list of reference captions per image. "
            f"Found: {type(references).__name__}"
        )
    if len(references) == 0:
        raise ParameterError(f"{name} is empty: there is nothing to score")
    out = []
    for i, refs in enumerate(references):
        if isinstance(refs, str):
            raise ParameterError(
                f"{name}[{i}] must be a list of reference captions, not one string "
                f"(wrap it: [{refs!r}])"
            )
        refs = check_strings(refs, f"{name}[{i}]")
        if not refs:
            raise ParameterError(f"{name}[{i}] has no reference captions")
        out.append(refs)
    return out


# ------------------------------------------------------------------------------ tokenizing

_CLITIC_NT = re.compile(r"(?<=[^\W_])n't\b")
_CLITIC = re.compile(r"(?<=[^\W_])'(s|re|ve|ll|d|m)\b")
# A word, a number or a hyphenated compound ("t-shirt", "3.5", "1,000"); a split clitic.
_TOKEN = re.compile(r"n't|'(?:s|re|ve|ll|d|m)\b|[^\W_]+(?:[-.,'/&][^\W_]+)*")


def _simple_tokenize(text: str) -> str:
    """The PTB tokenizer's output without Java: lower-cased words, clitics split, no
    punctuation.

    Agrees with the Stanford tokenizer plus pycocoevalcap's punctuation filter on plain
    English ("a man's t-shirt, don't" -> "a man 's t-shirt do n't"); it differs on
    brackets (PTB keeps ``-lrb-``/``-rrb-`` tokens, this drops them) and on rarer forms
    such as abbreviations with periods.
    """
    text = _CLITIC.sub(r" '\1", _CLITIC_NT.sub(" n't", text.lower()))
    return " ".join(_TOKEN.findall(text))


def _java() -> str | None:
    return shutil.which("java")


def _ptb_tokenize(texts: list[str], java: str) -> list[str]:
    """pycocoevalcap's PTBTokenizer, fed through stdin (it writes a temporary file into
    its own package folder, which fails where site-packages is read-only)."""
    from pycocoevalcap.tokenizer import ptbtokenizer

    jar = os.path.join(
        os.path.dirname(ptbtokenizer.__file__), ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR
    )
    punctuation = set(ptbtokenizer.PUNCTUATIONS)
    # One caption per line: whitespace of any kind (newlines included) becomes one
    # space, and empty captions never reach the JVM, which drops trailing empty lines.
    lines = [" ".join(t.split()) for t in texts]
    todo = [i for i, line in enumerate(lines) if line]
    out = [""] * len(texts)
    if not todo:
        return out
    cmd = [java, "-cp", jar, "edu.stanford.nlp.process.PTBTokenizer"]
    cmd += ["-preserveLines", "-lowerCase"]
    proc = subprocess.run(
        cmd, input="\n".join(lines[i] for i in todo).encode(), capture_output=True, check=False
    )
    tokenized = proc.stdout.decode().split("\n")
    if proc.returncode != 0 or len(tokenized) < len(todo):
        raise XmodalError(
            f"the PTB tokenizer ({jar}) failed with exit status {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace')[-500:]}"
        )
    for i, line in zip(todo, tokenized, strict=False):
        out[i] = " ".join(w for w in line.split() if w not in punctuation)
    return out


def _tokenize(texts: list[str], java: str | None) -> list[str]:
    if java is None:
        warnings.warn(
            "java is not on the PATH: captions are tokenized by a PTB-like rule in Python "
            "instead of the Stanford PTB tokenizer, so scores may differ slightly from the "
            "COCO evaluation server's",
            stacklevel=4,  # the caller of coco_scores / leave_one_out_scores
        )
        return [_simple_tokenize(t) for t in texts]
    return _ptb_tokenize(texts, java)


# --------------------------------------------------------------------------------- scoring


def _import_scorers():
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge
    except ImportError as e:
        raise ImportError(f"caption metrics need pycocoevalcap: {_INSTALL}") from e
    return Bleu, Rouge, Cider


class _Meteor:
    """One METEOR JVM for the whole call, stopped when the call ends."""

    def __init__(self, java: str) -> None:
        from pycocoevalcap.meteor import meteor

        folder = os.path.dirname(meteor.__file__)
        cmd = [java, "-jar", "-Xmx2G", meteor.METEOR_JAR, "-", "-", "-stdio", "-l", "en", "-norm"]
        self.proc = subprocess.Popen(
            cmd, cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def _read(self) -> str:
        answer = self.proc.stdout.readline().decode().strip()
        if not answer:
            raise XmodalError(f"METEOR stopped answering (exit status {self.proc.poll()})")
        return answer

    def _ask(self, line: str) -> str:
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        return self._read()

    def score(self, predictions: list[str], references: list[list[str]]) -> float:
        # The protocol of pycocoevalcap's Meteor: a SCORE line per image gives its
        # statistics; one EVAL line of all of them gives per-image scores, then the
        # corpus score, which is what coco-caption reports.
        stats = []
        for pred, refs in zip(predictions, references, strict=True):
            fields = [r.replace("|||", " ") for r in refs] + [pred.replace("|||", " ")]
            stats.append(self._ask(" ||| ".join(["SCORE", *fields])))
        self._ask("EVAL ||| " + " ||| ".join(stats))  # the first image's score
        for _ in predictions[1:]:
            self._read()
        return float(self._read())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.kill()
        self.proc.wait()


@contextmanager
def _meteor_scorer(java: str | None, use_meteor: bool):
    """A :class:`_Meteor` for the ``with`` block (None when METEOR is not computed), its
    JVM stopped when the block ends, however it ends."""
    scorer = _Meteor(java) if use_meteor else None
    try:
        yield scorer
    finally:
        if scorer is not None:
            scorer.close()


def _want_meteor(meteor, java: str | None) -> bool:
    if meteor is None:
        if java is None:
            warnings.warn(
                "java is not on the PATH: METEOR is not computed (its key is absent)",
                stacklevel=3,
            )
        return java is not None
    meteor = check_bool(meteor, "meteor")
    if meteor and java is None:
        raise ParameterError("meteor=True needs Java (a `java` on the PATH); none was found")
    return meteor


def _scores(preds: list[str], refs: list[list[str]], meteor: _Meteor | None) -> dict[str, float]:
    """Every metric of tokenized predictions against tokenized references."""
    Bleu, Rouge, Cider = _import_scorers()
    gts = {i: r for i, r in enumerate(refs)}
    res = {i: [p] for i, p in enumerate(preds)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"BLEU-{n + 1}": float(b) for n, b in enumerate(bleu)}
    if meteor is not None:
        out["METEOR"] = meteor.score(preds, refs)
    out["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    out["CIDEr-D"] = float(Cider().compute_score(gts, res)[0])
    return out


def _tokenize_all(
    predictions: list[str], references: list[list[str]], java: str | None
) -> tuple[list[str], list[list[str]]]:
    """One tokenizer run for both sides; an image whose references have no words is an
    error (nothing could match it, and CIDEr-D's idf would be undefined on such a corpus)."""
    flat = predictions + [r for refs in references for r in refs]
    tokens = _tokenize(flat, java)
    preds, rest = tokens[: len(predictions)], iter(tokens[len(predictions) :])
    refs = [[next(rest) for _ in r] for r in references]
    for i, (raw, tok) in enumerate(zip(references, refs, strict=True)):
        if not any(tok):
            raise ParameterError(f"references[{i}] has no words after tokenizing. Found: {raw!r}")
    return preds, refs


def coco_scores(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    meteor: bool | None = None,
) -> dict[str, float]:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr-D of one predicted caption per image, as the
    COCO caption evaluation computes them.

    Args:
        predictions: ``(N,)`` one caption per image. An empty caption scores 0.
        references: ``(N, R_i)`` the reference captions of each image (at least one).
        meteor: compute METEOR (a JVM, several seconds); None to compute it when Java
            is available.

    Returns:
        ``{"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"}`` as
        floats, BLEU, METEOR and ROUGE-L in [0, 1], CIDEr-D in [0, 10]. ``"METEOR"`` is
        absent when not computed.

    Raises:
        ParameterError: no images, ``predictions`` and ``references`` of different
            lengths, an image without references (or whose references have no words),
            anything that is not a string, ``meteor=True`` without Java.

    Example:
        >>> s = coco_scores(["a red circle", "two blue squares"],
        ...                 [["a red circle"], ["two blue squares", "blue squares"]])
        >>> round(s["BLEU-1"], 6), sorted(s)
        (1.0, ['BLEU-1', 'BLEU-2', 'BLEU-3', 'BLEU-4', 'CIDEr-D', 'METEOR', 'ROUGE-L'])
    """
    predictions = check_strings(predictions, "predictions")
    references = _check_references(references)
    check_lengths(len(predictions), len(references), "predictions", "references")
    _import_scorers()  # a missing pycocoevalcap says so before any work
    java = _java()
    use_meteor = _want_meteor(meteor, java)
    preds, refs = _tokenize_all(predictions, references, java)
    with _meteor_scorer(java, use_meteor) as scorer:
        return _scores(preds, refs, scorer)


def leave_one_out_scores(
    references: Sequence[Sequence[str]], *, meteor: bool | None = None
) -> dict[str, float]:
    """Human agreement: :func:`coco_scores` of each reference against the image's others.

    Round ``k`` scores reference ``k`` of every image as the prediction against the
    remaining references; the result is the mean over rounds ``k = 0 .. R - 1``, with
    ``R`` the fewest references any image has (an image with more keeps its extra
    references as references in every round). Every round has one reference fewer than
    a model scored against all ``R`` is given, which lowers BLEU a little: the baseline
    is slightly pessimistic, as in the papers that report it.

    Args:
        references: ``(N, R_i)`` reference captions per image, ``R_i >= 2``.
        meteor: as for :func:`coco_scores`.

    Returns:
        The keys of :func:`coco_scores`.

    Raises:
        ParameterError: as :func:`coco_scores`, and an image with fewer than two
            references.
    """
    tokens, use_meteor, java = _leave_one_out_inputs(references, meteor)
    rounds = min(len(r) for r in tokens)
    with _meteor_scorer(java, use_meteor) as scorer:
        totals: dict[str, float] = {}
        for k in range(rounds):
            preds, rest = _leave_out(tokens, [k] * len(tokens))
            for key, value in _scores(preds, rest, scorer).items():
                totals[key] = totals.get(key, 0.0) + value / rounds
        return totals


def best_reference_scores(
    references: Sequence[Sequence[str]], *, meteor: bool | None = None
) -> dict[str, float]:
    """A ceiling for n-gram metrics: each image's most typical reference against the rest.

    For every image, the reference with the highest CIDEr-D against the image's other
    references (the one a model that could write any of the human captions would best
    choose) is scored by :func:`coco_scores` against those others. On a dataset whose
    references disagree (paraphrases, different facts), this bounds what a single
    caption can get far below the metrics' maxima; a model scored against all ``R``
    references instead of ``R - 1`` has a little more to match.

    Args:
        references: ``(N, R_i)`` reference captions per image, ``R_i >= 2``.
        meteor: as for :func:`coco_scores`.

    Returns:
        The keys of :func:`coco_scores`.

    Raises:
        ParameterError: as :func:`leave_one_out_scores`.
    """
    tokens, use_meteor, java = _leave_one_out_inputs(references, meteor)
    _, _, Cider = _import_scorers()
    rounds = min(len(r) for r in tokens)
    per_image = np.empty((len(tokens), rounds))
    for k in range(rounds):
        preds, rest = _leave_out(tokens, [k] * len(tokens))
        gts = {i: r for i, r in enumerate(rest)}
        res = {i: [p] for i, p in enumerate(preds)}
        per_image[:, k] = Cider().compute_score(gts, res)[1]
    preds, rest = _leave_out(tokens, per_image.argmax(1).tolist())
    with _meteor_scorer(java, use_meteor) as scorer:
        return _scores(preds, rest, scorer)


def _leave_one_out_inputs(references, meteor) -> tuple[list[list[str]], bool, str | None]:
    """Checked and tokenized references (two or more per image), whether to run METEOR,
    and the Java executable."""
    references = _check_references(references)
    for i, refs in enumerate(references):
        if len(refs) < 2:
            raise ParameterError(
                f"references[{i}] must hold at least two captions to leave one out. Found: {refs!r}"
            )
    _import_scorers()
    java = _java()
    use_meteor = _want_meteor(meteor, java)
    _, tokens = _tokenize_all([], references, java)
    return tokens, use_meteor, java


def _leave_out(tokens: list[list[str]], picks: list[int]) -> tuple[list[str], list[list[str]]]:
    """Reference ``picks[i]`` of each image as its prediction, the others as its references."""
    preds = [refs[k] for refs, k in zip(tokens, picks, strict=True)]
    rest = [refs[:k] + refs[k + 1 :] for refs, k in zip(tokens, picks, strict=True)]
    # An image whose other references are all empty could not be scored.
    for i, r in enumerate(rest):
        if not any(r):
            raise ParameterError(
                f"references[{i}] has words in only one caption: leaving it out "
                "leaves nothing to score against"
            )
    return preds, rest
