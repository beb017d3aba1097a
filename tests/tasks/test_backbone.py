"""The world-pretrained backbone: a short training beats chance on what it learns first,
and caption, retrieval, VQA and recipe runs start from its encoder (frozen, they keep it bit
for bit), with a clear error for a backbone trained with another encoder width or image size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tasks.conftest import one_line_error, read_weights, tiny, train_tiny
from xmodal.engine.run import load_run


def test_a_short_training_beats_chance(tmp_path, one_thread):
    from xmodal.engine import train

    run = train("backbone", runs_dir=tmp_path, overrides=tiny(
        "backbone", "data.train_size=2000", "data.test_size=100", "data.batch_size=32",
        "model.channels=128", "trainer.max_epochs=2", "eval.n_figures=0",
    ))  # fmt: skip
    test = run.metrics["test"]
    chance = test["chance"]
    assert test["colour_acc"] > 2 * chance["colour_acc"]
    assert test["place_acc"] > 2 * chance["place_acc"]
    assert test["objects_acc"] > chance["objects_acc"]
    assert 0 < chance["shape_acc"] < 0.5 and chance["size_acc"] >= 0.5  # two sizes


# The tiny backbone's encoder (caption's default is factored-cnn).
SMALL = "model.encoder=small-cnn"


@pytest.fixture(scope="module")
def backbone(tmp_path_factory) -> Path:
    return train_tiny("backbone", tmp_path_factory.mktemp("runs"))


@pytest.mark.parametrize("task", ["caption", "retrieval", "vqa", "recipe"])
def test_a_frozen_backbone_is_the_encoder_bit_for_bit(backbone, tmp_path, task):
    # VQA's encoder learning rate must be positive: a tiny one for no step to move it.
    lr = "optim.encoder_lr=1e-30" if task == "vqa" else "optim.encoder_lr=0"
    width = {"recipe": ["model.channels=16"], "caption": [SMALL]}.get(task, [])  # the tiny's
    run = train_tiny(task, tmp_path, f"model.backbone={backbone}", lr, *width)
    ours = read_weights(run)
    theirs = read_weights(backbone)
    encoder = {k: v for k, v in theirs.items() if k.startswith("encoder.")}
    if task == "vqa":  # not frozen, so its batch-norm statistics moved: the weights only
        encoder = {k: v for k, v in encoder.items() if "running_" not in k and "num_b" not in k}
    assert encoder and all((ours[k] == v).all() for k, v in encoder.items())
    loaded, _ = load_run(run, task)
    assert loaded.config.model.backbone == str(backbone)


def test_a_fine_tuned_backbone_starts_from_its_weights(backbone, tmp_path):
    caption = train_tiny("caption", tmp_path, f"model.backbone={backbone}", SMALL,
                         "optim.encoder_lr=1e-3")  # fmt: skip
    ours, theirs = read_weights(caption), read_weights(backbone)
    moved = [k for k, v in theirs.items() if k.endswith("weight") and k.startswith("encoder.")
             and not (ours[k] == v).all()]  # fmt: skip
    assert moved  # it trained...
    random = read_weights(train_tiny("caption", tmp_path / "b", SMALL))
    key = moved[0]
    assert (ours[key] - theirs[key]).abs().mean() < (random[key] - theirs[key]).abs().mean()


def _refused(runs: Path, capsys, *overrides: str) -> str:
    """``xmodal train caption`` (tiny) that stops with a one-line error, leaving no run."""
    from xmodal.cli import main

    args = tiny("caption", SMALL, *overrides)
    assert main(["train", "caption", "--runs-dir", str(runs), *args]) == 1
    assert not any((Path(runs) / "caption").glob("*"))
    return one_line_error(capsys)


def test_a_backbone_of_another_width_or_image_size_is_a_clear_error(backbone, tmp_path, capsys):
    err = _refused(tmp_path, capsys, f"model.backbone={backbone}", "model.channels=32")
    assert "trained with model.channels=16; this run has model.channels=32" in err
    small = train_tiny("backbone", tmp_path / "small", "data.image_size=32")
    err = _refused(tmp_path, capsys, f"model.backbone={small}")
    assert "trained with data.image_size=32; this run has data.image_size=64" in err
    err = _refused(tmp_path, capsys, f"model.backbone={tmp_path / 'no'}")
    assert "no such run folder" in err


def test_a_compositional_run_needs_a_backbone_that_never_saw_its_held_out_pairs(
    backbone, tmp_path, capsys
):
    err = _refused(tmp_path, capsys, f"model.backbone={backbone}", "data.compositional=true")
    assert "trained on every colour-shape pair, the held-out ones" in err
    theirs = train_tiny("backbone", tmp_path / "c", "data.compositional=true")
    held = json.loads((theirs / "metrics.json").read_text())["compositional"]
    assert held["held_out_cells"] > 0  # every compositional scene shows a held-out pair
    assert 0 <= held["held_out_shape_acc"] <= 1 and 0 <= held["held_out_colour_acc"] <= 1
    run = train_tiny("caption", tmp_path, f"model.backbone={theirs}", SMALL,
                     "data.compositional=true")  # fmt: skip
    loaded, _ = load_run(run, "caption")
    assert loaded.config.model.backbone == str(theirs)


def test_a_backbone_of_another_encoder_is_a_clear_error(backbone, tmp_path, capsys):
    err = _refused(tmp_path, capsys, f"model.backbone={backbone}", "model.encoder=factored-cnn")
    assert "trained with model.encoder=small-cnn; this run has model.encoder=factored-cnn" in err
