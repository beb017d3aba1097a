"""Frames and sounds in one space: the joint space projected to two dimensions, coloured
by place (:func:`plot_joint_space`), and the frames nearest to query sounds
(:func:`plot_sound_to_frames`). Made without pyplot.

Example:
    >>> fig = plot_joint_space(image_vectors, sound_vectors, places, names)
    >>> save_figure(fig, "joint.png")
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.figure import Figure

from xmodal.errors import ParameterError

__all__ = ["plot_joint_space", "plot_sound_to_frames"]


def plot_joint_space(
    images: torch.Tensor, sounds: torch.Tensor, places: torch.Tensor, names: Sequence[str]
) -> Figure:
    """``images`` and ``sounds`` ``(N, D)`` vectors of the same N clips, ``places`` (N,)
    their class: both projected by one PCA (fit on all 2N vectors), frames as dots and
    sounds as crosses, coloured by place."""
    if images.shape != sounds.shape or images.ndim != 2 or len(places) != len(images):
        raise ParameterError(
            f"images and sounds must be (N, D) and places (N,). Found {tuple(images.shape)}, "
            f"{tuple(sounds.shape)}, {tuple(places.shape)}"
        )
    both = torch.cat([images, sounds]).double()
    centred = both - both.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    xy = (centred @ v[:2].T).numpy()
    n = len(images)
    fig = Figure(figsize=(5.4, 4.2), layout="constrained")
    ax = fig.subplots()
    colours = [f"C{k % 10}" for k in range(len(names))]
    for k, name in enumerate(names):
        mine = (places == k).numpy()
        if not mine.any():
            continue
        ax.scatter(xy[:n][mine, 0], xy[:n][mine, 1], s=10, color=colours[k], marker="o",
                   label=name, alpha=0.6)  # fmt: skip
        ax.scatter(xy[n:][mine, 0], xy[n:][mine, 1], s=14, color=colours[k], marker="x",
                   alpha=0.6)  # fmt: skip
    ax.set_title("frames (o) and sounds (x), PCA of the joint space", fontsize=9)
    ax.legend(fontsize=6, markerscale=1.5, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def plot_sound_to_frames(
    frames: torch.Tensor,
    top: torch.Tensor,
    queries: Sequence[int],
    places: torch.Tensor,
    names: Sequence[str],
) -> Figure:
    """One row per query sound (clip ``queries[r]``): its place, then the frames ``top[r]``
    nearest to it (``frames`` (N, 3, H, W) in [0, 1]), each titled with its place, in green
    when it is the query's place and red otherwise; the query's own frame is marked."""
    rows, k = top.shape
    fig = Figure(figsize=(1.3 * (k + 1), 1.4 * rows), layout="constrained")
    axes = fig.subplots(rows, k + 1, squeeze=False)
    for r, q in enumerate(queries):
        want = int(places[q])
        axes[r, 0].text(0.5, 0.5, f"sound {q}\n({names[want]})", ha="center", va="center",
                        fontsize=8)  # fmt: skip
        axes[r, 0].axis("off")
        for c, j in enumerate(top[r].tolist()):
            ax = axes[r, c + 1]
            ax.imshow(frames[j].clamp(0, 1).permute(1, 2, 0).numpy())
            same = int(places[j]) == want
            own = " (its own)" if j == q else ""
            ax.set_title(f"{names[int(places[j])]}{own}", fontsize=7,
                         color="green" if same else "red")  # fmt: skip
            ax.axis("off")
    return fig
