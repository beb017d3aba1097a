"""The VQA accuracy against hand-computed cases and a literal transcription of the official
script's loop, the answer normalisation rule by rule, per-family scores and bad input."""

from __future__ import annotations

import itertools

import pytest

from xmodal.errors import ParameterError
from xmodal.metrics.vqa import (
    normalize_answer,
    process_digit_article,
    process_punctuation,
    vqa_accuracy,
    vqa_scores,
)


def _official_loop(pred: str, answers: list[str]) -> float:
    """The official evaluation's loop, written out: for each annotator, the matches among
    the other nine, min(matches / 3, 1); then the mean."""
    accs = []
    for k in range(len(answers)):
        others = answers[:k] + answers[k + 1 :]
        accs.append(min(1.0, sum(a == pred for a in others) / 3))
    return sum(accs) / len(accs)


@pytest.mark.parametrize(
    ("matches", "expected"),
    [
        (0, 0.0),
        (1, 0.3),  # 1 subset with 0 matches, 9 with 1: 9 * 1/3 / 10
        (2, 0.6),  # 2 subsets with 1 match, 8 with 2: (2/3 + 16/3) / 10
        (3, 0.9),  # 3 subsets with 2 matches, 7 with 3: (3 * 2/3 + 7) / 10
        (4, 1.0),  # every subset keeps at least 3
        (10, 1.0),
    ],
)
def test_ten_annotator_averaging_by_hand(matches, expected):
    answers = ["yes"] * matches + ["no"] * (10 - matches)
    assert vqa_accuracy("yes", answers) == pytest.approx(expected)


def test_accuracy_equals_the_official_loop_on_every_split_of_ten_answers():
    for counts in itertools.product(range(11), repeat=2):
        if sum(counts) > 10:
            continue
        answers = ["red"] * counts[0] + ["blue"] * counts[1]
        answers += ["green"] * (10 - len(answers))
        for pred in ("red", "blue", "green", "purple"):
            assert vqa_accuracy(pred, answers) == pytest.approx(_official_loop(pred, answers))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Yes", "yes"),
        ("  two\n", "2"),  # number words become digits; whitespace goes
        ("none", "0"),
        ("The Dog", "dog"),  # articles dropped
        ("a red and an orange", "red and orange"),
        ("dont know", "don't know"),  # contractions get their apostrophe
        ("isnt", "isn't"),
        ("yes.", "yes"),  # a period not before a digit is deleted
        ("2.5", "2.5"),  # a decimal point stays
        ("black/white", "black white"),  # a mark between words becomes a space
        ("black / white", "black  white"),  # beside a space it is deleted (both spaces stay)
        ("1,000", "1000"),  # a comma between digits: every mark is deleted
        ("t-shirt", "t shirt"),
        ("what?", "what"),  # at the end: replaced by a space, then split away
    ],
)
def test_normalization_rules(raw, expected):
    got = normalize_answer(raw)
    # process_digit_article re-joins words with single spaces, so the double space of
    # "black  white" after punctuation is single after normalisation.
    assert got == " ".join(expected.split())


def test_steps_one_by_one():
    assert process_punctuation("black / white") == "black  white"
    assert process_punctuation("yes!") == "yes "
    assert process_punctuation("(left)") == " left "
    assert process_digit_article("Three Cats") == "3 cats"
    assert process_digit_article("an apple") == "apple"


def test_prediction_and_truth_are_normalised_alike():
    # A world export answers "two"; a prediction "2" or "Two." is the same answer.
    assert vqa_accuracy("2", ["two"] * 10) == 1.0
    assert vqa_accuracy("Two.", ["two"] * 10) == 1.0
    assert vqa_accuracy("the circle", ["circle"] * 10) == 1.0
    assert vqa_accuracy("circles", ["circle"] * 10) == 0.0


def test_scores_overall_and_per_family_by_hand():
    preds = ["yes", "2", "red", "yes"]
    answers = [["yes"] * 10, ["two"] * 10, ["red"] * 3 + ["blue"] * 7, ["no"] * 10]
    families = ["exist", "count", "colour", "exist"]
    s = vqa_scores(preds, answers, groups=families)
    assert s["accuracy"] == pytest.approx(100 * (1 + 1 + 0.9 + 0) / 4)
    assert s["accuracy_exist"] == pytest.approx(50.0)
    assert s["accuracy_count"] == pytest.approx(100.0)
    assert s["accuracy_colour"] == pytest.approx(90.0)
    assert (s["n_questions"], s["n_exist"], s["n_count"], s["n_colour"]) == (4, 2, 1, 1)


def test_group_names_with_slashes_become_keys():
    s = vqa_scores(["yes", "1"], [["yes"] * 10, ["1"] * 10], groups=["yes/no", "number"])
    assert s["accuracy_yes_no"] == 100.0 and s["accuracy_number"] == 100.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: vqa_accuracy("yes", ["yes"]), "at least 2 human answers"),
        (lambda: vqa_accuracy("yes", "yes"), "list of the human answers"),
        (lambda: vqa_accuracy(3, ["yes"] * 10), "must be a string"),
        (lambda: vqa_scores(["yes"], [["yes"] * 10, ["no"] * 10]), "one entry per question"),
        (lambda: vqa_scores([], []), "at least one question"),
        (lambda: vqa_scores(["yes"], [["yes", 1] * 5]), r"answers\[0\]"),
        (lambda: vqa_scores(["yes"], [["yes"] * 10], groups=["a", "b"]), "one label"),
    ],
)
def test_bad_input_is_a_parameter_error(call, message):
    with pytest.raises(ParameterError, match=message):
        call()
