"""The ``gpt`` task end to end through the CLI on a tiny text file and a tiny world (CPU, a
few seconds a run): the run folder, metrics that agree with each other, eval from
safetensors without pickle, predict, exact resume, word level, the world's captions,
one-line errors for bad data and settings. The text-LM data code it stands on is tested in
tests/text/test_lm_data.py."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import pytest
import torch

from tests.tasks.conftest import (
    listed_tasks,
    one_line_error,
    read_log,
    read_metrics,
    read_weights,
    same_weights,
    tiny,
    train_printed,
    train_refused,
    train_tiny,
)
from xmodal.cli import main
from xmodal.engine import load_run
from xmodal.tasks.gpt import GPTConfig, GPTDataConfig, GPTTask
from xmodal.text.lm_data import CharTokenizer, TokenBlocks, WordTokenizer, split_text
from xmodal.text.vocab import Vocabulary

pytestmark = pytest.mark.usefixtures("one_thread")

# conftest's tiny gpt, with dropout: a run on a text file (whose split sizes do not apply)
DROPOUT = "model.dropout=0.1"


def _corpus(n_lines: int = 60, seed: int = 0) -> str:
    rng = random.Random(seed)
    subjects = ["the cat", "a dog", "my friend", "the old man", "a bird"]
    verbs = ["sees", "likes", "follows", "draws", "finds"]
    objects = ["a red ball", "the river", "two apples", "the moon", "a small house"]
    return "".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}.\n"
                   for _ in range(n_lines))  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text(_corpus(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """One finished tiny char-level run on the corpus file (read only) and its output."""
    return train_printed("gpt", tmp_path_factory.mktemp("gpt-runs"), DROPOUT, f"data={corpus}")


@pytest.fixture(scope="module")
def run_dir(trained) -> Path:
    return trained[0]


# ----------------------------------------------------------------------------- train


def test_train_writes_the_whole_run_folder(trained, corpus):
    d, printed = trained
    for name in ("config.yaml", "run.json", "chars.json", "checkpoints/last.ckpt",
                 "model.safetensors", "model.json", "metrics.json", "logs/csv/metrics.csv",
                 "report.html", "figures/samples.txt"):  # fmt: skip
        assert (d / name).is_file(), name
    assert not [p for p in d.rglob("*") if p.name.endswith(".tmp")]
    assert json.loads((d / "run.json").read_text())["task"] == "gpt"
    config = (d / "config.yaml").read_text()
    assert "name: text" in config and f"path: {corpus}" in config  # data=FILE, resolved
    meta = json.loads((d / "model.json").read_text())
    assert meta["config"]["data"] == {**meta["config"]["data"], "name": "text", "path": str(corpus)}

    text = corpus.read_text()
    train_text, val_text, test_text = split_text(text, val_fraction=0.05, test_fraction=0.05)
    tok = CharTokenizer.load(d / "chars.json")
    assert tok.itos[1:] == sorted(set(train_text))
    metrics = read_metrics(d)
    for split, part in (("val", val_text), ("test", test_text)):
        m = metrics[split]
        assert set(m) == {"loss", "perplexity", "bits_per_char", "accuracy", "tokens"}
        assert m["tokens"] == len(part) - 1  # every next character scored once
        assert m["perplexity"] == pytest.approx(math.exp(m["loss"]))
        assert m["bits_per_char"] == pytest.approx(m["loss"] / math.log(2))
        assert 0.0 <= m["accuracy"] <= 1.0
        assert 0 < m["loss"] < math.log(len(tok)) + 1  # near uniform after one tiny epoch
    blocks = TokenBlocks(torch.tensor(tok.encode(train_text)), 16)
    assert metrics["train"]["epochs"] == 1 and metrics["train"]["steps"] == math.ceil(
        len(blocks) / 8
    )

    figures = sorted(p.name for p in (d / "figures").glob("*.png"))
    assert figures == ["attention_layer0.png", "samples.png"]
    report = (d / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 1 + 2  # curves + the two figures
    assert "val/perplexity" in report and "test/bits_per_char" in report
    samples = (d / "figures" / "samples.txt").read_text()
    assert samples.count("--- sample") == 2

    lines = printed.splitlines()
    assert lines[0] == f"run folder: {d}" and lines[-1] == f"run folder: {d}"
    table = {
        line.split()[0]: line.split()[1] for line in lines if line.startswith(("val/", "test/"))
    }
    assert table["val/perplexity"] == f"{metrics['val']['perplexity']:.4g}"


def test_logs_have_the_validation_loss(run_dir):
    rows = read_log(run_dir)
    (val,) = [float(r["val/loss"]) for r in rows if r.get("val/loss")]
    assert math.isfinite(val) and val > 0
    assert [int(r["step"]) for r in rows if r["train/loss_step"]] == list(
        range(read_metrics(run_dir)["train"]["steps"])
    )


def test_eval_loads_safetensors_without_pickle_and_reproduces_the_metrics(
    run_dir, no_pickle, capsys
):
    for split in ("test", "val"):
        assert main(["eval", "gpt", "--run", str(run_dir), "--split", split]) == 0
        saved = json.loads((run_dir / f"eval-{split}.json").read_text())
        assert saved == read_metrics(run_dir)[split]
    capsys.readouterr()
    assert main(["eval", "gpt", "--run", str(run_dir), "--split", "dev"]) == 1
    assert "split must be one of 'train', 'val', 'test'. Found: 'dev'" in one_line_error(capsys)


def test_predict_prints_a_continuation_of_each_prompt(run_dir, tmp_path, capsys):
    long_prompt = "the cat sees " * 3  # 39 characters: more than the context of 16
    prompts = ["the cat", "", long_prompt, "émoji ☃"]
    out = tmp_path / "out"
    assert main(["predict", "gpt", "--run", str(run_dir), *prompts, "--out", str(out)]) == 0
    lines = capsys.readouterr().out.split("\n")
    records = json.loads((out / "predictions.json").read_text())
    assert [r["input"] for r in records] == prompts
    assert [r["truncated"] for r in records] == [False, False, True, False]
    for r in records:
        assert r["text"] == r["input"] + r["continuation"]
        assert len(r["continuation"]) == 12  # eval.max_new_tokens characters
    assert lines[0] == f"the cat: {records[0]['text']}".split("\n")[0]
    assert lines[-2] == f"wrote {out / 'predictions.json'}"
    # The same continuations as the task's sampler, seeded per prompt: reproducible.
    task, model = load_run(run_dir)
    assert records[0]["text"] == task.sample(model, "the cat", 1, seed=task.config.seed)[0]
    assert records[1]["text"] == task.sample(model, "", 1, seed=task.config.seed + 1)[0]


# ----------------------------------------------------------------------------- determinism


def test_data_path_spelling_and_seed(run_dir, corpus, tmp_path):
    again = train_tiny("gpt", tmp_path, DROPOUT, f"data.path={corpus}")
    assert same_weights(read_weights(again), read_weights(run_dir))
    assert read_metrics(again)["test"] == read_metrics(run_dir)["test"]
    other = train_tiny("gpt", tmp_path, DROPOUT, f"data={corpus}", "seed=1")
    assert not same_weights(read_weights(other), read_weights(run_dir))


def test_resume_equals_a_straight_two_epoch_run(run_dir, corpus, tmp_path):
    # Exact because every step falls in the LR warm-up (optim.warmup_steps=100).
    resumed = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed)
    assert main(["train", "gpt", "--resume", str(resumed), "trainer.max_epochs=2"]) == 0
    straight = train_tiny("gpt", tmp_path / "runs", DROPOUT, f"data={corpus}",
                          "trainer.max_epochs=2")  # fmt: skip
    assert same_weights(read_weights(resumed), read_weights(straight))
    assert read_metrics(resumed)["test"] == read_metrics(straight)["test"]
    assert not same_weights(read_weights(resumed), read_weights(run_dir))
    assert read_metrics(resumed)["train"]["epochs"] == 2
    assert (resumed / "figures" / "samples.txt").read_text() == (
        straight / "figures" / "samples.txt"
    ).read_text()


# ----------------------------------------------------------------------------- other data


def test_word_level(corpus, tmp_path, capsys):
    d = train_tiny("gpt", tmp_path, DROPOUT, f"data={corpus}", "data.level=word")
    vocab = Vocabulary.load(d / "vocab.json")
    assert {"cat", "river", "moon"} <= set(vocab.itos)
    assert not (d / "chars.json").exists()
    metrics = read_metrics(d)
    assert set(metrics["test"]) == {"loss", "perplexity", "accuracy", "tokens"}
    _, _, test_text = split_text(corpus.read_text(), val_fraction=0.05, test_fraction=0.05)
    assert metrics["test"]["tokens"] == len(WordTokenizer(vocab).encode(test_text)) - 1
    capsys.readouterr()
    assert main(["predict", "gpt", "--run", str(d), "the old"]) == 0
    (record,) = json.loads((d / "predictions" / "predictions.json").read_text())
    words = record["continuation"].replace("\n", " ").split()
    assert record["text"].startswith("the old") and 1 <= len(words) <= 12
    assert record["continuation"][0] in " \n"  # the next word is not glued to "old"
    assert set(words) <= set(vocab.itos)


def test_the_world_captions_are_the_default_data(tmp_path):
    d = train_tiny("gpt", tmp_path, DROPOUT, "data.train_size=40", "data.val_size=8",
                   "data.test_size=8", "eval.attention_head=1",
                   "eval.attention_text=a red circle")  # fmt: skip
    assert "name: world" in (d / "config.yaml").read_text()
    task = GPTTask(GPTConfig(data=GPTDataConfig(train_size=40, val_size=8, test_size=8)))
    texts = {split: task.data(split) for split in ("train", "val", "test")}
    from xmodal.world import World

    world = World(seed=0)
    first = world.scene("val", 0, audio=False, questions=False).captions
    assert texts["val"].startswith("\n".join(first) + "\n")
    assert len(texts["train"].splitlines()) == 40 * 5  # five captions a scene
    assert CharTokenizer.load(d / "chars.json").itos[1:] == sorted(set(texts["train"]))
    assert read_metrics(d)["test"]["tokens"] == len(texts["test"]) - 1
    assert [p.name for p in (d / "figures").glob("attention*.png")] == ["attention_layer0.png"]


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.level=byte"], "data.level must be one of 'char', 'word'. Found: 'byte'"),
        (["model.n_head=3"], "model.n_embd must be divisible by model.n_head"),
        (["model.position=rope"], "model.position must be one of 'learned', 'sinusoidal'"),
        (["eval.top_k=0"], "eval.top_k must be an integer >= 1. Found: 0"),
        (["eval.temperature=0"], "eval.temperature must be a finite number > 0. Found: 0.0"),
        (["eval.temperature=-0.5"], "eval.temperature must be a finite number > 0. Found: -0.5"),
        (["data=text"], "data.name=text needs data.path"),
        (["data=a.txt", "data.path=b.txt"], "data='a.txt' names a file, but data.path='b.txt'"),
        (["data.val_fraction=0.6", "data.test_fraction=0.5"], "must be < 1"),
        (["model.dropout=1.0"], "model.dropout must be in [0, 1)"),
        (["eval.attention_head=4"], "eval.attention_head must be None or in [0, 4)"),
        (["eval.attention_layer=4"], "eval.attention_layer must be in [-4, 4)"),
    ],
)
def test_bad_config_is_one_line_and_makes_no_run_folder(tmp_path, capsys, overrides, message):
    assert message in train_refused("gpt", tmp_path, capsys, *overrides)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty (0 bytes, no text)"),
        (b" \n\n\t", "is empty (4 bytes, no text)"),
        (b"good text\n\xff\xfe bad", "is not UTF-8: byte 0xff at offset 10"),
    ],
    ids=["empty", "whitespace", "bad-bytes"],
)
def test_bad_text_files_are_named(tmp_path, capsys, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    argv = ["train", "gpt", "--runs-dir", str(tmp_path / "runs"), *tiny("gpt", DROPOUT)]
    assert main([*argv, f"data={path}"]) == 1
    err = one_line_error(capsys)
    assert f"text file '{path}'" in err and message in err
    assert list((tmp_path / "runs" / "gpt").glob("*")) == []  # no half-made run folder


def test_missing_and_too_short_files(tmp_path, capsys):
    missing = tmp_path / "missing.txt"
    argv = ["train", "gpt", "--runs-dir", str(tmp_path), *tiny("gpt", DROPOUT)]
    assert main([*argv, f"data={missing}"]) == 1
    assert f"text file '{missing}' does not exist" in one_line_error(capsys)
    short = tmp_path / "short.txt"
    short.write_text("word " * 40)
    assert main([*argv, f"data={short}", "model.block_size=256"]) == 1
    err = one_line_error(capsys)
    n = len(split_text(short.read_text(), val_fraction=0.05, test_fraction=0.05)[0])
    assert f"the train part of {str(short)!r} holds {n} tokens" in err
    assert "block_size + 1 = 257" in err and "lower model.block_size" in err


def test_gpt_is_listed_by_xmodal_tasks(capsys):
    row = [GPTTask.name, GPTTask.family, GPTTask.default_data, GPTTask.summary]
    assert listed_tasks(capsys)["gpt"] == row
    assert GPTTask.family == "representations"
