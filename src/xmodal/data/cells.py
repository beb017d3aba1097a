"""The world's scenes labelled cell by cell, for pretraining a visual backbone.

Item ``i`` of a split is scene ``i`` with ``cells``: for each cell of a ``grid x grid``
map, the shape, colour and size of the object under it (class + 1; 0: none, see
:func:`xmodal.vision.backbone.cell_targets`), and the scene's ``place``::

    data = SceneCells(World(seed=0), "train", size=1000, grid=8)
    item = data[0]   # {"image": (3, 64, 64) uint8, "cells": (3, 8, 8), "place": 2, "index": 0}
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from xmodal._checks import check_positive_int
from xmodal.vision.backbone import cell_targets
from xmodal.world import COLOURS, SHAPES, SIZES

__all__ = ["CELL_ATTRIBUTES", "SceneCells", "cell_classes", "collate_cells"]

# The cell attributes in the order of ``cells``, with their class names.
CELL_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": tuple(SHAPES),
    "colour": tuple(COLOURS),
    "size": tuple(SIZES),
}


def cell_classes() -> dict[str, int]:
    """The number of classes of each cell attribute (what a backbone's heads score)."""
    return {name: len(names) for name, names in CELL_ATTRIBUTES.items()}


class SceneCells(Dataset):
    """``size`` scenes of the world's ``split`` with their cell labels on a ``grid`` map."""

    def __init__(self, world, split: str, *, size: int, grid: int, min_cover: float = 0.25):
        self.world, self.split = world, split
        self.size = check_positive_int(size, "size")
        self.grid = check_positive_int(grid, "grid")
        self.min_cover = float(min_cover)
        self.places = tuple(world.config.places)
        self._index = {name: {c: k for k, c in enumerate(names)}
                       for name, names in CELL_ATTRIBUTES.items()}  # fmt: skip

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.size:
            raise IndexError(f"scene {i} of {self.size}")
        scene = self.world.scene(self.split, i, audio=False, questions=False)
        attributes = torch.tensor(
            [
                [self._index[name][getattr(o, name)] for name in CELL_ATTRIBUTES]
                for o in scene.objects
            ],  # fmt: skip
            dtype=torch.long,
        ).reshape(len(scene.objects), len(CELL_ATTRIBUTES))
        cells = cell_targets(scene.masks, attributes, self.grid, min_cover=self.min_cover)
        return {"image": scene.image, "cells": cells,
                "place": self.places.index(scene.place), "index": i}  # fmt: skip


def collate_cells(items: list[dict]) -> dict:
    """A batch: ``image`` (B, 3, H, W) uint8, ``cells`` (B, A, g, g), ``place`` and
    ``index`` (B,) long."""
    return {
        "image": torch.stack([it["image"] for it in items]),
        "cells": torch.stack([it["cells"] for it in items]),
        "place": torch.tensor([it["place"] for it in items], dtype=torch.long),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
    }
