"""Pre-training an image encoder to name the objects an image shows.

SAN's VGG comes pretrained on ImageNet; on the world an encoder learns the same way what
objects look like from the world's object labels: each colour, each shape, each
"colour shape" and each "size shape" pair (:func:`object_labels`). A :class:`LabelHead`
scores each label at each location of the encoder's feature map with a 1x1 convolution
and takes the maximum over locations as the image's score (max pooling: a small CNN
learns the shapes several times faster than with the mean); the loss is the binary
cross-entropy against which labels the image's objects carry
(:func:`object_label_targets`). The fit itself (batches drawn by the caller, Adam) is the
caller's; :func:`object_label_objective` gives the head and the loss of a step on scenes
drawn at random, e.g. for :func:`xmodal.engine.fit.fit_steps`::

    labels = object_labels(COLOURS, SHAPES, SIZES)
    scene = lambda i: world.scene("train", i, audio=False, questions=False)
    head, step = object_label_objective(encoder, scene, 1000, labels, batch_size=32, seed=0)
    opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=5e-4)
    losses = fit_steps(opt, step, steps=1000, modules=[encoder, head])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import check_positive_int
from xmodal.errors import ParameterError

__all__ = [
    "LabelHead",
    "object_label_loss",
    "object_label_objective",
    "object_label_targets",
    "object_labels",
]


def object_labels(colours: Iterable[str], shapes: Iterable[str], sizes: Iterable[str]) -> list[str]:
    """The labels an encoder is pretrained on: each colour, each shape, each
    ``"colour shape"`` and each ``"size shape"``, in that order.

        >>> object_labels(["red"], ["circle"], ["small"])
        ['red', 'circle', 'red circle', 'small circle']
    """
    colours, shapes, sizes = list(colours), list(shapes), list(sizes)
    pairs = [f"{c} {s}" for c in colours for s in shapes]
    return [*colours, *shapes, *pairs, *(f"{z} {s}" for z in sizes for s in shapes)]


def object_label_targets(scenes: Sequence, labels: Sequence[str]) -> torch.Tensor:
    """``(B, len(labels))`` float: 1 where a scene's ``objects`` (each with ``colour``,
    ``shape`` and ``size``) carry the label (:func:`object_labels`), else 0."""
    index = {name: j for j, name in enumerate(labels)}
    targets = torch.zeros(len(scenes), len(index))
    for b, scene in enumerate(scenes):
        for o in scene.objects:
            for name in (o.colour, o.shape, f"{o.colour} {o.shape}", f"{o.size} {o.shape}"):
                j = index.get(name)
                if j is None:
                    raise ParameterError(f"object label {name!r} is not one of the labels")
                targets[b, j] = 1.0
    return targets


class LabelHead(nn.Module):
    """Scores of ``n_labels`` labels for an image from its feature map ``(B, C, h, w)``:
    a 1x1 convolution scores each label at each location, the image's score ``(B,
    n_labels)`` is the maximum over locations."""

    def __init__(self, channels: int, n_labels: int) -> None:
        super().__init__()
        check_positive_int(channels, "channels")
        check_positive_int(n_labels, "n_labels")
        self.score = nn.Conv2d(channels, n_labels, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.score(features).amax((2, 3))  # (B, n_labels)


def object_label_loss(
    encoder: nn.Module, head: LabelHead, scenes: Sequence, labels: Sequence[str]
) -> torch.Tensor:
    """The binary cross-entropy of ``head``'s scores of the scenes' images (``image``
    ``(3, H, W)``, uint8 or float) against their :func:`object_label_targets`, on the
    encoder's device."""
    device = next(encoder.parameters()).device
    images = torch.stack([scene.image for scene in scenes]).to(device)
    scores = head(encoder.forward_features(images))
    return F.binary_cross_entropy_with_logits(
        scores, object_label_targets(scenes, labels).to(device)
    )


def object_label_objective(
    encoder: nn.Module,
    scene: Callable[[int], object],
    n_scenes: int,
    labels: Sequence[str],
    *,
    batch_size: int = 32,
    seed: int = 0,
) -> tuple[LabelHead, Callable[[int], torch.Tensor]]:
    """What pre-training ``encoder`` on ``labels`` minimises: a new :class:`LabelHead`
    on the encoder's device, and ``step(k)``, the :func:`object_label_loss` of
    ``batch_size`` scenes ``scene(i)`` with ``i`` drawn from ``range(n_scenes)`` by a
    generator seeded by ``seed`` (one batch per call, in order)."""
    check_positive_int(n_scenes, "n_scenes")
    check_positive_int(batch_size, "batch_size")
    head = LabelHead(encoder.feature_info.channels, len(labels))
    head.to(next(encoder.parameters()).device)
    gen = torch.Generator().manual_seed(seed)

    def step(_: int) -> torch.Tensor:
        drawn = torch.randint(n_scenes, (batch_size,), generator=gen).tolist()
        return object_label_loss(encoder, head, [scene(i) for i in drawn], labels)

    return head, step
