"""The ``vqa`` task end to end through the CLI on a tiny world (run folder, metrics per
family, figures, predict on (image, question) pairs, bad input as one-line errors), its
batches (every question of each image, with where its objects are), the encoder's
pretraining and the VQA v2 loader on the world's export. Eval from the exported weights
is the contract suite's (tests/tasks/test_contract.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.tasks.conftest import (
    NO_FIGURES,
    listed_tasks,
    one_line_error,
    read_metrics,
    tiny,
    train_refused,
    train_tiny,
)
from xmodal.cli import main
from xmodal.data.questions import collate_questions, world_questions
from xmodal.data.vqa import VQAv2, annotations_file, questions_file
from xmodal.errors import DataError, ParameterError
from xmodal.tasks.vqa import VQATask
from xmodal.world import World
from xmodal.world.datasets import make_dataset
from xmodal.world.export import export, image_id, question_id

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN, VAL, TEST = 120, 40, 60  # conftest's tiny vqa: questions of 12, 4 and 6 scenes
FAMILIES = ("colour", "count", "exist", "relation", "shape")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return train_tiny("vqa", tmp_path_factory.mktemp("vqa-runs"), "eval.n_figures=2")


@pytest.fixture(scope="module")
def vqa_export(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "vqa"
    return export(World(seed=0), "vqa", out, sizes={"train": 12, "val": 4, "test": 6})


# ----------------------------------------------------------------------------- train / eval


def test_train_writes_the_run_folder_with_accuracy_per_family(run_dir):
    for name in ("config.yaml", "run.json", "vocab.json", "answers.json", "model.json",
                 "model.safetensors", "metrics.json", "report.html"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    test = read_metrics(run_dir)["test"]
    assert test["n_questions"] == TEST and test["n_images"] == TEST // 10
    present = [f for f in FAMILIES if f"accuracy_{f}" in test]
    assert len(present) >= 4  # 60 world questions cover (almost) every family
    assert sum(test[f"n_{f}"] for f in present) == TEST
    pointing = ["pointing_hop1", "pointing_hop2"]  # SAN on the world: where the hops looked
    for key in ["accuracy", "majority_accuracy", *(f"accuracy_{f}" for f in present), *pointing]:
        assert 0.0 <= test[key] <= 100.0, key
    # The overall accuracy is the question-weighted mean of the families'.
    weighted = sum(test[f"accuracy_{f}"] * test[f"n_{f}"] for f in present) / TEST
    assert test["accuracy"] == pytest.approx(weighted)
    answers = json.loads((run_dir / "answers.json").read_text())
    assert answers["majority"] == answers["answers"][0]
    assert test["n_classes"] == len(answers["answers"]) <= 17
    figures = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    # one image per family in turn (colour, count, exist, relation, shape), where it has one
    assert figures == ["vqa_val_0_colour.png", "vqa_val_1_count.png"]


def test_the_compositional_split_scores_the_held_out_combinations_apart(tmp_path):
    run = train_tiny("vqa", tmp_path, "data.compositional=true", NO_FIGURES)
    metrics = read_metrics(run)
    comp = metrics["compositional"]
    assert set(metrics["test"]) <= set(comp)  # the same metrics on both splits
    assert comp["n_questions"] == TEST and 0.0 <= comp["accuracy"] <= 100.0
    # Every compositional scene shows a held-out combination; a few questions name one.
    world = World(seed=0, compositional=True)
    split = world_questions(make_dataset(world, "vqa", "compositional", size=TEST))
    named = [q for q, n in zip(split.questions, split.named_held_out, strict=True) if n]
    assert comp["n_held_out_named"] == len(named) > 0
    assert all(("red" in q and "circle" in q) or ("blue" in q and "square" in q) for q in named)
    assert 0.0 <= comp["accuracy_held_out_named"] <= 100.0
    # Test scenes hold no held-out combination: a question naming one is about its absence.
    test_split = world_questions(make_dataset(world, "vqa", "test", size=10 * TEST))
    absent = [a[0] for a, n in zip(test_split.answers, test_split.named_held_out, strict=True) if n]
    assert absent and set(absent) <= {"no", "zero"}


# ----------------------------------------------------------------------------- predict


def test_predict_answers_each_image_question_pair(run_dir, scene_png, tmp_path, capsys):
    big = Image.open(scene_png).resize((100, 80))  # resized to the run's 64x64 on load
    big.save(tmp_path / "big.png")
    argv = ["predict", "vqa", "--run", str(run_dir), "--out", str(tmp_path / "out"),
            str(scene_png), "how many circles are there?",
            str(tmp_path / "big.png"), "what color is the star?", "--top-k", "3"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "'how many circles are there?':" in printed
    records = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert [r["question"] for r in records] == ["how many circles are there?",
                                                "what color is the star?"]  # fmt: skip
    for r in records:
        probs = [a["probability"] for a in r["answers"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
        assert (tmp_path / "out" / Path(r["files"][0]).name).is_file()  # the SAN hops
    assert records[0]["unknown_words"] == []
    # "color" and "star" are not world words: read as <unk>, and said so.
    assert records[1]["unknown_words"] == ["color", "star"]
    assert "<unk>: color, star" in printed


def test_a_question_of_unknown_words_is_answered_and_reported(run_dir, scene_png, tmp_path):
    from xmodal.engine import predict

    (record,) = predict(run_dir, [str(scene_png), "zorb blick?"], tmp_path)
    assert record["unknown_words"] == ["zorb", "blick"]
    assert len(record["answers"]) == 5  # eval.top_k


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (["{png}"], "takes pairs IMAGE QUESTION"),
        (["{png}", "   ?! "], "has no words"),
        (["what is it?", "{png}"], "give the image first"),
        (["{txt}", "is there a circle?"], "is not an image file"),
        (["{png}", "is there a circle?", "--top-k", "0"], "top_k must be an integer >= 1"),
    ],
)
def test_bad_predict_input_is_one_line(run_dir, scene_png, tmp_path, capsys, inputs, message):
    txt = tmp_path / "notes.txt"
    txt.write_text("not an image")
    inputs = [x.format(png=scene_png, txt=txt) for x in inputs]
    assert main(["predict", "vqa", "--run", str(run_dir), "--out", str(tmp_path), *inputs]) == 1
    assert message in one_line_error(capsys)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.fusion=sum"], "model.fusion must be one of"),
        (["data.name=vqa"], "data.name=vqa needs data.root"),
        (["data.top_k=0"], "data.top_k must be an integer >= 1"),
        (["model.pretrain_steps=-1"], "model.pretrain_steps must be an integer >= 0"),
        (["optim.encoder_lr=0"], "optim.encoder_lr must be"),
        (["model.attention_loss=-1"], "model.attention_loss must be"),
    ],
)
def test_bad_config_is_one_line(tmp_path, capsys, overrides, message):
    assert message in train_refused("vqa", tmp_path, capsys, *tiny("vqa", *overrides))


def test_vqa_is_listed_by_xmodal_tasks(capsys):
    assert listed_tasks(capsys)["vqa"][1] == "referencing"  # its family


# ----------------------------------------------------------------------------- data


def _fitting_task(run_dir: Path, *overrides: str) -> VQATask:
    """A tiny-config task set up for training in ``run_dir``."""
    from xmodal.engine.config import load_config
    from xmodal.tasks.vqa import VQAConfig

    task = VQATask(load_config(VQAConfig, overrides=tiny("vqa", *overrides)))
    task.setup(run_dir, "fit")
    return task


def test_batches_hold_every_question_of_each_image(tmp_path):
    task = _fitting_task(tmp_path)
    batch = collate_questions([task.dataset("train")[g] for g in (0, 3)])
    assert batch["image"].shape == (2, 3, 64, 64)
    assert batch["image_index"].tolist() == [0] * 10 + [1] * 10
    assert batch["question_index"].tolist() == [*range(10), *range(30, 40)]
    assert batch["target"].shape == (20, len(task.vocab.answers))
    labels = batch["target"].argmax(dim=1).tolist()
    truth = [task.data("train").answers[i][0] for i in batch["question_index"].tolist()]
    assert [task.vocab.answers[j] for j in labels] == truth
    assert bool((batch["target"].sum(dim=1) == 1).all())


def test_referents_are_where_the_answer_is_read(tmp_path):
    """The masks of each question's two looks, checked against its answer: an exist
    question's objects are there iff the answer is yes; a yes/no relation's first look
    lies in the asked direction from the second iff the answer is yes."""
    task = _fitting_task(tmp_path)
    split, ds = task.data("train"), task.dataset("train", referents=True)
    batch = collate_questions([ds[g] for g in range(len(split.groups))])
    refs = batch["referents"]
    assert refs.shape == (TRAIN, 2, 64, 64) and refs.dtype == torch.bool
    torch.testing.assert_close(batch["image"][3], split.image(3))
    seen = set()
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    for i in batch["question_index"].tolist():
        question, answer, family = split.questions[i], split.answers[i][0], split.families[i]
        first, second = refs[i, 0], refs[i, 1]
        if family in ("exist", "colour", "shape", "count"):
            assert torch.equal(first, second)
            if family in ("exist", "count"):
                assert bool(first.any()) == (answer not in ("no", "zero")), question
        elif question.startswith("is "):  # "is the A <relation> the B?"
            (ax, ay), (bx, by) = ((xs[m].mean(), ys[m].mean()) for m in (first, second))
            rel = next(r for r in ("left", "right", "above", "over", "top", "below", "under",
                                   "beneath") if r in question.split())  # fmt: skip
            holds = {"left": ax < bx, "right": ax > bx, "above": ay < by, "over": ay < by,
                     "top": ay < by}.get(rel, ay > by)  # fmt: skip
            assert ("yes" if bool(holds) else "no") == answer, question
        seen.add(family if not question.startswith("is the") else "yes/no")
        if answer not in ("no", "zero") or family == "relation":
            assert first.any() and second.any(), question
    assert {"exist", "yes/no", "colour"} <= seen
    assert "referents" not in task.dataset("train")[0]


def test_the_attention_loss_joins_the_training_loss_for_san_on_the_world(tmp_path):
    task = _fitting_task(tmp_path, "model.pretrain_steps=0")
    torch.manual_seed(0)
    model = task.build_model()
    batch = next(iter(task.train_dataloader()))
    assert batch["referents"].shape[:2] == (len(batch["tokens"]), 2)
    loss, logs = task.training_step(model, batch)
    assert logs["attention_xent"] > 0
    assert float(loss.detach()) == pytest.approx(logs["xent"] + logs["attention_xent"], rel=1e-5)
    task.config.model.attention_loss = 0.0  # off: plain batches, plain loss
    batch = next(iter(task.train_dataloader()))
    loss, logs = task.training_step(model, batch)
    assert "referents" not in batch and "attention_xent" not in logs
    assert float(loss.detach()) == pytest.approx(logs["xent"])
    product = _fitting_task(tmp_path / "p", "model.fusion=product")
    assert "referents" not in next(iter(product.train_dataloader()))


# ----------------------------------------------------------------------------- VQA v2 files


def test_the_loader_reads_the_worlds_export_as_the_world_gives_it(vqa_export):
    ds = VQAv2.from_folder(vqa_export, "val", image_size=64)
    view = make_dataset(World(seed=0), "vqa", "val", size=40)
    assert len(ds) == 40 and ds.image_names == "world"  # found from the file's info
    for i in (0, 13, 39):
        item, truth = ds[i], view[i]
        assert item["question"] == truth["question"]
        assert item["answers"] == [truth["answer"]] * 10
        assert item["answer"] == truth["answer"]
        assert item["image_id"] == image_id("val", i // 10)
        assert item["question_id"] == question_id("val", i // 10, i % 10)
        # PNG holds the 8-bit image exactly.
        torch.testing.assert_close(item["image"], truth["image"])
    small = VQAv2.from_folder(vqa_export, "val", image_size=32)[0]["image"]
    assert small.shape == (3, 32, 32)


def test_question_ids_without_annotations_are_named(vqa_export, tmp_path):
    questions = json.loads(questions_file(vqa_export, "val").read_text())
    questions["questions"][3]["question_id"] = 123
    questions["questions"][7]["question_id"] = 456
    qfile = tmp_path / "q.json"
    qfile.write_text(json.dumps(questions))
    with pytest.raises(DataError) as err:
        VQAv2(qfile, annotations_file(vqa_export, "val"), vqa_export)
    message = str(err.value)
    assert "questions without annotations: 123, 456" in message
    assert f"annotations of no question: {question_id('val', 0, 3)}" in message


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda q, a: q["questions"].append(dict(q["questions"][0])), "appears more than once"),
        (lambda q, a: q["questions"][0].pop("question"), "has no field 'question'"),
        (lambda q, a: a["annotations"][0].update(answers=[]), "has no answers"),
        (lambda q, a: a["annotations"][0].update(image_id=5), "is about image"),
        (lambda q, a: q.pop("questions"), 'needs a top-level "questions" list'),
    ],
)
def test_broken_files_are_data_errors(vqa_export, tmp_path, edit, message):
    q = json.loads(questions_file(vqa_export, "test").read_text())
    a = json.loads(annotations_file(vqa_export, "test").read_text())
    edit(q, a)
    (tmp_path / "q.json").write_text(json.dumps(q))
    (tmp_path / "a.json").write_text(json.dumps(a))
    with pytest.raises(DataError, match=message):
        VQAv2(tmp_path / "q.json", tmp_path / "a.json", vqa_export)


def test_unreadable_files_and_bad_arguments(vqa_export, tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="is not a JSON file"):
        VQAv2(tmp_path / "bad.json", annotations_file(vqa_export, "val"), vqa_export)
    with pytest.raises(DataError, match="does not exist"):
        VQAv2.from_folder(vqa_export, "val2014")
    with pytest.raises(ParameterError, match="image_names must be one of"):
        VQAv2.from_folder(vqa_export, "val", image_names="flickr")
    ds = VQAv2.from_folder(vqa_export, "val", image_names="COCO_{subtype}_{image_id:012d}.jpg")
    with pytest.raises(DataError, match="COCO_val_000020000000.jpg does not exist"):
        ds[0]


def test_training_on_the_worlds_export_reports_answer_types(vqa_export, tmp_path):
    run = train_tiny("vqa", tmp_path, "data.name=vqa", f"data.root={vqa_export}",
                     "eval.n_figures=1")  # fmt: skip
    test = read_metrics(run)["test"]
    assert test["n_questions"] == 60
    assert {"accuracy_yes_no", "accuracy_number", "accuracy_other"} <= set(test)
    # Classes are normalised answers: "two" is the class "2".
    classes = json.loads((run / "answers.json").read_text())["answers"]
    assert "yes" in classes and "two" not in classes


# ----------------------------------------------------------------------------- pretraining


def test_the_encoder_trains_at_its_own_learning_rate(tmp_path):
    task = _fitting_task(tmp_path, "model.pretrain_steps=0")
    config = task.config
    model = task.build_model()
    groups = task.configure_optimizers(model)["optimizer"].param_groups
    encoder = {id(p) for p in model.encoder.parameters()}
    assert [g["initial_lr"] for g in groups] == [config.optim.lr, config.optim.encoder_lr]
    assert {id(p) for p in groups[1]["params"]} == encoder
    assert not encoder & {id(p) for p in groups[0]["params"]}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_build_model_pretrains_the_encoder_unless_the_run_resumes(tmp_path):
    task = _fitting_task(tmp_path)  # tiny: model.pretrain_steps=2

    def encoder_weights():
        torch.manual_seed(0)
        return [p.detach().clone() for p in task.build_model().encoder.parameters()]

    fresh = encoder_weights()
    task.resuming = True  # the engine's flag: the checkpoint's weights come next
    resumed = encoder_weights()
    task.config.model.pretrain_steps = 0
    untrained = encoder_weights()
    assert all(torch.equal(a, b) for a, b in zip(resumed, untrained, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(fresh, untrained, strict=True))
