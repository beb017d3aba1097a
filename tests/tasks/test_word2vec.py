"""The ``word2vec`` task end to end through the CLI on a tiny text file and a tiny world
(CPU, a few seconds a run): the run folder (a word2vec folder too), the same vectors as
``train_word2vec`` with one thread, eval equal to metrics.json, predict on a word and on
arithmetic, exact resume after Ctrl-C, the world's category check, one-line errors; and
the ``xmodal word2vec train`` flags made from ``Word2VecConfig``."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.tasks.conftest import (
    listed_tasks,
    one_line_error,
    read_metrics,
    read_weights,
    tiny_run,
    train_printed,
    train_refused,
    train_tiny,
)
from tests.text.test_word2vec import planted_text
from xmodal.cli import build_parser, main
from xmodal.engine import load_run, train
from xmodal.engine.run import TrainingInterrupted
from xmodal.tasks.word2vec import Word2VecTask, Word2VecTaskConfig, world_categories
from xmodal.text.vocab import Vocabulary, tokenize
from xmodal.text.word2vec import Word2VecConfig, WordVectors, model_word_init, train_word2vec
from xmodal.text.word2vec_data import Word2VecJobs, read_corpus

# Subsampling off: the planted corpus is small, and every word of it is frequent.
SETTINGS = dict(dim=16, min_count=1, batch_words=700, epochs=3, sample=0.0)
# SETTINGS on top of conftest.TINY["word2vec"] (whose model.dim=16 they share).
PLANTED = [
    "data.min_count=1", "data.batch_words=700", "trainer.max_epochs=3", "optim.sample=0",
    "eval.n_words=12",
]  # fmt: skip
QUESTIONS = ": royal\nking queen man woman\nprince princess boy girl\n: other\nking man a b\n"
PAIRS = "he\thim\t9\nhe\tfarm\t1\nking\tqueen\t6\nfarm\tfield\t8\ncrown\tgirl\t2\n"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/tasks/conftest.py


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("w2v-data")
    paths = {"corpus": folder / "planted.txt", "analogies": folder / "q.txt",
             "similarity": folder / "s.tsv"}  # fmt: skip
    paths["corpus"].write_text(planted_text(1500))
    paths["analogies"].write_text(QUESTIONS)
    paths["similarity"].write_text(PAIRS)
    return paths


def _on_files(files: dict[str, Path]) -> list[str]:
    """The planted corpus with both evaluation files."""
    return [*PLANTED, f"data={files['corpus']}", f"eval.analogies={files['analogies']}",
            f"eval.similarity={files['similarity']}"]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(files, tmp_path_factory) -> Path:
    """One finished tiny run on the planted corpus, with both evaluation files."""
    return train_printed("word2vec", tmp_path_factory.mktemp("w2v-runs"), *_on_files(files))[0]


# ----------------------------------------------------------------------------- train


def test_train_writes_the_whole_run_folder(run_dir, files):
    for name in ("config.yaml", "run.json", "checkpoints/last.ckpt", "model.safetensors",
                 "model.json", "metrics.json", "report.html", "figures/projection.png",
                 "figures/neighbours.txt", "vectors.bin", "vocab.txt", "config.json"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
    corpus = read_corpus(files["corpus"], min_count=1, max_vocab=None, max_sentence_length=10000)
    n_jobs = len(Word2VecJobs(corpus, 700))
    assert n_jobs > 10  # several jobs an epoch
    metrics = read_metrics(run_dir)
    train_info = metrics["train"]
    assert train_info["epochs"] == 3 and train_info["steps"] == 3 * n_jobs
    assert train_info["samples"] == 3 * corpus.n_tokens  # samples are words
    test = metrics["test"]
    assert test["vocabulary"] == len(corpus.words) and "categories" not in test  # not the world
    assert test["analogies"]["questions"] == 3 and test["analogies"]["evaluated"] == 2
    assert test["similarity"]["pairs"] == 5
    # The word2vec folder: what model.word2vec= and `xmodal word2vec` read.
    wv = WordVectors.load(run_dir)
    assert wv.words == corpus.words and wv.counts.tolist() == corpus.counts.tolist()
    weights = read_weights(run_dir)
    assert sorted(weights) == ["syn0", "syn1neg"]
    np.testing.assert_array_equal(wv.vectors, weights["syn0"].numpy())
    assert wv.meta["config"] == Word2VecConfig(**SETTINGS, threads=1).to_dict()
    assert wv.meta["corpus"]["tokens"] == corpus.n_tokens
    neighbours = (run_dir / "figures" / "neighbours.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in neighbours] == list(corpus.words[:12])


def test_the_engine_gives_train_word2vecs_vectors_with_one_thread(run_dir, files, tmp_path):
    """Same jobs in the same order, the same seed per job, the same learning rate at each
    token: bit for bit the vectors of the multi-threaded trainer run on one thread."""
    reference = train_word2vec(files["corpus"], Word2VecConfig(**SETTINGS, threads=1))
    np.testing.assert_array_equal(WordVectors.load(run_dir).vectors, reference.vectors)
    out = tmp_path / "cli"
    argv = ["word2vec", "train", str(files["corpus"]), "--out", str(out), "--dim", "16",
            "--min-count", "1", "--batch-words", "700", "--epochs", "3", "--threads", "1",
            "--sample", "0", "--no-progress"]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0
    np.testing.assert_array_equal(WordVectors.load(out).vectors, reference.vectors)
    # Several jobs a step: the same jobs in the same order, so the same vectors.
    batched = train_printed("word2vec", tmp_path / "runs", *PLANTED, f"data={files['corpus']}",
                            "data.batch_size=4")[0]  # fmt: skip
    np.testing.assert_array_equal(WordVectors.load(batched).vectors, reference.vectors)
    n_jobs = read_metrics(run_dir)["train"]["steps"] // 3
    assert read_metrics(batched)["train"]["steps"] == 3 * -(-n_jobs // 4)


def test_eval_equals_metrics_json(run_dir, capsys):
    for split in ("test", "val"):  # intrinsic scores: the split changes nothing
        assert main(["eval", "word2vec", "--run", str(run_dir), "--split", split]) == 0
        assert (
            json.loads((run_dir / f"eval-{split}.json").read_text())
            == read_metrics(run_dir)["test"]
        )
    assert "test/analogies/accuracy" in capsys.readouterr().out


def test_predict_a_word_and_an_arithmetic_query(run_dir, tmp_path, capsys):
    out = tmp_path / "pred"
    argv = ["predict", "word2vec", "--run", str(run_dir), "he", "king - man + woman", "-n", "3",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    records = json.loads((out / "predictions.json").read_text())
    wv = WordVectors.load(run_dir)
    expected = [wv.most_similar("he", topn=3),
                wv.arithmetic(positive=["king", "woman"], negative=["man"], topn=3)]  # fmt: skip
    for record, query, found in zip(records, ["he", "king - man + woman"], expected, strict=True):
        assert record["input"] == query
        assert [(n["word"], n["cosine"]) for n in record["neighbours"]] == [
            (w, pytest.approx(c)) for w, c in found
        ]
        assert record["text"] in printed
    # What the planted corpus teaches: he ~ him, his, sir; king - man + woman = queen.
    assert {n["word"] for n in records[0]["neighbours"]} == {"him", "his", "sir"}
    assert records[1]["neighbours"][0]["word"] == "queen"
    assert main(["predict", "word2vec", "--run", str(run_dir), "unicorn"]) == 1
    assert "word 'unicorn' is not in the vocabulary" in one_line_error(capsys)
    assert main(["predict", "word2vec", "--run", str(run_dir), "king -", "-n", "2"]) == 1
    assert "ends with an operator" in one_line_error(capsys)


# ----------------------------------------------------------------------------- resume


@pytest.mark.parametrize("stop_at", [5, 27], ids=["epoch0", "epoch1"])
def test_ctrl_c_then_resume_equals_an_uninterrupted_run(run_dir, files, tmp_path, monkeypatch,
                                                       stop_at):  # fmt: skip
    calls, step = [0], Word2VecTask.training_step

    def interrupted(self, model, batch, manual=None):
        if calls[0] == stop_at:
            raise KeyboardInterrupt
        calls[0] += 1
        return step(self, model, batch, manual)

    monkeypatch.setattr(Word2VecTask, "training_step", interrupted)
    with pytest.raises(TrainingInterrupted) as err:
        tiny_run("word2vec", tmp_path, *_on_files(files))
    assert err.value.saved and not (err.value.run_dir / "vectors.bin").exists()
    ckpt = torch.load(err.value.checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == stop_at  # the jobs done before Ctrl-C
    monkeypatch.setattr(Word2VecTask, "training_step", step)
    resumed = train("word2vec", resume=err.value.run_dir).run_dir
    assert read_metrics(resumed)["test"] == read_metrics(run_dir)["test"]
    assert read_metrics(resumed)["train"]["steps"] == read_metrics(run_dir)["train"]["steps"]
    np.testing.assert_array_equal(WordVectors.load(resumed).vectors,
                                  WordVectors.load(run_dir).vectors)  # fmt: skip


# ----------------------------------------------------------------------------- the world


def test_the_world_captions_and_the_category_check(tmp_path, capsys):
    d = train_tiny("word2vec", tmp_path, *PLANTED, "data.train_size=60", "trainer.max_epochs=4",
                   "data.batch_words=500")  # fmt: skip
    capsys.readouterr()
    task = Word2VecTask(Word2VecTaskConfig())
    task.config.data.train_size = 60
    lines = task.data("train")
    from xmodal.world import World

    first = World(seed=0).scene("train", 0, audio=False, questions=False).captions
    assert lines[:5] == [" ".join(tokenize(c)) for c in first] and len(lines) == 60 * 5
    wv = WordVectors.load(d)
    categories = read_metrics(d)["test"]["categories"]
    assert set(categories) == {"colour", "shape", "size", "mean", "chance"}
    sizes = {name: len([w for w in words if w in wv]) for name, words in world_categories().items()}
    assert sizes == {"colour": 6, "shape": 5, "size": 4}
    n = len(wv)
    chance = sum(m * (m - 1) / (n - 1) for m in sizes.values()) / sum(sizes.values())
    assert categories["chance"] == pytest.approx(chance)
    assert categories["mean"] > 3 * categories["chance"]  # the vectors group words by kind
    # The caption and retrieval tasks' model.word2vec=RUN reads the run folder.
    vocab = Vocabulary.build([first[0], "unicorn"], min_freq=1)
    weight, found = model_word_init(vocab, d, 16)
    assert found == len(set(tokenize(first[0]))) and weight.shape == (len(vocab), 16)
    for word in tokenize(first[0]):
        assert torch.equal(weight[vocab.stoi[word]], torch.from_numpy(wv[word].copy()))
    assert main(["predict", "word2vec", "--run", str(d), "red", "-n", "2"]) == 0
    assert capsys.readouterr().out.startswith("red: ")


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.dimm=3"], "'model.dimm'"),
        (["model.window=0"], "model.window must be an integer >= 1. Found: 0"),
        (["optim.min_alpha=0.5"], "optim.min_alpha must be <= optim.alpha (0.025)"),
        (["data.min_count=0"], "data.min_count must be an integer >= 1. Found: 0"),
        (["trainer.accelerator=gpu"], "word2vec trains in one process on the CPU"),
        (["trainer.max_epochs=-1"], "set trainer.max_epochs >= 1 or trainer.max_steps >= 1"),
        (["data=text"], "data.name=text needs data.path"),
        (["eval.method=umap"], "eval.method must be one of 'pca', 'tsne'"),
    ],
)
def test_bad_config_is_one_line_and_makes_no_run_folder(tmp_path, capsys, overrides, message):
    assert message in train_refused("word2vec", tmp_path, capsys, *overrides)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such corpus file"),
        (b"", "the corpus is empty"),
        (b"a b c\n", "no word occurs at least min_count=5 times"),
    ],
)
def test_bad_corpus_is_named(tmp_path, capsys, content, message):
    path = tmp_path / "c.txt"
    if content is not None:
        path.write_bytes(content)
    assert main(["train", "word2vec", "--runs-dir", str(tmp_path / "runs"), f"data={path}"]) == 1
    err = one_line_error(capsys)
    assert str(path) in err and message in err
    assert list((tmp_path / "runs" / "word2vec").glob("*")) == []


# ----------------------------------------------------------------------------- one source


def test_cli_flags_and_task_sections_take_word2vecconfigs_defaults():
    args = build_parser().parse_args(["word2vec", "train", "c.txt", "--out", "d"])
    defaults = Word2VecConfig()
    for f in dataclasses.fields(Word2VecConfig):
        assert getattr(args, f.name) == getattr(defaults, f.name), f.name
    parser = build_parser()
    with contextlib.redirect_stdout(io.StringIO()) as out, pytest.raises(SystemExit):
        parser.parse_args(["word2vec", "train", "--help"])
    text = " ".join(out.getvalue().split())
    for f in dataclasses.fields(Word2VecConfig):
        assert f"--{f.name.replace('_', '-')}" in text and f.metadata["help"] in text
    # The task's sections: Word2VecConfig's defaults (one thread), epochs as trainer's.
    task_config = Word2VecTaskConfig()
    assert task_config.word2vec() == dataclasses.replace(defaults, threads=1)
    assert task_config.trainer.max_epochs == defaults.epochs


def test_listed_by_xmodal_tasks(capsys):
    assert listed_tasks(capsys)["word2vec"][1:3] == ["representations", "world"]


def test_copied_run_folder_still_evaluates(run_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "vectors.bin").unlink()  # eval reads model.safetensors and vocab.txt
    task, model = load_run(copy)
    assert task.evaluate(model, "test") == read_metrics(run_dir)["test"]
    assert not (copy / "vectors.bin").exists()  # only training writes the word2vec files
