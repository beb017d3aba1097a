"""The VQA accuracy of Antol et al. (2015) / Goyal et al. (2017), computed as the official
evaluation script computes it, and reported per question family.

A question has ``n`` human answers (10 in VQA v1/v2). A predicted answer is right to the
degree that humans gave it::

    acc(ans) = mean over the n leave-one-annotator-out subsets of min(#matches / 3, 1)

so an answer that 3 of 10 annotators gave scores ``(3 * 2/3 + 7 * 1) / 10 = 0.9`` (the 3
subsets that drop a matching annotator hold 2 matches), one that 4 or more gave scores 1,
and one that nobody gave scores 0.

Before matching, answers are normalised by the official script's rules (our own
implementation of the rules of ``vqaEval.py`` in GT-Vision-Lab/VQA):

1. newlines and tabs become spaces; leading and trailing space is dropped;
2. punctuation (:func:`process_punctuation`): each of ``; / [ ] " { } ( ) = + \\ _ - > <
   @ ` , ? !`` is deleted where the text has it next to a space (or the text has a comma
   between digits, ``"1,000"``), else replaced by a space; a period not followed by a digit
   is deleted (``"2.5"`` keeps its point);
3. digits and articles (:func:`process_digit_article`): lower case, number words
   ``none``/``zero`` .. ``ten`` become digits, the articles ``a``, ``an``, ``the`` are
   dropped, and contractions written without an apostrophe get it back (``"dont"`` ->
   ``"don't"``).

One deliberate difference: the official script normalises the *prediction* with all three
steps but a ground-truth answer only with step 2, and only when the annotators disagree,
because the answers of the VQA annotation files were normalised when they were collected.
Here every ground-truth answer goes through all three steps. On the official files this
changes nothing (their answers are already in normal form, and normalising is idempotent
on them); on files whose answers are not, such as the world's export (``"two"``, not
``"2"``), it keeps a right answer from scoring 0.

Example:
    >>> vqa_accuracy("Two", ["2"] * 3 + ["3"] * 7)
    0.9
    >>> normalize_answer("The dog's   bowl.")
    "dog's bowl"
    >>> vqa_scores(["yes", "2"], [["yes"] * 10, ["3"] * 10], groups=["exist", "count"])
    {'accuracy': 50.0, 'accuracy_count': 0.0, 'accuracy_exist': 100.0, 'n_questions': 2, ...}
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from xmodal.errors import ParameterError

__all__ = [
    "normalize_answer",
    "process_digit_article",
    "process_punctuation",
    "vqa_accuracy",
    "vqa_scores",
]

# The official script's punctuation marks (the newer list, as in the VQA v2 tools).
_PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">",
                "<", "@", "`", ",", "?", "!")  # fmt: skip
# A comma between digits ("1,000"): then every mark is deleted rather than spaced.
_DIGIT_COMMA = re.compile(r"(\d)(,)(\d)")
# A period not followed by a digit. (The official pattern also has a look-behind meant to
# spare "5." after a digit, but it is written "(?!<=\d)", a look-ahead that never fails.)
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
# The official call passes re.UNICODE (32) where `count` goes: at most 32 periods go.
_PERIOD_COUNT = 32

_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
            "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
            "ten": "10"}  # fmt: skip
_ARTICLES = frozenset(("a", "an", "the"))

# Contractions written without their apostrophe, and what the official script makes of
# them. Its table also holds capitalised keys ("Im", "Ive"), which never match a
# lower-cased word, so they are left out here.
_CONTRACTIONS = dict(
    pair.split("=")
    for pair in """
    aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't
    couldn'tve=couldn't've couldnt've=couldn't've didnt=didn't doesnt=doesn't dont=don't
    hadnt=hadn't hadnt've=hadn't've hadn'tve=hadn't've hasnt=hasn't havent=haven't hed=he'd
    hed've=he'd've he'dve=he'd've hes=he's howd=how'd howll=how'll hows=how's isnt=isn't
    itd=it'd itd've=it'd've it'dve=it'd've itll=it'll let's=let's maam=ma'am
    mightnt=mightn't mightnt've=mightn't've mightn'tve=mightn't've mightve=might've
    mustnt=mustn't mustve=must've neednt=needn't notve=not've oclock=o'clock
    oughtnt=oughtn't ow's'at='ow's'at 'ows'at='ow's'at 'ow'sat='ow's'at shant=shan't
    shed've=she'd've she'dve=she'd've she's=she's shouldve=should've shouldnt=shouldn't
    shouldnt've=shouldn't've shouldn'tve=shouldn't've somebody'd=somebodyd
    somebodyd've=somebody'd've somebody'dve=somebody'd've somebodyll=somebody'll
    somebodys=somebody's someoned=someone'd someoned've=someone'd've
    someone'dve=someone'd've someonell=someone'll someones=someone's
    somethingd=something'd somethingd've=something'd've something'dve=something'd've
    somethingll=something'll thats=that's thered=there'd thered've=there'd've
    there'dve=there'd've therere=there're theres=there's theyd=they'd theyd've=they'd've
    they'dve=they'd've theyll=they'll theyre=they're theyve=they've twas='twas
    wasnt=wasn't wed've=we'd've we'dve=we'd've weve=we've werent=weren't whatll=what'll
    whatre=what're whats=what's whatve=what've whens=when's whered=where'd wheres=where's
    whereve=where've whod=who'd whod've=who'd've who'dve=who'd've wholl=who'll whos=who's
    whove=who've whyll=why'll whyre=why're whys=why's wont=won't wouldve=would've
    wouldnt=wouldn't wouldnt've=wouldn't've wouldn'tve=wouldn't've yall=y'all
    yall'll=y'all'll y'allll=y'all'll yall'd've=y'all'd've y'alld've=y'all'd've
    y'all'dve=y'all'd've youd=you'd youd've=you'd've you'dve=you'd've youll=you'll
    youre=you're youve=you've
    """.split()
)


def _check_text(text, name: str) -> str:
    if not isinstance(text, str):
        raise ParameterError(f"{name} must be a string. Found: {text!r}")
    return text


def process_punctuation(text: str) -> str:
    """Step 2 of the normalisation: punctuation deleted or turned into spaces, periods
    not followed by a digit deleted.

    >>> process_punctuation("yes, it is!")  # "!" ends the text: no space beside it
    'yes it is '
    >>> process_punctuation("black/white")
    'black white'
    >>> process_punctuation("2.5")
    '2.5'
    """
    text = _check_text(text, "text")
    out = text
    digit_comma = _DIGIT_COMMA.search(text) is not None
    for p in _PUNCTUATION:
        # The official test looks at the original text, not at what earlier marks left.
        if p + " " in text or " " + p in text or digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD.sub("", out, count=_PERIOD_COUNT)


def process_digit_article(text: str) -> str:
    """Step 3: lower case; number words to digits; articles dropped; contractions given
    their apostrophe; words joined by single spaces.

    >>> process_digit_article("The Two dogs")
    '2 dogs'
    >>> process_digit_article("dont know")
    "don't know"
    """
    words = [_NUMBERS.get(w, w) for w in _check_text(text, "text").lower().split()]
    words = [_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES]
    return " ".join(words)


def normalize_answer(text: str) -> str:
    """An answer in the official evaluation's normal form (steps 1-3 of the module doc).

    >>> normalize_answer(" Two\\n")
    '2'
    """
    text = _check_text(text, "answer").replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(text))


def _check_answers(answers, where: str) -> list[str]:
    if isinstance(answers, str) or not isinstance(answers, Sequence):
        raise ParameterError(
            f"{where} must be a list of the human answers (strings). Found: {answers!r}"
        )
    if len(answers) < 2:
        raise ParameterError(
            f"{where} must hold at least 2 human answers (VQA has 10; with one, every "
            "leave-one-out subset is empty: repeat a single certain answer 10 times). "
            f"Found: {list(answers)!r}"
        )
    for a in answers:
        _check_text(a, f"every answer of {where}")
    return list(answers)


def _accuracy(pred: str, truth: list[str]) -> float:
    """``pred`` and ``truth`` already normalised."""
    matches = sum(a == pred for a in truth)
    # Dropping a matching annotator leaves matches - 1 in the other n - 1; dropping any
    # other leaves all of them.
    n = len(truth)
    return (matches * min(1.0, (matches - 1) / 3) + (n - matches) * min(1.0, matches / 3)) / n


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """The VQA accuracy in [0, 1] of ``prediction`` against the human ``answers``.

    Both sides are normalised with :func:`normalize_answer`; then the accuracy is the
    mean, over the ``n`` subsets of ``n - 1`` annotators, of ``min(#matches / 3, 1)``.

    >>> vqa_accuracy("yes", ["yes"] * 3 + ["no"] * 7)
    0.9
    >>> vqa_accuracy("no", ["yes"] * 3 + ["no"] * 7)
    1.0
    >>> vqa_accuracy("yes", ["yes"] + ["no"] * 9)
    0.3

    Raises:
        ParameterError: ``prediction`` not a string; fewer than 2 answers, or one that is
            not a string.
    """
    pred = normalize_answer(prediction)
    truth = [normalize_answer(a) for a in _check_answers(answers, "answers")]
    return _accuracy(pred, truth)


def vqa_scores(
    predictions: Sequence[str],
    answers: Sequence[Sequence[str]],
    *,
    groups: Sequence[str] | None = None,
) -> dict[str, float]:
    """The mean VQA accuracy of ``predictions``, in percent, overall and per group.

    Args:
        predictions: one predicted answer per question.
        answers: each question's human answers (10 in VQA; the world's single certain
            answer repeated 10 times).
        groups: optional, one label per question (the world's question family, or VQA's
            answer type ``yes/no`` / ``number`` / ``other``).

    Returns:
        ``{"accuracy": %, "n_questions": n}`` plus, with ``groups``, ``"accuracy_<group>"``
        and ``"n_<group>"`` for every group (spaces and slashes in a group name become
        ``_``: ``accuracy_yes_no``).

    Raises:
        ParameterError: lengths that differ, no question, or a bad answer list (which
            one is named).
    """
    if isinstance(predictions, str) or not isinstance(predictions, Sequence):
        raise ParameterError(f"predictions must be a list of strings. Found: {predictions!r}")
    if isinstance(answers, str) or not isinstance(answers, Sequence):
        raise ParameterError(f"answers must be a list of answer lists. Found: {answers!r}")
    if len(predictions) != len(answers):
        raise ParameterError(
            f"predictions and answers must have one entry per question. Found "
            f"{len(predictions)} predictions and {len(answers)} answer lists"
        )
    if not predictions:
        raise ParameterError("vqa_scores needs at least one question. Found none")
    if groups is not None and (isinstance(groups, str) or len(groups) != len(predictions)):
        raise ParameterError(
            f"groups must hold one label per question ({len(predictions)}). Found: "
            f"{groups if isinstance(groups, str) else len(groups)!r}"
        )
    accs = []
    for i, (pred, truth) in enumerate(zip(predictions, answers, strict=True)):
        truth = [normalize_answer(a) for a in _check_answers(truth, f"answers[{i}]")]
        accs.append(_accuracy(normalize_answer(_check_text(pred, f"predictions[{i}]")), truth))
    out: dict[str, float] = {"accuracy": 100.0 * sum(accs) / len(accs), "n_questions": len(accs)}
    if groups is not None:
        totals: Counter = Counter()
        counts: Counter = Counter()
        for g, a in zip(groups, accs, strict=True):
            totals[str(g)] += a
            counts[str(g)] += 1
        for g in sorted(counts):
            key = re.sub(r"[\s/]+", "_", g)
            out[f"accuracy_{key}"] = 100.0 * totals[g] / counts[g]
            out[f"n_{key}"] = counts[g]
    return out
