"""The training engine shared by every task: configs, run folders, train/eval/predict.

A task (:class:`Task`) is a config dataclass, a plain ``nn.Module``, its data and its
metrics; the engine does the rest on Lightning — checkpoints (resumable, written
atomically), logs, safetensors export, metrics.json, report.html, and scale-out through
``trainer.*`` overrides (see docs/scale-out.md).

    >>> from xmodal.engine import train, evaluate
    >>> run = train("caption", overrides=["trainer.max_epochs=2"])  # doctest: +SKIP
    >>> evaluate(run.run_dir, "val")  # doctest: +SKIP

Names are imported on first use: ``from xmodal.engine import Task, TrainerConfig,
seeded_loader`` loads torch but not Lightning, which only training needs.
"""

from __future__ import annotations

import importlib

__all__ = [
    "Run",
    "Task",
    "TrainerConfig",
    "TrainingInterrupted",
    "config_from_dict",
    "config_to_dict",
    "evaluate",
    "format_config",
    "load_config",
    "load_run",
    "predict",
    "seeded_loader",
    "train",
]

_WHERE = {
    "Task": "xmodal.engine.task",
    "TrainerConfig": "xmodal.engine.config",
    "config_from_dict": "xmodal.engine.config",
    "config_to_dict": "xmodal.engine.config",
    "format_config": "xmodal.engine.config",
    "load_config": "xmodal.engine.config",
    "seeded_loader": "xmodal.engine.data",
    "Run": "xmodal.engine.run",
    "TrainingInterrupted": "xmodal.engine.run",
    "evaluate": "xmodal.engine.run",
    "load_run": "xmodal.engine.run",
    "predict": "xmodal.engine.run",
    "train": "xmodal.engine.run",
}


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'xmodal.engine' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
