"""Reading a dataset's JSON file with one-line errors that name the file."""

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
