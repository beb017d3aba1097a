"""A visual backbone pretrained on what is under each position of its feature map.

ImageNet gives real-image models their pretrained encoders; a world of labelled scenes
can give a dense version of the same thing. Each position of an encoder's ``(C, h, w)``
map is trained to say what object lies under it, attribute by attribute (its shape, its
colour, its size, or "none"), and the pooled map to say the scene's place. Captioning,
VQA and retrieval then start from an encoder that already tells shapes apart where they
are, as Show, Attend and Tell starts from a VGG trained on ImageNet.

    >>> masks = torch.zeros(1, 16, 16, dtype=torch.bool)
    >>> masks[0, :8, :8] = True                      # one object in the top-left quarter
    >>> cells = cell_targets(masks, torch.tensor([[2, 0, 1]]), grid=2)
    >>> cells[:, 0, 0].tolist(), cells[:, 1, 1].tolist()   # class + 1 under it, 0 elsewhere
    ([3, 1, 2], [0, 0, 0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import check_positive_int
from xmodal.errors import ParameterError
from xmodal.vision.encoders import stream_channels

__all__ = ["BackboneModel", "backbone_loss", "cell_accuracy_counts", "cell_targets"]


def cell_targets(
    masks: torch.Tensor, attributes: torch.Tensor, grid: int, *, min_cover: float = 0.25
) -> torch.Tensor:
    """``(A, grid, grid)`` long: for each attribute, the class of the object under each
    cell plus one, 0 where none is.

    ``masks``: ``(K, H, W)`` bool, one per object (disjoint); ``attributes``: ``(K, A)``
    long, each object's class per attribute. A cell's object is the one covering most of
    it, if it covers at least ``min_cover`` of the cell (a quarter by default: the
    smallest world object covers that much of at least one cell of an 8x8 grid).
    """
    grid = check_positive_int(grid, "grid")
    if masks.ndim != 3 or attributes.ndim != 2 or len(masks) != len(attributes):
        raise ParameterError(
            f"masks must be (K, H, W) and attributes (K, A). Found: {tuple(masks.shape)} and "
            f"{tuple(attributes.shape)}"
        )
    h, w = masks.shape[1:]
    if h % grid or w % grid:
        raise ParameterError(f"grid {grid} does not divide the mask size {h}x{w}")
    cells = torch.zeros(attributes.shape[1], grid, grid, dtype=torch.long)
    if len(masks) == 0:
        return cells
    cover = F.adaptive_avg_pool2d(masks.float()[None], grid)[0]  # (K, g, g)
    best, which = cover.max(0)
    found = best >= min_cover
    cells[:, found] = attributes[which[found]].T + 1
    return cells


class BackboneModel(nn.Module):
    """An image encoder with a 1x1 convolution per cell attribute and a linear place head.

    ``classes``: the number of classes of each cell attribute, e.g. ``{"shape": 3,
    "colour": 8, "size": 2}``; each head scores those classes plus "none" (class 0) at
    every position. ``forward(images)`` gives ``{attribute: (B, n + 1, h, w), "place":
    (B, n_places)}``; the place is read from the mean of the map, as the encoder's
    ``forward_head`` pools it.
    """

    def __init__(self, encoder: nn.Module, classes: Mapping[str, int], n_places: int) -> None:
        super().__init__()
        if not classes or "place" in classes:
            raise ParameterError(f"classes must name the cell attributes. Found: {classes!r}")
        channels = encoder.feature_info.channels
        self.encoder = encoder
        # Each head reads its attribute's stream of a FactoredCNN (all channels otherwise).
        self.channels = {name: stream_channels(encoder, name) for name in classes}
        self.heads = nn.ModuleDict({
            name: nn.Conv2d(b - a, check_positive_int(classes[name], name) + 1, kernel_size=1)
            for name, (a, b) in self.channels.items()
        })  # fmt: skip
        self.place = nn.Linear(channels, check_positive_int(n_places, "n_places"))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.encoder.forward_features(images)
        out = {}
        for name, head in self.heads.items():
            a, b = self.channels[name]
            out[name] = head(features[:, a:b])
        out["place"] = self.place(self.encoder.forward_head(features))
        return out


def backbone_loss(
    out: Mapping[str, torch.Tensor], cells: torch.Tensor, place: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """The sum of the cross-entropies of each cell attribute (over every position) and of
    the place: ``(loss, {name: its cross-entropy})``. ``cells``: ``(B, A, h, w)`` long in
    the order of the model's heads; ``place``: ``(B,)`` long."""
    names = [name for name in out if name != "place"]
    if cells.shape[1] != len(names):
        raise ParameterError(f"cells has {cells.shape[1]} attributes; the model scores {names}")
    parts = {name: F.cross_entropy(out[name], cells[:, a]) for a, name in enumerate(names)}
    parts["place"] = F.cross_entropy(out["place"], place)
    loss = torch.stack(list(parts.values())).sum()
    return loss, {name: float(value.detach()) for name, value in parts.items()}


def cell_accuracy_counts(
    out: Mapping[str, torch.Tensor], cells: torch.Tensor, place: torch.Tensor
) -> dict[str, tuple[int, int]]:
    """``{name: (right, total)}`` of a batch: each cell attribute on the cells an object
    covers (saying "none" there is wrong), ``objects`` (object or none, on every cell)
    from the first attribute's head, and ``place`` per image. Sum over batches, divide."""
    names: Sequence[str] = [name for name in out if name != "place"]
    counts = {}
    on_object = cells[:, 0] > 0
    for a, name in enumerate(names):
        guess = out[name].argmax(1)
        right = (guess == cells[:, a]) & on_object
        counts[name] = (int(right.sum()), int(on_object.sum()))
    seen = out[names[0]].argmax(1) > 0
    counts["objects"] = (int((seen == on_object).sum()), on_object.numel())
    counts["place"] = (int((out["place"].argmax(1) == place).sum()), len(place))
    return counts
