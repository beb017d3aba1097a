"""The world's scenes as sound with its frame, for learning from what a picture shows.

Item ``i`` of a split is scene ``i``: its ``image``, its ``audio`` (the sounding objects
over the place's ambience, ``world.config.clip_seconds`` long), the ``place`` (class
index), and over the (colour, shape) object classes of
:func:`xmodal.matching.soundnet.object_classes` the multi-hot ``objects`` (every object in
the frame) and ``sounding`` (the ones heard)::

    data = SoundScenes(World(seed=0, clip_seconds=2.0), "train", size=1000)
    item = data[0]   # {"image": (3, 64, 64) float, "audio": (32000,), "place": 2, ...}
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from xmodal._checks import check_positive_int
from xmodal.world import COLOURS, SHAPES

__all__ = ["SoundScenes"]


class SoundScenes(Dataset):
    """``size`` scenes of a world split with their sound (see the module)."""

    def __init__(self, world, split: str, *, size: int) -> None:
        self.world, self.split, self.size = world, split, check_positive_int(size, "size")
        self.classes = {(c, s): k for k, (c, s) in
                        enumerate((c, s) for c in COLOURS for s in SHAPES)}  # fmt: skip

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.size:
            raise IndexError(f"index {i} is out of range for {self.size} scenes")
        scene = self.world.scene(self.split, i, questions=False)
        objects = torch.zeros(len(self.classes))
        sounding = torch.zeros(len(self.classes))
        for k, obj in enumerate(scene.objects):
            objects[self.classes[obj.colour, obj.shape]] = 1.0
            if k in scene.sounding:
                sounding[self.classes[obj.colour, obj.shape]] = 1.0
        return {
            "image": scene.image.float() / 255.0,
            "audio": scene.audio,
            "place": self.world.config.places.index(scene.place),
            "objects": objects,
            "sounding": sounding,
            "index": i,
        }
