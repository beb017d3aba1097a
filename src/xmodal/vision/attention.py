"""Soft visual attention: a query picks a weighted average of feature-map locations.

One implementation for every task that looks at an image while producing something else:
captioning (Show, Attend and Tell), VQA and sound-source localization.

Both modules share one signature::

    context, alpha = attn(query, features, mask=None)

- ``query``: ``(B, Dq)``, e.g. the decoder's hidden state or a question/audio embedding;
- ``features``: a map ``(B, C, H', W')`` (as ``ImageEncoder.forward_features`` returns) or
  a set of locations ``(B, N, C)``;
- ``mask``: optional bool, ``(B, H', W')`` or ``(B, N)``; **True marks a location that may be
  attended**, False one that gets weight exactly 0. Every item needs at least one True;
- ``context``: ``(B, C)`` = ``sum_i alpha_i f_i`` over the raw features;
- ``alpha``: ``(B, H', W')`` or ``(B, N)``, nonnegative, summing to 1 over locations.

>>> attn = AdditiveAttention(query_dim=32, feature_dim=64, hidden_dim=48)
>>> context, alpha = attn(torch.randn(2, 32), torch.randn(2, 64, 8, 8))
>>> context.shape, alpha.shape
(torch.Size([2, 64]), torch.Size([2, 8, 8]))
"""

from __future__ import annotations

import math

import torch
from torch import nn

from xmodal._checks import check_positive_int
from xmodal.errors import ParameterError

__all__ = [
    "AdditiveAttention",
    "AttentionPool2d",
    "DotProductAttention",
    "VisualAttention",
    "check_map",
    "resize_positions",
]


class VisualAttention(nn.Module):
    """Shared checks, flattening and weighting; subclasses define ``score``."""

    def __init__(self, query_dim: int, feature_dim: int) -> None:
        super().__init__()
        self.query_dim = check_positive_int(query_dim, "query_dim")
        self.feature_dim = check_positive_int(feature_dim, "feature_dim")

    def score(self, query: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """``query (B, Dq)``, ``feats (B, N, C)`` → unnormalised scores ``(B, N)``."""
        raise NotImplementedError

    def forward(
        self, query: torch.Tensor, features: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feats, spatial = self._check(query, features, mask)  # (B, N, C)
        scores = self.score(query, feats)  # (B, N)
        if mask is not None:
            mask = mask.reshape(scores.shape)
            scores = scores.masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(scores, dim=-1)  # (B, N); masked locations are exactly 0
        context = torch.bmm(alpha.unsqueeze(1), feats).squeeze(1)  # (B, C)
        if spatial is not None:
            alpha = alpha.view(-1, *spatial)  # (B, H', W')
        return context, alpha

    def _check(self, query, features, mask):
        if not isinstance(query, torch.Tensor) or query.ndim != 2:
            found = tuple(query.shape) if isinstance(query, torch.Tensor) else type(query).__name__
            raise ParameterError(f"query must have shape (B, {self.query_dim}). Found: {found}")
        if query.shape[1] != self.query_dim:
            raise ParameterError(
                f"query must have shape (B, {self.query_dim}). Found: {tuple(query.shape)}"
            )
        if not isinstance(features, torch.Tensor) or features.ndim not in (3, 4):
            found = (
                tuple(features.shape)
                if isinstance(features, torch.Tensor)
                else type(features).__name__
            )
            raise ParameterError(
                f"features must have shape (B, C, H', W') or (B, N, C). Found: {found}"
            )
        c = self.feature_dim
        if features.ndim == 4:
            if features.shape[1] != c:
                raise ParameterError(
                    f"features must have shape (B, {c}, H', W'). Found: {tuple(features.shape)}"
                )
            spatial = tuple(features.shape[2:])
            feats = features.flatten(2).transpose(1, 2)  # (B, H'W', C)
        else:
            if features.shape[2] != c:
                raise ParameterError(
                    f"features must have shape (B, N, {c}). Found: {tuple(features.shape)}"
                )
            spatial = None
            feats = features
        if features.shape[0] != query.shape[0]:
            raise ParameterError(
                f"query and features must have the same batch size. Found: "
                f"{query.shape[0]} and {features.shape[0]}"
            )
        if feats.shape[1] == 0:
            raise ParameterError(f"features has no locations. Found: {tuple(features.shape)}")
        if mask is not None:
            expected = (features.shape[0], *spatial) if spatial else tuple(feats.shape[:2])
            if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
                raise ParameterError(
                    f"mask must be a bool tensor of shape {expected}. Found: "
                    f"{getattr(mask, 'dtype', type(mask).__name__)}"
                )
            if tuple(mask.shape) != expected:
                raise ParameterError(f"mask must have shape {expected}. Found: {tuple(mask.shape)}")
            empty = ~mask.reshape(mask.shape[0], -1).any(dim=1)
            if bool(empty.any()):
                items = empty.nonzero().flatten().tolist()
                raise ParameterError(
                    f"mask must keep at least one location per item. Found none in items {items}"
                )
        return feats, spatial


class AdditiveAttention(VisualAttention):
    """Bahdanau / Show, Attend and Tell attention.

    ``e_i = w^T tanh(W_f f_i + W_q q)``, ``alpha = softmax_i(e)``, ``context = sum_i alpha_i f_i``.
    ``W_f``: ``feature_dim → hidden_dim`` (with bias), ``W_q``: ``query_dim → hidden_dim``,
    ``w``: ``hidden_dim → 1``.
    """

    def __init__(self, query_dim: int, feature_dim: int, hidden_dim: int) -> None:
        super().__init__(query_dim, feature_dim)
        hidden_dim = check_positive_int(hidden_dim, "hidden_dim")
        self.hidden_dim = hidden_dim
        self.feature_proj = nn.Linear(self.feature_dim, hidden_dim)  # W_f
        self.query_proj = nn.Linear(self.query_dim, hidden_dim, bias=False)  # W_q
        self.score_proj = nn.Linear(hidden_dim, 1, bias=False)  # w

    def score(self, query: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.feature_proj(feats) + self.query_proj(query).unsqueeze(1))  # (B,N,Dh)
        return self.score_proj(h).squeeze(-1)  # (B, N)


class DotProductAttention(VisualAttention):
    """Scaled dot-product attention: ``e_i = <k(f_i), q'(q)> / sqrt(d)``.

    With ``hidden_dim=None`` the query is compared with the features directly (no
    parameters; needs ``query_dim == feature_dim``, ``d = feature_dim``). With a
    ``hidden_dim``, query and features are first projected to it (``d = hidden_dim``).
    The context is always a weighted sum of the raw features, ``(B, feature_dim)``.
    """

    def __init__(self, query_dim: int, feature_dim: int, hidden_dim: int | None = None) -> None:
        super().__init__(query_dim, feature_dim)
        if hidden_dim is None:
            if self.query_dim != self.feature_dim:
                raise ParameterError(
                    "query_dim must equal feature_dim when hidden_dim is None. Found: "
                    f"query_dim={query_dim}, feature_dim={feature_dim}"
                )
            self.query_proj = self.key_proj = None
            self.hidden_dim = self.feature_dim
        else:
            self.hidden_dim = check_positive_int(hidden_dim, "hidden_dim")
            self.query_proj = nn.Linear(self.query_dim, self.hidden_dim, bias=False)
            self.key_proj = nn.Linear(self.feature_dim, self.hidden_dim, bias=False)

    def score(self, query: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        if self.query_proj is not None:
            query, feats = self.query_proj(query), self.key_proj(feats)
        scores = torch.bmm(feats, query.unsqueeze(-1)).squeeze(-1)  # (B, N)
        return scores / math.sqrt(self.hidden_dim)


def check_map(features, channels: int) -> None:
    """A ParameterError unless ``features`` is a ``(B, channels, H', W')`` tensor."""
    if not (isinstance(features, torch.Tensor) and features.ndim == 4
            and features.shape[1] == channels):  # fmt: skip
        found = tuple(features.shape) if isinstance(features, torch.Tensor) else features
        raise ParameterError(f"features must have shape (B, {channels}, H', W'). Found: {found}")


def resize_positions(embedding: torch.Tensor, grid: tuple[int, int], size) -> torch.Tensor:
    """A ``(H*W, C)`` position embedding learnt on ``grid``, for a map of ``size``: itself,
    or bicubically resized as CLIP and timm do for another input size."""
    if tuple(size) == tuple(grid):
        return embedding
    c = embedding.shape[-1]
    table = embedding.T.reshape(1, c, *grid)
    table = nn.functional.interpolate(table, size=tuple(size), mode="bicubic", align_corners=False)
    return table.reshape(c, -1).T


class AttentionPool2d(nn.Module):
    """CLIP's attention pooling (Radford et al. 2021, ``model.py``'s ``AttentionPool2d``):
    a feature map's global vector as one multi-head attention query.

    The map's locations and their mean become ``H'*W' + 1`` tokens, each plus a learned
    positional embedding; the mean token attends over all of them and its output, through
    ``c_proj``, is the vector. Unlike a mean over locations it keeps where things are and
    which features occur together (its heads can pick the locations of one colour and
    read their shape).

    Args:
        grid: the map's ``(H', W')`` (the positional embedding's size); for a map of
            another size the embedding is resized bicubically (as CLIP's and timm's are).
        channels: ``C``, the map's channels (``embed_dim`` in CLIP's code).
        heads: attention heads; must divide ``channels``.
        out_dim: the output's dimension (default: ``channels``).

    ``forward(features (B, C, H', W')) -> (B, out_dim)``.
    """

    def __init__(self, grid: tuple[int, int], channels: int, heads: int,
                 out_dim: int | None = None) -> None:  # fmt: skip
        super().__init__()
        self.grid = tuple(check_positive_int(g, "grid") for g in grid)
        channels = check_positive_int(channels, "channels")
        self.heads = check_positive_int(heads, "heads")
        if channels % self.heads:
            raise ParameterError(
                f"channels must be divisible by heads. Found: channels={channels}, "
                f"heads={self.heads}"
            )
        out_dim = channels if out_dim is None else check_positive_int(out_dim, "out_dim")
        n = self.grid[0] * self.grid[1] + 1
        self.positional_embedding = nn.Parameter(torch.randn(n, channels) / channels**0.5)
        self.q_proj = nn.Linear(channels, channels)
        self.k_proj = nn.Linear(channels, channels)
        self.v_proj = nn.Linear(channels, channels)
        self.c_proj = nn.Linear(channels, out_dim)
        self.channels = channels

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        check_map(features, self.channels)
        c, pos = self.channels, self.positional_embedding
        places = resize_positions(pos[1:], self.grid, features.shape[-2:])
        x = features.flatten(2).transpose(1, 2)  # (B, HW, C)
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1) + torch.cat([pos[:1], places])
        b, n, d = x.shape[0], x.shape[1], c // self.heads
        q = self.q_proj(x[:, :1]).view(b, 1, self.heads, d).transpose(1, 2)  # (B, h, 1, d)
        k = self.k_proj(x).view(b, n, self.heads, d).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.heads, d).transpose(1, 2)
        out = nn.functional.scaled_dot_product_attention(q, k, v)  # (B, h, 1, d)
        return self.c_proj(out.transpose(1, 2).reshape(b, c))
