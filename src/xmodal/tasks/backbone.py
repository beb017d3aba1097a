"""The ``backbone`` task: the world's counterpart of an ImageNet-pretrained encoder.

An ``xmodal.vision`` image encoder is trained on the world's object ground truth: at
each position of its feature map, the shape, colour and size of the object under it (or
"none"), and from the pooled map the scene's place (:mod:`xmodal.vision.backbone`). Other
tasks start from it: ``model.backbone=default`` (the run of these defaults, trained once
into the cache and reused) or ``model.backbone=RUN_DIR``, fine-tuned at their
``optim.encoder_lr`` (0: frozen).

Metrics: per attribute, the accuracy on the cells an object covers (saying "none" there
counts as wrong), with the majority-class chance level beside it; ``objects``, telling
object from background on every cell; ``place`` per image.

Example::

    xmodal train backbone
    xmodal train caption model.backbone=runs/backbone/<id>
    xmodal predict backbone --run runs/backbone/<id> image.png
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from xmodal.data.cells import CELL_ATTRIBUTES, SceneCells, cell_classes, collate_cells
from xmodal.engine.base import (
    EvalConfig,
    ImageDataConfig,
    Section,
    flag,
    fraction,
    integer,
    trainer_defaults,
)
from xmodal.engine.config import TrainerConfig
from xmodal.engine.schedule import AdamConfig
from xmodal.engine.task import Task
from xmodal.errors import ParameterError
from xmodal.tasks._world import CompositionalConfig
from xmodal.vision.backbone import BackboneModel, backbone_loss, cell_accuracy_counts
from xmodal.vision.encoders import width_kwargs

__all__ = ["BackboneConfig", "BackboneModelConfig", "BackboneTask"]


@dataclass
class BackboneModelConfig(Section):
    """The encoder (``small-cnn`` at ``channels``, or a ResNet) and ``min_cover``, the
    share of a cell an object must cover to be the cell's object."""

    key: ClassVar[str] = "model"

    encoder: str = "small-cnn"
    channels: int = integer(128)  # small-cnn width (ignored by the ResNets)
    min_cover: float = fraction(0.25)


@dataclass
class BackboneDataConfig(ImageDataConfig):
    """The world's scenes (no other source: real images carry no per-cell labels);
    ``compositional``: the compositional world's, without its held-out (colour, shape)
    pairs (the backbone of a compositional caption or VQA run)."""

    train_size: int = 8000
    compositional: bool = flag(False)


@dataclass
class BackboneOptimConfig(AdamConfig):
    lr: float = 2e-3


@dataclass
class BackboneConfig(CompositionalConfig):
    model: BackboneModelConfig = field(default_factory=BackboneModelConfig)
    data: BackboneDataConfig = field(default_factory=BackboneDataConfig)
    optim: BackboneOptimConfig = field(default_factory=BackboneOptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    trainer: TrainerConfig = trainer_defaults(max_epochs=6)


def build_encoder(m: BackboneModelConfig) -> nn.Module:
    """The image encoder ``model.encoder`` names, untrained."""
    from xmodal.vision import create_encoder

    return create_encoder(m.encoder, **width_kwargs(m.encoder, m.channels))


class BackboneTask(Task):
    """A visual backbone pretrained on the world's objects under each map position."""

    name = "backbone"
    family = "representations"
    summary = "Visual backbone pretrained on the world's objects under each map position"
    Config = BackboneConfig

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__(config)
        encoder = build_encoder(config.model)
        size, stride = config.data.image_size, encoder.feature_info.stride
        if size % stride:
            raise ParameterError(
                f"data.image_size={size} must be a multiple of the encoder's stride {stride}"
            )
        self.grid = size // stride

    def world_data(self, split: str) -> Dataset:
        return SceneCells(self.world, split, size=self.config.data.size(split), grid=self.grid,
                          min_cover=self.config.model.min_cover)  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self.train_loader(self.data("train"), collate_fn=collate_cells)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def _loader(self, split: str) -> DataLoader:
        workers = self.config.data.num_workers
        return DataLoader(self.data(split), batch_size=self.config.eval.batch_size,
                          collate_fn=collate_cells, num_workers=workers)  # fmt: skip

    def build_model(self) -> nn.Module:
        return BackboneModel(build_encoder(self.config.model), cell_classes(),
                             len(self.world.config.places))  # fmt: skip

    def _forward(self, model: nn.Module, batch) -> tuple[dict, torch.Tensor, torch.Tensor]:
        device = self.model_device(model)
        return (
            model(batch["image"].to(device)),
            batch["cells"].to(device),
            batch["place"].to(device),
        )

    def training_step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        return backbone_loss(*self._forward(model, batch))

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        out, cells, place = self._forward(model, batch)
        counts = cell_accuracy_counts(out, cells, place)
        return {"xent": backbone_loss(out, cells, place)[0].item(),
                "shape_acc": counts["shape"][0] / max(counts["shape"][1], 1)}  # fmt: skip

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        totals: dict[str, list[int]] = {}
        seen = {name: torch.zeros(len(names) + 1, dtype=torch.long)
                for name, names in CELL_ATTRIBUTES.items()}  # fmt: skip
        places = torch.zeros(len(self.world.config.places), dtype=torch.long)
        held = [0, 0, 0]  # compositional split: cells of a held-out pair; shape, colour right
        for batch in self._loader(split):
            out, cells, place = self._forward(model, batch)
            if split == "compositional":
                for i, n in enumerate(self._held_out_counts(out, cells)):
                    held[i] += n
            for name, (right, total) in cell_accuracy_counts(out, cells, place).items():
                t = totals.setdefault(name, [0, 0])
                t[0], t[1] = t[0] + right, t[1] + total
            for a, name in enumerate(CELL_ATTRIBUTES):
                seen[name] += torch.bincount(
                    batch["cells"][:, a].flatten(), minlength=len(seen[name])
                )
            places += torch.bincount(batch["place"], minlength=len(places))
        metrics = {f"{name}_acc": right / max(total, 1) for name, (right, total) in totals.items()}
        # Chance: always the most common class (of the object cells; of the images).
        chance = {
            f"{name}_acc": float(c[1:].max() / max(c[1:].sum(), 1)) for name, c in seen.items()
        }
        n_cells = seen["shape"].sum()
        chance["objects_acc"] = float(max(seen["shape"][0], n_cells - seen["shape"][0]) / n_cells)
        chance["place_acc"] = float(places.max() / places.sum())
        metrics["chance"] = chance
        metrics["n_images"] = len(self.data(split))
        if split == "compositional":  # the objects of pairs never seen in training
            metrics["held_out_shape_acc"] = held[1] / max(held[0], 1)
            metrics["held_out_colour_acc"] = held[2] / max(held[0], 1)
            metrics["held_out_cells"] = held[0]
        return metrics

    def _held_out_counts(self, out, cells: torch.Tensor) -> tuple[int, int, int]:
        """The cells of a held-out (colour, shape) object, and how many of them the shape
        and the colour heads get right."""
        shapes, colours = CELL_ATTRIBUTES["shape"], CELL_ATTRIBUTES["colour"]
        shape, colour = cells[:, 0], cells[:, 1]  # class + 1; 0: no object
        mask = torch.zeros_like(shape, dtype=torch.bool)
        for c, sh in self.world.config.held_out:
            mask |= (colour == colours.index(c) + 1) & (shape == shapes.index(sh) + 1)
        right_shape = (out["shape"].argmax(1) == shape) & mask
        right_colour = (out["colour"].argmax(1) == colour) & mask
        return int(mask.sum()), int(right_shape.sum()), int(right_colour.sum())

    @torch.no_grad()
    def read(self, model: nn.Module, images: torch.Tensor) -> list[dict]:
        """What the model sees in each image: ``{"place": name, "cells": {attribute: (h, w)
        class names, "" for none}, "objects": sorted "size colour shape" phrases of the cells
        where every attribute names a class}``."""
        model.eval()
        out = model(images.to(self.model_device(model)))
        places = self.world.config.places
        maps = {name: out[name].argmax(1).cpu() for name in CELL_ATTRIBUTES}
        records = []
        for b in range(len(images)):
            cells = {name: [["" if k == 0 else names[k - 1] for k in row]
                            for row in maps[name][b].tolist()]
                     for name, names in CELL_ATTRIBUTES.items()}  # fmt: skip
            phrases = {
                f"{cells['size'][i][j]} {cells['colour'][i][j]} {cells['shape'][i][j]}"
                for i in range(self.grid) for j in range(self.grid)
                if all(cells[name][i][j] for name in CELL_ATTRIBUTES)
            }  # fmt: skip
            records.append({"place": places[int(out["place"][b].argmax())], "cells": cells,
                            "objects": sorted(phrases)})  # fmt: skip
        return records

    def figures(self, model: nn.Module) -> dict:
        from xmodal.viz.backbone import plot_cells

        n = self.config.eval.n_figures
        data = self.data("val")
        items = [data[i] for i in range(min(n, len(data)))]
        if not items:
            return {}
        batch = collate_cells(items)
        seen = self.read(model, batch["image"])
        shapes = CELL_ATTRIBUTES["shape"]
        return {
            f"cells_val_{int(batch['index'][k])}": plot_cells(
                batch["image"][k], batch["cells"][k, 0], seen[k]["cells"]["shape"], shapes,
                title=f"place: {seen[k]['place']}",
            )
            for k in range(len(items))
        }  # fmt: skip

    def predict(self, model: nn.Module, inputs: Sequence[str], out_dir: Path) -> list[dict]:
        from xmodal.data.images import load_image

        if not inputs:
            raise ParameterError("predict backbone needs at least one image file. Found none")
        size = self.config.data.image_size
        images = torch.stack([load_image(p, size=size) for p in inputs])
        records = []
        for path, seen in zip(inputs, self.read(model, images), strict=True):
            text = f"{seen['place']}: {', '.join(seen['objects']) or 'no object'}"
            records.append({"input": str(path), "text": text, **seen, "files": []})
        return records
