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
from xmodal.errors import ParameterError
from xmodal.world import COLOURS, SHAPES

__all__ = ["LocalizationScenes", "SoundScenes"]


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


class LocalizationScenes(Dataset):
    """``size`` scenes of a world split for sound source localization: item ``i`` is
    scene ``i``'s ``image``, ``audio``, ``sounding_mask`` (H, W) float32 (the union of the
    sounding objects' masks), ``objects_mask`` (every object's), ``labelled`` (bool:
    whether a semi-supervised run may use its mask: the first ``round(labelled_fraction *
    size)`` of a permutation drawn from ``seed``) and ``index``.

    With ``negatives=True`` an item also carries two sounds with no source in its
    picture: ``ambience`` (the place's sound alone, no object sounding) and ``other_audio``
    (the sound of the next scene of the split, cyclically, none of whose sounding objects
    has the colour and shape of an object of this one; ``other_index`` names it).
    """

    def __init__(self, world, split: str, *, size: int, labelled_fraction: float = 1.0,
                 seed: int = 0, negatives: bool = False) -> None:  # fmt: skip
        from xmodal._checks import check_bool, check_positive_number

        self.world, self.split, self.size = world, split, check_positive_int(size, "size")
        fraction = check_positive_number(labelled_fraction, "labelled_fraction", allow_zero=True)
        if fraction > 1:
            raise ParameterError(f"labelled_fraction must be in [0, 1]. Found: {fraction}")
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(seed))
        self.labelled = torch.zeros(self.size, dtype=torch.bool)
        self.labelled[order[: round(fraction * self.size)]] = True
        self.negatives = check_bool(negatives, "negatives")

    def __len__(self) -> int:
        return self.size

    def other(self, i: int, classes: set) -> int:
        """The first scene after ``i`` (cyclically) none of whose sounding objects has a
        (colour, shape) among ``classes``; ``i`` itself if there is none."""
        for step in range(1, self.size):
            j = (i + step) % self.size
            scene = self.world.scene(self.split, j, audio=False, questions=False)
            if not {(o.colour, o.shape) for o in map(scene.objects.__getitem__,
                                                     scene.sounding)} & classes:  # fmt: skip
                return j
        return i

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.size:
            raise IndexError(f"index {i} is out of range for {self.size} scenes")
        scene = self.world.scene(self.split, i, questions=False)
        item = {
            "image": scene.image.float() / 255.0,
            "audio": scene.audio,
            "sounding_mask": scene.sounding_mask.float(),
            "objects_mask": scene.masks.any(0).float(),
            "labelled": bool(self.labelled[i]),
            "index": i,
        }
        if self.negatives:
            j = self.other(i, {(o.colour, o.shape) for o in scene.objects})
            item["ambience"] = scene.ambience
            item["other_audio"] = self.world.scene(self.split, j, questions=False).audio
            item["other_index"] = j
        return item
