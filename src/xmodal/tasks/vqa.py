"""The ``vqa`` task: visual question answering trained and scored by the engine.

Data: the world's VQA view (``data.name=world``: 10 questions per scene, each with one
certain answer, scored as 10 identical human answers), or a folder in the VQA v2 layout
(``data.name=vqa data.root=DIR``, :class:`~xmodal.data.vqa.VQAv2`; the world's export
writes it). A training step takes ``data.batch_size`` images with every question about
them (:mod:`xmodal.data.questions`), so each image is encoded once. Answers are classes:
the ``data.top_k`` most frequent training answers (VQA files: normalised), saved as
``answers.json`` beside ``vocab.json``. The loss is the cross-entropy against the share of
human answers each class got (:mod:`xmodal.referencing.vqa_losses`); questions none of
whose answers is a class count in the metrics, never in the loss. SAN on the world also
holds each hop's map to the objects its question is about (``model.attention_loss``).

Metrics: the official VQA accuracy (:mod:`xmodal.metrics.vqa`) overall and per question
family (world: exist, count, colour, shape, relation; VQA files: per answer type), the
majority-answer baseline, and (SAN on the world) each hop's pointing game. Figures:
validation images with a question each, the predicted and true answer and (SAN) every
hop's attention map.

Example::

    xmodal train vqa                                       # SAN on the world
    xmodal train vqa model.fusion=product                  # deeper LSTM Q + norm I
    xmodal predict vqa --run runs/vqa/<id> scene.png "what colour is the circle?"
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader

from xmodal._checks import check_bool, check_choice, check_positive_int, check_positive_number
from xmodal.data.questions import (
    QuestionsByImage,
    QuestionSplit,
    collate_questions,
    image_question_pairs,
    load_answers,
    save_answers,
    top_answers,
    unknown_words,
    vqa_questions,
    world_questions,
)
from xmodal.engine.base import EvalConfig, ImageDataConfig, TaskConfig, trainer_defaults
from xmodal.engine.config import TrainerConfig
from xmodal.engine.fit import fit_steps
from xmodal.engine.options import option
from xmodal.engine.schedule import AdamConfig, world_size
from xmodal.engine.task import Task
from xmodal.errors import DataError, ParameterError
from xmodal.metrics.vqa import normalize_answer
from xmodal.referencing.vqa_inference import AnsweredQuestions, answer_questions
from xmodal.referencing.vqa_losses import attention_loss, soft_cross_entropy
from xmodal.text.vocab import Vocabulary

__all__ = [
    "VQAConfig",
    "VQADataConfig",
    "VQAEvalConfig",
    "VQAModelConfig",
    "VQAOptimConfig",
    "VQATask",
    "pretrain_encoder",
]

ANSWERS_FILE = "answers.json"


@dataclass
class VQAModelConfig:
    """The model (:class:`~xmodal.referencing.vqa.VQAModel`). ``fusion``: ``san``
    (stacked attention, ``hops`` of them), ``product`` (deeper LSTM Q + norm I) or
    ``concat``; ``question_encoder``: ``lstm``, ``gru`` or ``transformer``."""

    fusion: str = "san"
    encoder: str = "small-cnn"
    channels: int = 128  # small-cnn width (ignored by the ResNets)
    question_encoder: str = "lstm"
    word_dim: int = 64
    hidden: int = 128
    question_layers: int = 1  # recurrent layers, or transformer blocks
    text_heads: int = 4  # transformer only
    embed_dim: int = 128
    attention_dim: int = 64
    hops: int = 2
    readout: str = "concat"  # san: [question, every hop's context, pooled product] or "sum"
    classifier_hidden: int = 512
    dropout: float = 0.1
    # World only: steps of object recognition for the image encoder before VQA training
    # (xmodal.vision.pretrain), as SAN's VGG comes pretrained on ImageNet. 0: none.
    pretrain_steps: int = 1000
    # World only (san): the weight of the attention supervision, the cross-entropy of each
    # hop's map against where the objects its question is about are
    # (xmodal.world.language.question_referents). 0: none. VQA files have no such truth.
    attention_loss: float = 1.0

    def __post_init__(self) -> None:
        from xmodal.referencing.vqa import FUSIONS, QUESTION_ENCODERS, READOUTS

        check_choice(self.fusion, "model.fusion", FUSIONS)
        check_choice(self.readout, "model.readout", READOUTS)
        check_choice(self.question_encoder, "model.question_encoder", QUESTION_ENCODERS)
        for name in ("channels", "word_dim", "hidden", "question_layers", "text_heads",
                     "embed_dim", "attention_dim", "hops", "classifier_hidden"):  # fmt: skip
            check_positive_int(getattr(self, name), f"model.{name}")
        check_positive_int(self.pretrain_steps, "model.pretrain_steps", minimum=0)
        check_positive_number(self.attention_loss, "model.attention_loss", allow_zero=True)
        if self.question_encoder == "transformer" and self.word_dim % self.text_heads:
            raise ParameterError(
                f"model.word_dim must be divisible by model.text_heads. Found: "
                f"word_dim={self.word_dim}, text_heads={self.text_heads}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ParameterError(f"model.dropout must be in [0, 1). Found: {self.dropout!r}")


@dataclass
class VQADataConfig(ImageDataConfig):
    """Where the questions come from. ``name=world``: the split sizes count questions (10
    per scene). ``name=vqa``: ``root`` is a folder in the VQA v2 layout and ``*_split``
    its splits' names (``val2014`` ...); ``image_names`` how images are named
    (:class:`~xmodal.data.vqa.VQAv2`). ``batch_size`` counts images, each with all its
    questions."""

    sources: ClassVar[tuple[str, ...]] = ("world", "vqa")

    root: str | None = None
    compositional: bool = False  # world: hold combinations out, score them apart
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    image_names: str = "auto"
    train_size: int = 60_000
    val_size: int = 1_000
    test_size: int = 2_000
    top_k: int = 1000  # answer classes: the most frequent training answers
    max_len: int = 24  # tokens per question, <bos> and <eos> included
    min_freq: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int(self.top_k, "data.top_k")
        check_positive_int(self.min_freq, "data.min_freq")
        check_positive_int(self.max_len, "data.max_len", minimum=3)
        check_bool(self.compositional, "data.compositional")
        if self.name == "vqa" and self.root is None:
            raise ParameterError(
                "data.name=vqa needs data.root, the folder with the VQA v2 question and "
                "annotation files and the images. Found: root=None"
            )


@dataclass
class VQAOptimConfig(AdamConfig):
    """Adam with a linear warm-up and a cosine decay to ``min_lr_ratio * lr``; the image
    encoder at its own ``encoder_lr`` (a pretrained encoder is fine-tuned gently)."""

    encoder_lr: float = 5e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_number(self.encoder_lr, "optim.encoder_lr")


@dataclass
class VQAEvalConfig(EvalConfig):
    """Evaluation, figures and predict: ``top_k`` answers shown per question."""

    batch_size: int = 100  # images per batch
    top_k: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int(self.top_k, "eval.top_k")


@dataclass
class VQAConfig(TaskConfig):
    model: VQAModelConfig = field(default_factory=VQAModelConfig)
    data: VQADataConfig = field(default_factory=VQADataConfig)
    optim: VQAOptimConfig = field(default_factory=VQAOptimConfig)
    eval: VQAEvalConfig = field(default_factory=VQAEvalConfig)
    trainer: TrainerConfig = trainer_defaults(max_epochs=10, gradient_clip_val=5.0)

    @property
    def eval_splits(self) -> tuple[str, ...]:
        if self.data.name == "world" and self.data.compositional:
            return ("test", "compositional")
        return ("test",)


def pretrain_encoder(encoder: nn.Module, world, n_scenes: int, *, steps: int, seed: int,
                     lr: float = 5e-4, batch_size: int = 32) -> list[float]:  # fmt: skip
    """Train ``encoder`` in place to tell which object labels the first ``n_scenes``
    training scenes of ``world`` show (:mod:`xmodal.vision.pretrain`), Adam on batches
    drawn by a generator seeded by ``seed``; every step's loss."""
    from xmodal.vision.pretrain import LabelHead, object_label_loss, object_labels
    from xmodal.world import COLOURS, SHAPES, SIZES

    labels = object_labels(COLOURS, SHAPES, SIZES)
    head = LabelHead(encoder.feature_info.channels, len(labels))
    head.to(next(encoder.parameters()).device)
    opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=lr)
    gen = torch.Generator().manual_seed(seed)

    def step(_: int) -> torch.Tensor:
        drawn = torch.randint(n_scenes, (batch_size,), generator=gen).tolist()
        scenes = [world.scene("train", i, audio=False, questions=False) for i in drawn]
        return object_label_loss(encoder, head, scenes, labels)

    return fit_steps(opt, step, steps=steps, modules=[encoder, head])


class VQATask(Task):
    """Visual question answering (referencing): SAN, deeper LSTM Q + norm I, concat."""

    name = "vqa"
    family = "referencing"
    summary = "Visual question answering: stacked attention (SAN) or LSTM Q + norm I fusion"
    default_data = "world"
    Config = VQAConfig

    @dataclass
    class PredictOptions:
        top_k: int | None = option(None, "answers shown per question (default: eval.top_k)",
                                   flags=("-k",), metavar="K")  # fmt: skip

    def __init__(self, config: VQAConfig) -> None:
        super().__init__(config)
        self.vocab: Vocabulary | None = None
        self.answers: list[str] | None = None  # the answer classes, by label
        self.majority: str | None = None  # the most frequent training answer
        self._fitting = False  # setup("fit") was called: build_model pretrains the encoder

    # ------------------------------------------------------------------ data

    def world_data(self, split: str) -> QuestionSplit:
        from xmodal.world.datasets import make_dataset

        view = make_dataset(self.world, "vqa", split, size=self.config.data.size(split))
        return world_questions(view)

    def vqa_data(self, split: str) -> QuestionSplit:
        from xmodal.data.vqa import VQAv2

        d = self.config.data
        names = {"train": d.train_split, "val": d.val_split, "test": d.test_split}
        subtype = names.get(split, split)  # other splits by their own name
        ds = VQAv2.from_folder(d.root, subtype, image_size=d.image_size, image_names=d.image_names)
        if len(ds) == 0:
            raise DataError(f"data.root={d.root!r}: split {subtype!r} has no questions")
        return vqa_questions(ds)

    def artifacts(self) -> list[str]:
        return ["vocab.json", ANSWERS_FILE]

    def _normalize(self):
        """VQA files' answers are matched after the official normalisation."""
        return normalize_answer if self.config.data.name == "vqa" else None

    def setup(self, run_dir: Path, stage: str) -> None:
        run_dir = Path(run_dir)
        self._fitting = stage == "fit"
        if stage == "fit":
            train = self.data("train")
            self.vocab = Vocabulary.build(train.questions, min_freq=self.config.data.min_freq)
            self.vocab.save(run_dir / "vocab.json")
            k = self.config.data.top_k
            self.answers, self.majority = top_answers(train, k, normalize=self._normalize())
            save_answers(run_dir / ANSWERS_FILE, self.answers, self.majority)
        else:  # the engine has checked that the artifacts are there
            self.vocab = Vocabulary.load(run_dir / "vocab.json")
            self.answers, self.majority = load_answers(run_dir / ANSWERS_FILE)

    def dataset(self, split: str, *, referents: bool = False) -> QuestionsByImage:
        """The questions of ``split`` by image; ``referents``: with where the objects each
        question is about are (world only)."""
        classes = {a: j for j, a in enumerate(self.answers)}
        return QuestionsByImage(
            self.data(split), self.vocab, classes, normalize=self._normalize(),
            max_len=self.config.data.max_len, referents=referents,
        )  # fmt: skip

    def _grounded(self) -> bool:
        """SAN on the world: the hops' maps can be held against where the objects are."""
        return self.config.data.name == "world" and self.config.model.fusion == "san"

    def _supervised_attention(self) -> bool:
        return self._grounded() and self.config.model.attention_loss > 0

    def train_dataloader(self) -> DataLoader:
        from xmodal.engine.data import seeded_loader

        # Task.train_loader, with the batch cut to the images there are (as steps_per_epoch)
        d = self.config.data
        ds = self.dataset("train", referents=self._supervised_attention())
        return seeded_loader(
            ds, batch_size=min(d.batch_size, len(ds)), shuffle=True, seed=self.config.seed,
            num_workers=d.num_workers, collate_fn=collate_questions, drop_last=True,
        )  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        ds = self.dataset("val", referents=self._supervised_attention())
        return DataLoader(ds, batch_size=self.config.eval.batch_size, shuffle=False,
                          collate_fn=collate_questions)  # fmt: skip

    # ------------------------------------------------------------------ model

    def build_model(self) -> nn.Module:
        from xmodal.referencing.vqa import VQAModel

        m = self.config.model
        model = VQAModel(
            len(self.vocab), len(self.answers), fusion=m.fusion, encoder=m.encoder,
            encoder_kwargs={"channels": m.channels} if m.encoder == "small-cnn" else {},
            question_encoder=m.question_encoder, word_dim=m.word_dim, hidden=m.hidden,
            question_layers=m.question_layers, text_heads=m.text_heads,
            text_max_len=self.config.data.max_len, embed_dim=m.embed_dim,
            attention_dim=m.attention_dim, hops=m.hops, readout=m.readout,
            classifier_hidden=m.classifier_hidden, dropout=m.dropout,
        )  # fmt: skip
        # A resumed run's checkpoint holds the trained encoder: no pretraining then.
        pretrain = self._fitting and not self.resuming and m.pretrain_steps
        if pretrain and self.config.data.name == "world":
            pretrain_encoder(model.encoder, self.world, len(self.data("train")),
                             steps=m.pretrain_steps, seed=self.config.seed,
                             lr=self.config.optim.encoder_lr)  # fmt: skip
        return model

    def steps_per_epoch(self) -> int:
        images = len(self.data("train"))
        return max(1, images // (min(self.config.data.batch_size, images) * world_size()))

    def configure_optimizers(self, model: nn.Module):
        encoder = list(model.encoder.parameters())
        mine = {id(p) for p in encoder}
        groups = [
            {"params": [p for p in model.parameters() if id(p) not in mine]},
            {"params": encoder, "lr": self.config.optim.encoder_lr},
        ]
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

    def _answer(self, model: nn.Module, split: str, **kw) -> AnsweredQuestions:
        """Every question of ``split`` answered (:func:`answer_questions`, with ``kw``)."""
        e, pointing = self.config.eval, kw.get("pointing", False)
        workers = self.config.data.num_workers if kw.get("limit") is None else 0
        ds = self.dataset(split, referents=pointing)
        return answer_questions(model, ds, batch_size=e.batch_size, num_workers=workers, **kw)

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        from xmodal.metrics.localization import pointing_scores
        from xmodal.metrics.vqa import vqa_scores

        data = self.data(split)
        result = self._answer(model, split, pointing=self._grounded())
        predictions = [self.answers[int(j)] for j in result.answers]
        metrics = vqa_scores(predictions, data.answers, groups=data.families)
        baseline = vqa_scores([self.majority] * len(data.answers), data.answers)
        metrics["majority_accuracy"] = baseline["accuracy"]
        if data.named_held_out is not None and any(data.named_held_out):
            # the questions that name a held-out combination ("is there a red circle?")
            keep = [i for i, named in enumerate(data.named_held_out) if named]
            named = vqa_scores([predictions[i] for i in keep], [data.answers[i] for i in keep])
            metrics["accuracy_held_out_named"] = named["accuracy"]
            metrics["n_held_out_named"] = len(keep)
        if result.hits is not None:  # where the hops looked: their peaks on the objects
            metrics.update(pointing_scores(result.hits, result.has))
        metrics["n_images"] = len(data.groups)
        metrics["n_classes"] = len(self.answers)
        return metrics

    def figures(self, model: nn.Module) -> dict:
        from xmodal.viz.vqa import plot_vqa_attention

        split, data = "val", self.data("val")
        n = min(self.config.eval.n_figures, len(data.groups))
        if n == 0:
            return {}
        result = self._answer(model, split, limit=n, attention=True)
        families, figures = sorted(set(data.families)), {}
        for g in range(n):
            qs = data.groups[g]
            # each image with a question of the next family in turn, where it has one
            wanted = families[g % len(families)]
            i = next((i for i in qs if data.families[i] == wanted), qs[g % len(qs)])
            truth = Counter(data.answers[i]).most_common(1)[0][0]
            family = re.sub(r"[^\w-]+", "_", data.families[i])  # "yes/no" -> "yes_no"
            figures[f"vqa_{split}_{g}_{family}"] = plot_vqa_attention(
                data.image(g), data.questions[i], self.answers[int(result.answers[i])], truth,
                result.attention.get(i),
            )  # fmt: skip
        return figures

    # ------------------------------------------------------------------ predict

    def predict(self, model: nn.Module, inputs: Sequence[str], out_dir: Path, *,
                top_k: int | None) -> list[dict]:  # fmt: skip
        """Answer each ``(image file, question)`` pair of ``inputs`` (given in that
        order): the top answers with their probabilities, the question's out-of-vocabulary
        words, and (SAN) a figure of the attention hops over the image."""
        from xmodal.data.images import load_image
        from xmodal.viz.figure import save_figure, unique_stems
        from xmodal.viz.vqa import plot_vqa_attention

        pairs = image_question_pairs(inputs)
        k = check_positive_int(self.config.eval.top_k if top_k is None else top_k, "top_k")
        size = self.config.data.image_size
        images = [load_image(path, size=size) for path, _ in pairs]
        unknown = [unknown_words(self.vocab, question) for _, question in pairs]
        questions, device = [q for _, q in pairs], self.model_device(model)
        tokens, lengths = self.vocab.encode_batch(questions, max_len=self.config.data.max_len,
                                                  pad=False)  # fmt: skip
        model.eval()
        probs, ids, attention = model.answer(torch.stack(images).to(device), tokens.to(device),
                                             lengths, top_k=k)  # fmt: skip
        records, stems = [], unique_stems(path for path, _ in pairs)
        for n, (path, question) in enumerate(pairs):
            answers = [
                {"answer": self.answers[int(j)], "probability": round(float(p), 4)}
                for p, j in zip(probs[n].cpu(), ids[n].cpu(), strict=True)
            ]
            text = ", ".join(f"{a['answer']} ({a['probability']:.2f})" for a in answers)
            if unknown[n]:
                text += f"  [not in the vocabulary, read as <unk>: {', '.join(unknown[n])}]"
            record = {"input": f"{path} {question!r}", "image": str(path), "question": question,
                      "answers": answers, "unknown_words": unknown[n], "text": text,
                      "files": []}  # fmt: skip
            if attention is not None:
                fig = plot_vqa_attention(images[n], question, answers[0]["answer"],
                                         attention=attention[n].cpu())  # fmt: skip
                figure = save_figure(fig, Path(out_dir) / f"{stems[n]}_attention.png")
                record["files"].append(str(figure))
            records.append(record)
        return records
