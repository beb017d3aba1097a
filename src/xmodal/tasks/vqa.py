"""The ``vqa`` task: visual question answering trained and scored by the engine.

Data: the world's VQA view by default (``data.name=world``: ``data.train_size`` questions,
10 per scene, each with one certain answer, scored as 10 identical human answers), or a
folder in the VQA v2 layout (``data.name=vqa data.root=DIR``: the question and annotation
files of ``data.train_split`` / ``val_split`` / ``test_split`` and the images,
:class:`~xmodal.data.vqa.VQAv2`; the world's export writes it).

A training step takes ``data.batch_size`` images with every question about them: each
image is encoded once. Answers are classes: the ``data.top_k`` most frequent training
answers (VQA files: after the official normalisation), saved as ``answers.json`` beside
the question vocabulary ``vocab.json``. The loss is the cross-entropy against the
question's human answers in the classes (a soft target when annotators disagree);
questions none of whose answers is a class still count in the metrics, never in the loss.

Metrics (``evaluate``): the official VQA accuracy (:mod:`xmodal.metrics.vqa`) overall and
per question family (world: exist, count, colour, shape, relation; VQA files: per answer
type, yes/no, number, other), with the majority-answer baseline beside it.

Figures: validation images with a question each, the predicted and the true answer, and
(``model.fusion=san``) the attention map of every hop over the image.

Example::

    xmodal train vqa                                       # SAN on the world
    xmodal train vqa model.fusion=product                  # deeper LSTM Q + norm I
    xmodal predict vqa --run runs/vqa/<id> scene.png "what colour is the circle?"
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from xmodal._checks import check_bool, check_choice, check_positive_int, check_positive_number
from xmodal.engine.config import TrainerConfig
from xmodal.engine.data import seeded_loader
from xmodal.engine.schedule import AdamConfig, planned_steps, world_size
from xmodal.engine.task import Task
from xmodal.errors import DataError, ParameterError
from xmodal.metrics.vqa import normalize_answer
from xmodal.text.vocab import PAD_ID, UNK_ID, Vocabulary, tokenize

__all__ = [
    "VQAConfig",
    "VQADataConfig",
    "VQAEvalConfig",
    "VQAModelConfig",
    "VQAOptimConfig",
    "VQATask",
    "QuestionsByImage",
    "attention_loss",
    "collate_questions",
    "pointing_hits",
    "plot_vqa_attention",
]

DATA = ("world", "vqa")
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
    # (which colours, shapes, colour-shape and size-shape pairs a training scene shows),
    # as SAN's VGG comes pretrained on ImageNet. 0: none. Skipped for VQA files.
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
class VQADataConfig:
    """Where the questions come from. ``name=world``: ``world_seed``, ``image_size`` and
    the split sizes in questions (10 per scene). ``name=vqa``: ``root`` is a folder in the
    VQA v2 layout and ``*_split`` its splits' names (``val2014`` ...); ``image_names`` how
    images are named (:class:`~xmodal.data.vqa.VQAv2`)."""

    name: str = "world"
    root: str | None = None
    compositional: bool = False  # world: hold combinations out, score them apart
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    image_names: str = "auto"
    world_seed: int = 0
    image_size: int = 64
    train_size: int = 60_000
    val_size: int = 1_000
    test_size: int = 2_000
    top_k: int = 1000  # answer classes: the most frequent training answers
    max_len: int = 24  # tokens per question, <bos> and <eos> included
    min_freq: int = 1
    batch_size: int = 32  # images per step, each with all its questions
    num_workers: int = 2

    def __post_init__(self) -> None:
        check_choice(self.name, "data.name", DATA)
        for key in ("image_size", "train_size", "val_size", "test_size", "top_k",
                    "batch_size", "min_freq"):  # fmt: skip
            check_positive_int(getattr(self, key), f"data.{key}")
        check_positive_int(self.max_len, "data.max_len", minimum=3)
        check_positive_int(self.num_workers, "data.num_workers", minimum=0)
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
class VQAEvalConfig:
    """Evaluation, figures and predict: ``top_k`` answers shown per question."""

    batch_size: int = 100  # images per batch
    top_k: int = 5
    n_figures: int = 4

    def __post_init__(self) -> None:
        check_positive_int(self.batch_size, "eval.batch_size")
        check_positive_int(self.top_k, "eval.top_k")
        check_positive_int(self.n_figures, "eval.n_figures", minimum=0)


def _default_trainer() -> TrainerConfig:
    return TrainerConfig(max_epochs=10, gradient_clip_val=5.0)


@dataclass
class VQAConfig:
    seed: int = 0
    model: VQAModelConfig = field(default_factory=VQAModelConfig)
    data: VQADataConfig = field(default_factory=VQADataConfig)
    optim: VQAOptimConfig = field(default_factory=VQAOptimConfig)
    eval: VQAEvalConfig = field(default_factory=VQAEvalConfig)
    trainer: TrainerConfig = field(default_factory=_default_trainer)

    @property
    def eval_splits(self) -> tuple[str, ...]:
        if self.data.name == "world" and self.data.compositional:
            return ("test", "compositional")
        return ("test",)


# ----------------------------------------------------------------------------- data


@dataclass
class _Split:
    """The questions of a split grouped by image, without the images.

    ``groups[g]`` lists the questions (indices into ``questions``, ``answers`` and
    ``families``) about image ``g``; ``source`` gives the image (a world VQA view or a
    :class:`~xmodal.data.vqa.VQAv2`), ``image_keys[g]`` where it is there.
    """

    questions: list[str]
    answers: list[list[str]]  # the human answers (the world's one answer, 10 times)
    families: list[str]  # world: the question family; VQA files: the answer type
    groups: list[list[int]]
    source: object
    image_keys: list[int]
    # world: does the question name a held-out (colour, shape) combination
    named_held_out: list[bool] | None = None

    def image(self, g: int) -> torch.Tensor:
        src = self.source
        if hasattr(src, "world"):  # the world's VQA view: key = scene index
            scene = src.world.scene(src.split, self.image_keys[g], audio=False, questions=False)
            return scene.image.to(torch.float32).div_(255.0)
        return src[self.image_keys[g]]["image"]  # VQAv2: key = an item of the image

    def image_and_referents(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        """World only: image ``g`` and, for each of its questions, where the objects it is
        about are: ``(n_q, 2, H, W)`` bool, the masks of the first and of the second look
        (:func:`~xmodal.world.language.question_referents`; all False where none)."""
        from xmodal.world.language import question_referents

        world, qs = self.source.world, self.groups[g]
        scene = world.scene(self.source.split, self.image_keys[g], audio=False)
        referents = torch.zeros(len(qs), 2, *scene.masks.shape[1:], dtype=torch.bool)
        for k, q in enumerate(scene.questions[: len(qs)]):
            looks = question_referents(q, scene.objects, margin=world.margin)
            for look, objects in enumerate(looks):
                if objects:
                    referents[k, look] = scene.masks[objects].any(dim=0)
        return scene.image.to(torch.float32).div_(255.0), referents


def _world_split(view) -> _Split:
    """The world's VQA view grouped by scene: question ``i`` of the view is question
    ``i % n`` of scene ``i // n``, exactly as :class:`~xmodal.world.datasets.VQADataset`
    gives it."""
    n = view.world.config.n_questions
    held_out = set(view.world.config.held_out) if view.world.config.compositional else set()
    questions, answers, families, groups, keys, named = [], [], [], [], [], []
    for s in range(math.ceil(len(view) / n)):
        scene = view.world.scene(view.split, s, audio=False)
        count = min(n, len(view) - s * n)
        groups.append(list(range(len(questions), len(questions) + count)))
        keys.append(s)
        for q in scene.questions[:count]:
            questions.append(q.question)
            answers.append([q.answer] * 10)  # one certain answer: ten annotators agree
            families.append(q.family)
            named.append(any(pair in held_out for pair in _described(q.facts)))
    return _Split(questions, answers, families, groups, view, keys, named)


def _described(facts: dict) -> list[tuple]:
    """The (colour, shape) pairs a world question's descriptions name (``facts`` itself,
    or its ``a`` and ``b`` for a relation)."""
    return [(d.get("colour"), d.get("shape"))
            for d in (facts, facts.get("a"), facts.get("b")) if isinstance(d, dict)]  # fmt: skip


def _vqa_split(ds) -> _Split:
    """A :class:`~xmodal.data.vqa.VQAv2` split grouped by image id (first seen first)."""
    by_image: dict[int, list[int]] = {}
    for i, image_id in enumerate(ds.image_ids):
        by_image.setdefault(image_id, []).append(i)
    records = [ds.record(i) for i in range(len(ds))]
    return _Split(
        questions=[r["question"] for r in records],
        answers=[r["answers"] for r in records],
        families=[r["answer_type"] or "all" for r in records],
        groups=list(by_image.values()),
        source=ds,
        image_keys=[g[0] for g in by_image.values()],
    )


class QuestionsByImage(Dataset):
    """Item ``g``: image ``g`` of a split with every question about it.

    ``image`` (3, H, W); ``tokens`` a list of LongTensors (<bos> ... <eos>); ``target``
    (n_q, K) float, each row the question's human answers among the K classes as a
    distribution (all zero when none is a class); ``question_index`` the questions'
    positions in the split.
    """

    def __init__(self, split: _Split, vocab: Vocabulary, classes: dict[str, int], *,
                 normalize: bool, max_len: int, referents: bool = False) -> None:  # fmt: skip
        self.split, self.vocab, self.classes = split, vocab, classes
        self.normalize, self.max_len, self.referents = normalize, max_len, referents

    def __len__(self) -> int:
        return len(self.split.groups)

    def target(self, answers: list[str]) -> torch.Tensor:
        row = torch.zeros(len(self.classes))
        for a in answers:
            j = self.classes.get(normalize_answer(a) if self.normalize else a)
            if j is not None:
                row[j] += 1.0
        total = row.sum()
        return row / total if total > 0 else row

    def __getitem__(self, g: int) -> dict:
        qs = self.split.groups[g]
        item = {
            "tokens": [
                torch.tensor(self.vocab.encode(self.split.questions[i], max_len=self.max_len))
                for i in qs
            ],
            "target": torch.stack([self.target(self.split.answers[i]) for i in qs]),
            "question_index": qs,
        }
        if self.referents:
            item["image"], item["referents"] = self.split.image_and_referents(g)
        else:
            item["image"] = self.split.image(g)
        return item


def collate_questions(items: list[dict]) -> dict:
    """``image`` (B, 3, H, W); ``tokens`` (Q, L) <pad>-padded and ``lengths`` (Q,) for all
    Q questions of the batch; ``image_index`` (Q,) the image row of each; ``target``
    (Q, K); ``question_index`` (Q,); and ``referents`` (Q, 2, H, W) when the items have
    them."""
    tokens = [t for it in items for t in it["tokens"]]
    batch = {
        "image": torch.stack([it["image"] for it in items]),
        "tokens": nn.utils.rnn.pad_sequence(tokens, batch_first=True, padding_value=PAD_ID),
        "lengths": torch.tensor([len(t) for t in tokens]),
        "image_index": torch.tensor([b for b, it in enumerate(items) for _ in it["tokens"]]),
        "target": torch.cat([it["target"] for it in items]),
        "question_index": torch.tensor([i for it in items for i in it["question_index"]]),
    }
    if "referents" in items[0]:
        batch["referents"] = torch.cat([it["referents"] for it in items])
    return batch


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Mean of ``-sum_k target_k log softmax(logits)_k`` over the rows whose target has
    mass (questions with an answer among the classes); ``(loss, rows used)``."""
    keep = target.sum(dim=-1) > 0
    used = int(keep.sum())
    if used == 0:
        return logits.sum() * 0.0, 0  # no answer in the classes: nothing to learn, no NaN
    loss = -(target[keep] * F.log_softmax(logits[keep], dim=-1)).sum(dim=-1)
    return loss.mean(), used


def attention_loss(attention: torch.Tensor, referents: torch.Tensor) -> tuple[torch.Tensor, int]:
    """How far each hop looked from the objects its question is about.

    ``attention (Q, K, h, w)``, each map summing to 1; ``referents (Q, 2, H, W)`` bool, the
    first and the second look's objects (:meth:`_Split.image_and_referents`), H and W
    multiples of h and w. Hop 1 is held to the first look, hops 2..K to the second. The
    target of a hop is the share of each cell its objects cover, normalised to sum to 1;
    the loss is the mean over the maps that have a target of ``-sum target * log map``
    (a cross-entropy, as attention supervision does, Qiao et al. 2018).
    Returns ``(loss, maps used)``."""
    target = _look_targets(attention, referents)
    mass = target.sum(dim=(2, 3))
    keep = mass > 0
    used = int(keep.sum())
    if used == 0:
        return attention.sum() * 0.0, 0
    target = target[keep] / mass[keep][:, None, None]
    loss = -(target * attention[keep].clamp_min(1e-12).log()).sum(dim=(1, 2))
    return loss.mean(), used


def _look_targets(attention: torch.Tensor, referents: torch.Tensor) -> torch.Tensor:
    """``(Q, K, h, w)``: the share of each cell of hop k's map covered by its look's objects
    (hop 1: the first look; hops 2..K: the second)."""
    k = attention.shape[1]
    target = F.adaptive_avg_pool2d(referents.to(attention.dtype), attention.shape[2:])
    return target[:, [min(j, 1) for j in range(k)]]


def pointing_hits(
    attention: torch.Tensor, referents: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The pointing game (Zhang et al. 2016) for attention hops: ``(hit, has)``, both
    ``(Q, K)`` bool; ``has``: hop k's look has objects (:func:`attention_loss` pairs hops
    and looks); ``hit``: and the map's most attended cell holds part of them."""
    target = _look_targets(attention, referents).flatten(2)  # (Q, K, h*w)
    has = target.sum(dim=-1) > 0
    peak = attention.flatten(2).argmax(dim=-1, keepdim=True)
    hit = target.gather(2, peak).squeeze(2) > 0
    return hit & has, has


def object_labels() -> list[str]:
    """The world's object labels the encoder is pretrained on: each colour, each shape,
    each "colour shape" and each "size shape"."""
    from xmodal.world import COLOURS, SHAPES, SIZES

    pairs = [f"{c} {s}" for c in COLOURS for s in SHAPES]
    return [*COLOURS, *SHAPES, *pairs, *(f"{z} {s}" for z in SIZES for s in SHAPES)]


def pretrain_encoder(encoder: nn.Module, world, n_scenes: int, *, steps: int, seed: int,
                     lr: float = 5e-4, batch_size: int = 32) -> list[float]:  # fmt: skip
    """Train ``encoder`` in place to tell which :func:`object_labels` the first
    ``n_scenes`` training scenes of ``world`` show: a 1x1 convolution scores each label at
    each location, the maximum over locations is the image's score (max pooling: the
    small CNN learns the shapes several times faster than with the mean), binary
    cross-entropy, Adam. Returns the loss of every step."""
    labels = {name: j for j, name in enumerate(object_labels())}
    head = nn.Conv2d(encoder.feature_info.channels, len(labels), kernel_size=1)
    device = next(encoder.parameters()).device
    head.to(device)
    opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    was_training, losses = encoder.training, []
    encoder.train()
    with torch.enable_grad():
        for _ in range(steps):
            images, targets = [], torch.zeros(batch_size, len(labels))
            for b, i in enumerate(torch.randint(n_scenes, (batch_size,), generator=gen).tolist()):
                scene = world.scene("train", i, audio=False, questions=False)
                images.append(scene.image)
                for o in scene.objects:
                    for name in (o.colour, o.shape, f"{o.colour} {o.shape}", f"{o.size} {o.shape}"):
                        targets[b, labels[name]] = 1.0
            scores = head(encoder.forward_features(torch.stack(images).to(device))).amax((2, 3))
            loss = F.binary_cross_entropy_with_logits(scores, targets.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    encoder.train(was_training)
    return losses


# ----------------------------------------------------------------------------- figures


def plot_vqa_attention(image, question: str, predicted: str, truth: str | None = None,
                       attention=None):  # fmt: skip
    """The image titled with the question and the answers, then each attention hop
    ``(hops, h, w)`` (upsampled bilinearly, as :mod:`xmodal.viz.attention` shows caption
    attention) over it. Returns a :class:`matplotlib.figure.Figure`."""
    from matplotlib.figure import Figure

    from xmodal.viz.attention import upsample_attention

    img = image.detach().cpu().float().clamp(0, 1).permute(1, 2, 0).numpy()
    H, W = img.shape[:2]
    maps = []
    if attention is not None:
        maps = list(upsample_attention(attention.detach().cpu().float(), (H, W)).numpy())
    fig = Figure(figsize=(2.4 * (1 + len(maps)), 2.8), layout="constrained")
    axes = fig.subplots(1, 1 + len(maps), squeeze=False)[0]
    extent = (0, W, H, 0)
    axes[0].imshow(img, extent=extent, interpolation="nearest")
    answer = f"answer: {predicted}" + (f" (true: {truth})" if truth is not None else "")
    axes[0].set_title(answer, fontsize=8, color="black" if truth in (None, predicted) else "red")
    for k, (ax, alpha) in enumerate(zip(axes[1:], maps, strict=True)):
        ax.imshow(img, extent=extent, interpolation="nearest")
        top = float(alpha.max())
        ax.imshow(alpha, cmap="gray", vmin=0.0, vmax=top if top > 0 else 1.0, alpha=0.6,
                  extent=extent, interpolation="nearest")  # fmt: skip
        ax.set_title(f"hop {k + 1}", fontsize=8)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(question, fontsize=9)
    return fig


# ----------------------------------------------------------------------------- the task


class VQATask(Task):
    """Visual question answering (referencing): SAN, deeper LSTM Q + norm I, concat."""

    name = "vqa"
    family = "referencing"
    summary = "Visual question answering: stacked attention (SAN) or LSTM Q + norm I fusion"
    default_data = "world"
    Config = VQAConfig

    def __init__(self, config: VQAConfig) -> None:
        super().__init__(config)
        self.vocab: Vocabulary | None = None
        self.answers: list[str] | None = None  # the answer classes, by label
        self.majority: str | None = None  # the most frequent training answer
        self._splits: dict[str, _Split] = {}
        self._fitting = False  # setup("fit") was called: build_model pretrains the encoder

    # ------------------------------------------------------------------ data

    def split(self, split: str) -> _Split:
        """The questions of ``split`` (``train``, ``val``, ``test``) grouped by image."""
        if split not in self._splits:
            d = self.config.data
            if d.name == "world":
                from xmodal.world.datasets import make_dataset

                size = {"train": d.train_size, "val": d.val_size}.get(split, d.test_size)
                view = make_dataset(self.world, "vqa", split, size=size)
                self._splits[split] = _world_split(view)
            else:
                from xmodal.data.vqa import VQAv2

                subtype = {"train": d.train_split, "val": d.val_split}.get(split, d.test_split)
                if split not in ("train", "val", "test"):
                    subtype = split
                ds = VQAv2.from_folder(d.root, subtype, image_size=d.image_size,
                                       image_names=d.image_names)  # fmt: skip
                if len(ds) == 0:
                    raise DataError(f"data.root={d.root!r}: split {subtype!r} has no questions")
                self._splits[split] = _vqa_split(ds)
        return self._splits[split]

    def artifacts(self) -> list[str]:
        return ["vocab.json", ANSWERS_FILE]

    def _normalized(self) -> bool:
        return self.config.data.name == "vqa"

    def setup(self, run_dir: Path, stage: str) -> None:
        run_dir = Path(run_dir)
        self._fitting = stage == "fit"
        if stage == "fit":
            train = self.split("train")
            self.vocab = Vocabulary.build(train.questions, min_freq=self.config.data.min_freq)
            self.vocab.save(run_dir / "vocab.json")
            self.answers, self.majority = self._top_answers(train)
            data = {"answers": self.answers, "majority": self.majority}
            tmp = run_dir / f".{ANSWERS_FILE}.tmp"
            tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
            tmp.replace(run_dir / ANSWERS_FILE)
        else:
            for name in self.artifacts():
                if not (run_dir / name).is_file():
                    raise DataError(f"run folder {str(run_dir)!r} has no {name}")
            self.vocab = Vocabulary.load(run_dir / "vocab.json")
            try:
                data = json.loads((run_dir / ANSWERS_FILE).read_text(encoding="utf-8"))
                self.answers, self.majority = list(data["answers"]), str(data["majority"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise DataError(f"{run_dir / ANSWERS_FILE} is not an answers file: {e}") from e

    def _top_answers(self, train: _Split) -> tuple[list[str], str]:
        """The ``data.top_k`` most frequent training answers (ties by name) and the most
        frequent one. World answers are counted once per question; VQA annotations once
        per human answer, after the official normalisation."""
        if self._normalized():
            counts = Counter(normalize_answer(a) for ans in train.answers for a in ans)
        else:
            counts = Counter(ans[0] for ans in train.answers)
        counts.pop("", None)
        if not counts:
            raise DataError("the training questions have no answers")
        ranked = sorted(counts, key=lambda a: (-counts[a], a))
        return ranked[: self.config.data.top_k], ranked[0]

    def dataset(self, split: str, *, referents: bool = False) -> QuestionsByImage:
        """The questions of ``split`` by image; ``referents``: with where the objects each
        question is about are (world only)."""
        classes = {a: j for j, a in enumerate(self.answers)}
        return QuestionsByImage(
            self.split(split), self.vocab, classes, normalize=self._normalized(),
            max_len=self.config.data.max_len, referents=referents,
        )  # fmt: skip

    def _grounded(self) -> bool:
        """SAN on the world: the hops' maps can be held against where the objects are."""
        return self.config.data.name == "world" and self.config.model.fusion == "san"

    def _supervised_attention(self) -> bool:
        return self._grounded() and self.config.model.attention_loss > 0

    def train_dataloader(self) -> DataLoader:
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
            pretrain_encoder(model.encoder, self.world, len(self.split("train").groups),
                             steps=m.pretrain_steps, seed=self.config.seed,
                             lr=self.config.optim.encoder_lr)  # fmt: skip
        return model

    def configure_optimizers(self, model: nn.Module):
        d = self.config.data
        images = len(self.split("train").groups)
        per_epoch = images // (min(d.batch_size, images) * world_size())
        total = planned_steps(self.config.trainer, max(1, per_epoch))
        encoder = list(model.encoder.parameters())
        mine = {id(p) for p in encoder}
        groups = [
            {"params": [p for p in model.parameters() if id(p) not in mine]},
            {"params": encoder, "lr": self.config.optim.encoder_lr},
        ]
        return self.config.optim.configure(groups, total)

    def _step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(batch["image"], batch["tokens"], batch["lengths"], batch["image_index"])
        loss, used = soft_cross_entropy(out.logits, batch["target"])
        hit = batch["target"].gather(1, out.logits.argmax(dim=-1, keepdim=True)).squeeze(1) > 0
        logs = {"xent": float(loss.detach()), "acc": float(hit.float().mean()), "used": used}
        if "referents" in batch and out.attention is not None:
            look, _ = attention_loss(out.attention, batch["referents"])
            logs["attention_xent"] = float(look.detach())
            loss = loss + self.config.model.attention_loss * look
        return loss, logs

    def training_step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        loss, logs = self._step(model, batch)
        logs.pop("used")
        return loss, logs

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        _, logs = self._step(model, batch)
        logs.pop("used")
        return logs

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def _answer_split(self, model: nn.Module, split: str, *, limit: int | None = None,
                      attention: bool = False, pointing: bool = False) -> tuple:  # fmt: skip
        """Predicted answer ids ``(n,)`` for the ``n`` questions of ``split`` (-1 for those
        of images past ``limit``); with ``attention``, ``{question: (hops, h, w)}``; with
        ``pointing`` (world, SAN), per hop the maps that hit their objects and the maps
        that have objects, ``(hops,)`` counts each (else None)."""
        model.eval()
        ds = self.dataset(split, referents=pointing)
        hits = has = None
        n_images = len(ds) if limit is None else min(limit, len(ds))
        workers = self.config.data.num_workers if limit is None else 0
        loader = DataLoader(torch.utils.data.Subset(ds, range(n_images)),
                            batch_size=self.config.eval.batch_size, shuffle=False,
                            collate_fn=collate_questions, num_workers=workers)  # fmt: skip
        device = self.model_device(model)
        pred = torch.full((len(ds.split.questions),), -1, dtype=torch.long)
        maps: dict[int, torch.Tensor] = {}
        for batch in loader:
            out = model(batch["image"].to(device), batch["tokens"].to(device),
                        batch["lengths"], batch["image_index"].to(device))  # fmt: skip
            pred[batch["question_index"]] = out.logits.argmax(dim=-1).cpu()
            if attention and out.attention is not None:
                for i, a in zip(batch["question_index"].tolist(), out.attention.cpu(), strict=True):
                    maps[i] = a
            if pointing and out.attention is not None:
                hit, some = pointing_hits(out.attention.cpu(), batch["referents"])
                hits = hit.sum(dim=0) + (0 if hits is None else hits)
                has = some.sum(dim=0) + (0 if has is None else has)
        return pred, maps, None if hits is None else (hits, has)

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        from xmodal.metrics.vqa import vqa_scores

        data = self.split(split)
        pred, _, points = self._answer_split(model, split, pointing=self._grounded())
        predictions = [self.answers[int(j)] for j in pred]
        metrics = vqa_scores(predictions, data.answers, groups=data.families)
        baseline = vqa_scores([self.majority] * len(data.answers), data.answers)
        metrics["majority_accuracy"] = baseline["accuracy"]
        if data.named_held_out is not None and any(data.named_held_out):
            # the questions that name a held-out combination ("is there a red circle?")
            keep = [i for i, named in enumerate(data.named_held_out) if named]
            named = vqa_scores([predictions[i] for i in keep], [data.answers[i] for i in keep])
            metrics["accuracy_held_out_named"] = named["accuracy"]
            metrics["n_held_out_named"] = len(keep)
        if points is not None:  # where the hops looked: their peaks on the objects
            hits, has = points
            for k, (hit, n) in enumerate(zip(hits.tolist(), has.tolist(), strict=True)):
                metrics[f"pointing_hop{k + 1}"] = 100.0 * hit / max(n, 1)
        metrics["n_images"] = len(data.groups)
        metrics["n_classes"] = len(self.answers)
        return metrics

    def figures(self, model: nn.Module, out_dir: Path) -> list[Path]:
        n = self.config.eval.n_figures
        if n == 0:
            return []
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        split = "val"
        data = self.split(split)
        n = min(n, len(data.groups))
        pred, attention, _ = self._answer_split(model, split, limit=n, attention=True)
        paths = []
        families = sorted(set(data.families))
        for g in range(n):
            qs = data.groups[g]
            # each image with a question of the next family in turn, where it has one
            wanted = families[g % len(families)]
            i = next((i for i in qs if data.families[i] == wanted), qs[g % len(qs)])
            truth = Counter(data.answers[i]).most_common(1)[0][0]
            fig = plot_vqa_attention(
                data.image(g), data.questions[i], self.answers[int(pred[i])], truth,
                attention.get(i),
            )  # fmt: skip
            family = re.sub(r"[^\w-]+", "_", data.families[i])  # "yes/no" -> "yes_no"
            path = out_dir / f"vqa_{split}_{g}_{family}.png"
            fig.savefig(path, dpi=100)
            paths.append(path)
        return paths

    # ------------------------------------------------------------------ predict

    @classmethod
    def add_predict_arguments(cls, parser) -> None:
        parser.add_argument(
            "-k", "--top-k", dest="top_k", type=int, default=None, metavar="K",
            help="answers shown per question (default: eval.top_k)",
        )  # fmt: skip

    def encode_question(self, question: str) -> tuple[list[int], list[str]]:
        """The token ids of ``question`` and its words that are not in the vocabulary
        (they become <unk>). Raises ParameterError for a question with no words."""
        if not isinstance(question, str):
            raise ParameterError(f"a question must be a string. Found: {question!r}")
        words = tokenize(question)
        if not words:
            raise ParameterError(f"question {question!r} has no words")
        unknown = [w for w in words if self.vocab.token_to_id(w) == UNK_ID]
        return self.vocab.encode(question, max_len=self.config.data.max_len), unknown

    def predict(self, model: nn.Module, inputs: Sequence[str], out_dir: Path, *,
                top_k: int | None = None) -> list[dict]:  # fmt: skip
        """Answer each ``(image file, question)`` pair of ``inputs`` (given in that
        order): the top answers with their probabilities, the question's out-of-vocabulary
        words, and (SAN) a figure of the attention hops over the image."""
        from xmodal.data.images import load_image

        inputs = list(inputs)
        if not inputs or len(inputs) % 2:
            raise ParameterError(
                'predict vqa takes pairs IMAGE QUESTION (e.g. scene.png "what colour is '
                f'the circle?"). Found {len(inputs)} input(s): {inputs!r}'
            )
        k = check_positive_int(self.config.eval.top_k if top_k is None else top_k, "top_k")
        pairs = list(zip(inputs[0::2], inputs[1::2], strict=True))
        images, encoded = [], []
        for n, (path, question) in enumerate(pairs):
            if not Path(path).is_file() and Path(question).is_file():
                raise ParameterError(
                    f"pair {n + 1} reads ({path!r}, {question!r}): give the image first, "
                    "then its question"
                )
            images.append(load_image(path, size=self.config.data.image_size))
            encoded.append(self.encode_question(question))
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        device = self.model_device(model)
        model.eval()
        tokens = nn.utils.rnn.pad_sequence([torch.tensor(ids) for ids, _ in encoded],
                                           batch_first=True, padding_value=PAD_ID)  # fmt: skip
        lengths = torch.tensor([len(ids) for ids, _ in encoded])
        probs, ids, attention = model.answer(torch.stack(images).to(device), tokens.to(device),
                                             lengths, top_k=k)  # fmt: skip
        records, used = [], set()
        for n, ((path, question), (_, unknown)) in enumerate(zip(pairs, encoded, strict=True)):
            answers = [
                {"answer": self.answers[int(j)], "probability": round(float(p), 4)}
                for p, j in zip(probs[n].cpu(), ids[n].cpu(), strict=True)
            ]
            text = ", ".join(f"{a['answer']} ({a['probability']:.2f})" for a in answers)
            if unknown:
                text += f"  [not in the vocabulary, read as <unk>: {', '.join(unknown)}]"
            record = {"input": f"{path} {question!r}", "image": str(path), "question": question,
                      "answers": answers,
                      "unknown_words": unknown, "text": text, "files": []}  # fmt: skip
            if attention is not None:
                stem = Path(path).stem
                while stem in used:
                    stem += f"-{n}"
                used.add(stem)
                fig = plot_vqa_attention(images[n], question, answers[0]["answer"],
                                         attention=attention[n].cpu())  # fmt: skip
                figure = out_dir / f"{stem}_attention.png"
                fig.savefig(figure, dpi=100)
                record["files"].append(str(figure))
            records.append(record)
        return records
