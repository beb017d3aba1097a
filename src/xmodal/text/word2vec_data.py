"""A word2vec corpus in memory, and the jobs of one epoch as a dataset (the ``word2vec``
task trains on them one step at a time).

:func:`read_corpus` reads a text file, or lines given in memory, exactly as
:func:`~xmodal.text.word2vec.train_word2vec` reads its file (the same counting pass:
whitespace tokens taken as they are, long lines cut, bytes that are not UTF-8 replaced
and counted) and keeps the same vocabulary (``min_count``, ``max_vocab``; most frequent
first, ties by first use). Unlike ``train_word2vec``, which streams the token ids from a
temporary file, the ids stay in memory: 4 bytes per token.

:class:`Word2VecJobs` cuts the corpus into ``train_word2vec``'s jobs (whole sentences,
about ``batch_words`` words each), one item per job, in corpus order. Example::

    corpus = read_corpus("corpus.txt", min_count=5, max_vocab=None, max_sentence_length=10000)
    jobs = Word2VecJobs(corpus, batch_words=10000)
    jobs[0]  # {"job": 0, "start": 0, "ids": (N,) int32, "sent_ends": (S,) int64}
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from xmodal._checks import check_positive_int
from xmodal._io import write_text
from xmodal.errors import DataError, ParameterError

__all__ = ["Corpus", "Word2VecJobs", "collate_jobs", "read_corpus", "read_vocab", "write_vocab"]


@dataclass(frozen=True)
class Corpus:
    """A corpus read by :func:`read_corpus`.

    ``words``: the vocabulary, most frequent first, and ``counts`` ``(V,)``; ``ids``
    ``(N,)`` int32: every token's vocabulary index, ``V`` for a token not kept;
    ``sent_ends`` ``(S,)`` int64: where each sentence ends in ``ids``; ``info``: the
    numbers ``train_word2vec`` reports under ``meta["corpus"]`` (lines, tokens, ...).
    """

    words: tuple[str, ...]
    counts: np.ndarray
    ids: np.ndarray
    sent_ends: np.ndarray
    info: dict

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    def write_vocab(self, path) -> Path:
        """Write the vocabulary with its counts as ``vocab.txt`` (:func:`write_vocab`)."""
        return write_vocab(path, self.words, self.counts)


def read_corpus(
    source, *, min_count: int, max_vocab: int | None, max_sentence_length: int
) -> Corpus:
    """The :class:`Corpus` of ``source``: a path to a UTF-8 text file (one sentence a
    line), or an iterable of lines (str) already in memory.

    Raises DataError for a missing, empty or too small corpus (no word reaching
    ``min_count``), as :func:`~xmodal.text.word2vec.train_word2vec` does.
    """
    from xmodal.text.word2vec import _open_corpus, _scan_stream, _vocabulary

    check_positive_int(min_count, "min_count")
    check_positive_int(max_sentence_length, "max_sentence_length")
    if max_vocab is not None:
        check_positive_int(max_vocab, "max_vocab")
    ids_out = io.BytesIO()
    if isinstance(source, (str, os.PathLike)):
        path, n_bytes = _open_corpus(source)
        where = str(path)
        with open(path, "rb") as f:
            scan = _scan_stream(f, n_bytes, max_sentence_length, ids_out, lambda *a: None)
    elif isinstance(source, Iterable):
        lines = list(source)
        bad = next((i for i, line in enumerate(lines) if not isinstance(line, str)), None)
        if bad is not None:
            raise ParameterError(f"lines[{bad}] must be a str. Found: {lines[bad]!r:.80}")
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        path, where = None, f"the corpus of {len(lines)} line(s)"
        scan = _scan_stream(io.BytesIO(data), len(data), max_sentence_length, ids_out,
                            lambda *a: None)  # fmt: skip
    else:
        raise ParameterError(
            f"source must be a path or a list of lines. Found: {type(source).__name__}"
        )
    keep, id_map = _vocabulary(scan, min_count, max_vocab, where)
    raw = np.frombuffer(ids_out.getbuffer(), dtype=np.int32)
    vocab_ids = id_map[raw]
    ids = np.where(vocab_ids >= 0, vocab_ids, len(keep)).astype(np.int32)
    counts = scan.counts[keep]
    info = {"path": None if path is None else str(path), **scan.info(keep)}
    words = tuple(scan.words[i] for i in keep.tolist())
    return Corpus(words, counts, ids, scan.sent_ends, info)


class Word2VecJobs(Dataset):
    """The jobs of one epoch over ``corpus``, as ``train_word2vec`` cuts them: item ``j``
    is ``{"job": j, "start": first token, "ids": (N,) int32, "sent_ends": (S,) int64}``
    (sentence ends counted from the job's first token)."""

    def __init__(self, corpus: Corpus, batch_words: int) -> None:
        from xmodal.text.word2vec import job_bounds

        if not isinstance(corpus, Corpus):
            raise ParameterError(f"corpus must be a Corpus. Found: {type(corpus).__name__}")
        self.corpus = corpus
        self.bounds = job_bounds(corpus.sent_ends, check_positive_int(batch_words, "batch_words"))
        # (n_jobs + 1,) token offsets: where each job starts, and the corpus's end.
        self.starts = np.r_[0, corpus.sent_ends][self.bounds]

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def __getitem__(self, j: int) -> dict:
        s0, s1 = int(self.bounds[j]), int(self.bounds[j + 1])
        t0, t1 = int(self.starts[j]), int(self.starts[j + 1])
        return {
            "job": int(j),
            "start": t0,
            "ids": torch.from_numpy(self.corpus.ids[t0:t1]),
            "sent_ends": torch.from_numpy(self.corpus.sent_ends[s0:s1] - t0),
        }

    def words_before(self, epoch: int, job: int) -> int:
        """Tokens of the run before ``job`` of ``epoch`` (0-based): where its learning rate
        is read on the run's linear decay."""
        return epoch * self.corpus.n_tokens + int(self.starts[job])

    def words_in(self, jobs: int) -> int:
        """Tokens of the run's first ``jobs`` jobs, over as many epochs as they take."""
        epochs, rest = divmod(int(jobs), len(self))
        return epochs * self.corpus.n_tokens + int(self.starts[rest])

    def planned_words(self, *, epochs: int, jobs: int) -> int:
        """Tokens of a run that stops after ``epochs`` epochs or ``jobs`` jobs, whichever
        comes first (``< 1``: no such limit): what the learning rate's decay spans."""
        limits = [len(self) * epochs] if epochs >= 1 else []
        limits += [jobs] if jobs >= 1 else []
        if not limits:
            raise ParameterError("a run needs a limit: epochs >= 1 or jobs >= 1")
        return self.words_in(min(limits))


def collate_jobs(items: list[dict]) -> dict:
    """A batch of jobs: ``{"tokens": (N,) every token of them (what the engine counts as
    samples, so its samples/s are words/s), "jobs": the items, in order}``."""
    return {"tokens": torch.cat([item["ids"] for item in items]), "jobs": list(items)}


# ---------------------------------------------------------------- the vocabulary file


def write_vocab(path, words, counts) -> Path:
    """``word count`` per line (word2vec.c's ``-save-vocab`` format, as
    :meth:`WordVectors.save` writes ``vocab.txt``), atomically."""
    text = "".join(f"{w} {int(c)}\n" for w, c in zip(words, counts, strict=True))
    return write_text(Path(path), text)


def read_vocab(path) -> tuple[tuple[str, ...], np.ndarray]:
    """``(words, counts)`` of a file written by :func:`write_vocab`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such vocabulary file")
    words, counts = [], []
    lines = path.read_text(encoding="utf-8").split("\n")
    for i, line in enumerate(lines[:-1] if lines[-1] == "" else lines):
        parts = line.split(" ")
        if len(parts) != 2 or not parts[0] or not parts[1].isdigit():
            raise DataError(f"{path}: line {i + 1} must be '<word> <count>'. Found: {line!r:.80}")
        words.append(parts[0])
        counts.append(int(parts[1]))
    if not words:
        raise DataError(f"{path}: holds no words")
    return tuple(words), np.asarray(counts, dtype=np.int64)
