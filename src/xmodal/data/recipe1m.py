"""Recipes with their pictures in the Recipe1M layout (im2recipe, Salvador et al. 2017).

Recipe1M ships its text and its image lists as two "layers" of JSON, plus the images in
one folder per partition::

    layer1.json    [{"id", "title", "ingredients": [{"text"}], "instructions": [{"text"}],
                     "partition": "train" | "val" | "test", "url"}, ...]
    layer2.json    [{"id", "images": [{"id": "<image file name>", "url"}]}, ...]
    classes.json   {recipe id: dish class}          (optional: the semantic labels)
    images/{partition}/{image id}                   (the world's export), or
    images/{partition}/{c0}/{c1}/{c2}/{c3}/{image id}   (Recipe1M's nesting by the id's
                                                         first four characters)

:class:`Recipe1M` reads one partition: one item per recipe that has at least one image
(Recipe1M's text-only recipes are left out, as im2recipe does), its first image.
``classes.json`` is what the world's exporter writes; Recipe1M's own classes come as a
pickle, which is never read here: convert it to this JSON once.

The world writes this layout too (:func:`xmodal.world.export.export` with ``"recipe1m"``),
so the loader is tested on world data.

Example:
    >>> ds = Recipe1M("exports/recipe1m", "test", image_size=64)
    >>> item = ds[0]
    >>> item["image"].shape, item["title"], item["dish"]
    (torch.Size([3, 64, 64]), 'summer pepper salad', 'salad')
    >>> texts = ds.recipes       # every recipe's text and class, no image read
"""

from __future__ import annotations

import operator
import os
from pathlib import Path

from torch.utils.data import Dataset

from xmodal._checks import check_index
from xmodal.data._json import field, objects, read_json
from xmodal.data.images import _check_size, load_image
from xmodal.errors import DataError, ParameterError

__all__ = ["RECIPE1M_SPLITS", "Recipe1M"]

RECIPE1M_SPLITS: tuple[str, ...] = ("train", "val", "test")


def _read_json(path: Path, kind: type, what: str):
    data = read_json(path, f"Recipe1M {what}")
    if not isinstance(data, kind):
        raise DataError(
            f"{path} must hold a JSON {'list' if kind is list else 'object'} ({what}). "
            f"Found: {type(data).__name__}"
        )
    return data


def _texts(entry: dict, key: str, where: str, path: Path) -> list[str]:
    """``entry[key]``, a non-empty list of ``{"text": str}``, as a list of strings."""
    items = field(entry, key, list, where, path)
    if not items:
        rid = entry.get("id")
        raise DataError(f"{path}: {where} (recipe {rid!r}) is empty: it has no {key}")
    texts = []
    for j, item in enumerate(items):
        at = f"{where}.{key}[{j}]"
        if not isinstance(item, dict):
            raise DataError(f'{path}: {at} must be an object {{"text": ...}}. Found: {item!r}')
        texts.append(field(item, "text", str, at, path))
    return texts


class Recipe1M(Dataset):
    """One partition of a Recipe1M-like folder: one item per recipe with an image.

    Args:
        root: the folder holding ``layer1.json``, ``layer2.json``, ``images/`` and
            optionally ``classes.json``.
        split: ``"train"``, ``"val"`` or ``"test"`` (Recipe1M's partitions).
        image_size: resize every image to ``(size, size)`` or ``(height, width)``; None
            keeps each file's size.

    Items:
        ``image`` (3, H, W) float32 in [0, 1]; ``title`` str; ``ingredients`` and
        ``instructions`` lists of str (one line / one sentence each); ``dish`` the class
        name from ``classes.json`` (None without the file); ``id``; ``index`` (the item's
        position in the split).

    Every layer entry is checked when the dataset is made, so a broken file fails at once
    naming the entry and the field; an image that cannot be read fails when its item is
    loaded, naming the recipe and the file.

    Raises:
        ParameterError: an unknown ``split``, a bad ``image_size`` or argument type.
        DataError: a missing or non-JSON layer, an entry without ``id``, ``title``,
            ``ingredients``, ``instructions`` or ``partition`` (or with an empty list of
            them, or an unknown partition), a recipe without a class while
            ``classes.json`` exists, a missing ``images/`` folder.
    """

    def __init__(self, root, split: str, *, image_size: int | tuple[int, int] | None = None):
        if not isinstance(root, (str, os.PathLike)):
            raise ParameterError(f"root must be a str or os.PathLike. Found: {root!r}")
        if split not in RECIPE1M_SPLITS:
            raise ParameterError(
                f"unknown split {split!r}; the Recipe1M partitions are {list(RECIPE1M_SPLITS)}"
            )
        self.image_size = _check_size(image_size, "image_size")
        self.root = Path(root)
        self.split = split
        if not self.root.is_dir():
            raise DataError(f"Recipe1M root {self.root} is not a folder")
        if not (self.root / "images").is_dir():
            raise DataError(f"Recipe1M root {self.root} has no images/ folder")

        layer1_path, layer2_path = self.root / "layer1.json", self.root / "layer2.json"
        layer1 = _read_json(layer1_path, list, "layer1 (the recipes)")
        layer2 = _read_json(layer2_path, list, "layer2 (the images of each recipe)")
        classes_path = self.root / "classes.json"
        classes = (
            _read_json(classes_path, dict, "classes (recipe id -> dish)")
            if classes_path.is_file()
            else None
        )

        images: dict[str, str] = {}
        for where, entry in objects(layer2, "", layer2_path):
            rid = field(entry, "id", str, where, layer2_path)
            files = field(entry, "images", list, where, layer2_path)
            for at, image in objects(files, f"{where}.images", layer2_path):
                name = field(image, "id", str, at, layer2_path)
                images.setdefault(rid, name)  # the first image of a recipe

        self._recipes: list[dict] = []
        self._images: list[str] = []
        for where, entry in objects(layer1, "", layer1_path):
            rid = field(entry, "id", str, where, layer1_path)
            partition = field(entry, "partition", str, where, layer1_path)
            if partition not in RECIPE1M_SPLITS:
                raise DataError(
                    f"{layer1_path}: {where}.partition is {partition!r} (recipe {rid!r}); "
                    f"the partitions are {list(RECIPE1M_SPLITS)}"
                )
            recipe = {
                "id": rid,
                "title": field(entry, "title", str, where, layer1_path),
                "ingredients": _texts(entry, "ingredients", where, layer1_path),
                "instructions": _texts(entry, "instructions", where, layer1_path),
                "dish": None,
            }
            if classes is not None:
                if rid not in classes:
                    raise DataError(f"{classes_path} has no class for recipe {rid!r}")
                if not isinstance(classes[rid], str) or not classes[rid]:
                    raise DataError(
                        f"{classes_path}: the class of recipe {rid!r} must be a non-empty "
                        f"string. Found: {classes[rid]!r}"
                    )
                recipe["dish"] = classes[rid]
            if partition == split and rid in images:
                self._recipes.append(recipe)
                self._images.append(images[rid])
        self.class_names: tuple[str, ...] | None = (
            None if classes is None else tuple(sorted({str(c) for c in classes.values()}))
        )

    def __len__(self) -> int:
        return len(self._recipes)

    def image_path(self, index: int) -> Path:
        """The file item ``index`` reads its image from: ``images/{split}/{name}``, else
        Recipe1M's ``images/{split}/{c0}/{c1}/{c2}/{c3}/{name}``."""
        name = self._images[operator.index(index)]
        flat = self.root / "images" / self.split / name
        if flat.is_file() or len(name) < 4:
            return flat
        nested = self.root / "images" / self.split / name[0] / name[1] / name[2] / name[3] / name
        return nested if nested.is_file() else flat

    def __getitem__(self, index) -> dict:
        i = check_index(index, len(self._recipes), "Recipe1M")
        recipe = self._recipes[i]
        try:
            image = load_image(self.image_path(i), size=self.image_size)
        except DataError as e:
            raise DataError(f"Recipe1M recipe {recipe['id']!r} ({self.split} item {i}): {e}") from e
        return {
            "image": image,
            **{k: list(v) if isinstance(v, list) else v for k, v in recipe.items()},
            "index": i,
        }

    @property
    def recipes(self) -> list[dict]:
        """Every recipe of the split in item order (``id``, ``title``, ``ingredients``,
        ``instructions``, ``dish``); no image is read."""
        return [{k: list(v) if isinstance(v, list) else v for k, v in r.items()}
                for r in self._recipes]  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"Recipe1M({str(self.root)!r}, split={self.split!r}, size={len(self)}, "
            f"image_size={self.image_size})"
        )
