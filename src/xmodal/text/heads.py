"""Fine-tuning heads over one pretrained :class:`~xmodal.text.transformer.GPT`, as in GPT-1.

GPT-1 (Radford et al. 2018, section 3.3) fine-tunes the whole pretrained transformer with
one new linear layer on the final hidden state of the last token of each input, and turns
structured inputs into token sequences ("traversal-style" input transformations):

- :class:`SequenceClassifier`: ``text`` -> class logits (e.g. sentiment, acceptability).
- :class:`PairSimilarity`: ``(a, b)`` has no natural order, so both ``a $ b`` and
  ``b $ a`` are run and their final states *summed* before the linear layer; one output
  is a similarity score (MSE, e.g. STS-B), several are class logits (e.g. paraphrase).
- :class:`MultipleChoice`: ``context $ answer_k`` for each of ``K`` answers, one score
  each, a softmax over the ``K`` (e.g. RACE, story cloze).

Each head keeps the language-modelling objective as an auxiliary loss
(``loss = task_loss + lm_weight * lm_loss``, ``lm_weight=0.5`` in GPT-1), computed on the
same inputs with the body's tied LM head. Sequences are right-padded; because attention is
causal, the padding after a sequence cannot change its states, so no padding mask is
needed and ``lengths`` says where each one ends. :func:`pack_sequences`,
:func:`pack_pairs` and :func:`pack_choices` build these batches from id lists.

Example::

    body = GPT(TransformerConfig.preset("tiny", vocab_size=len(vocab)))  # pretrained
    clf = SequenceClassifier(body, n_classes=2)
    idx, lengths = pack_sequences([vocab.encode(t) for t in texts])
    logits, loss = clf(idx, lengths, labels)          # (B, 2), scalar
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import check_positive_int, check_positive_number
from xmodal.errors import ParameterError
from xmodal.text.transformer import GPT

__all__ = [
    "MultipleChoice",
    "PairSimilarity",
    "SequenceClassifier",
    "pack_choices",
    "pack_pairs",
    "pack_sequences",
]


# ----------------------------------------------------------------------------- inputs


def _id_list(seq, name: str) -> list[int]:
    if isinstance(seq, torch.Tensor):
        seq = seq.tolist()
    if isinstance(seq, str) or not isinstance(seq, Sequence):
        raise ParameterError(f"{name} must be a sequence of int token ids. Found: {seq!r:.80}")
    for j, t in enumerate(seq):
        if isinstance(t, bool) or not isinstance(t, int):
            raise ParameterError(f"{name}[{j}] must be an int token id. Found: {t!r}")
    return list(seq)


def pack_sequences(
    seqs: Sequence[Sequence[int]], *, pad_id: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists into ``(idx (B, T), lengths (B,))``; every list must be non-empty."""
    if isinstance(seqs, str) or not isinstance(seqs, Sequence) or len(seqs) == 0:
        raise ParameterError(f"seqs must be a non-empty list of id lists. Found: {seqs!r:.80}")
    rows = [_id_list(s, f"seqs[{i}]") for i, s in enumerate(seqs)]
    for i, r in enumerate(rows):
        if not r:
            raise ParameterError(f"seqs[{i}] is empty; every sequence needs at least one token")
    lengths = torch.tensor([len(r) for r in rows])
    idx = torch.full((len(rows), int(lengths.max())), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        idx[i, : len(r)] = torch.tensor(r)
    return idx, lengths


def _wrap(ids: list[int], start_id, extract_id) -> list[int]:
    return (
        ([start_id] if start_id is not None else [])
        + ids
        + ([extract_id] if extract_id is not None else [])
    )


def pack_pairs(
    a: Sequence[Sequence[int]],
    b: Sequence[Sequence[int]],
    *,
    delimiter_id: int,
    start_id: int | None = None,
    extract_id: int | None = None,
    pad_id: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Both orders of each pair: ``(ab (B, T), ba (B, T), lengths (B,))``.

    Row ``i`` of ``ab`` is ``[start] a_i [delimiter] b_i [extract]``, of ``ba`` the same
    with ``a_i`` and ``b_i`` swapped (so both have the same length).
    """
    if len(a) != len(b):
        raise ParameterError(f"a and b must hold as many sequences. Found: {len(a)} and {len(b)}")
    a = [_id_list(s, f"a[{i}]") for i, s in enumerate(a)]
    b = [_id_list(s, f"b[{i}]") for i, s in enumerate(b)]
    ab, lengths = pack_sequences(
        [_wrap(x + [delimiter_id] + y, start_id, extract_id) for x, y in zip(a, b, strict=True)],
        pad_id=pad_id,
    )
    ba, _ = pack_sequences(
        [_wrap(y + [delimiter_id] + x, start_id, extract_id) for x, y in zip(a, b, strict=True)],
        pad_id=pad_id,
    )
    return ab, ba, lengths


def pack_choices(
    contexts: Sequence[Sequence[int]],
    choices: Sequence[Sequence[Sequence[int]]],
    *,
    delimiter_id: int,
    start_id: int | None = None,
    extract_id: int | None = None,
    pad_id: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[start] context [delimiter] answer_k [extract]`` for every answer:
    ``(idx (B, K, T), lengths (B, K))``; every context must have the same number ``K``."""
    if len(contexts) != len(choices) or not contexts:
        raise ParameterError(
            "contexts and choices must be non-empty and as long as each other. "
            f"Found: {len(contexts)} and {len(choices)}"
        )
    k = len(choices[0])
    if k < 2 or any(len(c) != k for c in choices):
        raise ParameterError(
            "every context needs the same number (>= 2) of answers. "
            f"Found: {[len(c) for c in choices]}"
        )
    rows = [
        _wrap(_id_list(ctx, f"contexts[{i}]") + [delimiter_id]
              + _id_list(ans, f"choices[{i}][{j}]"), start_id, extract_id)
        for i, (ctx, answers) in enumerate(zip(contexts, choices, strict=True))
        for j, ans in enumerate(answers)
    ]  # fmt: skip
    idx, lengths = pack_sequences(rows, pad_id=pad_id)
    return idx.view(len(contexts), k, -1), lengths.view(len(contexts), k)


# ----------------------------------------------------------------------------- heads


class _Head(nn.Module):
    """The shared part: the body, the last-token features and the auxiliary LM loss."""

    def __init__(self, body: GPT, *, lm_weight: float, dropout: float):
        super().__init__()
        if not isinstance(body, GPT):
            raise ParameterError(f"body must be a xmodal GPT. Found: {type(body).__name__}")
        check_positive_number(lm_weight, "lm_weight", allow_zero=True)
        if not 0.0 <= dropout < 1.0:
            raise ParameterError(f"dropout must be in [0, 1). Found: {dropout!r}")
        self.body = body
        self.lm_weight = float(lm_weight)
        self.drop = nn.Dropout(dropout)

    def _linear(self, n_out: int) -> nn.Linear:
        layer = nn.Linear(self.body.config.n_embd, n_out)
        nn.init.normal_(layer.weight, std=0.02)
        nn.init.zeros_(layer.bias)
        return layer

    def _features(
        self, idx: torch.Tensor, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Final hidden state of each row's last token ``(N, C)`` and the LM loss on ``idx``."""
        if not isinstance(idx, torch.Tensor) or idx.ndim != 2:
            found = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ParameterError(f"idx must be a (B, T) tensor of token ids. Found: {found}")
        N, T = idx.shape
        if lengths is None:
            lengths = torch.full((N,), T, dtype=torch.long, device=idx.device)
        else:
            if not isinstance(lengths, torch.Tensor) or lengths.numel() != N:
                found = tuple(lengths.shape) if isinstance(lengths, torch.Tensor) else lengths
                raise ParameterError(
                    f"lengths must hold one length per sequence ({N}). Found: {found}"
                )
            lengths = lengths.reshape(N).to(idx.device)
            if lengths.is_floating_point() or int(lengths.min()) < 1 or int(lengths.max()) > T:
                raise ParameterError(
                    f"lengths must be integers in [1, {T}] (the padded length). "
                    f"Found values in [{lengths.min().item()}, {lengths.max().item()}]"
                )
        hidden = self.body.transformer(idx).hidden  # (N, T, C)
        last = hidden[torch.arange(N, device=idx.device), lengths - 1]  # (N, C)
        lm_loss = hidden.new_zeros(())
        if self.lm_weight > 0 and T > 1:
            logits = self.body.lm_head(hidden[:, :-1])  # (N, T-1, V)
            targets = idx[:, 1:].masked_fill(
                torch.arange(1, T, device=idx.device)[None, :] >= lengths[:, None], -100
            )  # (N, T-1): only next tokens inside each sequence
            if bool((targets != -100).any()):
                lm_loss = F.cross_entropy(
                    logits.flatten(0, 1), targets.flatten(), ignore_index=-100
                )
        return last, lm_loss


class SequenceClassifier(_Head):
    """Class logits of a token sequence from the final state of its last token.

    ``forward(idx (B, T), lengths (B,) = None, labels (B,) = None)`` ->
    ``(logits (B, n_classes), loss or None)``.
    """

    def __init__(self, body: GPT, n_classes: int, *, lm_weight: float = 0.5, dropout: float = 0.1):
        super().__init__(body, lm_weight=lm_weight, dropout=dropout)
        self.n_classes = check_positive_int(n_classes, "n_classes", minimum=2)
        self.head = self._linear(self.n_classes)

    def forward(self, idx, lengths=None, labels=None):
        last, lm_loss = self._features(idx, lengths)
        logits = self.head(self.drop(last))  # (B, n_classes)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits, labels) + self.lm_weight * lm_loss
        return logits, loss


class PairSimilarity(_Head):
    """Similarity of a text pair, order-free: both orders through the body, states summed.

    ``n_classes=1`` (default): a score per pair, trained with MSE against float labels;
    ``n_classes >= 2``: class logits, trained with cross-entropy.
    ``forward(ab (B, T), ba (B, T), lengths (B,) = None, labels = None)`` ->
    ``(scores (B,) or logits (B, n_classes), loss or None)`` (see :func:`pack_pairs`).
    """

    def __init__(self, body: GPT, n_classes: int = 1, *, lm_weight: float = 0.5,
                 dropout: float = 0.1):  # fmt: skip
        super().__init__(body, lm_weight=lm_weight, dropout=dropout)
        self.n_classes = check_positive_int(n_classes, "n_classes")
        self.head = self._linear(self.n_classes)

    def forward(self, ab, ba, lengths=None, labels=None):
        if (
            not isinstance(ba, torch.Tensor)
            or not isinstance(ab, torch.Tensor)
            or ab.shape != ba.shape
        ):
            raise ParameterError(
                "ab and ba must be tensors of one shape (the two orders of each pair). "
                f"Found: {getattr(ab, 'shape', ab)!r:.60} and {getattr(ba, 'shape', ba)!r:.60}"
            )
        B = ab.size(0)
        last, lm_loss = self._features(torch.cat([ab, ba]), None if lengths is None
                                       else torch.cat([lengths, lengths]))  # fmt: skip
        h = last[:B] + last[B:]  # (B, C): the two orders summed, as GPT-1
        out = self.head(self.drop(h))  # (B, n_classes)
        if self.n_classes == 1:
            out = out.squeeze(-1)  # (B,)
        loss = None
        if labels is not None:
            task = (F.mse_loss(out, labels.to(out.dtype)) if self.n_classes == 1
                    else F.cross_entropy(out, labels))  # fmt: skip
            loss = task + self.lm_weight * lm_loss
        return out, loss


class MultipleChoice(_Head):
    """One score per candidate answer, a softmax over the ``K`` of each question.

    ``forward(idx (B, K, T), lengths (B, K) = None, labels (B,) = None)`` ->
    ``(logits (B, K), loss or None)`` (see :func:`pack_choices`).
    """

    def __init__(self, body: GPT, *, lm_weight: float = 0.5, dropout: float = 0.1):
        super().__init__(body, lm_weight=lm_weight, dropout=dropout)
        self.head = self._linear(1)

    def forward(self, idx, lengths=None, labels=None):
        if not isinstance(idx, torch.Tensor) or idx.ndim != 3:
            found = getattr(idx, "shape", idx)
            raise ParameterError(
                f"idx must be a (B, K, T) tensor of token ids. Found: {found!r:.60}"
            )
        B, K, T = idx.shape
        flat_lengths = None if lengths is None else lengths.reshape(-1)
        last, lm_loss = self._features(idx.reshape(B * K, T), flat_lengths)
        logits = self.head(self.drop(last)).view(B, K)  # (B, K)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits, labels) + self.lm_weight * lm_loss
        return logits, loss
