"""Grids of images: samples of a generator, one row per condition with its label.

:func:`image_grid` tiles images into one image tensor; :func:`plot_image_grid` draws it
as a figure with a label left of each row (made without pyplot); :func:`grid_path` names
the file of a grid a user asked for::

    images = gan.generate(...)                        # (rows * 8, 3, H, W) in [0, 1]
    fig = plot_image_grid(images, 8, captions)        # a row of 8 per caption
    save_figure(fig, "samples.png")
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.figure import Figure

from xmodal._checks import check_positive_int
from xmodal.errors import ParameterError

__all__ = ["grid_path", "image_grid", "plot_image_grid"]

_PIXELS_PER_INCH = 60  # of the grid: at the figures' 100 dpi, 64x64 images show at ~107 px


def image_grid(images: torch.Tensor, nrow: int, *, pad: int = 2) -> torch.Tensor:
    """``images`` ``(N, 3, H, W)`` in [0, 1] → one ``(3, rows * (H + pad) + pad,
    nrow * (W + pad) + pad)`` image: rows of ``nrow`` on a white ground (values clamped
    to [0, 1]).

    >>> image_grid(torch.zeros(3, 3, 4, 4), 2, pad=1).shape
    torch.Size([3, 11, 11])
    """
    if images.dim() != 4:
        raise ParameterError(f"images must have shape (N, C, H, W). Found: {tuple(images.shape)}")
    nrow = check_positive_int(nrow, "nrow")
    pad = check_positive_int(pad, "pad", minimum=0)
    n, c, h, w = images.shape
    rows = -(-n // nrow)
    grid = torch.ones(c, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for k in range(n):
        r, col = divmod(k, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, y : y + h, x : x + w] = images[k].clamp(0, 1)
    return grid


def plot_image_grid(images: torch.Tensor, nrow: int, labels: Sequence[str] = ()) -> Figure:
    """The :func:`image_grid` of ``images`` (rows of ``nrow``) as a figure, ``labels[r]``
    written left of row ``r``."""
    images = images.detach().float().cpu()
    grid = image_grid(images, nrow).permute(1, 2, 0).numpy()
    margin = 2.0 if labels else 0.0  # inches of label text left of the grid
    width, height = grid.shape[1] / _PIXELS_PER_INCH, grid.shape[0] / _PIXELS_PER_INCH
    fig = Figure(figsize=(width + margin, height))
    ax = fig.add_axes((margin / (width + margin), 0, width / (width + margin), 1))
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    h = images.shape[-2]
    for r, text in enumerate(labels):
        ax.text(-4, 2 + r * (h + 2) + h / 2, text, ha="right", va="center", fontsize=7)
    return fig


def grid_path(out_dir: str | Path, out_file: str | Path | None, label: str) -> Path:
    """The PNG file of a grid: ``out_file``, or ``out_dir/<label>.png`` with ``label`` made
    a file stem (runs of other characters than letters, digits, ``_`` and ``-`` as one
    ``_``, at most 60; ``caption`` when nothing is left). ParameterError unless it ends in
    ``.png``.

    >>> grid_path("out", None, "a large red star!").as_posix()
    'out/a_large_red_star.png'
    """
    if out_file is None:
        stem = re.sub(r"[^\w-]+", "_", label.strip())[:60].strip("_") or "caption"
        out_file = Path(out_dir) / f"{stem}.png"
    if Path(out_file).suffix.lower() != ".png":
        raise ParameterError(f"the grid must be a .png file. Found: {str(out_file)!r}")
    return Path(out_file)
