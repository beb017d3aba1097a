"""Caption metrics: the COCO scores, the human agreement baseline, and what a caption says.

Two kinds of score live here.

**Word overlap with references**, computed exactly as the COCO caption evaluation server
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

**What a caption says about a world scene**, read by the world's own caption parser
(:func:`xmodal.world.language.caption_facts`), so a paraphrase scores like the phrasing it
paraphrases:

- :func:`content_precision`: the fraction of captions that name a colour-shape pair and
  are right about every pair they name.
- :func:`attention_grounding`: the fraction of colour and shape words whose attention
  map peaks on an object of that colour or shape; :func:`grounding_chance` is the same
  fraction for a peak placed uniformly at random.
- :func:`held_out_recall`: on the compositional split, how often the caption names a
  held-out colour-shape pair that the image shows.

Example:
    >>> s = coco_scores(["a red circle on the beach", "two blue squares at night"],
    ...                 [["a red circle on the beach", "a big red circle"],
    ...                  ["two blue squares at night"]], meteor=False)
    >>> {k: round(v, 3) for k, v in s.items()}
    {'BLEU-1': 1.0, 'BLEU-2': 1.0, 'BLEU-3': 1.0, 'BLEU-4': 1.0, 'ROUGE-L': 1.0, 'CIDEr-D': 8.015}
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from xmodal._checks import as_signal, check_bool
from xmodal.errors import ParameterError, XmodalError
from xmodal.world.language import caption_facts, word_attribute
from xmodal.world.schema import COLOURS, SHAPES, WorldObject

__all__ = [
    "METRICS",
    "attention_grounding",
    "best_reference_scores",
    "coco_scores",
    "content_precision",
    "grounding_chance",
    "held_out_recall",
    "leave_one_out_scores",
]

METRICS: tuple[str, ...] = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")

_INSTALL = "pip install pycocoevalcap"

# ----------------------------------------------------------------------------- input checks


def _check_strings(values, name: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ParameterError(
            f"{name} must be a sequence of strings. Found: {type(values).__name__}"
        )
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise ParameterError(f"{name}[{i}] must be a string. Found: {v!r}")
    return list(values)


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
        refs = _check_strings(refs, f"{name}[{i}]")
        if not refs:
            raise ParameterError(f"{name}[{i}] has no reference captions")
        out.append(refs)
    return out


def _check_lengths(n: int, m: int, a: str, b: str) -> None:
    if n != m:
        raise ParameterError(f"{a} and {b} must have one entry per image. Found {n} and {m}")


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
    predictions = _check_strings(predictions, "predictions")
    references = _check_references(references)
    _check_lengths(len(predictions), len(references), "predictions", "references")
    _import_scorers()  # a missing pycocoevalcap says so before any work
    java = _java()
    use_meteor = _want_meteor(meteor, java)
    preds, refs = _tokenize_all(predictions, references, java)
    scorer = _Meteor(java) if use_meteor else None
    try:
        return _scores(preds, refs, scorer)
    finally:
        if scorer is not None:
            scorer.close()


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
    scorer = _Meteor(java) if use_meteor else None
    try:
        totals: dict[str, float] = {}
        for k in range(rounds):
            preds, rest = _leave_out(tokens, [k] * len(tokens))
            for key, value in _scores(preds, rest, scorer).items():
                totals[key] = totals.get(key, 0.0) + value / rounds
        return totals
    finally:
        if scorer is not None:
            scorer.close()


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
    scorer = _Meteor(java) if use_meteor else None
    try:
        return _scores(preds, rest, scorer)
    finally:
        if scorer is not None:
            scorer.close()


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


# ------------------------------------------------------------------- world content metrics


def _check_objects(objects, n: int, against: str) -> list[list[WorldObject]]:
    if isinstance(objects, (str, WorldObject)) or not isinstance(objects, Sequence):
        raise ParameterError(
            "objects must be a sequence with one list of WorldObjects per image. "
            f"Found: {type(objects).__name__}"
        )
    _check_lengths(n, len(objects), against, "objects")
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
    captions = _check_strings(captions, "captions")
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
    captions = _check_strings(captions, "captions")
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
    _check_lengths(len(objects), len(masks), "objects", "masks")
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
        out.append(_check_strings(ws, f"words[{i}]"))
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
    _check_lengths(len(words), len(alphas), "words", "alphas")
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
