"""The ``caption`` task end to end through the CLI, on a tiny world (CPU, a few seconds a run):
the run folder, eval from safetensors without pickle, predict on image files of any colour
mode, one-line errors, seeded determinism, exact resume, Karpathy-format data, the task
listing, and the caption sets a training step sees."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.tasks.conftest import (
    NO_FIGURES,
    listed_tasks,
    one_line_error,
    read_log,
    read_metrics,
    read_weights,
    same_weights,
    train_printed,
    train_refused,
    train_tiny,
)
from xmodal.cli import main
from xmodal.data.images import load_image
from xmodal.engine import load_run
from xmodal.errors import DataError, ParameterError
from xmodal.tasks.caption import CaptionSets, CaptionTask, collate_sets
from xmodal.text.vocab import BOS_ID, EOS_ID, PAD_ID, Vocabulary
from xmodal.world import World
from xmodal.world.datasets import make_dataset

# conftest.TINY["caption"]'s split sizes; a run here makes no figure (NO_FIGURES) unless
# it asks for some.
TRAIN, VAL, TEST = 16, 8, 8
N_FIGURES = 2
NGRAM = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D")
WORLD_ONLY = ("content_precision", "attention_grounding", "grounding_chance")
CEILING = ("ceiling", "of_ceiling")  # the world's best-reference scores, ours as a share


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished tiny run (read only) and what ``xmodal train`` printed."""
    return train_printed("caption", tmp_path_factory.mktemp("caption-runs"),
                         f"eval.n_figures={N_FIGURES}")  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(trained) -> Path:
    return trained[0]


# ----------------------------------------------------------------------------- train


def test_train_writes_the_whole_run_folder(trained):
    d, printed = trained
    for name in ("config.yaml", "run.json", "vocab.json", "checkpoints/last.ckpt",
                 "model.safetensors", "model.json", "metrics.json", "logs/csv/metrics.csv",
                 "report.html"):  # fmt: skip
        assert (d / name).is_file(), name
    assert list((d / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    assert not [p for p in d.rglob("*") if p.name.endswith(".tmp")]
    assert json.loads((d / "run.json").read_text())["task"] == "caption"
    meta = json.loads((d / "model.json").read_text())
    assert meta["task"] == "caption" and meta["config"]["model"]["hidden_dim"] == 32
    assert "hidden_dim: 32" in (d / "config.yaml").read_text()
    assert len(Vocabulary.load(d / "vocab.json")) > 4  # the specials and the world's words

    metrics = read_metrics(d)
    test = metrics["test"]
    assert set(test) == {*NGRAM, *WORLD_ONLY, *CEILING, "n_images"}  # no METEOR: meteor=false
    assert test["n_images"] == TEST
    assert set(test["ceiling"]) == set(NGRAM)
    for key in ("BLEU-4", "CIDEr-D"):
        assert test["of_ceiling"][key] == pytest.approx(test[key] / test["ceiling"][key])
    for key in (*NGRAM, *WORLD_ONLY):
        assert isinstance(test[key], float) and math.isfinite(test[key]), key
        assert 0.0 <= test[key] <= (10.0 if key == "CIDEr-D" else 1.0), key
    assert 0.0 < test["grounding_chance"] < 1.0  # objects cover part of the image
    assert metrics["train"]["epochs"] == 1 and metrics["train"]["steps"] == TRAIN // 8

    figures = sorted((d / "figures").glob("*.png"))
    assert [p.name for p in figures] == ["attention_val_0.png", "attention_val_1.png"]
    report = (d / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 1 + N_FIGURES  # curves + figures
    assert "http://" not in report and "https://" not in report
    assert "test/CIDEr-D" in report and "attention_val_1.png" in report

    lines = printed.splitlines()
    assert lines[0] == f"run folder: {d}" and lines[-1] == f"run folder: {d}"
    table = {line.split()[0]: line.split()[1] for line in lines if line.startswith("test/")}
    assert table["test/CIDEr-D"] == f"{test['CIDEr-D']:.4g}"
    assert table["test/n_images"] == str(TEST)


def test_logs_have_every_step_and_the_validation_loss(run_dir):
    rows = read_log(run_dir)
    assert [int(r["step"]) for r in rows if r["train/loss_step"]] == [0, 1]
    (val,) = [float(r["val/xent"]) for r in rows if r["val/xent"]]
    assert math.isfinite(val) and val > 0


# ----------------------------------------------------------------------------- eval


def test_eval_loads_safetensors_without_pickle_and_reproduces_the_metrics(
    run_dir, no_pickle, capsys
):
    assert main(["eval", "caption", "--run", str(run_dir)]) == 0
    saved = json.loads((run_dir / "eval-test.json").read_text())
    assert saved == read_metrics(run_dir)["test"]  # exactly: the same captions, the same scores
    out = capsys.readouterr().out.splitlines()
    table = {line.split()[0]: line.split()[1] for line in out if line.startswith("test/")}
    flat = {f"{k}/{kk}": vv for k, v in saved.items() if isinstance(v, dict)
            for kk, vv in v.items()}  # fmt: skip
    flat.update({k: v for k, v in saved.items() if not isinstance(v, dict)})
    assert table == {f"test/{k}": f"{v:.4g}" if isinstance(v, float) else str(v)
                     for k, v in flat.items()}  # fmt: skip
    assert out[-1] == f"wrote {run_dir / 'eval-test.json'}"


# ----------------------------------------------------------------------------- predict


def test_predict_captions_files_of_any_colour_mode(run_dir, scene_png, tmp_path, capsys):
    scene = scene_png
    image = make_dataset(World(seed=0), "captioning", "test", size=1)[0]["image"]  # scene's
    assert torch.equal(load_image(scene), image)  # the PNG round trip is exact
    gray = tmp_path / "gray.png"
    Image.fromarray(np.linspace(0, 255, 40 * 48).reshape(40, 48).astype(np.uint8), "L").save(gray)
    rgba = tmp_path / "rgba.png"
    pixels = np.zeros((64, 64, 4), np.uint8)
    pixels[16:48, 16:48] = (200, 30, 30, 255)  # an opaque red square on transparency
    Image.fromarray(pixels, "RGBA").save(rgba)
    (tmp_path / "again").mkdir()
    twin = shutil.copy(scene, tmp_path / "again" / "scene.png")  # the same stem twice
    inputs = [str(scene), str(gray), str(rgba), str(twin)]

    out_dir = tmp_path / "out"
    assert main(["predict", "caption", "--run", str(run_dir), *inputs, "--out", str(out_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    records = json.loads((out_dir / "predictions.json").read_text())
    assert [r["input"] for r in records] == inputs
    texts = [r["text"] for r in records]
    for path, text in zip(inputs, texts, strict=True):
        assert f"{path}: {text}" in lines
    figures = [Path(f) for r in records for f in r["files"]]
    assert [f.name for f in figures] == ["scene_attention.png", "gray_attention.png",
                                         "rgba_attention.png", "scene-3_attention.png"]  # fmt: skip
    for figure in figures:
        assert figure.is_file() and f"wrote {figure}" in lines
    assert lines[-1] == f"wrote {out_dir / 'predictions.json'}"

    task, model = load_run(run_dir)
    batch = torch.stack([load_image(p, size=64) for p in inputs])
    assert texts == task.caption(model, batch)[0]
    assert texts[0] == texts[3] == task.caption(model, image[None])[0][0]


def test_predict_on_a_file_that_is_not_an_image_names_it(run_dir, scene_png, tmp_path, capsys):
    fake = tmp_path / "notes.png"
    fake.write_text("not an image\n")
    truncated = tmp_path / "cut.png"
    data = scene_png.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    for bad in (fake, truncated, tmp_path / "missing.png"):
        argv = ["predict", "caption", "--run", str(run_dir), str(scene_png), str(bad)]
        assert main([*argv, "--out", str(tmp_path / "out")]) == 1
        assert str(bad) in one_line_error(capsys)
    assert not (tmp_path / "out" / "predictions.json").exists()


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.hiden_dim=3"], "unknown config key 'model.hiden_dim'"),
        (["trainer.max_epochs=abc"], "config key 'trainer.max_epochs' must be int"),
        (["model.arch=nope"], "model.arch must be one of 'show-attend-tell', 'show-tell'"),
        (["data=karpathy"], "data.name=karpathy needs data.json"),
        (["data=karpathy", "data.json=x.json"], "root=None"),
        (["data.captions_per_image=0"], "data.captions_per_image"),
        (["model.dropout=1.0"], "model.dropout must be in [0, 1)"),
    ],
)
def test_bad_config_is_one_line_and_makes_no_run_folder(tmp_path, capsys, overrides, message):
    assert message in train_refused("caption", tmp_path, capsys, *overrides)


def test_eval_of_a_run_without_weights_names_the_folder(run_dir, tmp_path, capsys):
    half = tmp_path / "half"
    shutil.copytree(run_dir, half, ignore=shutil.ignore_patterns("model.safetensors"))
    assert main(["eval", "caption", "--run", str(half)]) == 1
    err = one_line_error(capsys)
    assert f"{half} has no model.safetensors" in err
    assert f"xmodal train caption --resume {half}" in err


def test_a_run_of_another_task_is_refused(run_dir, scene_png, tmp_path, capsys):
    from tests.engine.toy_task import ToyTask
    from xmodal.engine import train
    from xmodal.registry import register_task, unregister_task

    register_task(ToyTask, overwrite=True)
    try:
        toy = train("toy", run_dir=tmp_path / "toy", overrides=["trainer.max_epochs=1"])
        argv = ["predict", "caption", "--run", str(toy.run_dir), str(scene_png)]
        assert main(argv) == 1
        assert "holds a 'toy' run, not 'caption'" in one_line_error(capsys)
        assert main(["eval", "toy", "--run", str(run_dir)]) == 1
        assert "holds a 'caption' run, not 'toy'" in one_line_error(capsys)
    finally:
        unregister_task("toy")


# ----------------------------------------------------------------------------- determinism


# Seed 1's captions name no colour or shape, so its grounding is NaN (with a warning).
@pytest.mark.filterwarnings("ignore:.*no colour or shape word to ground:UserWarning")
def test_same_seed_same_model_other_seed_other_model(run_dir, tmp_path):
    again = train_tiny("caption", tmp_path, NO_FIGURES)
    assert read_metrics(again)["test"] == read_metrics(run_dir)["test"]
    assert same_weights(read_weights(again), read_weights(run_dir))
    assert (again / "vocab.json").read_text() == (run_dir / "vocab.json").read_text()
    other = train_tiny("caption", tmp_path, NO_FIGURES, "seed=1")
    assert not same_weights(read_weights(other), read_weights(run_dir))


def test_resume_equals_a_straight_two_epoch_run(run_dir, tmp_path):
    # Exact because all 4 steps fall in the LR warm-up (optim.warmup_steps=100): a run
    # resumed with a larger max_epochs keeps the cosine decay it was planned with so far.
    resumed = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed)
    argv = ["train", "caption", "--resume", str(resumed), "trainer.max_epochs=2"]
    assert main([*argv, NO_FIGURES]) == 0
    straight = train_tiny("caption", tmp_path / "runs", NO_FIGURES, "trainer.max_epochs=2")
    assert read_metrics(resumed)["test"] == read_metrics(straight)["test"]
    assert same_weights(read_weights(resumed), read_weights(straight))
    assert not same_weights(read_weights(resumed), read_weights(run_dir))  # it did train on
    train_info = read_metrics(resumed)["train"]
    assert train_info["epochs"] == 2 and train_info["steps"] == 2 * TRAIN // 8
    assert "max_epochs: 2" in (resumed / "config.yaml").read_text()


def test_word2vec_vectors_initialise_the_word_embedding(tmp_path):
    from xmodal.engine.config import config_from_dict
    from xmodal.text.word2vec import WordVectors

    words = ["red", "circle", "blue", "zebra"]  # no caption of the world says zebra
    vectors = torch.arange(4 * 16, dtype=torch.float32).view(4, 16).numpy()
    WordVectors(words, vectors).save(tmp_path / "w2v")
    sizes = {"train_size": TRAIN, "val_size": VAL, "test_size": TEST}

    def task(**model):
        cfg = config_from_dict(
            CaptionTask.Config,
            {"data": sizes, "model": {"embed_dim": 16, "backbone": None, **model}},
        )
        t = CaptionTask(cfg)
        t.setup(tmp_path / "run", "fit")
        return t

    (tmp_path / "run").mkdir()
    t = task(word2vec=str(tmp_path / "w2v"))
    model = t.build_model()
    emb = model.embed.weight.detach()
    assert t.word2vec_found == 3
    for word, row in (("red", 0), ("circle", 1), ("blue", 2)):
        assert torch.equal(emb[t.vocab.token_to_id(word)], torch.from_numpy(vectors[row]))
    assert torch.equal(emb[PAD_ID], torch.zeros(16))
    plain = task().build_model().embed.weight.detach()  # the same seed without vectors
    assert not torch.equal(plain[t.vocab.token_to_id("red")], emb[t.vocab.token_to_id("red")])
    with pytest.raises(ParameterError, match="holds 16-d vectors but model.embed_dim=32"):
        task(word2vec=str(tmp_path / "w2v"), embed_dim=32)
    with pytest.raises(DataError, match="nope"):
        task(word2vec=str(tmp_path / "nope"))
    WordVectors(["zebra"], vectors[:1]).save(tmp_path / "other")
    with pytest.raises(DataError, match="has none of the"):
        task(word2vec=str(tmp_path / "other"))


# ----------------------------------------------------------------------------- Karpathy data


def test_karpathy_export_of_the_world_trains_like_the_world(run_dir, tmp_path):
    from xmodal.world.export import export

    out = export(World(seed=0), "coco", tmp_path / "coco",
                 sizes={"train": TRAIN, "val": VAL, "test": TEST})  # fmt: skip
    data = [f"data.json={out / 'dataset_coco.json'}", f"data.root={out}"]
    d = train_tiny("caption", tmp_path / "runs", "data=karpathy", *data, "eval.n_figures=1")
    test = read_metrics(d)["test"]
    assert test["n_images"] == TEST
    assert not {*WORLD_ONLY, *CEILING} & set(test)  # content metrics need the world's truth
    world = read_metrics(run_dir)["test"]
    # The same images (lossless PNG), the same words (Karpathy's tokens are the world's
    # captions tokenized), so the same vocabulary, the same training and the same scores.
    assert Vocabulary.load(d / "vocab.json") == Vocabulary.load(run_dir / "vocab.json")
    assert same_weights(read_weights(d), read_weights(run_dir))
    assert {k: test[k] for k in NGRAM} == {k: world[k] for k in NGRAM}
    assert [p.name for p in (d / "figures").glob("*.png")] == ["attention_test_0.png"]
    cfg = json.loads((d / "model.json").read_text())["config"]["data"]
    assert cfg["name"] == "karpathy" and cfg["root"] == str(out)


# ----------------------------------------------------------------------------- listing


def test_caption_is_listed_by_xmodal_tasks(capsys):
    row = [CaptionTask.name, CaptionTask.family, CaptionTask.default_data, CaptionTask.summary]
    assert listed_tasks(capsys)["caption"] == row


# ----------------------------------------------------------------------------- batches


@pytest.fixture(scope="module")
def world_images():
    images = make_dataset(World(seed=0), "captioning", "train", size=3)
    captions = [images[i]["captions"] for i in range(3)]
    return images, captions, Vocabulary.build([c for cs in captions for c in cs])


@pytest.mark.parametrize("k, max_len", [(2, 24), (7, 24), (3, 5)])
def test_caption_sets_batch_k_rows_per_image(world_images, k, max_len):
    images, captions, vocab = world_images
    sets = CaptionSets(images, vocab, k=k, max_len=max_len)
    batch = collate_sets([sets[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 64, 64)
    assert batch["index"].tolist() == [0, 1, 2]
    tokens = batch["tokens"]
    assert tokens.dtype == torch.int64 and tokens.shape[0] == 3 * k
    assert tokens.shape[1] <= max_len
    for b in range(3):
        for j in range(k):  # row b*k + j: caption j of image b (in turn when it has fewer)
            row = tokens[b * k + j].tolist()
            want = vocab.encode(captions[b][j % len(captions[b])], max_len=max_len)
            assert row[: len(want)] == want
            assert row[0] == BOS_ID and row.count(EOS_ID) == 1
            end = row.index(EOS_ID)
            assert set(row[end + 1 :]) <= {PAD_ID} and PAD_ID not in row[:end]
    assert (tokens[:, -1] != PAD_ID).any()  # padded to the longest row, not beyond


def test_caption_sets_refuse_an_image_without_captions(world_images):
    _, _, vocab = world_images
    empty = [{"image": torch.zeros(3, 8, 8), "captions": [], "index": 4}]
    with pytest.raises(DataError, match="image 4 has no caption"):
        CaptionSets(empty, vocab, k=2, max_len=8)[0]
