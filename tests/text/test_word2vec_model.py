"""What the ``word2vec`` task stands on: the corpus in memory and its jobs
(``xmodal.text.word2vec_data``), the skip-gram module trained one job at a time
(``xmodal.text.word2vec_model``), the category check and the config's field checks."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

import xmodal.text.word2vec as w2v
import xmodal.text.word2vec_eval as w2v_eval
from tests.text.test_word2vec import planted_text
from xmodal.errors import DataError, ParameterError
from xmodal.text.word2vec import (
    Word2VecConfig,
    WordVectors,
    category_precision,
    check_word2vec_fields,
    job_seed,
    linear_alpha,
    train_word2vec,
)
from xmodal.text.word2vec_data import (
    Word2VecJobs,
    collate_jobs,
    read_corpus,
    read_vocab,
    write_vocab,
)
from xmodal.text.word2vec_model import SkipGram

OPTIONS = dict(min_count=2, max_vocab=None, max_sentence_length=7)


@pytest.fixture(scope="module")
def text() -> str:
    return planted_text(400) + "rare words once\n" + " ".join(["long"] * 20) + "\n"


def test_lines_and_file_read_alike_and_as_train_word2vec(tmp_path, text):
    path = tmp_path / "c.txt"
    path.write_text(text)
    from_file = read_corpus(path, **OPTIONS)
    from_lines = read_corpus(text.splitlines(), **OPTIONS)
    for name in ("words", "counts", "ids", "sent_ends"):
        np.testing.assert_array_equal(getattr(from_file, name), getattr(from_lines, name))
    wv = train_word2vec(path, Word2VecConfig(dim=4, epochs=1, threads=1, **OPTIONS))
    assert from_file.words == wv.words and from_file.counts.tolist() == wv.counts.tolist()
    assert from_file.info == {k: v for k, v in wv.meta["corpus"].items() if k != "scan_seconds"}
    # Every token, in order: vocabulary words by index, the others (count 1) as V.
    tokens = [t for line in text.splitlines() for t in line.split()]
    v = len(from_file.words)
    index = {w: i for i, w in enumerate(from_file.words)}
    assert from_file.ids.tolist() == [index.get(t, v) for t in tokens]
    assert {"rare", "words", "once"}.isdisjoint(from_file.words)
    assert np.diff(np.r_[0, from_file.sent_ends]).max() == 7  # "long" x 20 cut in 7, 7, 6


def test_jobs_cover_the_corpus_once_in_order(text):
    corpus = read_corpus(text.splitlines(), **OPTIONS)
    jobs = Word2VecJobs(corpus, 300)
    items = [jobs[j] for j in range(len(jobs))]
    assert len(jobs) > 5
    np.testing.assert_array_equal(torch.cat([it["ids"] for it in items]).numpy(), corpus.ids)
    for it in items:
        assert it["sent_ends"][-1] == len(it["ids"])
        assert it["start"] == jobs.words_before(0, it["job"])
    assert jobs.words_before(2, 3) == 2 * corpus.n_tokens + items[3]["start"]
    assert jobs.words_in(2 * len(jobs)) == 2 * corpus.n_tokens
    assert jobs.words_in(len(jobs) + 1) == corpus.n_tokens + len(items[0]["ids"])
    batch = collate_jobs(items[:2])
    assert batch["tokens"].shape == (len(items[0]["ids"]) + len(items[1]["ids"]),)
    assert batch["jobs"] == items[:2]


def test_skipgram_job_by_job_equals_train_word2vec(tmp_path, text):
    path = tmp_path / "c.txt"
    path.write_text(text)
    config = Word2VecConfig(
        dim=8, epochs=2, threads=1, batch_words=300, seed=5, sample=0.0, **OPTIONS
    )
    reference = train_word2vec(path, config)
    corpus = read_corpus(path, **OPTIONS)
    jobs = Word2VecJobs(corpus, config.batch_words)
    model = SkipGram(corpus.words, corpus.counts, dim=8, window=config.window,
                     negative=config.negative, ns_exponent=config.ns_exponent,
                     sample=config.sample, seed=config.seed)  # fmt: skip
    assert not any(p.requires_grad for p in model.parameters())
    total = jobs.words_in(2 * len(jobs))
    losses = []
    for epoch in range(2):
        for j in range(len(jobs)):
            job, done = jobs[j], jobs.words_before(epoch, j)
            _, loss, pairs = model.train_job(
                job["ids"], job["sent_ends"], seed=job_seed(5, epoch, j),
                alpha_start=linear_alpha(config.alpha, config.min_alpha, done, total),
                alpha_end=linear_alpha(config.alpha, config.min_alpha, done + len(job["ids"]),
                                       total),
            )  # fmt: skip
            losses.append(loss / pairs)
    np.testing.assert_array_equal(model.word_vectors().vectors, reference.vectors)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    ids = torch.tensor([[0, 2]])
    assert torch.equal(model(ids), model.syn0[ids])  # (1, 2) -> (1, 2, 8)


def test_skipgram_refuses_what_the_kernel_cannot_take(text):
    corpus = read_corpus(text.splitlines(), **OPTIONS)
    kw = dict(dim=4, window=2, negative=2, ns_exponent=0.75, sample=0.0, seed=0)
    model = SkipGram(corpus.words, corpus.counts, **kw)
    v = len(corpus.words)
    job = dict(alpha_start=0.01, alpha_end=0.01, seed=1)
    with pytest.raises(ParameterError, match=rf"ids must be in \[0, {v}\]"):
        model.train_job(np.array([0, v + 1]), np.array([2]), **job)
    with pytest.raises(ParameterError, match="sent_ends must rise to len"):
        model.train_job(np.array([0, 1]), np.array([1]), **job)
    model.double()
    with pytest.raises(ParameterError, match="on the CPU in float32: syn0 is torch.float64"):
        model.train_job(np.array([0, 1]), np.array([2]), **job)
    with pytest.raises(ParameterError, match="counts must have one entry per word"):
        SkipGram(corpus.words, corpus.counts[:-1], **kw)
    with pytest.raises(ParameterError, match="window must be"):
        SkipGram(corpus.words, corpus.counts, **{**kw, "window": 0})


def test_read_corpus_errors(tmp_path):
    with pytest.raises(DataError, match="no such corpus file"):
        read_corpus(tmp_path / "none.txt", **OPTIONS)
    with pytest.raises(DataError, match="the corpus of 2 line.s.: the corpus is empty"):
        read_corpus(["", "  "], **OPTIONS)
    with pytest.raises(DataError, match="no word occurs at least min_count=2"):
        read_corpus(["a b c"], **OPTIONS)
    with pytest.raises(ParameterError, match=r"lines\[1\] must be a str"):
        read_corpus(["a", 3], **OPTIONS)
    with pytest.raises(ParameterError, match="source must be a path or a list of lines"):
        read_corpus(3, **OPTIONS)


def test_vocab_file_round_trip_is_wordvectors_format(tmp_path):
    words, counts = ("the", "caf\u00e9", "x"), np.array([9, 4, 4])
    write_vocab(tmp_path / "vocab.txt", words, counts)
    got_words, got_counts = read_vocab(tmp_path / "vocab.txt")
    assert got_words == words and got_counts.tolist() == [9, 4, 4]
    WordVectors(words, np.ones((3, 2)), counts=counts).save(tmp_path / "wv")
    assert (tmp_path / "wv" / "vocab.txt").read_bytes() == (tmp_path / "vocab.txt").read_bytes()
    (tmp_path / "bad.txt").write_text("the 9\nbroken\n")
    with pytest.raises(DataError, match="line 2 must be '<word> <count>'"):
        read_vocab(tmp_path / "bad.txt")


def test_category_precision_against_a_hand_count():
    # 2-D vectors: colours near the x axis, animals near y; "grey" sits among the animals.
    words = ["red", "blue", "grey", "cat", "dog", "cow"]
    vectors = [[1, 0], [0.95, 0.1], [0.1, 0.9], [0, 1], [0.05, 1], [0.2, 0.95]]
    wv = WordVectors(words, np.array(vectors, dtype=np.float32))
    categories = {"colour": ["red", "blue", "grey"], "animal": ["cat", "dog", "cow"],
                  "none": ["unicorn"]}  # fmt: skip
    got = category_precision(wv, categories)
    # red: blue + one of the others; blue: red + ...; grey: animals first -> 0.
    assert got["colour"] == pytest.approx((1 / 2 + 1 / 2 + 0) / 3)
    assert set(got) == {"colour", "animal", "mean", "chance"}  # "none" has no word
    assert got["chance"] == pytest.approx(2 / 5)
    assert got["mean"] == pytest.approx((3 * got["colour"] + 3 * got["animal"]) / 6)
    assert category_precision(wv, {"a": ["red"]}) == {}
    with pytest.raises(ParameterError, match="must be a list of words"):
        category_precision(wv, {"a": "red"})


def test_field_checks_name_the_section():
    with pytest.raises(ParameterError, match="model.window must be an integer >= 1. Found: 0"):
        check_word2vec_fields("model.", window=0)
    with pytest.raises(ParameterError, match=r"optim.min_alpha must be <= optim.alpha \(0.01\)"):
        check_word2vec_fields("optim.", alpha=0.01, min_alpha=0.02)
    with pytest.raises(ParameterError, match="data.lr: Word2VecConfig has no field 'lr'"):
        check_word2vec_fields("data.", lr=1)
    check_word2vec_fields("data.", max_vocab=None, min_count=3)


@pytest.mark.parametrize("module", [w2v, w2v_eval])
def test_docstring_examples(module):
    assert doctest.testmod(module).failed == 0
