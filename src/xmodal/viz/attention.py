"""Where a captioning model looked: the per-word attention figure of Show, Attend and Tell.

:func:`plot_caption_attention` draws the image with its caption, then one panel per
generated word showing that word's attention map over the image. A map of ``(h, w)``
weights over the encoder's feature grid is upsampled to the image size by bilinear
interpolation (``align_corners=False``: each weight sits on the centre of its grid cell),
the same upsampling :func:`xmodal.metrics.grounding.attention_grounding` scores, so
the brightest spot of a panel is the pixel the metric checks. The paper smoothed its
maps with a Gaussian pyramid expansion instead; bilinear keeps the figure honest about
the grid's resolution.

The figure is made without pyplot, so it needs no display and touches no global state.

Example:
    >>> out = model.generate(image[None], return_attention=True)   # words, (T, 8, 8)
    >>> fig = plot_caption_attention(image, words, alphas)
    >>> fig.savefig("attention.png")
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from xmodal._checks import as_signal, check_positive_int
from xmodal.errors import ParameterError

__all__ = ["plot_caption_attention", "plot_captioned_image", "upsample_attention"]

_OVERLAY_ALPHA = 0.6


def _image(image) -> np.ndarray:
    """``(H, W, 3)`` float in [0, 1] from a ``(3, H, W)`` uint8 or float image."""
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(image)
    if not isinstance(image, torch.Tensor):
        raise ParameterError(
            f"image must be a torch.Tensor or numpy.ndarray. Found: {type(image).__name__}"
        )
    if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] == 0 or image.shape[2] == 0:
        raise ParameterError(f"image must have shape (3, H, W). Found {tuple(image.shape)}")
    if image.dtype == torch.uint8:
        image = image.float() / 255.0
    else:
        image = as_signal(image, "image", min_ndim=3).float()
        lo, hi = float(image.min()), float(image.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ParameterError(
                f"a float image must lie in [0, 1]. Found values in [{lo:.3g}, {hi:.3g}] "
                "(undo any normalization by mean and std before plotting)"
            )
    return image.clamp(0, 1).permute(1, 2, 0).detach().cpu().numpy()


def upsample_attention(alphas, size: tuple[int, int]) -> torch.Tensor:
    """Attention maps ``(T, h, w)`` upsampled to ``(T, H, W)`` by bilinear interpolation
    (``align_corners=False``), as the figure and the grounding metric show them."""
    alphas = as_signal(alphas, "alphas")
    if alphas.ndim != 3:
        raise ParameterError(f"alphas must have shape (T, h, w). Found {tuple(alphas.shape)}")
    up = F.interpolate(
        alphas[:, None].float(), size=tuple(size), mode="bilinear", align_corners=False
    )
    return up[:, 0]


def plot_captioned_image(image, text: str) -> Figure:
    """The image titled with its caption: the figure of a model without attention
    (Show and Tell). ``image``: ``(3, H, W)`` uint8 or float in [0, 1]."""
    fig = Figure(figsize=(3, 3.3))
    ax = fig.add_subplot()
    ax.imshow(_image(image))
    ax.set_title(text, fontsize=8, wrap=True)
    ax.axis("off")
    return fig


def plot_caption_attention(
    image, words, alphas, *, ncols: int = 5, title: str | None = None
) -> Figure:
    """The image with its caption, then each word's attention map over the image.

    Args:
        image: ``(3, H, W)`` uint8 or float in [0, 1] (tensor or array).
        words: the generated words, one panel each.
        alphas: ``(T, h, w)`` attention weights, one map per generation step,
            ``T >= len(words)`` (steps beyond the words, such as ``<end>``, are not drawn).
        ncols: panels per row.
        title: a title over the whole figure.

    Returns:
        A :class:`matplotlib.figure.Figure` with ``len(words) + 1`` image panels: the
        first titled with the caption, then each titled with its word and drawn as the
        image under the word's upsampled map (gray, from 0 to the map's maximum, 60%
        opaque): bright where the model looked.

    Raises:
        ParameterError: an image not ``(3, H, W)`` or a float image outside [0, 1];
            ``alphas`` not ``(T, h, w)``, with fewer steps than words, or not finite;
            words that are not strings.
    """
    img = _image(image)
    if isinstance(words, str) or not isinstance(words, (list, tuple)):
        raise ParameterError(
            f"words must be a list of words (caption.split()). Found: {type(words).__name__}"
        )
    for i, w in enumerate(words):
        if not isinstance(w, str):
            raise ParameterError(f"words[{i}] must be a string. Found: {w!r}")
    if isinstance(alphas, np.ndarray):
        alphas = torch.from_numpy(alphas)
    alphas = as_signal(alphas, "alphas")
    if alphas.ndim != 3 or alphas.shape[0] < len(words):
        raise ParameterError(
            f"alphas must have shape (T, h, w) with T >= {len(words)} words. "
            f"Found {tuple(alphas.shape)}"
        )
    ncols = check_positive_int(ncols, "ncols")
    if title is not None and not isinstance(title, str):
        raise ParameterError(f"title must be a string or None. Found: {title!r}")

    H, W = img.shape[:2]
    maps = upsample_attention(alphas[: len(words)], (H, W)).detach().cpu().numpy()
    panels = len(words) + 1
    cols = min(ncols, panels)
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(2.2 * cols, 2.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    extent = (0, W, H, 0)  # the map and the image share pixel coordinates
    axes[0].imshow(img, extent=extent, interpolation="nearest")
    axes[0].set_title(" ".join(words), fontsize=8, wrap=True)
    for ax, word, alpha in zip(axes[1:], words, maps, strict=False):
        ax.imshow(img, extent=extent, interpolation="nearest")
        top = float(alpha.max())
        ax.imshow(
            alpha, cmap="gray", vmin=0.0, vmax=top if top > 0 else 1.0,
            alpha=_OVERLAY_ALPHA, extent=extent, interpolation="nearest",
        )  # fmt: skip
        ax.set_title(word, fontsize=10)
    for ax in axes:
        ax.set_axis_off()
    for ax in axes[panels:]:
        fig.delaxes(ax)
    if title is not None:
        fig.suptitle(title)
    return fig
