"""The ``caption`` task: Show and Tell / Show, Attend and Tell trained and scored by the engine.

Data: the world's captioning view by default (``data.name=world``), or any Karpathy-style
``dataset_*.json`` with an image folder (``data.name=karpathy data.json=... data.root=...``).
Training sees every (image, caption) pair once per epoch; the vocabulary is built from the
training captions and saved in the run folder as ``vocab.json``.

Metrics (``evaluate``): BLEU-1..4, METEOR (with Java), ROUGE-L and CIDEr-D from
pycocoevalcap on beam-search captions against all references; on the world also the
content metrics that n-grams cannot give: content precision, attention grounding (with its
chance level) and, on the compositional split, held-out combination recall.

Example::

    xmodal train caption                                  # the world, Show, Attend and Tell
    xmodal train caption model.arch=show-tell             # the global-vector baseline
    xmodal train caption data.compositional=true          # + held-out combination recall
    xmodal predict caption --run runs/caption/<id> image.png
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from xmodal.data.captions import CaptionSets, all_captions, collate_images, collate_sets
from xmodal.engine.base import (
    EvalConfig,
    ImageDataConfig,
    Section,
    choice,
    flag,
    fraction,
    integer,
    number,
    older_run_values,
    trainer_defaults,
)
from xmodal.engine.config import TrainerConfig
from xmodal.engine.schedule import AdamConfig
from xmodal.engine.task import Task
from xmodal.errors import DataError, ParameterError
from xmodal.tasks._backbone import backbone_upstream, encoder_groups, start_encoder
from xmodal.tasks._world import CompositionalConfig
from xmodal.text.vocab import Vocabulary
from xmodal.vision.encoders import width_kwargs

__all__ = [
    "CaptionConfig",
    "CaptionDataConfig",
    "CaptionEvalConfig",
    "CaptionModelConfig",
    "CaptionOptimConfig",
    "CaptionTask",
]

ARCHS = ("show-attend-tell", "show-tell")


@dataclass
class CaptionModelConfig(Section):
    """The captioning model. ``arch``: ``show-attend-tell`` or ``show-tell``."""

    key: ClassVar[str] = "model"

    arch: str = choice("show-attend-tell", ARCHS)
    # factored-cnn: a colour stream and a colour-blind shape stream (xmodal.vision.
    # FactoredCNN), which names the shapes of colour-shape pairs never seen in training.
    encoder: str = "factored-cnn"
    channels: int = integer(128)  # small-cnn / factored-cnn width (ignored by the ResNets)
    embed_dim: int = integer(128)
    hidden_dim: int = integer(256)
    attention_dim: int = integer(128)
    dropout: float = fraction(0.1)
    gate: bool = flag(True)
    # The attention's query sees the previous word too (not in the paper; see
    # ShowAttendTell): after "red" it looks for the red object. On the world it lifts
    # content precision from 78% to 96% (docs/captioning.md); false: the paper's.
    word_query: bool = flag(True)
    # Colour and shape words as p(colour or shape word | the language) * p(which one | the
    # attended region) (ShowAttendTell's word_attributes; the world's colour and shape
    # words): pairs never seen in training get named (data.compositional; docs/
    # captioning.md). Not in the paper; false: the paper's output layer; null (the
    # default): on for the world's captions (off for real ones, and show-tell has none).
    factored_words: bool | None = flag(None, optional=True)
    # Weight of the doubly stochastic regulariser. 0 by default: on the world it made
    # attention grounding and content precision worse (docs/captioning.md).
    alpha_c: float = number(0.0)
    # A word2vec directory (`xmodal train word2vec` or `xmodal word2vec train`) whose
    # vectors initialise the word embedding for training; embed_dim must be their size.
    word2vec: str | None = None
    # The encoder's starting weights: a `backbone` run (`default`: the defaults' run,
    # trained once into the cache; or its folder), whose encoder and channels must be
    # these; null: random (then set optim.encoder_lr=null to train it at optim.lr).
    backbone: str | None = "default"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.factored_words and self.arch != "show-attend-tell":
            raise ParameterError(
                f"model.factored_words reads the attended region, which model.arch="
                f"{self.arch!r} has not: use model.arch=show-attend-tell"
            )


@dataclass
class CaptionDataConfig(ImageDataConfig):
    """Where the images and captions come from.

    ``name=world``: the procedural world (``compositional`` also scores the held-out
    combinations). ``name=karpathy``: ``json`` is a Karpathy ``dataset_*.json`` and
    ``root`` the folder its image paths are relative to.
    """

    sources: ClassVar[tuple[str, ...]] = ("world", "karpathy")

    json: str | None = None
    root: str | None = None
    compositional: bool = flag(False)
    max_len: int = integer(24, minimum=3)  # tokens per training caption, <bos>, <eos> too
    captions_per_image: int = integer(5)  # captions decoded per image in a training step
    min_freq: int = integer(1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.name == "karpathy":
            from xmodal.data.karpathy import check_karpathy_config

            check_karpathy_config(self.json, self.root)


@dataclass
class CaptionOptimConfig(AdamConfig):
    """Adam with a linear warm-up and a cosine decay to ``min_lr_ratio * lr``;
    ``encoder_lr``: the encoder's (null: ``lr``; 0: frozen)."""

    lr: float = 3e-3
    encoder_lr: float | None = number(3e-4, optional=True)  # a pretrained one, gently


@dataclass
class CaptionEvalConfig(EvalConfig):
    """Decoding for evaluation, figures and predict."""

    beam_size: int = integer(5)
    max_len: int = integer(20)
    length_penalty: float = number(1.0)
    meteor: bool | None = None  # None: METEOR when Java is installed (it takes ~6 s)
    # On the world: also log the validation split's content precision and attention
    # grounding (beam captions) after every epoch.
    val_content: bool = flag(True)


@dataclass
class CaptionConfig(CompositionalConfig):
    model: CaptionModelConfig = field(default_factory=CaptionModelConfig)
    data: CaptionDataConfig = field(default_factory=CaptionDataConfig)
    optim: CaptionOptimConfig = field(default_factory=CaptionOptimConfig)
    eval: CaptionEvalConfig = field(default_factory=CaptionEvalConfig)
    trainer: TrainerConfig = trainer_defaults(max_epochs=4, gradient_clip_val=5.0)


# ----------------------------------------------------------------------------- the task


class CaptionTask(Task):
    """Image captioning (translation: image → text) with an attention LSTM decoder."""

    name = "caption"
    family = "translation"
    summary = "Image captioning: Show and Tell / Show, Attend and Tell (attention LSTM)"
    Config = CaptionConfig
    upstream = (backbone_upstream(compositional=True),)

    def __init__(self, config: CaptionConfig) -> None:
        super().__init__(config)
        self.vocab: Vocabulary | None = None
        self._word_init: torch.Tensor | None = None  # from model.word2vec, for training
        self.word2vec_found = 0  # caption words model.word2vec had a vector for
        self._fitting = False  # setup("fit") was called: build_model loads model.backbone

    # ------------------------------------------------------------------ data

    def world_data(self, split: str) -> Dataset:
        """The world's captioning view: items with ``image``, ``captions``, ``index``."""
        from xmodal.world.datasets import make_dataset

        size = self.config.data.size(split)
        return make_dataset(self.world, "captioning", split, size=size)

    def karpathy_data(self, split: str) -> Dataset:
        from xmodal.data.karpathy import KarpathyCaptions

        d = self.config.data
        return KarpathyCaptions(d.json, d.root, split, image_size=d.image_size)

    def artifacts(self) -> list[str]:
        return ["vocab.json"]

    def setup(self, run_dir: Path, stage: str) -> None:
        path = Path(run_dir) / "vocab.json"
        self._fitting = stage == "fit"
        # A run saved before the backbone (resumed or evaluated) had none, one encoder
        # learning rate and the paper's attention query.
        older_run_values(run_dir, self.config.model, backbone=None, word_query=False,
                         factored_words=False)  # fmt: skip
        older_run_values(run_dir, self.config.optim, encoder_lr=None)
        if stage == "fit":
            captions = all_captions(self.data("train"), self.world)
            self.vocab = Vocabulary.build(captions, min_freq=self.config.data.min_freq)
            self.vocab.save(path)
            m = self.config.model
            if m.word2vec:  # the (V, E) embedding weight for this vocabulary
                from xmodal.text.word2vec import model_word_init

                self._word_init, self.word2vec_found = model_word_init(
                    self.vocab, m.word2vec, m.embed_dim, dim_key="model.embed_dim"
                )
        else:
            if not path.is_file():
                raise DataError(f"run folder {str(run_dir)!r} has no vocab.json")
            self.vocab = Vocabulary.load(path)

    def _sets(self, split: str) -> CaptionSets:
        d = self.config.data
        return CaptionSets(self.data(split), self.vocab, k=d.captions_per_image, max_len=d.max_len)

    def train_dataloader(self) -> DataLoader:
        return self.train_loader(self._sets("train"), collate_fn=collate_sets, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._sets("val"), batch_size=100, shuffle=False, collate_fn=collate_sets)

    # ------------------------------------------------------------------ model

    def build_model(self) -> nn.Module:
        from xmodal.translation.captioning import ShowAttendTell, ShowTell
        from xmodal.world.language import word_attributes

        m = self.config.model
        encoder_kwargs = width_kwargs(m.encoder, m.channels)
        common = dict(
            encoder=m.encoder,
            encoder_kwargs=encoder_kwargs,
            embed_dim=m.embed_dim,
            hidden_dim=m.hidden_dim,
            dropout=m.dropout,
        )
        if m.arch == "show-tell":
            model = ShowTell(len(self.vocab), **common)
        else:
            model = ShowAttendTell(
                len(self.vocab),
                attention_dim=m.attention_dim,
                gate=m.gate,
                alpha_c=m.alpha_c,
                word_query=m.word_query,
                word_attributes=word_attributes(self.vocab.itos) if self.factored_words else None,
                **common,
            )
        if self._word_init is not None:  # training only: eval and predict load the weights
            with torch.no_grad():
                model.embed.weight.copy_(self._word_init)
        start_encoder(self, model.encoder, fitting=self._fitting)
        return model

    @property
    def factored_words(self) -> bool:
        """``model.factored_words``; null: on the world's captions (whose lexicon it
        reads), off on real ones."""
        m = self.config.model
        if m.factored_words is None:
            return self.config.data.name == "world"
        return m.factored_words

    def configure_optimizers(self, model: nn.Module):
        groups = encoder_groups(model, model.encoder, self.config.optim.encoder_lr)
        return self.config.optim.configure(groups, self.total_steps())

    def training_step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        from xmodal.translation.captioning import caption_loss

        if self.config.optim.encoder_lr == 0:
            model.encoder.eval()  # frozen: its batch-norm statistics too
        k = self.config.data.captions_per_image
        out = model(batch["image"], batch["tokens"], captions_per_image=k)
        loss, parts = caption_loss(out, batch["tokens"], alpha_c=model.alpha_c)
        return loss, {k: float(v) for k, v in parts.items()}

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        from xmodal.translation.captioning import caption_loss

        k = self.config.data.captions_per_image
        out = model(batch["image"], batch["tokens"], captions_per_image=k)
        _, parts = caption_loss(out, batch["tokens"], alpha_c=0.0)
        logs = {"xent": float(parts["xent"])}
        if self.config.data.name == "world" and self.config.eval.val_content:
            # What the captions get right, epoch by epoch (the time-to-quality curve):
            # content precision and attention grounding of the batch's beam captions.
            from xmodal.metrics.grounding import world_caption_metrics

            texts, words, gen = self.caption(model, batch["image"])
            alphas = list(gen.alphas.cpu()) if gen.alphas is not None else None
            got = world_caption_metrics(self.world, "val", batch["index"].tolist(), texts,
                                        words, alphas)  # fmt: skip
            logs.update({key: got[key] for key in ("content_precision", "attention_grounding")
                         if key in got})  # fmt: skip
        return logs

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def caption(self, model: nn.Module, images: torch.Tensor) -> tuple[list[str], list, object]:
        """Beam-search captions of ``images`` (B, 3, H, W): (texts, word lists, Generation)."""
        e = self.config.eval
        model.eval()
        gen = model.generate(
            images.to(self.model_device(model)),
            beam_size=e.beam_size,
            max_len=e.max_len,
            length_penalty=e.length_penalty,
        )
        words = [
            [self.vocab.id_to_token(int(t)) for t in row[:n]]
            for row, n in zip(gen.tokens.cpu(), gen.lengths.tolist(), strict=True)
        ]
        return [" ".join(w) for w in words], words, gen

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        from xmodal.metrics.captioning import coco_scores

        images = self.data(split)
        loader = DataLoader(
            images,
            batch_size=self.config.eval.batch_size,
            shuffle=False,
            collate_fn=collate_images,
            num_workers=self.config.data.num_workers,
        )
        predictions, references, words, alphas, indices = [], [], [], [], []
        for batch in loader:
            texts, ws, gen = self.caption(model, batch["image"])
            predictions += texts
            words += ws
            references += batch["captions"]
            indices += batch["index"].tolist()
            if gen.alphas is not None:
                alphas += list(gen.alphas.cpu())
        metrics = coco_scores(predictions, references, meteor=self.config.eval.meteor)
        if self.config.data.name == "world":
            from xmodal.metrics.captioning import best_reference_scores
            from xmodal.metrics.grounding import world_caption_metrics

            metrics.update(
                world_caption_metrics(self.world, split, indices, predictions, words, alphas)
            )
            # The n-gram scores a caption the world's grammar writes can reach: each image's
            # most typical reference against the others; ours as a share of it.
            ceiling = best_reference_scores(references, meteor=self.config.eval.meteor)
            metrics["ceiling"] = ceiling
            metrics["of_ceiling"] = {k: metrics[k] / ceiling[k] for k in ("BLEU-4", "CIDEr-D")
                                     if ceiling.get(k)}  # fmt: skip
        metrics["n_images"] = len(predictions)
        return metrics

    def figures(self, model: nn.Module) -> dict:
        from xmodal.viz.attention import plot_caption_attention, plot_captioned_image

        n = self.config.eval.n_figures
        if n == 0:
            return {}
        split = "val" if self.config.data.name == "world" else "test"
        images = self.data(split)
        batch = collate_images([images[i] for i in range(min(n, len(images)))])
        texts, words, gen = self.caption(model, batch["image"])
        figures = {}
        for k, (image, text, ws) in enumerate(zip(batch["image"], texts, words, strict=True)):
            name = f"attention_{split}_{int(batch['index'][k])}"
            if gen.alphas is not None:
                figures[name] = plot_caption_attention(image, ws, gen.alphas[k].cpu())
            else:
                figures[name] = plot_captioned_image(image, text)
        return figures

    def predict(self, model: nn.Module, inputs: Sequence[str], out_dir: Path) -> list[dict]:
        from xmodal.data.images import load_image
        from xmodal.viz.attention import plot_caption_attention
        from xmodal.viz.figure import save_figure, unique_stems

        if not inputs:
            raise ParameterError("predict caption needs at least one image file. Found none")
        size = self.config.data.image_size
        images = torch.stack([load_image(p, size=size) for p in inputs])
        texts, words, gen = self.caption(model, images)
        names = unique_stems(inputs)
        records = []
        for k, (path, text) in enumerate(zip(inputs, texts, strict=True)):
            record = {"input": str(path), "text": text, "files": []}
            if gen.alphas is not None:
                fig = plot_caption_attention(images[k], words[k], gen.alphas[k].cpu())
                figure = save_figure(fig, Path(out_dir) / f"{names[k]}_attention.png")
                record["files"].append(str(figure))
            records.append(record)
        return records
