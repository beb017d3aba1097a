"""Files in and out. Writes are atomic: a reader of a path sees the old file (or folder) or
the new one, never half of one, and an interrupted write leaves nothing behind. Reading
JSON (:func:`read_json`) fails with a one-line DataError naming the file.

Every file is first written under a hidden temporary name beside its target
(``.<name>.<random>.tmp``, so on the same file system), fsynced, then renamed onto the
target with :func:`os.replace`, and the folder is fsynced so that the rename itself
survives a crash. The temporary file is created with mode ``0o666`` and the kernel
applies the umask, so the result has the permissions a plain ``open(path, "w")`` gives,
not the private ``0o600`` of :func:`tempfile.mkstemp`. Parent folders are created.

Text and JSON are written as UTF-8 bytes with ``\\n`` line ends on every OS.

Example::

    write_json("runs/x/metrics.json", {"bleu4": 0.31})
    with atomic_path("runs/x/model.safetensors") as tmp:
        save_file(tensors, tmp)
    with atomic_dir("exports/coco") as tmp:  # the old folder stays until this one is whole
        (tmp / "a.json").write_text("{}")
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from xmodal.errors import DataError

__all__ = [
    "atomic_dir",
    "atomic_path",
    "read_json",
    "write_bytes",
    "write_json",
    "write_text",
]

_TRIES = 100  # as tempfile.TMP_MAX: how many random names to try before giving up


def _temp_sibling(path: Path, suffix: str, create: Callable[[Path], None]) -> Path:
    """A new hidden ``.<name>.<random><suffix>`` beside ``path``, made by ``create``."""
    for _ in range(_TRIES):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
        try:
            create(tmp)
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name beside", str(path))


def _create_file(tmp: Path) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    os.close(os.open(tmp, flags, 0o666))  # the umask applies, as for a plain open()


def _create_dir(tmp: Path) -> None:
    os.mkdir(tmp, 0o777)  # the umask applies, as for a plain mkdir


def _fsync_file(path: Path) -> None:
    # POSIX fsyncs a read-only descriptor, so a caller may have made the file read-only;
    # Windows wants a writable one.
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable, where the OS lets a folder be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, *, keep_mode: bool = False, sync: bool = True
) -> Iterator[Path]:
    """A new empty temporary file beside ``path`` to write; on a clean exit it is fsynced
    and renamed onto ``path``, on an error it is removed and ``path`` is left as it was.

    Args:
        path: the file to write; its parent folders are created.
        keep_mode: give the new file the permission bits of the file it replaces (as an
            in-place write would keep them) instead of those the umask gives.
        sync: fsync the file and its folder. ``False`` for caches, where a write lost in
            a crash is only made again.

        >>> with atomic_path("out/model.safetensors") as tmp:  # doctest: +SKIP
        ...     save_file(tensors, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(path, ".tmp", _create_file)
    try:
        yield tmp
        if sync:
            _fsync_file(tmp)
        if keep_mode:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync:
        _fsync_dir(path.parent)


def write_bytes(path: str | os.PathLike, data: bytes, *, sync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); return ``path``."""
    with atomic_path(path, sync=sync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically, line ends as they are in ``text``;
    return ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(
    path: str | os.PathLike,
    data: Any,
    *,
    indent: int | None = 2,
    ensure_ascii: bool = True,
    default: Callable[[Any], Any] | None = None,
) -> Path:
    """Write ``json.dumps(data, indent=..., ensure_ascii=..., default=...)`` and a final
    ``"\\n"`` to ``path`` atomically; return ``path``.

        >>> write_json("out/meta.json", {"dim": 64}, indent=None)  # doctest: +SKIP
    """
    body = json.dumps(data, indent=indent, ensure_ascii=ensure_ascii, default=default)
    return write_text(path, body + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A new empty temporary folder beside ``path`` to fill; on a clean exit it takes the
    place of ``path``, on an error it is removed.

    A folder already at ``path`` stays where it is while the new one is built; at the
    swap it is moved aside, and it is deleted only once the new one is in place (put back
    if the swap fails). Readers see the old folder or the new one, never a half-written
    one. Files inside are not fsynced one by one.

        >>> with atomic_dir("exports/coco") as tmp:  # doctest: +SKIP
        ...     write_everything(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(path, ".tmp", _create_dir)
    old = None
    try:
        yield tmp
        if os.path.lexists(path):
            old = _temp_sibling(path, ".old", _create_dir)
            os.replace(path, old / path.name)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not os.path.lexists(path):  # put the previous folder back
            os.replace(old / path.name, path)
        raise
    finally:
        # Dropped only once ``path`` holds a folder again (new or restored): if putting the
        # old one back failed, it stays in the hidden folder rather than being lost.
        if old is not None and os.path.lexists(path):
            shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(path.parent)


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
