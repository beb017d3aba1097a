"""What a pretrained backbone sees under each position of its map: the image, the
object shape under each cell in truth, and the shape the model names there
(:func:`plot_cells`). Made without pyplot.

Example:
    >>> fig = plot_cells(image, true_cells, seen_cells, ("circle", "square"))
    >>> save_figure(fig, "cells.png")
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.figure import Figure

from xmodal.errors import ParameterError

__all__ = ["plot_cells"]


def plot_cells(
    image: torch.Tensor,
    truth: torch.Tensor,
    seen: Sequence[Sequence[str]],
    names: Sequence[str],
    *,
    title: str = "",
) -> Figure:
    """``image`` (3, H, W) (uint8 or in [0, 1]); ``truth`` (h, w) long, the class under
    each cell plus one (0: none); ``seen`` the (h, w) class names the model gives ("":
    none); ``names`` the classes. Three panels: the image, the truth, what the model sees,
    each cell coloured by its class and marked with its name's first letter."""
    h, w = truth.shape
    if len(seen) != h or any(len(row) != w for row in seen):
        raise ParameterError(f"seen must be {h} rows of {w} names, as truth")
    index = {name: k + 1 for k, name in enumerate(names)}
    try:
        seen_ids = torch.tensor([[index[n] if n else 0 for n in row] for row in seen])
    except KeyError as err:
        raise ParameterError(
            f"seen names {err.args[0]!r}, which is not one of {list(names)}"
        ) from None
    img = image.detach().cpu()
    img = (img.float() / 255 if img.dtype == torch.uint8 else img.float()).clamp(0, 1)
    fig = Figure(figsize=(7.2, 2.6), layout="constrained")
    axes = fig.subplots(1, 3)
    axes[0].imshow(img.permute(1, 2, 0).numpy(), interpolation="nearest")
    for ax, ids, label in ((axes[1], truth.cpu(), "truth"), (axes[2], seen_ids, "model")):
        ax.imshow(ids.numpy(), cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
        for i in range(h):
            for j in range(w):
                k = int(ids[i, j])
                if k:
                    ax.text(j, i, names[k - 1][0], ha="center", va="center", fontsize=7)
        ax.set_title(label, fontsize=8)
    axes[0].set_title(title, fontsize=8)
    for ax in axes:
        ax.set_axis_off()
    return fig
