"""Skip-gram with negative sampling as an ``nn.Module``, trained one job at a time.

:class:`SkipGram` holds the two weight matrices of word2vec, ``syn0`` (the word vectors)
and ``syn1neg`` (the output vectors of negative sampling), as parameters that autograd
never touches: :meth:`SkipGram.train_job` updates them in place with the numba kernel of
:func:`~xmodal.text.word2vec.train_word2vec` (plain SGD, the learning rate given per
job), on the calling thread. Started from the same seed and given the same jobs in the
same order, with each job's seed from :func:`~xmodal.text.word2vec.job_seed`, it reaches
the same vectors as ``train_word2vec`` with ``threads=1``.

Example::

    corpus = read_corpus("corpus.txt", min_count=5, max_vocab=None, max_sentence_length=10000)
    model = SkipGram(corpus.words, corpus.counts, dim=100, window=5, negative=5,
                     ns_exponent=0.75, sample=1e-3, seed=1)
    job = Word2VecJobs(corpus, 10000)[0]
    model.train_job(job["ids"], job["sent_ends"], alpha_start=0.025, alpha_end=0.024, seed=7)
    model.word_vectors().most_similar("water")
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import check_positive_int, check_positive_number
from xmodal.errors import ParameterError
from xmodal.text.word2vec_vectors import WordVectors

__all__ = ["SkipGram"]


class SkipGram(nn.Module):
    """Skip-gram word2vec over a vocabulary of ``words`` with corpus ``counts`` (most
    frequent first).

    ``dim``: vector size; ``window``: the largest distance to a context word;
    ``negative``: noise words per pair, drawn from the unigram distribution to the power
    ``ns_exponent``; ``sample``: the subsampling threshold; ``seed``: the initial word
    vectors (gensim's: uniform in ``[-1, 1) / dim``; the output vectors start at zero).
    Every setting is required: their defaults are :class:`~xmodal.text.word2vec.
    Word2VecConfig`'s.
    ``forward(ids)`` looks the word vectors up: ``(...) -> (..., dim)``.
    """

    def __init__(
        self,
        words: Sequence[str],
        counts,
        *,
        dim: int,
        window: int,
        negative: int,
        ns_exponent: float,
        sample: float,
        seed: int,
    ) -> None:
        from xmodal.text._word2vec_kernels import sigmoid_tables
        from xmodal.text.word2vec import initial_weights, sampling_tables

        super().__init__()
        self.words = tuple(words)
        self.counts = np.asarray(counts, dtype=np.int64)
        if not self.words or self.counts.shape != (len(self.words),):
            raise ParameterError(
                f"counts must have one entry per word ({len(self.words)}). Found shape "
                f"{self.counts.shape}"
            )
        self.window = check_positive_int(window, "window")
        self.negative = check_positive_int(negative, "negative")
        check_positive_number(ns_exponent, "ns_exponent", allow_zero=True)
        check_positive_number(sample, "sample", allow_zero=True)
        syn0, syn1neg = initial_weights(len(self.words), check_positive_int(dim, "dim"),
                                        check_positive_int(seed, "seed", minimum=0))  # fmt: skip
        self.syn0 = nn.Parameter(torch.from_numpy(syn0), requires_grad=False)  # (V, D)
        self.syn1neg = nn.Parameter(torch.from_numpy(syn1neg), requires_grad=False)  # (V, D)
        # The kernel's tables: functions of the counts and settings, so not in the state.
        self._sample_int, self._cum_table, self._guide = sampling_tables(
            self.counts, sample, ns_exponent
        )
        self._sig, self._logsig = sigmoid_tables()
        # Token ids are vocabulary indices; index V marks a word left out of the vocabulary.
        self._id_map = np.append(np.arange(len(self.words), dtype=np.int32), np.int32(-1))

    @property
    def dim(self) -> int:
        return self.syn0.shape[1]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.syn0)

    def train_job(
        self, ids, sent_ends, *, alpha_start: float, alpha_end: float, seed: int
    ) -> tuple[int, float, int]:
        """Train on one job in place; return ``(effective words, loss sum, pairs)``.

        ``ids``: ``(N,)`` int32 vocabulary indices (``V``: a word not kept, skipped);
        ``sent_ends``: ``(S,)`` int64 ends of the job's sentences in ``ids``; the learning
        rate goes linearly from ``alpha_start`` to ``alpha_end`` over the job; ``seed``
        starts the kernel's random numbers. The loss is the negative-sampling loss summed
        over the job's (word, context) pairs.
        """
        from xmodal.text._word2vec_kernels import sg_neg_job

        syn0, syn1neg = self.syn0.detach(), self.syn1neg.detach()
        for name, w in (("syn0", syn0), ("syn1neg", syn1neg)):
            if w.device.type != "cpu" or w.dtype != torch.float32 or not w.is_contiguous():
                raise ParameterError(
                    f"SkipGram trains on the CPU in float32: {name} is {w.dtype} on {w.device}"
                )
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        sent_ends = np.ascontiguousarray(sent_ends, dtype=np.int64)
        if len(ids) and (ids.min() < 0 or ids.max() > len(self.words)):
            raise ParameterError(f"ids must be in [0, {len(self.words)}]. Found: "
                                 f"[{ids.min()}, {ids.max()}]")  # fmt: skip
        if len(sent_ends) and (np.any(np.diff(sent_ends) < 0) or sent_ends[-1] != len(ids)):
            raise ParameterError("sent_ends must rise to len(ids)")
        longest = int(np.diff(sent_ends, prepend=0).max()) if len(sent_ends) else 0
        buf = np.empty(max(longest, 1), dtype=np.int32)
        work = np.empty(self.dim, dtype=np.float32)
        effective, loss, pairs = sg_neg_job(
            syn0.numpy(), syn1neg.numpy(), ids, sent_ends, self._id_map, self._sample_int,
            self._cum_table, self._guide, self._sig, self._logsig, self.window, self.negative,
            float(alpha_start), float(alpha_end), int(seed), buf, work,
        )  # fmt: skip
        return int(effective), float(loss), int(pairs)

    def word_vectors(self, *, meta: dict | None = None) -> WordVectors:
        """The word vectors (a copy) with their words and counts."""
        vectors = self.syn0.detach().cpu().numpy().copy()
        return WordVectors(self.words, vectors, counts=self.counts, meta=meta)
