"""Image–text joint embedding (VSE / VSE++ / CLIP-style): two encoders, one space.

The image side is any :mod:`xmodal.vision` encoder's global vector (``forward_head``)
through a linear projection; the text side is :class:`GRUTextEncoder`, a GRU over word
embeddings (the default), or :class:`TransformerTextEncoder`, a bidirectional (non-causal)
transformer built from the blocks of :mod:`xmodal.text.transformer`. Both land in
``embed_dim`` dimensions and are L2-normalised, so a dot product is a cosine similarity.
Train with :mod:`xmodal.nn.losses`.

Example::

    model = JointEmbedding(len(vocab), embed_dim=256)
    tokens, lengths = vocab.encode_batch(captions)          # (B, L), (B,)
    img, txt = model(images, tokens, lengths)                # (B, 256) each, unit norm
    sims = img @ txt.T                                       # (B, B) cosine similarities

    model = JointEmbedding(len(vocab), text_encoder="transformer", text_layers=2, text_heads=4)
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import check_bool, check_choice, check_padded, check_positive_int
from xmodal.errors import ParameterError
from xmodal.nn.losses import LogitScale
from xmodal.text.transformer import Block, LearnedPositionEmbedding, TransformerConfig
from xmodal.text.vocab import PAD_ID
from xmodal.vision.encoders import create_encoder

__all__ = [
    "GRUTextEncoder",
    "JointEmbedding",
    "POOLINGS",
    "TEXT_ENCODERS",
    "TRANSFORMER_POOLINGS",
    "TransformerTextEncoder",
]

POOLINGS = ("mean", "last")  # GRUTextEncoder
TRANSFORMER_POOLINGS = ("mean", "first")  # TransformerTextEncoder
TEXT_ENCODERS = ("gru", "transformer")


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


def _check_dropout(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ParameterError(f"{name} must be in [0, 1). Found: {value!r}")
    return float(value)


class GRUTextEncoder(nn.Module):
    """Word embedding → (bi)GRU over packed sequences → pooling → linear → unit vector.

    Args:
        vocab_size: words in the vocabulary (``<pad>`` = 0 embeds to zeros).
        word_dim: word embedding size.
        hidden: GRU hidden size (per direction).
        embed_dim: output size.
        bidirectional: a bidirectional GRU (the directions are concatenated).
        pooling: ``"mean"`` over the valid positions, or ``"last"`` (the final hidden
            state of each direction).
        word_init: optional ``(vocab_size, word_dim)`` initial embedding weight, e.g. from
            :func:`xmodal.text.word2vec.embedding_from_word2vec`.

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
        self.embed = _word_embedding(vocab_size, word_dim, word_init)
        self.gru = nn.GRU(word_dim, hidden, batch_first=True, bidirectional=bidirectional)
        self.proj = nn.Linear(hidden * (2 if bidirectional else 1), embed_dim)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        tokens, lengths = check_padded(tokens, lengths)
        x = self.embed(tokens)  # (B, L, W)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, h = self.gru(packed)  # h: (directions, B, H)
        if self.pooling == "last":
            feat = torch.cat(list(h), dim=-1)  # (B, directions * H)
        else:
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)  # zeros at pads
            feat = out.sum(dim=1) / lengths.to(out.device, out.dtype)[:, None]
        return F.normalize(self.proj(feat), dim=-1)  # (B, D)


class TransformerTextEncoder(nn.Module):
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
        embed_dim: output size.
        pooling: ``"mean"`` over the real tokens, or ``"first"`` (the first token's final
            state, e.g. ``<bos>`` used as a [CLS] token).
        word_init: optional ``(vocab_size, word_dim)`` initial embedding weight, e.g. from
            :func:`xmodal.text.word2vec.embedding_from_word2vec`.

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
        dropout = _check_dropout(dropout, "dropout")
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.pooling = check_choice(pooling, "pooling", TRANSFORMER_POOLINGS)
        self.max_len = max_len
        # The blocks take their sizes from a TransformerConfig; vocab_size there is unused.
        config = TransformerConfig(
            vocab_size=vocab_size, block_size=max_len, n_layer=n_layer, n_head=n_head,
            n_embd=width, dropout=dropout, position="learned", norm="pre", bias=True,
        )  # fmt: skip
        self.embed = _word_embedding(vocab_size, word_dim, word_init)
        self.in_proj = nn.Linear(word_dim, width) if width != word_dim else nn.Identity()
        self.pos = LearnedPositionEmbedding(max_len, width)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(width)
        self.proj = nn.Linear(width, embed_dim)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        tokens, lengths = check_padded(tokens, lengths)
        T = int(lengths.max())
        if T > self.max_len:
            raise ParameterError(
                f"a caption of {T} tokens is longer than max_len={self.max_len} (the position "
                f"table's size): raise max_len or truncate the captions"
            )
        tokens = tokens[:, :T]  # columns past the longest caption are all padding
        lengths = lengths.to(tokens.device)
        pad = torch.arange(T, device=tokens.device)[None, :] >= lengths[:, None]  # (B, T)
        x = self.in_proj(self.embed(tokens)) + self.pos(T)  # (B, T, C)
        x = self.drop(x)
        for block in self.blocks:
            x, _, _ = block(x, causal=False, key_padding_mask=pad)  # (B, T, C)
        x = self.ln_f(x)
        if self.pooling == "first":
            feat = x[:, 0]  # (B, C)
        else:
            real = (~pad).to(x.dtype)[:, :, None]  # (B, T, 1)
            feat = (x * real).sum(dim=1) / real.sum(dim=1)  # (B, C)
        return F.normalize(self.proj(feat), dim=-1)  # (B, D)


class JointEmbedding(nn.Module):
    """An image encoder and a text encoder projected into one unit sphere.

    Args:
        vocab_size: words in the text vocabulary.
        encoder: an :func:`xmodal.vision.create_encoder` name (``small-cnn``, ``resnet18`` ...).
        encoder_kwargs: passed to ``create_encoder``.
        embed_dim: the joint space's dimension.
        text_encoder: ``"gru"`` (:class:`GRUTextEncoder`, the default) or ``"transformer"``
            (:class:`TransformerTextEncoder`).
        word_dim, pooling, word_init: either text encoder's. ``pooling`` is one of
            :data:`POOLINGS` for the GRU, :data:`TRANSFORMER_POOLINGS` for the transformer.
        hidden, bidirectional: the GRU's (ignored by the transformer).
        text_layers, text_heads, text_width, text_max_len, text_dropout: the transformer's
            ``n_layer``, ``n_head``, ``width`` (None: ``word_dim``), ``max_len`` and
            ``dropout`` (ignored by the GRU).
        logit_scale_init: starting inverse temperature of :attr:`logit_scale`, the
            :class:`~xmodal.nn.LogitScale` an InfoNCE loss learns (unused by hinge losses).
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        encoder: str = "small-cnn",
        encoder_kwargs: dict | None = None,
        embed_dim: int = 256,
        word_dim: int = 128,
        hidden: int = 256,
        bidirectional: bool = True,
        pooling: str = "mean",
        word_init: torch.Tensor | None = None,
        logit_scale_init: float = 1 / 0.07,
        text_encoder: str = "gru",
        text_layers: int = 2,
        text_heads: int = 4,
        text_width: int | None = None,
        text_max_len: int = 64,
        text_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        word_dim = check_positive_int(word_dim, "word_dim")
        text_encoder = check_choice(text_encoder, "text_encoder", TEXT_ENCODERS)
        self.encoder = create_encoder(encoder, **(encoder_kwargs or {}))
        self.img_proj = nn.Linear(self.encoder.feature_info.channels, embed_dim)
        # Either way the text side is `self.text`, so GRU runs keep their state-dict keys.
        if text_encoder == "gru":
            self.text = GRUTextEncoder(
                vocab_size,
                word_dim=word_dim,
                hidden=hidden,
                embed_dim=embed_dim,
                bidirectional=bidirectional,
                pooling=pooling,
                word_init=word_init,
            )
        else:
            # Checked here too, so that the messages name this signature's arguments.
            _check_dropout(text_dropout, "text_dropout")
            width = word_dim if text_width is None else check_positive_int(text_width, "text_width")
            heads = check_positive_int(text_heads, "text_heads")
            if width % heads:
                raise ParameterError(
                    f"text_width must be divisible by text_heads (text_width defaults to "
                    f"word_dim). Found: text_width={width}, text_heads={heads}"
                )
            self.text = TransformerTextEncoder(
                vocab_size,
                word_dim=word_dim,
                width=width,
                n_layer=check_positive_int(text_layers, "text_layers"),
                n_head=heads,
                max_len=check_positive_int(text_max_len, "text_max_len"),
                dropout=text_dropout,
                embed_dim=embed_dim,
                pooling=pooling,
                word_init=word_init,
            )
        self.text_encoder = text_encoder
        self.logit_scale = LogitScale(init=logit_scale_init)
        self.embed_dim = embed_dim

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` float in [0, 1] or uint8 → ``(B, embed_dim)`` unit vectors."""
        v = self.encoder.forward_head(self.encoder.forward_features(images))  # (B, C)
        return F.normalize(self.img_proj(v), dim=-1)

    def embed_texts(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``tokens (B, L)`` padded with ``<pad>``, ``lengths (B,)`` → ``(B, embed_dim)``."""
        return self.text(tokens, lengths)

    def forward(
        self, images: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(img (B_img, D), txt (B_txt, D))``, both L2-normalised."""
        return self.embed_images(images), self.embed_texts(tokens, lengths)
