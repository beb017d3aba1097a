"""Text encoders behind one interface, as :mod:`xmodal.vision.encoders` is for images (timm).

Every encoder is a :class:`TextEncoder` that reads a padded batch of token ids
``tokens (B, L)`` (``<pad>`` = 0 after each sentence) with their ``lengths (B,)``:

- ``forward_features(tokens, lengths=None)``: → per-token features ``(B, L, C)``; the
  rows past each sentence's length are zero;
- ``forward_head(features, lengths=None)``: ``(B, L, C)`` → the sentence vector
  ``(B, out_dim)``, with the encoder's own pooling (a recurrent encoder's last valid
  state, a transformer's mean over the real tokens or its first token) and output layer;
- ``forward(tokens, lengths=None) == forward_head(forward_features(tokens, lengths),
  lengths)``;
- ``feature_info``: :class:`FeatureInfo` with ``channels`` C and ``stride`` 1 (token);
  ``out_dim``: the sentence vector's size.

``lengths=None`` means every sentence fills all ``L`` columns (no padding). Padding never
changes a sentence's features or vector: positions past ``lengths[b]`` are left out of the
recurrence (packed sequences) or masked out of attention and pooling.

The encoders:

- ``"gru"``: :class:`GRUTextEncoder`, word embedding → (bi)GRU → mean or last state →
  linear → unit vector (the joint embedding's default text side, text-to-image's
  sentence encoder);
- ``"transformer"``: :class:`TransformerTextEncoder`, a bidirectional (non-causal)
  transformer of :mod:`xmodal.text.transformer` blocks → mean or first token → linear →
  unit vector;
- ``"lstm-question"``, ``"gru-question"``, ``"transformer-question"``:
  :class:`QuestionEncoder`, VQA's question vector in ``(-1, 1)``.

Encoders are made by name::

    >>> enc = create_text_encoder("gru", vocab_size=100, word_dim=16, hidden=32, embed_dim=8)
    >>> tokens, lengths = torch.tensor([[5, 6, 7], [8, 9, 0]]), torch.tensor([3, 2])
    >>> enc.forward_features(tokens, lengths).shape, enc(tokens, lengths).shape
    (torch.Size([2, 3, 64]), torch.Size([2, 8]))
    >>> enc.feature_info
    FeatureInfo(channels=64, stride=1)
    >>> list_text_encoders()
    ['gru', 'gru-question', 'lstm-question', 'transformer', 'transformer-question']
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import (
    check_bool,
    check_choice,
    check_dropout,
    check_int_vector,
    check_padded,
    check_positive_int,
)
from xmodal._registry import Registry
from xmodal.errors import ParameterError
from xmodal.text.transformer import Block, LearnedPositionEmbedding, TransformerConfig
from xmodal.text.vocab import PAD_ID

__all__ = [
    "POOLINGS",
    "QUESTION_ENCODERS",
    "TRANSFORMER_POOLINGS",
    "FeatureInfo",
    "GRUTextEncoder",
    "QuestionEncoder",
    "TextEncoder",
    "TransformerTextEncoder",
    "create_text_encoder",
    "list_text_encoders",
    "register_text_encoder",
]

POOLINGS = ("mean", "last")  # GRUTextEncoder
TRANSFORMER_POOLINGS = ("mean", "first")  # TransformerTextEncoder
QUESTION_ENCODERS = ("lstm", "gru", "transformer")  # QuestionEncoder kinds


@dataclass(frozen=True)
class FeatureInfo:
    """What ``forward_features`` returns: ``channels`` C per token, ``stride`` 1 (token)."""

    channels: int
    stride: int = 1


def _word_embedding(vocab_size: int, word_dim: int, word_init) -> nn.Embedding:
    embed = nn.Embedding(vocab_size, word_dim, padding_idx=PAD_ID)
    if word_init is not None:
        isa = isinstance(word_init, torch.Tensor)
        found = tuple(word_init.shape) if isa else type(word_init).__name__
        if found != (vocab_size, word_dim):
            raise ParameterError(
                f"word_init must have shape ({vocab_size}, {word_dim}). Found {found}"
            )
        with torch.no_grad():
            embed.weight.copy_(word_init)
    return embed


def _packed_states(
    embed: nn.Embedding, rnn: nn.RNNBase, tokens: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """The top layer's states of ``rnn`` over the embedded packed sentences, ``(B, L, C)``
    (C = directions x hidden), zeros past each length."""
    x = embed(tokens)  # (B, L, W)
    packed = nn.utils.rnn.pack_padded_sequence(
        x, lengths.cpu(), batch_first=True, enforce_sorted=False
    )
    out, _ = rnn(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=tokens.shape[1])
    return out  # (B, L, C)


def _last_states(features: torch.Tensor, lengths: torch.Tensor, hidden: int,
                 bidirectional: bool) -> torch.Tensor:  # fmt: skip
    """The final hidden state of each direction from the per-token states ``(B, L, C)``:
    the forward direction at the last word, the backward one at the first. The same
    numbers as the recurrent layer's ``h_n`` (it is the same state)."""
    rows = torch.arange(features.shape[0], device=features.device)
    last = features[rows, lengths.to(features.device) - 1]  # (B, C)
    if not bidirectional:
        return last
    return torch.cat([last[:, :hidden], features[:, 0, hidden:]], dim=-1)  # (B, 2H)


class TextEncoder(nn.Module):
    """Base of every text encoder; subclasses set ``feature_info`` and ``out_dim`` and
    implement ``_features`` and ``_head``, which receive checked inputs."""

    feature_info: FeatureInfo
    out_dim: int

    def _features(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _head(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def _check_tokens(tokens, lengths) -> tuple[torch.Tensor, torch.Tensor]:
        if lengths is None and isinstance(tokens, torch.Tensor) and tokens.ndim == 2:
            lengths = torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.long)
        return check_padded(tokens, lengths)

    def _check_features(self, features, lengths) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.feature_info.channels
        if (
            not isinstance(features, torch.Tensor)
            or features.ndim != 3
            or features.shape[-1] != c
            or not features.is_floating_point()
        ):
            found = (
                f"{features.dtype} {tuple(features.shape)}"
                if isinstance(features, torch.Tensor)
                else type(features).__name__
            )
            raise ParameterError(f"features must be a float tensor (B, L, {c}). Found: {found}")
        B, L = features.shape[:2]
        if lengths is None:
            lengths = torch.full((B,), L, dtype=torch.long)
        lengths = check_int_vector(lengths, "lengths", B)
        if B == 0:
            raise ParameterError("features is empty: nothing to pool")
        if int(lengths.min()) < 1 or int(lengths.max()) > L:
            raise ParameterError(
                f"lengths must be in [1, {L}] (the features' length). "
                f"Found {int(lengths.min())}..{int(lengths.max())}"
            )
        return features, lengths

    def forward_features(
        self, tokens: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``tokens (B, L)``, ``lengths (B,)`` (None: all ``L``) → ``(B, L, C)``, zeros
        past each length."""
        return self._features(*self._check_tokens(tokens, lengths))

    def forward_head(
        self, features: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-token features ``(B, L, C)`` and ``lengths (B,)`` → ``(B, out_dim)``."""
        return self._head(*self._check_features(features, lengths))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``tokens (B, L)``, ``lengths (B,)`` → ``(B, out_dim)``."""
        tokens, lengths = self._check_tokens(tokens, lengths)
        return self._head(self._features(tokens, lengths), lengths)


# --------------------------------------------------------------------------- registry

_TEXT_ENCODERS = Registry("text encoder")
# Decorator: make ``fn(**kwargs) -> TextEncoder`` (a function or a class) available as
# ``create_text_encoder(name, **kwargs)``.
register_text_encoder = _TEXT_ENCODERS.register


def list_text_encoders() -> list[str]:
    """Names :func:`create_text_encoder` accepts, sorted."""
    return _TEXT_ENCODERS.names()


def create_text_encoder(name: str, **kwargs) -> TextEncoder:
    """Build the text encoder registered as ``name`` with its keyword arguments
    (``vocab_size`` and the encoder's own).

    >>> create_text_encoder("transformer", vocab_size=50, word_dim=16, n_head=2).feature_info
    FeatureInfo(channels=16, stride=1)
    """
    return _TEXT_ENCODERS.create(name, **kwargs)


# --------------------------------------------------------------------------- GRU


@register_text_encoder("gru")
class GRUTextEncoder(TextEncoder):
    """Word embedding → (bi)GRU over packed sequences → pooling → linear → unit vector.

    Args:
        vocab_size: words in the vocabulary (``<pad>`` = 0 embeds to zeros).
        word_dim: word embedding size.
        hidden: GRU hidden size (per direction).
        embed_dim: output size (``out_dim``).
        bidirectional: a bidirectional GRU (the directions are concatenated).
        pooling: ``"mean"`` over the valid positions, or ``"last"`` (the final hidden
            state of each direction).
        word_init: optional ``(vocab_size, word_dim)`` initial embedding weight, e.g. from
            :func:`xmodal.text.word2vec.embedding_from_word2vec`.

    ``forward_features`` → the GRU's states ``(B, L, directions * hidden)``;
    ``forward(tokens (B, L), lengths (B,))`` → ``(B, embed_dim)``; padding beyond
    ``lengths`` never changes the result.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        word_dim: int = 128,
        hidden: int = 256,
        embed_dim: int = 256,
        bidirectional: bool = True,
        pooling: str = "mean",
        word_init: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        vocab_size = check_positive_int(vocab_size, "vocab_size")
        word_dim = check_positive_int(word_dim, "word_dim")
        hidden = check_positive_int(hidden, "hidden")
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        bidirectional = check_bool(bidirectional, "bidirectional")
        self.pooling = check_choice(pooling, "pooling", POOLINGS)
        # Creation order (embed, gru, proj) fixes the initial weights of a seed: keep it.
        self.embed = _word_embedding(vocab_size, word_dim, word_init)
        self.gru = nn.GRU(word_dim, hidden, batch_first=True, bidirectional=bidirectional)
        self.proj = nn.Linear(hidden * (2 if bidirectional else 1), embed_dim)
        self.feature_info = FeatureInfo(channels=hidden * (2 if bidirectional else 1))
        self.out_dim = embed_dim

    def _features(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return _packed_states(self.embed, self.gru, tokens, lengths)  # (B, L, directions * H)

    def _head(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.pooling == "last":
            feat = _last_states(features, lengths, self.gru.hidden_size, self.gru.bidirectional)
        else:
            # Only the columns up to the longest sentence, contiguous: the same sum, to the
            # bit, as over the states unpacked to that length.
            out = features[:, : int(lengths.max())].contiguous()  # zeros at pads
            feat = out.sum(dim=1) / lengths.to(out.device, out.dtype)[:, None]
        return F.normalize(self.proj(feat), dim=-1)  # (B, D)


# --------------------------------------------------------------------------- transformer


@register_text_encoder("transformer")
class TransformerTextEncoder(TextEncoder):
    """Word + position embeddings → pre-LN transformer blocks (non-causal) → pooling →
    linear → unit vector.

    Every token attends to every real token of its caption, in both directions; padding
    keys are masked out and padding positions are left out of the pooling, so the result
    depends only on ``tokens[b, :lengths[b]]``. The attention, blocks and position table
    are :mod:`xmodal.text.transformer`'s (the pieces GPT is built from).

    Args:
        vocab_size: words in the vocabulary (``<pad>`` = 0 embeds to zeros).
        word_dim: word embedding size.
        width: the transformer's channels ``C``; ``None`` means ``word_dim``. When it
            differs from ``word_dim`` a linear layer maps the word vectors to ``C``.
        n_layer: transformer blocks.
        n_head: attention heads; must divide ``width``.
        max_len: the longest caption, in tokens (the learned position table's size).
        dropout: dropout in the blocks (attention weights, residual branches).
        embed_dim: output size (``out_dim``).
        pooling: ``"mean"`` over the real tokens, or ``"first"`` (the first token's final
            state, e.g. ``<bos>`` used as a [CLS] token).
        word_init: optional ``(vocab_size, word_dim)`` initial embedding weight, e.g. from
            :func:`xmodal.text.word2vec.embedding_from_word2vec`.

    ``forward_features`` → the final layer-normed states ``(B, L, C)``;
    ``forward(tokens (B, L), lengths (B,))`` → ``(B, embed_dim)``; padding beyond
    ``lengths`` never changes the result. Only ``lengths.max()`` columns are run, so ``L``
    may exceed ``max_len`` as long as no caption does.

    Example::

        enc = TransformerTextEncoder(len(vocab), word_dim=64, n_layer=2, n_head=4)
        txt = enc(*vocab.encode_batch(captions))    # (B, 256), unit norm
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        word_dim: int = 128,
        width: int | None = None,
        n_layer: int = 2,
        n_head: int = 4,
        max_len: int = 64,
        dropout: float = 0.1,
        embed_dim: int = 256,
        pooling: str = "mean",
        word_init: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        vocab_size = check_positive_int(vocab_size, "vocab_size")
        word_dim = check_positive_int(word_dim, "word_dim")
        width = word_dim if width is None else check_positive_int(width, "width")
        n_layer = check_positive_int(n_layer, "n_layer")
        n_head = check_positive_int(n_head, "n_head")
        if width % n_head:
            raise ParameterError(
                f"width must be divisible by n_head (each head gets width / n_head channels; "
                f"width defaults to word_dim). Found: width={width}, n_head={n_head}"
            )
        max_len = check_positive_int(max_len, "max_len")
        dropout = check_dropout(dropout, "dropout")
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.pooling = check_choice(pooling, "pooling", TRANSFORMER_POOLINGS)
        self.max_len = max_len
        # The blocks take their sizes from a TransformerConfig; vocab_size there is unused.
        config = TransformerConfig(
            vocab_size=vocab_size, block_size=max_len, n_layer=n_layer, n_head=n_head,
            n_embd=width, dropout=dropout, position="learned", norm="pre", bias=True,
        )  # fmt: skip
        # Creation order fixes the initial weights of a seed: keep it.
        self.embed = _word_embedding(vocab_size, word_dim, word_init)
        self.in_proj = nn.Linear(word_dim, width) if width != word_dim else nn.Identity()
        self.pos = LearnedPositionEmbedding(max_len, width)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(width)
        self.proj = nn.Linear(width, embed_dim)
        self.feature_info = FeatureInfo(channels=width)
        self.out_dim = embed_dim

    def _features(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        T = int(lengths.max())
        if T > self.max_len:
            raise ParameterError(
                f"a caption of {T} tokens is longer than max_len={self.max_len} (the position "
                f"table's size): raise max_len or truncate the captions"
            )
        L = tokens.shape[1]
        tokens = tokens[:, :T]  # columns past the longest caption are all padding
        lengths = lengths.to(tokens.device)
        pad = torch.arange(T, device=tokens.device)[None, :] >= lengths[:, None]  # (B, T)
        x = self.in_proj(self.embed(tokens)) + self.pos(T)  # (B, T, C)
        x = self.drop(x)
        for block in self.blocks:
            x, _, _ = block(x, causal=False, key_padding_mask=pad)  # (B, T, C)
        x = self.ln_f(x).masked_fill(pad[:, :, None], 0.0)
        return F.pad(x, (0, 0, 0, L - T)) if L > T else x  # (B, L, C)

    def _head(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        T = int(lengths.max())
        x = features[:, :T]  # (B, T, C)
        if self.pooling == "first":
            feat = x[:, 0]  # (B, C)
        else:
            lengths = lengths.to(x.device)
            pad = torch.arange(T, device=x.device)[None, :] >= lengths[:, None]  # (B, T)
            real = (~pad).to(x.dtype)[:, :, None]  # (B, T, 1)
            feat = (x * real).sum(dim=1) / real.sum(dim=1)  # (B, C)
        return F.normalize(self.proj(feat), dim=-1)  # (B, D)


# --------------------------------------------------------------------------- VQA questions


class QuestionEncoder(TextEncoder):
    """A question as one vector: ``tokens (Q, L)``, ``lengths (Q,)`` → ``(Q, dim)`` in (-1, 1).

    ``kind="lstm"`` or ``"gru"``: word embedding → ``layers`` recurrent layers over the
    packed sequence → the last layer's final hidden state → linear → tanh
    (``forward_features``: the last layer's states ``(Q, L, hidden)``).
    ``kind="transformer"``: :class:`TransformerTextEncoder` (mean pooled, unit norm,
    rescaled to unit RMS) → linear → tanh (``forward_features``: its features
    ``(Q, L, word_dim)``). Padding never changes the result.

    Registered as ``"lstm-question"``, ``"gru-question"`` and ``"transformer-question"``.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        kind: str = "lstm",
        word_dim: int = 128,
        hidden: int = 256,
        dim: int = 256,
        layers: int = 1,
        heads: int = 4,
        max_len: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.kind = check_choice(kind, "question_encoder", QUESTION_ENCODERS)
        vocab_size = check_positive_int(vocab_size, "vocab_size")
        word_dim = check_positive_int(word_dim, "word_dim")
        hidden = check_positive_int(hidden, "hidden")
        self.dim = check_positive_int(dim, "embed_dim")
        layers = check_positive_int(layers, "question_layers")
        dropout = check_dropout(dropout, "dropout")
        # Creation order (text or embed + rnn, then proj) fixes the initial weights: keep it.
        if self.kind == "transformer":
            self.text = TransformerTextEncoder(
                vocab_size, word_dim=word_dim, n_layer=layers,
                n_head=check_positive_int(heads, "text_heads"),
                max_len=check_positive_int(max_len, "max_len"), dropout=dropout,
                embed_dim=self.dim,
            )  # fmt: skip
            out = self.dim
            self.feature_info = self.text.feature_info
        else:
            self.embed = nn.Embedding(vocab_size, word_dim, padding_idx=0)
            rnn = nn.LSTM if self.kind == "lstm" else nn.GRU
            self.rnn = rnn(word_dim, hidden, num_layers=layers, batch_first=True,
                           dropout=dropout if layers > 1 else 0.0)  # fmt: skip
            out = hidden
            self.feature_info = FeatureInfo(channels=hidden)
        self.proj = nn.Linear(out, self.dim)
        self.out_dim = self.dim

    def _features(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.kind == "transformer":
            return self.text._features(tokens, lengths)  # (Q, L, word_dim)
        return _packed_states(self.embed, self.rnn, tokens, lengths)  # (Q, L, H)

    def _head(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.kind == "transformer":
            feat = self.text._head(features, lengths) * math.sqrt(self.dim)  # (Q, D), unit RMS
        else:
            # The top layer at each question's last word: the recurrent layer's h_n[-1].
            feat = _last_states(features, lengths, self.rnn.hidden_size, False)  # (Q, H)
        return torch.tanh(self.proj(feat))  # (Q, D)


def _question_factory(kind: str) -> Callable[..., QuestionEncoder]:
    def make(vocab_size: int, **kwargs) -> QuestionEncoder:
        return QuestionEncoder(vocab_size, kind=kind, **kwargs)

    # Shown (and checked by create_text_encoder) as QuestionEncoder's arguments less kind.
    params = [p for n, p in inspect.signature(QuestionEncoder).parameters.items() if n != "kind"]
    make.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    make.__name__ = f"{kind}_question"
    return make


for _kind in QUESTION_ENCODERS:
    register_text_encoder(f"{_kind}-question")(_question_factory(_kind))
