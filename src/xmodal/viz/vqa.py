"""Where a VQA model looked: an image with its question and answer, then each attention
hop of a stacked-attention model over it.

The maps ``(hops, h, w)`` over the encoder's feature grid are upsampled bilinearly to the
image size, as :mod:`xmodal.viz.attention` shows caption attention. The figure is made
without pyplot, so it needs no display and touches no global state.

Example:
    >>> fig = plot_vqa_attention(image, "what colour is the circle?", "red", "red", maps)
    >>> save_figure(fig, "vqa.png")
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from xmodal.viz.attention import upsample_attention

__all__ = ["plot_vqa_attention"]


def plot_vqa_attention(
    image: torch.Tensor,
    question: str,
    predicted: str,
    truth: str | None = None,
    attention: torch.Tensor | None = None,
) -> Figure:
    """The image ``(3, H, W)`` in [0, 1] titled with the predicted answer (and the true
    one, red where they differ), then each attention hop ``(hops, h, w)`` over it; the
    question above all. Returns a :class:`matplotlib.figure.Figure`."""
    img = image.detach().cpu().float().clamp(0, 1).permute(1, 2, 0).numpy()
    H, W = img.shape[:2]
    maps = []
    if attention is not None:
        maps = list(upsample_attention(attention.detach().cpu().float(), (H, W)).numpy())
    fig = Figure(figsize=(2.4 * (1 + len(maps)), 2.8), layout="constrained")
    axes = fig.subplots(1, 1 + len(maps), squeeze=False)[0]
    extent = (0, W, H, 0)
    axes[0].imshow(img, extent=extent, interpolation="nearest")
    answer = f"answer: {predicted}" + (f" (true: {truth})" if truth is not None else "")
    axes[0].set_title(answer, fontsize=8, color="black" if truth in (None, predicted) else "red")
    for k, (ax, alpha) in enumerate(zip(axes[1:], maps, strict=True)):
        ax.imshow(img, extent=extent, interpolation="nearest")
        top = float(alpha.max())
        ax.imshow(alpha, cmap="gray", vmin=0.0, vmax=top if top > 0 else 1.0, alpha=0.6,
                  extent=extent, interpolation="nearest")  # fmt: skip
        ax.set_title(f"hop {k + 1}", fontsize=8)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(question, fontsize=9)
    return fig
