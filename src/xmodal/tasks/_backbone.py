"""A world-pretrained backbone (``xmodal train backbone``) as the image encoder of
another task: the task declares ``Upstream("model.backbone", "backbone", required=False)``
(``default``: the defaults' run, trained once into the cache; a run folder; or none), and
its build_model copies the backbone's encoder weights into its own encoder with
:func:`load_backbone`. The weights then travel in the task's own ``model.safetensors``."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from xmodal.errors import DataError, ParameterError

__all__ = ["backbone_upstream", "encoder_groups", "load_backbone", "start_encoder"]


def backbone_upstream(*, compositional: bool = False):
    """The ``model.backbone`` upstream of a task: ``default`` is the backbone run with the
    task's encoder, width, image size and world (and, for a task with a compositional
    split, ``data.compositional``: a backbone trained for a compositional run does not
    see the held-out pairs either)."""
    from xmodal.engine.upstream import Upstream

    keys = ("model.encoder", "model.channels", "data.image_size", "data.world_seed")
    keys += ("data.compositional",) if compositional else ()
    return Upstream("model.backbone", "backbone", required=False, inherit=keys)


def load_backbone(folder: str | Path, encoder: nn.Module, *, encoder_name: str,
                  channels: int, image_size: int, compositional: bool = False) -> None:  # fmt: skip
    """Copy the encoder of the finished backbone run ``folder`` into ``encoder``. A
    DataError names the value that differs when the backbone was trained with another
    encoder (``model.encoder``, ``model.channels``) or image size (``data.image_size``),
    or, for a ``compositional`` run, on scenes that show its held-out pairs."""
    from xmodal.engine.run import load_run
    from xmodal.engine.upstream import DEFAULT
    from xmodal.vision.encoders import WIDTH_ENCODERS

    if str(folder) == DEFAULT:
        raise ParameterError(
            f"model.backbone={DEFAULT!r} names the defaults' run, which xmodal train finds "
            "or trains; outside it, give a backbone run folder (or null)"
        )
    backbone, model = load_run(folder, "backbone")
    theirs = backbone.config
    for key, mine, its in (
        ("model.encoder", encoder_name, theirs.model.encoder),
        ("model.channels", channels if encoder_name in WIDTH_ENCODERS else None,
         theirs.model.channels if theirs.model.encoder in WIDTH_ENCODERS else None),
        ("data.image_size", image_size, theirs.data.image_size),
    ):  # fmt: skip
        if mine != its:
            raise DataError(
                f"the backbone run {str(folder)!r} was trained with {key}={its}; this run "
                f"has {key}={mine} (train a backbone with {key}={mine}, or set it to {its})"
            )
    if compositional and not getattr(theirs.data, "compositional", False):
        raise DataError(
            f"the backbone run {str(folder)!r} was trained on every colour-shape pair, the "
            "held-out ones of this compositional run included (train a backbone with "
            "data.compositional=true, or give model.backbone=default)"
        )
    encoder.load_state_dict(model.encoder.state_dict())


def encoder_groups(model: nn.Module, encoder: nn.Module, encoder_lr: float | None) -> list:
    """Optimizer parameter groups: ``model``'s parameters outside ``encoder``, then the
    encoder's at ``encoder_lr`` (None: the optimizer's own; 0: frozen, left out)."""
    mine = {id(p) for p in encoder.parameters()}
    groups = [{"params": [p for p in model.parameters() if id(p) not in mine]}]
    if encoder_lr is None:
        groups[0]["params"] += list(encoder.parameters())
    elif encoder_lr > 0:
        groups.append({"params": list(encoder.parameters()), "lr": encoder_lr})
    return groups


def start_encoder(task, encoder: nn.Module, *, fitting: bool) -> None:
    """Before training (``fitting``, not resuming: a checkpoint holds the weights), copy
    ``task.config.model.backbone``'s encoder into ``encoder``; freeze it when
    ``task.config.optim.encoder_lr`` is 0 (the task then keeps it in eval mode)."""
    m = task.config.model
    if fitting and m.backbone and not task.resuming:  # the engine resolved it to a folder
        d = task.config.data
        load_backbone(m.backbone, encoder, encoder_name=m.encoder, channels=m.channels,
                      image_size=d.image_size,
                      compositional=getattr(d, "compositional", False))  # fmt: skip
    if task.config.optim.encoder_lr == 0:
        encoder.requires_grad_(False)
