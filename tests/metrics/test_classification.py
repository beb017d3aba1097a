"""Mean average precision against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from xmodal.errors import ParameterError
from xmodal.metrics.classification import mean_average_precision


def test_average_precision_by_hand_and_classes_without_positives_left_out():
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.8, 0.7, 0.5], [0.3, 0.2, 0.5], [0.1, 0.9, 0.5]])
    truth = torch.tensor([[1, 0, 0], [0, 0, 0], [1, 1, 0], [0, 0, 0]])
    # Class 0: hits at ranks 1 and 3: (1/1 + 2/3) / 2. Class 1: its one hit ranks 3rd: 1/3.
    # Class 2 has no positive: left out.
    want = ((1 + 2 / 3) / 2 + 1 / 3) / 2
    assert mean_average_precision(scores, truth) == pytest.approx(want)
    assert mean_average_precision(truth.float(), truth) == 1.0


def test_bad_input_is_a_parameter_error():
    with pytest.raises(ParameterError, match=r"both have shape \(N, K\)"):
        mean_average_precision(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ParameterError, match="0/1 labels"):
        mean_average_precision(torch.zeros(2, 2), torch.full((2, 2), 2))
    with pytest.raises(ParameterError, match="no positive label"):
        mean_average_precision(torch.zeros(2, 2), torch.zeros(2, 2))
