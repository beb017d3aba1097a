"""A contact sheet of world samples: look at what a model will be trained on.

``preview(world, "scenes")`` draws a grid of shapes scenes, each with its first caption
above it, one question and answer below it and a mel spectrogram strip of its sound;
``preview(world, "places")`` draws place samples with their class and the spectrogram of
their ambience. Figures are made without pyplot, so nothing here touches global state or
needs a display.

Example:
    >>> fig = preview(World(seed=0), "scenes", n=16)
    >>> fig.savefig("scenes.png", dpi=120)
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from xmodal._checks import check_positive_int
from xmodal.audio import functional as F
from xmodal.errors import ParameterError
from xmodal.world.core import World
from xmodal.world.schema import SPLITS

__all__ = ["DOMAINS", "preview"]

DOMAINS: tuple[str, ...] = ("scenes", "places")
# Beyond this many panels the text is unreadable at any figure size.
_MAX_PANELS = 256
_N_MELS = 40
_WRAP = 30  # characters per line of text under a 64-pixel image at the default size


def _mel_db(audio, sr: int) -> np.ndarray:
    M = F.melspectrogram(audio, sr=sr, n_mels=_N_MELS)
    return F.power_to_db(M, ref=float(M.max()) or 1.0, top_db=80.0).numpy()


def _strip(ax: Axes, audio, sr: int, label: str) -> None:
    # A plain image (not pcolormesh): dozens of strips stay cheap to draw.
    ax.imshow(_mel_db(audio, sr), origin="lower", aspect="auto", cmap="magma",
              extent=(0, len(audio) / sr, 0, _N_MELS))  # fmt: skip
    ax.set_label(label)
    ax.set_yticks([])
    ax.tick_params(axis="x", labelsize=6, length=2, pad=1)


def _grid(n: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def preview(world: World, domain: str, *, n: int = 16, split: str = "train") -> Figure:
    """A grid of the first ``n`` samples of ``domain`` in ``split``.

    Args:
        world: the :class:`~xmodal.world.World` to draw from.
        domain: ``"scenes"`` (image, first caption, one question with its answer, mel
            spectrogram of the mixture) or ``"places"`` (image, class, mel spectrogram of
            the ambience).
        n: how many samples, indices ``0 .. n - 1``.
        split: the world split.

    Returns:
        A matplotlib Figure. Each sample has an image axes labelled
        ``"image:{split}:{index}"`` whose title is the caption (scenes) or class (places),
        and a spectrogram axes labelled ``"spectrogram:{split}:{index}"``.
    """
    if not isinstance(world, World):
        raise ParameterError(f"world must be an xmodal.world.World. Found: {type(world).__name__}")
    if domain not in DOMAINS:
        raise ParameterError(
            f"unknown domain {domain!r}; the domains are {', '.join(DOMAINS)} "
            f"(faces, voices and recipes are coming)"
        )
    n = check_positive_int(n, "n")
    if n > _MAX_PANELS:
        raise ParameterError(f"n must be at most {_MAX_PANELS}. Found: {n}")
    if split not in SPLITS:
        raise ParameterError(f"unknown split {split!r}; the splits are {SPLITS}")
    if split == "compositional" and not world.config.compositional:
        raise ParameterError("split 'compositional' exists only in World(compositional=True)")

    rows, cols = _grid(n)
    scenes = domain == "scenes"
    # Scenes carry two lines of caption and two of Q/A; places just a class name.
    cell_h = 3.4 if scenes else 2.4
    fig = Figure(figsize=(2.3 * cols, cell_h * rows), layout="constrained")
    outer = fig.add_gridspec(rows, cols)
    sr = world.config.sample_rate
    for i in range(n):
        cell = outer[i // cols, i % cols].subgridspec(2, 1, height_ratios=(4, 1), hspace=0.05)
        ax_img = fig.add_subplot(cell[0])
        ax_snd = fig.add_subplot(cell[1])
        if scenes:
            scene = world.scene(split, i)
            image, audio = scene.image, scene.audio
            title = textwrap.fill(scene.captions[0], _WRAP)
            qa = scene.questions[0] if scene.questions else None
            note = "" if qa is None else textwrap.fill(f"Q: {qa.question} A: {qa.answer}", _WRAP)
            ax_img.set_xlabel(note, fontsize=6.5, labelpad=2)
        else:
            sample = world.place(split, i)
            image, audio = sample.image, sample.audio
            title = sample.place
        ax_img.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax_img.set_title(title, fontsize=7)
        ax_img.set_label(f"image:{split}:{i}")
        ax_img.set_xticks([])
        ax_img.set_yticks([])
        _strip(ax_snd, audio, sr, f"spectrogram:{split}:{i}")
    what = "shapes scenes" if scenes else "places"
    fig.suptitle(f"world seed {world.seed}: {what}, {split} 0..{n - 1}", fontsize=9)
    return fig
