"""The public sound source localization protocol (LVS, EZ-VSL) against a line-by-line
rendering of its reference code: median binarisation, cIoU, cIoU@0.5 and the AUC."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics
import torch

from xmodal.errors import ParameterError
from xmodal.metrics.localization import binarize_maps, ciou, ciou_summary


def _reference(heatmap: np.ndarray, gt: np.ndarray) -> float:
    """LVS's test code for one image: normalise, threshold at the sorted middle, cIoU."""
    pred = (heatmap - heatmap.min()) / (heatmap.max() - heatmap.min())
    thr = np.sort(pred.flatten())[int(pred.shape[0] * pred.shape[1] / 2)]
    pred[pred > thr] = 1
    pred[pred < 1] = 0
    return np.sum(pred * gt) / (np.sum(gt) + np.sum(pred * (gt == 0)))


def _reference_auc(cious) -> float:
    results = [np.sum(np.array(cious) >= 0.05 * i) / len(cious) for i in range(21)]
    return sklearn.metrics.auc([0.05 * i for i in range(21)], results)


def test_ciou_and_its_summary_equal_the_reference_code():
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(40, 16, 16, generator=g)
    truth = torch.zeros(40, 16, 16)
    for k in range(40):  # a box of its own size and place per image
        y, x, h, w = (int(v) for v in torch.randint(0, 8, (4,), generator=g))
        truth[k, y : y + h + 2, x : x + w + 2] = 1
        maps[k, y : y + h + 2, x : x + w + 2] += float(k % 3) * 0.5  # some find it
    got = ciou(binarize_maps(maps), truth)
    want = [_reference(maps[k].numpy().astype(np.float64), truth[k].numpy()) for k in range(40)]
    assert got.tolist() == pytest.approx(want)
    summary = ciou_summary(got)
    assert summary["auc"] == pytest.approx(_reference_auc(want))
    assert summary["ciou@0.5"] == pytest.approx(100 * np.mean(np.array(want) >= 0.5))


def test_half_range_binarisation_and_edge_cases():
    heat = torch.tensor([[[0.0, 0.2], [0.6, 1.0]]])
    assert binarize_maps(heat, "half").tolist() == [[[False, False], [True, True]]]
    assert not binarize_maps(torch.ones(1, 4, 4), "median").any()  # constant: nothing
    one = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    assert ciou(one, one).tolist() == [1.0]
    assert ciou(one, torch.zeros_like(one)).tolist() == [0.0]  # no source: 0
    # Shares 1 at t = 0, then 0.5 up to t = 1: 0.05 * (1 + 0.5) / 2 + 0.95 * 0.5.
    assert ciou_summary(torch.tensor([1.0, 0.0])) == pytest.approx(
        {"ciou@0.5": 50.0, "auc": 0.0375 + 0.475}
    )
    with pytest.raises(ParameterError, match=r"both be \(N, H, W\)"):
        ciou(one, one[0])
    with pytest.raises(ParameterError, match="rule"):
        binarize_maps(heat, "mean")


def test_the_median_rule_keeps_half_the_image_whatever_the_source_covers():
    """A 4x4 source in a 10x10 image and a map that ranks every pixel by its distance to
    the source's centre (the source's pixels first): the median rule keeps the 49 pixels
    above the sorted middle, so cIoU = 16 / 49, the half rule (of a 0/1 map) the source."""
    y, x = torch.meshgrid(torch.arange(10.0), torch.arange(10.0), indexing="ij")
    truth = torch.zeros(1, 10, 10)
    truth[0, 3:7, 3:7] = 1
    rank = -((y - 4.5) ** 2 + (x - 4.5) ** 2) + 1e-3 * torch.arange(100.0).reshape(10, 10)
    heat = (rank + 100 * truth[0])[None]  # the source's 16 pixels on top, all distinct
    pred = binarize_maps(heat, "median")
    assert int(pred.sum()) == 49
    assert ciou(pred, truth).tolist() == [pytest.approx(16 / 49)]
    assert ciou(binarize_maps(truth, "half"), truth).tolist() == [1.0]
