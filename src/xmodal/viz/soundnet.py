"""What a SoundNet student hears beside what its teacher sees: a frame and, per head,
the teacher's posterior (from the frame) and the student's (from the sound alone) as bars
(:func:`plot_posteriors`); the transfer accuracy of each layer (:func:`plot_transfer`).
Made without pyplot.

Example:
    >>> fig = plot_posteriors(image, {"places": (teacher_p, student_p, place_names)})
    >>> save_figure(fig, "posteriors.png")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from xmodal.errors import ParameterError

__all__ = ["plot_posteriors", "plot_transfer"]


def plot_posteriors(
    image: torch.Tensor,
    heads: Mapping[str, tuple[torch.Tensor, torch.Tensor, Sequence[str]]],
    *,
    top: int = 8,
    title: str = "",
) -> Figure:
    """``image`` (3, H, W) in [0, 1] or uint8; ``heads`` maps a head's name to ``(teacher
    (K,), student (K,), class names)``, two distributions over its K classes. One panel
    for the image, then one per head: the ``top`` classes by the larger of the two
    posteriors, teacher and student bars side by side."""
    fig = Figure(figsize=(3.0 + 3.2 * len(heads), 2.8), layout="constrained")
    axes = fig.subplots(1, 1 + len(heads), squeeze=False)[0]
    picture = image.detach().float()
    picture = picture / 255.0 if image.dtype == torch.uint8 else picture
    axes[0].imshow(picture.clamp(0, 1).permute(1, 2, 0).cpu().numpy())
    axes[0].set_title(title or "the frame", fontsize=9)
    axes[0].axis("off")
    for ax, (name, (teacher, student, names)) in zip(axes[1:], heads.items(), strict=True):
        t, s = teacher.detach().float().cpu(), student.detach().float().cpu()
        if t.shape != s.shape or t.ndim != 1 or len(names) != len(t):
            raise ParameterError(
                f"head {name!r}: teacher and student must be (K,) with K={len(names)} names. "
                f"Found {tuple(t.shape)} and {tuple(s.shape)}"
            )
        keep = torch.maximum(t, s).argsort(descending=True)[:top].tolist()
        x = np.arange(len(keep))
        ax.barh(x - 0.2, t[keep].numpy(), height=0.4, label="teacher (frame)")
        ax.barh(x + 0.2, s[keep].numpy(), height=0.4, label="student (sound)")
        ax.set_yticks(x, [names[k] for k in keep], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=6, loc="lower right")
    return fig


def plot_transfer(result: Mapping) -> Figure:
    """SoundNet's transfer experiment as bars: the linear classifier's accuracy on each
    layer's features (``result["layers"]``, the heads included), the MFCC baseline
    (``mfcc_acc``) and chance (``chance``) as lines, the best layer marked."""
    layers = result["layers"]
    names = list(layers)
    fig = Figure(figsize=(1.0 + 0.75 * len(names), 3.0), layout="constrained")
    ax = fig.subplots()
    colours = ["tab:orange" if n == result.get("best_layer") else "tab:blue" for n in names]
    ax.bar(names, [layers[n] for n in names], color=colours)
    ax.axhline(result["mfcc_acc"], color="tab:green", linestyle="--", label="MFCC statistics")
    ax.axhline(result["chance"], color="grey", linestyle=":", label="chance")
    ax.set_ylabel("accuracy (%, 5 folds)")
    ax.set_ylim(0, 100)
    ax.set_title(f"transfer: {result['source']} ({result['n_classes']} classes)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return fig
