"""The two annotated test sets of sound source localization, Flickr-SoundNet (Senocak et
al., 2018) and VGG-SS (Chen et al., 2021, "Localizing Visual Sounds the Hard Way"), read
as the public evaluation code of LVS, EZ-VSL and SLAVC reads them: the same files, the
same box scaling and the same merge of a frame's boxes into its ground-truth map.

The layouts (``xmodal world export --format flickr-soundnet`` and ``--format vggss`` write
the world's scenes in them)::

    Flickr-SoundNet                          VGG-SS
    frames/{id}.jpg                          frames/{id}.jpg
    audio/{id}.wav                           audio/{id}.wav
    Annotations/{id}.xml                     metadata/vggss.json
    metadata/flickr_test.csv                 metadata/vggss_test.csv
    metadata/flickr_val.csv                  metadata/vggss_val.csv
    metadata/flickr_train.txt                metadata/vggss_train.txt

A split's ids come from ``metadata/{flickr,vggss}_{split}.csv`` (one id per row, in the
first column: the public test lists) or, for ``split="train"``,
``metadata/{flickr,vggss}_train.txt`` (one id per line, as the public ``flickr_10k.txt``;
the train and val file names are ours). Frames are any image Pillow reads, audio any file
soundfile reads.

Boxes and their merge:

- Flickr-SoundNet: ``Annotations/{id}.xml`` holds the boxes of several annotators, each a
  ``<bbox>`` element under a child of the root whose children after the first (skipped)
  are xmin, ymin, xmax, ymax on a 256 x 256 grid. At image size ``S`` a value ``v``
  becomes ``int(S * v / 256)``; the map is the sum of the boxes' indicators, divided by 2
  and clipped to 1 (consensus: a pixel boxed by one annotator is 0.5, by two or more 1).
- VGG-SS: ``metadata/vggss.json`` is a list of ``{"file": id, "class": label, "bbox":
  [[xmin, ymin, xmax, ymax], ...]}`` in [0, 1]; a box becomes
  ``(np.clip(b, 0, 1) * S).astype(int)`` and the map is the union of the boxes.

A box covers rows ``ymin:ymax`` and columns ``xmin:xmax`` (end exclusive, numpy slices).
An id with no annotation has an all-zero map and ``labelled`` False (Flickr's training
ids carry none). Items::

    frames = FlickrSoundNet("Flickr-SoundNet", "test", image_size=224, sample_rate=16000,
                            seconds=5.0)
    frames[0]  # {"image": (3, 224, 224), "audio": (80000,), "sounding_mask": (224, 224),
               #  "labelled": True, "id": "10000130166", "index": 0}
"""

from __future__ import annotations

import csv
import math
import numbers
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from xmodal._checks import check_choice, check_positive_int, check_positive_number
from xmodal.data._json import field, objects, read_json
from xmodal.errors import DataError, ParameterError

__all__ = [
    "MERGE_RULES",
    "VGGSS",
    "FlickrSoundNet",
    "boxes_to_map",
    "read_flickr_xml",
    "read_vggss_json",
]

MERGE_RULES = ("consensus", "union")
# Flickr-SoundNet's boxes are drawn on frames resized to 256 x 256.
FLICKR_GRID = 256

Box = tuple[int, int, int, int]


def boxes_to_map(boxes: Sequence[Sequence[int]], size: int, rule: str) -> torch.Tensor:
    """The ground-truth map of pixel boxes, merged as the public evaluation code does.

    Args:
        boxes: ``(xmin, ymin, xmax, ymax)`` integer pixel boxes at ``size``, ends
            exclusive: a box covers ``map[ymin:ymax, xmin:xmax]`` (parts beyond ``size``
            are cut off, as numpy slicing does).
        size: side of the square map in pixels.
        rule: ``"consensus"`` (Flickr-SoundNet: the count of boxes over a pixel halved and
            clipped to 1, so one annotator gives 0.5 and two agree on 1) or ``"union"``
            (VGG-SS: 1 where any box is).

    Returns:
        ``(size, size)`` float32 map in [0, 1].

    Example:
        >>> boxes_to_map([(0, 0, 2, 2), (1, 1, 3, 3)], 4, "consensus")[1]
        tensor([0.5000, 1.0000, 0.5000, 0.0000])
    """
    size = check_positive_int(size, "size")
    rule = check_choice(rule, "rule", MERGE_RULES)
    counts = torch.zeros(size, size)
    for k, box in enumerate(boxes):
        if len(box) != 4 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in box
        ):
            raise ParameterError(
                f"boxes[{k}] must be 4 integers (xmin, ymin, xmax, ymax). Found: {box!r}"
            )
        xmin, ymin, xmax, ymax = (int(v) for v in box)
        if min(xmin, ymin) < 0 or xmin > xmax or ymin > ymax:
            raise ParameterError(
                f"boxes[{k}] must have 0 <= xmin <= xmax and 0 <= ymin <= ymax. Found: {box!r}"
            )
        counts[ymin:ymax, xmin:xmax] += 1
    if rule == "consensus":
        return (counts / 2).clamp_(max=1.0)
    return (counts > 0).float()


# ------------------------------------------------------------------------------ reading


def read_flickr_xml(path) -> list[Box]:
    """The boxes of a Flickr-SoundNet annotation file, on its 256 x 256 grid.

    Every ``<bbox>`` element under a child of the root counts (one per annotator and
    object); of its children the first is skipped, as the public code skips it, and the
    next four are xmin, ymin, xmax, ymax as integers.

    Raises:
        DataError: the file is missing or not XML, or a box is not four integers
            ``0 <= xmin <= xmax``, ``0 <= ymin <= ymax``; the message names the file.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError as e:
        raise DataError(f"{str(path)!r} does not exist") from e
    except ET.ParseError as e:
        raise DataError(f"{str(path)!r} is not an XML file: {e}") from e
    except OSError as e:
        raise DataError(f"cannot read {str(path)!r}: {e}") from e
    boxes = []
    for k, bbox in enumerate(root.findall("./*/bbox")):
        where = f"{str(path)!r} <bbox> {k}"
        texts = [(child.text or "").strip() for child in list(bbox)[1:]]
        if len(texts) != 4:
            raise DataError(
                f"{where}: must hold a first element and xmin, ymin, xmax, ymax. Found "
                f"{len(texts)} values after the first: {texts}"
            )
        try:
            box = tuple(int(t) for t in texts)
        except ValueError:
            raise DataError(f"{where}: xmin, ymin, xmax, ymax must be integers. "
                            f"Found: {texts}") from None  # fmt: skip
        boxes.append(_check_box(box, where))
    return boxes


def read_vggss_json(path) -> dict[str, list[tuple[float, float, float, float]]]:
    """The boxes of ``metadata/vggss.json``: ``{file: [(xmin, ymin, xmax, ymax), ...]}``
    in [0, 1] as written (out-of-range values are clipped later, when scaled).

    Raises:
        DataError: the file is missing or not JSON, not a list of objects with a string
            ``file`` and a list ``bbox`` of four finite numbers each, or a box has
            ``xmin > xmax`` or ``ymin > ymax``; the message names the file and entry.
    """
    path = Path(path)
    entries = read_json(path, "VGG-SS annotation file")
    if not isinstance(entries, list):
        raise DataError(f"{path}: must be a list of entries. Found: {type(entries).__name__}")
    out: dict[str, list] = {}
    for at, entry in objects(entries, "", path):
        name = field(entry, "file", str, at, path)
        boxes = []
        for k, box in enumerate(field(entry, "bbox", list, at, path)):
            where = f"{path}: {at}.bbox[{k}]"
            if not (isinstance(box, list) and len(box) == 4 and all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
                for v in box
            )):  # fmt: skip
                raise DataError(
                    f"{where} must be 4 finite numbers (xmin, ymin, xmax, ymax). Found: {box!r}"
                )
            if box[0] > box[2] or box[1] > box[3]:
                raise DataError(f"{where} must have xmin <= xmax and ymin <= ymax. Found: {box}")
            boxes.append(tuple(float(v) for v in box))
        out.setdefault(name, []).extend(boxes)
    return out


def _check_box(box: Box, where: str) -> Box:
    xmin, ymin, xmax, ymax = box
    if min(box) < 0 or xmin > xmax or ymin > ymax:
        raise DataError(
            f"{where}: must have 0 <= xmin <= xmax and 0 <= ymin <= ymax. Found: {list(box)}"
        )
    return box


def _flickr_pixels(box: Box, size: int) -> Box:
    # int(S * v / 256) of the public code; floor division is the same for v >= 0.
    return tuple(size * v // FLICKR_GRID for v in box)


def _vggss_pixels(box, size: int) -> Box:
    return tuple(int(v) for v in (np.clip(np.array(box), 0, 1) * size).astype(int))


def _read_ids(path: Path) -> list[tuple[int, str]]:
    """``(line, id)`` of a split list: a .csv's first column or a .txt's lines."""
    if not path.is_file():
        raise DataError(f"{str(path)!r} does not exist: no list of the split's ids")
    with open(path, newline="", encoding="utf-8") as f:
        if path.suffix == ".csv":
            rows = [(line, row[0].strip()) for line, row in enumerate(csv.reader(f), start=1)
                    if row and row[0].strip()]  # fmt: skip
        else:
            rows = [(line, text.strip()) for line, text in enumerate(f, start=1) if text.strip()]
    if not rows:
        raise DataError(f"{str(path)!r} lists no id")
    return rows


# ------------------------------------------------------------------------------ datasets


class _SoundSources(Dataset):
    """Frames, sounds and merged boxes of one split (see the module); subclasses say where
    the boxes are and how they scale and merge."""

    name = ""  # the dataset, in messages
    prefix = ""  # of the split lists: metadata/{prefix}_{split}.csv
    rule = ""  # boxes_to_map's merge

    def __init__(
        self, root, split: str, *, image_size: int, sample_rate: int, seconds: float
    ) -> None:
        if not isinstance(split, str) or not split:
            raise ParameterError(f"split must be a non-empty string. Found: {split!r}")
        self.root = Path(root)
        self.split = split
        self.image_size = check_positive_int(image_size, "image_size")
        self.sample_rate = check_positive_int(sample_rate, "sample_rate")
        self.n_samples = int(round(check_positive_number(seconds, "seconds") * sample_rate))
        if not self.root.is_dir():
            raise DataError(f"{str(self.root)!r} does not exist: not a {self.name} folder")
        kind = "txt" if split == "train" else "csv"
        self.list_file = self.root / "metadata" / f"{self.prefix}_{split}.{kind}"
        rows = _read_ids(self.list_file)
        for line, uid in rows:
            for folder, ext in (("frames", "jpg"), ("audio", "wav")):
                path = self.root / folder / f"{uid}.{ext}"
                if not path.is_file():
                    raise DataError(f"{str(self.list_file)!r} line {line}: the {folder[:-1]} "
                                    f"{str(path)!r} of id {uid!r} does not exist")  # fmt: skip
        self.ids = [uid for _, uid in rows]
        # Read now, so a bad annotation fails here rather than halfway through an epoch.
        self.boxes: list[list[Box]] = self._pixel_boxes(self.ids)
        self.labelled = torch.tensor([len(b) > 0 for b in self.boxes], dtype=torch.bool)

    def _pixel_boxes(self, ids: list[str]) -> list[list[Box]]:
        """Each id's boxes in pixels at ``image_size`` ([] for an id without boxes)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        from xmodal.audio.io import load_clip
        from xmodal.data.images import load_image

        uid = self.ids[i]
        image = load_image(self.root / "frames" / f"{uid}.jpg", size=self.image_size)
        audio = load_clip(self.root / "audio" / f"{uid}.wav", sr=self.sample_rate,
                          n_samples=self.n_samples)  # fmt: skip
        mask = boxes_to_map(self.boxes[i], self.image_size, self.rule)
        return {"image": image, "audio": audio, "sounding_mask": mask,
                "labelled": bool(self.labelled[i]), "id": uid, "index": i}  # fmt: skip


class FlickrSoundNet(_SoundSources):
    """The ids of ``split`` in a Flickr-SoundNet-layout folder ``root`` (see the module).

    ``sounding_mask`` is the annotators' consensus: 0, 0.5 (one annotator) or 1 (two or
    more). ``Annotations/`` must exist for every split but train; an id without its XML
    file is unlabelled.
    """

    name = "Flickr-SoundNet"
    prefix = "flickr"
    rule = "consensus"

    def _pixel_boxes(self, ids):
        folder = self.root / "Annotations"
        if not folder.is_dir():
            if self.split != "train":
                raise DataError(f"{str(folder)!r} does not exist: the {self.split} split "
                                "of Flickr-SoundNet needs its boxes")  # fmt: skip
            return [[] for _ in ids]
        out = []
        for uid in ids:
            path = folder / f"{uid}.xml"
            boxes = read_flickr_xml(path) if path.is_file() else []
            out.append([_flickr_pixels(b, self.image_size) for b in boxes])
        return out


class VGGSS(_SoundSources):
    """The ids of ``split`` in a VGG-SS-layout folder ``root`` (see the module).

    ``sounding_mask`` is the union of the boxes, 0 or 1. ``metadata/vggss.json`` must exist
    for every split but train; an id it does not name is unlabelled.
    """

    name = "VGG-SS"
    prefix = "vggss"
    rule = "union"

    def _pixel_boxes(self, ids):
        path = self.root / "metadata" / "vggss.json"
        if not path.is_file() and self.split == "train":
            return [[] for _ in ids]
        boxes = read_vggss_json(path)
        return [[_vggss_pixels(b, self.image_size) for b in boxes.get(uid, [])] for uid in ids]
