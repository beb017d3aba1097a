"""Classification metrics shared by tasks: multi-label mean average precision, and the
best threshold of a binary score.

``mean_average_precision(scores (N, K), truth (N, K))`` is the mean over the classes with
at least one positive of scikit-learn's ``average_precision_score`` (the area under the
precision-recall curve as a step function, as PASCAL VOC's and AudioSet's mAP compute it);
a class no item has is left out, since its precision is undefined.
"""

from __future__ import annotations

import torch

from xmodal._checks import as_signal
from xmodal.errors import ParameterError

__all__ = ["best_threshold", "mean_average_precision"]


def mean_average_precision(scores, truth) -> float:
    """The mean average precision of ``scores`` ``(N, K)`` (higher: more likely) against
    the 0/1 labels ``truth`` ``(N, K)``, over the classes with a positive.

        >>> mean_average_precision(torch.tensor([[0.9, 0.1], [0.2, 0.8]]),
        ...                        torch.tensor([[1, 0], [0, 1]]))
        1.0
    """
    from sklearn.metrics import average_precision_score

    scores = as_signal(scores, "scores", min_ndim=2)
    truth = torch.as_tensor(truth)
    if scores.ndim != 2 or truth.shape != scores.shape:
        raise ParameterError(
            f"scores and truth must both have shape (N, K). Found {tuple(scores.shape)} and "
            f"{tuple(truth.shape)}"
        )
    if not bool(((truth == 0) | (truth == 1)).all()):
        raise ParameterError("truth must hold 0/1 labels")
    has = truth.bool().any(0)
    if not bool(has.any()):
        raise ParameterError("truth has no positive label: average precision is undefined")
    t, s = truth[:, has].numpy(), scores[:, has].double().numpy()
    return float(average_precision_score(t, s, average="macro"))


def best_threshold(scores, labels) -> float:
    """The threshold ``t`` on ``scores`` ``(N,)`` (predict 1 where ``score > t``) with the
    best accuracy on the 0/1 ``labels`` ``(N,)``: below the lowest score, above the
    highest, or midway between two neighbouring distinct scores (tied scores fall on one
    side together, as ``score > t`` puts them). The lowest such threshold wins a tie.

        >>> best_threshold(torch.tensor([0.1, 0.4, 0.6]), torch.tensor([0, 1, 1]))
        0.25
    """
    scores = as_signal(scores, "scores", min_ndim=1)
    labels = torch.as_tensor(labels)
    if scores.ndim != 1 or labels.shape != scores.shape or not len(scores):
        raise ParameterError(
            f"scores and labels must be two vectors of one length > 0. Found "
            f"{tuple(scores.shape)} and {tuple(labels.shape)}"
        )
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ParameterError("labels must be 0/1")
    values = scores.double().unique()  # sorted, distinct
    cuts = torch.cat([values[:1] - 1.0, (values[1:] + values[:-1]) / 2, values[-1:] + 1.0])
    y = labels.bool()
    right = ((scores.double()[None, :] > cuts[:, None]) == y[None, :]).sum(1)
    return float(cuts[int(right.argmax())])
