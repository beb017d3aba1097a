"""Where a VQA model looked: an image with its question and answer, then each attention
hop of a stacked-attention model over it (:func:`plot_vqa_attention`); a few questions of
a split drawn so, named by image and question family (:func:`plot_vqa_examples`).

The maps ``(hops, h, w)`` over the encoder's feature grid are upsampled bilinearly to the
image size, as :mod:`xmodal.viz.attention` shows caption attention. The figure is made
without pyplot, so it needs no display and touches no global state.

Example:
    >>> fig = plot_vqa_attention(image, "what colour is the circle?", "red", "red", maps)
    >>> save_figure(fig, "vqa.png")
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence

import torch
from matplotlib.figure import Figure

from xmodal.errors import ParameterError
from xmodal.viz.attention import upsample_attention

__all__ = ["plot_vqa_attention", "plot_vqa_examples"]


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


def plot_vqa_examples(
    split,
    shown: Sequence[int],
    predicted: Sequence[str],
    attention: Mapping[int, torch.Tensor] | None = None,
    *,
    prefix: str = "vqa",
) -> dict[str, Figure]:
    """:func:`plot_vqa_attention` of question ``shown[g]`` of ``split`` (a
    :class:`~xmodal.data.questions.QuestionSplit`) over image ``g``, for each ``g``: the
    ``predicted[g]`` answer, the true one (the most frequent human answer) and the
    question's maps in ``attention`` (by question index, where there are). Named
    ``<prefix>_<g>_<family>``, the family's non-word characters as ``_`` (``yes/no`` ->
    ``yes_no``)."""
    if len(predicted) != len(shown):
        raise ParameterError(
            f"predicted must hold one answer per shown question ({len(shown)}). "
            f"Found {len(predicted)}"
        )
    attention = {} if attention is None else attention
    figures = {}
    for g, (i, answer) in enumerate(zip(shown, predicted, strict=True)):
        truth = Counter(split.answers[i]).most_common(1)[0][0]
        family = re.sub(r"[^\w-]+", "_", split.families[i])
        figures[f"{prefix}_{g}_{family}"] = plot_vqa_attention(
            split.image(g), split.questions[i], answer, truth, attention.get(i)
        )
    return figures
