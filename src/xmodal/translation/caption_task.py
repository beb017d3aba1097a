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

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from xmodal._checks import check_choice, check_positive_int, check_positive_number
from xmodal.engine.config import TrainerConfig
from xmodal.engine.data import seeded_loader
from xmodal.engine.schedule import AdamConfig, planned_steps, world_size
from xmodal.engine.task import Task
from xmodal.errors import DataError, ParameterError
from xmodal.text.vocab import PAD_ID, Vocabulary

__all__ = [
    "CaptionConfig",
    "CaptionDataConfig",
    "CaptionEvalConfig",
    "CaptionModelConfig",
    "CaptionOptimConfig",
    "CaptionTask",
    "CaptionSets",
    "collate_sets",
]

ARCHS = ("show-attend-tell", "show-tell")
DATA = ("world", "karpathy")


@dataclass
class CaptionModelConfig:
    """The captioning model. ``arch``: ``show-attend-tell`` or ``show-tell``."""

    arch: str = "show-attend-tell"
    encoder: str = "small-cnn"
    channels: int = 128  # small-cnn width (ignored by the ResNets)
    embed_dim: int = 128
    hidden_dim: int = 256
    attention_dim: int = 128
    dropout: float = 0.1
    gate: bool = True
    # Weight of the doubly stochastic regulariser. 0 by default: on the world it made
    # attention grounding and content precision worse (docs/captioning.md).
    alpha_c: float = 0.0
    # A word2vec directory (`xmodal word2vec train CORPUS --out DIR`) whose vectors
    # initialise the word embedding for training; embed_dim must be their dimension.
    word2vec: str | None = None

    def __post_init__(self) -> None:
        check_choice(self.arch, "model.arch", ARCHS)
        for name in ("channels", "embed_dim", "hidden_dim", "attention_dim"):
            check_positive_int(getattr(self, name), f"model.{name}")
        if not 0.0 <= self.dropout < 1.0:
            raise ParameterError(f"model.dropout must be in [0, 1). Found: {self.dropout!r}")
        check_positive_number(self.alpha_c, "model.alpha_c", allow_zero=True)


@dataclass
class CaptionDataConfig:
    """Where the images and captions come from.

    ``name=world``: the procedural world (``world_seed``, ``image_size``, split sizes;
    ``compositional`` also scores the held-out combinations). ``name=karpathy``: ``json``
    is a Karpathy ``dataset_*.json`` and ``root`` the folder its image paths are relative to.
    """

    name: str = "world"
    json: str | None = None
    root: str | None = None
    world_seed: int = 0
    image_size: int = 64
    compositional: bool = False
    train_size: int = 10_000
    val_size: int = 500
    test_size: int = 1_000
    max_len: int = 24  # tokens per training caption, <bos> and <eos> included
    captions_per_image: int = 5  # captions decoded per image in a training step
    min_freq: int = 1
    batch_size: int = 32  # images per step (each with captions_per_image captions)
    num_workers: int = 2

    def __post_init__(self) -> None:
        check_choice(self.name, "data.name", DATA)
        for key in ("image_size", "train_size", "val_size", "test_size", "batch_size"):
            check_positive_int(getattr(self, key), f"data.{key}")
        check_positive_int(self.max_len, "data.max_len", minimum=3)
        check_positive_int(self.min_freq, "data.min_freq")
        check_positive_int(self.captions_per_image, "data.captions_per_image")
        check_positive_int(self.num_workers, "data.num_workers", minimum=0)
        if self.name == "karpathy":
            from xmodal.data.karpathy import check_karpathy_config

            check_karpathy_config(self.json, self.root)


@dataclass
class CaptionOptimConfig(AdamConfig):
    """Adam with a linear warm-up and a cosine decay to ``min_lr_ratio * lr``."""

    lr: float = 3e-3


@dataclass
class CaptionEvalConfig:
    """Decoding for evaluation, figures and predict."""

    beam_size: int = 3
    max_len: int = 20
    length_penalty: float = 1.0
    batch_size: int = 250
    n_figures: int = 4
    meteor: bool | None = None  # None: METEOR when Java is installed (it takes ~6 s)

    def __post_init__(self) -> None:
        check_positive_int(self.beam_size, "eval.beam_size")
        check_positive_int(self.max_len, "eval.max_len")
        check_positive_number(self.length_penalty, "eval.length_penalty", allow_zero=True)
        check_positive_int(self.batch_size, "eval.batch_size")
        check_positive_int(self.n_figures, "eval.n_figures", minimum=0)


def _default_trainer() -> TrainerConfig:
    return TrainerConfig(max_epochs=8, gradient_clip_val=5.0)


@dataclass
class CaptionConfig:
    seed: int = 0
    model: CaptionModelConfig = field(default_factory=CaptionModelConfig)
    data: CaptionDataConfig = field(default_factory=CaptionDataConfig)
    optim: CaptionOptimConfig = field(default_factory=CaptionOptimConfig)
    eval: CaptionEvalConfig = field(default_factory=CaptionEvalConfig)
    trainer: TrainerConfig = field(default_factory=_default_trainer)

    @property
    def eval_splits(self) -> tuple[str, ...]:
        if self.data.name == "world" and self.data.compositional:
            return ("test", "compositional")
        return ("test",)


# ----------------------------------------------------------------------------- data


class CaptionSets(Dataset):
    """Each image with ``k`` of its captions, encoded with ``vocab``.

    Items: ``image`` (3, H, W) float, ``tokens`` a list of ``k`` LongTensors (<bos> ...
    <eos>), ``index``. An image with fewer than ``k`` captions repeats them in turn; one
    with more uses its first ``k``. A training step decodes all ``k`` captions of every
    image while running the encoder once per image (Show and Tell and Show, Attend and
    Tell both train on every reference of an image).
    """

    def __init__(self, images: Dataset, vocab: Vocabulary, *, k: int, max_len: int):
        self.images, self.vocab, self.k, self.max_len = images, vocab, k, max_len

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        item = self.images[i]
        captions = item["captions"]
        if not captions:
            raise DataError(f"image {item['index']} has no caption")
        tokens = [
            torch.tensor(self.vocab.encode(captions[j % len(captions)], max_len=self.max_len))
            for j in range(self.k)
        ]
        return {"image": item["image"], "tokens": tokens, "index": item["index"]}


def collate_sets(items: list[dict]) -> dict:
    """Stack images; every caption of every image as one (B * k, L) <pad>-padded batch."""
    tokens = nn.utils.rnn.pad_sequence(
        [t for it in items for t in it["tokens"]], batch_first=True, padding_value=PAD_ID
    )
    return {
        "image": torch.stack([it["image"] for it in items]),
        "tokens": tokens,
        "index": torch.tensor([it["index"] for it in items]),
    }


def collate_images(items: list[dict]) -> dict:
    """Stack images; keep the captions (lists of strings) as a list."""
    return {
        "image": torch.stack([it["image"] for it in items]),
        "captions": [it["captions"] for it in items],
        "index": torch.tensor([it["index"] for it in items]),
    }


def _figure_stems(inputs: Sequence[str]) -> list[str]:
    """One distinct name per input for its figure: the file's stem, with ``-<position>``
    added to a stem an earlier input took (``a/x.png`` and ``b/x.png`` give ``x`` and
    ``x-1``), so no input's figure overwrites another's."""
    names: list[str] = []
    used: set[str] = set()
    for k, path in enumerate(inputs):
        name = Path(path).stem
        while name in used:
            name = f"{name}-{k}"
        used.add(name)
        names.append(name)
    return names


# ----------------------------------------------------------------------------- the task


class CaptionTask(Task):
    """Image captioning (translation: image → text) with an attention LSTM decoder."""

    name = "caption"
    family = "translation"
    summary = "Image captioning: Show and Tell / Show, Attend and Tell (attention LSTM)"
    default_data = "world"
    Config = CaptionConfig

    def __init__(self, config: CaptionConfig) -> None:
        super().__init__(config)
        self.vocab: Vocabulary | None = None
        self._images: dict[str, Dataset] = {}  # per split: a Karpathy file is read once
        self._word_init: torch.Tensor | None = None  # from model.word2vec, for training
        self.word2vec_found = 0  # caption words model.word2vec had a vector for

    # ------------------------------------------------------------------ data

    def images(self, split: str) -> Dataset:
        """The image dataset of ``split``: items with ``image``, ``captions``, ``index``."""
        if split not in self._images:
            d = self.config.data
            if d.name == "world":
                from xmodal.world.datasets import make_dataset

                size = {"train": d.train_size, "val": d.val_size}.get(split, d.test_size)
                self._images[split] = make_dataset(self.world, "captioning", split, size=size)
            else:
                from xmodal.data.karpathy import KarpathyCaptions

                self._images[split] = KarpathyCaptions(
                    d.json, d.root, split, image_size=d.image_size
                )
        return self._images[split]

    def artifacts(self) -> list[str]:
        return ["vocab.json"]

    def setup(self, run_dir: Path, stage: str) -> None:
        path = Path(run_dir) / "vocab.json"
        if stage == "fit":
            train = self.images("train")
            self.vocab = Vocabulary.build(
                self._all_captions(train), min_freq=self.config.data.min_freq
            )
            self.vocab.save(path)
            self._word_init = self._word_vectors() if self.config.model.word2vec else None
        else:
            if not path.is_file():
                raise DataError(f"run folder {str(run_dir)!r} has no vocab.json")
            self.vocab = Vocabulary.load(path)

    def _word_vectors(self) -> torch.Tensor:
        """The ``(V, E)`` embedding weight from ``model.word2vec`` for this vocabulary."""
        from xmodal.text.word2vec import model_word_init

        m = self.config.model
        weight, found = model_word_init(
            self.vocab, m.word2vec, m.embed_dim, dim_key="model.embed_dim"
        )
        self.word2vec_found = found
        return weight

    def _all_captions(self, images: Dataset) -> list[str]:
        captions = getattr(images, "captions", None)
        if captions is not None:  # KarpathyCaptions: every caption without loading images
            return [c for cs in captions for c in cs]
        world = self.world
        return [
            c
            for i in range(len(images))
            for c in world.scene(images.split, i, audio=False, questions=False).captions
        ]

    def _sets(self, split: str) -> CaptionSets:
        d = self.config.data
        return CaptionSets(
            self.images(split), self.vocab, k=d.captions_per_image, max_len=d.max_len
        )

    def train_dataloader(self) -> DataLoader:
        d = self.config.data
        return seeded_loader(
            self._sets("train"),
            batch_size=d.batch_size,
            shuffle=True,
            seed=self.config.seed,
            num_workers=d.num_workers,
            collate_fn=collate_sets,
            drop_last=True,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._sets("val"), batch_size=100, shuffle=False, collate_fn=collate_sets)

    # ------------------------------------------------------------------ model

    def build_model(self) -> nn.Module:
        from xmodal.translation.captioning import ShowAttendTell, ShowTell

        m = self.config.model
        encoder_kwargs = {"channels": m.channels} if m.encoder == "small-cnn" else {}
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
                **common,
            )
        if self._word_init is not None:  # training only: eval and predict load the weights
            with torch.no_grad():
                model.embed.weight.copy_(self._word_init)
        return model

    def _total_steps(self) -> int:
        per_epoch = len(self.images("train")) // (self.config.data.batch_size * world_size())
        return planned_steps(self.config.trainer, per_epoch)

    def configure_optimizers(self, model: nn.Module):
        return self.config.optim.configure(model.parameters(), self._total_steps())

    def training_step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        from xmodal.translation.captioning import caption_loss

        k = self.config.data.captions_per_image
        out = model(batch["image"], batch["tokens"], captions_per_image=k)
        loss, parts = caption_loss(out, batch["tokens"], alpha_c=model.alpha_c)
        return loss, {k: float(v) for k, v in parts.items()}

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        from xmodal.translation.captioning import caption_loss

        k = self.config.data.captions_per_image
        out = model(batch["image"], batch["tokens"], captions_per_image=k)
        _, parts = caption_loss(out, batch["tokens"], alpha_c=0.0)
        return {"xent": float(parts["xent"])}

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

        images = self.images(split)
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
            metrics.update(self._world_metrics(split, indices, predictions, words, alphas))
        metrics["n_images"] = len(predictions)
        return metrics

    def _world_metrics(self, split, indices, predictions, words, alphas) -> dict[str, float]:
        from xmodal.metrics.captioning import (
            attention_grounding,
            content_precision,
            grounding_chance,
            held_out_recall,
        )

        scenes = [self.world.scene(split, i, audio=False, questions=False) for i in indices]
        objects = [s.objects for s in scenes]
        masks = [s.masks for s in scenes]
        out = {"content_precision": content_precision(predictions, objects)}
        if alphas:
            out["attention_grounding"] = attention_grounding(
                words, alphas, objects, masks, present_only=False
            )
            out["grounding_chance"] = grounding_chance(words, objects, masks, present_only=False)
        if split == "compositional":
            out["held_out_recall"] = held_out_recall(
                predictions, objects, self.world.config.held_out
            )
        return out

    def figures(self, model: nn.Module, out_dir: Path) -> list[Path]:
        import matplotlib.pyplot as plt

        from xmodal.viz.attention import plot_caption_attention

        n = self.config.eval.n_figures
        if n == 0:
            return []
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        split = "val" if self.config.data.name == "world" else "test"
        images = self.images(split)
        batch = collate_images([images[i] for i in range(min(n, len(images)))])
        texts, words, gen = self.caption(model, batch["image"])
        paths = []
        for k, (image, text, ws) in enumerate(zip(batch["image"], texts, words, strict=True)):
            path = out_dir / f"attention_{split}_{int(batch['index'][k])}.png"
            if gen.alphas is not None:
                fig = plot_caption_attention(image, ws, gen.alphas[k].cpu())
            else:
                fig, ax = plt.subplots(figsize=(3, 3.3))
                ax.imshow(image.permute(1, 2, 0).numpy())
                ax.set_title(text, fontsize=8, wrap=True)
                ax.axis("off")
            fig.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(fig)
            paths.append(path)
        return paths

    def predict(self, model: nn.Module, inputs: Sequence[str], out_dir: Path) -> list[dict]:
        import matplotlib.pyplot as plt

        from xmodal.data.images import load_image
        from xmodal.viz.attention import plot_caption_attention

        if not inputs:
            raise ParameterError("predict caption needs at least one image file. Found none")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        size = self.config.data.image_size
        images = torch.stack([load_image(p, size=size) for p in inputs])
        texts, words, gen = self.caption(model, images)
        names = _figure_stems(inputs)
        records = []
        for k, (path, text) in enumerate(zip(inputs, texts, strict=True)):
            record = {"input": str(path), "text": text, "files": []}
            if gen.alphas is not None:
                fig = plot_caption_attention(images[k], words[k], gen.alphas[k].cpu())
                figure = out_dir / f"{names[k]}_attention.png"
                fig.savefig(figure, dpi=100, bbox_inches="tight")
                plt.close(fig)
                record["files"].append(str(figure))
            records.append(record)
        return records
