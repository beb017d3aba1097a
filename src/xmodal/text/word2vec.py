"""Skip-gram word2vec with negative sampling, trained on a corpus streamed from disk.

The method of Mikolov et al. (2013) as word2vec.c and gensim implement it: every word of a
sentence is predicted from each word within a window around it (the window shrunk by a
random amount per word, so near words count more), against ``negative`` noise words
drawn from the unigram distribution raised to 0.75; frequent words are randomly dropped
("subsampling"); the learning rate falls linearly from ``alpha`` to ``min_alpha`` over
the whole run. The inner loop is a numba kernel (:mod:`xmodal.text._word2vec_kernels`)
that several Python threads run at once without the GIL.

Reading the corpus, the choices gensim's ``LineSentence`` makes, so the two see the same
words: the file is UTF-8 text with one sentence per line; a line is split on whitespace
and its tokens are taken as they are (no lower-casing, no punctuation removed: tokenize
beforehand); lines longer than ``max_sentence_length`` words are cut into several
sentences. Bytes that are not UTF-8 are replaced by U+FFFD and counted (``stats``), not
fatal.

Streaming: a first pass reads the file in 4 MiB blocks, counts the words and writes each
token's id (4 bytes) to a temporary file; the epochs then read that file through a
memory map. Memory therefore holds the vocabulary and the weights, never the corpus; the
temporary file (4 bytes per token, e.g. 700 MB for a 1 GB text) is deleted at the end.

Example::

    from xmodal.text.word2vec import Word2VecConfig, train_word2vec

    wv = train_word2vec("corpus.txt", Word2VecConfig(dim=100, epochs=5), out_dir="w2v")
    wv.most_similar("king", topn=5)
    wv.arithmetic(positive=["king", "woman"], negative=["man"], topn=1)
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np

from xmodal._checks import check_positive_int, check_positive_number
from xmodal.errors import DataError, ParameterError
from xmodal.text.word2vec_eval import (
    AnalogyResult,
    AnalogySection,
    SimilarityResult,
    category_precision,
    evaluate_analogies,
    evaluate_similarity,
)
from xmodal.text.word2vec_vectors import (
    WordVectors,
    embedding_from_word2vec,
    load_word2vec_format,
    model_word_init,
    parse_arithmetic,
    save_word2vec_format,
)

__all__ = [
    "AnalogyResult",
    "AnalogySection",
    "SimilarityResult",
    "TrainingProgress",
    "Word2VecConfig",
    "WordVectors",
    "category_precision",
    "check_word2vec_fields",
    "embedding_from_word2vec",
    "evaluate_analogies",
    "evaluate_similarity",
    "initial_weights",
    "job_bounds",
    "job_seed",
    "keep_probabilities",
    "linear_alpha",
    "load_word2vec_format",
    "model_word_init",
    "noise_table",
    "parse_arithmetic",
    "query_neighbours",
    "sampling_tables",
    "save_word2vec_format",
    "train_word2vec",
]

_BLOCK = 1 << 22  # bytes read at a time in the counting pass
_MAX_LINE_BYTES = 1 << 26  # a "line" longer than this is cut at whitespace
NOISE_DOMAIN = 2**31 - 1  # the cumulative noise table's total, as gensim's


def _setting(default, help: str):
    """A :class:`Word2VecConfig` field: its default and its one-line ``help`` (the
    ``xmodal word2vec train`` flags and the ``word2vec`` task's config sections read both)."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclass
class Word2VecConfig:
    """Settings of :func:`train_word2vec`; the defaults are word2vec.c's and gensim's.

    Each field's help is in its metadata (``dataclasses.fields(Word2VecConfig)``): the
    command line's flags and the ``word2vec`` task's config sections are made from these
    fields, so a default is written here only. Each word uses a random window in
    ``1..window``; the learning rate falls linearly from ``alpha`` to ``min_alpha`` over
    the run; a job is about ``batch_words`` words handed to one thread.
    """

    dim: int = _setting(100, "vector size")
    window: int = _setting(5, "largest distance between a word and its context")
    negative: int = _setting(5, "noise words per pair")
    min_count: int = _setting(5, "drop words seen fewer times")
    max_vocab: int | None = _setting(None, "keep at most this many of the most frequent words")
    sample: float = _setting(1e-3, "subsampling threshold of frequent words (0: off)")
    alpha: float = _setting(0.025, "initial learning rate")
    min_alpha: float = _setting(0.0001, "final learning rate")
    epochs: int = _setting(5, "passes over the corpus")
    threads: int | None = _setting(None, "worker threads (default: one per CPU core)")
    seed: int = _setting(1, "random seed")
    ns_exponent: float = _setting(0.75, "noise words are drawn from the unigram "
                                  "distribution to this power")  # fmt: skip
    max_sentence_length: int = _setting(10000, "longer lines are cut")
    batch_words: int = _setting(10000, "words per job handed to a thread")
    cache_dir: str | None = _setting(None, "folder of the temporary token file (default: "
                                     "the system's temporary folder)")  # fmt: skip

    def __post_init__(self):
        check_word2vec_fields(**dataclasses.asdict(self))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["cache_dir"] = None if self.cache_dir is None else str(self.cache_dir)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Word2VecConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ParameterError(f"unknown Word2VecConfig field(s): {', '.join(unknown)}")
        return cls(**d)


_POSITIVE = ("dim", "window", "negative", "min_count", "epochs", "max_sentence_length",
             "batch_words")  # fmt: skip


def check_word2vec_fields(prefix: str = "", **values) -> None:
    """Check any of :class:`Word2VecConfig`'s fields given as keywords, each named
    ``prefix + name`` in the error (the ``word2vec`` task checks its ``model.``,
    ``optim.`` and ``data.`` sections with it); ``min_alpha <= alpha`` when both are given.

    >>> check_word2vec_fields("model.", window=0)
    Traceback (most recent call last):
    ...
    xmodal.errors.ParameterError: model.window must be an integer >= 1. Found: 0
    """
    for name, value in values.items():
        key = prefix + name
        if name in _POSITIVE:
            check_positive_int(value, key)
        elif name in ("max_vocab", "threads"):
            if value is not None:
                check_positive_int(value, key)
        elif name == "seed":
            check_positive_int(value, key, minimum=0)
        elif name in ("sample", "min_alpha", "ns_exponent"):
            check_positive_number(value, key, allow_zero=True)
        elif name == "alpha":
            check_positive_number(value, key)
        elif name == "cache_dir":
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise ParameterError(f"{key} must be a path or None. Found: {value!r}")
        else:
            raise ParameterError(f"{key}: Word2VecConfig has no field {name!r}")
    if "alpha" in values and "min_alpha" in values and values["min_alpha"] > values["alpha"]:
        raise ParameterError(
            f"{prefix}min_alpha must be <= {prefix}alpha ({values['alpha']}). "
            f"Found: {values['min_alpha']}"
        )


def linear_alpha(alpha: float, min_alpha: float, done: int, total: int) -> float:
    """The learning rate after ``done`` of the run's ``total`` words: linear from ``alpha``
    to ``min_alpha``, as word2vec.c and gensim.

    >>> linear_alpha(0.025, 0.0001, 50, 100)
    0.01255
    """
    return alpha - (alpha - min_alpha) * (done / total)


@dataclass
class TrainingProgress:
    """What a ``progress`` callback of :func:`train_word2vec` receives, about twice a second.

    stage: ``"scan"`` (the counting pass; ``words_done`` counts tokens read, ``words_total``
    is the file's size in bytes and ``bytes_done`` how far it got) or ``"train"``.
    words_per_s: raw corpus words per second since the stage began. loss: mean
    negative-sampling loss per (word, context) pair since the last report (nan in scan).
    """

    stage: str
    epoch: int
    epochs: int
    words_done: int
    words_total: int
    words_per_s: float
    loss: float
    elapsed: float
    bytes_done: int = 0
    done: bool = False


@dataclass
class _Scan:
    words: list[str]  # every distinct token, by first appearance (corpus ids)
    counts: np.ndarray  # (n corpus ids,) int64
    ids_path: Path | None  # None: the ids went to a file object in memory
    sent_ends: np.ndarray  # (n sentences,) int64: cumulative token ends
    n_tokens: int
    n_lines: int
    n_bytes: int
    replaced_bytes: int
    replaced_lines: int
    max_sentence: int
    seconds: float

    def info(self, keep: np.ndarray) -> dict:
        """The corpus's numbers with the vocabulary ``keep`` (corpus ids), as
        ``train_word2vec`` reports them under ``meta["corpus"]``."""
        return {
            "bytes": self.n_bytes,
            "lines": self.n_lines,
            "tokens": self.n_tokens,
            "distinct_tokens": len(self.words),
            "vocabulary": len(keep),
            "tokens_in_vocabulary": int(self.counts[keep].sum()),
            "replaced_bytes": self.replaced_bytes,
            "replaced_lines": self.replaced_lines,
        }


# ---------------------------------------------------------------- reading the corpus

_ERRORS = "xmodal.word2vec.count"
_local = threading.local()


def _count_replace(exc: UnicodeDecodeError):
    # Called by the codec only where bytes are not UTF-8: replace them like
    # errors="replace" and note where, so the pass can say how many bytes and lines.
    _local.bad.append(exc.start)
    _local.nbad += exc.end - exc.start
    return "\ufffd", exc.end


codecs.register_error(_ERRORS, _count_replace)


def _decode(block: bytes) -> tuple[str, int, int]:
    """``(text, replaced bytes, lines with replaced bytes)`` of a block of whole lines."""
    _local.bad, _local.nbad = [], 0
    text = block.decode("utf-8", errors=_ERRORS)
    if not _local.bad:
        return text, 0, 0
    newlines = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
    lines = np.unique(np.searchsorted(newlines, np.asarray(_local.bad)))
    return text, _local.nbad, len(lines)


def _blocks(f, size: int):
    """Yield chunks of ``f`` that end at a newline (the last one may not)."""
    rest = b""
    while True:
        data = f.read(size)
        if not data:
            if rest:
                yield rest
            return
        data = rest + data
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) > _MAX_LINE_BYTES:
            # One enormous line: cut at whitespace so memory stays bounded.
            cut = max(data.rfind(b" "), data.rfind(b"\t")) + 1 or len(data)
        if cut == 0:
            rest = data
            continue
        yield data[:cut]
        rest = data[cut:]


def _open_corpus(path) -> tuple[Path, int]:
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(f"corpus_path must be a path. Found: {type(path).__name__} {path!r}")
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such corpus file")
    if not path.is_file():
        raise DataError(f"{path}: is not a file (the corpus must be one text file)")
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err})") from None
    return path, path.stat().st_size


def _scan_corpus(path: Path, n_bytes: int, max_len: int, ids_path: Path, report) -> _Scan:
    """Count the tokens of the corpus and write their ids to ``ids_path`` (int32)."""
    with open(path, "rb") as f, open(ids_path, "wb") as out:
        return _scan_stream(f, n_bytes, max_len, out, report, ids_path=ids_path)


def _scan_stream(f, n_bytes: int, max_len: int, out, report, *, ids_path=None) -> _Scan:
    """:func:`_scan_corpus` of the binary file object ``f``, the ids written to ``out``."""
    start = time.perf_counter()
    index: dict[str, int] = {}
    words: list[str] = []
    counts = np.zeros(1 << 10, dtype=np.int64)
    lens_parts: list[np.ndarray] = []
    n_tokens = n_lines = done = replaced_bytes = replaced_lines = 0
    first = True
    for block in _blocks(f, _BLOCK):
        done += len(block)
        text, bad_bytes, bad_lines = _decode(block)
        replaced_bytes += bad_bytes
        replaced_lines += bad_lines
        if first and text.startswith("\ufeff"):  # a UTF-8 byte order mark
            text = text[1:]
        first = False
        lines = text.split("\n")
        if lines and not lines[-1]:
            lines.pop()
        n_lines += len(lines)
        parts = list(map(str.split, lines))
        lens = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        toks = list(chain.from_iterable(parts))
        if not toks:
            continue
        fresh = [w for w in dict.fromkeys(toks) if w not in index]
        if fresh:
            index.update(zip(fresh, range(len(words), len(words) + len(fresh)), strict=True))
            words.extend(fresh)
        ids = np.fromiter(map(index.__getitem__, toks), dtype=np.int32, count=len(toks))
        if len(words) > len(counts):
            counts = np.concatenate([counts, np.zeros(max(len(words), len(counts)), np.int64)])
        counts[: len(words)] += np.bincount(ids, minlength=len(words))
        out.write(ids.tobytes())  # (tofile needs a real file; out may be in memory)
        lens = lens[lens > 0]
        if (lens > max_len).any():  # cut long lines into sentences, as LineSentence
            lens = np.concatenate(
                [np.r_[np.full(n // max_len, max_len), [n % max_len]] for n in lens.tolist()]
            )
            lens = lens[lens > 0]
        lens_parts.append(lens)
        n_tokens += len(toks)
        report(n_tokens, done)
    lens = np.concatenate(lens_parts) if lens_parts else np.zeros(0, np.int64)
    return _Scan(
        words=words,
        counts=counts[: len(words)].copy(),
        ids_path=ids_path,
        sent_ends=np.cumsum(lens),
        n_tokens=n_tokens,
        n_lines=n_lines,
        n_bytes=n_bytes,
        replaced_bytes=replaced_bytes,
        replaced_lines=replaced_lines,
        max_sentence=int(lens.max()) if len(lens) else 0,
        seconds=time.perf_counter() - start,
    )


# ---------------------------------------------------------------- vocabulary and tables


def noise_table(counts, exponent: float = 0.75) -> np.ndarray:
    """Cumulative table of the noise distribution ``count ** exponent``, as gensim's.

    Entry ``i`` is ``round(sum(counts[:i+1] ** e) / sum(counts ** e) * (2**31 - 1))``; a
    noise word is the first index whose entry is at least a uniform draw in
    ``[0, 2**31 - 1)`` (``np.searchsorted``, gensim's ``bisect_left``), so word ``i`` is
    drawn with probability ``c_i**e / sum c**e`` (up to the integer rounding).

    >>> noise_table([8, 1], exponent=1.0).tolist()
    [1908874353, 2147483647]
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or len(counts) == 0 or not np.all(counts > 0):
        raise ParameterError(
            f"counts must be a non-empty 1-D array of positive counts. Found shape {counts.shape}"
        )
    exponent = check_positive_number(exponent, "exponent", allow_zero=True)
    cum = np.cumsum(counts**exponent)
    return np.round(cum / cum[-1] * NOISE_DOMAIN).astype(np.int64)


def keep_probabilities(counts, sample: float) -> np.ndarray:
    """Probability that subsampling keeps each occurrence of a word, as word2vec.c/gensim.

    With ``t = sample * sum(counts)``, a word seen ``c`` times is kept with probability
    ``min(1, (sqrt(c / t) + 1) * t / c)``; ``sample=0`` keeps everything.
    """
    counts = np.asarray(counts, dtype=np.float64)
    sample = check_positive_number(sample, "sample", allow_zero=True)
    if sample == 0:
        return np.ones_like(counts)
    t = sample * counts.sum() if sample < 1.0 else float(int(sample * (3 + np.sqrt(5)) / 2))
    with np.errstate(divide="ignore"):
        p = (np.sqrt(counts / t) + 1) * (t / counts)
    return np.minimum(p, 1.0)


def _vocabulary(scan: _Scan, min_count: int, max_vocab: int | None, where):
    """``(kept corpus ids in vocabulary order, id_map)``: frequent first, ties by first use.
    ``where`` names the corpus in errors."""
    if scan.n_tokens == 0:
        raise DataError(f"{where}: the corpus is empty (no words in {scan.n_lines} line(s))")
    counts = scan.counts
    order = np.argsort(-counts, kind="stable")
    keep = order[counts[order] >= min_count]
    if len(keep) == 0:
        top = int(order[0])
        raise DataError(
            f"{where}: no word occurs at least min_count={min_count} times (the most "
            f"frequent, {scan.words[top]!r}, occurs {int(counts[top])} time(s) in "
            f"{scan.n_tokens} tokens); lower min_count or use a larger corpus"
        )
    if max_vocab is not None:
        keep = keep[:max_vocab]
    id_map = np.full(len(counts), -1, dtype=np.int32)
    id_map[keep] = np.arange(len(keep), dtype=np.int32)
    return keep, id_map


def initial_weights(n_words: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(syn0, syn1neg)``, both ``(n_words, dim)`` float32: gensim's start, the word
    vectors uniform in ``[-1, 1) / dim`` from ``seed``, the output vectors zero."""
    rng = np.random.default_rng(seed)
    syn0 = (rng.random((n_words, dim), dtype=np.float32) * 2 - 1) / np.float32(dim)
    return syn0, np.zeros((n_words, dim), dtype=np.float32)


def sampling_tables(counts, sample: float, ns_exponent: float):
    """The kernel's tables for a vocabulary's ``counts``: ``(sample_int, cum_table, guide)``,
    the subsampling thresholds (keep probability times 2**32), the cumulative noise table
    and its guide table (see :func:`noise_table`, :func:`keep_probabilities`)."""
    from xmodal.text._word2vec_kernels import guide_table

    p_keep = keep_probabilities(counts, sample)
    sample_int = np.minimum(np.round(p_keep * 2**32), 2**32).astype(np.int64)
    cum_table = noise_table(counts, ns_exponent)
    return sample_int, cum_table, guide_table(cum_table)


# ---------------------------------------------------------------- training


def job_seed(seed: int, epoch: int, job: int) -> int:
    """The random seed of ``job`` of ``epoch`` (48 bits, for the kernel's generator):
    splitmix64 of (seed, epoch, job), independent streams, the same on every run."""
    x = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + job + 1) & (2**64 - 1)
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return (x ^ (x >> 31)) & ((1 << 48) - 1)


def job_bounds(sent_ends: np.ndarray, batch_words: int) -> np.ndarray:
    """``(n_jobs + 1,)`` sentence boundaries: each job holds whole sentences, about
    ``batch_words`` tokens (the first sentence that reaches a multiple of it ends a job)."""
    total = int(sent_ends[-1])
    marks = np.arange(batch_words, total, batch_words)
    cuts = np.searchsorted(sent_ends, marks, side="left") + 1
    return np.unique(np.r_[0, cuts[cuts < len(sent_ends)], len(sent_ends)])


class _Reporter:
    """Turns counters into :class:`TrainingProgress` calls at most every ``interval`` s."""

    def __init__(self, progress, interval: float = 0.5):
        if progress is True:
            progress = _ProgressBar()
        elif progress is False:
            progress = None
        elif progress is not None and not callable(progress):
            raise ParameterError(
                f"progress must be None, a bool or a callable. Found: {type(progress).__name__}"
            )
        self.callback = progress
        self.interval = interval
        self.last = 0.0

    def due(self, force: bool = False) -> bool:
        if self.callback is None:
            return False
        now = time.perf_counter()
        if force or now - self.last >= self.interval:
            self.last = now
            return True
        return False

    def __call__(self, info: TrainingProgress) -> None:
        self.callback(info)


class _ProgressBar:
    """A one-line progress bar on stderr: epoch, percent, words/s, loss, time left."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.last_epoch = None

    def __call__(self, p: TrainingProgress) -> None:
        frac = p.words_done / p.words_total if p.words_total else 1.0
        if p.stage == "scan":
            frac = p.bytes_done / p.words_total if p.words_total else 1.0
            line = (
                f"reading corpus {100 * frac:5.1f}%  {p.words_done:,} words  "
                f"{p.words_per_s:,.0f} words/s"
            )
        else:
            bar = "#" * int(20 * frac) + "-" * (20 - int(20 * frac))
            eta = (p.words_total - p.words_done) / p.words_per_s if p.words_per_s > 0 else 0
            line = (
                f"epoch {p.epoch}/{p.epochs} [{bar}] {100 * frac:5.1f}%  "
                f"{p.words_per_s:,.0f} words/s  loss {p.loss:.4f}  "
                f"{'eta' if not p.done else 'took'} "
                f"{_hms(eta if not p.done else p.elapsed)}"
            )
        if self.tty:
            end = "\n" if p.done else ""
            self.stream.write(f"\r{line:<100}{end}")
        elif p.done or (p.stage == "train" and p.epoch != self.last_epoch):
            self.stream.write(line + "\n")
        self.last_epoch = p.epoch
        self.stream.flush()


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _train(scan: _Scan, keep, id_map, config: Word2VecConfig, reporter: _Reporter):
    """Run the epochs; return ``(syn0, stats)``."""
    from xmodal.text._word2vec_kernels import sg_neg_job, sigmoid_tables

    counts = scan.counts[keep]
    dim = config.dim
    syn0, syn1neg = initial_weights(len(keep), dim, config.seed)
    sample_int, cum_table, guide = sampling_tables(counts, config.sample, config.ns_exponent)
    sig, logsig = sigmoid_tables()
    ids = np.memmap(scan.ids_path, dtype=np.int32, mode="r", shape=(scan.n_tokens,))
    sent_ends = scan.sent_ends
    bounds = job_bounds(sent_ends, config.batch_words)
    n_jobs = len(bounds) - 1
    total_jobs = n_jobs * config.epochs
    total_words = scan.n_tokens * config.epochs
    n_threads = config.threads or os.cpu_count() or 1

    lock = threading.Lock()
    stop = threading.Event()
    state = {"next": 0, "words": 0, "effective": 0, "loss": 0.0, "pairs": 0}
    epoch_loss = np.zeros((config.epochs, 2))
    errors: list[BaseException] = []
    finished = threading.Event()
    active = [n_threads]

    def worker():
        buf = np.empty(max(scan.max_sentence, 1), dtype=np.int32)
        work = np.empty(dim, dtype=np.float32)
        try:
            while not stop.is_set():
                with lock:
                    k = state["next"]
                    if k >= total_jobs:
                        return
                    state["next"] = k + 1
                epoch, j = divmod(k, n_jobs)
                s0, s1 = int(bounds[j]), int(bounds[j + 1])
                t0 = int(sent_ends[s0 - 1]) if s0 > 0 else 0
                t1 = int(sent_ends[s1 - 1])
                a0 = linear_alpha(config.alpha, config.min_alpha,
                                  epoch * scan.n_tokens + t0, total_words)  # fmt: skip
                a1 = linear_alpha(config.alpha, config.min_alpha,
                                  epoch * scan.n_tokens + t1, total_words)  # fmt: skip
                effective, loss, pairs = sg_neg_job(
                    syn0, syn1neg, np.asarray(ids[t0:t1]), sent_ends[s0:s1] - t0, id_map,
                    sample_int, cum_table, guide, sig, logsig, config.window, config.negative,
                    a0, a1, job_seed(config.seed, epoch, j), buf, work,
                )  # fmt: skip
                with lock:
                    state["words"] += t1 - t0
                    state["effective"] += effective
                    state["loss"] += loss
                    state["pairs"] += pairs
                    epoch_loss[epoch] += (loss, pairs)
        except BaseException as err:  # re-raised in the calling thread
            errors.append(err)
            stop.set()
        finally:
            with lock:
                active[0] -= 1
                if active[0] == 0:
                    finished.set()

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n_threads)]
    for t in threads:
        t.start()
    last_loss, last_pairs = 0.0, 0
    try:
        while not finished.wait(0.1):
            if reporter.due():
                with lock:
                    words, loss, pairs = state["words"], state["loss"], state["pairs"]
                    k = state["next"]
                elapsed = time.perf_counter() - start
                recent = (loss - last_loss) / max(pairs - last_pairs, 1)
                last_loss, last_pairs = loss, pairs
                reporter(TrainingProgress(
                    "train", min(k // n_jobs + 1, config.epochs), config.epochs, words,
                    total_words, words / max(elapsed, 1e-9), recent, elapsed,
                ))  # fmt: skip
    except KeyboardInterrupt:
        stop.set()
        for t in threads:
            t.join()
        raise
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    seconds = time.perf_counter() - start
    losses = [float(lo / max(n, 1)) for lo, n in epoch_loss]
    if reporter.due(force=True):
        reporter(TrainingProgress(
            "train", config.epochs, config.epochs, state["words"], total_words,
            state["words"] / max(seconds, 1e-9), losses[-1], seconds, done=True,
        ))  # fmt: skip
    ids = None  # closes the memory map before the temporary file is deleted
    if not np.isfinite(syn0).all():  # pragma: no cover - would be a bug in the kernel
        raise DataError("training diverged: the word vectors hold NaN or Inf")
    stats = {
        "train_seconds": seconds,
        "words_per_second": state["words"] / max(seconds, 1e-9),
        "effective_words": int(state["effective"]),
        "epoch_loss": losses,
        "threads": n_threads,
    }
    return syn0, stats


def query_neighbours(vectors: WordVectors, query: str, *, topn: int = 10):
    """The ``topn`` words nearest to ``query``, ``[(word, cosine), ...]``: a word's
    neighbours, or for ``"king - man + woman"`` (see :func:`parse_arithmetic`) those of
    the arithmetic, its words left out (3CosAdd)."""
    positive, negative = parse_arithmetic(query)
    if len(positive) == 1 and not negative:
        return vectors.most_similar(positive[0], topn=topn)
    return vectors.arithmetic(positive=positive, negative=negative, topn=topn)


def train_word2vec(
    corpus_path,
    config: Word2VecConfig | None = None,
    *,
    out_dir=None,
    progress: bool | Callable[[TrainingProgress], None] | None = None,
) -> WordVectors:
    """Train skip-gram word vectors on a text file; optionally save them to ``out_dir``.

    ``corpus_path`` is a UTF-8 text file, one sentence per line, tokens separated by
    whitespace (see the module docstring). ``progress``: True draws a progress bar on
    stderr; a callable receives a :class:`TrainingProgress` about twice a second.

    Returns a :class:`WordVectors` of the vocabulary (most frequent word first) with
    ``counts`` and ``meta`` (the config and the run's numbers: tokens, vocabulary size,
    replaced bytes, seconds, words/s, loss per epoch). With ``out_dir`` the directory gets
    ``vectors.bin`` (word2vec binary format), ``vocab.txt`` and ``config.json``
    (:meth:`WordVectors.save`).

    Raises DataError for a missing, empty or too small corpus (no word reaching
    ``min_count``) and ParameterError for bad settings.
    """
    if config is None:
        config = Word2VecConfig()
    if not isinstance(config, Word2VecConfig):
        raise ParameterError(f"config must be a Word2VecConfig. Found: {type(config).__name__}")
    config = dataclasses.replace(config)  # validates again, in case fields were changed
    path, n_bytes = _open_corpus(corpus_path)
    if out_dir is not None and not isinstance(out_dir, (str, os.PathLike)):
        raise ParameterError(f"out_dir must be a path or None. Found: {out_dir!r}")
    reporter = _Reporter(progress)
    scan_start = time.perf_counter()

    def report_scan(tokens: int, done: int) -> None:
        if reporter.due():
            elapsed = time.perf_counter() - scan_start
            reporter(TrainingProgress("scan", 0, config.epochs, tokens, n_bytes,
                                      tokens / max(elapsed, 1e-9), float("nan"), elapsed,
                                      bytes_done=done))  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="xmodal-w2v-", dir=config.cache_dir) as tmp:
        scan = _scan_corpus(path, n_bytes, config.max_sentence_length,
                            Path(tmp) / "ids.int32", report_scan)  # fmt: skip
        if reporter.due(force=True):
            reporter(TrainingProgress("scan", 0, config.epochs, scan.n_tokens, n_bytes,
                                      scan.n_tokens / max(scan.seconds, 1e-9), float("nan"),
                                      scan.seconds, bytes_done=n_bytes, done=True))  # fmt: skip
        keep, id_map = _vocabulary(scan, config.min_count, config.max_vocab, path)
        syn0, stats = _train(scan, keep, id_map, config, reporter)
    counts = scan.counts[keep]
    meta = {
        "config": config.to_dict(),
        "corpus": {"path": str(path), **scan.info(keep), "scan_seconds": scan.seconds},
        "training": stats,
    }
    vectors = WordVectors([scan.words[i] for i in keep.tolist()], syn0, counts=counts, meta=meta)
    if out_dir is not None:
        vectors.save(out_dir)
    return vectors
