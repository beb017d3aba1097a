"""What tasks share that the engine's skeleton (:mod:`xmodal.engine`) does not give yet.

:func:`older_run_values`: a run saved before an option existed has no such key in its
``config.yaml``; read back, its config holds today's default, which may not be what the
run was trained with. This puts back the behaviour of before the option::

    older_run_values(run_dir, config.model, aux_weight=0.0)  # from before TAC-GAN

:func:`manual_update`: one optimizer's update in a manual-optimization task's
``training_step`` (zero_grad, the engine's checked backward, its clipping, step)::

    update = partial(manual_update, step)
    update(0, loss_d)  # step.optimizers[0]

:func:`keep_upstream` and :func:`kept_upstream`: a part of an upstream run's model (a
retrieval run's text encoder) becomes part of this run's; the upstream's config is kept in
the run folder, so eval and predict rebuild that part without the upstream run::

    upstream, model = keep_upstream(run_dir, "text_encoder.json", source, "retrieval")
    ...  # later, in eval: the task, from its config; its model's weights come with ours
    upstream = kept_upstream(run_dir, "text_encoder.json", "retrieval")
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from xmodal._io import write_json
from xmodal.data._json import read_json
from xmodal.errors import DataError

__all__ = ["keep_upstream", "kept_upstream", "manual_update", "older_run_values"]


def older_run_values(run_dir: str | Path, section, **values) -> None:
    """For each key of ``values`` missing from the ``section.key`` section (``model``, ...)
    of ``run_dir``'s ``config.yaml``: set that field of ``section`` (a config section) to
    the value given. A config.yaml that cannot be read changes nothing."""
    import yaml

    try:
        saved = yaml.safe_load((Path(run_dir) / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return
    keys = saved.get(section.key) if isinstance(saved, dict) else None
    if isinstance(keys, dict):
        for key, value in values.items():
            if key not in keys:
                setattr(section, key, value)


def manual_update(step, i: int, loss: torch.Tensor) -> None:
    """Minimise ``loss`` by one step of ``step.optimizers[i]``, ``step`` the engine's
    :class:`~xmodal.engine.module.ManualStep`: zero the gradients, ``step.backward(loss)``
    (a loss that is not finite raises), ``step.clip_gradients``, then the optimizer's step."""
    optimizer = step.optimizers[i]
    optimizer.zero_grad()
    step.backward(loss)
    step.clip_gradients(optimizer)
    optimizer.step()


def keep_upstream(run_dir: str | Path, name: str, source, task: str) -> tuple[object, nn.Module]:
    """The ``(task, model)`` of the finished ``task`` run ``source`` (a folder), its config
    written to ``run_dir/name`` (``{"run": source, "config": ...}``) for
    :func:`kept_upstream`."""
    from xmodal.engine.config import config_to_dict
    from xmodal.engine.run import load_run

    upstream, model = load_run(source, task)
    spec = {"run": str(source), "config": config_to_dict(upstream.config)}
    write_json(Path(run_dir) / name, spec, indent=1)
    return upstream, model


def kept_upstream(run_dir: str | Path, name: str, task: str):
    """The ``task`` made from the config :func:`keep_upstream` kept in ``run_dir/name``
    (set up by nothing: a model it builds is untrained). DataError for a missing or bad
    file."""
    from xmodal.engine.config import config_from_dict
    from xmodal.registry import get_task

    spec = read_json(Path(run_dir) / name, "upstream run spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise DataError(f"{name} of {run_dir} has no 'config' object")
    cls = get_task(task)
    return cls(config_from_dict(cls.Config, spec["config"]))
