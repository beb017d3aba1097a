"""COCO caption metrics against pycocoevalcap and analytic answers; the human agreement
baseline and the reference ceiling."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from xmodal.errors import ParameterError
from xmodal.metrics import (
    best_reference_scores,
    captioning,
    coco_scores,
    leave_one_out_scores,
)
from xmodal.world import World

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="needs a Java runtime")


@pytest.fixture(scope="module")
def scenes():
    world = World(seed=0)
    return [world.scene("test", i, audio=False, questions=False) for i in range(60)]


@pytest.fixture
def no_java(monkeypatch):
    monkeypatch.setattr(captioning, "_java", lambda: None)


# ---------------------------------------------------------------------------- coco_scores


def test_perfect_captions_score_one_and_cider_d_is_ten_on_unique_ngrams(no_java):
    refs = [["a red circle on the beach"], ["two blue squares in a forest"], ["one green cross"]]
    with pytest.warns(UserWarning, match="java is not on the PATH"):
        s = coco_scores([r[0] for r in refs], refs)
    assert "METEOR" not in s  # no Java: left out, with a warning
    for n in range(1, 5):
        assert s[f"BLEU-{n}"] == pytest.approx(1.0, abs=1e-6)
    assert s["ROUGE-L"] == pytest.approx(1.0)
    # Every n-gram occurs in one image's references only: idf = log(3) for all of them
    # and the vectors are identical, so each n-gram order present has cosine 1: CIDEr-D
    # is 10 for the first two images; the third has no 4-gram, so 10 * 3/4.
    assert s["CIDEr-D"] == pytest.approx((10.0 + 10.0 + 7.5) / 3)


def test_disjoint_captions_score_zero_and_single_image_cider_is_zero():
    refs = [["a red circle"], ["two blue squares"]]
    s = coco_scores(["green crosses everywhere", "yellow diamonds"], refs, meteor=False)
    for key in ("BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr-D"):
        assert s[key] == pytest.approx(0.0, abs=1e-6)
    # One image: every n-gram has idf log(1) - log(1) = 0, so CIDEr-D is 0 by construction.
    assert coco_scores(["a red circle"], [["a red circle"]], meteor=False)["CIDEr-D"] == 0.0


def test_scores_equal_a_direct_pycocoevalcap_call_on_the_same_tokens(scenes):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    # Lower-case captions without punctuation are their own PTB tokenization.
    refs = [[" ".join(c.replace(",", " ").split()) for c in s.captions[1:]] for s in scenes]
    preds = [" ".join(s.captions[0].replace(",", " ").split()) for s in scenes]
    ours = coco_scores(preds, refs, meteor=False)
    gts = dict(enumerate(refs))
    res = {i: [p] for i, p in enumerate(preds)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    for n in range(4):
        assert ours[f"BLEU-{n + 1}"] == pytest.approx(bleu[n], rel=1e-12)
    assert ours["ROUGE-L"] == pytest.approx(Rouge().compute_score(gts, res)[0], rel=1e-12)
    assert ours["CIDEr-D"] == pytest.approx(Cider().compute_score(gts, res)[0], rel=1e-12)
    assert 0.0 < ours["BLEU-4"] < ours["BLEU-1"] < 1.0


SENTENCES = [
    "A man's dog, running on the beach!",
    "Two people don't like the t-shirt; 3.5 cats and 1,000 birds.",
    "there is a little red square over an orange cross on the beach",
    "on the beach, there is a small square on the right of the blue circle",
    'We see: a BIG "blue" thing... at night?',
]


@needs_java
def test_ptb_tokenizer_matches_pycocoevalcap_and_the_python_fallback():
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    expected = PTBTokenizer().tokenize({i: [{"caption": s}] for i, s in enumerate(SENTENCES)})
    ours = captioning._ptb_tokenize(SENTENCES + ["", "  \n "], shutil.which("java"))
    assert ours == [expected[i][0] for i in range(len(SENTENCES))] + ["", ""]
    assert [captioning._simple_tokenize(s) for s in SENTENCES] == ours[: len(SENTENCES)]


@needs_java
def test_fallback_without_java_gives_the_same_scores(scenes, monkeypatch):
    refs = [s.captions[1:] for s in scenes[:20]]
    preds = [s.captions[0].upper() + "." for s in scenes[:20]]
    with_java = coco_scores(preds, refs, meteor=False)
    monkeypatch.setattr(captioning, "_java", lambda: None)
    with pytest.warns(UserWarning, match="PTB-like rule"):
        without = coco_scores(preds, refs, meteor=False)
    assert without == pytest.approx(with_java, rel=1e-12)


def test_empty_predictions_score_zero_for_their_image():
    refs = [["a red circle"], ["two blue squares"]]
    s = coco_scores(["a red circle", ""], refs, meteor=False)
    # BLEU-1: 3 of 3 words right, but the corpus brevity penalty counts the empty one.
    assert s["BLEU-1"] == pytest.approx(math.exp(1 - 6 / 3), rel=1e-6)
    assert s["ROUGE-L"] == pytest.approx(0.5)
    assert coco_scores(["", "  "], refs, meteor=False)["CIDEr-D"] == 0.0


@pytest.mark.filterwarnings("ignore:java is not on the PATH")
def test_bad_inputs_are_refused(no_java):
    with pytest.raises(ParameterError, match="nothing to score"):
        coco_scores([], [], meteor=False)
    with pytest.raises(ParameterError, match="one entry per image. Found 2 and 1"):
        coco_scores(["a", "b"], [["a"]], meteor=False)
    with pytest.raises(ParameterError, match=r"references\[1\] has no reference captions"):
        coco_scores(["a", "b"], [["a"], []], meteor=False)
    with pytest.raises(ParameterError, match=r"references\[0\] must be a list .* not one string"):
        coco_scores(["a"], ["a red circle"], meteor=False)
    with pytest.raises(ParameterError, match=r"references\[0\] has no words"):
        coco_scores(["a"], [["...", "!"]], meteor=False)
    with pytest.raises(ParameterError, match=r"predictions\[0\] must be a string"):
        coco_scores([None], [["a"]], meteor=False)
    with pytest.raises(ParameterError, match="meteor=True needs Java"):
        coco_scores(["a"], [["a"]], meteor=True)


@pytest.mark.slow
@needs_java
def test_meteor_matches_pycocoevalcap(scenes):
    from pycocoevalcap.meteor.meteor import Meteor

    refs = [[" ".join(c.replace(",", " ").split()) for c in s.captions[1:]] for s in scenes]
    preds = [" ".join(s.captions[0].replace(",", " ").split()) for s in scenes]
    preds[3] = ""  # an empty caption is scored, not an error
    preds[5] = refs[5][0]  # and a perfect one
    ours = coco_scores(preds, refs)  # meteor=None: computed, as Java is there
    expected, _ = Meteor().compute_score(
        dict(enumerate(refs)), {i: [p] for i, p in enumerate(preds)}
    )
    assert ours["METEOR"] == pytest.approx(expected, rel=1e-9)
    assert list(ours) == list(captioning.METRICS)
    assert 0.0 < ours["METEOR"] < 1.0


# ------------------------------------------------------------------------- leave one out


def test_leave_one_out_averages_each_reference_against_the_others():
    refs = [
        ["a red circle on the beach", "a big red circle at the seaside", "one red circle"],
        ["two blue squares", "a pair of blue squares in the woods", "blue squares"],
    ]
    got = leave_one_out_scores(refs, meteor=False)
    rounds = [
        coco_scores([r[k] for r in refs], [r[:k] + r[k + 1 :] for r in refs], meteor=False)
        for k in range(3)
    ]
    assert got == pytest.approx({key: np.mean([r[key] for r in rounds]) for key in got})
    same = leave_one_out_scores(
        [["a red circle on the beach"] * 2, ["two blue squares at night"] * 3], meteor=False
    )
    assert same["BLEU-4"] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ParameterError, match="at least two captions"):
        leave_one_out_scores([["a red circle"]], meteor=False)


def test_best_reference_scores_picks_each_images_most_typical_reference():
    # In every image two references agree and one is an outlier: the pick is the first of
    # the agreeing two (argmax takes the first on a tie), scored against the other two.
    refs = [
        ["a red circle on the beach", "a red circle on the beach", "two green crosses"],
        ["green crosses in a field", "three blue squares at night", "three blue squares at night"],
        ["one yellow diamond", "a purple triangle", "one yellow diamond"],
    ]
    picks = [0, 1, 0]
    want = coco_scores(
        [r[k] for r, k in zip(refs, picks, strict=True)],
        [r[:k] + r[k + 1 :] for r, k in zip(refs, picks, strict=True)],
        meteor=False,
    )
    assert best_reference_scores(refs, meteor=False) == pytest.approx(want)
    assert want["CIDEr-D"] > leave_one_out_scores(refs, meteor=False)["CIDEr-D"]
    with pytest.raises(ParameterError, match="at least two captions"):
        best_reference_scores([["a red circle"], ["a blue square", "blue squares"]], meteor=False)
