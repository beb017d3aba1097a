"""The ``recipe`` task end to end through the CLI on a tiny world (``conftest.TINY``): the
paper's retrieval metrics and the dish classes, eval reproducing them, predict on image
files, the Recipe1M data path on the world's export, the 20% negatives of a training step,
and one-line errors. What every task must do is checked by ``test_contract.py``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.tasks.conftest import listed_tasks, one_line_error, read_metrics, save_png, train_tiny
from xmodal.cli import main
from xmodal.data.recipes import RECIPE_KEYS, collate_recipes
from xmodal.engine import load_run
from xmodal.engine.config import config_from_dict
from xmodal.errors import DataError
from xmodal.nn.losses import info_nce_loss
from xmodal.tasks.recipe import RecipeTask
from xmodal.world import World
from xmodal.world.export import export

TRAIN, VAL, TEST = 24, 8, 12  # conftest.TINY["recipe"]'s split sizes
DIRECTIONS = ("im2recipe", "recipe2im")
RECALLS = [f"{d}_R@{k}" for d in DIRECTIONS for k in (1, 5, 10)]
RANKS = [f"{d}_{r}" for d in DIRECTIONS for r in ("medr", "meanr")]


def _config(**sections):
    data = {"train_size": TRAIN, "val_size": VAL, "test_size": TEST}
    return config_from_dict(RecipeTask.Config, {"data": {**data, **sections.pop("data", {})},
                                                **sections})  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return train_tiny("recipe", tmp_path_factory.mktemp("recipe-runs"), "eval.n_figures=2")


def test_train_writes_the_dish_classes_and_the_paper_metrics(run_dir):
    from xmodal.world.recipes import DISHES

    assert json.loads((run_dir / "dish_classes.json").read_text()) == list(DISHES)
    metrics = read_metrics(run_dir)
    test = metrics["test"]
    # Galleries of 10 drawn 3 times; the 10K one is skipped, the split holds 12.
    assert set(test) == {"10", "n_recipes", "draws", "im_class_acc", "recipe_class_acc"}
    assert test["n_recipes"] == TEST and test["draws"] == 3
    gallery = test["10"]
    assert set(gallery) == {*RECALLS, *RANKS, "rsum"}
    for key in RECALLS:
        assert 0.0 <= gallery[key] <= 100.0, key
    for key in RANKS:
        assert 1.0 <= gallery[key] <= 10 and math.isfinite(gallery[key]), key
    assert gallery["im2recipe_R@10"] == 100.0  # a gallery of 10: the 10th rank at worst
    assert metrics["train"]["steps"] == TRAIN // 12
    figures = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    assert figures == ["recipe_test_image_to_recipe.png", "recipe_test_recipe_to_image.png"]
    assert "test/10/im2recipe_medr" in (run_dir / "report.html").read_text()


def test_evaluate_averages_retrieval_metrics_over_seeded_draws(run_dir):
    from xmodal.metrics.retrieval import retrieval_metrics

    task, model = load_run(run_dir)
    img, rec = task.embed_split(model, "test")
    assert img.shape == rec.shape == (TEST, 8)
    rng = np.random.default_rng([task.config.seed, 10])
    draws = []
    for _ in range(3):
        idx = torch.from_numpy(np.sort(rng.choice(TEST, size=10, replace=False)))
        draws.append(retrieval_metrics(img[idx] @ rec[idx].T, torch.arange(10)))
    got = task.evaluate(model, "test")["10"]
    assert got["im2recipe_medr"] == pytest.approx(np.mean([d["i2t_medr"] for d in draws]))
    assert got["recipe2im_R@5"] == pytest.approx(np.mean([d["t2i_R@5"] for d in draws]))
    # eval from the run folder gives the numbers training wrote.
    assert main(["eval", "recipe", "--run", str(run_dir)]) == 0
    saved = json.loads((run_dir / "eval-test.json").read_text())
    assert saved == read_metrics(run_dir)["test"]


def test_predict_gives_the_top_recipes_of_the_test_gallery(run_dir, tmp_path, capsys):
    task, model = load_run(run_dir)
    image = World(seed=0).recipe("test", 3).image
    path = save_png(image, tmp_path / "dish.png")
    out = tmp_path / "out"
    assert main(["predict", "recipe", "--run", str(run_dir), str(path), "--out", str(out)]) == 0
    (record,) = json.loads((out / "predictions.json").read_text())
    img, rec = task.embed_split(model, "test")
    with torch.no_grad():
        q = model.embed_images(image[None])[0]
    want = (rec @ q).topk(3).indices.tolist()
    assert [h["index"] for h in record["results"]] == want
    titles = [r["title"] for r in task.data("test").recipes]
    assert [h["title"] for h in record["results"]] == [titles[j] for j in want]
    assert Path(record["files"][0]).is_file()
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    assert main(["predict", "recipe", "--run", str(run_dir), str(bad)]) == 1
    assert str(bad) in one_line_error(capsys)


def test_a_training_step_pairs_twenty_percent_negatives_and_is_reproducible(tmp_path):
    task = RecipeTask(_config(model={"channels": 8, "word_dim": 4, "embed_dim": 4,
                                     "ingredient_hidden": 4, "sentence_hidden": 4,
                                     "instruction_hidden": 4, "negatives": 0.2,
                                     "loss": "cosine"}))  # fmt: skip
    task.setup(tmp_path, "fit")
    data = task.encoded("train")
    batch = collate_recipes([data[i] for i in range(20)])
    rows, target = task.pairs(batch, epoch=0)
    neg = target == -1
    assert int(neg.sum()) == 4 and bool((rows[neg] != torch.arange(20)[neg]).all())
    again, _ = task.pairs(batch, epoch=0)
    assert torch.equal(rows, again)  # the same (seed, epoch, batch): the same pairs
    assert any(not torch.equal(rows, task.pairs(batch, epoch=e)[0]) for e in range(1, 4))
    model = task.build_model()
    loss, parts = task.training_step(model, batch)
    assert loss.ndim == 0 and set(parts) == {"cos", "cls_img", "cls_rec"}
    assert model.classifier.out_features == 12
    # InfoNCE (the default) uses every other recipe of the batch: no pairing, a temperature.
    task.config.model.loss = "infonce"
    loss, parts = task.training_step(model, batch)
    assert set(parts) == {"nce", "cls_img", "cls_rec", "logit_scale"}
    img = model.embed_images(batch["image"])
    rec = model.embed_recipes(*(batch[k] for k in RECIPE_KEYS))
    want = 0.98 * info_nce_loss(img, rec, model.logit_scale()) + 0.01 * (
        F.cross_entropy(model.classify(img), batch["label"])
        + F.cross_entropy(model.classify(rec), batch["label"])
    )
    assert float(loss.detach()) == pytest.approx(float(want.detach()), rel=1e-5)


def test_recipe1m_data_trains_on_the_world_export(tmp_path):
    root = export(World(seed=0), "recipe1m", tmp_path / "r1m",
                  sizes={"train": 12, "val": 4, "test": 6})  # fmt: skip
    task = RecipeTask(_config(data={"name": "recipe1m", "root": str(root), "batch_size": 6},
                              model={"channels": 8, "word_dim": 4, "embed_dim": 4,
                                     "ingredient_hidden": 4, "sentence_hidden": 4,
                                     "instruction_hidden": 4}))  # fmt: skip
    (tmp_path / "run").mkdir()
    task.setup(tmp_path / "run", "fit")
    assert task.class_names == tuple(sorted(task.class_names))  # from classes.json
    world = World(seed=0)
    assert [r["title"] for r in task.data("test").recipes] == [
        world.recipe("test", i).title for i in range(6)
    ]
    model = task.build_model()
    batch = next(iter(task.train_dataloader()))
    loss, _ = task.training_step(model, batch)
    loss.backward()
    metrics = task.evaluate(model, "test")
    assert metrics["n_recipes"] == 6 and "recipe2im_medr" in metrics["6"]
    # Without classes.json the semantic regularisation cannot run: said at setup.
    (root / "classes.json").unlink()
    task = RecipeTask(_config(data={"name": "recipe1m", "root": str(root)}))
    with pytest.raises(DataError, match="has no classes.json.*model.semantic_weight=0"):
        task.setup(tmp_path / "run", "fit")
    off = RecipeTask(_config(data={"name": "recipe1m", "root": str(root)},
                             model={"semantic_weight": 0.0}))  # fmt: skip
    off.setup(tmp_path / "run", "fit")
    assert off.build_model().classifier is None


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.margin=1.5"], "model.margin must be in [0, 1)"),
        (["model.negatives=1"], "model.negatives must be in [0, 1)"),
        (["model.semantic_weight=-0.1"], "model.semantic_weight must be a finite number >= 0"),
        (["data.name=recipe1m"], "data.name=recipe1m needs data.root"),
        (["data.name=recipe1m", "data.root=/nonexistent/r1m"], "/nonexistent/r1m is not a folder"),
        (["eval.sizes=[]"], "eval.sizes must name at least one gallery size"),
    ],
)
def test_bad_config_or_data_is_one_line(tmp_path, capsys, overrides, message):
    assert main(["train", "recipe", "--runs-dir", str(tmp_path), *overrides]) == 1
    assert message in one_line_error(capsys)


def test_recipe_is_listed_by_xmodal_tasks(capsys):
    assert listed_tasks(capsys)["recipe"] == ["recipe", "matching", "world", RecipeTask.summary]
