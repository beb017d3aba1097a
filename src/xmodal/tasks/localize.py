"""The ``localize`` task: where in the picture is the sound? Sound source localization
(Senocak et al., 2018), with LVS's hard negatives from the image's own background.

The model (:class:`~xmodal.referencing.sound_source.SoundSourceLocalizer`): the image
encoder (the world-pretrained backbone by default, fine-tuned at ``optim.encoder_lr``) to a
map of unit vectors, a log-mel audio encoder to one unit vector; the localization map is
their cosine at every position. ``model.objective``: ``unsupervised`` (sounds against the
batch's images, attention-pooled, and against their image's background), ``supervised``
(the attention against the sounding mask) or ``semi-supervised`` (both; the masks of a
``data.labelled_fraction`` of the training clips).

Data: the world's shapes scenes with their sound and sounding mask, or the real layouts
``flickr-soundnet`` and ``vggss`` (``data.root``; :mod:`xmodal.data.sound_sources`).

Metrics (test split), the map at the image's size (bilinear, as EZ-VSL):

- ``public``: LVS's and EZ-VSL's protocol, the map binarised at its median: ``ciou@0.5``
  (percent of clips) and ``auc``;
- ``exact``: the world's, binarised at half its range (world objects cover far less than
  half the image): the same numbers, and ``pointing`` (the map's peak on a source) with
  ``pointing_chance`` (a peak drawn at random: the share of pixels that are sources);
- ``negatives``: SLAVC's open-set test: each clip's own sound and sounds with no source
  in its picture (``silence``, the place's ``ambience`` alone, ``other_scene``: a sound
  none of whose objects is in the picture); ``ap`` and ``max_f1`` over those pairs;
- ``baselines``: the same numbers for a centre prior and the map of every object (a
  perfect object detector that does not listen).

docs/localize.md has the details and results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset

from xmodal.engine.base import (
    EvalConfig,
    ImageDataConfig,
    Section,
    TaskConfig,
    choice,
    integer,
    number,
    trainer_defaults,
)
from xmodal.engine.config import TrainerConfig
from xmodal.engine.schedule import AdamConfig
from xmodal.engine.task import Task
from xmodal.errors import ParameterError
from xmodal.referencing.sound_source import BACKGROUNDS, OBJECTIVES, SUPERVISIONS
from xmodal.tasks._backbone import backbone_upstream, encoder_groups, start_encoder
from xmodal.tasks._sound import SoundData, SoundDataConfig
from xmodal.vision.encoders import width_kwargs

__all__ = ["LocalizeConfig", "LocalizeTask"]

RULES = {"public": "median", "exact": "half"}
NEGATIVES = ("silence", "ambience", "other_scene")


@dataclass
class LocalizeModelConfig(Section):
    """The image encoder (``encoder``, ``channels``; ``backbone``: a backbone run, or
    ``default``, or null for random), the audio encoder (``audio_encoder`` at
    ``audio_width``), the joint space, the attention's temperature and the objective
    (``temperature``: InfoNCE's; ``background``: how the image's own background enters:
    ``contrast``, each score less the map's mean over the picture, or LVS's ``trimap``,
    one more negative where the map is below ``background_threshold``, or ``none``;
    ``supervised_weight``: the supervised term's weight when semi-supervised;
    ``supervision``: Senocak's ``attention`` term or a per-cell ``mask`` one;
    ``map_stride``: the map's pixels per cell, the encoder's stride or a finer stage's,
    FPN-style; null: the encoder's (8) for ``unsupervised``, 4 when masks teach the map
    (docs/localize.md: unsupervised, a finer map learns the image's borders; taught, it
    draws the sources' outlines))."""

    key: ClassVar[str] = "model"

    encoder: str = "small-cnn"
    channels: int = integer(128)
    backbone: str | None = "default"
    audio_encoder: str = "vggish"
    audio_width: float = number(0.25, positive=True)
    embed_dim: int = integer(128)
    attention_temperature: float = number(0.1, positive=True)
    map_stride: int | None = integer(None, optional=True)
    objective: str = choice("unsupervised", OBJECTIVES)
    temperature: float = number(0.07, positive=True)
    background: str = choice("contrast", BACKGROUNDS)
    background_threshold: float = 0.4
    supervised_weight: float = number(5.0, positive=True)
    supervision: str = choice("mask", SUPERVISIONS)


@dataclass
class LocalizeDataConfig(SoundDataConfig):
    """The world's scenes with their sound and sounding mask; or a ``flickr-soundnet`` or
    ``vggss`` folder ``root``. ``labelled_fraction``: the share of training clips whose
    mask a semi-supervised run uses."""

    sources: ClassVar[tuple[str, ...]] = ("world", "flickr-soundnet", "vggss")

    labelled_fraction: float = number(0.1, positive=True)

    def __post_init__(self) -> None:
        ImageDataConfig.__post_init__(self)  # not SoundDataConfig's: its sources differ
        if self.name != "world" and not self.root:
            raise ParameterError(f"data.name={self.name} needs data.root, the dataset's folder")
        if self.labelled_fraction > 1:
            raise ParameterError(
                f"data.labelled_fraction must be in (0, 1]. Found: {self.labelled_fraction}"
            )


@dataclass
class LocalizeOptimConfig(AdamConfig):
    """Adam; ``encoder_lr``: the image encoder's (null: ``lr``; 0: frozen)."""

    lr: float = 1e-3
    encoder_lr: float | None = number(3e-4, optional=True)


@dataclass
class LocalizeEvalConfig(EvalConfig):
    """Evaluation; ``n_figures`` test clips in the figures."""

    n_figures: int = integer(6, minimum=0)


@dataclass
class LocalizeConfig(TaskConfig):
    model: LocalizeModelConfig = field(default_factory=LocalizeModelConfig)
    data: LocalizeDataConfig = field(default_factory=LocalizeDataConfig)
    optim: LocalizeOptimConfig = field(default_factory=LocalizeOptimConfig)
    eval: LocalizeEvalConfig = field(default_factory=LocalizeEvalConfig)
    trainer: TrainerConfig = trainer_defaults(max_epochs=4)


class LocalizeTask(SoundData, Task):
    """Sound source localization: the cosine of a sound with every place of its picture."""

    name = "localize"
    family = "referencing"
    summary = "Sound source localization: where in the picture the sound comes from"
    Config = LocalizeConfig
    upstream = (backbone_upstream(),)

    def __init__(self, config: LocalizeConfig) -> None:
        super().__init__(config)
        self._fitting = False

    def setup(self, run_dir: Path, stage: str) -> None:
        self._fitting = stage == "fit"

    # ------------------------------------------------------------------ data

    def world_data(self, split: str) -> Dataset:
        from xmodal.data.sounds import LocalizationScenes

        d = self.config.data
        fraction = d.labelled_fraction if self.config.model.objective == "semi-supervised" else 1.0
        return LocalizationScenes(self.world, split, size=d.size(split), labelled_fraction=fraction,
                                  seed=self.config.seed, negatives=split != "train")  # fmt: skip

    def _folder_data(self, cls, split: str) -> Dataset:
        d, rate = self.config.data, self.world.config.sample_rate
        return cls(d.root, split, image_size=d.image_size, sample_rate=rate, seconds=d.clip_seconds)

    def flickr_soundnet_data(self, split: str) -> Dataset:
        from xmodal.data.sound_sources import FlickrSoundNet

        return self._folder_data(FlickrSoundNet, split)

    def vggss_data(self, split: str) -> Dataset:
        from xmodal.data.sound_sources import VGGSS

        return self._folder_data(VGGSS, split)

    # ------------------------------------------------------------------ model

    def build_model(self) -> nn.Module:
        from xmodal.audio.encoders import create_encoder as create_audio_encoder
        from xmodal.referencing.sound_source import SoundSourceLocalizer
        from xmodal.vision.encoders import create_encoder

        m = self.config.model
        image = create_encoder(m.encoder, **width_kwargs(m.encoder, m.channels))
        audio = create_audio_encoder(m.audio_encoder, sample_rate=self.world.config.sample_rate,
                                     width=m.audio_width)  # fmt: skip
        stride = m.map_stride
        if stride is None:  # the default: a finer map only where masks teach it
            stride = image.feature_info.stride if m.objective == "unsupervised" else 4
        model = SoundSourceLocalizer(image, audio, embed_dim=m.embed_dim,
                                     attention_temperature=m.attention_temperature,
                                     map_stride=stride)  # fmt: skip
        start_encoder(self, model.image, fitting=self._fitting)
        return model

    def configure_optimizers(self, model: nn.Module):
        groups = encoder_groups(model, model.image, self.config.optim.encoder_lr)
        return self.config.optim.configure(groups, self.total_steps())

    def _loss(self, model, batch) -> tuple[torch.Tensor, dict[str, float]]:
        from xmodal.referencing.sound_source import localization_losses

        m, device = self.config.model, self.model_device(model)
        return localization_losses(
            model, batch["image"].to(device), batch["audio"].to(device),
            batch["sounding_mask"], batch.get("labelled"), objective=m.objective,
            temperature=m.temperature, background_threshold=m.background_threshold,
            background=m.background, supervised_weight=m.supervised_weight,
            supervision=m.supervision,
        )  # fmt: skip

    def training_step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        if self.config.optim.encoder_lr == 0:
            model.image.eval()  # frozen: its batch-norm statistics too
        return self._loss(model, batch)

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        loss, parts = self._loss(model, batch)
        return {"loss": float(loss), **parts}

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def maps(self, model: nn.Module, split: str, size: int | None = None) -> dict:
        """The maps of ``split`` (its first ``size`` clips) at the image's size, each
        clip with its own sound (``own``) and with the sounds of :data:`NEGATIVES`, as
        cosines ``(N, H, W)``; with the ``sounding`` and ``objects`` masks and the
        ``images``."""
        from xmodal.referencing.sound_source import upsample_maps

        model.eval()
        device, out = self.model_device(model), {}
        for batch in self._loader(split, size):
            images = batch["image"].to(device)
            visual = model.image_map(images)
            sounds = {
                "own": batch["audio"],
                "silence": torch.zeros_like(batch["audio"]),
                "ambience": batch.get("ambience"),
                "other_scene": batch.get("other_audio"),
            }
            if sounds["other_scene"] is None and len(images) > 1:  # a folder: another clip
                sounds["other_scene"] = batch["audio"].roll(len(images) // 2, 0)  # of the batch
            for key, wave in sounds.items():
                if wave is None:
                    continue
                audio = model.audio_vector(wave.to(device))
                cos = torch.einsum("bdhw,bd->bhw", visual, audio)
                out.setdefault(key, []).append(upsample_maps(cos, images.shape[-2:]).cpu())
            out.setdefault("sounding", []).append(batch["sounding_mask"].float())
            if "objects_mask" in batch:
                out.setdefault("objects", []).append(batch["objects_mask"].float())
            out.setdefault("images", []).append(batch["image"])
        return {k: torch.cat(v) for k, v in out.items()}

    def evaluate(self, model: nn.Module, split: str) -> dict:
        from xmodal.metrics.localization import map_confidence

        maps = self.maps(model, split)
        truth = maps["sounding"]
        has = truth.flatten(1).sum(1) > 0
        metrics, cious = self._scores(maps["own"], truth, has)
        # A peak drawn uniformly at random lands on a source this often: pointing's chance.
        share = (truth > 0).flatten(1).double().mean(1)[has]
        metrics["exact"]["pointing_chance"] = 100.0 * float(share.mean())
        if not has.all():
            metrics["n_without_source"] = int((~has).sum())
        confidence = {
            k: map_confidence((maps[k] + 1) / 2) for k in ("own", *NEGATIVES) if k in maps
        }
        metrics["negatives"] = self._negatives(confidence, cious, has)
        metrics["baselines"] = self._baselines(maps, truth, has)
        metrics["n_clips"] = len(truth)
        return metrics

    @staticmethod
    def _scores(maps: torch.Tensor, truth: torch.Tensor, has: torch.Tensor):
        """Both protocols' numbers for ``maps`` on the clips with a source (``has``), and
        every clip's cIoU under the exact protocol."""
        from xmodal.metrics.localization import (
            binarize_maps,
            ciou,
            ciou_summary,
            map_pointing,
        )

        out, cious = {}, {}
        for name, rule in RULES.items():
            cious[name] = ciou(binarize_maps(maps, rule), truth)
            out[name] = ciou_summary(cious[name][has])
        hits = map_pointing(maps, truth)[has]
        out["exact"]["pointing"] = 100.0 * float(hits.double().mean())
        return out, cious["exact"]

    @staticmethod
    def _negatives(confidence: dict, cious: torch.Tensor, has: torch.Tensor) -> dict:
        """SLAVC's AP and max-F1 of the own sounds (the clips with a source) against each
        kind of sound without a source, and against all of them."""
        from xmodal.metrics.localization import detection_scores

        own = confidence["own"][has]
        out = {}
        kinds = [k for k in NEGATIVES if k in confidence]
        for kind in [*kinds, "all"]:
            negative = (
                torch.cat([confidence[k] for k in kinds]) if kind == "all" else confidence[kind]
            )
            scores = torch.cat([own, negative])
            labels = torch.cat([torch.ones(len(own), dtype=torch.bool),
                                torch.zeros(len(negative), dtype=torch.bool)])  # fmt: skip
            all_cious = torch.cat([cious[has], torch.zeros(len(negative), dtype=cious.dtype)])
            out[kind] = detection_scores(all_cious, scores, labels)
        return out

    def _baselines(self, maps: dict, truth: torch.Tensor, has: torch.Tensor) -> dict:
        """The protocols' numbers for a centre prior (the negative distance to the image's
        centre) and, on the world, the map of every object."""
        h, w = truth.shape[-2:]
        y, x = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2,
                              indexing="ij")  # fmt: skip
        centre = -(x**2 + y**2).sqrt().expand(len(truth), h, w)
        out = {"centre": self._scores(centre, truth, has)[0]}
        if "objects" in maps:
            out["all_objects"] = self._scores(maps["objects"], truth, has)[0]
        return out

    def figures(self, model: nn.Module) -> dict:
        from xmodal.viz.localization import plot_localization

        n = min(self.config.eval.n_figures, len(self.data("test")))
        if n == 0:
            return {}
        maps = self.maps(model, "test", n)
        figures = {"localization_test": plot_localization(maps["images"], maps["own"],
                                                           maps["sounding"])}  # fmt: skip
        negatives = {k: maps[k] for k in NEGATIVES if k in maps}
        figures["negatives_test"] = plot_localization(
            maps["images"][:1].expand(len(negatives) + 1, -1, -1, -1),
            torch.cat([maps["own"][:1], *(v[:1] for v in negatives.values())]),
            maps["sounding"][:1].expand(len(negatives) + 1, -1, -1),
            titles=["own sound", *(k.replace("_", " ") for k in negatives)],
            absolute=True,
        )
        return figures

    # ------------------------------------------------------------------ predict

    @torch.no_grad()
    def predict(self, model: nn.Module, inputs: Sequence[str], out_dir: Path) -> list[dict]:
        """Pairs of a frame (any image file; resized) and a sound file (any rate or
        channel count soundfile reads; resampled, mixed to mono, cut or padded to
        ``data.clip_seconds``): the map's peak (pixels of the resized frame), the SLAVC
        confidence, and ``<frame>_localized.png``, the overlay (``<frame>-<k>_localized.png``
        for a frame named again). A silent sound is no error: its map is as weak as the
        model makes it (its confidence says how weak)."""
        from xmodal.audio.io import load_clip
        from xmodal.data.images import load_image
        from xmodal.metrics.localization import map_confidence
        from xmodal.referencing.sound_source import upsample_maps
        from xmodal.viz.figure import save_figure, unique_stems
        from xmodal.viz.localization import plot_localization

        if not inputs or len(inputs) % 2:
            raise ParameterError(
                "predict localize takes pairs: a frame then its sound file (frame.png "
                f"clip.wav ...). Found {len(inputs)} input(s)"
            )
        model.eval()
        d, rate = self.config.data, self.world.config.sample_rate
        n, device, records = round(d.clip_seconds * rate), self.model_device(model), []
        names = unique_stems(inputs[::2])
        for name, frame, sound in zip(names, inputs[::2], inputs[1::2], strict=True):
            image = load_image(frame, size=d.image_size)[None]
            wave = load_clip(sound, sr=rate, n_samples=n)[None]
            cos = upsample_maps(model(image.to(device), wave.to(device)), image.shape[-2:]).cpu()
            peak = int(cos.flatten().argmax())
            y, x = divmod(peak, image.shape[-1])
            confidence = float(map_confidence((cos + 1) / 2)[0])
            path = Path(out_dir) / f"{name}_localized.png"
            save_figure(plot_localization(image, cos, None, titles=[Path(sound).name]), path)
            text = f"peak at x={x}, y={y}; confidence {confidence:.3f}"
            records.append({"input": f"{frame} {sound}", "text": text, "peak": [x, y],
                            "confidence": confidence, "files": [str(path)]})  # fmt: skip
        return records
