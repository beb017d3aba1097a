"""The ``scene-sound`` task: frames and sounds in one space, for telling a scene by its
sound (Look, Listen and Learn's audio–visual correspondence, or CLIP's InfoNCE).

An image encoder (the world-pretrained backbone by default, fine-tuned at
``optim.encoder_lr``) and a log-mel audio encoder (:mod:`xmodal.audio.encoders`) are
projected into one space (:class:`~xmodal.matching.audiovisual.AudioVisualEmbedding`).
``model.objective``: ``infonce`` (symmetric, learned temperature) or ``avc`` (L3-Net: a
fusion head says whether a sound belongs to a frame; negatives are other clips' sounds).

Data: the world's shapes scenes with their sound (the place's ambience under the
sounding objects), or an ``av-manifest`` folder (``data.name=av-manifest``,
``data.root``), the world's export format and a user's own frames and sounds.

Metrics (test split): sound → frame and frame → sound R@1/5/10 and ranks, their semantic
variant (a retrieved item of the same place counts: R@1, R-Precision, mAP@R), the place
from the sound alone by the nearest place prototype (the mean of the training sounds'
vectors of each place), and correspondence accuracy on balanced pairs (the fusion head
with ``avc``; with ``infonce``, the cosine against the threshold that is best on the
validation pairs). docs/scene-sound.md has the details and results.
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
    choice,
    integer,
    number,
    trainer_defaults,
)
from xmodal.engine.config import TrainerConfig
from xmodal.engine.schedule import AdamConfig
from xmodal.engine.task import Task
from xmodal.errors import ParameterError
from xmodal.matching.audiovisual import AV_OBJECTIVES, nearest_place
from xmodal.metrics.classification import best_threshold
from xmodal.tasks._backbone import backbone_upstream, encoder_groups, start_encoder
from xmodal.tasks._sound import SoundData, SoundDataConfig
from xmodal.vision.encoders import width_kwargs

__all__ = ["SceneSoundConfig", "SceneSoundTask"]


@dataclass
class SceneSoundModelConfig(Section):
    """The image encoder (``encoder``, ``channels``; ``backbone``: a backbone run, or
    ``default``, or null for random), the audio encoder (``audio_encoder`` at
    ``audio_width``), the joint space and the objective."""

    key: ClassVar[str] = "model"

    encoder: str = "small-cnn"
    channels: int = integer(128)
    backbone: str | None = "default"
    audio_encoder: str = "vggish"
    audio_width: float = number(0.25, positive=True)
    embed_dim: int = integer(128)
    objective: str = choice("infonce", AV_OBJECTIVES)


@dataclass
class SceneSoundOptimConfig(AdamConfig):
    """Adam; ``encoder_lr``: the image encoder's (null: ``lr``; 0: frozen)."""

    lr: float = 1e-3
    encoder_lr: float | None = number(3e-4, optional=True)


@dataclass
class SceneSoundEvalConfig(EvalConfig):
    """Evaluation; ``prototype_clips`` training sounds make the place prototypes;
    ``top_k`` frames per query in figures and predict."""

    prototype_clips: int = integer(2000)
    top_k: int = integer(5)


@dataclass
class SceneSoundConfig(TaskConfig):
    model: SceneSoundModelConfig = field(default_factory=SceneSoundModelConfig)
    data: SoundDataConfig = field(default_factory=SoundDataConfig)
    optim: SceneSoundOptimConfig = field(default_factory=SceneSoundOptimConfig)
    eval: SceneSoundEvalConfig = field(default_factory=SceneSoundEvalConfig)
    trainer: TrainerConfig = trainer_defaults(max_epochs=4)


class SceneSoundTask(SoundData, Task):
    """Scene recognition by sound: frames and sounds in one space (AVC or InfoNCE)."""

    name = "scene-sound"
    family = "matching"
    summary = "Scene recognition by sound: image and audio in one space (L3 AVC or InfoNCE)"
    Config = SceneSoundConfig
    upstream = (backbone_upstream(),)

    def __init__(self, config: SceneSoundConfig) -> None:
        super().__init__(config)
        self._fitting = False
        self._step = 0

    # ------------------------------------------------------------------ data

    def places(self) -> list[str]:
        """The place (class) names: the world's, or the manifest's labels."""
        if self.config.data.name == "world":
            return list(self.world.config.places)
        return list(self.data("train").classes)

    def setup(self, run_dir: Path, stage: str) -> None:
        self._fitting = stage == "fit"

    # ------------------------------------------------------------------ model

    def build_model(self) -> nn.Module:
        from xmodal.audio.encoders import create_encoder as create_audio_encoder
        from xmodal.matching.audiovisual import AudioVisualEmbedding
        from xmodal.vision.encoders import create_encoder

        m = self.config.model
        image = create_encoder(m.encoder, **width_kwargs(m.encoder, m.channels))
        audio = create_audio_encoder(m.audio_encoder, sample_rate=self.world.config.sample_rate,
                                     width=m.audio_width)  # fmt: skip
        model = AudioVisualEmbedding(image, audio, embed_dim=m.embed_dim, objective=m.objective)
        start_encoder(self, model.image, fitting=self._fitting)
        return model

    def configure_optimizers(self, model: nn.Module):
        groups = encoder_groups(model, model.image, self.config.optim.encoder_lr)
        return self.config.optim.configure(groups, self.total_steps())

    def _loss(self, model, batch, generator=None) -> tuple[torch.Tensor, dict[str, float]]:
        from xmodal.matching.audiovisual import avc_loss, correspondence_pairs
        from xmodal.nn.losses import info_nce_loss

        device = self.model_device(model)
        img = model.embed_images(batch["image"].to(device))
        aud = model.embed_audio(batch["audio"].to(device))
        if model.objective == "avc":
            pairs = correspondence_pairs(len(img), generator)
            loss, accuracy = avc_loss(model, img, aud, pairs)
            return loss, {"correspondence_acc": accuracy}
        scale = model.logit_scale()
        return info_nce_loss(img, aud, scale), {"logit_scale": float(scale.detach())}

    def training_step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        if self.config.optim.encoder_lr == 0:
            model.image.eval()  # frozen: its batch-norm statistics too
        # The negatives of a step: a function of the seed and the batch's first clip alone,
        # so a resumed run draws the same.
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + int(batch["index"][0]))
        return self._loss(model, batch, g)

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        g = torch.Generator().manual_seed(0)
        loss, parts = self._loss(model, batch, g)
        return {"loss": float(loss), **parts}

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def _embed(self, model: nn.Module, split: str, size: int | None = None):
        """``(image vectors, sound vectors, places)`` of ``split`` (its first ``size``
        clips)."""
        model.eval()
        device, imgs, auds, places = self.model_device(model), [], [], []
        for batch in self._loader(split, size):
            imgs.append(model.embed_images(batch["image"].to(device)).cpu())
            auds.append(model.embed_audio(batch["audio"].to(device)).cpu())
            places.append(torch.as_tensor(batch["place"]))
        return torch.cat(imgs), torch.cat(auds), torch.cat(places)

    def prototypes(self, model: nn.Module) -> torch.Tensor:
        """``(n_places, D)``: the mean of the first ``eval.prototype_clips`` training
        sounds' vectors of each place, normalised; a place none of them has gets a row of
        NaN (:func:`nearest_place` never picks it)."""
        n = min(self.config.eval.prototype_clips, len(self.data("train")))
        _, aud, places = self._embed(model, "train", n)
        protos = torch.zeros(len(self.places()), aud.shape[1])
        protos.index_add_(0, places, aud)
        protos = torch.nn.functional.normalize(protos, dim=1)
        protos[torch.bincount(places, minlength=len(protos)) == 0] = float("nan")
        return protos

    @torch.no_grad()
    def _correspondence(self, model, img, aud) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores and labels of balanced pairs: every frame with its own sound and with
        the sound of the clip ``n // 2`` further on (another clip, and drawn by index
        alone, so every evaluation scores the same pairs)."""
        n = len(img)
        if n < 2:
            raise ParameterError(f"correspondence needs at least 2 clips. Found: {n}")
        other = (torch.arange(n) + n // 2) % n
        labels = torch.cat([torch.ones(n), torch.zeros(n)])
        sounds = torch.cat([aud, aud[other]])
        frames = torch.cat([img, img])
        if model.objective == "avc":
            device = self.model_device(model)
            logits = model.correspond(frames.to(device), sounds.to(device)).cpu()
            return logits.softmax(1)[:, 1], labels
        return (frames * sounds).sum(1), labels

    def evaluate(self, model: nn.Module, split: str) -> dict:
        from xmodal.metrics.retrieval import plausible_retrieval_metrics, retrieval_metrics

        img, aud, places = self._embed(model, split)
        sims = img @ aud.T  # (frames, sounds)
        standard = retrieval_metrics(sims, torch.arange(len(img)))
        metrics = {k.replace("i2t", "i2a").replace("t2i", "a2i"): v for k, v in standard.items()}
        same = places[:, None] == places[None, :]
        semantic = plausible_retrieval_metrics(sims, same)
        metrics["semantic"] = {k.replace("i2t", "i2a").replace("t2i", "a2i"): v
                               for k, v in semantic.items() if "without" not in k}  # fmt: skip
        guess = nearest_place(aud, self.prototypes(model))
        metrics["place_acc"] = 100 * float((guess == places).double().mean())
        counts = torch.bincount(places, minlength=len(self.places()))
        metrics["place_chance"] = 100 * float(counts.max() / counts.sum())
        scores, labels = self._correspondence(model, img, aud)
        if model.objective == "avc":
            threshold = 0.5
        else:  # the cosine that separates the validation pairs best
            v_img, v_aud, _ = self._embed(model, "val")
            v_scores, v_labels = self._correspondence(model, v_img, v_aud)
            threshold = best_threshold(v_scores, v_labels)
        metrics["correspondence_acc"] = 100 * float(((scores > threshold).float() == labels)
                                                    .double().mean())  # fmt: skip
        metrics["correspondence_threshold"] = float(threshold)
        metrics["n_clips"] = len(img)
        return metrics

    def figures(self, model: nn.Module) -> dict:
        from xmodal.viz.audiovisual import plot_joint_space, plot_sound_to_frames

        n = self.config.eval.n_figures
        if n == 0:
            return {}
        size = min(len(self.data("test")), 400)
        img, aud, places = self._embed(model, "test", size)
        names = self.places()
        images = torch.stack([self.data("test")[i]["image"] for i in range(size)])
        k = min(self.config.eval.top_k, size)
        queries = list(range(min(n, size)))
        top = (aud[queries] @ img.T).topk(k, dim=1).indices
        return {
            "joint_space_test": plot_joint_space(img, aud, places, names),
            "sound_to_frames_test": plot_sound_to_frames(images, top, queries, places, names),
        }

    # ------------------------------------------------------------------ predict

    @torch.no_grad()
    def predict(self, model: nn.Module, inputs: Sequence[str], out_dir: Path) -> list[dict]:
        """Each sound file (any rate or channel count soundfile reads; resampled, mixed to
        mono): its place (nearest place prototype) and the ``eval.top_k`` nearest test
        frames (their indices and places)."""
        from xmodal.audio.io import load

        if not inputs:
            raise ParameterError("predict scene-sound needs at least one sound file. Found none")
        model.eval()
        rate, names = self.world.config.sample_rate, self.places()
        protos = self.prototypes(model)
        img, _, places = self._embed(model, "test")
        field = model.audio.feature_info.receptive_field
        records = []
        for path in inputs:
            wave, _ = load(path, sr=rate)
            if len(wave) < field:
                raise ParameterError(
                    f"{str(path)!r} has {len(wave)} samples at {rate} Hz; the audio encoder "
                    f"hears {field} ({field / rate:.2f} s) at least: give a longer clip"
                )
            vec = model.embed_audio(wave[None].to(self.model_device(model))).cpu()
            place = names[int(nearest_place(vec, protos)[0])]
            top = (vec @ img.T)[0].topk(min(self.config.eval.top_k, len(img))).indices.tolist()
            frames = [{"test_index": i, "place": names[int(places[i])]} for i in top]
            text = f"{place}; nearest test frames " + ", ".join(
                f"{f['test_index']} ({f['place']})" for f in frames)  # fmt: skip
            records.append({"input": str(path), "text": text, "place": place,
                            "frames": frames, "files": []})  # fmt: skip
        return records
