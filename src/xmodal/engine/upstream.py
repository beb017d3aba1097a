"""Upstream runs: a task that needs another task's trained model.

Text-to-image can take its sentence encoder from a retrieval run; SoundNet's student learns
from a visual teacher, Speech2Face from a face encoder, TTS needs a vocoder. Such a task
declares the config key that names the run folder and the task that trains it::

    class Text2ImageTask(Task):
        upstream = (Upstream("model.text_run", "retrieval", required=False),)

Before the fit the engine resolves each declared key (:func:`resolve_upstreams`):

- a run folder: used as it is, once checked (a finished run of that task);
- ``default`` (or nothing, for a ``required`` upstream): the upstream task with its
  defaults, plus the keys the declaration's ``inherit`` takes from the run's config,
  trained once into ``<cache>/runs/<task>/<key>`` where ``<key>`` hashes the resolved
  config, and reused by every later run that asks for it;
- nothing, for an optional upstream: the task does without.

The key then holds the folder, so the run's ``config.yaml`` records which run was used,
and ``run.json`` says whether the engine trained it. The cache is ``$XMODAL_CACHE`` or
``~/.cache/xmodal``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from xmodal.errors import DataError, ParameterError

__all__ = [
    "DEFAULT",
    "Upstream",
    "cache_root",
    "config_key",
    "resolve_upstreams",
    "upstream_run",
]

DEFAULT = "default"  # a key's value asking for the upstream task's defaults


@dataclass(frozen=True)
class Upstream:
    """A run of ``task`` named by the dotted config ``key``; ``required``: the task cannot
    do without it (nothing given means the defaults' run); ``inherit``: dotted keys the
    defaults' run takes from this run's config (e.g. ``data.compositional``: a backbone
    trained for a compositional run must not see its held-out pairs either)."""

    key: str
    task: str
    required: bool = True
    inherit: tuple[str, ...] = ()


def cache_root() -> Path:
    """``$XMODAL_CACHE`` or ``~/.cache/xmodal``: where upstream runs trained by the
    engine are kept."""
    root = os.environ.get("XMODAL_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "xmodal"


def config_key(task: str, overrides: Sequence[str] = ()) -> str:
    """The cache key of ``task``'s run with its defaults plus ``overrides``: a hash of the
    resolved config, so a change of any default makes a new run."""
    from xmodal.engine.config import config_to_dict, load_config
    from xmodal.registry import get_task

    cfg = load_config(get_task(task).Config, overrides=list(overrides))
    text = json.dumps({"task": task, "config": config_to_dict(cfg)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _finished(folder: Path, task: str) -> bool:
    if not (folder / "model.json").is_file() or not (folder / "model.safetensors").is_file():
        return False
    try:
        meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("task") == task


def upstream_run(
    task: str,
    run: str | Path | None = None,
    *,
    train: Callable | None,
    overrides: Sequence[str] = (),
    cache_dir: str | Path | None = None,
    echo: Callable[[str], None] | None = None,
) -> tuple[Path, bool]:
    """``(folder, trained_now)``: the run of ``task`` to use.

    ``run`` (a folder) is checked and used. Without it (or with ``"default"``) the run of
    ``task``'s defaults plus ``overrides`` is taken from ``cache_dir/runs/<task>/<hash>``
    (default :func:`cache_root`), trained there first by ``train``
    (:func:`xmodal.engine.train`, which calls this module) if it is not; ``train=None``
    (several processes) refuses to, with a ParameterError saying what to do.
    """
    if run is not None and str(run) != DEFAULT:
        folder = Path(run)
        if not folder.is_dir():
            raise DataError(f"upstream {task} run {str(folder)!r}: no such run folder")
        if not _finished(folder, task):
            raise DataError(
                f"{folder} is not a finished {task!r} run (no model.json of that task with "
                "model.safetensors beside it)"
            )
        return folder, False
    key = config_key(task, overrides)
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    folder = root / "runs" / task / key
    if _finished(folder, task):
        return folder, False
    if train is None:  # several processes: none may train (or remove) a shared folder
        raise ParameterError(
            f"the upstream {task} run is not in the cache ({folder}) and several processes "
            f"are training: train it first (xmodal train {task}) and give its folder"
        )
    if folder.exists():  # an earlier attempt that did not finish: continue or start again
        ckpt = folder / "checkpoints" / "last.ckpt"
        if ckpt.is_file():
            if echo:
                echo(f"upstream {task}: continuing {folder}")
            train(task, overrides=list(overrides), resume=folder, echo=echo)
            return folder, True
        import shutil

        shutil.rmtree(folder)
    if echo:
        echo(f"upstream {task}: training its defaults into {folder}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    train(task, overrides=list(overrides), run_dir=folder, echo=echo)
    return folder, True


def _get(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def _set(cfg, key: str, value) -> None:
    *path, last = key.split(".")
    node = cfg
    for part in path:
        node = getattr(node, part)
    setattr(node, last, value)


def resolve_upstreams(
    upstreams: Sequence[Upstream],
    cfg,
    *,
    train: Callable | None,
    echo: Callable[[str], None] | None = None,
) -> dict[str, dict]:
    """Resolve each declared upstream of a task's config ``cfg`` in place (its key then
    holds the run folder), training with ``train`` where needed; what was done, by key,
    for ``run.json``."""
    done = {}
    for up in upstreams:
        try:
            value = _get(cfg, up.key)
        except AttributeError:
            raise ParameterError(f"upstream key {up.key!r} is not in the task's config") from None
        if value is None and not up.required:
            continue
        t0 = time.perf_counter()
        overrides = [f"{k}={json.dumps(_get(cfg, k))}" for k in up.inherit]
        folder, trained = upstream_run(up.task, value, train=train, overrides=overrides,
                                       echo=echo)  # fmt: skip
        _set(cfg, up.key, str(folder))
        done[up.key] = {"task": up.task, "run": str(folder), "trained_by_engine": trained,
                        "asked": value}  # fmt: skip
        if trained:  # its cost counts in the time of the run it was trained for
            done[up.key]["seconds"] = round(time.perf_counter() - t0, 3)
    return done
