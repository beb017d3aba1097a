"""Image–text joint embedding (VSE / VSE++ / CLIP-style): two encoders, one space.

The image side is any :mod:`xmodal.vision` encoder's global vector (``forward_head``)
through a linear projection; the text side is one of :mod:`xmodal.text.encoders`:
:class:`~xmodal.text.encoders.GRUTextEncoder`, a GRU over word embeddings (the default),
or :class:`~xmodal.text.encoders.TransformerTextEncoder`, a bidirectional (non-causal)
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

import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import check_choice, check_dropout, check_positive_int
from xmodal.errors import ParameterError
from xmodal.nn.losses import LogitScale

# The text encoders live in xmodal.text.encoders; re-exported here for existing imports.
from xmodal.text.encoders import (
    POOLINGS,
    TRANSFORMER_POOLINGS,
    GRUTextEncoder,
    TransformerTextEncoder,
)
from xmodal.text.transformer import Block, TransformerConfig
from xmodal.vision.attention import AttentionPool2d, check_map, resize_positions
from xmodal.vision.encoders import create_encoder

__all__ = [
    "GRUTextEncoder",
    "IMAGE_POOLINGS",
    "JointEmbedding",
    "MapTransformer",
    "POOLINGS",
    "TEXT_ENCODERS",
    "TRANSFORMER_POOLINGS",
    "TransformerTextEncoder",
]

TEXT_ENCODERS = ("gru", "transformer")
IMAGE_POOLINGS = ("mean", "attention", "flatten")


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
        image_pooling: the image's global vector: ``"mean"`` (the encoder's
            ``forward_head``, then a Linear), ``"attention"`` (CLIP's
            :class:`~xmodal.vision.attention.AttentionPool2d` of ``image_heads`` heads over
            the map of an ``image_size`` image, straight to ``embed_dim``) or
            ``"flatten"`` (VGG's head: the map average-pooled to its size at
            ``image_size``, flattened, one Linear: each place has its own weights, so the
            vector keeps what is where).
        image_layers: pre-LN transformer blocks (``image_heads`` heads, no dropout) over
            the map's locations, with a learned position embedding, before the pooling
            (:class:`MapTransformer`); 0: none.
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
        image_pooling: str = "mean",
        image_heads: int = 8,
        image_layers: int = 0,
        image_size: int | None = None,
    ) -> None:
        super().__init__()
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        word_dim = check_positive_int(word_dim, "word_dim")
        text_encoder = check_choice(text_encoder, "text_encoder", TEXT_ENCODERS)
        self.encoder = create_encoder(encoder, **(encoder_kwargs or {}))
        self.image_pooling = check_choice(image_pooling, "image_pooling", IMAGE_POOLINGS)
        info = self.encoder.feature_info
        self.image_layers = check_positive_int(image_layers, "image_layers", minimum=0)
        side = None
        if image_pooling != "mean" or self.image_layers:  # these know the map's size
            if image_size is None:
                raise ParameterError(
                    f"image_pooling={image_pooling!r} with image_layers={image_layers} "
                    "needs image_size"
                )
            side = -(-check_positive_int(image_size, "image_size") // info.stride)
        if self.image_layers:  # the locations see each other before the pooling
            self.map_blocks = MapTransformer((side, side), info.channels, image_heads,
                                             self.image_layers)  # fmt: skip
        if image_pooling == "mean":
            self.img_proj = nn.Linear(info.channels, embed_dim)
        elif image_pooling == "flatten":  # torchvision VGG's avgpool + flatten + Linear
            flat = info.channels * side * side
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d((side, side)), nn.Flatten(),
                                      nn.Linear(flat, embed_dim))  # fmt: skip
        else:  # CLIP's attention pooling over the map, whose size image_size sets
            self.pool = AttentionPool2d((side, side), info.channels, image_heads, embed_dim)
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
            check_dropout(text_dropout, "text_dropout")
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
        features = self.encoder.forward_features(images)  # (B, C, H', W')
        if self.image_layers:
            features = self.map_blocks(features)
        if self.image_pooling != "mean":
            return F.normalize(self.pool(features), dim=-1)
        return F.normalize(self.img_proj(self.encoder.forward_head(features)), dim=-1)

    def embed_texts(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``tokens (B, L)`` padded with ``<pad>``, ``lengths (B,)`` → ``(B, embed_dim)``."""
        return self.text(tokens, lengths)

    def forward(
        self, images: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(img (B_img, D), txt (B_txt, D))``, both L2-normalised."""
        return self.embed_images(images), self.embed_texts(tokens, lengths)


class MapTransformer(nn.Module):
    """Pre-LN transformer blocks (:class:`xmodal.text.transformer.Block`, no mask) over a
    feature map's locations, each first given a learned position embedding (a ViT over
    the CNN's map, as in hybrid ViTs): every location then sees the others, so what lies
    left of what can reach one vector.

    ``forward(features (B, C, H', W')) -> (B, C, H', W')``; for a map of another size than
    ``grid`` the position embedding is resized bicubically.
    """

    def __init__(self, grid: tuple[int, int], channels: int, heads: int, layers: int) -> None:
        super().__init__()
        self.grid = tuple(check_positive_int(g, "grid") for g in grid)
        self.channels = check_positive_int(channels, "channels")
        n = self.grid[0] * self.grid[1]
        config = TransformerConfig(vocab_size=1, block_size=n, n_layer=layers, n_head=heads,
                                   n_embd=self.channels, dropout=0.0)  # fmt: skip
        self.positional_embedding = nn.Parameter(torch.randn(n, channels) / channels**0.5)
        self.blocks = nn.ModuleList(Block(config) for _ in range(layers))
        self.ln = nn.LayerNorm(self.channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        check_map(features, self.channels)
        places = resize_positions(self.positional_embedding, self.grid, features.shape[-2:])
        x = features.flatten(2).transpose(1, 2) + places  # (B, HW, C)
        for block in self.blocks:
            x = block(x, causal=False)[0]
        return self.ln(x).transpose(1, 2).reshape(features.shape)
