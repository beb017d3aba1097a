"""Reading a dataset's JSON file with one-line errors that name the file (and the entry)."""

from __future__ import annotations

from pathlib import Path

from xmodal._io import read_json
from xmodal.errors import DataError

__all__ = ["field", "objects", "read_json"]


def objects(items: list, where: str, path: Path):
    """``(f"{where}[i]", item)`` for each item of the JSON list ``items`` (``where`` e.g.
    "images" or "[3].images"); a :class:`DataError` naming the file and the place of the
    first item that is not an object."""
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise DataError(f"{path}: {at} must be an object. Found: {item!r}")
        yield at, item


def field(entry: dict, key: str, kind: type, where: str, path: Path):
    """``entry[key]``; a :class:`DataError` naming the file, the entry (``where``) and the
    key when it is missing or not a ``kind``."""
    if key not in entry:
        raise DataError(f"{path}: {where} has no field {key!r}")
    value = entry[key]
    if not isinstance(value, kind):
        raise DataError(
            f"{path}: {where}.{key} must be a {kind.__name__}. Found: {type(value).__name__}"
        )
    return value
