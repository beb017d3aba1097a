"""The short fits around the GAN of :mod:`xmodal.translation.text_to_image`.

Before the GAN: D's colour and shape classifiers (TAC-GAN) learn the real images' labels,
and the sentence encoder learns in a small joint embedding, as Reed et al. pre-train
theirs. After it: :class:`AttributeClassifier`, the judge of its images, learns the same
labels. Each ``*_loss`` is one step's loss on a batch drawn from ``generator``; each
``*_objective`` gives what a loop such as :func:`xmodal.engine.fit.fit_steps` needs, the
parameters to train and ``step(k)``, its batches drawn from a generator seeded with
``seed``, so the global random state (hence the GAN's training) is the same with or
without the fit::

    params, step = attribute_judge_objective(judge, images, scenes, seed=0)
    fit_steps(torch.optim.Adam(params, lr=2e-3), step, steps=1500, modules=[judge])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import check_positive_int
from xmodal.data.scenes import attribute_classes, class_attributes, named_attributes
from xmodal.translation.text_to_image import Discriminator, aux_loss, diff_augment
from xmodal.world import COLOURS, SHAPES

__all__ = [
    "AttributeClassifier",
    "attribute_judge_loss",
    "attribute_judge_objective",
    "classifier_pretrain_loss",
    "classifier_pretrain_objective",
    "sentence_pretrain_loss",
    "sentence_pretrain_objective",
]

Step = Callable[[int], torch.Tensor]  # step k -> its loss


class AttributeClassifier(nn.Module):
    """A small CNN (``small-cnn``, :mod:`xmodal.vision.encoders`) with a colour and a
    shape head: the judge of generated images. ``forward(images (B, 3, H, W))`` →
    ``(colour logits (B, n_colours), shape logits (B, n_shapes))``."""

    def __init__(self, n_colours: int, n_shapes: int, *, channels: int = 64) -> None:
        super().__init__()
        from xmodal.vision.encoders import create_encoder

        n_colours = check_positive_int(n_colours, "n_colours", minimum=2)
        n_shapes = check_positive_int(n_shapes, "n_shapes", minimum=2)
        self.encoder = create_encoder("small-cnn", channels=channels)
        self.colour = nn.Linear(channels, n_colours)
        self.shape = nn.Linear(channels, n_shapes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.encoder(images)  # (B, C)
        return self.colour(v), self.shape(v)


# ----------------------------------------------------------------------------- one step's loss


def classifier_pretrain_loss(
    discriminator: Discriminator,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    batch_size: int,
    augment: str = "none",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, list[float]]:
    """The discriminator's classifiers on real images before the GAN starts: ``batch_size``
    of ``images`` ``(N, 3, S, S)`` uint8, drawn with replacement, through
    :func:`diff_augment`; :func:`aux_loss` against ``targets`` ``(A, N)`` (one row per
    classifier). Returns ``(loss, per-classifier terms)``."""
    idx = torch.randint(len(images), (batch_size,), generator=generator)
    x = diff_augment(images[idx].float() / 255, augment, generator=generator)
    text = torch.zeros(1, discriminator.project[0].in_features)  # unused by the classifiers
    _, heads = discriminator(x, text.expand(len(idx), -1), aux=True)
    return aux_loss(heads, list(targets[:, idx]))


def attribute_judge_loss(
    judge: AttributeClassifier,
    images: torch.Tensor,
    colour: torch.Tensor,
    shape: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """The judge's cross entropy (colour + shape) on ``batch_size`` of ``images`` ``(N, 3, S,
    S)`` drawn with replacement, the batch mirrored left-right half of the time (the
    world's shapes are symmetric); ``colour`` and ``shape`` ``(N,)`` are the targets."""
    idx = torch.randint(len(images), (batch_size,), generator=generator)
    x = images[idx]
    if torch.rand((), generator=generator) < 0.5:
        x = x.flip(-1)
    lc, ls = judge(x)
    return F.cross_entropy(lc, colour[idx]) + F.cross_entropy(ls, shape[idx])


def sentence_pretrain_loss(
    joint: nn.Module,
    images: torch.Tensor,
    captions: Sequence[Sequence[str]],
    vocab,
    *,
    generator: torch.Generator | None = None,
    batch_size: int = 64,
    heads: Sequence = (),
    named=None,
    weight: float = 0.0,
) -> torch.Tensor:
    """A joint embedding's InfoNCE loss on ``batch_size`` distinct images of ``images`` with
    one of their ``captions`` each (drawn from ``generator``), as Reed et al. pre-train the
    sentence encoder. ``joint(images, tokens, lengths)`` gives unit ``(B, D)`` image and
    text vectors, ``joint.logit_scale()`` the scale (e.g. :class:`~xmodal.matching.
    JointEmbedding`); ``vocab`` encodes the captions. With ``heads`` (linear layers on the
    text vector): plus ``weight`` times their :func:`aux_loss` against ``named(i, caption)``,
    the attributes caption of image ``i`` names (``-1``: not named)."""
    from xmodal.nn.losses import info_nce_loss

    idx = torch.randperm(len(images), generator=generator)[:batch_size].tolist()
    pick = torch.randint(5, (len(idx),), generator=generator).tolist()
    texts = [captions[i][p % len(captions[i])] for i, p in zip(idx, pick, strict=True)]
    img, txt = joint(images[idx], *vocab.encode_batch(texts))
    loss = info_nce_loss(img, txt, joint.logit_scale())
    if heads:
        targets = torch.tensor([named(i, t) for i, t in zip(idx, texts, strict=True)])
        loss = loss + weight * aux_loss([h(txt) for h in heads], list(targets.T))[0]
    return loss


# ----------------------------------------------------------------------------- objectives


def classifier_pretrain_objective(
    discriminator: Discriminator,
    images: torch.Tensor,
    scenes: Sequence,
    batch_size: int,
    *,
    augment: str = "none",
    seed: int = 0,
) -> tuple[list[nn.Parameter], Step, dict[str, float]]:
    """D's classifiers on the labels of real single-object ``scenes`` (their ``images``
    ``(N, 3, S, S)`` uint8): :func:`classifier_pretrain_loss` against each scene's colour
    and shape. Returns ``(params, step, last)``: D's encoder and classifiers (only the
    layers under the classifiers' map get gradients), the step, and a dict each step
    fills with its ``colour`` and ``shape`` terms."""
    truth = torch.stack(class_attributes(attribute_classes(scenes)))  # (2, N)
    params = [*discriminator.encode.parameters(), *discriminator.aux.parameters()]
    gen = torch.Generator().manual_seed(seed)
    last: dict[str, float] = {}

    def step(_: int) -> torch.Tensor:
        loss, parts = classifier_pretrain_loss(
            discriminator, images, truth, batch_size=batch_size, augment=augment, generator=gen
        )
        last.update(zip(("colour", "shape"), parts, strict=True))
        return loss

    return params, step, last


def attribute_judge_objective(
    judge: AttributeClassifier, images: torch.Tensor, scenes: Sequence, *, seed: int = 0
) -> tuple[list[nn.Parameter], Step]:
    """The judge on real single-object ``scenes`` (their ``images`` ``(N, 3, S, S)``):
    :func:`attribute_judge_loss` against each scene's colour and shape."""
    colour, shape = class_attributes(attribute_classes(scenes))
    gen = torch.Generator().manual_seed(seed)

    def step(_: int) -> torch.Tensor:
        return attribute_judge_loss(judge, images, colour, shape, generator=gen)

    return list(judge.parameters()), step


def sentence_pretrain_objective(
    joint: nn.Module,
    images: torch.Tensor | None,
    scenes: Sequence,
    vocab,
    *,
    seed: int = 0,
    text_aux: float = 0.0,
) -> tuple[list[nn.Parameter], Step]:
    """A joint embedding (e.g. :class:`~xmodal.matching.JointEmbedding`, with ``embed_dim``)
    on ``images`` and their single-object ``scenes``' captions: :func:`sentence_pretrain_loss`;
    ``text_aux > 0``: plus that weight times the cross entropy of linear heads on the
    sentence for the colour and shape each caption names (:func:`~xmodal.data.scenes.
    named_attributes`). The heads are made from a copy of the global random state, which
    stays as without them; they are trained (in ``params``) and then dropped."""
    captions = [s.captions for s in scenes]
    gen = torch.Generator().manual_seed(seed)
    params, heads = list(joint.parameters()), ()
    if text_aux > 0:
        with torch.random.fork_rng():
            heads = nn.ModuleList(
                [nn.Linear(joint.embed_dim, len(COLOURS)), nn.Linear(joint.embed_dim, len(SHAPES))]
            )
        params += list(heads.parameters())

    def named(i: int, caption: str) -> tuple[int, int]:
        return named_attributes(caption, scenes[i].objects[0])

    def step(_: int) -> torch.Tensor:
        return sentence_pretrain_loss(
            joint, images, captions, vocab, generator=gen, heads=heads, weight=text_aux, named=named
        )

    return params, step
