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

from xmodal.engine.base import (
    EvalConfig,
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
from xmodal.tasks._sound import SoundData, SoundDataConfig

__all__ = ["SoundNetConfig", "SoundNetModel", "SoundNetTask"]

TEACHER_FILE = "teacher.json"  # what rebuilds the teacher (its config, or its classifiers)


@dataclass
class SoundNetModelConfig(Section):
    """The student: SoundNet's conv1 .. conv``layers`` at ``width`` times its widths. The
    teacher: ``teacher``, a ``backbone`` run (the world's); or, for real frames,
    ``teacher_arch``, a torchvision classifier with the state dict ``teacher_weights``
    for the objects, and optionally ``place_teacher_arch`` with ``place_teacher_weights``
    for the places (without, the student has no place head). ``temperature`` softens
    both sides of the KL."""

    key: ClassVar[str] = "model"

    layers: int = integer(5)
    width: float = number(1.0, positive=True)
    teacher: str | None = "default"
    teacher_arch: str | None = None
    teacher_weights: str | None = None
    place_teacher_arch: str | None = None
    place_teacher_weights: str | None = None
    temperature: float = number(1.0, positive=True)
    object_weight: float = number(1.0)
    place_weight: float = number(1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.layers <= 8:
            raise ParameterError(f"model.layers must be in [1, 8]. Found: {self.layers}")
        if (self.teacher is None) == (self.teacher_arch is None):
            raise ParameterError(
                "SoundNet needs one teacher: model.teacher (a backbone run, or default) or "
                "model.teacher_arch (a torchvision classifier; then set model.teacher=null). "
                f"Found model.teacher={self.teacher!r}, model.teacher_arch={self.teacher_arch!r}"
            )
        if self.place_teacher_arch is not None and self.teacher_arch is None:
            raise ParameterError("model.place_teacher_arch goes with model.teacher_arch")

    @property
    def torchvision(self) -> bool:
        """Whether the teacher is torchvision's (real frames) rather than a backbone run."""
        return self.teacher_arch is not None


@dataclass
class SoundNetDataConfig(SoundDataConfig):
    """:class:`~xmodal.tasks._sound.SoundDataConfig` with 2 s clips (pool5 sees 1.09 s);
    with real frames, give ``image_size`` its classifiers' 224."""

    clip_seconds: float = number(2.0, positive=True)


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

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.transfer not in (None, "world"):  # checked now, not after the training
            meta = Path(self.transfer) / "meta" / "esc50.csv"
            if not meta.is_file():
                raise ParameterError(
                    f"eval.transfer={self.transfer!r} is not an ESC-50-layout folder "
                    f"({str(meta)!r} does not exist); give one, world or null"
                )


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


class SoundNetTask(SoundData, Task):
    """SoundNet: a raw-waveform student distilled from a visual teacher's posteriors."""

    name = "soundnet"
    family = "matching"
    summary = "SoundNet: a raw-waveform sound network taught by a visual teacher (KL)"
    Config = SoundNetConfig
    upstream = (Upstream("model.teacher", "backbone", required=False,
                         inherit=("data.image_size", "data.world_seed")),)  # fmt: skip

    def __init__(self, config: SoundNetConfig) -> None:
        super().__init__(config)
        self._teacher_task = None  # a backbone run's task
        self._teacher_state: dict | None = None  # its weights, or the classifiers'
        self._classifiers: dict | None = None  # torchvision's: {head: {arch, num_classes}}
        self._transfer_result: dict | None = None

    # ------------------------------------------------------------------ data

    def artifacts(self) -> list[str]:
        return [TEACHER_FILE]

    def setup(self, run_dir: Path, stage: str) -> None:
        from xmodal._io import read_json, write_json
        from xmodal.engine.keep import keep_upstream, kept_upstream

        m, path = self.config.model, Path(run_dir) / TEACHER_FILE
        if stage == "fit" and m.torchvision:
            self._fit_classifiers()
            write_json(path, {"torchvision": self._classifiers}, indent=1)
        elif stage == "fit":  # the engine resolved model.teacher to a backbone run's folder
            task, model = keep_upstream(run_dir, TEACHER_FILE, m.teacher, "backbone")
            self._teacher_task, self._teacher_state = task, model.state_dict()
            self._check_teacher()
        elif "torchvision" in (spec := read_json(path, "teacher spec")):
            self._classifiers = spec["torchvision"]
        else:
            self._teacher_task = kept_upstream(run_dir, TEACHER_FILE, "backbone")

    def _fit_classifiers(self) -> None:
        """Read the torchvision teacher's weight files: their classes and state dicts."""
        from xmodal.matching.soundnet import TorchvisionTeacher, torchvision_classifier

        m = self.config.model
        if m.teacher_weights is None:
            raise ParameterError("model.teacher_arch needs model.teacher_weights, its state dict")
        objects, n_objects = torchvision_classifier(m.teacher_arch, m.teacher_weights)
        self._classifiers = {"objects": {"arch": m.teacher_arch, "num_classes": n_objects}}
        places = None
        if m.place_teacher_arch is not None:
            if m.place_teacher_weights is None:
                raise ParameterError("model.place_teacher_arch needs model.place_teacher_weights")
            places, n = torchvision_classifier(m.place_teacher_arch, m.place_teacher_weights)
            self._classifiers["places"] = {"arch": m.place_teacher_arch, "num_classes": n}
        self._teacher_state = TorchvisionTeacher(objects, places).state_dict()

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
        """The object classes: the world's (colour, shape) pairs, or the torchvision
        teacher's (ImageNet's names where it has 1,000 classes, else their numbers)."""
        from xmodal.matching.soundnet import object_classes
        from xmodal.world import COLOURS, SHAPES

        if self._classifiers is None:
            return object_classes(COLOURS, SHAPES)
        return _class_names(self._classifiers["objects"])

    def place_names(self) -> list[str] | None:
        """The place classes: the world's, the place teacher's, or None (no place head)."""
        if self._classifiers is None:
            return list(self.world.config.places)
        spec = self._classifiers.get("places")
        return None if spec is None else _class_names(spec)

    def build_model(self) -> nn.Module:
        from xmodal.audio.encoders import create_encoder
        from xmodal.matching.soundnet import (
            SoundNetStudent,
            TorchvisionTeacher,
            torchvision_classifier,
        )

        m, world = self.config.model, self.world
        encoder = create_encoder("soundnet", sample_rate=world.config.sample_rate,
                                 width=m.width, num_layers=m.layers)  # fmt: skip
        places = self.place_names()
        student = SoundNetStudent(encoder, len(self.object_names()),
                                  None if places is None else len(places))  # fmt: skip
        if self._classifiers is None:
            teacher = self._teacher_task.build_model()
        else:  # untrained here: the weights come from the files or the run's safetensors
            nets = {head: torchvision_classifier(spec["arch"], num_classes=spec["num_classes"])[0]
                    for head, spec in self._classifiers.items()}  # fmt: skip
            teacher = TorchvisionTeacher(nets["objects"], nets.get("places"))
        if self._teacher_state is not None:
            teacher.load_state_dict(self._teacher_state)
        return SoundNetModel(student, teacher)

    def configure_optimizers(self, model: nn.Module):
        return self.config.optim.configure(model.student.parameters(), self.total_steps())

    def _outputs(self, model: nn.Module, batch) -> tuple[dict, dict]:
        from xmodal.matching.soundnet import teacher_posteriors

        device = self.model_device(model)
        with torch.no_grad():
            teacher = teacher_posteriors(model.teacher, batch["image"].to(device),
                                         self.config.model.temperature)  # fmt: skip
        return model.student(batch["audio"].to(device)), teacher

    def _loss(self, student: dict, teacher: dict) -> tuple[torch.Tensor, dict[str, float]]:
        from xmodal.nn.losses import distillation_loss

        m = self.config.model
        parts = {name: distillation_loss(student[name], teacher[name], temperature=m.temperature)
                 for name in student}  # fmt: skip
        weights = {"objects": m.object_weight, "places": m.place_weight}
        loss = sum(weights[name] * value for name, value in parts.items())
        return loss, {f"kl_{name}": float(v.detach()) for name, v in parts.items()}

    def training_step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        return self._loss(*self._outputs(model, batch))

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        student, teacher = self._outputs(model, batch)
        out = {"loss": float(self._loss(student, teacher)[0])}
        for name in student:  # how often the student names what the teacher names
            agree = student[name].argmax(1) == teacher[name].argmax(1)
            out[f"{name}_agreement"] = float(agree.float().mean())
        return out

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def _collect(self, model: nn.Module, split: str) -> dict[str, torch.Tensor]:
        model.eval()
        rows: dict[str, list] = {}
        for batch in self._loader(split):
            student, teacher = self._outputs(model, batch)
            values = {f"student_{h}": v for h, v in student.items()}  # logits
            values |= {f"teacher_{h}": teacher[h] for h in student}  # posteriors
            values |= {k: batch[k] for k in ("place", "objects", "sounding") if k in batch}
            for name, value in values.items():
                rows.setdefault(name, []).append(value.cpu())
        return {name: torch.cat(values) for name, values in rows.items()}

    def evaluate(self, model: nn.Module, split: str) -> dict:
        from xmodal.metrics.classification import mean_average_precision

        got = self._collect(model, split)
        heads = [h for h in ("objects", "places") if f"student_{h}" in got]
        kl = self._loss({h: got[f"student_{h}"] for h in heads},
                        {h: got[f"teacher_{h}"] for h in heads})[1]  # fmt: skip
        metrics = {**kl, "n_clips": len(got["student_objects"])}
        for h in heads:  # the share of clips where the student names the teacher's class
            agree = got[f"student_{h}"].argmax(1) == got[f"teacher_{h}"].argmax(1)
            metrics[f"{h}_agreement"] = 100 * float(agree.double().mean())
        if split == "test" and self.config.eval.transfer:
            metrics["transfer"] = self.transfer(model)
        if self.config.data.name != "world":  # no truth about the objects heard or seen
            return metrics
        place = got["place"]
        student_acc = float((got["student_places"].argmax(1) == place).double().mean())
        teacher_acc = float((got["teacher_places"].argmax(1) == place).double().mean())
        counts = torch.bincount(place, minlength=len(self.world.config.places))
        metrics |= {
            "place_acc": 100 * student_acc,
            "teacher_place_acc": 100 * teacher_acc,
            "place_acc_of_teacher": student_acc / teacher_acc if teacher_acc else 0.0,
            "place_chance": 100 * float(counts.max() / counts.sum()),
        }
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
        mfcc = []  # in chunks too: MFCCs of every clip at once take gigabytes
        for start in range(0, len(waves), batch):
            chunk = waves[start : start + batch]
            for name, value in layer_features(model.student, chunk.to(device)).items():
                parts.setdefault(name, []).append(value.cpu())
            mfcc.append(mfcc_statistics(chunk, self.world.config.sample_rate))
        layers = {name: fold_accuracy(torch.cat(v), targets, folds)[0] for name, v in parts.items()}
        mfcc = torch.cat(mfcc)
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
        names = {"objects": self.object_names(), "places": self.place_names()}
        labels = self.world.config.places if self.config.data.name == "world" else None
        labels = labels or getattr(data, "classes", None)
        figures = {}
        if self._transfer_result is not None:  # evaluate ran it on this model
            from xmodal.viz.soundnet import plot_transfer

            figures["transfer_per_layer"] = plot_transfer(self._transfer_result)
        for k in range(len(batch["index"])):
            heads = {h: (teacher[h][k], student[h][k].softmax(0), names[h]) for h in student}
            title = f"place: {labels[int(batch['place'][k])]}" if labels else ""
            figures[f"posteriors_val_{k}"] = plot_posteriors(batch["image"][k], heads, title=title)
        return figures

    # ------------------------------------------------------------------ predict

    @torch.no_grad()
    def predict(self, model: nn.Module, inputs: Sequence[str], out_dir: Path) -> list[dict]:
        """Each sound file (any rate or channel count soundfile reads; resampled, mixed to
        mono): the place (with a place head) and the ``eval.top_k`` objects the student
        hears."""
        from xmodal.audio.io import load

        if not inputs:
            raise ParameterError("predict soundnet needs at least one sound file. Found none")
        model.eval()
        rate = self.world.config.sample_rate
        places, objects = self.place_names(), self.object_names()
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
            p_obj = out["objects"][0].softmax(0).cpu()
            top = p_obj.topk(min(self.config.eval.top_k, len(objects)))
            heard = [(objects[int(i)], float(p)) for p, i in zip(top.values, top.indices,
                                                                   strict=True)]  # fmt: skip
            record = {"input": str(path),
                      "objects": [{"name": n, "probability": p} for n, p in heard]}  # fmt: skip
            text = ", ".join(f"{name} ({p:.2f})" for name, p in heard)
            if places is not None:
                p_place = out["places"][0].softmax(0).cpu()
                record["place"] = places[int(p_place.argmax())]
                record["place_probability"] = float(p_place.max())
                text = f"{record['place']} ({record['place_probability']:.2f}); {text}"
            records.append({**record, "text": text, "files": []})
        return records


def _class_names(spec: dict) -> list[str]:
    """A torchvision classifier's class names: its default weights' categories when it
    has as many classes (ImageNet's 1,000), else ``"class 0"``, ``"class 1"``, ..."""
    from torchvision.models import get_model_weights

    n = spec["num_classes"]
    try:
        names = list(get_model_weights(spec["arch"]).DEFAULT.meta["categories"])
    except (ValueError, KeyError, AttributeError):
        names = []
    return names if len(names) == n else [f"class {k}" for k in range(n)]
