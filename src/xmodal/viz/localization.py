"""Where a sound comes from: frames with their localization map over them and the ground
truth beside them (:func:`plot_localization`). Made without pyplot.

Example:
    >>> fig = plot_localization(images, maps, sounding_masks)
    >>> save_figure(fig, "localization.png")
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.figure import Figure

from xmodal.errors import ParameterError
from xmodal.viz.attention import _image

__all__ = ["plot_localization"]


def plot_localization(
    images: torch.Tensor,
    maps: torch.Tensor,
    truth: torch.Tensor | None = None,
    *,
    titles: Sequence[str] | None = None,
    absolute: bool = False,
) -> Figure:
    """One row per clip: the frame (``images`` (N, 3, H, W) in [0, 1]), the map ``(N, H,
    W)`` over it (jet, half transparent), and the ground truth ``(N, H, W)`` when given
    (the sounding objects in white, the rest dimmed). Maps are cosines: with ``absolute``
    each is drawn on the fixed scale [-1, 1], so a weak map looks weak (the negatives'
    figure); otherwise from its own minimum to its maximum (what the protocols
    binarise). ``titles``: one per row, over the overlay."""
    if images.ndim != 4 or maps.ndim != 3 or len(images) != len(maps):
        raise ParameterError(
            f"images must be (N, 3, H, W) and maps (N, H, W). Found {tuple(images.shape)} "
            f"and {tuple(maps.shape)}"
        )
    if images.shape[-2:] != maps.shape[-2:]:
        raise ParameterError(
            f"maps must be at the images' size {tuple(images.shape[-2:])}. Found "
            f"{tuple(maps.shape[-2:])}"
        )
    if titles is not None and len(titles) != len(maps):
        raise ParameterError(f"titles must name each of the {len(maps)} rows. Found {len(titles)}")
    n, cols = len(maps), 2 if truth is None else 3
    fig = Figure(figsize=(1.6 * cols, 1.6 * n), layout="constrained")
    axes = fig.subplots(n, cols, squeeze=False)
    for r in range(n):
        frame = _image(images[r])
        m = maps[r].float()
        low, high = (-1.0, 1.0) if absolute else (float(m.min()), float(m.max()))
        axes[r, 0].imshow(frame)
        axes[r, 1].imshow(frame)
        axes[r, 1].imshow(m.numpy(), cmap="jet", alpha=0.5, vmin=low, vmax=high)
        axes[r, 1].set_title(titles[r] if titles else "where the sound is", fontsize=7)
        if r == 0:
            axes[r, 0].set_title("frame", fontsize=7)
        if truth is not None:
            shown = frame * (0.25 + 0.75 * truth[r].float().clamp(0, 1)[..., None].numpy())
            axes[r, 2].imshow(shown)
            if r == 0:
                axes[r, 2].set_title("sounding objects", fontsize=7)
        for ax in axes[r]:
            ax.axis("off")
    return fig
