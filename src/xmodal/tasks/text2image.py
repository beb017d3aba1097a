"""The ``text2image`` task: GAN-INT-CLS (Reed et al. 2016) trained and scored by the engine.

Data: single-object scenes of the world (``data.objects=1``), each with all its captions:
an epoch sees every (image, caption) pair of ``data.train_size`` scenes once. The
vocabulary is built from the training captions (``vocab.json``).

Model (:mod:`xmodal.translation.text_to_image`): the caption's GRU sentence vector,
projected (linear + leaky ReLU) and joined with Gaussian noise, drives a DCGAN generator
(nearest upsampling + 3x3 convolutions, ``model.upsample``); the discriminator judges
(image, sentence) pairs from a 4x4 map (``model.d_norm``, ``model.d_cond``). The sentence
encoder is the model's own: by default (``model.text_encoder=pretrained``) the text side of a small
joint embedding trained first on the training pairs (InfoNCE, ``model.pretrain_steps``)
and then frozen, as Reed et al. pre-train theirs; with ``model.text_encoder=joint`` it
is trained with the discriminator instead (its matching-aware loss must tell right from
wrong captions), the generator seeing it detached.

Training uses the engine's manual optimization (two Adam optimizers, betas (0.5, 0.999)
as in DCGAN, lr 4e-4 for G and for D): per batch one discriminator step on the
matching-aware hinge loss (real + right caption, real + wrong caption, fake + right
caption; D spectrally normalised, with a projection of the sentence, seeing every image
through a random translation, DiffAugment), then one generator step on fakes of the right
captions and of interpolated sentences (INT, beta = 0.5),
plus (``model.match_weight``, 1 by default) a DAMSM-like term: the frozen joint embedding
must match each fake image to its own caption among the batch's. TAC-GAN
(``model.aux_weight``): D also classifies the colour and shape of the real images (the
world's labels), and the generator's images must be classified as the colour and shape
their caption names (only those it names); each classifier also has a "generated"
class for the generator's images (``model.aux_fake``, K+1). D's classifiers are
pre-trained on the real labels (``model.aux_pretrain_steps``, ``model.aux_pretrain_lr``),
and the sentence encoder's pre-training also asks its vector for the named colour and
shape (``model.text_aux_weight``), so that the sentence carries the shape at all.
A sample grid (fixed captions, fixed noises) is written at every validation, i.e. every
epoch, as ``figures/epochs/epoch-NNN.png``; the report shows them all.

Metrics (``evaluate``), on the generated images of ``eval.n_captions`` test captions that
name the object's colour and shape:

- ``attribute_accuracy`` (shape and colour both right), ``shape_accuracy``,
  ``colour_accuracy``: judged by a small CNN trained on real world images inside
  ``evaluate`` (cached as ``evaluator.pt``); ``classifier_real_accuracy`` is its own
  accuracy on real test images, the ceiling;
- ``retrieval_p1``: an independently trained joint embedding (cached as
  ``evaluator-retrieval.pt``) ranks the conditioning caption first among 100 captions
  (it and the captions of the 99 next test scenes); ``retrieval_p1_real`` the same for
  the real image, ``retrieval_chance`` 1%;
- ``diversity``: the mean pairwise RMS pixel distance (images in [0, 1]) between images
  of one caption under different noises; ``diversity_real`` the same between real test
  images of the same (size, colour, shape).

Example::

    xmodal train text2image
    xmodal eval text2image --run runs/text2image/<id>
    xmodal predict text2image --run runs/text2image/<id> "a large red star" -n 8 --out grid.png
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from xmodal._checks import check_choice, check_positive_int, check_positive_number
from xmodal.engine.config import TrainerConfig
from xmodal.engine.data import seeded_loader
from xmodal.engine.task import Task
from xmodal.errors import DataError, ParameterError
from xmodal.text.vocab import PAD_ID, UNK_ID, Vocabulary, tokenize
from xmodal.world import COLOURS, SHAPES

__all__ = [
    "Text2ImageConfig",
    "Text2ImageDataConfig",
    "Text2ImageEvalConfig",
    "Text2ImageModelConfig",
    "Text2ImageOptimConfig",
    "Text2ImageTask",
    "CaptionPairs",
    "collate_pairs",
    "image_grid",
]

TEXT_ENCODERS = ("joint", "pretrained")
TEXT_RUN_FILE = "text_encoder.json"  # model.text_run: what rebuilds its text encoder
COLOUR_NAMES = tuple(COLOURS)
SHAPE_NAMES = tuple(SHAPES)
# The captions of the sample grids: every colour and shape, both sizes.
GRID_CAPTIONS = (
    "a large red circle", "a small blue square", "a large green triangle",
    "a small yellow diamond", "a large purple cross", "a small orange circle",
    "a large blue diamond", "a green object",
)  # fmt: skip


@dataclass
class Text2ImageModelConfig:
    """The GAN (:class:`~xmodal.translation.text_to_image.TextToImageGAN`): the GRU sentence
    encoder (``word_dim``, ``hidden``, ``text_dim``), the projection (``proj_dim``), the
    noise (``noise_dim``), the base widths (``ngf``, ``ndf``), GAN-INT (``interpolation``,
    ``beta``) and the stabilisers (``upsample``, ``d_norm``, ``d_cond``, ``gan_loss``,
    ``augment``)."""

    # The sentence encoder: "joint" (trained with the discriminator) or "pretrained"
    # (a joint embedding trained first on the training pairs for pretrain_steps, then
    # frozen, as Reed et al.'s pre-trained encoder).
    text_encoder: str = "pretrained"
    pretrain_steps: int = 600
    # > 0: that pre-training also asks the sentence vector to tell the colour and the shape
    # its caption names (linear heads, a masked cross entropy with this weight). InfoNCE
    # against a small CNN that hardly sees shapes leaves "a large red circle" and "a large
    # red square" at cosine 0.93, so the generator can hardly read the shape.
    text_aux_weight: float = 1.0
    # A retrieval run folder (runs/retrieval/<id>): its vocabulary and text encoder, frozen,
    # replace both (text_encoder, word_dim, hidden and text_dim are then unused).
    text_run: str | None = None
    # > 0: the generator's images must also match their caption in the joint embedding
    # that gave the sentence encoder (pretrained or text_run), with this weight. 0 is
    # plain GAN-INT-CLS; 1 tripled the attribute accuracy (docs/text2image.md).
    match_weight: float = 1.0
    # > 0: TAC-GAN (Dash et al. 2017): D gets a colour and a shape classifier, trained on
    # the real images' labels, and the generator's images must be classified as the
    # colour and shape their caption names, both with this weight. 0: no classifiers.
    aux_weight: float = 1.0
    # The stride of D's map the classifiers max-pool (4, 8 or 16 at 64x64; 16 = the last).
    aux_stride: int = 8
    # Steps (of data.batch_size real training images) that train D's classifiers and the
    # layers under them on the labels before the GAN starts, so that from its first step
    # the generator is judged by a classifier that already sees shapes.
    aux_pretrain_steps: int = 2_000
    # Adam's learning rate for that pre-training (D's own, optim.lr_d, when null): at D's
    # 4e-4 the shape classifier was at 60% after 1,000 steps, at 2e-3 85-99% after 2,000.
    aux_pretrain_lr: float | None = 2e-3
    # True: D's classifiers get one more class, "generated" (the K+1 classes of Salimans
    # et al. 2016), and learn to put G's images there, so that what passes for a shape on
    # the generator's images alone is pushed out.
    aux_fake: bool = True
    word_dim: int = 64
    hidden: int = 128
    text_dim: int = 128
    proj_dim: int = 128
    noise_dim: int = 100
    # Narrower than DCGAN's 64: 3,400 steps fit in 20 minutes of one CPU thread.
    ngf: int = 16
    ndf: int = 16
    interpolation: bool = True
    beta: float = 0.5
    # The generator's doublings: "transposed" (DCGAN's 4x4 transposed convolutions) or
    # "nearest" (nearest upsampling + 3x3 convolution: no checkerboard).
    upsample: str = "nearest"
    # The discriminator's normalisation: "batch" (DCGAN's) or "spectral" (SN-GAN).
    d_norm: str = "spectral"
    # How D meets the sentence: "concat" (Reed et al.'s) or "projection" (Miyato & Koyama).
    d_cond: str = "projection"
    # The adversarial loss: "bce" (Reed et al.'s, non-saturating for G) or "hinge".
    gan_loss: str = "hinge"
    # DiffAugment for every image D sees (real and fake): "none", "translation" or
    # "translation-cutout" (no colour augmentation: colour is the condition).
    augment: str = "translation"

    def __post_init__(self) -> None:
        from xmodal.translation.text_to_image import (
            AUGMENTS,
            D_CONDS,
            D_NORMS,
            GAN_LOSSES,
            UPSAMPLES,
        )

        check_choice(self.text_encoder, "model.text_encoder", TEXT_ENCODERS)
        check_choice(self.upsample, "model.upsample", UPSAMPLES)
        check_choice(self.d_norm, "model.d_norm", D_NORMS)
        check_choice(self.d_cond, "model.d_cond", D_CONDS)
        check_choice(self.gan_loss, "model.gan_loss", GAN_LOSSES)
        check_choice(self.augment, "model.augment", AUGMENTS)
        for name in ("word_dim", "hidden", "text_dim", "proj_dim", "noise_dim", "ngf", "ndf",
                     "pretrain_steps"):  # fmt: skip
            check_positive_int(getattr(self, name), f"model.{name}")
        if self.text_run is not None and not isinstance(self.text_run, str):
            raise ParameterError(f"model.text_run must be a run folder. Found: {self.text_run!r}")
        if not isinstance(self.interpolation, bool):
            raise ParameterError(
                f"model.interpolation must be true or false. Found: {self.interpolation!r}"
            )
        check_positive_number(self.match_weight, "model.match_weight", allow_zero=True)
        check_positive_number(self.aux_weight, "model.aux_weight", allow_zero=True)
        check_positive_number(self.text_aux_weight, "model.text_aux_weight", allow_zero=True)
        check_positive_int(self.aux_stride, "model.aux_stride", minimum=2)
        check_positive_int(self.aux_pretrain_steps, "model.aux_pretrain_steps", minimum=0)
        if self.aux_pretrain_lr is not None:
            check_positive_number(self.aux_pretrain_lr, "model.aux_pretrain_lr")
        if not isinstance(self.aux_fake, bool):
            raise ParameterError(f"model.aux_fake must be true or false. Found: {self.aux_fake!r}")
        if self.match_weight > 0 and self.text_encoder == "joint" and self.text_run is None:
            raise ParameterError(
                "model.match_weight needs a joint embedding: model.text_encoder=pretrained or "
                "model.text_run (with model.text_encoder=joint set model.match_weight=0). "
                f"Found: text_encoder='joint', match_weight={self.match_weight}"
            )
        beta = check_positive_number(self.beta, "model.beta", allow_zero=True)
        if beta > 1:
            raise ParameterError(f"model.beta must be in [0, 1]. Found: {self.beta}")


@dataclass
class Text2ImageDataConfig:
    """World scenes of ``objects`` objects (1: single-object scenes), ``*_size`` of them
    per split, each with all its captions."""

    world_seed: int = 0
    image_size: int = 64
    objects: int = 1
    # x 5 captions: 1,250 steps of 32 an epoch. More scenes than 1,800 (each then seen
    # fewer times) gave the same attribute accuracy and twice the retrieval P@1.
    train_size: int = 8_000
    val_size: int = 64
    test_size: int = 1_000
    max_len: int = 24
    batch_size: int = 32
    # The scenes are rendered once (before training) and batched from memory: a loader
    # process would only take a core from the GAN.
    num_workers: int = 0

    def __post_init__(self) -> None:
        for key in ("train_size", "val_size", "test_size", "objects"):
            check_positive_int(getattr(self, key), f"data.{key}")
        check_positive_int(self.batch_size, "data.batch_size", minimum=2)
        check_positive_int(self.max_len, "data.max_len", minimum=3)
        check_positive_int(self.num_workers, "data.num_workers", minimum=0)
        size = check_positive_int(self.image_size, "data.image_size", minimum=16)
        if size & (size - 1) or size < 16:  # the DCGAN doubles from 4x4
            raise ParameterError(
                f"data.image_size must be a power of two >= 16 (32, 64, 128). Found: {size}"
            )


@dataclass
class Text2ImageOptimConfig:
    """Two Adam optimizers as in DCGAN and Reed et al.: ``lr_g`` (generator), ``lr_d``
    (discriminator and, when trained, the sentence encoder), betas ``(beta1, beta2)``.
    DCGAN's betas. The generator learns at the spectrally normalised discriminator's rate:
    at half of it (two time scales, Heusel et al. 2017) the attribute accuracy after 4
    epochs was 9-10 points lower for seeds 0 and 1 (docs/text2image.md, Results (4))."""

    lr_g: float = 4e-4
    lr_d: float = 4e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def __post_init__(self) -> None:
        check_positive_number(self.lr_g, "optim.lr_g")
        check_positive_number(self.lr_d, "optim.lr_d")
        for name in ("beta1", "beta2"):
            value = check_positive_number(getattr(self, name), f"optim.{name}", allow_zero=True)
            if value >= 1:
                raise ParameterError(f"optim.{name} must be in [0, 1). Found: {value}")


@dataclass
class Text2ImageEvalConfig:
    """Evaluation: ``n_captions`` test captions scored; ``n_noises`` images per caption
    for the diversity (over ``n_diversity`` captions); the evaluators' training steps;
    ``n_grid`` noises per caption in the figures."""

    n_captions: int = 500
    n_noises: int = 8
    n_diversity: int = 50
    classifier_steps: int = 1_500
    retrieval_steps: int = 600
    evaluator_images: int = 6_000  # real training scenes the evaluators learn from
    n_grid: int = 8
    batch_size: int = 100

    def __post_init__(self) -> None:
        for name in ("n_captions", "n_diversity", "classifier_steps", "retrieval_steps",
                     "evaluator_images", "n_grid", "batch_size"):  # fmt: skip
            check_positive_int(getattr(self, name), f"eval.{name}")
        check_positive_int(self.n_noises, "eval.n_noises", minimum=2)
        if self.n_captions < 100:
            raise ParameterError(
                f"eval.n_captions must be >= 100 (P@1 ranks among 100 captions). "
                f"Found: {self.n_captions}"
            )


def _default_trainer() -> TrainerConfig:
    # 4 x 1,250 = 5,000 batches: 15 minutes on the project's quiet 2-core CPU, 31 on a 2-core
    # Zen 1 at 2.0 GHz (docs/text2image.md); the attribute accuracy rises up to here.
    return TrainerConfig(max_epochs=4, log_every_n_steps=20)


@dataclass
class Text2ImageConfig:
    seed: int = 0
    model: Text2ImageModelConfig = field(default_factory=Text2ImageModelConfig)
    data: Text2ImageDataConfig = field(default_factory=Text2ImageDataConfig)
    optim: Text2ImageOptimConfig = field(default_factory=Text2ImageOptimConfig)
    eval: Text2ImageEvalConfig = field(default_factory=Text2ImageEvalConfig)
    trainer: TrainerConfig = field(default_factory=_default_trainer)

    def __post_init__(self) -> None:
        if self.model.aux_weight > 0 and self.data.objects != 1:
            raise ParameterError(  # the classifiers learn the one object's colour and shape
                "model.aux_weight needs single-object scenes (data.objects=1). "
                f"Found: aux_weight={self.model.aux_weight}, objects={self.data.objects}"
            )


# ----------------------------------------------------------------------------- data


def _label(obj) -> int:
    """The (colour, shape) class of a world object: ``colour * len(SHAPES) + shape``."""
    return COLOUR_NAMES.index(obj.colour) * len(SHAPE_NAMES) + SHAPE_NAMES.index(obj.shape)


def _attributes(label: torch.Tensor) -> list[torch.Tensor]:
    """:func:`_label`'s classes back to ``[colour indices, shape indices]``."""
    return [label // len(SHAPE_NAMES), label % len(SHAPE_NAMES)]


def named_attributes(caption: str, obj) -> tuple[int, int]:
    """The object's ``(colour, shape)`` indices (into ``COLOURS``, ``SHAPES``) that
    ``caption`` names, ``-1`` for an attribute it does not name: "a yellow object" names
    the colour only, "one thing" neither. Read with the world's own caption parser
    (``World.caption_facts``): a noun phrase that claims at least one such object ("no
    squares" claims none) and names the object's colour or shape.

    >>> from xmodal.world import WorldObject
    >>> named_attributes("a yellow object", WorldObject("circle", "yellow", "large", 9, 9, 9))
    (2, -1)
    """
    from xmodal.world import World

    colour = shape = -1
    for m in World.caption_facts(caption).mentions:
        if m.count == 0:
            continue
        if m.colour == obj.colour:
            colour = COLOUR_NAMES.index(obj.colour)
        if m.shape == obj.shape:
            shape = SHAPE_NAMES.index(obj.shape)
    return colour, shape


class CaptionPairs(Dataset):
    """Every (scene, caption) pair of rendered world ``scenes``, scene by scene.

    Items: ``image`` (3, H, W) float in [0, 1], ``tokens`` LongTensor (<bos> ... <eos>),
    ``label`` the first object's (colour, shape) class, ``named`` its (colour, shape)
    indices that the caption names (-1 where it does not, :func:`named_attributes`),
    ``index`` the scene's position in ``scenes``.
    """

    def __init__(self, scenes: Sequence, vocab: Vocabulary, *, max_len: int) -> None:
        self.scenes, self.vocab, self.max_len = scenes, vocab, max_len
        self.items = [(i, j) for i, s in enumerate(scenes) for j in range(len(s.captions))]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> dict:
        i, j = self.items[k]
        scene = self.scenes[i]
        return {
            "image": scene.image.to(torch.float32).div_(255.0),
            "tokens": torch.tensor(self.vocab.encode(scene.captions[j], max_len=self.max_len)),
            "label": _label(scene.objects[0]),
            "named": named_attributes(scene.captions[j], scene.objects[0]),
            "index": i,
        }


def collate_pairs(items: list[dict]) -> dict:
    """``image`` (B, 3, H, W); ``tokens`` (B, L) <pad>-padded with ``lengths`` (B,);
    ``label`` (B,); ``named`` (B, 2); ``index`` (B,)."""
    tokens = [it["tokens"] for it in items]
    return {
        "image": torch.stack([it["image"] for it in items]),
        "tokens": nn.utils.rnn.pad_sequence(tokens, batch_first=True, padding_value=PAD_ID),
        "lengths": torch.tensor([len(t) for t in tokens]),
        "label": torch.tensor([it["label"] for it in items]),
        "named": torch.tensor([it["named"] for it in items]).view(len(items), 2),
        "index": torch.tensor([it["index"] for it in items]),
    }


def wrong_indices(labels: torch.Tensor) -> torch.Tensor:
    """For each item of a batch, another item to take the "wrong" caption from: the next
    one (cyclically) whose (colour, shape) class differs, or the next one if all agree.

    >>> wrong_indices(torch.tensor([0, 0, 1, 2])).tolist()
    [2, 2, 3, 0]
    """
    n = labels.shape[0]
    out = (torch.arange(n) + 1) % n
    for shift in range(n - 1, 0, -1):  # the smallest shift with another class wins
        cand = (torch.arange(n) + shift) % n
        other = labels[cand] != labels
        out = torch.where(other, cand, out)
    return out


def image_grid(images: torch.Tensor, nrow: int, *, pad: int = 2) -> torch.Tensor:
    """``(N, 3, H, W)`` in [0, 1] → one ``(3, rows * (H + pad) + pad, nrow * (W + pad) +
    pad)`` image, rows of ``nrow`` on a white ground."""
    n, c, h, w = images.shape
    rows = -(-n // nrow)
    grid = torch.ones(c, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for k in range(n):
        r, col = divmod(k, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, y : y + h, x : x + w] = images[k].clamp(0, 1)
    return grid


def save_grid(path: Path, images: torch.Tensor, nrow: int, labels: Sequence[str] = ()) -> Path:
    """Write ``images`` as a grid PNG at ``path`` (atomically), one row per label."""
    from matplotlib.figure import Figure

    from xmodal.engine.report import atomic_path

    grid = image_grid(images.detach().float().cpu(), nrow).permute(1, 2, 0).numpy()
    margin = 2.0 if labels else 0.0  # inches of caption text left of the grid
    width, height = grid.shape[1] / 60, grid.shape[0] / 60
    fig = Figure(figsize=(width + margin, height))
    ax = fig.add_axes((margin / (width + margin), 0, width / (width + margin), 1))
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    for r, text in enumerate(labels):
        y = 2 + r * (images.shape[-2] + 2) + images.shape[-2] / 2
        ax.text(-4, y, text, ha="right", va="center", fontsize=7)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


# ----------------------------------------------------------------------------- evaluators


class AttributeClassifier(nn.Module):
    """A small CNN (:class:`~xmodal.vision.SmallCNN`) with a colour and a shape head: the
    judge of generated images. ``forward(images)`` → ``(colour logits, shape logits)``."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        from xmodal.vision.encoders import create_encoder

        self.encoder = create_encoder("small-cnn", channels=channels)
        self.colour = nn.Linear(channels, len(COLOUR_NAMES))
        self.shape = nn.Linear(channels, len(SHAPE_NAMES))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.encoder(images)  # (B, C)
        return self.colour(v), self.shape(v)


# ----------------------------------------------------------------------------- the task


class Text2ImageTask(Task):
    """Text-to-image synthesis (translation: text → image): GAN-INT-CLS."""

    name = "text2image"
    family = "translation"
    summary = "Text-to-image: conditional GAN (GAN-INT-CLS, matching-aware + interpolation)"
    default_data = "world"
    Config = Text2ImageConfig
    manual_optimization = True
    predict_out_suffixes = (".png",)

    def __init__(self, config: Text2ImageConfig) -> None:
        super().__init__(config)
        self.vocab: Vocabulary | None = None
        self.run_dir: Path | None = None
        self.epoch = 0
        self._grid_epoch = -1
        self._rendered: dict[str, list] = {}  # split -> its scenes, rendered (_scenes)
        self._text_init: dict | None = None  # pre-trained text weights, for training
        self._text_spec: dict | None = None  # model.text_run: the retrieval run's config
        self._matcher: nn.Module | None = None  # that joint embedding, for model.match_weight
        self._fitting = False  # setup("fit") ran: build_model may pre-train D's classifiers
        self.aux_pretrain_log: dict[str, float] = {}  # its seconds and last losses

    @property
    def world(self):
        if self._world is None:
            from xmodal.world import World

            d = self.config.data
            self._world = World(seed=d.world_seed, image_size=d.image_size,
                                min_objects=d.objects, max_objects=d.objects)  # fmt: skip
        return self._world

    # ------------------------------------------------------------------ data

    def _size(self, split: str) -> int:
        d = self.config.data
        return {"train": d.train_size, "val": d.val_size}.get(split, d.test_size)

    def artifacts(self) -> list[str]:
        return ["vocab.json"] + ([TEXT_RUN_FILE] if self.config.model.text_run else [])

    def setup(self, run_dir: Path, stage: str) -> None:
        self.run_dir = Path(run_dir)
        path = self.run_dir / "vocab.json"
        self._fitting = stage == "fit"
        if stage == "fit" and self.config.model.text_run:
            self._setup_text_run()
        elif stage == "fit":
            scenes = self._scenes("train", self.config.data.train_size)
            captions = [c for scene in scenes for c in scene.captions]
            self.vocab = Vocabulary.build(captions, min_freq=1)
            self.vocab.save(path)
            if self.config.model.text_encoder == "pretrained":
                joint = self._pretrain_text()
                self._text_init = joint.text.state_dict()
                self._matcher = joint.eval().requires_grad_(False)
        else:
            if not path.is_file():
                raise DataError(f"run folder {str(run_dir)!r} has no vocab.json")
            self.vocab = Vocabulary.load(path)
            if self.config.model.text_run:
                self._text_spec = _read_text_spec(self.run_dir / TEXT_RUN_FILE)
            saved = _saved_model_keys(self.run_dir)
            if saved is not None and "aux_weight" not in saved:
                self.config.model.aux_weight = 0.0  # a run from before D had classifiers
            if saved is not None and "aux_fake" not in saved:
                self.config.model.aux_fake = False  # ... or before they had "generated"

    def _setup_text_run(self) -> None:
        """``model.text_run``: take the retrieval run's vocabulary and text encoder (its
        weights for training; its config, as ``text_encoder.json``, to rebuild it later)."""
        import json

        from xmodal.engine.config import config_to_dict
        from xmodal.engine.report import write_text_atomic
        from xmodal.engine.run import load_run

        source = self.config.model.text_run
        rtask, rmodel = load_run(source, "retrieval")
        self.vocab = rtask.vocab
        self.vocab.save(self.run_dir / "vocab.json")
        self._text_spec = {"text_run": str(source), "config": config_to_dict(rtask.config)}
        write_text_atomic(self.run_dir / TEXT_RUN_FILE, json.dumps(self._text_spec, indent=1))
        self._text_init = rmodel.text.state_dict()
        self._matcher = rmodel.eval().requires_grad_(False)

    def pairs(self, split: str, n: int | None = None) -> CaptionPairs:
        scenes = self._scenes(split, self._size(split) if n is None else n)
        return CaptionPairs(scenes, self.vocab, max_len=self.config.data.max_len)

    def train_dataloader(self) -> DataLoader:
        d = self.config.data
        return seeded_loader(self.pairs("train"), batch_size=d.batch_size, shuffle=True,
                             seed=self.config.seed, num_workers=d.num_workers,
                             collate_fn=collate_pairs, drop_last=True)  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.pairs("val"), batch_size=self.config.data.batch_size,
                          shuffle=False, collate_fn=collate_pairs, drop_last=True)  # fmt: skip

    # ------------------------------------------------------------------ model

    def build_model(self) -> nn.Module:
        from xmodal.translation.text_to_image import TextToImageGAN

        m = self.config.model
        text, text_dim = None, m.text_dim
        if self._text_spec is not None:  # model.text_run: the retrieval model's text side
            from xmodal.engine.config import config_from_dict
            from xmodal.tasks.retrieval import RetrievalConfig, RetrievalTask

            rtask = RetrievalTask(config_from_dict(RetrievalConfig, self._text_spec["config"]))
            rtask.vocab = self.vocab
            text, text_dim = rtask.build_model().text, rtask.config.model.embed_dim
        model = TextToImageGAN(
            len(self.vocab), word_dim=m.word_dim, hidden=m.hidden, text_dim=text_dim,
            proj_dim=m.proj_dim, noise_dim=m.noise_dim, ngf=m.ngf, ndf=m.ndf,
            image_size=self.config.data.image_size, upsample=m.upsample, d_norm=m.d_norm,
            d_cond=m.d_cond,
            aux_classes=(
                (len(COLOUR_NAMES) + m.aux_fake, len(SHAPE_NAMES) + m.aux_fake)
                if m.aux_weight > 0 else ()
            ),
            aux_stride=m.aux_stride,
            text_encoder=text,
            freeze_text=m.text_encoder == "pretrained" or text is not None,
        )  # fmt: skip
        if self._text_init is not None:  # training only: eval and predict load the weights
            model.text.load_state_dict(self._text_init)
        if self._fitting and not self.resuming and m.aux_weight > 0 and m.aux_pretrain_steps:
            self._pretrain_aux(model.discriminator)
        return model

    def _pretrain_aux(self, discriminator: nn.Module) -> None:
        """``model.aux_pretrain_steps``: D's colour and shape classifiers (and the layers
        under them) trained on the real training images' labels, with D's augmentation
        and Adam betas at ``model.aux_pretrain_lr``, before the GAN starts. Own generators:
        the global random state, hence the GAN's training, is the same with or without it."""
        import time

        from xmodal.translation.text_to_image import aux_loss, diff_augment

        m, o = self.config.model, self.config.optim
        images, scenes = self._real("train", self.config.data.train_size)
        label = torch.tensor([_label(s.objects[0]) for s in scenes])
        truth = torch.stack(_attributes(label))  # (2, N): colour, shape
        params = [*discriminator.encode.parameters(), *discriminator.aux.parameters()]
        lr = o.lr_d if m.aux_pretrain_lr is None else m.aux_pretrain_lr
        opt = torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2))
        gen = torch.Generator().manual_seed(self.config.seed)
        text = torch.zeros(1, discriminator.project[0].in_features)  # unused by the heads
        start = time.perf_counter()
        discriminator.train()
        with torch.enable_grad():
            for _ in range(m.aux_pretrain_steps):
                idx = torch.randint(len(images), (self.config.data.batch_size,), generator=gen)
                x = diff_augment(images[idx].float() / 255, m.augment, generator=gen)
                _, heads = discriminator(x, text.expand(len(idx), -1), aux=True)
                loss, parts = aux_loss(heads, list(truth[:, idx]))
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.aux_pretrain_log = {"seconds": time.perf_counter() - start,
                                 "colour": parts[0], "shape": parts[1]}  # fmt: skip

    def configure_optimizers(self, model: nn.Module):
        o = self.config.optim
        betas = (o.beta1, o.beta2)
        text = [p for p in model.text.parameters() if p.requires_grad]  # none when frozen
        d_params = [*model.discriminator.parameters(), *text]
        opt_d = torch.optim.Adam(d_params, lr=o.lr_d, betas=betas)
        opt_g = torch.optim.Adam(model.generator.parameters(), lr=o.lr_g, betas=betas)
        return [opt_d, opt_g]

    def _losses(self, model: nn.Module, batch, step=None) -> tuple[torch.Tensor, dict]:
        """One GAN-INT-CLS step (with ``step``: the discriminator's update, then the
        generator's); without ``step`` only the losses (validation).

        The generator runs once on the batch's sentences and their interpolations, and the
        discriminator encodes each image once: real and generated images in one batch for
        its update, the right and the wrong sentence scored on one encoding of the real
        images, and the generator's images judged by a frozen copy of its weights (no
        weight gradients). A batch-normalised D (``model.d_norm="batch"``) encodes real and
        generated images apart, as DCGAN does, so that neither sets the other's statistics.
        """
        from xmodal.translation.text_to_image import (
            aux_loss,
            discriminator_loss,
            generator_loss,
            interpolate_texts,
        )

        m = self.config.model
        images = batch["image"]
        B = images.shape[0]
        D = model.discriminator
        tac = m.aux_weight > 0

        text = model.encode_text(batch["tokens"], batch["lengths"])  # (B, T)
        wrong = text[wrong_indices(batch["label"].cpu()).to(text.device)]
        t = text.detach()
        conds = [t, interpolate_texts(t, beta=m.beta)] if m.interpolation else [t]
        made = model.generator(torch.cat(conds), model.noise(len(conds) * B))
        fake = made[:B]  # (B, 3, H, W): under the right sentences; then the interpolated

        mid, h = self._encode(D, [images, fake.detach()])  # real then generated, (2B, ...)
        right = D.score(h, torch.cat([text, text]))
        wrong_logits = D.score(h[:B], wrong)
        real_right, fake_d = right[:B], right[B:]
        loss_d, logs = discriminator_loss(real_right, wrong_logits, fake_d,
                                          loss=m.gan_loss)  # fmt: skip
        if tac:  # TAC-GAN: D's classifiers learn the real images' colour and shape
            heads = D.classify(mid)
            truth = _attributes(batch["label"])
            d_aux, d_parts = aux_loss([x[:B] for x in heads], truth)
            if m.aux_fake:  # K+1: each classifier's last class is "generated"
                generated = [torch.full((B,), x.shape[1] - 1, device=x.device)
                             for x in heads]  # fmt: skip
                d_fake_class, _ = aux_loss([x[B:] for x in heads], generated)
                d_aux = d_aux + d_fake_class
                logs["d_aux_generated"] = float(d_fake_class.detach())
            loss_d = loss_d + m.aux_weight * d_aux
            shape_acc = (heads[1][:B].detach().argmax(1) == truth[1]).float().mean()
            logs.update(d_aux_colour=d_parts[0], d_aux_shape=d_parts[1],
                        d_aux_shape_acc=float(shape_acc))  # fmt: skip
        if step is not None:
            opt_d, opt_g = step.optimizers
            opt_d.zero_grad()
            step.backward(loss_d)
            step.clip_gradients(opt_d)
            opt_d.step()

        with _frozen(D):  # the generator's turn: gradients reach its images, not D
            mid, h = self._encode(D, made.split(B))
            judged = D.score(h, torch.cat(conds))
            fake_right, interp = judged[:B], (judged[B:] if m.interpolation else None)
            if tac:  # ... and G's images must show the colour and shape their caption names
                named = batch["named"]
                g_aux, g_parts = aux_loss(D.classify(mid[:B]), [named[:, 0], named[:, 1]])
        loss_g, g_logs = generator_loss(fake_right, interp, loss=m.gan_loss)
        if tac:
            loss_g = loss_g + m.aux_weight * g_aux
            g_logs.update(g_aux_colour=g_parts[0], g_aux_shape=g_parts[1])
        if m.match_weight > 0 and self._matcher is not None:
            match = self._match_loss(fake, t)
            g_logs["g_match"] = float(match.detach())
            loss_g = loss_g + m.match_weight * match
        if step is not None:
            opt_g.zero_grad()
            step.backward(loss_g)
            step.clip_gradients(opt_g)
            opt_g.step()
        logs.update(g_logs, d_loss=float(loss_d.detach()), g_loss=float(loss_g.detach()))
        return (loss_d + loss_g).detach(), logs

    def _encode(self, D: nn.Module, parts: Sequence[torch.Tensor]):
        """D's ``(mid, h)`` (:meth:`~xmodal.translation.text_to_image.Discriminator.
        encode_image`) of the images of ``parts``, one after the other, each through
        DiffAugment (``model.augment``): in one batch, or part by part when D has batch
        norm."""
        from xmodal.translation.text_to_image import diff_augment

        x = diff_augment(torch.cat(list(parts)), self.config.model.augment)
        if D.norm != "batch":
            return D.encode_image(x)
        encoded = [D.encode_image(p) for p in x.split([len(p) for p in parts])]
        return torch.cat([mid for mid, _ in encoded]), torch.cat([h for _, h in encoded])

    def _match_loss(self, fake: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The image-text matching loss of the generator (``model.match_weight``; AttnGAN's
        DAMSM idea at sentence level): the frozen joint embedding whose text side encodes
        the captions embeds each fake image, and the cross entropy of picking its own
        caption among the batch's (logits: the embedding's scale times cosine)."""
        matcher = self._matcher
        if next(matcher.parameters()).device != fake.device:
            matcher.to(fake.device)
        img = matcher.embed_images(fake)  # (B, D), unit vectors like text
        logits = matcher.logit_scale().detach() * img @ text.T  # (B, B)
        target = torch.arange(len(img), device=img.device)
        return nn.functional.cross_entropy(logits, target)

    def training_step(self, model: nn.Module, batch, step=None):
        if step is None:
            raise ParameterError("text2image trains with manual optimization: step is needed")
        return self._losses(model, batch, step)

    def on_train_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        if self._grid_epoch != self.epoch and self.run_dir is not None:
            self._grid_epoch = self.epoch  # one grid per epoch: what G draws at this point
            path = self.run_dir / "figures" / "epochs" / f"epoch-{self.epoch:03d}.png"
            self.sample_grid(model, path)
        _, logs = self._losses(model, batch)
        return {k: logs[k] for k in ("d_loss", "g_loss", "p_real_right", "p_real_wrong",
                                     "p_fake_right")}  # fmt: skip

    # ------------------------------------------------------------------ generation

    def encode_caption(self, caption: str) -> tuple[list[int], list[str]]:
        """The token ids of ``caption`` and its words not in the vocabulary (read as
        <unk>). ParameterError for a caption with no words."""
        if not isinstance(caption, str):
            raise ParameterError(f"a caption must be a string. Found: {caption!r}")
        words = tokenize(caption)
        if not words:
            raise ParameterError(f"caption {caption!r} has no words: nothing to draw")
        unknown = [w for w in words if self.vocab.token_to_id(w) == UNK_ID]
        return self.vocab.encode(caption, max_len=self.config.data.max_len), unknown

    @torch.no_grad()
    def generate(self, model: nn.Module, captions: Sequence[str], *, n: int = 1,
                 seed: int = 0) -> torch.Tensor:  # fmt: skip
        """``n`` images of each caption: ``(len(captions) * n, 3, H, W)`` in [0, 1], the
        ``n`` of a caption together; noise ``k`` of each caption drawn from ``seed``,
        the same for every caption."""
        model.eval()
        device = self.model_device(model)
        ids = [self.encode_caption(c)[0] for c in captions]
        tokens = nn.utils.rnn.pad_sequence([torch.tensor(i) for i in ids for _ in range(n)],
                                           batch_first=True, padding_value=PAD_ID)  # fmt: skip
        lengths = torch.tensor([len(i) for i in ids for _ in range(n)])
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(n, model.noise_dim, generator=gen).repeat(len(ids), 1)
        out = []
        bs = self.config.eval.batch_size
        for s in range(0, len(lengths), bs):
            out.append(model.generate(tokens[s : s + bs].to(device), lengths[s : s + bs],
                                      noise[s : s + bs].to(device)).cpu())  # fmt: skip
        return torch.cat(out)

    def sample_grid(self, model: nn.Module, path: Path) -> Path:
        """The grid of :data:`GRID_CAPTIONS` (rows) under ``eval.n_grid`` fixed noises."""
        was_training = model.training
        n = self.config.eval.n_grid
        images = self.generate(model, GRID_CAPTIONS, n=n, seed=self.config.seed)
        model.train(was_training)
        return save_grid(path, images, n, GRID_CAPTIONS)

    # ------------------------------------------------------------------ evaluation

    def _scenes(self, split: str, n: int) -> list:
        """The first ``n`` scenes of ``split``, each rendered once for the task's life: the
        vocabulary, the pre-trainings, every epoch's batches and the evaluators share them
        (8,000 training scenes: 100 MB)."""
        done = self._rendered.setdefault(split, [])
        done += [self.world.scene(split, i, audio=False, questions=False)
                 for i in range(len(done), n)]  # fmt: skip
        return done[:n]

    def _real(self, split: str, n: int) -> tuple[torch.Tensor, list]:
        """``n`` real images of ``split`` (uint8) and their scenes."""
        scenes = self._scenes(split, n)
        return torch.stack([s.image for s in scenes]), scenes

    def _cached(self, name: str, make) -> nn.Module:
        """An evaluator from ``run_dir/name`` (weights only), trained by ``make()`` and
        saved there the first time."""
        model = make(train=False)
        path = self.run_dir / name if self.run_dir is not None else None
        if path is not None and path.is_file():
            try:
                model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
                return model.eval()
            except (RuntimeError, OSError, KeyError) as err:
                raise DataError(f"{path} cannot be read as the evaluator's weights: {err}; "
                                "delete it to train the evaluator again") from None  # fmt: skip
        model = make(train=True)
        if path is not None:
            from xmodal.engine.report import atomic_path

            with atomic_path(path) as tmp:
                torch.save(model.state_dict(), tmp)
        return model.eval()

    def _evaluator_data(self) -> tuple[torch.Tensor, list]:
        return self._real("train", self.config.eval.evaluator_images)

    def _train_classifier(self, train: bool) -> nn.Module:
        torch.manual_seed(self.config.seed)
        model = AttributeClassifier()
        if not train:
            return model
        images, scenes = self._evaluator_data()
        colour = torch.tensor([COLOUR_NAMES.index(s.objects[0].colour) for s in scenes])
        shape = torch.tensor([SHAPE_NAMES.index(s.objects[0].shape) for s in scenes])
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        gen = torch.Generator().manual_seed(self.config.seed)
        model.train()
        with torch.enable_grad():
            for _ in range(self.config.eval.classifier_steps):
                idx = torch.randint(len(images), (64,), generator=gen)
                x = images[idx]
                if torch.rand((), generator=gen) < 0.5:
                    x = x.flip(-1)  # shapes are left-right symmetric
                lc, ls = model(x)
                loss = (nn.functional.cross_entropy(lc, colour[idx])
                        + nn.functional.cross_entropy(ls, shape[idx]))  # fmt: skip
                opt.zero_grad()
                loss.backward()
                opt.step()
        return model

    def _pretrain_text(self) -> nn.Module:
        """``model.text_encoder=pretrained``: a joint embedding trained on the training
        pairs (``model.pretrain_steps`` InfoNCE steps, plus ``model.text_aux_weight`` times
        the named attributes' cross entropy); its text side is the GAN's."""
        m = self.config.model
        images, scenes = self._real("train", self.config.data.train_size)
        joint = self._train_joint(
            images, scenes, steps=m.pretrain_steps, seed=self.config.seed,
            text_aux=m.text_aux_weight,
            word_dim=m.word_dim, hidden=m.hidden, embed_dim=m.text_dim,
        )  # fmt: skip
        return joint

    def _train_retrieval(self, train: bool) -> nn.Module:
        if not train:
            return self._joint_model(seed=self.config.seed + 1)
        images, scenes = self._evaluator_data()
        return self._train_joint(images, scenes, steps=self.config.eval.retrieval_steps,
                                 seed=self.config.seed + 1)  # fmt: skip

    def _joint_model(self, *, seed: int, word_dim: int = 64, hidden: int = 128,
                     embed_dim: int = 128) -> nn.Module:  # fmt: skip
        from xmodal.matching.joint import JointEmbedding

        torch.manual_seed(seed)
        return JointEmbedding(len(self.vocab), encoder_kwargs={"channels": 64},
                              embed_dim=embed_dim, word_dim=word_dim, hidden=hidden)  # fmt: skip

    def _train_joint(self, images: torch.Tensor, scenes, *, steps: int, seed: int,
                     text_aux: float = 0.0, **sizes) -> nn.Module:  # fmt: skip
        """A small joint embedding (small CNN + GRU, InfoNCE, batches of 64 images with
        one caption each) trained on ``images`` and their scenes' captions. ``text_aux >
        0``: plus that weight times the cross entropy of linear heads on the sentence
        vector for the colour and shape each caption names (:func:`named_attributes`)."""
        from xmodal.nn.losses import info_nce_loss
        from xmodal.translation.text_to_image import aux_loss

        model = self._joint_model(seed=seed, **sizes)
        captions = [s.captions for s in scenes]
        gen = torch.Generator().manual_seed(seed)
        params = list(model.parameters())
        if text_aux > 0:
            dim = model.embed_dim
            with torch.random.fork_rng():  # the global random state stays as without heads
                heads = nn.ModuleList([nn.Linear(dim, len(COLOUR_NAMES)),
                                       nn.Linear(dim, len(SHAPE_NAMES))])  # fmt: skip
            params += list(heads.parameters())
        opt = torch.optim.Adam(params, lr=2e-3)
        model.train()
        with torch.enable_grad():
            for _ in range(steps):
                idx = torch.randperm(len(images), generator=gen)[:64]
                pick = torch.randint(5, (len(idx),), generator=gen).tolist()
                texts = [captions[i][p % len(captions[i])] for i, p in zip(idx.tolist(), pick,
                                                                          strict=True)]  # fmt: skip
                tokens, lengths = self.vocab.encode_batch(texts)
                img, txt = model(images[idx], tokens, lengths)
                loss = info_nce_loss(img, txt, model.logit_scale())
                if text_aux > 0:
                    objs = [scenes[i].objects[0] for i in idx.tolist()]
                    named = torch.tensor([named_attributes(t, o)
                                          for t, o in zip(texts, objs, strict=True)])  # fmt: skip
                    loss = loss + text_aux * aux_loss([h(txt) for h in heads], list(named.T))[0]
                opt.zero_grad()
                loss.backward()
                opt.step()
        return model

    def _eval_captions(self, scenes) -> list[str]:
        """Per scene, its first caption naming both the object's colour and its shape (the
        scene's name, ``a {size} {colour} {shape}``, when none does)."""
        out = []
        for s in scenes:
            o = s.objects[0]
            found = next((c for c in s.captions
                          if {o.colour, o.shape} <= set(tokenize(c))), None)  # fmt: skip
            out.append(found or f"a {o.size} {o.colour} {o.shape}")
        return out

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        e = self.config.eval
        n = min(e.n_captions, self._size(split))
        if n < 100:
            raise ParameterError(f"evaluate needs >= 100 scenes of {split!r}. Found: {n}")
        real, scenes = self._real(split, n)
        captions = self._eval_captions(scenes)
        fake = self.generate(model, captions, n=1, seed=self.config.seed)  # (n, 3, H, W)
        colour = torch.tensor([COLOUR_NAMES.index(s.objects[0].colour) for s in scenes])
        shape = torch.tensor([SHAPE_NAMES.index(s.objects[0].shape) for s in scenes])

        classifier = self._cached("evaluator.pt", self._train_classifier)

        def judge(images):
            lc, ls = classifier(images)
            return lc.argmax(-1) == colour, ls.argmax(-1) == shape

        c_ok, s_ok = judge(fake)
        rc_ok, rs_ok = judge(real)

        def percent(ok: torch.Tensor) -> float:
            return 100.0 * float(ok.float().mean())

        metrics = {  # in percent, as every xmodal accuracy
            "attribute_accuracy": percent(c_ok & s_ok),
            "shape_accuracy": percent(s_ok),
            "colour_accuracy": percent(c_ok),
            "classifier_real_accuracy": percent(rc_ok & rs_ok),
            "classifier_real_shape": percent(rs_ok),
            "classifier_real_colour": percent(rc_ok),
        }

        embed = self._cached("evaluator-retrieval.pt", self._train_retrieval)
        tokens, lengths = self.vocab.encode_batch(captions)
        txt = embed.embed_texts(tokens, lengths)  # (n, D)

        def p_at_1(images):
            img = embed.embed_images(images)  # (n, D)
            hits = 0
            for i in range(n):
                pool = [(i + k) % n for k in range(100)]  # its caption and 99 others
                sims = txt[pool] @ img[i]
                hits += int(sims.argmax()) == 0
            return 100.0 * hits / n

        metrics["retrieval_p1"] = p_at_1(fake)
        metrics["retrieval_p1_real"] = p_at_1(real.float() / 255)
        metrics["retrieval_chance"] = 1.0  # one caption in 100

        k = min(e.n_diversity, n)
        many = self.generate(model, captions[:k], n=e.n_noises, seed=self.config.seed + 1)
        metrics["diversity"] = _mean_pairwise_rms(many.view(k, e.n_noises, *many.shape[1:]))
        metrics["diversity_real"] = self._real_diversity(split, scenes[:k], e.n_noises)
        metrics["n_captions"] = n
        return metrics

    def _real_diversity(self, split: str, scenes, per: int) -> float:
        """Mean pairwise RMS distance between ``per`` real images of ``split`` that show
        the same (size, colour, shape) as each of ``scenes``."""
        keys = {(s.objects[0].size, s.objects[0].colour, s.objects[0].shape) for s in scenes}
        found: dict[tuple, list[torch.Tensor]] = {key: [] for key in keys}
        rendered = self._rendered.get(split, [])  # those already rendered are not redone
        i = 0
        while any(len(v) < per for v in found.values()) and i < 20_000:
            s = (
                rendered[i]
                if i < len(rendered)
                else self.world.scene(split, i, audio=False, questions=False)
            )
            o = s.objects[0]
            key = (o.size, o.colour, o.shape)
            if key in found and len(found[key]) < per:
                found[key].append(s.image.float() / 255)
            i += 1
        groups = [torch.stack(v) for v in found.values() if len(v) >= 2]
        return float(torch.tensor([_mean_pairwise_rms(g[None]) for g in groups]).mean())

    def figures(self, model: nn.Module, out_dir: Path) -> list[Path]:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        final = self.sample_grid(model, out_dir / "samples.png")
        epochs = sorted((out_dir / "epochs").glob("epoch-*.png"))
        return [final, *epochs]

    # ------------------------------------------------------------------ predict

    @classmethod
    def add_predict_arguments(cls, parser) -> None:
        parser.add_argument("-n", dest="n", type=int, default=8, metavar="N",
                            help="images per caption (default 8)")  # fmt: skip
        parser.add_argument("--seed", dest="seed", type=int, default=0,
                            help="seed of the noise (default 0)")  # fmt: skip

    def predict(self, model: nn.Module, inputs: Sequence[str], out_dir: Path, *,
                n: int = 8, seed: int = 0, out_file: Path | None = None) -> list[dict]:  # fmt: skip
        """Draw ``n`` images of each caption of ``inputs`` and write them as one grid PNG
        (a row per caption) to ``out_file`` (default ``out_dir/<first caption>.png``)."""
        inputs = list(inputs)
        if not inputs:
            raise ParameterError('predict text2image needs a caption, e.g. "a large red star"')
        n = check_positive_int(n, "-n")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ParameterError(f"--seed must be an integer >= 0. Found: {seed!r}")
        encoded = [self.encode_caption(c) for c in inputs]  # ParameterError if empty
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        if out_file is None:
            stem = re.sub(r"[^\w-]+", "_", inputs[0].strip())[:60].strip("_") or "caption"
            out_file = out_dir / f"{stem}.png"
        out_file = Path(out_file)
        if out_file.suffix.lower() != ".png":
            raise ParameterError(f"the grid must be a .png file. Found: {str(out_file)!r}")
        out_file.parent.mkdir(parents=True, exist_ok=True)
        images = self.generate(model, inputs, n=n, seed=seed)
        save_grid(out_file, images, n, inputs)
        records = []
        for caption, (_, unknown) in zip(inputs, encoded, strict=True):
            text = f"{n} images in {out_file}"
            if unknown:
                text += f"  [not in the vocabulary, read as <unk>: {', '.join(unknown)}]"
            records.append({"input": caption, "text": text, "unknown_words": unknown,
                            "files": [str(out_file)]})  # fmt: skip
        return records


@contextmanager
def _frozen(module: nn.Module):
    """``module``'s parameters without gradients inside the block (as they were after)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def _saved_model_keys(run_dir: Path) -> set[str] | None:
    """The ``model.*`` keys of the run's ``config.yaml`` (None when there is none to read:
    nothing to correct)."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return None
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    model = saved.get("model") if isinstance(saved, dict) else None
    return set(model) if isinstance(model, dict) else None


def _read_text_spec(path: Path) -> dict:
    import json

    try:
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot be read: {err}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise DataError(f"{path}: needs a 'config' object (the retrieval run's config)")
    return spec


def _mean_pairwise_rms(groups: torch.Tensor) -> float:
    """``groups`` ``(G, K, 3, H, W)``: the RMS pixel distance of every pair within a group,
    averaged over the pairs and the groups."""
    flat = groups.flatten(2).double()  # (G, K, P)
    d = torch.cdist(flat, flat) / flat.shape[-1] ** 0.5  # (G, K, K): RMS distances
    k = flat.shape[1]
    return float(d.sum(dim=(1, 2)).div(k * (k - 1)).mean())
