"""The ``vqa`` task: visual question answering trained and scored by the engine.

Data: the world's VQA view (``data.name=world``, 10 questions a scene) or a folder in the
VQA v2 layout (``data.name=vqa data.root=DIR``). A step takes ``data.batch_size`` images
with every question about them; the answers are classes, the ``data.top_k`` most frequent
training answers. On the world the image encoder is pretrained on object labels first, and
SAN's hops are held to the objects of their question (``model.attention_loss``). Metrics:
the VQA accuracy overall and per question family (or answer type), the majority-answer
baseline and (SAN on the world) each hop's pointing game. See docs/vqa.md.

Example::

    xmodal train vqa                                       # SAN on the world
    xmodal predict vqa --run runs/vqa/<id> scene.png "what colour is the circle?"
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader

from xmodal._checks import check_positive_int
from xmodal.data import questions as q
from xmodal.engine.base import (
    EvalConfig,
    ImageDataConfig,
    Section,
    choice,
    flag,
    fraction,
    integer,
    number,
    trainer_defaults,
)
from xmodal.engine.config import TrainerConfig
from xmodal.engine.fit import fit_steps
from xmodal.engine.options import option
from xmodal.engine.schedule import AdamConfig
from xmodal.engine.task import Task
from xmodal.errors import DataError, ParameterError
from xmodal.metrics.vqa import normalize_answer
from xmodal.referencing.vqa import FUSIONS, READOUTS
from xmodal.referencing.vqa_inference import answer_pairs, answer_questions, score_answers
from xmodal.referencing.vqa_losses import attention_loss, soft_cross_entropy
from xmodal.tasks._backbone import backbone_upstream, encoder_groups, start_encoder
from xmodal.tasks._world import CompositionalConfig
from xmodal.text.encoders import QUESTION_ENCODERS
from xmodal.vision.encoders import width_kwargs

__all__ = [
    "VQAConfig",
    "VQADataConfig",
    "VQAEvalConfig",
    "VQAModelConfig",
    "VQAOptimConfig",
    "VQATask",
]

# The fields of the model section that are not VQAModel's arguments.
_TASK_FIELDS = ("channels", "pretrain_steps", "attention_loss", "backbone")


@dataclass
class VQAModelConfig(Section):
    """The model (:class:`~xmodal.referencing.vqa.VQAModel`). ``fusion``: ``san``
    (stacked attention, ``hops`` of them), ``product`` (deeper LSTM Q + norm I) or
    ``concat``; ``question_encoder``: ``lstm``, ``gru`` or ``transformer``."""

    key: ClassVar[str] = "model"

    fusion: str = choice("san", FUSIONS)
    encoder: str = "small-cnn"
    channels: int = integer(128)  # small-cnn width (ignored by the ResNets)
    question_encoder: str = choice("lstm", QUESTION_ENCODERS)
    word_dim: int = integer(64)
    hidden: int = integer(128)
    question_layers: int = integer(1)  # recurrent layers, or transformer blocks
    text_heads: int = integer(4)  # transformer only
    embed_dim: int = integer(128)
    attention_dim: int = integer(64)
    hops: int = integer(2)
    readout: str = choice("concat", READOUTS)  # san: [question, each hop's context, ...] or "sum"
    classifier_hidden: int = integer(512)
    dropout: float = fraction(0.1)
    # World only: steps of object recognition for the image encoder before VQA training,
    # as SAN's VGG comes pretrained on ImageNet (docs/vqa.md). 0: none.
    pretrain_steps: int = integer(1000, minimum=0)
    # Or the shared world-pretrained backbone: a `backbone` run (`default`: the defaults'
    # run, trained once into the cache; or its folder), whose encoder and channels must
    # be these; it replaces the pretraining above. null: none.
    backbone: str | None = None
    # World only (san): the weight of the attention supervision, each hop's map held to
    # where the objects its question is about are (docs/vqa.md). 0: none.
    attention_loss: float = number(1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.question_encoder == "transformer" and self.word_dim % self.text_heads:
            raise ParameterError(
                f"model.word_dim must be divisible by model.text_heads. Found: "
                f"word_dim={self.word_dim}, text_heads={self.text_heads}"
            )


@dataclass
class VQADataConfig(ImageDataConfig):
    """Where the questions come from: ``name=world`` (the sizes count questions, 10 a
    scene) or ``name=vqa``, ``root`` a folder in the VQA v2 layout, ``*_split`` its splits'
    names (``val2014`` ...) and ``image_names`` how its images are named
    (:class:`~xmodal.data.vqa.VQAv2`). ``batch_size`` counts images, with all questions."""

    sources: ClassVar[tuple[str, ...]] = ("world", "vqa")

    root: str | None = None
    compositional: bool = flag(False)  # world: hold combinations out, score them apart
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    image_names: str = "auto"
    train_size: int = 60_000
    val_size: int = 1_000
    test_size: int = 2_000
    top_k: int = integer(1000)  # answer classes: the most frequent training answers
    max_len: int = integer(24, minimum=3)  # tokens per question, <bos> and <eos> included
    min_freq: int = integer(1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.name == "vqa" and self.root is None:
            raise ParameterError(
                "data.name=vqa needs data.root, the folder with the VQA v2 question and "
                "annotation files and the images. Found: root=None"
            )


@dataclass
class VQAOptimConfig(AdamConfig):
    """Adam with a linear warm-up and a cosine decay to ``min_lr_ratio * lr``; the image
    encoder at its own ``encoder_lr`` (a pretrained encoder is fine-tuned gently)."""

    encoder_lr: float = number(5e-4, positive=True)


@dataclass
class VQAEvalConfig(EvalConfig):
    """Evaluation, figures and predict: ``top_k`` answers shown per question."""

    batch_size: int = 100  # images per batch
    top_k: int = integer(5)


@dataclass
class VQAConfig(CompositionalConfig):
    model: VQAModelConfig = field(default_factory=VQAModelConfig)
    data: VQADataConfig = field(default_factory=VQADataConfig)
    optim: VQAOptimConfig = field(default_factory=VQAOptimConfig)
    eval: VQAEvalConfig = field(default_factory=VQAEvalConfig)
    trainer: TrainerConfig = trainer_defaults(max_epochs=10, gradient_clip_val=5.0)


class VQATask(Task):
    """Visual question answering (referencing): SAN, deeper LSTM Q + norm I, concat."""

    name = "vqa"
    family = "referencing"
    summary = "Visual question answering: stacked attention (SAN) or LSTM Q + norm I fusion"
    Config = VQAConfig
    upstream = (backbone_upstream(compositional=True),)

    @dataclass
    class PredictOptions:
        top_k: int | None = option(
            None, "answers shown per question (default: eval.top_k)", flags=("-k",), metavar="K"
        )

    def __init__(self, config: VQAConfig) -> None:
        super().__init__(config)
        self.vocab: q.QuestionVocabulary | None = None  # question words, answer classes
        self._fitting = False  # setup("fit") was called: build_model pretrains the encoder

    # ------------------------------------------------------------------ data

    def world_data(self, split: str) -> q.QuestionSplit:
        from xmodal.world.datasets import make_dataset

        view = make_dataset(self.world, "vqa", split, size=self.config.data.size(split))
        return q.world_questions(view)

    def vqa_data(self, split: str) -> q.QuestionSplit:
        from xmodal.data.vqa import VQAv2

        d = self.config.data
        names = {"train": d.train_split, "val": d.val_split, "test": d.test_split}
        subtype = names.get(split, split)  # other splits by their own name
        ds = VQAv2.from_folder(d.root, subtype, image_size=d.image_size, image_names=d.image_names)
        if len(ds) == 0:
            raise DataError(f"data.root={d.root!r}: split {subtype!r} has no questions")
        return q.vqa_questions(ds)

    def artifacts(self) -> list[str]:
        return list(q.QuestionVocabulary.files)

    def setup(self, run_dir: Path, stage: str) -> None:
        self._fitting = stage == "fit"
        d = self.config.data
        normalize = normalize_answer if d.name == "vqa" else None  # VQA files: official rules
        if stage == "fit":
            self.vocab = q.QuestionVocabulary.build(
                self.data("train"), top_k=d.top_k, min_freq=d.min_freq, normalize=normalize
            )
            self.vocab.save(run_dir)
        else:  # the engine has checked that the artifacts are there
            self.vocab = q.QuestionVocabulary.load(run_dir, normalize=normalize)

    def dataset(self, split: str, *, referents: bool = False) -> q.QuestionsByImage:
        """The questions of ``split`` by image; ``referents``: with where the objects each
        question is about are (world only)."""
        max_len = self.config.data.max_len
        return self.vocab.dataset(self.data(split), max_len=max_len, referents=referents)

    def _grounded(self) -> bool:
        """SAN on the world: the hops' maps can be held against where the objects are."""
        return self.config.data.name == "world" and self.config.model.fusion == "san"

    def _supervised_attention(self) -> bool:
        return self._grounded() and self.config.model.attention_loss > 0

    def train_dataloader(self) -> DataLoader:
        ds = self.dataset("train", referents=self._supervised_attention())
        # Fewer images than data.batch_size: one batch of them all (as steps_per_epoch).
        whole = len(ds) >= self.config.data.batch_size
        return self.train_loader(ds, collate_fn=q.collate_questions, drop_last=whole)

    def val_dataloader(self) -> DataLoader:
        ds = self.dataset("val", referents=self._supervised_attention())
        batch_size = self.config.eval.batch_size
        return DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=q.collate_questions)

    # ------------------------------------------------------------------ model

    def build_model(self) -> nn.Module:
        from xmodal.referencing.vqa import VQAModel

        m = self.config.model
        kwargs = {k: v for k, v in dataclasses.asdict(m).items() if k not in _TASK_FIELDS}
        model = VQAModel(
            len(self.vocab.words),
            len(self.vocab.answers),
            encoder_kwargs=width_kwargs(m.encoder, m.channels),
            text_max_len=self.config.data.max_len,
            **kwargs,
        )
        if m.backbone:  # the shared backbone instead of the task's own pretraining
            start_encoder(self, model.encoder, fitting=self._fitting)
            return model
        # A resumed run's checkpoint holds the trained encoder: no pretraining then.
        pretrain = self._fitting and not self.resuming and m.pretrain_steps
        if pretrain and self.config.data.name == "world":
            self.pretrain_encoder(model.encoder)
        return model

    def pretrain_encoder(self, encoder: nn.Module) -> list[float]:
        """Train ``encoder`` in place to tell which object labels the world's training
        scenes show (:mod:`xmodal.vision.pretrain`): ``model.pretrain_steps`` steps of 32
        scenes at ``optim.encoder_lr``; every step's loss."""
        from xmodal.vision.pretrain import object_label_objective, object_labels
        from xmodal.world import COLOURS, SHAPES, SIZES

        scene = partial(self.world.scene, "train", audio=False, questions=False)
        labels, n_scenes = object_labels(COLOURS, SHAPES, SIZES), len(self.data("train"))
        head, step = object_label_objective(encoder, scene, n_scenes, labels, seed=self.config.seed)
        params = [*encoder.parameters(), *head.parameters()]
        opt = torch.optim.Adam(params, lr=self.config.optim.encoder_lr)
        return fit_steps(opt, step, steps=self.config.model.pretrain_steps, modules=[encoder, head])

    def steps_per_epoch(self) -> int:
        return max(1, super().steps_per_epoch())  # at least the one batch of train_dataloader

    def configure_optimizers(self, model: nn.Module):
        groups = encoder_groups(model, model.encoder, self.config.optim.encoder_lr)
        return self.config.optim.configure(groups, self.total_steps())

    def _step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(batch["image"], batch["tokens"], batch["lengths"], batch["image_index"])
        loss, _ = soft_cross_entropy(out.logits, batch["target"])
        hit = batch["target"].gather(1, out.logits.argmax(dim=-1, keepdim=True)).squeeze(1) > 0
        logs = {"xent": float(loss.detach()), "acc": float(hit.float().mean())}
        if "referents" in batch and out.attention is not None:
            look, _ = attention_loss(out.attention, batch["referents"])
            logs["attention_xent"] = float(look.detach())
            loss = loss + self.config.model.attention_loss * look
        return loss, logs

    def training_step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        return self._step(model, batch)

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        return self._step(model, batch)[1]

    # ------------------------------------------------------------------ inference

    def _answer(self, model: nn.Module, split: str, **kw):
        """Every question of ``split`` answered (:func:`answer_questions`, with ``kw``)."""
        e, pointing = self.config.eval, kw.get("pointing", False)
        workers = self.config.data.num_workers if kw.get("limit") is None else 0
        ds = self.dataset(split, referents=pointing)
        return answer_questions(model, ds, batch_size=e.batch_size, num_workers=workers, **kw)

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        result = self._answer(model, split, pointing=self._grounded())
        return score_answers(result, self.data(split), self.vocab.answers, self.vocab.majority)

    def figures(self, model: nn.Module) -> dict:
        from xmodal.viz.vqa import plot_vqa_examples

        data = self.data("val")
        shown = q.figure_questions(data, self.config.eval.n_figures)
        if not shown:
            return {}
        result = self._answer(model, "val", limit=len(shown), attention=True)
        predicted = [self.vocab.answers[int(result.answers[i])] for i in shown]
        return plot_vqa_examples(data, shown, predicted, result.attention, prefix="vqa_val")

    # ------------------------------------------------------------------ predict

    def predict(
        self, model: nn.Module, inputs: Sequence[str], out_dir: Path, *, top_k: int | None
    ) -> list[dict]:
        """Answer each ``(image file, question)`` pair of ``inputs`` (given in that
        order): the top answers with their probabilities, the question's out-of-vocabulary
        words, and (SAN) a figure of the attention hops over the image."""
        from xmodal.viz.figure import save_figure, unique_stems
        from xmodal.viz.vqa import plot_vqa_attention

        pairs = q.image_question_pairs(inputs)
        k = check_positive_int(self.config.eval.top_k if top_k is None else top_k, "top_k")
        d = self.config.data
        records, images, attention = answer_pairs(
            model, pairs, self.vocab, image_size=d.image_size, max_len=d.max_len, top_k=k
        )
        stems = unique_stems(path for path, _ in pairs)
        for n, record in enumerate(records):
            if attention is not None:
                question, answer = record["question"], record["answers"][0]["answer"]
                fig = plot_vqa_attention(images[n], question, answer, attention=attention[n])
                figure = save_figure(fig, Path(out_dir) / f"{stems[n]}_attention.png")
                record["files"].append(str(figure))
        return records
