"""A contact sheet of world samples: look at what a model will be trained on.

``preview(world, "scenes")`` draws a grid of shapes scenes, each with its first caption
above it, one question and answer below it and a mel spectrogram strip of its sound;
``preview(world, "places")`` draws place samples with their class and the spectrogram of
their ambience; ``"faces"`` draws people with their sex, age and voice settings and, for
the first one, a strip of talking-face frames with the spectrogram of the speech;
``"recipes"`` draws dishes with their title and first instructions. Figures are made
without pyplot, so nothing here touches global state or needs a display.

Example:
    >>> fig = preview(World(seed=0), "scenes", n=16)
    >>> fig.savefig("scenes.png", dpi=120)
"""

from __future__ import annotations

import math
import os
import textwrap

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from xmodal._checks import check_positive_int
from xmodal.audio import functional as F
from xmodal.errors import ParameterError
from xmodal.world.core import World
from xmodal.world.schema import SPLITS

__all__ = ["DOMAINS", "frame_indices", "preview"]

DOMAINS: tuple[str, ...] = ("scenes", "places", "faces", "recipes")
# Beyond this many panels the text is unreadable at any figure size.
_MAX_PANELS = 256
_N_MELS = 40
_WRAP = 30  # characters per line of text under a 64-pixel image at the default size
_N_STRIP = 8  # talking-face frames shown for the first person
_N_STEPS = 2  # recipe instructions shown under a dish


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


def _image(ax: Axes, image, title: str, label: str, note: str = "") -> None:
    ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")  # (3, H, W) -> (H, W, 3)
    ax.set_title(title, fontsize=7)
    ax.set_xlabel(note, fontsize=6.5, labelpad=2)
    ax.set_label(label)
    ax.set_xticks([])
    ax.set_yticks([])


def frame_indices(n_frames: int, k: int = _N_STRIP) -> np.ndarray:
    """The ``k`` talking-face frames the faces preview shows: evenly spaced over the clip."""
    return np.unique(np.linspace(0, n_frames - 1, min(k, n_frames)).round().astype(int))


def _voice_note(voice) -> str:
    return f"voice {voice.variant}, pitch {voice.pitch}, rate {voice.rate}"


def preview(
    world: World, domain: str, *, n: int = 16, split: str = "train", cache_dir=None
) -> Figure:
    """A grid of the first ``n`` samples of ``domain`` in ``split``.

    Args:
        world: the :class:`~xmodal.world.World` to draw from.
        domain: ``"scenes"`` (image, first caption, one question with its answer, mel
            spectrogram of the mixture), ``"places"`` (image, class, mel spectrogram of
            the ambience), ``"faces"`` (face, sex and age, voice settings; below the grid,
            person 0 saying sentence 0 as a strip of talking-face frames and the mel
            spectrogram of the speech) or ``"recipes"`` (dish picture, title, the first
            instructions).
        n: how many samples (people for ``"faces"``), indices ``0 .. n - 1``.
        split: the world split.
        cache_dir: the speech cache folder of :mod:`xmodal.world.voices` (``"faces"``
            only); ``None`` for its default.

    Returns:
        A matplotlib Figure. Each sample has an image axes labelled
        ``"image:{split}:{index}"`` whose title is the caption (scenes), class (places),
        ``"{sex}, {age}"`` (faces) or recipe title (recipes). Scenes and places have a
        spectrogram axes per sample labelled ``"spectrogram:{split}:{index}"``; faces
        have one ``"frames:{split}:0"`` axes (frames :func:`frame_indices` of the
        utterance side by side) and one ``"spectrogram:{split}:0"`` of its speech.
    """
    if not isinstance(world, World):
        raise ParameterError(f"world must be an xmodal.world.World. Found: {type(world).__name__}")
    if domain not in DOMAINS:
        raise ParameterError(f"unknown domain {domain!r}; the domains are {', '.join(DOMAINS)}")
    n = check_positive_int(n, "n")
    if n > _MAX_PANELS:
        raise ParameterError(f"n must be at most {_MAX_PANELS}. Found: {n}")
    if split not in SPLITS:
        raise ParameterError(f"unknown split {split!r}; the splits are {SPLITS}")
    if split == "compositional" and not world.config.compositional:
        raise ParameterError("split 'compositional' exists only in World(compositional=True)")
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise ParameterError(f"cache_dir must be None, a str or os.PathLike. Found: {cache_dir!r}")

    rows, cols = _grid(n)
    # Scenes carry two lines of caption and two of Q/A, recipes a title and three lines
    # of instructions; places and faces a line or two.
    cell_h = {"scenes": 3.4, "places": 2.4, "faces": 2.6, "recipes": 3.0}[domain]
    faces = domain == "faces"
    width = 2.3 * max(cols, 3 if faces else 1)
    # Faces get one more row for the talking face, sized in inches so the frame strip
    # (k frames side by side) and the speech spectrogram below it leave no gap.
    frames_h, speech_h = width / _N_STRIP + 0.35, 1.0
    heights = (cell_h,) * rows + ((frames_h + speech_h,) if faces else ())
    fig = Figure(figsize=(width, sum(heights)), layout="constrained")
    outer = fig.add_gridspec(len(heights), cols, height_ratios=heights)
    sr = world.config.sample_rate
    for i in range(n):
        cell = outer[i // cols, i % cols]
        label = f"image:{split}:{i}"
        if domain == "recipes":
            recipe = world.recipe(split, i)
            steps = textwrap.fill(" ".join(recipe.instructions[:_N_STEPS]), _WRAP)
            _image(fig.add_subplot(cell), recipe.image, textwrap.fill(recipe.title, _WRAP),
                   label, steps)  # fmt: skip
            continue
        if faces:
            person = world.identity(split, i)
            _image(fig.add_subplot(cell), world.face(split, i), f"{person.sex}, {person.age}",
                   label, _voice_note(person.voice))  # fmt: skip
            continue
        cell = cell.subgridspec(2, 1, height_ratios=(4, 1), hspace=0.05)
        ax_img, ax_snd = fig.add_subplot(cell[0]), fig.add_subplot(cell[1])
        if domain == "scenes":
            scene = world.scene(split, i)
            image, audio = scene.image, scene.audio
            title = textwrap.fill(scene.captions[0], _WRAP)
            qa = scene.questions[0] if scene.questions else None
            note = "" if qa is None else textwrap.fill(f"Q: {qa.question} A: {qa.answer}", _WRAP)
        else:
            sample = world.place(split, i)
            image, audio, title, note = sample.image, sample.audio, sample.place, ""
        _image(ax_img, image, title, label, note)
        _strip(ax_snd, audio, sr, f"spectrogram:{split}:{i}")
    if faces:
        talk = world.utterance(split, 0, 0, cache_dir=cache_dir)
        cell = outer[rows, :].subgridspec(2, 1, height_ratios=(frames_h, speech_h))
        ax_frames, ax_snd = fig.add_subplot(cell[0]), fig.add_subplot(cell[1])
        picked = talk.frames[torch.from_numpy(frame_indices(len(talk.frames)))]
        strip = torch.cat(list(picked), dim=2)  # (k, 3, H, W) -> (3, H, k * W)
        title = textwrap.fill(f"person 0 says: {talk.text}", _WRAP * max(cols, 3))
        _image(ax_frames, strip, title, f"frames:{split}:0")
        _strip(ax_snd, talk.audio, talk.sample_rate, f"spectrogram:{split}:0")
    what = {"scenes": "shapes scenes", "places": "places", "faces": "faces and voices",
            "recipes": "recipes"}[domain]  # fmt: skip
    fig.suptitle(f"world seed {world.seed}: {what}, {split} 0..{n - 1}", fontsize=9)
    return fig
