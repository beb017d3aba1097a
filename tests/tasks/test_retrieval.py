"""The ``retrieval`` task end to end through the CLI, on a tiny world (``conftest.TINY``):
its metrics, eval from safetensors without torch.load, predict on texts and image files
(arithmetic, tags, a saved index), one-line errors, exact resume from a finished run, the
task listing, and the batches a training step sees. What every task must do is checked by
``test_contract.py``."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.tasks.conftest import (
    NO_FIGURES,
    listed_tasks,
    one_line_error,
    read_metrics,
    read_weights,
    same_weights,
    save_png,
    train_refused,
    train_tiny,
)
from xmodal.cli import main
from xmodal.data.captions import CaptionedImages, collate_captioned
from xmodal.engine import load_run
from xmodal.matching.arithmetic import arithmetic_success, embedding_arithmetic, tag_metrics
from xmodal.matching.gallery import tag_words
from xmodal.tasks.retrieval import RetrievalTask
from xmodal.text.vocab import Vocabulary
from xmodal.world import World
from xmodal.world.datasets import make_dataset
from xmodal.world.language import NEAR_MISS_KINDS
from xmodal.world.schema import COLOURS, SHAPES

# conftest.TINY["retrieval"]'s split sizes; a run here makes no figure (NO_FIGURES) unless
# it asks for some.
TRAIN, VAL, TEST = 16, 8, 8
RECALLS = [f"{d}_R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)]
RANKS = ["i2t_medr", "i2t_meanr", "t2i_medr", "t2i_meanr"]
WORLD_ONLY = ["arithmetic_top5", "arithmetic_chance", "arithmetic_queries", "tag_i2t_rprec",
              "tag_t2i_P@10", "plausible", "ceiling", "near_miss"]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return train_tiny("retrieval", tmp_path_factory.mktemp("retrieval-runs"), "eval.n_figures=2")


# ----------------------------------------------------------------------------- train


def test_train_writes_the_retrieval_metrics_and_figure(run_dir):
    d = run_dir
    assert json.loads((d / "run.json").read_text())["task"] == "retrieval"
    test = read_metrics(d)["test"]
    assert set(test) == {*RECALLS, *RANKS, "rsum", "duplicate_captions", "n_images", "n_texts",
                         *WORLD_ONLY}  # fmt: skip
    assert test["n_images"] == TEST and test["n_texts"] == 5 * TEST
    for key in RECALLS:
        assert 0.0 <= test[key] <= 100.0, key
    for key in RANKS:
        assert 1.0 <= test[key] <= 5 * TEST and math.isfinite(test[key]), key
    assert test["rsum"] == pytest.approx(sum(test[k] for k in RECALLS))
    assert isinstance(test["duplicate_captions"], int)
    assert [p.name for p in (d / "figures").glob("*.png")] == ["retrieval_test_text_to_image.png"]
    assert "test/t2i_R@1" in (d / "report.html").read_text()


def test_evaluate_is_retrieval_metrics_of_the_embeddings(run_dir):
    from xmodal.metrics import retrieval_metrics

    task, model = load_run(run_dir)
    captions = task.captions("test")
    images = torch.stack([task.data("test")[i]["image"] for i in range(TEST)])
    texts = [c for cs in captions for c in cs]
    with torch.no_grad():
        img = model.embed_images(images)
        tokens, lengths = task.vocab.encode_batch(texts)
        txt = model.embed_texts(tokens, lengths)
    want = retrieval_metrics(img @ txt.T, torch.arange(5 * TEST) // 5)
    got = task.evaluate(model, "test")
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    # Against every plausible match: which image each caption is true of, by the world.
    from xmodal.metrics.retrieval import plausible_retrieval_metrics

    true_of = torch.tensor([[task.world.caption_is_true(t, task.world.scene("test", i))
                             for t in texts] for i in range(TEST)])  # fmt: skip
    assert true_of[torch.arange(5 * TEST) // 5, torch.arange(5 * TEST)].all()  # its own image
    assert got["plausible"] == pytest.approx(plausible_retrieval_metrics(img @ txt.T, true_of))
    assert got["plausible"]["t2i_R@1"] >= got["t2i_R@1"]  # its own image is one of them
    # Arithmetic and tags: the world's objects and the shape/colour words' vectors.
    objects = [[(o.colour, o.shape) for o in task.world.scene("test", i, audio=False).objects]
               for i in range(TEST)]  # fmt: skip
    shapes = [s for s in SHAPES if s in task.vocab]
    words = [w for w in (*COLOURS, *SHAPES) if w in task.vocab]
    with torch.no_grad():
        vectors = model.embed_texts(*task.vocab.encode_batch(words))
    arith = arithmetic_success(img, dict(zip(words, vectors, strict=True)), objects, shapes)
    singles = sum(len(o) == 1 for o in objects)
    assert got["arithmetic_queries"] == singles * (len(shapes) - 1) > 0
    assert got["arithmetic_top5"] == pytest.approx(arith["arithmetic_top5"])
    truth = [{w for pair in o for w in pair} for o in objects]
    tags = tag_metrics(img, vectors, words, truth, k=10)
    assert got["tag_t2i_P@10"] == pytest.approx(tags["tag_t2i_P@10"])
    assert got["tag_i2t_rprec"] == pytest.approx(tags["tag_i2t_rprec"])


# ----------------------------------------------------------------------------- eval


def test_eval_loads_safetensors_without_pickle_and_reproduces_the_metrics(run_dir, no_pickle):
    assert main(["eval", "retrieval", "--run", str(run_dir)]) == 0
    saved = json.loads((run_dir / "eval-test.json").read_text())
    assert saved == read_metrics(run_dir)["test"]


# ----------------------------------------------------------------------------- predict


def test_predict_texts_give_top_images_and_images_give_top_captions(
    run_dir, scene_png, tmp_path, capsys
):
    out = tmp_path / "out"
    inputs = ["a red circle", str(scene_png)]
    assert main(["predict", "retrieval", "--run", str(run_dir), *inputs, "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    records = json.loads((out / "predictions.json").read_text())
    assert [r["kind"] for r in records] == ["text", "image"]
    task, model = load_run(run_dir)
    # Text → the top 5 test images by cosine similarity, best first.
    images = torch.stack([task.data("test")[i]["image"] for i in range(TEST)])
    with torch.no_grad():
        img = model.embed_images(images)
        q = model.embed_texts(*task.vocab.encode_batch(["a red circle"]))[0]
    want = (img @ q).topk(5).indices.tolist()
    assert [h["index"] for h in records[0]["results"]] == want
    assert [h["image"] for h in records[0]["results"]] == [f"test/{j}" for j in want]
    scores = [h["score"] for h in records[0]["results"]]
    assert scores == sorted(scores, reverse=True)
    # Image → the top 5 test captions; the test image itself was the query.
    captions = [c for cs in task.captions("test") for c in cs]
    assert all(h["caption"] in captions for h in records[1]["results"])
    assert len(records[1]["results"]) == 5
    for r, path in zip(records, inputs, strict=True):
        assert f"{path}: {r['text']}" in lines
        (figure,) = r["files"]
        assert Path(figure).is_file() and f"wrote {figure}" in lines


def _embed(task, model, texts=(), images=None) -> torch.Tensor:
    with torch.no_grad():
        if images is not None:
            return model.embed_images(images)
        return model.embed_texts(*task.vocab.encode_batch(list(texts)))


def test_predict_options_text_image_tags_and_arithmetic(run_dir, scene_png, tmp_path, capsys):
    from xmodal.data.images import load_image

    out = tmp_path / "out"
    argv = ["predict", "retrieval", "--run", str(run_dir), "--out", str(out), "-k", "3",
            "--text", "a red circle", "--text", "circle", "--image", str(scene_png),
            "--tags"]  # fmt: skip
    assert main(argv) == 0
    records = json.loads((out / "predictions.json").read_text())
    assert [r["kind"] for r in records] == ["text", "text", "image"]
    assert all(len(r["results"]) == 3 for r in records)
    task, model = load_run(run_dir)
    img = _embed(task, model, images=task._split_images("test"))
    for r in records[:2]:  # text (a one-word text is a tag) → top images, FAISS = brute force
        want = (img @ _embed(task, model, [r["input"]])[0]).topk(3).indices.tolist()
        assert [h["index"] for h in r["results"]] == want
    # image → tags: the vocabulary's content words ranked by the image's vector.
    query = _embed(task, model, images=load_image(scene_png, size=64)[None])[0]
    words = tag_words(task.vocab.itos[len(task.vocab.specials) :])
    assert "circle" in words and "a" not in words and "<pad>" not in words
    want = (_embed(task, model, words) @ query).topk(3).indices.tolist()
    assert [t["tag"] for t in records[2]["tags"]] == [words[j] for j in want]
    assert "tags: " in records[2]["text"]

    # image - circle + square → the nearest test images to the normalised sum.
    capsys.readouterr()
    argv = ["predict", "retrieval", "--run", str(run_dir), "--out", str(out),
            "--image", str(scene_png), "--minus", "circle", "--plus", "square"]  # fmt: skip
    assert main(argv) == 0
    (record,) = json.loads((out / "predictions.json").read_text())
    assert record["kind"] == "arithmetic"
    assert record["input"] == f"{scene_png.name} - circle + square"
    minus, plus = _embed(task, model, ["circle", "square"])
    want = (img @ embedding_arithmetic(query, [minus], [plus])).topk(5).indices.tolist()
    assert [h["index"] for h in record["results"]] == want
    assert f"{record['input']}: " in capsys.readouterr().out
    # Arithmetic needs an image query; its words are checked like a query's.
    for extra, message in [
        (["--text", "a red circle", "--minus", "circle"], "apply to an image query"),
        (["--image", str(scene_png), "--plus", "zebra"], "out of vocabulary: zebra"),
    ]:
        assert main(["predict", "retrieval", "--run", str(run_dir), *extra]) == 1
        assert message in one_line_error(capsys)


def test_index_a_folder_then_search_it(run_dir, scene_png, tmp_path, capsys):
    from xmodal.matching import VectorIndex

    folder = tmp_path / "gallery"
    (folder / "sub").mkdir(parents=True)
    images = make_dataset(World(seed=0), "captioning", "val", size=3)
    for i in range(3):
        save_png(images[i]["image"], folder / ("sub" if i == 2 else ".") / f"v{i}.png")
    (folder / "readme.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG broken")
    index = tmp_path / "index"
    argv = ["retrieval", "index", "--run", str(run_dir), "--images", str(folder),
            "--out", str(index)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "indexed 3 images" in out and "skipped 2 files" in out
    saved = VectorIndex.load(index)
    assert saved.names == ["sub/v2.png", "v0.png", "v1.png"]
    # The saved vectors are the model's embeddings of the files.
    task, model = load_run(run_dir)
    want = _embed(task, model, images=torch.stack([images[i]["image"] for i in (2, 0, 1)]))
    scores, ids = saved.search(want, k=1)
    assert ids[:, 0].tolist() == [0, 1, 2]
    assert torch.allclose(scores[:, 0], torch.ones(3), atol=1e-4)
    # predict --index searches those files instead of the test split.
    argv = ["predict", "retrieval", "--run", str(run_dir), "--index", str(index),
            "--text", "a red circle", "--out", str(tmp_path / "p")]  # fmt: skip
    assert main(argv) == 0
    (record,) = json.loads((tmp_path / "p" / "predictions.json").read_text())
    q = _embed(task, model, ["a red circle"])[0]
    assert [h["image"] for h in record["results"]] == [
        saved.names[j] for j in (want @ q).topk(3).indices.tolist()
    ]
    # A broken gallery file, an index of vectors of another dimension, a folder without
    # images: clear errors.
    gallery = index / "gallery.json"
    good = gallery.read_text()
    for broken in ("{not json", '{"folder": "x"}'):
        gallery.write_text(broken)
        assert main(argv) == 1
        assert "is not a gallery file of `xmodal retrieval index`" in one_line_error(capsys)
    gallery.write_text(good)
    VectorIndex.build(torch.eye(4)[:3], names=["a", "b", "c"]).save(index)
    assert main(argv) == 1
    assert "holds 4-d vectors but this run's model embeds in 16-d" in one_line_error(capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("x")
    argv = ["retrieval", "index", "--run", str(run_dir), "--images", str(empty),
            "--out", str(tmp_path / "i2")]  # fmt: skip
    assert main(argv) == 1
    assert "no readable image" in one_line_error(capsys)


@pytest.mark.parametrize(
    "query, message",
    [
        ("   ", "query text '   ' has no words"),
        ("zebra xylophone", "no word is in the vocabulary (out of vocabulary: zebra, xylophone)"),
    ],
)
def test_predict_refuses_empty_and_unknown_texts(run_dir, tmp_path, capsys, query, message):
    argv = ["predict", "retrieval", "--run", str(run_dir), "a red circle", query]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 1
    assert message in one_line_error(capsys)
    assert not (tmp_path / "out" / "predictions.json").exists()


def test_predict_on_a_file_that_is_not_an_image_names_it(run_dir, tmp_path, capsys):
    fake = tmp_path / "notes.png"
    fake.write_text("not an image\n")
    for bad in (fake, tmp_path / "missing.jpg"):
        argv = ["predict", "retrieval", "--run", str(run_dir), str(bad)]
        assert main([*argv, "--out", str(tmp_path / "out")]) == 1
        assert str(bad) in one_line_error(capsys)


def test_transformer_text_encoder_trains_evaluates_and_predicts(tmp_path, capsys):
    d = train_tiny("retrieval", tmp_path, NO_FIGURES, "model.text_encoder=transformer",
                   "model.text_layers=1", "model.text_heads=2", "model.pooling=first")  # fmt: skip
    task, model = load_run(d)
    assert type(model.text).__name__ == "TransformerTextEncoder"
    assert len(model.text.blocks) == 1
    test = read_metrics(d)["test"]
    assert 0.0 <= test["i2t_R@1"] <= 100.0
    assert main(["predict", "retrieval", "--run", str(d), "--text", "a red circle"]) == 0
    assert "a red circle: test/" in capsys.readouterr().out


def test_karpathy_export_of_the_world_trains_like_the_world(run_dir, tmp_path):
    from xmodal.world.export import export

    out = export(World(seed=0), "coco", tmp_path / "coco",
                 sizes={"train": TRAIN, "val": VAL, "test": TEST})  # fmt: skip
    data = [f"data.json={out / 'dataset_coco.json'}", f"data.root={out}"]
    d = train_tiny("retrieval", tmp_path / "runs", "data=karpathy", *data, "eval.n_figures=2")
    test, world = read_metrics(d)["test"], read_metrics(run_dir)["test"]
    # The same images (lossless PNG) and words: the same vocabulary, training and scores;
    # arithmetic and tags need the world's objects.
    assert Vocabulary.load(d / "vocab.json") == Vocabulary.load(run_dir / "vocab.json")
    assert same_weights(read_weights(d), read_weights(run_dir))
    assert test == {k: v for k, v in world.items() if k not in WORLD_ONLY}
    assert (d / "figures" / "retrieval_test_text_to_image.png").is_file()


def test_a_5k_test_split_is_scored_in_1k_folds():
    from xmodal.metrics import fold_average

    task = RetrievalTask(RetrievalTask.Config())
    task.config.data.name = "karpathy"  # no world metrics

    class Images:
        captions = [[f"caption {i} {j}" for j in range(5)] for i in range(2000)]

        def __len__(self):
            return 2000

    task._data["test"] = Images()
    torch.manual_seed(0)
    img, txt = torch.randn(2000, 4), torch.randn(10000, 4)
    task._split_images = lambda split: img
    task.embedder = lambda model: SimpleNamespace(images=lambda images: images, texts=lambda t: txt)
    got = task.evaluate(None, "test")
    want = fold_average(img @ txt.T, torch.arange(10000) // 5, n_folds=2)
    assert {k: got[k] for k in want} == pytest.approx(want)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.loss=hinge"], "model.loss must be one of 'vse++', 'triplet', 'infonce'"),
        (["model.margin=-1"], "model.margin must be a finite number >= 0"),
        (["model.pooling=max"], "model.pooling must be one of 'mean', 'last'"),
        (
            ["model.text_encoder=transformer", "model.pooling=last"],
            "model.pooling must be one of 'mean', 'first'",
        ),
        (["model.text_encoder=lstm"], "model.text_encoder must be one of 'gru', 'transformer'"),
        (["model.text_dropout=1"], "model.text_dropout must be in [0, 1)"),
        (["data.captions_per_step=0"], "data.captions_per_step"),
        (["model.temperature=0.001"], "model.temperature must be >= 0.01"),
        (["data=karpathy", "data.hard_negatives=true"], "data.hard_negatives=true needs the world"),
        (["data.hard_negatives=2"], "data.hard_negatives"),
    ],
)
def test_bad_config_is_one_line_and_makes_no_run_folder(tmp_path, capsys, overrides, message):
    assert message in train_refused("retrieval", tmp_path, capsys, *overrides)


def test_a_run_of_another_task_is_refused(tmp_path, capsys):
    from tests.engine.toy_task import ToyTask
    from xmodal.engine import train
    from xmodal.registry import register_task, unregister_task

    register_task(ToyTask, overwrite=True)
    try:
        toy = train("toy", run_dir=tmp_path / "toy", overrides=["trainer.max_epochs=1"])
        capsys.readouterr()  # what training the toy printed (Lightning's log) is not ours
        assert main(["predict", "retrieval", "--run", str(toy.run_dir), "a red circle"]) == 1
        assert "holds a 'toy' run, not 'retrieval'" in one_line_error(capsys)
    finally:
        unregister_task("toy")


# ----------------------------------------------------------------------------- resume


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["vse++", "infonce"])
def test_resume_equals_a_straight_two_epoch_run(tmp_path, loss):
    # captions_per_step=2 draws captions per (seed, epoch, image): resume must draw the same.
    extra = [NO_FIGURES, f"model.loss={loss}", "data.captions_per_step=2"]
    first = train_tiny("retrieval", tmp_path / "a", *extra)
    resumed = tmp_path / "resumed"
    shutil.copytree(first, resumed)
    assert main(["train", "retrieval", "--resume", str(resumed), "trainer.max_epochs=2"]) == 0
    straight = train_tiny("retrieval", tmp_path / "b", *extra, "trainer.max_epochs=2")
    assert same_weights(read_weights(resumed), read_weights(straight))
    assert not same_weights(read_weights(resumed), read_weights(first))
    assert read_metrics(resumed)["test"] == read_metrics(straight)["test"]


# ----------------------------------------------------------------------------- listing


def test_retrieval_is_listed_by_xmodal_tasks(capsys):
    row = ["retrieval", "matching", "world", RetrievalTask.summary]
    assert listed_tasks(capsys)["retrieval"] == row


# ----------------------------------------------------------------------------- batches


def test_batches_hold_every_caption_and_steps_pick_seeded_subsets():
    images = make_dataset(World(seed=0), "captioning", "train", size=3)
    captions = [images[i]["captions"] for i in range(3)]
    vocab = Vocabulary.build([c for cs in captions for c in cs])
    batch = collate_captioned([CaptionedImages(images, vocab, max_len=32)[i] for i in range(3)])
    n = len(captions[0])
    assert batch["tokens"].shape[0] == 3 * n and batch["index"].tolist() == [0, 1, 2]
    for b in range(3):
        for j in range(n):
            row = b * n + j
            ids = batch["tokens"][row, : batch["lengths"][row]].tolist()
            assert ids == vocab.encode(captions[b][j], max_len=32)
    from xmodal.engine.config import config_from_dict

    cfg = config_from_dict(RetrievalTask.Config, {"data": {"captions_per_step": 2}})
    task = RetrievalTask(cfg)
    rows = task._rows(batch, 2).tolist()
    assert len(rows) == 6 and all(
        b * n <= r < (b + 1) * n for b in range(3) for r in rows[2 * b : 2 * b + 2]
    )
    assert task._rows(batch, 2).tolist() == rows  # the same epoch, the same draw
    draws = set()
    for epoch in range(6):
        task.on_train_epoch_start(epoch)
        draws.add(tuple(task._rows(batch, 2).tolist()))
    assert len(draws) > 1  # other epochs, other captions
    assert task._rows(batch, None).tolist() == list(range(3 * n))


def test_world_training_batches_carry_each_captions_near_miss(tmp_path):
    from xmodal.engine.config import config_from_dict

    data = {"train_size": 4, "hard_negatives": True}
    task = RetrievalTask(config_from_dict(RetrievalTask.Config, {"data": data}))
    task.setup(tmp_path, "fit")
    sets = task._sets("train")
    batch = collate_captioned([sets[i] for i in range(4)])
    n = len(task.captions("train")[0])
    for tokens, length, row in zip(batch["negative_tokens"], batch["negative_lengths"],
                                   batch["negative_rows"].tolist(), strict=True):  # fmt: skip
        scene = task.world.scene("train", row // n, audio=False, questions=False)
        miss = task.world.near_misses(scene)[row % n]
        assert not task.world.caption_is_true(miss, scene)
        assert tokens[:length].tolist() == task.vocab.encode(miss, max_len=32)
    assert len(batch["negative_rows"]) >= 0.9 * 4 * n
    assert "negative_tokens" not in collate_captioned([task._sets("val")[0]])
    assert not RetrievalTask.Config().data.hard_negatives  # off by default
    d = train_tiny("retrieval", tmp_path / "runs", "data.hard_negatives=true")
    log = (d / "logs" / "csv" / "metrics.csv").read_text()
    assert "train/hard_negatives" in log.splitlines()[0]
    assert {"all"} < set(read_metrics(d)["test"]["near_miss"]) <= {"all", *NEAR_MISS_KINDS}
