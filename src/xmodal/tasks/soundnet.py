"""The ``soundnet`` task: a sound network taught by a vision network (SoundNet, Aytar,
Vondrick & Torralba, 2016).

The student (:class:`~xmodal.matching.soundnet.SoundNetStudent`: SoundNet's raw-waveform
CNN, conv1 to conv``model.layers``, with an object and a place head) hears each world
scene; the teacher, a frozen ``backbone`` run (``model.teacher``: ``default`` trains the
backbone's defaults once into the cache), sees its frame and gives object and place
posteriors (:func:`~xmodal.matching.soundnet.backbone_posteriors`). The loss is the KL
divergence from teacher to student for both heads; the student never sees a label.

The world's clips are ``data.clip_seconds`` long (2 s): SoundNet's eight layers see 20 s
per output step, so the default stops at conv5 and its pool (17,438 samples, two steps a
clip), the layer whose features the paper found best for transfer.

Metrics (the test split): the student's place accuracy from sound alone beside the
teacher's from the frame, and their ratio; each head's mAP (scikit-learn's average
precision per class, the mean over classes with a positive) against the objects in the
frame and against the ones heard, for student and teacher; the KL to the teacher.
docs/soundnet.md has the details and results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from xmodal.engine.base import (
    EvalConfig,
    ImageDataConfig,
    Section,
    TaskConfig,
    integer,
    number,
    trainer_defaults,
)
from xmodal.engine.config import TrainerConfig
from xmodal.engine.schedule import AdamConfig
from xmodal.engine.task import Task
from xmodal.engine.upstream import Upstream
from xmodal.errors import DataError, ParameterError

__all__ = ["SoundNetConfig", "SoundNetModel", "SoundNetTask"]

TEACHER_FILE = "teacher.json"  # model.teacher's config: what rebuilds the teacher


@dataclass
class SoundNetModelConfig(Section):
    """The student: SoundNet's conv1 .. conv``layers`` at ``width`` times its widths; the
    teacher: a ``backbone`` run; ``temperature`` softens both sides of the KL."""

    key: ClassVar[str] = "model"

    layers: int = integer(5)
    width: float = number(1.0, positive=True)
    teacher: str | None = "default"
    temperature: float = number(1.0, positive=True)
    object_weight: float = number(1.0)
    place_weight: float = number(1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.layers <= 8:
            raise ParameterError(f"model.layers must be in [1, 8]. Found: {self.layers}")


@dataclass
class SoundNetDataConfig(ImageDataConfig):
    """The world's scenes with their sound, ``clip_seconds`` long."""

    clip_seconds: float = number(2.0, positive=True)
    train_size: int = integer(8000)
    batch_size: int = integer(64)


@dataclass
class SoundNetOptimConfig(AdamConfig):
    lr: float = 1e-3


@dataclass
class SoundNetEvalConfig(EvalConfig):
    """Evaluation; ``top_k`` objects predict names. ``transfer``: the labelled sounds of the
    transfer experiment, ``world`` (the world's, ``transfer_clips`` per class, 5 s, in
    ESC-50's folds) or an ESC-50-layout folder; null: none."""

    top_k: int = integer(3)
    transfer: str | None = "world"
    transfer_clips: int = integer(40)


@dataclass
class SoundNetConfig(TaskConfig):
    model: SoundNetModelConfig = field(default_factory=SoundNetModelConfig)
    data: SoundNetDataConfig = field(default_factory=SoundNetDataConfig)
    optim: SoundNetOptimConfig = field(default_factory=SoundNetOptimConfig)
    eval: SoundNetEvalConfig = field(default_factory=SoundNetEvalConfig)
    trainer: TrainerConfig = trainer_defaults(max_epochs=6)


class SoundNetModel(nn.Module):
    """The student and its frozen teacher in one module, so that a run's weights hold
    both (evaluation compares them; predict uses the student alone)."""

    def __init__(self, student: nn.Module, teacher: nn.Module) -> None:
        super().__init__()
        self.student = student
        self.teacher = teacher.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> SoundNetModel:
        super().train(mode)
        self.teacher.eval()  # frozen: its batch-norm statistics too
        return self


class SoundNetTask(Task):
    """SoundNet: a raw-waveform student distilled from a visual teacher's posteriors."""

    name = "soundnet"
    family = "matching"
    summary = "SoundNet: a raw-waveform sound network taught by a visual teacher (KL)"
    Config = SoundNetConfig
    upstream = (Upstream("model.teacher", "backbone", inherit=("data.image_size",
                                                               "data.world_seed")),)  # fmt: skip

    def __init__(self, config: SoundNetConfig) -> None:
        super().__init__(config)
        self._teacher_task = None
        self._teacher_state: dict | None = None
        self._transfer_result: dict | None = None

    # ------------------------------------------------------------------ data

    def world_data(self, split: str) -> Dataset:
        from xmodal.data.sounds import SoundScenes

        return SoundScenes(self.world, split, size=self.config.data.size(split))

    def train_dataloader(self) -> DataLoader:
        return self.train_loader(self.data("train"), drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def _loader(self, split: str) -> DataLoader:
        d = self.config.data
        return DataLoader(self.data(split), batch_size=self.config.eval.batch_size,
                          num_workers=d.num_workers)  # fmt: skip

    def artifacts(self) -> list[str]:
        return [TEACHER_FILE]

    def setup(self, run_dir: Path, stage: str) -> None:
        from xmodal.engine.keep import keep_upstream, kept_upstream

        if stage == "fit":  # the engine resolved model.teacher to a backbone run's folder
            task, model = keep_upstream(run_dir, TEACHER_FILE, self.config.model.teacher,
                                        "backbone")  # fmt: skip
            self._teacher_task, self._teacher_state = task, model.state_dict()
            self._check_teacher()
        else:
            self._teacher_task = kept_upstream(run_dir, TEACHER_FILE, "backbone")

    def _check_teacher(self) -> None:
        theirs, mine = self._teacher_task.config.data, self.config.data
        for key in ("image_size", "world_seed"):
            if getattr(theirs, key) != getattr(mine, key):
                raise DataError(
                    f"the teacher {self.config.model.teacher!r} was trained with data.{key}="
                    f"{getattr(theirs, key)}; this run has data.{key}={getattr(mine, key)}"
                )

    # ------------------------------------------------------------------ model

    def object_names(self) -> list[str]:
        from xmodal.matching.soundnet import object_classes
        from xmodal.world import COLOURS, SHAPES

        return object_classes(COLOURS, SHAPES)

    def build_model(self) -> nn.Module:
        from xmodal.audio.encoders import create_encoder
        from xmodal.matching.soundnet import SoundNetStudent

        m, world = self.config.model, self.world
        encoder = create_encoder("soundnet", sample_rate=world.config.sample_rate,
                                 width=m.width, num_layers=m.layers)  # fmt: skip
        student = SoundNetStudent(encoder, len(self.object_names()), len(world.config.places))
        teacher = self._teacher_task.build_model()
        if self._teacher_state is not None:
            teacher.load_state_dict(self._teacher_state)
        return SoundNetModel(student, teacher)

    def configure_optimizers(self, model: nn.Module):
        return self.config.optim.configure(model.student.parameters(), self.total_steps())

    def _outputs(self, model: nn.Module, batch) -> tuple[dict, dict]:
        from xmodal.matching.soundnet import backbone_posteriors

        device = self.model_device(model)
        with torch.no_grad():
            teacher = backbone_posteriors(model.teacher(batch["image"].to(device)),
                                          self.config.model.temperature)  # fmt: skip
        return model.student(batch["audio"].to(device)), teacher

    def _loss(self, student: dict, teacher: dict) -> tuple[torch.Tensor, dict[str, float]]:
        from xmodal.nn.losses import distillation_loss

        m = self.config.model
        parts = {name: distillation_loss(student[name], teacher[name], m.temperature)
                 for name in ("objects", "places")}  # fmt: skip
        loss = m.object_weight * parts["objects"] + m.place_weight * parts["places"]
        return loss, {f"kl_{name}": float(v.detach()) for name, v in parts.items()}

    def training_step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        return self._loss(*self._outputs(model, batch))

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        student, teacher = self._outputs(model, batch)
        right = (student["places"].argmax(1).cpu() == batch["place"]).float()
        return {"loss": float(self._loss(student, teacher)[0]), "place_acc": float(right.mean())}

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def _collect(self, model: nn.Module, split: str) -> dict[str, torch.Tensor]:
        model.eval()
        rows: dict[str, list] = {}
        for batch in self._loader(split):
            student, teacher = self._outputs(model, batch)
            for name, value in (
                ("student_places", student["places"]),  # logits
                ("student_objects", student["objects"]),
                ("teacher_places", teacher["places"]),  # posteriors
                ("teacher_objects", teacher["objects"]),
                ("place", batch["place"]),
                ("objects", batch["objects"]),
                ("sounding", batch["sounding"]),
            ):
                rows.setdefault(name, []).append(value.cpu())
        return {name: torch.cat(values) for name, values in rows.items()}

    def evaluate(self, model: nn.Module, split: str) -> dict:
        from xmodal.metrics.classification import mean_average_precision

        got = self._collect(model, split)
        place = got["place"]
        student_acc = float((got["student_places"].argmax(1) == place).double().mean())
        teacher_acc = float((got["teacher_places"].argmax(1) == place).double().mean())
        counts = torch.bincount(place, minlength=len(self.world.config.places))
        heads = ("objects", "places")
        kl = self._loss({h: got[f"student_{h}"] for h in heads},
                        {h: got[f"teacher_{h}"] for h in heads})[1]  # fmt: skip
        metrics = {
            "place_acc": 100 * student_acc,
            "teacher_place_acc": 100 * teacher_acc,
            "place_acc_of_teacher": student_acc / teacher_acc if teacher_acc else 0.0,
            "place_chance": 100 * float(counts.max() / counts.sum()),
            **kl,
            "n_clips": len(place),
        }
        if split == "test" and self.config.eval.transfer:
            metrics["transfer"] = self.transfer(model)
        posteriors = {"student": got["student_objects"].softmax(1),
                      "teacher": got["teacher_objects"]}  # fmt: skip
        for truth in ("objects", "sounding"):
            for who, scores in posteriors.items():
                metrics[f"{who}_{truth}_mAP"] = 100 * mean_average_precision(scores, got[truth])
            metrics[f"{truth}_mAP_chance"] = 100 * float(
                got[truth].mean(0)[got[truth].any(0)].mean()
            )
        return metrics

    def _transfer_clips(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
        """``(waves (N, T), targets, folds, class names)`` of ``eval.transfer``."""
        source, world = self.config.eval.transfer, self.world
        if source == "world":
            from xmodal.world.export import esc50_fold

            classes = list(world.sound_classes)
            n = self.config.eval.transfer_clips * len(classes)
            clips = [world.labelled_sound("test", i) for i in range(n)]
            folds = [esc50_fold(i, len(classes)) for i in range(n)]
            return (torch.stack([c[0] for c in clips]), torch.tensor([c[1] for c in clips]),
                    torch.tensor(folds), classes)  # fmt: skip
        from xmodal.data.esc50 import ESC50

        data = ESC50(source, sample_rate=world.config.sample_rate)
        waves = torch.stack([data[i]["audio"] for i in range(len(data))])
        return waves, data.targets, data.folds, data.classes

    @torch.no_grad()
    def transfer(self, model: nn.Module) -> dict:
        """SoundNet's transfer experiment: the frozen student's features of every layer
        (and of its heads), each read by a linear classifier on the labelled clips of
        ``eval.transfer`` in ESC-50's five folds (mean accuracy, percent), beside the
        hand-made baseline, MFCC statistics with the same classifier."""
        from xmodal.matching.soundnet import fold_accuracy, layer_features, mfcc_statistics

        model.eval()
        waves, targets, folds, classes = self._transfer_clips()
        device, batch = self.model_device(model), self.config.eval.batch_size
        parts: dict[str, list] = {}
        for start in range(0, len(waves), batch):
            chunk = waves[start : start + batch].to(device)
            for name, value in layer_features(model.student, chunk).items():
                parts.setdefault(name, []).append(value.cpu())
        layers = {name: fold_accuracy(torch.cat(v), targets, folds)[0] for name, v in parts.items()}
        mfcc = mfcc_statistics(waves, self.world.config.sample_rate)
        best = max((n for n in layers if n not in ("objects", "places")), key=layers.get)
        self._transfer_result = {
            "source": self.config.eval.transfer,
            "layers": layers,
            "best_layer": best,
            "best_acc": layers[best],
            "mfcc_acc": fold_accuracy(mfcc, targets, folds)[0],
            "chance": 100.0 * float(torch.bincount(targets).max()) / len(targets),
            "n_clips": len(waves),
            "n_classes": len(classes),
        }
        return self._transfer_result

    def figures(self, model: nn.Module) -> dict:
        from xmodal.viz.soundnet import plot_posteriors

        n = self.config.eval.n_figures
        if n == 0:
            return {}
        data = self.data("val")
        batch = torch.utils.data.default_collate([data[i] for i in range(min(n, len(data)))])
        model.eval()
        with torch.no_grad():
            student, teacher = self._outputs(model, batch)
        places, objects = list(self.world.config.places), self.object_names()
        figures = {}
        if self._transfer_result is not None:  # evaluate ran it on this model
            from xmodal.viz.soundnet import plot_transfer

            figures["transfer_per_layer"] = plot_transfer(self._transfer_result)
        return figures | {
            f"posteriors_val_{k}": plot_posteriors(
                batch["image"][k],
                {"places": (teacher["places"][k], student["places"][k].softmax(0), places),
                 "objects": (teacher["objects"][k], student["objects"][k].softmax(0), objects)},
                title=f"place: {places[int(batch['place'][k])]}",
            )
            for k in range(len(batch["index"]))
        }  # fmt: skip

    # ------------------------------------------------------------------ predict

    @torch.no_grad()
    def predict(self, model: nn.Module, inputs: Sequence[str], out_dir: Path) -> list[dict]:
        """Each sound file (any rate or channel count soundfile reads; resampled, mixed to
        mono): the place and the ``eval.top_k`` objects the student hears."""
        from xmodal.audio.io import load

        if not inputs:
            raise ParameterError("predict soundnet needs at least one sound file. Found none")
        model.eval()
        rate = self.world.config.sample_rate
        places, objects = list(self.world.config.places), self.object_names()
        records = []
        for path in inputs:
            wave, _ = load(path, sr=rate)
            field = model.student.encoder.feature_info.receptive_field
            if len(wave) < field:
                raise ParameterError(
                    f"{str(path)!r} has {len(wave)} samples at {rate} Hz; the student hears "
                    f"{field} ({field / rate:.2f} s) per step: give a longer clip"
                )
            out = model.student(wave[None].to(self.model_device(model)))
            p_place, p_obj = out["places"][0].softmax(0).cpu(), out["objects"][0].softmax(0).cpu()
            top = p_obj.topk(min(self.config.eval.top_k, len(objects)))
            place = places[int(p_place.argmax())]
            heard = [(objects[int(i)], float(p)) for p, i in zip(top.values, top.indices,
                                                                   strict=True)]  # fmt: skip
            text = f"{place} ({float(p_place.max()):.2f}); " + ", ".join(
                f"{name} ({p:.2f})" for name, p in heard)  # fmt: skip
            records.append({"input": str(path), "text": text, "place": place,
                            "place_probability": float(p_place.max()),
                            "objects": [{"name": n, "probability": p} for n, p in heard],
                            "files": []})  # fmt: skip
        return records
