"""Reading a dataset's JSON file with one-line errors that name the file (and the entry)."""

from __future__ import annotations

import json
from pathlib import Path

from xmodal.errors import DataError


def read_json(path: Path, what: str):
    """The JSON value in ``path``; a :class:`DataError` naming ``what`` (e.g. "Karpathy
    caption file") and the path when the file is missing, a folder, unreadable or not
    JSON. The caller checks the value's shape."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as e:
        raise DataError(f"{what} {path} does not exist") from e
    except IsADirectoryError as e:
        raise DataError(f"{what} {path} is a folder, not a file") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not a JSON file: {e}") from e
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from e


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
