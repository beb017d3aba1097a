"""Image–text joint embedding (VSE / VSE++ / CLIP-style): two encoders, one space.

The image side is any :mod:`xmodal.vision` encoder's global vector (``forward_head``)
through a linear projection; the text side is :class:`GRUTextEncoder`, a GRU over word
embeddings. Both land in ``embed_dim`` dimensions and are L2-normalised, so a dot product
is a cosine similarity. Train with :mod:`xmodal.nn.losses`.

Example::

    model = JointEmbedding(len(vocab), embed_dim=256)
    tokens, lengths = vocab.encode_batch(captions)          # (B, L), (B,)
    img, txt = model(images, tokens, lengths)                # (B, 256) each, unit norm
    sims = img @ txt.T                                       # (B, B) cosine similarities
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import check_bool, check_choice, check_positive_int
from xmodal.errors import ParameterError
from xmodal.nn.losses import LogitScale
from xmodal.text.vocab import PAD_ID
from xmodal.vision.encoders import create_encoder

__all__ = ["GRUTextEncoder", "JointEmbedding", "POOLINGS"]

POOLINGS = ("mean", "last")


def _check_tokens(tokens, lengths) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.is_floating_point():
        found = (
            f"{tokens.dtype} {tuple(tokens.shape)}"
            if isinstance(tokens, torch.Tensor)
            else (type(tokens).__name__)
        )
        raise ParameterError(f"tokens must be an integer tensor (B, L). Found: {found}")
    if not isinstance(lengths, torch.Tensor):
        lengths = torch.as_tensor(lengths)
    if lengths.shape != (tokens.shape[0],) or lengths.is_floating_point():
        raise ParameterError(
            f"lengths must be an integer tensor of shape ({tokens.shape[0]},). "
            f"Found {lengths.dtype} {tuple(lengths.shape)}"
        )
    if tokens.shape[0] == 0:
        raise ParameterError("tokens is empty: no text to embed")
    if int(lengths.min()) < 1 or int(lengths.max()) > tokens.shape[1]:
        raise ParameterError(
            f"lengths must be in [1, {tokens.shape[1]}] (the padded length). "
            f"Found {int(lengths.min())}..{int(lengths.max())}"
        )
    return tokens, lengths


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
        self.embed = nn.Embedding(vocab_size, word_dim, padding_idx=PAD_ID)
        if word_init is not None:
            if tuple(word_init.shape) != (vocab_size, word_dim):
                raise ParameterError(
                    f"word_init must have shape ({vocab_size}, {word_dim}). "
                    f"Found {tuple(word_init.shape)}"
                )
            with torch.no_grad():
                self.embed.weight.copy_(word_init)
        self.gru = nn.GRU(word_dim, hidden, batch_first=True, bidirectional=bidirectional)
        self.proj = nn.Linear(hidden * (2 if bidirectional else 1), embed_dim)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        tokens, lengths = _check_tokens(tokens, lengths)
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


class JointEmbedding(nn.Module):
    """An image encoder and a :class:`GRUTextEncoder` projected into one unit sphere.

    Args:
        vocab_size: words in the text vocabulary.
        encoder: an :func:`xmodal.vision.create_encoder` name (``small-cnn``, ``resnet18`` ...).
        encoder_kwargs: passed to ``create_encoder``.
        embed_dim: the joint space's dimension.
        word_dim, hidden, bidirectional, pooling, word_init: the text encoder's.
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
    ) -> None:
        super().__init__()
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.encoder = create_encoder(encoder, **(encoder_kwargs or {}))
        self.img_proj = nn.Linear(self.encoder.feature_info.channels, embed_dim)
        self.text = GRUTextEncoder(
            vocab_size,
            word_dim=word_dim,
            hidden=hidden,
            embed_dim=embed_dim,
            bidirectional=bidirectional,
            pooling=pooling,
            word_init=word_init,
        )
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
