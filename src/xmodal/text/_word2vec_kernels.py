"""The numba kernels of skip-gram word2vec: one call trains on one job of sentences.

The kernels are compiled with ``nogil=True``: :func:`xmodal.text.word2vec.train_word2vec`
runs them in several Python threads at once, all updating the same weight matrices
without locks ("hogwild", as word2vec.c and gensim do). ``fastmath`` lets LLVM vectorise
the ``dim``-long dot products and updates; ``cache=True`` keeps the machine code between
processes.

Random numbers come from word2vec.c's 48-bit linear congruential generator, seeded per
job by the caller, so a run with one thread is deterministic.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "GUIDE_BITS",
    "MAX_EXP",
    "SIGMOID_TABLE_SIZE",
    "guide_shift_of",
    "guide_table",
    "sg_neg_job",
    "sigmoid_tables",
]

LCG_MULT = 25214903917
_LCG_ADD = 11
_LCG_MASK = (1 << 48) - 1
MAX_EXP = 6.0  # as word2vec.c: sigmoid(x) is taken as 0 or 1 beyond |x| >= 6
SIGMOID_TABLE_SIZE = 1000


def sigmoid_tables() -> tuple[np.ndarray, np.ndarray]:
    """``(sigmoid, log_sigmoid)`` on ``SIGMOID_TABLE_SIZE`` points spanning [-6, 6), float32.

    Entry ``i`` holds the value at ``x = (i / SIZE * 2 - 1) * MAX_EXP``, word2vec.c's table.
    """
    x = (np.arange(SIGMOID_TABLE_SIZE, dtype=np.float64) / SIGMOID_TABLE_SIZE * 2 - 1) * MAX_EXP
    sig = 1.0 / (1.0 + np.exp(-x))
    return sig.astype(np.float32), np.log(sig).astype(np.float32)


GUIDE_BITS = 16


@njit(cache=True)
def guide_shift_of(cum_total, n_buckets):
    """The shift that maps ``[0, cum_total)`` onto at most ``n_buckets`` buckets."""
    shift = 0
    while (cum_total - 1) >> shift >= n_buckets:
        shift += 1
    return shift


def guide_table(cum_table: np.ndarray) -> np.ndarray:
    """``guide[b] = bisect_left(cum_table, b << shift)`` for the ``2**GUIDE_BITS`` buckets.

    A draw ``x`` in bucket ``b = x >> shift`` has its ``bisect_left`` in
    ``[guide[b], guide[b + 1]]``, so sampling searches only that bracket.
    """
    n = 1 << GUIDE_BITS
    shift = guide_shift_of(int(cum_table[-1]), n)
    marks = np.arange(n + 1, dtype=np.int64) << shift
    return np.minimum(np.searchsorted(cum_table, marks, side="left"), len(cum_table) - 1)


@njit(nogil=True, fastmath=True, cache=True, boundscheck=False)
def sg_neg_job(
    syn0,  # (V, D) float32: input vectors (the word vectors), updated in place
    syn1neg,  # (V, D) float32: output vectors, updated in place
    ids,  # (N,) int32: the job's tokens as corpus ids
    sent_ends,  # (S,) int64: end offset in ``ids`` of each sentence of the job
    id_map,  # (n corpus ids,) int32: corpus id -> vocabulary index, -1 if not kept
    sample_int,  # (V,) int64: keep a token when sample_int[w] >= a random 32-bit number
    cum_table,  # (V,) int64: cumulative unigram^0.75 noise table
    guide,  # (2**GUIDE_BITS + 1,) int64: guide[b] = bisect_left(cum_table, b << shift)
    sig_table,  # (SIGMOID_TABLE_SIZE,) float32
    logsig_table,  # (SIGMOID_TABLE_SIZE,) float32
    window,  # int >= 1
    negative,  # int >= 1
    alpha_start,  # learning rate at the job's first token ...
    alpha_end,  # ... and after its last (linear in between, per sentence)
    next_random,  # int: the job's seed for the 48-bit LCG
    buf,  # (>= longest sentence,) int32 scratch
    work,  # (D,) float32 scratch
):
    """Train on one job; return ``(effective_words, loss_sum, n_pairs)``.

    For each sentence, corpus ids not in the vocabulary are dropped and frequent words are
    subsampled, then every kept word is the target of each context word within a window
    shrunk by a random ``b`` in ``[0, window)``: the context word's input vector is
    trained to predict the target against ``negative`` words drawn from the noise table.
    The loss is the negative-sampling loss ``-log s(v.u) - sum log s(-v.u_k)`` summed over
    the ``n_pairs`` (word, context) pairs (table look-ups, so tracking it costs little).
    """
    dim = syn0.shape[1]
    guide_shift = guide_shift_of(cum_table[cum_table.shape[0] - 1], guide.shape[0] - 1)
    n_tokens = ids.shape[0]
    n_cum = cum_table.shape[0]
    cum_total = cum_table[n_cum - 1]
    scale = SIGMOID_TABLE_SIZE / MAX_EXP / 2.0
    alpha_span = alpha_end - alpha_start
    loss = 0.0
    n_pairs = 0
    effective = 0
    start = 0
    for s in range(sent_ends.shape[0]):
        end = sent_ends[s]
        alpha = np.float32(alpha_start + alpha_span * (start / max(n_tokens, 1)))
        n = 0
        for t in range(start, end):
            w = id_map[ids[t]]
            if w < 0:
                continue
            r = (next_random >> 16) & 0xFFFFFFFF
            next_random = (next_random * LCG_MULT + _LCG_ADD) & _LCG_MASK
            if sample_int[w] < r:
                continue
            buf[n] = w
            n += 1
        start = end
        effective += n
        for i in range(n):
            b = next_random % window
            next_random = (next_random * LCG_MULT + _LCG_ADD) & _LCG_MASK
            word = buf[i]
            lo = max(i - window + b, 0)
            hi = min(i + window + 1 - b, n)
            for j in range(lo, hi):
                if j == i:
                    continue
                l1 = syn0[buf[j]]
                n_pairs += 1
                for k in range(dim):
                    work[k] = 0.0
                for d in range(negative + 1):
                    if d == 0:
                        target = word
                        label = np.float32(1.0)
                    else:
                        x = (next_random >> 16) % cum_total
                        next_random = (next_random * LCG_MULT + _LCG_ADD) & _LCG_MASK
                        # bisect_left(cum_table, x), as gensim, started from the guide
                        # table's bracket: the frequent words need no search at all.
                        bucket = x >> guide_shift
                        lo = guide[bucket]
                        hi = guide[bucket + 1]
                        while lo < hi:
                            mid = (lo + hi) >> 1
                            if cum_table[mid] < x:
                                lo = mid + 1
                            else:
                                hi = mid
                        target = lo
                        if target == word:
                            continue
                        label = np.float32(0.0)
                    l2 = syn1neg[target]
                    f = np.float32(0.0)
                    for k in range(dim):
                        f += l1[k] * l2[k]
                    # beyond +-MAX_EXP the sigmoid is 0 or 1 (word2vec.c); the loss is then
                    # taken as its linear asymptote.
                    if f >= MAX_EXP:
                        g = (label - np.float32(1.0)) * alpha
                        lterm = 0.0 if label > 0 else f
                    elif f <= -MAX_EXP:
                        g = label * alpha
                        lterm = -f if label > 0 else 0.0
                    else:
                        idx = int((f + MAX_EXP) * scale)
                        g = (label - sig_table[idx]) * alpha
                        if label > 0:
                            lterm = -logsig_table[idx]
                        else:
                            lterm = -logsig_table[SIGMOID_TABLE_SIZE - 1 - idx]
                    loss += lterm
                    for k in range(dim):
                        work[k] += g * l2[k]
                        l2[k] += g * l1[k]
                for k in range(dim):
                    l1[k] += work[k]
    return effective, loss, n_pairs
