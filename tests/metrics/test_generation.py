"""Metrics of generated images (:mod:`xmodal.metrics.generation`) against values worked out
by hand and a plain loop."""

from __future__ import annotations

import pytest
import torch

from xmodal.errors import ParameterError
from xmodal.metrics.generation import attribute_accuracy, caption_p_at_1, mean_pairwise_rms


def test_mean_pairwise_rms_of_constant_images():
    two = torch.stack([torch.zeros(3, 4, 4), torch.ones(3, 4, 4)])[None]  # (1, 2, 3, 4, 4)
    assert mean_pairwise_rms(two) == pytest.approx(1.0)
    three = torch.stack([torch.full((3, 4, 4), v) for v in (0.0, 0.5, 1.0)])[None]
    assert mean_pairwise_rms(three) == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    same = torch.zeros(1, 2, 3, 4, 4)
    both = torch.cat([two, same])  # (2, 2, ...): the mean over the groups
    assert mean_pairwise_rms(both) == pytest.approx(0.5)
    # Groups of their own sizes: each group's value, then their mean.
    assert mean_pairwise_rms([two[0], three[0]]) == pytest.approx((1.0 + 2 / 3) / 2)
    with pytest.raises(ParameterError, match="K >= 2"):
        mean_pairwise_rms(torch.zeros(2, 1, 3, 4, 4))


def test_caption_p_at_1_ranks_among_the_next_captions():
    n = 100
    eye = torch.eye(n)
    assert caption_p_at_1(eye, eye) == 100.0
    assert caption_p_at_1(eye, eye.roll(1, dims=0)) == 0.0  # each text is the previous image's
    assert caption_p_at_1(eye, torch.zeros(n, n), pool=100) == 100.0  # ties: its own caption
    torch.manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(120, 8), dim=1)
    txt = torch.nn.functional.normalize(img + 0.8 * torch.randn(120, 8), dim=1)
    hits = 0
    for i in range(120):  # by hand: caption i against captions i+1 ... i+9
        scores = [float(txt[(i + k) % 120] @ img[i]) for k in range(10)]
        hits += scores.index(max(scores)) == 0
    assert caption_p_at_1(img, txt, pool=10) == pytest.approx(100.0 * hits / 120)
    with pytest.raises(ParameterError, match=r"pool must be in \[1, 5\]"):
        caption_p_at_1(torch.eye(5), torch.eye(5), pool=10)
    with pytest.raises(ParameterError, match="of one shape"):
        caption_p_at_1(torch.eye(5), torch.eye(4))


def test_attribute_accuracy_counts_items_with_every_attribute_right():
    colour = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]])  # argmax 0 1 0 1
    shape = torch.tensor([[0.0, 1.0, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    both, (c, s) = attribute_accuracy(
        [colour, shape], [torch.tensor([0, 1, 1, 1]), torch.tensor([1, 0, 0, 2])]
    )
    assert (both, c, s) == (50.0, 75.0, 50.0)  # items 0, 1 right twice; 2, 3 once each
    with pytest.raises(ParameterError, match="one target per attribute"):
        attribute_accuracy([colour], [])
