"""Object-label pretraining: every label once, the targets of a scene are exactly its
objects' labels, the head scores an image by its best location, and the objective's steps
draw their scenes from a seeded generator and, fitted, lower the loss and train only the
encoder and its head."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import pytest
import torch

from xmodal.engine.fit import fit_steps
from xmodal.errors import ParameterError
from xmodal.vision import create_encoder
from xmodal.vision.pretrain import (
    LabelHead,
    object_label_loss,
    object_label_objective,
    object_label_targets,
    object_labels,
)
from xmodal.world import COLOURS, SHAPES, SIZES, World


def test_object_labels_name_every_colour_shape_and_pair_once():
    labels = object_labels(COLOURS, SHAPES, SIZES)
    assert len(labels) == len(set(labels))
    assert len(labels) == len(COLOURS) + len(SHAPES) * (1 + len(COLOURS) + len(SIZES))
    assert {"red", "circle", "red circle", "small circle"} <= set(labels)


def test_targets_mark_the_labels_of_the_scenes_objects():
    labels = object_labels(COLOURS, SHAPES, SIZES)
    scenes = [World(seed=0).scene("train", i, audio=False, questions=False) for i in range(3)]
    targets = object_label_targets(scenes, labels)
    assert targets.shape == (3, len(labels))
    for scene, row in zip(scenes, targets, strict=True):
        names = {n for o in scene.objects for n in (o.colour, o.shape, f"{o.colour} {o.shape}",
                                                    f"{o.size} {o.shape}")}  # fmt: skip
        assert {labels[j] for j in row.nonzero().flatten().tolist()} == names
    odd = SimpleNamespace(objects=[SimpleNamespace(colour="teal", shape="circle", size="small")])
    with pytest.raises(ParameterError, match="'teal' is not one of the labels"):
        object_label_targets([odd], labels)


def test_the_head_scores_an_image_by_its_best_location():
    head = LabelHead(4, 3)
    features = torch.randn(2, 4, 5, 5)
    every = head.score(features)  # (2, 3, 5, 5)
    torch.testing.assert_close(head(features), every.flatten(2).max(dim=-1).values)
    encoder = create_encoder("small-cnn", channels=4)
    scenes = [World(seed=0).scene("train", 0, audio=False, questions=False)]
    labels = object_labels(COLOURS, SHAPES, SIZES)
    loss = object_label_loss(encoder, LabelHead(4, len(labels)), scenes, labels)
    assert loss.ndim == 0 and loss.requires_grad and float(loss.detach()) > 0


def test_the_objective_draws_its_scenes_from_its_seed():
    drawn = []

    def scene(i):
        drawn.append(i)
        return World(seed=0).scene("train", i, audio=False, questions=False)

    labels = object_labels(COLOURS, SHAPES, SIZES)
    encoder = create_encoder("small-cnn", channels=4)
    head, step = object_label_objective(encoder, scene, 5, labels, batch_size=3, seed=1)
    assert isinstance(head, LabelHead) and head.score.out_channels == len(labels)
    step(0), step(1)
    gen = torch.Generator().manual_seed(1)
    expected = [torch.randint(5, (3,), generator=gen).tolist() for _ in range(2)]
    assert drawn == [i for batch in expected for i in batch]
    with pytest.raises(ParameterError, match="n_scenes must be an integer >= 1"):
        object_label_objective(encoder, scene, 0, labels)


def test_pretraining_lowers_the_loss_and_changes_only_the_encoder():
    torch.manual_seed(0)
    encoder = create_encoder("small-cnn", channels=16).eval()
    before = [p.detach().clone() for p in encoder.parameters()]
    scene = partial(World(seed=0).scene, "train", audio=False, questions=False)
    labels = object_labels(COLOURS, SHAPES, SIZES)
    head, step = object_label_objective(encoder, scene, 20, labels, batch_size=8, seed=0)
    opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=5e-3)
    losses = fit_steps(opt, step, steps=40, modules=[encoder, head])
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0]  # the labels' base rates at the least
    assert all(not torch.equal(a, b) for a, b in zip(before, encoder.parameters(), strict=True))
    assert not encoder.training  # its mode is given back
