"""Where a transformer looks: the self-attention map of one layer (and head) over a sentence.

:func:`plot_attention_map` draws the ``(T, T)`` weights of a head as an image with the
tokens on both axes: row ``i`` is the query token, column ``j`` the key token it attends
to, so a causal model's map is lower-triangular and each row sums to 1. With ``head=None``
every head of the layer gets a panel. Whitespace tokens are drawn visibly (``␣`` for a
space, ``↵`` for a line end, ``⇥`` for a tab) so character-level maps stay readable.

The figure is made without pyplot, so it needs no display and touches no global state.

Example:
    >>> maps = gpt.attention_maps(idx)                  # n_layer x (1, H, T, T)
    >>> fig = plot_attention_map(maps, tokens, layer=-1, head=0)
    >>> fig.savefig("attention.png")
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from xmodal._checks import as_signal, check_positive_int
from xmodal.errors import ParameterError

__all__ = ["plot_attention_map", "token_label"]

_VISIBLE = {" ": "\u2423", "\n": "\u21b5", "\t": "\u21e5", "": "\u2205"}
_MAX_TICKS = 64  # beyond this many tokens only every k-th is labelled


def token_label(token: str) -> str:
    """How a token is written on an axis: whitespace made visible."""
    return _VISIBLE.get(token, token.replace("\n", _VISIBLE["\n"]).replace("$", r"\$"))


def _layers(attentions) -> list[torch.Tensor]:
    """The per-layer ``(H, T, T)`` weights of one sequence."""
    if isinstance(attentions, (np.ndarray, torch.Tensor)):
        a = torch.as_tensor(attentions)
        if a.ndim == 3:
            return [a]  # one layer (H, T, T)
        if a.ndim == 4:
            return list(a)  # (L, H, T, T)
        raise ParameterError(
            "attentions must be (H, T, T), (L, H, T, T) or a list of per-layer (H, T, T) or "
            f"(1, H, T, T) tensors. Found shape {tuple(a.shape)}"
        )
    if (
        isinstance(attentions, (str, bytes))
        or not isinstance(attentions, Sequence)
        or not attentions
    ):
        raise ParameterError(
            "attentions must be a non-empty list of per-layer weights (what "
            f"GPT.attention_maps returns). Found: {type(attentions).__name__}"
        )
    out = []
    for i, a in enumerate(attentions):
        a = torch.as_tensor(a) if isinstance(a, np.ndarray) else a
        if not isinstance(a, torch.Tensor):
            raise ParameterError(f"attentions[{i}] must be a tensor. Found: {type(a).__name__}")
        if a.ndim == 4 and a.shape[0] == 1:
            a = a[0]
        if a.ndim != 3:
            raise ParameterError(
                f"attentions[{i}] must be (H, T, T) or (1, H, T, T) (pick one sequence of a "
                f"batch: [m[b] for m in maps]). Found shape {tuple(a.shape)}"
            )
        out.append(a)
    return out


def plot_attention_map(
    attentions,
    tokens: Sequence[str],
    *,
    layer: int = -1,
    head: int | None = 0,
    ncols: int = 4,
    title: str | None = None,
) -> Figure:
    """The attention weights of ``layer`` (and ``head``) over ``tokens``, tokens on both axes.

    Args:
        attentions: per-layer weights of one sequence: a list of ``(H, T, T)`` (or
            ``(1, H, T, T)``) tensors as :meth:`xmodal.text.transformer.GPT.attention_maps`
            gives for a batch of one, a ``(L, H, T, T)`` tensor, or one layer ``(H, T, T)``.
        tokens: the ``T`` tokens (strings), in order.
        layer: which layer (negative counts from the last).
        head: which head; None draws every head of the layer, one panel each.
        ncols: panels per row when ``head`` is None.
        title: a title over the whole figure.

    Returns:
        A :class:`matplotlib.figure.Figure`: per panel an image of the ``(T, T)`` weights
        (rows: queries, columns: keys; colour from 0 to the panel's maximum), titled
        ``layer L, head h``, with the tokens as tick labels.

    Raises:
        ParameterError: a layer or head out of range, tokens not of length ``T``, weights
            that are not finite or lie outside [0, 1], or shapes that are not ``(H, T, T)``.
    """
    layers = _layers(attentions)
    n_layers = len(layers)
    if isinstance(layer, bool) or not isinstance(layer, int) or not -n_layers <= layer < n_layers:
        raise ParameterError(f"layer must be an int in [{-n_layers}, {n_layers}). Found: {layer!r}")
    weights = as_signal(layers[layer].detach().cpu().float(), f"attentions[{layer}]", min_ndim=3)
    H, T, S = weights.shape
    if T != S:
        raise ParameterError(f"attention maps must be square (T, T). Found {T} x {S}")
    lo, hi = float(weights.min()), float(weights.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ParameterError(
            f"attention weights must lie in [0, 1]. Found values in [{lo:.3g}, {hi:.3g}]"
        )
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise ParameterError(f"tokens must be a list of strings. Found: {type(tokens).__name__}")
    if len(tokens) != T:
        raise ParameterError(f"tokens must hold one string per position ({T}). Found {len(tokens)}")
    for i, t in enumerate(tokens):
        if not isinstance(t, str):
            raise ParameterError(f"tokens[{i}] must be a string. Found: {t!r}")
    if head is not None and (
        isinstance(head, bool) or not isinstance(head, int) or not 0 <= head < H
    ):
        raise ParameterError(f"head must be None or an int in [0, {H}). Found: {head!r}")
    ncols = check_positive_int(ncols, "ncols")
    if title is not None and not isinstance(title, str):
        raise ParameterError(f"title must be a string or None. Found: {title!r}")

    heads = list(range(H)) if head is None else [head]
    cols = min(ncols, len(heads))
    rows = math.ceil(len(heads) / cols)
    side = min(9.0, max(3.0, 0.16 * T + 1.2))
    fig = Figure(figsize=(side * cols, side * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    labels = [token_label(t) for t in tokens]
    step = max(1, math.ceil(T / _MAX_TICKS))
    ticks = list(range(0, T, step))
    fontsize = 8 if T <= 32 else 6
    shown_layer = layer % n_layers
    for ax, h in zip(axes, heads, strict=False):
        w = weights[h].numpy()
        top = float(w.max())
        ax.imshow(w, cmap="viridis", vmin=0.0, vmax=top if top > 0 else 1.0,
                  interpolation="nearest")  # fmt: skip
        ax.set_xticks(ticks, [labels[i] for i in ticks], fontsize=fontsize, rotation=90)
        ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=fontsize)
        ax.set_xlabel("key (attended to)")
        ax.set_ylabel("query")
        ax.set_title(f"layer {shown_layer}, head {h}")
    for ax in axes[len(heads) :]:
        fig.delaxes(ax)
    if title is not None:
        fig.suptitle(title)
    return fig
