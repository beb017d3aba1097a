"""The dense pretraining objective: cell labels against hand-made masks, the heads'
shapes, the loss against torch's cross-entropy, the accuracy counts against cases counted
by hand, and the errors on bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xmodal.errors import ParameterError
from xmodal.vision import create_encoder
from xmodal.vision.backbone import (
    BackboneModel,
    backbone_loss,
    cell_accuracy_counts,
    cell_targets,
)


def test_a_cell_takes_the_object_covering_most_of_it_if_it_covers_enough():
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[0, :4, :4] = True  # all of cell (0, 0)
    masks[1, 4:, 4:5] = True  # a quarter of cell (1, 1): 4 of its 16 pixels
    masks[0, 4:, 0:2] = True  # half of cell (1, 0)
    attributes = torch.tensor([[1, 5], [0, 2]])
    cells = cell_targets(masks, attributes, grid=2)
    assert cells.tolist() == [[[2, 0], [2, 1]], [[6, 0], [6, 3]]]
    # Covering less than min_cover is "none".
    assert cell_targets(masks, attributes, grid=2, min_cover=0.3)[:, 1, 1].tolist() == [0, 0]
    # The larger share wins a cell two objects share.
    masks[1, 4:, 2:4] = True  # object 1: half of cell (1, 0)
    masks[0, 4:, 1] = False  # object 0: a quarter of it
    assert cell_targets(masks, attributes, grid=2)[:, 1, 0].tolist() == [1, 3]


def test_no_object_gives_no_labels_and_bad_shapes_are_refused():
    empty = cell_targets(torch.zeros(0, 8, 8, dtype=torch.bool), torch.zeros(0, 3), grid=4)
    assert empty.shape == (3, 4, 4) and not empty.any()
    with pytest.raises(ParameterError, match="grid 3 does not divide the mask size 8x8"):
        cell_targets(torch.zeros(1, 8, 8, dtype=torch.bool), torch.zeros(1, 3), grid=3)
    with pytest.raises(ParameterError, match=r"masks must be \(K, H, W\)"):
        cell_targets(torch.zeros(8, 8, dtype=torch.bool), torch.zeros(1, 3), grid=2)


def test_the_model_scores_every_class_and_none_at_every_position_and_the_place():
    model = BackboneModel(create_encoder("small-cnn", channels=16), {"shape": 5, "colour": 6}, 7)
    out = model(torch.rand(2, 3, 64, 64))
    assert out["shape"].shape == (2, 6, 8, 8) and out["colour"].shape == (2, 7, 8, 8)
    assert out["place"].shape == (2, 7)
    with pytest.raises(ParameterError, match="must name the cell attributes"):
        BackboneModel(create_encoder("small-cnn", channels=16), {"place": 3}, 7)


def test_the_loss_is_the_sum_of_torch_cross_entropies():
    torch.manual_seed(0)
    out = {"shape": torch.randn(2, 4, 3, 3), "size": torch.randn(2, 3, 3, 3),
           "place": torch.randn(2, 5)}  # fmt: skip
    cells = torch.stack([torch.randint(4, (2, 3, 3)), torch.randint(3, (2, 3, 3))], 1)
    place = torch.tensor([1, 4])
    loss, parts = backbone_loss(out, cells, place)
    expected = (F.cross_entropy(out["shape"], cells[:, 0])
                + F.cross_entropy(out["size"], cells[:, 1])
                + F.cross_entropy(out["place"], place))  # fmt: skip
    torch.testing.assert_close(loss, expected)
    assert parts["place"] == pytest.approx(float(F.cross_entropy(out["place"], place)))
    with pytest.raises(ParameterError, match="cells has 1 attributes"):
        backbone_loss(out, cells[:, :1], place)


def test_accuracy_counts_object_cells_per_attribute_and_none_as_wrong():
    # One image, 1x2 cells: an object (shape class 1 + 1, size 0 + 1) on the left.
    cells = torch.tensor([[[[2, 0]], [[1, 0]]]])  # (1, 2, 1, 2)
    shape = torch.full((1, 3, 1, 2), -5.0)
    shape[0, 2, 0, 0] = 5  # right on the object
    shape[0, 1, 0, 1] = 5  # an object seen where there is none
    size = torch.full((1, 2, 1, 2), -5.0)
    size[0, 0, 0, :] = 5  # "none" everywhere: wrong on the object
    out = {"shape": shape, "size": size, "place": torch.tensor([[0.0, 1.0]])}
    counts = cell_accuracy_counts(out, cells, torch.tensor([1]))
    assert counts == {"shape": (1, 1), "size": (0, 1), "objects": (1, 2), "place": (1, 1)}
