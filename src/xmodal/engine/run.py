"""The verbs every task shares — train, evaluate, predict — and the run folder they use.

A run folder (``runs/<task>/<YYYYmmdd-HHMMSS>/``) holds::

    config.yaml            the resolved config (``--resume`` reads it back)
    run.json               task name, xmodal version, start time
    <artifacts>            what the task's setup("fit") wrote (e.g. vocab.json)
    checkpoints/last.ckpt  the resumable state (every epoch end, every N steps, on Ctrl-C)
    logs/csv/metrics.csv   every logged value; logs/tensorboard/ the same for TensorBoard
    model.safetensors      exported weights (no pickle) ...
    model.json             ... and what rebuilds the model: {"task", "xmodal_version", "config"}
    <exports>              the model in its field's formats, if the task has any (Task.export)
    metrics.json           the task's metrics per split + {"train": epochs, steps, seconds (the
                           fit's), setup_seconds (setup + build_model, this session),
                           upstream_seconds (upstream runs trained for this one), ...}
    figures/*.png          the task's figures
    report.html            one self-contained page: metrics, curves, figures, config
    eval-<split>.json      written by ``xmodal eval``; predictions/ by ``xmodal predict``

Only rank 0 writes files when training runs on several processes.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import shutil
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xmodal._io import atomic_path, write_json, write_text
from xmodal.engine.config import config_from_dict, config_to_dict, format_config, load_config
from xmodal.engine.options import check_options
from xmodal.engine.report import write_report
from xmodal.engine.task import Task
from xmodal.errors import DataError, ParameterError
from xmodal.registry import get_task
from xmodal.viz.figure import save_figures

__all__ = [
    "Run",
    "TrainingInterrupted",
    "evaluate",
    "export_weights",
    "load_run",
    "load_weights",
    "predict",
    "train",
]

# Tells the processes that Lightning's DDP launcher starts which run folder to use.
_RUN_DIR_ENV = "XMODAL_RUN_DIR"

# Lightning's advice that does not apply to xmodal: the world is generated in-process and
# cheap, so few loader workers are right; small datasets log less often than every 20 steps;
# the seeded sampler makes mid-epoch checkpoints resumable although the loader has no state.
_QUIET = (
    r".*does not have many workers.*",
    r".*is smaller than the logging interval.*",
    r".*You defined a `validation_step` but have no `val_dataloader`.*",
    r".*ended before the epoch ended and your dataloader is not resumable.*",
    r".*`srun` command is available on your system but is not used.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",  # Lightning's use of torch
    # Per-step train logs are not all-reduced (a sync every step); rank 0's curve is kept.
    r".*when logging on epoch level in distributed setting.*",
)
_QUIET_LOGS = ("💡 Tip:",)  # Lightning's advertisements


class _DropMessages(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_QUIET_LOGS)


@contextlib.contextmanager
def _quiet():
    """Lightning's advice that does not apply to xmodal, silenced for the engine's calls."""
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    drop = _DropMessages()
    logger.addFilter(drop)
    with warnings.catch_warnings():
        for pattern in _QUIET:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            yield
        finally:
            logger.removeFilter(drop)


@dataclass
class Run:
    """What :func:`train` returns: the run folder, its task, config and metrics."""

    run_dir: Path
    task: str
    config: Any
    metrics: dict = field(default_factory=dict)


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped (Ctrl-C, or ``signal`` "SIGTERM" or "SIGUSR1"); ``checkpoint``
    says where it can resume from.

    A KeyboardInterrupt, so code that does not catch it stops as on any Ctrl-C.
    """

    def __init__(self, task: str, run_dir: Path, checkpoint: Path | None, saved: bool,
                 signal: str = "SIGINT") -> None:  # fmt: skip
        self.task = task
        self.run_dir = Path(run_dir)
        self.checkpoint = checkpoint
        self.saved = saved
        self.signal = signal
        if checkpoint is not None:
            state = "saved" if saved else "kept (the last one written before the stop)"
            how = f"{state} in {checkpoint}; resume with: xmodal train {task} --resume {run_dir}"
        else:
            how = (f"none was written yet; xmodal train {task} --resume {run_dir} trains the "
                   "run again from its beginning")  # fmt: skip
        by = f" by {signal}" if signal != "SIGINT" else ""
        super().__init__(f"training interrupted{by}; checkpoint {how}")

    def __str__(self) -> str:
        return str(self.args[0])


# ------------------------------------------------------------------------------ helpers


def _jsonable(obj):
    """Plain JSON data: tensors and NumPy numbers as Python numbers, NaN/Inf as None."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.item() if obj.numel() == 1 else obj.tolist())
    if callable(getattr(obj, "tolist", None)):  # NumPy arrays and scalars
        return _jsonable(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (bool, int, str)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def _write_json(path: Path, data) -> Path:
    return write_json(path, _jsonable(data), indent=2)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot be read as JSON: {err}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object. Found: {type(data).__name__}")
    return data


def _version() -> str:
    import xmodal

    return xmodal.__version__


def _env_rank() -> int:
    # The order Lightning uses (lightning.fabric.utilities.rank_zero._get_rank).
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if os.environ.get(key) is not None:
            try:
                return int(os.environ[key])
            except ValueError:
                return 0
    return 0


def _env_world_size() -> int:
    for key in ("WORLD_SIZE", "SLURM_NTASKS"):
        try:
            return max(1, int(os.environ.get(key, "1")))
        except ValueError:
            continue
    return 1


def _new_run_dir(runs_dir: Path, task: str) -> Path:
    parent = Path(runs_dir) / task
    if _env_world_size() > 1:
        # Several processes started by a launcher: all must agree on one folder.
        job = os.environ.get("SLURM_JOB_ID")
        rdzv = os.environ.get("TORCHELASTIC_RUN_ID", "none")
        if job:
            name = f"slurm-{job}"
        elif rdzv != "none":
            name = f"torchrun-{rdzv}"
        else:
            raise ParameterError(
                f"this is one of {_env_world_size()} processes; pass --run-dir DIR (the same "
                "for all of them) so that they share one run folder"
            )
        folder = parent / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        folder = parent / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise DataError(f"cannot create a new run folder in {parent}")  # pragma: no cover


def _check_task_name(run_dir: Path, task: str) -> None:
    info = run_dir / "run.json"
    if info.is_file():
        found = _read_json(info).get("task")
        if found is not None and found != task:
            raise ParameterError(f"{run_dir} holds a {found!r} run, not {task!r}")


def _build_trainer(cfg, run_dir: Path, callbacks: list, *, manual: bool = False):
    import lightning.pytorch as pl
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.loggers import TensorBoardLogger

    from xmodal.engine.module import AtomicCheckpointIO

    loggers = [
        _AppendingCSVLogger(run_dir / "logs", name="csv", version=""),
        TensorBoardLogger(run_dir / "logs", name="tensorboard", version="",
                          default_hp_metric=False),
    ]  # fmt: skip
    kwargs = cfg.trainer.trainer_kwargs()
    if manual:  # Lightning cannot clip for a task that steps itself: ManualStep does
        kwargs.pop("gradient_clip_val", None)
    try:
        return pl.Trainer(
            **kwargs,
            default_root_dir=run_dir,
            logger=loggers,
            callbacks=callbacks,
            plugins=[AtomicCheckpointIO()],
            enable_checkpointing=False,  # LastCheckpoint writes last.ckpt
        )
    except (MisconfigurationException, ValueError, TypeError, RuntimeError) as err:
        detail = " ".join(str(err).split())
        raise ParameterError(f"Lightning rejected the trainer.* settings: {detail}") from None


def _AppendingCSVLogger(*args, **kwargs):  # noqa: N802 - a factory standing in for a class
    """A CSVLogger that appends to an existing ``metrics.csv`` (a resumed run) instead of
    deleting it, as Lightning's own does.

    A run killed after its last checkpoint logged steps that the resumed run trains, and
    logs, again: the first row the resumed run logs, at step ``s``, first drops the rows
    at steps ``s`` and later (and a row cut short by the kill), so the log reads as the log
    of a run never stopped."""
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.loggers.csv_logs import ExperimentWriter
    from lightning.pytorch.loggers.logger import rank_zero_experiment

    class AppendingWriter(ExperimentWriter):
        def _check_log_dir_exists(self) -> None:
            self._trim = os.path.isfile(self.metrics_file_path)
            if self._trim:
                with open(self.metrics_file_path, newline="", encoding="utf-8") as f:
                    header = next(csv.reader(f), [])
                self.metrics_keys = sorted(k for k in header if k)

        def log_metrics(self, metrics_dict, step=None) -> None:
            if self._trim and step is not None:
                self._trim = False
                _drop_rows_from(Path(self.metrics_file_path), int(step))
            super().log_metrics(metrics_dict, step)

    class AppendingCSVLogger(CSVLogger):
        @property
        @rank_zero_experiment
        def experiment(self):
            if self._experiment is None:
                self._fs.makedirs(self.root_dir, exist_ok=True)
                self._experiment = AppendingWriter(log_dir=self.log_dir)
            return self._experiment

    return AppendingCSVLogger(*args, **kwargs)


def _drop_rows_from(path: Path, step: int) -> None:
    """Rewrite the CSV log ``path`` without its rows at ``step`` and later, nor a row cut
    short (too few fields, a step that is not a whole number); the file then ends with a
    line break, so the next row is not glued onto a last one whose break was lost."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        rows = list(reader)
    if "step" not in header:
        return
    at = header.index("step")

    def before(row: list[str]) -> bool:
        return len(row) == len(header) and row[at].isdigit() and int(row[at]) < step

    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *filter(before, rows)])


def _read_checkpoint(path: Path) -> dict:
    """The checkpoint at ``path`` (weights only: nothing is unpickled); DataError when it
    cannot be read (missing, truncated, not a checkpoint)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - any failure to read means the same to the user
        detail = " ".join(str(err).split())[:300]  # one line, however torch words it
        raise DataError(f"{path}: cannot be read as a checkpoint: {detail}") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), Mapping):
        raise DataError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return ckpt


def _usable_checkpoint(path: Path, say) -> tuple[Path, dict]:
    """``(path, checkpoint)`` to resume from: ``path`` (``last.ckpt``), or, when it cannot
    be read, the ``previous.ckpt`` beside it, with a warning naming both (the damaged one
    is renamed ``last.ckpt.damaged``); DataError when neither can be read."""
    from xmodal.engine.module import PREVIOUS

    try:
        return path, _read_checkpoint(path)
    except DataError as err:
        damage = str(err)
    previous = path.with_name(PREVIOUS)
    if not previous.is_file():
        raise DataError(f"{damage}; and there is no {PREVIOUS} beside it to go back to")
    try:
        ckpt = _read_checkpoint(previous)
    except DataError as err:
        raise DataError(f"{damage}; and {err}") from None
    # Set aside (for a look), so that the next save does not keep it as "previous".
    damaged = path.with_name(path.name + ".damaged")
    os.replace(path, damaged)
    message = f"{damage}; resuming from {previous}, the checkpoint before it ({damaged} kept)"
    warnings.warn(message, stacklevel=2)
    say(f"warning: {message}")
    return previous, ckpt


def _check_checkpoint(path: Path, ckpt: dict, module) -> tuple[int, int] | None:
    """Fail early, with a clear message, on a checkpoint that cannot restore ``module``;
    else the position inside an epoch it was written at (``resume_position``)."""
    from xmodal.engine.module import resume_position

    state = ckpt["state_dict"]
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        details = []
        for label, keys in (("missing", missing), ("unexpected", unexpected),
                            ("different shapes", wrong)):  # fmt: skip
            if keys:
                details.append(f"{label}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}")
        raise DataError(
            f"{path} does not fit the model the config builds ({'; '.join(details)}); "
            "was a model setting changed since the run started?"
        )
    return resume_position(ckpt)


# ------------------------------------------------------------------------------ weights


def export_weights(model: nn.Module, path: str | Path) -> Path:
    """Write ``model.state_dict()`` as safetensors, atomically.

    Tied weights (one tensor under several names) are stored once; the other names are
    recorded in the metadata and restored by :func:`load_weights`.
    """
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    storages: dict[int, int] = {}
    state = {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    for name, t in state.items():
        t = t.detach()
        key = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape),
               t.stride(), t.dtype)  # fmt: skip
        if key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = t
        ptr = t.untyped_storage().data_ptr()
        storages[ptr] = storages.get(ptr, 0) + 1
    for name, t in tensors.items():
        own_storage = t.untyped_storage().nbytes() == t.numel() * t.element_size()
        shared = storages[t.untyped_storage().data_ptr()] > 1
        t = t.cpu()
        tensors[name] = t.clone().contiguous() if shared or not own_storage else t.contiguous()
    metadata = {"format": "pt", "xmodal_aliases": json.dumps(aliases)}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load safetensors written by :func:`export_weights` into ``model`` (no pickle)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    try:
        state = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        aliases = json.loads(metadata.get("xmodal_aliases", "{}"))
    except (SafetensorError, OSError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot be read as safetensors: {err}") from None
    for alias, source in aliases.items():
        if source in state:
            state[alias] = state[source]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        raise DataError(f"{path} does not fit the model its config builds: {detail}") from None
    return model


# ------------------------------------------------------------------------------ train


def _prepare(task: str, config_file, overrides, run_dir, resume):
    """(task class, config, run folder, checkpoint to resume from or None)."""
    task_cls = get_task(task)
    if resume is not None and run_dir is not None:
        raise ParameterError("give either run_dir (a new run) or resume (an existing one)")
    if resume is not None:
        folder = Path(resume)
        if not folder.is_dir():
            raise DataError(f"--resume {folder}: no such run folder")
        if not (folder / "config.yaml").is_file():
            raise DataError(f"--resume {folder}: not a run folder (no config.yaml)")
        _check_task_name(folder, task)
        ckpt = folder / "checkpoints" / "last.ckpt"
        # A run stopped before its first checkpoint (in an auxiliary fit, say) is trained
        # again from its beginning; a damaged last.ckpt is handled by _usable_checkpoint.
        has_ckpt = ckpt.is_file() or (ckpt.parent / "previous.ckpt").is_file()
        files = [folder / "config.yaml"]
        if config_file is not None:
            files += [config_file] if isinstance(config_file, (str, Path)) else list(config_file)
        cfg = load_config(task_cls.Config, config_file=files, overrides=overrides)
        return task_cls, cfg, folder, ckpt if has_ckpt else None
    cfg = load_config(task_cls.Config, config_file=config_file, overrides=overrides)
    return task_cls, cfg, None, None


def resolve_config(task: str, *, config_file=None, overrides: Iterable[str] = (), resume=None):
    """The config :func:`train` would use (what ``--print-config`` shows); no folder is made."""
    return _prepare(task, config_file, overrides, None, resume)[1]


def train(
    task: str,
    *,
    config_file=None,
    overrides: Iterable[str] = (),
    runs_dir: str | Path = "runs",
    run_dir: str | Path | None = None,
    resume: str | Path | None = None,
    echo: Callable[[str], None] | None = None,
) -> Run:
    """Train the task registered as ``task`` and fill its run folder.

    ``config_file`` (YAML) and ``overrides`` (``"key=value"``) change the config's
    defaults. The run goes to a new ``runs_dir/<task>/<YYYYmmdd-HHMMSS>/`` or to
    ``run_dir``; ``resume=DIR`` continues the run in DIR from ``DIR/checkpoints/last.ckpt``
    with DIR's config (overrides on top, e.g. ``trainer.max_epochs=20`` to train longer).
    ``echo`` receives progress lines (the CLI passes ``print``).

    Raises :class:`TrainingInterrupted` after Ctrl-C, once ``last.ckpt`` is saved.

        >>> run = train("caption", overrides=["trainer.max_epochs=1"])  # doctest: +SKIP
        >>> run.metrics["test"]["bleu4"]  # doctest: +SKIP
    """
    say = echo or (lambda line: None)
    task_cls, cfg, resume_dir, ckpt_path = _prepare(task, config_file, overrides, run_dir, resume)
    if resume_dir is not None and ckpt_path is None:
        message = (f"{resume_dir}: no checkpoint yet (the run stopped before its first one); "
                   "training it again from its beginning")  # fmt: skip
        warnings.warn(message, stacklevel=2)
        say(f"warning: {message}")
    rank = _env_rank()
    launched_child = os.environ.get(_RUN_DIR_ENV) and os.environ.get("LOCAL_RANK", "0") != "0"
    created = False  # a folder this call made, removed again if the run fails to start
    if resume_dir is not None:
        folder = resume_dir
    elif launched_child:
        folder = Path(os.environ[_RUN_DIR_ENV])
    elif run_dir is not None:
        folder = Path(run_dir)
        if (folder / "config.yaml").exists() and rank == 0:
            raise ParameterError(
                f"{folder} already holds a run; continue it with --resume {folder} or choose "
                "a new folder"
            )
        created = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
    else:
        folder = _new_run_dir(Path(runs_dir), task)
        created = True

    writer = rank == 0 and not launched_child
    began: list[bool] = []  # _fit appends True as the fit begins
    try:
        return _fit(task, task_cls, cfg, folder, ckpt_path, say, writer=writer, began=began)
    except BaseException:
        # Bad data found by the task's setup (a missing or empty file, ...) or Ctrl-C stops
        # a new run before its fit began: leave no half-made run to be mistaken for one.
        if not began and writer and resume_dir is None and _env_world_size() <= 1:
            if created:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                for name in ("config.yaml", "run.json"):
                    (folder / name).unlink(missing_ok=True)
        raise


def _fit(task: str, task_cls, cfg, folder: Path, ckpt_path: Path | None, say, *,
         writer: bool, began: list[bool]) -> Run:  # fmt: skip
    """Set the task up, fit it with Lightning, then (rank 0) finish the run folder.

    A new run's folder gets its config before the task's setup, so a run stopped in an
    auxiliary fit (before any checkpoint) can be started again with ``--resume``."""
    import lightning.pytorch as pl

    from xmodal.engine.module import TaskModule

    upstream = {}
    if ckpt_path is None and task_cls.upstream:
        from xmodal.engine.upstream import resolve_upstreams

        # Before the seed: training an upstream run must not change this run's numbers.
        # With several processes none trains an upstream: each would write its folder.
        may_train = train if _env_world_size() <= 1 else None
        upstream = resolve_upstreams(task_cls.upstream, cfg, train=may_train, echo=say)
    if writer and ckpt_path is None:
        _start_folder(task, cfg, folder, resumed=False, upstream=upstream)
        say(f"run folder: {folder}")
    pl.seed_everything(cfg.seed, verbose=False)
    task_obj: Task = task_cls(cfg)
    task_obj.resuming = ckpt_path is not None
    setup_t0 = time.perf_counter()
    task_obj.setup(folder, "fit")
    model = task_obj.build_model()
    setup_seconds = time.perf_counter() - setup_t0  # e.g. pre-trainings before the fit
    if not isinstance(model, nn.Module):
        raise DataError(
            f"{task_cls.__name__}.build_model must return an nn.Module. Found: {model!r}"
        )
    module = TaskModule(task_obj, model)
    if not module.automatic_optimization:
        module.clip_val = cfg.trainer.gradient_clip_val
    position = None
    if ckpt_path is not None:
        ckpt_path, ckpt = _usable_checkpoint(ckpt_path, say)
        position = _check_checkpoint(ckpt_path, ckpt, module)
        del ckpt
    if writer and ckpt_path is not None:  # after the checks: a failed --resume leaves
        _start_folder(task, cfg, folder, resumed=True, upstream=upstream)  # the config as it was
        say(f"resuming: {folder}")
    began.append(True)
    trainer = _run_trainer(task, task_obj, module, cfg, folder, ckpt_path, position)
    metrics: dict[str, Any] = {}
    if trainer.is_global_zero:
        metrics = _finish_folder(task, task_obj, module, trainer, cfg, folder, setup_seconds)
        say(f"wrote {folder / 'model.safetensors'}, metrics.json, report.html")
    return Run(run_dir=folder, task=task, config=cfg, metrics=metrics)


def _start_folder(task: str, cfg, folder: Path, *, resumed: bool, upstream: dict) -> None:
    """``config.yaml`` (the resolved config) and, for a new run, ``run.json``."""
    header = f"# xmodal train {task} — the resolved config of this run\n"
    write_text(folder / "config.yaml", header + format_config(cfg))
    if not resumed:
        started = datetime.now().isoformat(timespec="seconds")
        info = {"task": task, "xmodal_version": _version(), "started": started}
        if upstream:
            info["upstream"] = upstream
        _write_json(folder / "run.json", info)


def _run_trainer(task: str, task_obj: Task, module, cfg, folder: Path, ckpt_path, position):
    """``trainer.fit`` with the run's checkpoints, resumed at ``position`` (epoch, batches
    done) inside an epoch when the checkpoint was written there; :class:`TrainingInterrupted`
    after Ctrl-C (once the checkpoint is saved). Returns the Trainer."""
    from xmodal.engine.module import LastCheckpoint, skip_done_batches

    last = LastCheckpoint(
        folder / "checkpoints", every_n_steps=cfg.trainer.checkpoint_every_n_steps
    )
    sigint = signal.getsignal(signal.SIGINT)
    had_env = os.environ.get(_RUN_DIR_ENV)
    main_thread = threading.current_thread() is threading.main_thread()
    sigusr1 = signal.getsignal(signal.SIGUSR1) if main_thread else None

    def usr1_as_term(signum, frame) -> None:
        # SIGUSR1, which some schedulers send before the end (SLURM's --signal=USR1@120),
        # stops the run as SIGTERM does: Lightning's own path, which tells every rank.
        last.signal_name = "SIGUSR1"
        os.kill(os.getpid(), signal.SIGTERM)

    with _quiet():
        trainer = _build_trainer(cfg, folder, [last], manual=not module.automatic_optimization)
        train_loader = task_obj.train_dataloader()
        if _env_world_size() <= 1:  # before any iterator: workers prefetch at once
            skip_done_batches(train_loader, position)
        val_loader = task_obj.val_dataloader()
        os.environ[_RUN_DIR_ENV] = str(folder.resolve())  # for processes Lightning starts
        if main_thread:  # set before the fit: Lightning then leaves SIGUSR1 to us
            signal.signal(signal.SIGUSR1, usr1_as_term)
        try:
            trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader,
                        ckpt_path=ckpt_path, weights_only=True)  # fmt: skip
        except SystemExit:
            # Lightning ends the process (sys.exit(1)) after Ctrl-C; a library call
            # raises instead, once LastCheckpoint has saved.
            if not last.interrupted:
                raise
            checkpoint = last.path if last.path.is_file() else None
            raise TrainingInterrupted(task, folder, checkpoint, last.saved_on_interrupt,
                                      last.signal) from None  # fmt: skip
        finally:
            # Lightning ignores further Ctrl-C after the first; give the handler back.
            if main_thread:
                signal.signal(signal.SIGINT, sigint)
                signal.signal(signal.SIGUSR1, sigusr1)
            if had_env is None:
                os.environ.pop(_RUN_DIR_ENV, None)
            else:
                os.environ[_RUN_DIR_ENV] = had_env
        if last.interrupted:  # e.g. Ctrl-C in a worker process Lightning did not turn into exit
            raise TrainingInterrupted(task, folder, last.path if last.path.is_file() else None,
                                      last.saved_on_interrupt, last.signal)  # fmt: skip
    return trainer


def _finish_folder(task: str, task_obj: Task, module, trainer, cfg, folder: Path,
                   setup_seconds: float) -> dict:  # fmt: skip
    """The weights (safetensors, the task's own formats), metrics.json, the figures and
    report.html of a finished fit; the metrics."""
    model = module.model
    wall_seconds = module.wall_seconds
    model.eval()
    export_weights(model, folder / "model.safetensors")
    _write_json(folder / "model.json", {"task": task, "xmodal_version": _version(),
                                        "config": config_to_dict(cfg)})  # fmt: skip
    task_obj.export(model, folder)
    model.to(trainer.strategy.root_device)
    metrics: dict[str, Any] = {}
    with torch.no_grad():
        for split in getattr(cfg, "eval_splits", ("test",)):
            metrics[split] = _jsonable(task_obj.evaluate(model, split))
    timed = max(module.train_seconds, 1e-9)
    rate = round(module.samples_timed / timed, 2) if module.samples_timed else None
    metrics["train"] = {
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "seconds": round(wall_seconds, 3),
        "setup_seconds": round(setup_seconds, 3),
        "samples": module.samples_seen,
        "samples_per_s": rate,
    }
    # Upstream runs the engine trained for this run (run.json says how long they took).
    try:
        upstream = _read_json(folder / "run.json").get("upstream") or {}
    except DataError:
        upstream = {}
    spent = [u["seconds"] for u in upstream.values() if isinstance(u, dict) and "seconds" in u]
    if spent:
        metrics["train"]["upstream_seconds"] = round(sum(map(float, spent)), 3)
    _write_json(folder / "metrics.json", metrics)
    with torch.no_grad():
        save_figures(task_obj.figures(model), folder / "figures")
    # Figures the task wrote while training (e.g. samples after each epoch) count too.
    figures = sorted((folder / "figures").rglob("*.png"))
    model.cpu()
    write_report(folder, title=f"xmodal {task} — {folder.name}",
                 config_text=format_config(cfg), metrics=metrics, figures=figures)  # fmt: skip
    return metrics


# ------------------------------------------------------------------------------ load / eval


def _not_finished(run_dir: Path, missing: str, task: str | None) -> DataError:
    hint = "training may not have finished"
    if (run_dir / "checkpoints" / "last.ckpt").is_file():
        name = task or (_read_json(run_dir / "run.json").get("task", "TASK")
                        if (run_dir / "run.json").is_file() else "TASK")  # fmt: skip
        hint += f"; xmodal train {name} --resume {run_dir} continues it from its checkpoint"
    return DataError(f"{run_dir} has no {missing}: {hint}")


def load_run(
    run_dir: str | Path, task: str | None = None, *, stage: str = "eval", device=None
) -> tuple[Task, nn.Module]:
    """The trained ``(task, model)`` of a run folder, built from ``model.json`` and
    ``model.safetensors`` (nothing is unpickled); the model is in eval mode.

    ``task``, if given, must be the run's task. ``device`` (default CPU) receives the model.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run folder")
    if not (run_dir / "model.json").is_file():
        raise _not_finished(run_dir, "model.json", task)
    if not (run_dir / "model.safetensors").is_file():
        raise _not_finished(run_dir, "model.safetensors", task)
    meta = _read_json(run_dir / "model.json")
    name = meta.get("task")
    if not isinstance(name, str) or not isinstance(meta.get("config"), dict):
        raise DataError(f"{run_dir / 'model.json'}: needs a 'task' name and a 'config' object")
    if task is not None and task != name:
        raise ParameterError(f"{run_dir} holds a {name!r} run, not {task!r}")
    task_cls = get_task(name)
    cfg = config_from_dict(task_cls.Config, meta["config"])
    task_obj: Task = task_cls(cfg)
    missing = [a for a in task_obj.artifacts() if not (run_dir / a).exists()]
    if missing:
        raise DataError(f"{run_dir} lacks {', '.join(missing)}, which {name} needs to load")
    task_obj.setup(run_dir, stage)
    model = task_obj.build_model()
    load_weights(model, run_dir / "model.safetensors")
    model.to(torch.device(device) if device is not None else torch.device("cpu"))
    model.eval()
    return task_obj, model


def _check_split(split) -> str:
    if not isinstance(split, str) or not split or "/" in split or "\\" in split or split[0] == ".":
        raise ParameterError(f"split must be a plain name such as 'test'. Found: {split!r}")
    return split


def evaluate(run_dir: str | Path, split: str = "test", *, task: str | None = None,
             device=None) -> dict:  # fmt: skip
    """Every metric of the run's task on ``split``; also written to ``eval-<split>.json``."""
    split = _check_split(split)
    task_obj, model = load_run(run_dir, task, device=device)
    with torch.no_grad():
        metrics = _jsonable(task_obj.evaluate(model, split))
    _write_json(Path(run_dir) / f"eval-{split}.json", metrics)
    return metrics


def predict(
    run_dir: str | Path,
    inputs: Sequence[str],
    out_dir: str | Path | None = None,
    *,
    task: str | None = None,
    device=None,
    **options,
) -> list[dict]:
    """The run's model on user inputs (file paths, texts): one JSON-ready record each.

    ``options`` are the task's own (the fields of its ``PredictOptions``, e.g. the
    retrieval task's ``text=[...]``; those not given keep their defaults); with them
    ``inputs`` may be empty. Files the task writes go to
    ``out_dir`` (default ``run_dir/predictions``), with the records as ``predictions.json``.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    inputs = [str(x) for x in inputs]
    if not inputs and not options:
        raise ParameterError("predict needs at least one input")
    task_obj, model = load_run(run_dir, task, stage="predict", device=device)
    out_file = options.pop("out_file", None)
    options = check_options(type(task_obj).PredictOptions, task_obj.name, options)
    if out_file is not None:
        options["out_file"] = Path(out_file)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "predictions"
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        records = _jsonable(list(task_obj.predict(model, inputs, out, **options)))
    _write_json(out / "predictions.json", records)
    return records
