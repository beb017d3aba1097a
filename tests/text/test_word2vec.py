"""Skip-gram word2vec: the tables against their formulas and gensim, training on a corpus
with planted structure, reading the corpus in blocks, the word2vec formats both ways with
gensim, the evaluations against gensim's, the bad inputs, and the CLI."""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pytest
import torch

import xmodal.text.word2vec as w2v
from xmodal.cli import main
from xmodal.errors import DataError, ParameterError
from xmodal.text._word2vec_kernels import guide_shift_of, guide_table
from xmodal.text.vocab import Vocabulary
from xmodal.text.word2vec import (
    TrainingProgress,
    Word2VecConfig,
    WordVectors,
    embedding_from_word2vec,
    evaluate_analogies,
    evaluate_similarity,
    keep_probabilities,
    load_word2vec_format,
    noise_table,
    parse_arithmetic,
    save_word2vec_format,
    train_word2vec,
)

# A tiny world of people, each with three attributes; a sentence names one person among
# words that give away its attributes. Vectors that learn the corpus must make the
# attributes additive: king - man + woman = queen.
ENTITIES = {"king": (0, 0, 0), "queen": (1, 0, 0), "prince": (0, 0, 1), "princess": (1, 0, 1),
            "man": (0, 1, 0), "woman": (1, 1, 0), "boy": (0, 1, 1), "girl": (1, 1, 1)}  # fmt: skip
CONTEXT = [
    (("he", "him", "his", "sir"), ("she", "her", "hers", "madam")),
    (("crown", "throne", "palace", "court"), ("farm", "field", "market", "village")),
    (("old", "wise", "grown", "tall"), ("young", "small", "little", "child")),
]
FILLER = ("the", "a", "and", "of", "to", "in", "was", "is")
SMALL = dict(dim=16, epochs=5, threads=1, sample=0.0, min_count=1, seed=3)


def planted_text(n_sentences: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    names = sorted(ENTITIES)
    lines = []
    for _ in range(n_sentences):
        e = rng.choice(names)
        words = [e] + [rng.choice(CONTEXT[k][ENTITIES[e][k]]) for k in range(3) for _ in range(2)]
        words += [rng.choice(FILLER) for _ in range(2)]
        rng.shuffle(words)
        lines.append(" ".join(words))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("w2v") / "planted.txt"
    path.write_text(planted_text(3000))
    return path


@pytest.fixture(scope="module")
def trained(corpus):
    return train_word2vec(corpus, Word2VecConfig(**SMALL))


def _random_vectors(words, dim=8, seed=0) -> WordVectors:
    rng = np.random.default_rng(seed)
    return WordVectors(words, rng.standard_normal((len(words), dim)).astype(np.float32))


def _keyed(wv: WordVectors):
    gensim_kv = pytest.importorskip("gensim.models.keyedvectors")
    kv = gensim_kv.KeyedVectors(wv.dim)
    kv.add_vectors(list(wv.words), wv.vectors)
    return kv


# ---------------------------------------------------------------- tables


def test_noise_table_follows_unigram_075():
    counts = np.array([1000, 300, 50, 7, 1, 120])
    table = noise_table(counts)
    expected = counts**0.75 / (counts**0.75).sum()
    # The table's steps are the probabilities (up to its integer rounding) ...
    np.testing.assert_allclose(np.diff(np.r_[0, table]) / table[-1], expected, atol=1e-9)
    assert table[-1] == 2**31 - 1
    # ... and drawing as the kernel does (bisect_left of a uniform draw) follows them.
    rng = np.random.default_rng(0)
    draws = np.searchsorted(table, rng.integers(0, table[-1], 400_000), side="left")
    freq = np.bincount(draws, minlength=len(counts)) / len(draws)
    np.testing.assert_allclose(freq, expected, atol=4 * np.sqrt(expected.max() / len(draws)))
    np.testing.assert_allclose(np.diff(np.r_[0, noise_table(counts, 1.0)]) / (2**31 - 1),
                               counts / counts.sum(), atol=1e-9)  # fmt: skip


def test_guide_table_brackets_every_draw():
    counts = np.r_[np.full(3, 10**6), np.arange(1, 5000)]
    table = noise_table(counts)
    guide = guide_table(table)
    shift = guide_shift_of(int(table[-1]), len(guide) - 1)
    x = np.r_[np.random.default_rng(1).integers(0, table[-1], 100_000), 0, table[-1] - 1, table]
    x = x[x < table[-1]]
    answer = np.searchsorted(table, x, side="left")
    assert np.all(guide[x >> shift] <= answer) and np.all(answer <= guide[(x >> shift) + 1])


def test_keep_probabilities_formula():
    counts = np.array([5000, 800, 60, 5, 1])
    t = 1e-3 * counts.sum()
    expected = np.minimum((np.sqrt(counts / t) + 1) * t / counts, 1.0)
    np.testing.assert_allclose(keep_probabilities(counts, 1e-3), expected, rtol=1e-12)
    assert keep_probabilities(counts, 1e-3)[0] < 0.5 and keep_probabilities(counts, 1e-3)[-1] == 1
    np.testing.assert_array_equal(keep_probabilities(counts, 0.0), 1.0)


def test_tables_equal_gensims():
    gensim_w2v = pytest.importorskip("gensim.models.word2vec")
    sentences = [line.split() for line in planted_text(400, seed=5).splitlines()]
    model = gensim_w2v.Word2Vec(vector_size=4, min_count=1, sample=1e-3, workers=1, sg=1)
    model.build_vocab(sentences)
    words = model.wv.index_to_key
    counts = np.array([model.wv.get_vecattr(w, "count") for w in words])
    np.testing.assert_array_equal(noise_table(counts), model.cum_table)
    gensim_keep = np.array([model.wv.get_vecattr(w, "sample_int") for w in words]) / (2**32 - 1)
    np.testing.assert_allclose(keep_probabilities(counts, 1e-3), gensim_keep, atol=1e-9)
    assert gensim_keep.min() < 0.5  # the test covers words that are subsampled


# ---------------------------------------------------------------- reading the corpus


def _naive_scan(text: str, max_len: int):
    counts, sentences = Counter(), []
    for line in text.split("\n"):
        toks = line.split()
        counts.update(toks)
        sentences += [toks[i : i + max_len] for i in range(0, len(toks), max_len)]
    return counts, sentences


@pytest.mark.parametrize("block", [7, 64, 1 << 22])
def test_scan_in_blocks_equals_reading_whole_lines(tmp_path, monkeypatch, block):
    text = planted_text(50) + "  spaced\ttabs   here \r\n\n" + " ".join(["long"] * 23) + "\nend"
    path = tmp_path / "c.txt"
    path.write_text(text)
    monkeypatch.setattr(w2v, "_BLOCK", block)
    scan = w2v._scan_corpus(path, path.stat().st_size, 10, tmp_path / "ids", lambda *a: None)
    counts, sentences = _naive_scan(text, 10)
    assert dict(zip(scan.words, scan.counts.tolist(), strict=True)) == counts
    ids = np.fromfile(tmp_path / "ids", dtype=np.int32)
    tokens = [scan.words[i] for i in ids]
    assert tokens == [t for s in sentences for t in s]
    assert np.diff(np.r_[0, scan.sent_ends]).tolist() == [len(s) for s in sentences]
    assert scan.max_sentence == 10 and scan.n_tokens == sum(counts.values())


def test_the_corpus_is_streamed_not_loaded(tmp_path, monkeypatch):
    """The counting pass holds one block and the vocabulary: its peak memory does not grow
    with the file (8x the text, the same vocabulary: about the same peak)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i}" for i in range(300)])
    monkeypatch.setattr(w2v, "_BLOCK", 1 << 13)
    peaks, sizes = [], []
    for n_chunks in (2, 16):
        path = tmp_path / f"c{n_chunks}.txt"
        with open(path, "w") as f:
            for _ in range(n_chunks):
                toks = vocab[rng.integers(0, len(vocab), 10000)]
                f.write("\n".join(" ".join(toks[i : i + 500]) for i in range(0, 10000, 500)))
                f.write("\n")
        sizes.append(path.stat().st_size)
        tracemalloc.start()
        try:
            scan = w2v._scan_corpus(path, sizes[-1], 10000, tmp_path / "ids", lambda *a: None)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert scan.n_tokens == n_chunks * 10000
    assert sizes[1] > 7 * sizes[0]
    # 650 KB more text, a few KB more memory (the sentence ends: 8 bytes per line)
    assert peaks[1] - peaks[0] < (sizes[1] - sizes[0]) / 8, (peaks, sizes)


def test_vocabulary_order_min_count_and_max_vocab(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("b a c a b d\ne b c a\n")  # b:3 a:3 c:2 d:1 e:1
    wv = train_word2vec(path, Word2VecConfig(dim=4, min_count=2, epochs=1, threads=1))
    assert wv.words == ("b", "a", "c")  # by count, ties by first appearance
    assert wv.counts.tolist() == [3, 3, 2]
    wv = train_word2vec(path, Word2VecConfig(dim=4, min_count=1, max_vocab=2, epochs=1))
    assert wv.words == ("b", "a")
    assert wv.meta["corpus"]["tokens"] == 10 and wv.meta["corpus"]["distinct_tokens"] == 5


def test_non_utf8_bytes_are_replaced_and_counted(tmp_path):
    path = tmp_path / "c.txt"
    body = planted_text(200).encode()
    path.write_bytes(b"caf\xe9 king\n" + body + b"\xff\xfe queen\n" + body + b"ok \xc3\n")
    wv = train_word2vec(path, Word2VecConfig(dim=4, epochs=1, min_count=1, threads=1))
    assert wv.meta["corpus"]["replaced_bytes"] == 4
    assert wv.meta["corpus"]["replaced_lines"] == 3
    assert "caf\ufffd" in wv and "\ufffd\ufffd" in wv


# ---------------------------------------------------------------- training


def test_training_learns_the_planted_structure(trained):
    for a, b, c, expected in [("king", "man", "woman", "queen"), ("boy", "man", "woman", "girl"),
                              ("prince", "king", "queen", "princess"),
                              ("girl", "woman", "man", "boy")]:  # fmt: skip
        assert trained.arithmetic(positive=[a, c], negative=[b], topn=1)[0][0] == expected
    groups = [g for pair in CONTEXT for g in pair]
    within = [trained.similarity(x, y) for g in groups for x in g for y in g if x < y]
    across = [trained.similarity(x, y) for g1 in groups for g2 in groups if g1 != g2
              for x in g1 for y in g2]  # fmt: skip
    assert np.mean(within) > 0.8 and np.mean(across) < 0.3
    assert min(within) > max(np.mean(across), 0) + 0.3
    losses = trained.meta["training"]["epoch_loss"]
    assert losses[-1] < losses[0] < 6 * np.log(2)  # below chance (1 + negative) * log 2


def test_one_thread_and_a_seed_are_deterministic(corpus, trained):
    again = train_word2vec(corpus, Word2VecConfig(**SMALL))
    np.testing.assert_array_equal(again.vectors, trained.vectors)
    other = train_word2vec(corpus, Word2VecConfig(**{**SMALL, "seed": 4}))
    assert not np.array_equal(other.vectors, trained.vectors)


def test_two_threads_learn_too(corpus):
    wv = train_word2vec(corpus, Word2VecConfig(**{**SMALL, "threads": 2, "batch_words": 500}))
    assert wv.meta["training"]["threads"] == 2
    assert wv.arithmetic(positive=["king", "woman"], negative=["man"], topn=1)[0][0] == "queen"


def test_subsampling_keeps_words_at_the_formula_rate(corpus):
    cfg = Word2VecConfig(**{**SMALL, "sample": 1e-3, "epochs": 2, "dim": 4})
    wv = train_word2vec(corpus, cfg)
    p = keep_probabilities(wv.counts, 1e-3)
    expected = 2 * (wv.counts * p).sum()  # two epochs
    sd = np.sqrt(2 * (wv.counts * p * (1 - p)).sum())
    assert abs(wv.meta["training"]["effective_words"] - expected) < 5 * sd
    assert p.max() < 0.5  # every word of this corpus is subsampled


def test_progress_callback_and_bar(corpus, capsys):
    seen: list[TrainingProgress] = []
    train_word2vec(corpus, Word2VecConfig(**{**SMALL, "epochs": 1}), progress=seen.append)
    assert seen[0].stage == "scan" and seen[-1].stage == "train" and seen[-1].done
    assert seen[-1].words_done == seen[-1].words_total and np.isfinite(seen[-1].loss)
    train_word2vec(corpus, Word2VecConfig(**{**SMALL, "epochs": 1}), progress=True)
    err = capsys.readouterr().err
    assert "words/s" in err and "loss" in err


# ---------------------------------------------------------------- vectors and formats


def test_most_similar_and_arithmetic(trained):
    near = trained.most_similar("he", topn=3)
    assert {w for w, _ in near} == {"him", "his", "sir"}
    assert all(a >= b for (_, a), (_, b) in zip(near, near[1:], strict=False))
    assert near == trained.most_similar(trained["he"], topn=4)[1:]
    assert trained.most_similar("he", topn=3, restrict_vocab=5) == trained.most_similar(
        "he", topn=50, restrict_vocab=5)[:3]  # fmt: skip
    assert all(trained.index(w) < 5 for w, _ in trained.most_similar("he", restrict_vocab=5))
    assert parse_arithmetic("king - man + woman") == (["king", "woman"], ["man"])
    assert parse_arithmetic("t-shirt") == (["t-shirt"], [])
    assert parse_arithmetic("- man") == ([], ["man"])


@pytest.mark.parametrize("binary", [True, False])
def test_format_round_trip(tmp_path, trained, binary):
    path = tmp_path / ("v.bin" if binary else "v.txt")
    save_word2vec_format(trained, path, binary=binary)
    back = load_word2vec_format(path)  # the format is recognised without binary=
    assert back.words == trained.words
    np.testing.assert_array_equal(back.vectors, trained.vectors)


def test_directory_round_trip(tmp_path, trained):
    trained.save(tmp_path / "w2v")
    assert sorted(p.name for p in (tmp_path / "w2v").iterdir()) == [
        "config.json", "vectors.bin", "vocab.txt"]  # fmt: skip
    back = WordVectors.load(tmp_path / "w2v")
    assert back.words == trained.words
    np.testing.assert_array_equal(back.vectors, trained.vectors)
    np.testing.assert_array_equal(back.counts, trained.counts)
    assert back.meta["config"] == trained.meta["config"]
    assert json.loads((tmp_path / "w2v" / "config.json").read_text())["dim"] == 16


@pytest.mark.parametrize("binary", [True, False])
def test_gensim_reads_ours_and_we_read_gensims(tmp_path, trained, binary):
    gensim_kv = pytest.importorskip("gensim.models.keyedvectors")
    ours = tmp_path / "ours"
    save_word2vec_format(trained, ours, binary=binary)
    kv = gensim_kv.KeyedVectors.load_word2vec_format(str(ours), binary=binary)
    assert kv.index_to_key == list(trained.words)
    np.testing.assert_array_equal(kv.vectors, trained.vectors)

    words = ["zebra", "Éclair", "naïve", "x"] + [f"w{i}" for i in range(50)]
    rng = np.random.default_rng(3)
    kv = gensim_kv.KeyedVectors(7)
    kv.add_vectors(words, rng.standard_normal((len(words), 7)).astype(np.float32))
    theirs = tmp_path / "theirs"
    kv.save_word2vec_format(str(theirs), binary=binary)
    back = load_word2vec_format(theirs, binary=binary)
    assert list(back.words) == words
    np.testing.assert_array_equal(back.vectors, kv.vectors)  # gensim's text is exact too


def test_embedding_from_word2vec(tmp_path, trained):
    trained.save(tmp_path / "w2v")
    vocab = Vocabulary(["king", "Queen", "unicorn", "he"])
    weight, found = embedding_from_word2vec(vocab, tmp_path / "w2v",
                                            generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert weight.shape == (len(vocab), 16) and weight.dtype == torch.float32
    assert found == 3  # "Queen" matches "queen"; "unicorn" is new
    for word, source in (("king", "king"), ("Queen", "queen"), ("he", "he")):
        np.testing.assert_array_equal(weight[vocab.token_to_id(word)].numpy(), trained[source])
    assert torch.all(weight[0] == 0)  # <pad>
    assert weight[vocab.token_to_id("unicorn")].abs().sum() > 0
    emb = torch.nn.Embedding.from_pretrained(weight, freeze=False, padding_idx=0)
    assert emb(torch.tensor([vocab.token_to_id("king")])).shape == (1, 16)


# ---------------------------------------------------------------- evaluation vs gensim


def _mixed_case_words(n: int) -> list[str]:
    words = [f"w{i}" for i in range(n)]
    words[5], words[40], words[70] = "Paris", "paris", "PARIS"  # case folding: first wins
    words[9], words[90] = "Rome", "rome"
    return words


def test_analogies_equal_gensims(tmp_path):
    wv = _random_vectors(_mixed_case_words(120), dim=6, seed=1)
    kv = _keyed(wv)
    rng = random.Random(0)
    lines = [": first"]
    for i in range(60):
        a, b, c = rng.sample(wv.words[:100], 3)
        # Half the questions expect gensim's own answer, so some are right.
        best = kv.most_similar(positive=[b, c], negative=[a], topn=1)[0][0]
        d = best if i % 2 else rng.choice(wv.words)
        lines.append(f"{a} {b} {c} {d}")
    lines += [": empty", ": second", "paris rome Paris w1", "w1 w2 w3 unknownword",
              "too few words", "w3 w4 w5 w6", "W7 w8 w9 w10"]  # fmt: skip
    path = tmp_path / "q.txt"
    path.write_text("\n".join(lines) + "\n")
    for restrict in (300000, 80):
        for case_insensitive in (True, False):
            ours = evaluate_analogies(wv, path, restrict_vocab=restrict,
                                      case_insensitive=case_insensitive)  # fmt: skip
            score, sections = kv.evaluate_word_analogies(
                str(path), restrict_vocab=restrict, case_insensitive=case_insensitive)  # fmt: skip
            assert ours.accuracy == pytest.approx(score, abs=1e-12)
            assert [s.name for s in ours.sections] == [s["section"] for s in sections[:-1]]
            for mine, theirs in zip(ours.sections, sections[:-1], strict=True):
                assert mine.correct == theirs["correct"]
                assert mine.incorrect == theirs["incorrect"]
    ours = evaluate_analogies(wv, path)
    assert 0 < ours.accuracy < 1 and ours.n_oov >= 1 and ours.skipped_lines == 1
    assert ours.section("empty").n == 0 and ours.section("empty").accuracy == 0.0


def test_similarity_equals_gensims(tmp_path):
    wv = _random_vectors(_mixed_case_words(100), dim=6, seed=2)
    kv = _keyed(wv)
    rng = random.Random(1)
    lines = ["# a comment", "Word 1\tWord 2\tHuman (mean)"]
    lines += [f"{a}\t{b}\t{rng.uniform(0, 10):.2f}" for a, b in
              (rng.sample(wv.words, 2) for _ in range(40))]  # fmt: skip
    lines += ["PARIS\trome\t7.5", "w1\tnotaword\t3.0", "bad line"]
    path = tmp_path / "ws.tsv"
    path.write_text("\n".join(lines) + "\n")
    ours = evaluate_similarity(wv, path)
    pearson, spearman, oov_ratio = kv.evaluate_word_pairs(str(path))
    assert ours.pearson == pytest.approx(pearson[0], abs=1e-6)
    assert ours.spearman == pytest.approx(spearman[0], abs=1e-9)
    assert ours.oov_ratio == pytest.approx(oov_ratio)
    assert ours.n_pairs == 41 and ours.n_oov == 1


def test_gensim_test_files_give_gensims_scores():
    pytest.importorskip("gensim")
    from gensim.test.utils import datapath

    questions, wordsim = datapath("questions-words.txt"), datapath("wordsim353.tsv")
    words: dict[str, None] = {}
    with open(questions) as f:
        for line in f:
            if not line.startswith(":"):
                words.update(dict.fromkeys(w.lower() for w in line.split()))
    with open(wordsim) as f:
        for line in f:
            if not line.startswith("#"):
                words.update(dict.fromkeys(w.lower() for w in line.split("\t")[:2]))
    vocab = [w for i, w in enumerate(words) if i % 7]  # some words missing: OOV questions
    wv = _random_vectors(vocab, dim=8, seed=4)
    kv = _keyed(wv)
    ours = evaluate_analogies(wv, questions, restrict_vocab=500)
    score, sections = kv.evaluate_word_analogies(questions, restrict_vocab=500)
    assert ours.accuracy == pytest.approx(score, abs=1e-12)
    assert len(ours.sections) == 14
    for mine, theirs in zip(ours.sections, sections[:-1], strict=True):
        assert (mine.name, mine.correct, mine.incorrect) == (
            theirs["section"], theirs["correct"], theirs["incorrect"])  # fmt: skip
    sim = evaluate_similarity(wv, wordsim)
    pearson, spearman, oov_ratio = kv.evaluate_word_pairs(wordsim)
    assert (sim.pearson, sim.spearman) == pytest.approx((pearson[0], spearman[0]), abs=1e-6)
    assert sim.oov_ratio == pytest.approx(oov_ratio)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("window", 0, "window must be an integer >= 1. Found: 0"),
        ("negative", 0, "negative must be an integer >= 1. Found: 0"),
        ("dim", 0, "dim must be"),
        ("epochs", 1.5, "epochs must be"),
        ("min_count", True, "min_count must be"),
        ("sample", -1e-3, "sample must be"),
        ("alpha", 0.0, "alpha must be"),
        ("min_alpha", 0.5, "min_alpha must be <= alpha"),
        ("threads", 0, "threads must be"),
        ("max_vocab", 0, "max_vocab must be"),
    ],
)
def test_bad_config(field, value, message):
    with pytest.raises(ParameterError, match=message):
        Word2VecConfig(**{field: value})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the corpus is empty"),
        (b"\n  \n\t\n", "the corpus is empty"),
        (b"a b c d e f\ng h i\n", "no word occurs at least min_count=5 times .*'a', occurs 1"),
    ],
)
def test_bad_corpus(tmp_path, content, message):
    path = tmp_path / "c.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        train_word2vec(path, Word2VecConfig(epochs=1))


def test_missing_corpus_and_bad_arguments(tmp_path):
    with pytest.raises(DataError, match="no such corpus file"):
        train_word2vec(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="is not a file"):
        train_word2vec(tmp_path)
    (tmp_path / "c.txt").write_text("a b\n")
    with pytest.raises(ParameterError, match="config must be a Word2VecConfig"):
        train_word2vec(tmp_path / "c.txt", {"dim": 3})
    with pytest.raises(ParameterError, match="progress must be"):
        train_word2vec(tmp_path / "c.txt", Word2VecConfig(min_count=1), progress="yes")


@pytest.mark.parametrize(
    ("content", "binary", "message"),
    [
        (b"hello world\nx 1 2\n", None, "first line must be '<number of words> <dimensions>'"),
        (b"2 3 4\n", None, "first line must be"),
        (b"", None, "first line must be"),
        (b"0 3\n", None, "both must be >= 1"),
        (b"2 2\na 1 2\n", False, "ends at line 3"),
        (b"2 2\na 1 2\nb 1\n", False, "line 3 has 1 values, the header says 2"),
        (b"1 2\na 1 x\n", False, "not a number"),
        (b"1 2\na 1 nan\n", False, "holds NaN or Inf"),
        (b"2 2\na 1 2\na 3 4\n", False, "the word 'a' appears twice"),
        (b"1 2\na 1 2\nb 3 4\n", False, "more lines than the 1"),
        (b"2 2\na " + np.ones(2, "<f4").tobytes(), True, "ends in record 2 of 2"),
        (b"1 2\na " + np.ones(1, "<f4").tobytes(), True, "ends in record 1 of 1"),
        (b"1 2\n\xff\xfe " + np.ones(2, "<f4").tobytes(), True, "not UTF-8"),
    ],
)
def test_bad_vectors_file(tmp_path, content, binary, message):
    path = tmp_path / "v"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_word2vec_format(path, binary=binary)


def test_bad_vectors_directory(tmp_path):
    with pytest.raises(DataError, match="no such word2vec directory"):
        WordVectors.load(tmp_path / "nope")
    with pytest.raises(DataError, match="holds no vectors.bin"):
        WordVectors.load(tmp_path)


def test_unknown_words_are_named(trained):
    with pytest.raises(ParameterError, match=r"word 'unicorn' is not in the vocabulary \(\d+"):
        trained.most_similar("unicorn")
    with pytest.raises(ParameterError, match="'KING' is not in the vocabulary.*mean 'king'"):
        trained.arithmetic(positive=["KING", "woman"], negative=["man"])
    with pytest.raises(ParameterError, match="'dragon' is not in the vocabulary"):
        trained.arithmetic(positive=["king"], negative=["dragon"])
    with pytest.raises(ParameterError, match="at least one positive or negative"):
        trained.arithmetic()
    with pytest.raises(ParameterError, match="positive must be a list of words"):
        trained.arithmetic(positive="king")
    with pytest.raises(ParameterError, match="expression ends with an operator"):
        parse_arithmetic("king -")
    with pytest.raises(ParameterError, match=r"needs \+ or -"):
        parse_arithmetic("king man")


def test_bad_evaluation_files(tmp_path, trained):
    path = tmp_path / "q.txt"
    path.write_text("king man queen woman\n: s\n")
    with pytest.raises(DataError, match="before the first section header"):
        evaluate_analogies(trained, path)
    path.write_text(": only a header\n")
    with pytest.raises(DataError, match="holds no analogy question"):
        evaluate_analogies(trained, path)
    with pytest.raises(DataError, match="no such file"):
        evaluate_analogies(trained, tmp_path / "nope.txt")
    path.write_text("dragon\tunicorn\t5.0\nking\tgriffin\t2\n")
    with pytest.raises(DataError, match="no word pair could be scored"):
        evaluate_similarity(trained, path)
    with pytest.raises(ParameterError, match="restrict_vocab must be"):
        evaluate_similarity(trained, path, restrict_vocab=0)


# ---------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def cli_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "w2v"
    argv = ["word2vec", "train", str(corpus), "--out", str(out), "--dim", "16", "--epochs", "5",
            "--min-count", "1", "--sample", "0", "--threads", "1", "--seed", "3"]  # fmt: skip
    assert main(argv) == 0
    return out


def test_cli_train_writes_the_directory(cli_run, trained, capsys):
    wv = WordVectors.load(cli_run)
    np.testing.assert_array_equal(wv.vectors, trained.vectors)  # same settings, same result


def test_cli_eval(cli_run, tmp_path, capsys):
    questions = tmp_path / "q.txt"
    questions.write_text(": royal\nking queen man woman\nprince princess boy girl\n"
                         ": age\nking prince queen princess\nman boy dragon unicorn\n")  # fmt: skip
    sim = tmp_path / "s.tsv"
    sim.write_text("he\thim\t9\nhe\tfarm\t1\nking\tqueen\t6\nfarm\tfield\t8\ncrown\tgirl\t2\n")
    assert main(["word2vec", "eval", str(cli_run), "--analogies", str(questions),
                 "--similarity", str(sim)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "royal" in out and "100.0%" in out and "Spearman" in out
    report = json.loads((cli_run / "eval.json").read_text())
    assert report["analogies"]["accuracy"] == 1.0 and report["analogies"]["questions"] == 4
    assert report["similarity"]["spearman"] > 0.5 and report["similarity"]["pairs"] == 5


def test_cli_neighbors_and_arithmetic(cli_run, capsys):
    assert main(["word2vec", "neighbors", str(cli_run), "he", "-n", "3"]) == 0
    out = capsys.readouterr().out
    assert {"him", "his", "sir"} <= set(out.split())
    assert main(["word2vec", "neighbors", str(cli_run), "king - man + woman", "-n", "1"]) == 0
    assert capsys.readouterr().out.split("\n")[1].split()[0] == "queen"


def test_cli_plot(cli_run, tmp_path, capsys):
    out = tmp_path / "fig.png"
    assert main(["word2vec", "plot", str(cli_run), "king", "queen", "man", "woman",
                 "--analogy", "man:woman", "--analogy", "king:queen", "--out", str(out),
                 "--dpi", "40"]) == 0  # fmt: skip
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "4 words, 2 arrows" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "{corpus}", "--out", "{tmp}/a", "--window", "0"], "window must be an integer"),
        (["train", "{corpus}", "--out", "{tmp}/a", "--negative", "0"], "negative must be"),
        (["train", "{tmp}/none.txt", "--out", "{tmp}/a"], "no such corpus file"),
        (["train", "{corpus}", "--out", "{run}"], "already holds vectors.bin"),
        (["neighbors", "{run}", "unicorn"], "word 'unicorn' is not in the vocabulary"),
        (["neighbors", "{run}", "king - dragon"], "word 'dragon' is not in the vocabulary"),
        (["eval", "{run}"], "give --analogies FILE and/or --similarity FILE"),
        (["plot", "{run}", "king", "unicorn", "--out", "{tmp}/f.png"], "'unicorn'"),
        (["plot", "{run}", "--analogy", "king", "--out", "{tmp}/f.png"], "must be A:B"),
        (["plot", "{run}", "king", "queen", "--out", "{tmp}/f.txt"], "must end in .png"),
        (["neighbors", "{tmp}/nothing", "king"], "no such word2vec directory"),
    ],
)
def test_cli_errors(cli_run, corpus, tmp_path, capsys, argv, message):
    argv = [a.format(corpus=corpus, tmp=tmp_path, run=cli_run) for a in argv]
    assert main(["word2vec", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("xmodal: error:") and len(err.strip().splitlines()) == 1
    assert __import__("re").search(message, err), err
