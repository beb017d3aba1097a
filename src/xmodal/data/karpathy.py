"""Captioned images in Karpathy's split format: COCO, Flickr8k and Flickr30k.

Show and Tell, Show, Attend and Tell and the retrieval papers train and test on
Karpathy's splits, published as one JSON file per dataset (``dataset_coco.json``,
``dataset_flickr8k.json``, ``dataset_flickr30k.json``)::

    {"images": [{"filepath": "val2014",            # COCO only: the image's folder
                 "filename": "COCO_val2014_000000391895.jpg",
                 "split": "test",                  # train, val, test or restval
                 "sentences": [{"tokens": ["a", "man", ...], "raw": "A man ...", ...}, ...],
                 ...}, ...],
     "dataset": "coco"}

:class:`KarpathyCaptions` reads one split of such a file as the world's captioning view
reads the world: items ``image`` (3, H, W) float32 in [0, 1], ``captions`` (every
caption of the image), ``index`` and ``filename``. A caption is its ``tokens`` joined by
spaces: Karpathy's lower-cased, punctuation-free tokenization, the text the papers train
on. ``restval`` (the 30,504 COCO validation images outside the 5k val and 5k test
splits) joins ``train`` by default, as in the papers.

The world writes this format too (:func:`xmodal.world.export.export` with ``"coco"``),
so the loader is tested on world data that carries ground truth.

Example:
    >>> ds = KarpathyCaptions("coco/dataset_coco.json", "coco/images", "val", image_size=224)
    >>> ds[0]["image"].shape, ds[0]["captions"][0]
    (torch.Size([3, 224, 224]), 'a man with a red helmet on a small moped on a dirt road')
    >>> refs = ds.captions      # every caption of the split, no image read
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from xmodal._checks import check_bool, check_index
from xmodal.data._json import field, objects, read_json
from xmodal.data.images import _check_size, load_image
from xmodal.errors import DataError, ParameterError

__all__ = ["KARPATHY_SPLITS", "KarpathyCaptions", "check_karpathy_config", "collate"]

KARPATHY_SPLITS: tuple[str, ...] = ("train", "val", "test", "restval")


def check_karpathy_config(json_path, root) -> None:
    """A task's ``data.name=karpathy`` needs ``data.json`` (the ``dataset_*.json`` file) and
    ``data.root`` (the image folder): ParameterError naming both when one is missing."""
    if json_path is None or root is None:
        raise ParameterError(
            "data.name=karpathy needs data.json (the dataset_*.json file) and data.root "
            f"(the image folder). Found: json={json_path!r}, root={root!r}"
        )


def collate(items: list[dict]) -> dict:
    """Batch :class:`KarpathyCaptions` items: images stacked to ``(B, 3, H, W)``, ``index``
    as an int64 tensor, ``captions`` and ``filename`` as lists (one entry per item).

    Images must share one size: give the dataset an ``image_size``.
    """
    if not items:
        raise ParameterError("collate needs at least one item. Found: []")
    shapes = {tuple(item["image"].shape) for item in items}
    if len(shapes) > 1:
        raise ParameterError(
            f"cannot stack images of different sizes {sorted(shapes)}: "
            "give KarpathyCaptions an image_size"
        )
    return {
        "image": torch.stack([item["image"] for item in items]),
        "captions": [item["captions"] for item in items],
        "index": torch.tensor([item["index"] for item in items], dtype=torch.int64),
        "filename": [item["filename"] for item in items],
    }


def _read_json(path: Path) -> dict:
    data = read_json(path, "Karpathy caption file")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(
            f'{path} is not a Karpathy split file: it needs a top-level "images" list '
            "(as in dataset_coco.json)"
        )
    return data


def _captions(entry: dict, where: str, path: Path) -> list[str]:
    sentences = field(entry, "sentences", list, where, path)
    if not sentences:
        raise DataError(f"{path}: {where} has no sentences")
    captions = []
    for at, sentence in objects(sentences, f"{where}.sentences", path):
        tokens = field(sentence, "tokens", list, at, path)
        if not tokens or not all(isinstance(t, str) for t in tokens):
            raise DataError(
                f"{path}: {at}.tokens must be a non-empty list of words. Found: {tokens!r}"
            )
        captions.append(" ".join(tokens))
    return captions


class KarpathyCaptions(Dataset):
    """One split of a Karpathy caption file: one item per image with all its captions.

    Args:
        json_path: ``dataset_coco.json``, ``dataset_flickr8k.json`` or
            ``dataset_flickr30k.json`` (or the world's export of the format).
        image_root: the folder the images are under: an image is read from
            ``image_root / filepath / filename`` (``filepath`` is COCO's ``train2014`` or
            ``val2014``; Flickr entries have none, so ``image_root / filename``).
        split: ``"train"``, ``"val"``, ``"test"`` or ``"restval"``.
        image_size: resize every image to ``(size, size)`` or ``(height, width)``
            (bilinear, antialiased); None keeps each file's size (then images cannot be
            batched unless they already agree).
        restval_as_train: ``"train"`` includes the ``restval`` images (the papers'
            113k COCO training images). ``"restval"`` on its own is always available.

    Items:
        ``image`` (3, H, W) float32 in [0, 1]; ``captions`` list of str; ``index`` (the
        item's position in the split); ``filename``.

    Every entry of the file is checked when the dataset is made (not only the split's),
    so a broken file fails at once with the entry and field named, not in epoch 3; an
    image that cannot be read fails when its item is loaded, naming the file.

    Raises:
        ParameterError: an unknown ``split``, a bad ``image_size`` or argument type.
        DataError: a missing or non-JSON file, no top-level ``"images"``, an entry
            without ``filename``, ``split`` or ``sentences`` (or with an empty caption,
            or an unknown split), a missing ``image_root``.
    """

    collate_fn = staticmethod(collate)

    def __init__(
        self,
        json_path,
        image_root,
        split: str,
        *,
        image_size: int | tuple[int, int] | None = None,
        restval_as_train: bool = True,
    ) -> None:
        for name, value in (("json_path", json_path), ("image_root", image_root)):
            if not isinstance(value, (str, os.PathLike)):
                raise ParameterError(f"{name} must be a str or os.PathLike. Found: {value!r}")
        if split not in KARPATHY_SPLITS:
            raise ParameterError(f"unknown split {split!r}; the splits are {list(KARPATHY_SPLITS)}")
        self.image_size = _check_size(image_size, "image_size")
        restval_as_train = check_bool(restval_as_train, "restval_as_train")
        self.json_path = Path(json_path)
        self.image_root = Path(image_root)
        self.split = split
        if not self.image_root.is_dir():
            raise DataError(f"image_root {self.image_root} is not a folder")
        wanted = {split, "restval"} if split == "train" and restval_as_train else {split}

        data = _read_json(self.json_path)
        self._paths: list[Path] = []
        self._filenames: list[str] = []
        self._captions: list[list[str]] = []
        for where, entry in objects(data["images"], "images", self.json_path):
            entry_split = field(entry, "split", str, where, self.json_path)
            if entry_split not in KARPATHY_SPLITS:
                raise DataError(
                    f"{self.json_path}: {where}.split is {entry_split!r}; "
                    f"the splits are {list(KARPATHY_SPLITS)}"
                )
            filename = field(entry, "filename", str, where, self.json_path)
            folder = entry.get("filepath", "")
            if not isinstance(folder, str):
                raise DataError(f"{self.json_path}: {where}.filepath must be a string")
            captions = _captions(entry, where, self.json_path)
            if entry_split in wanted:
                self._paths.append(self.image_root / folder / filename)
                self._filenames.append(filename)
                self._captions.append(captions)

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, index) -> dict:
        i = check_index(index, len(self._paths), "KarpathyCaptions")
        return {
            "image": load_image(self._paths[i], size=self.image_size),
            "captions": list(self._captions[i]),
            "index": i,
            "filename": self._filenames[i],
        }

    @property
    def captions(self) -> list[list[str]]:
        """Every caption of every image of the split, in item order; no image is read."""
        return [list(c) for c in self._captions]

    @property
    def filenames(self) -> list[str]:
        """The image file names, in item order."""
        return list(self._filenames)

    def image_path(self, index: int) -> Path:
        """The file item ``index`` reads its image from."""
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise ParameterError(f"index must be an integer. Found: {index!r}")
        return self._paths[index]

    def __repr__(self) -> str:
        return (
            f"KarpathyCaptions({str(self.json_path)!r}, split={self.split!r}, size={len(self)}, "
            f"image_size={self.image_size})"
        )
