"""SLAVC's open-set localization test (pairs with and without a source) against a
line-by-line rendering of its reference code, and the pointing game of a map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xmodal.errors import ParameterError
from xmodal.metrics.localization import detection_scores, map_confidence, map_pointing


def _precision_recall(bb_list, ciou_list, confidence_list, confidence_thr, ciou_thr=0.5):
    """SLAVC's ``EvaluatorFull.calc_precision_recall``, transcribed."""
    true_pos, false_pos, false_neg = 0, 0, 0
    for bb, ciou, confidence in zip(bb_list, ciou_list, confidence_list, strict=True):
        if bb == 0:
            if confidence >= confidence_thr:
                false_pos += 1
        elif confidence >= confidence_thr:
            if ciou >= ciou_thr:
                true_pos += 1
            else:
                false_pos += 1
        else:
            false_neg += 1
    precision = 1.0 if true_pos + false_pos == 0 else true_pos / (true_pos + false_pos)
    recall = 1.0 if true_pos + false_neg == 0 else true_pos / (true_pos + false_neg)
    return precision, recall


def _reference_ap(bb_list, ciou_list, confidence_list, iou_thr=0.5):
    """SLAVC's ``EvaluatorFull.calc_ap``, transcribed."""
    precision, recall, skip_thr = [], [], max(1, len(ciou_list) // 200)
    for thr in np.sort(np.array(confidence_list))[:-1][::-skip_thr]:
        p, r = _precision_recall(bb_list, ciou_list, confidence_list, thr, iou_thr)
        precision.append(p)
        recall.append(r)
    precision_max = [np.max(precision[i:]) for i in range(len(precision))]
    return sum(
        precision_max[i] * (recall[i + 1] - recall[i]) for i in range(len(precision_max) - 1)
    )


@pytest.mark.parametrize("n", [30, 450])  # 450: SLAVC's threshold skip is 2
def test_ap_equals_the_reference_code(n):
    rng = np.random.default_rng(n)
    has = rng.random(n) < 0.6
    cious = np.where(has, rng.random(n), 0.0)
    conf = rng.random(n) + 0.3 * has  # sources are a little more confident
    got = detection_scores(torch.tensor(cious), torch.tensor(conf), torch.tensor(has))
    want = _reference_ap(has.astype(int).tolist(), cious.tolist(), conf.tolist())
    assert got["ap"] == pytest.approx(100 * want)
    f1 = []
    for t in conf:
        p, r = _precision_recall(has.astype(int).tolist(), cious.tolist(), conf.tolist(), t)
        f1.append(0.0 if p + r == 0 else 2 * p * r / (p + r))
    assert got["max_f1"] == pytest.approx(100 * max(f1))


def test_a_perfect_detector_scores_100_and_a_blind_one_less():
    has = torch.tensor([True] * 5 + [False] * 5)
    cious = torch.tensor([0.9] * 5 + [0.0] * 5)
    perfect = detection_scores(cious, has.double(), has)  # sources surer than the rest
    assert perfect["max_f1"] == pytest.approx(100.0)
    blind = detection_scores(cious, torch.ones(10), has)  # the same confidence everywhere
    assert blind["max_f1"] == pytest.approx(100 * 2 * 0.5 * 1 / 1.5)  # P 0.5, R 1
    wrong_place = detection_scores(torch.zeros(10), has.double(), has)
    assert wrong_place["max_f1"] == 0.0


def test_detection_scores_refuse_mismatched_lengths():
    with pytest.raises(ParameterError, match="same length"):
        detection_scores(torch.zeros(3), torch.zeros(4), torch.zeros(3, dtype=torch.bool))


def test_confidence_is_the_mean_of_the_top_quarter():
    scores = torch.arange(10.0).reshape(1, 2, 5)  # SLAVC: np.sort(x)[-n // 4:], 3 values
    assert map_confidence(scores).tolist() == [pytest.approx((7 + 8 + 9) / 3)]
    assert map_confidence(torch.full((2, 4, 4), 0.25)).tolist() == [0.25, 0.25]


def test_pointing_hits_where_the_peak_is_on_a_source():
    maps = torch.zeros(2, 4, 4)
    maps[0, 1, 2] = 1.0
    maps[1, 3, 3] = 1.0
    truth = torch.zeros(2, 4, 4)
    truth[:, 1, 2] = 1.0
    assert map_pointing(maps, truth).tolist() == [True, False]
    with pytest.raises(ParameterError, match="both be"):
        map_pointing(maps, truth[:, :2])
