"""A part of an upstream run's model kept in this run's model.

Text-to-image can take its sentence encoder from a retrieval run (an
:class:`~xmodal.engine.upstream.Upstream`): the encoder's weights then travel in the
text-to-image run's own ``model.safetensors``, and the retrieval run's config is kept in
the run folder, so eval and predict rebuild that part without the upstream run::

    upstream, model = keep_upstream(run_dir, "text_encoder.json", source, "retrieval")
    ...  # later, in eval: the task, from its config; its model's weights come with ours
    upstream = kept_upstream(run_dir, "text_encoder.json", "retrieval")
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from xmodal._io import read_json, write_json
from xmodal.engine.config import config_from_dict, config_to_dict
from xmodal.errors import DataError
from xmodal.registry import get_task

__all__ = ["keep_upstream", "kept_upstream"]


def keep_upstream(run_dir: str | Path, name: str, source, task: str) -> tuple[object, nn.Module]:
    """The ``(task, model)`` of the finished ``task`` run ``source`` (a folder), its config
    written to ``run_dir/name`` (``{"run": source, "config": ...}``) for
    :func:`kept_upstream`."""
    from xmodal.engine.run import load_run

    upstream, model = load_run(source, task)
    spec = {"run": str(source), "config": config_to_dict(upstream.config)}
    write_json(Path(run_dir) / name, spec, indent=1)
    return upstream, model


def kept_upstream(run_dir: str | Path, name: str, task: str):
    """The ``task`` made from the config :func:`keep_upstream` kept in ``run_dir/name``
    (set up by nothing: a model it builds is untrained). DataError for a missing or bad
    file."""
    spec = read_json(Path(run_dir) / name, "upstream run spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise DataError(f"{name} of {run_dir} has no 'config' object")
    cls = get_task(task)
    return cls(config_from_dict(cls.Config, spec["config"]))
