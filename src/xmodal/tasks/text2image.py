"""The ``text2image`` task: GAN-INT-CLS (Reed et al. 2016) trained and scored by the engine.

Data: every (image, caption) pair of single-object world scenes (:mod:`xmodal.data.scenes`).
The GAN and its step: :mod:`xmodal.translation.text_to_image`; the fits around it:
:mod:`~xmodal.translation.text_to_image_fit`. Metrics (:mod:`~xmodal.translation.
text_to_image_eval`), on the images of ``eval.n_captions`` test captions:
``attribute_accuracy`` by a judge CNN, ``retrieval_p1`` by an independent joint embedding,
``diversity`` under other noises. How, why, and the experiments: docs/text2image.md.

Example::

    xmodal predict text2image --run runs/text2image/<id> "a large red star" -n 8 --out grid.png
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader

from xmodal._checks import check_bool, check_positive_int
from xmodal.data.scenes import SAMPLE_CAPTIONS, CaptionPairs, RenderedScenes, collate_pairs
from xmodal.engine.base import (
    EvalConfig,
    ImageDataConfig,
    Section,
    TaskConfig,
    choice,
    flag,
    fraction,
    integer,
    number,
    older_run_values,
    trainer_defaults,
)
from xmodal.engine.config import TrainerConfig
from xmodal.engine.fit import fit_steps
from xmodal.engine.keep import keep_upstream, kept_upstream
from xmodal.engine.options import option
from xmodal.engine.task import Task
from xmodal.engine.upstream import Upstream
from xmodal.errors import DataError, ParameterError
from xmodal.nn.weights import cached_module
from xmodal.text.vocab import Vocabulary
from xmodal.translation import text_to_image as t2i
from xmodal.translation import text_to_image_fit as fits
from xmodal.translation.text_to_image_eval import score_generated
from xmodal.viz.figure import save_figure
from xmodal.viz.grid import grid_path, plot_image_grid
from xmodal.world import COLOURS, SHAPES, World

__all__ = [
    "Text2ImageConfig",
    "Text2ImageDataConfig",
    "Text2ImageEvalConfig",
    "Text2ImageModelConfig",
    "Text2ImageOptimConfig",
    "Text2ImageTask",
]

TEXT_RUN_FILE = "text_encoder.json"  # model.text_run: what rebuilds its text encoder
EVAL_JOINT = {"word_dim": 64, "hidden": 128, "embed_dim": 128}  # the retrieval judge's sizes
VAL_LOGS = ("d_loss", "g_loss", "p_real_right", "p_real_wrong", "p_fake_right")


@dataclass
class Text2ImageModelConfig(Section):
    """The GAN (:class:`~xmodal.translation.text_to_image.TextToImageGAN`): its sentence
    encoder, TAC-GAN classifiers, sizes, GAN-INT (``interpolation``, ``beta``) and
    stabilisers. Why each default (with the experiments): docs/text2image.md."""

    key: ClassVar[str] = "model"

    # "pretrained": a joint embedding trained first on the training pairs (pretrain_steps),
    # then frozen, as Reed et al.'s; "joint": trained with the discriminator.
    text_encoder: str = choice("pretrained", ("joint", "pretrained"))
    pretrain_steps: int = integer(600)
    # > 0: that pre-training also asks the sentence for the colour and shape its caption
    # names (this weight): InfoNCE alone left "a red circle" and "a red square" at cos 0.93.
    text_aux_weight: float = number(1.0)
    # A retrieval run folder, whose vocabulary and frozen text encoder replace both; "default":
    # retrieval's defaults, trained once into the cache ($XMODAL_CACHE or ~/.cache/xmodal).
    text_run: str | None = None
    # G's images must match their caption in the sentence encoder's joint embedding (this
    # weight; 1 tripled the attribute accuracy; 0: plain GAN-INT-CLS).
    match_weight: float = number(1.0)
    # TAC-GAN: D's colour and shape classifiers (this weight; 0: none) on its map of stride
    # aux_stride, pre-trained on real labels (lr: optim.lr_d when null; 4e-4 was too slow).
    aux_weight: float = number(1.0)
    aux_stride: int = integer(8, minimum=2)
    aux_pretrain_steps: int = integer(2_000, minimum=0)
    aux_pretrain_lr: float | None = number(2e-3, positive=True, optional=True)
    aux_fake: bool = flag(True)  # a "generated" class where the classifiers put G's images (K+1)
    word_dim: int = integer(64)
    hidden: int = integer(128)
    text_dim: int = integer(128)
    proj_dim: int = integer(128)
    noise_dim: int = integer(100)
    ngf: int = integer(16)  # narrower than DCGAN's 64: 3,400 steps in 20 min of one CPU thread
    ndf: int = integer(16)
    interpolation: bool = flag(True)
    beta: float = number(0.5)  # at most 1
    upsample: str = choice("nearest", t2i.UPSAMPLES)  # or "transposed" (DCGAN's; checkerboards)
    d_norm: str = choice("spectral", t2i.D_NORMS)  # or "batch" (DCGAN's)
    d_cond: str = choice("projection", t2i.D_CONDS)  # (Miyato & Koyama) or "concat" (Reed's)
    gan_loss: str = choice("hinge", t2i.GAN_LOSSES)  # or "bce" (Reed's, non-saturating for G)
    # DiffAugment of every image D sees: "none", "translation", "translation-cutout".
    augment: str = choice("translation", t2i.AUGMENTS)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.text_run is not None and not isinstance(self.text_run, str):
            raise ParameterError(f"model.text_run must be a run folder. Found: {self.text_run!r}")
        check_bool(self.interpolation, "model.interpolation")
        check_bool(self.aux_fake, "model.aux_fake")
        if self.match_weight > 0 and self.text_encoder == "joint" and self.text_run is None:
            raise ParameterError(
                "model.match_weight needs a joint embedding: model.text_encoder=pretrained or "
                "model.text_run (with model.text_encoder=joint set model.match_weight=0). "
                f"Found: text_encoder='joint', match_weight={self.match_weight}"
            )
        if self.beta > 1:
            raise ParameterError(f"model.beta must be in [0, 1]. Found: {self.beta}")


@dataclass
class Text2ImageDataConfig(ImageDataConfig):
    """World scenes of ``objects`` objects (1: single-object scenes), ``*_size`` of them
    per split, each with all its captions (at most ``max_len`` tokens)."""

    # x 5 captions: 1,250 steps of 32 an epoch. More scenes than 1,800 (each then seen
    # fewer times) gave the same attribute accuracy and twice the retrieval P@1.
    train_size: int = 8_000
    val_size: int = 64
    batch_size: int = integer(32, minimum=2)
    num_workers: int = 0  # the scenes are rendered once, then batched from memory
    objects: int = integer(1)
    max_len: int = integer(24, minimum=3)

    def __post_init__(self) -> None:
        super().__post_init__()
        size = check_positive_int(self.image_size, "data.image_size", minimum=16)
        if size & (size - 1):  # the DCGAN doubles from 4x4
            raise ParameterError(f"data.image_size must be a power of two >= 16. Found: {size}")


@dataclass
class Text2ImageOptimConfig(Section):
    """Two Adam optimizers (DCGAN's betas): ``lr_g`` (generator), ``lr_d`` (discriminator
    and, when trained, the sentence encoder). G at half D's rate (two time scales) lost 9-10
    points of attribute accuracy (docs/text2image.md, Results (4))."""

    key: ClassVar[str] = "optim"

    lr_g: float = number(4e-4, positive=True)
    lr_d: float = number(4e-4, positive=True)
    beta1: float = fraction(0.5)
    beta2: float = fraction(0.999)


@dataclass
class Text2ImageEvalConfig(EvalConfig):
    """``n_captions`` test captions scored; ``n_noises`` images per caption for the diversity
    (of ``n_diversity``); ``n_grid`` per caption in the sample grids (``n_figures=0``: none)."""

    batch_size: int = 100
    n_figures: int = 1
    n_captions: int = integer(500, minimum=100)  # P@1 ranks each image among 100 captions
    n_noises: int = integer(8, minimum=2)
    n_diversity: int = integer(50)
    classifier_steps: int = integer(1_500)
    retrieval_steps: int = integer(600)
    evaluator_images: int = integer(6_000)  # real training scenes the evaluators learn from
    n_grid: int = integer(8)


@dataclass
class Text2ImageConfig(TaskConfig):
    model: Text2ImageModelConfig = field(default_factory=Text2ImageModelConfig)
    data: Text2ImageDataConfig = field(default_factory=Text2ImageDataConfig)
    optim: Text2ImageOptimConfig = field(default_factory=Text2ImageOptimConfig)
    eval: Text2ImageEvalConfig = field(default_factory=Text2ImageEvalConfig)
    # 4 x 1,250 = 5,000 batches: 15 minutes on the project's quiet 2-core CPU, 31 on a 2-core
    # Zen 1 at 2.0 GHz (docs/text2image.md); the attribute accuracy rises up to here.
    trainer: TrainerConfig = trainer_defaults(max_epochs=4, log_every_n_steps=20)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model.aux_weight > 0 and self.data.objects != 1:
            raise ParameterError(  # the classifiers learn the one object's colour and shape
                "model.aux_weight needs single-object scenes (data.objects=1). "
                f"Found: aux_weight={self.model.aux_weight}, objects={self.data.objects}"
            )


# ----------------------------------------------------------------------------- the task


class Text2ImageTask(Task):
    """Text-to-image synthesis (translation: text → image): GAN-INT-CLS."""

    name = "text2image"
    family = "translation"
    summary = "Text-to-image: conditional GAN (GAN-INT-CLS, matching-aware + interpolation)"
    Config = Text2ImageConfig
    manual_optimization = True
    predict_out_suffixes = (".png",)
    upstream = (Upstream("model.text_run", "retrieval", required=False),)

    @dataclass
    class PredictOptions:
        n: int = option(8, "images per caption", flags=("-n",), metavar="N")
        seed: int = option(0, "seed of the noise")

    def __init__(self, config: Text2ImageConfig) -> None:
        super().__init__(config)
        self.vocab: Vocabulary | None = None
        self.run_dir: Path | None = None
        self.epoch, self._grid_epoch = 0, -1
        d = config.data  # the world with data.objects objects in every scene
        objects = {"min_objects": d.objects, "max_objects": d.objects}
        self._world = World(seed=d.world_seed, image_size=d.image_size, **objects)
        self.scenes = RenderedScenes(self._world)  # each rendered once for the task's life
        self._text_init: dict | None = None  # pre-trained text weights, for training
        self._matcher: nn.Module | None = None  # that joint embedding, for model.match_weight
        self._fitting = False  # setup("fit") ran: build_model may pre-train D's classifiers
        self.aux_pretrain_log: dict[str, float] = {}  # its seconds and last losses

    # ------------------------------------------------------------------ data

    def world_data(self, split: str, n: int | None = None) -> CaptionPairs:
        """Every (image, caption) pair of the first ``n`` (``data.size(split)``) scenes."""
        scenes = self.scenes.first(split, self.config.data.size(split) if n is None else n)
        return CaptionPairs(scenes, self.vocab, max_len=self.config.data.max_len)

    def train_dataloader(self) -> DataLoader:
        return self.train_loader(self.data("train"), collate_fn=collate_pairs, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        batch_size = self.config.data.batch_size
        return DataLoader(self.data("val"), batch_size, collate_fn=collate_pairs, drop_last=True)

    def artifacts(self) -> list[str]:
        return ["vocab.json"] + ([TEXT_RUN_FILE] if self.config.model.text_run else [])

    def setup(self, run_dir: Path, stage: str) -> None:
        self.run_dir = Path(run_dir)
        m, path = self.config.model, self.run_dir / "vocab.json"
        self._fitting = stage == "fit"
        if stage == "fit" and m.text_run:  # the engine resolved it: a retrieval run's folder
            rtask, rmodel = keep_upstream(self.run_dir, TEXT_RUN_FILE, m.text_run, "retrieval")
            self.vocab, self._text_init = rtask.vocab, rmodel.text.state_dict()
            self.vocab.save(path)
            self._matcher = rmodel.eval().requires_grad_(False)
        elif stage == "fit":
            scenes = self.scenes.first("train", self.config.data.train_size)
            self.vocab = Vocabulary.build([c for s in scenes for c in s.captions], min_freq=1)
            self.vocab.save(path)
            if m.text_encoder == "pretrained":  # the joint embedding whose text side is G's
                sizes = dict(word_dim=m.word_dim, hidden=m.hidden, embed_dim=m.text_dim)
                fit = dict(steps=m.pretrain_steps, text_aux=m.text_aux_weight)
                joint = self._joint(len(scenes), seed=self.config.seed, **fit, **sizes)
                self._text_init = joint.text.state_dict()
                self._matcher = joint.eval().requires_grad_(False)
        else:
            if not path.is_file():
                raise DataError(f"run folder {str(run_dir)!r} has no vocab.json")
            self.vocab = Vocabulary.load(path)
            # A run saved before TAC-GAN has no classifiers, one before K+1 no such class.
            older_run_values(self.run_dir, m, aux_weight=0.0, aux_fake=False)

    def _joint(self, n: int, *, steps: int, seed: int, text_aux=0.0, **sizes) -> nn.Module:
        """A small joint embedding (:class:`~xmodal.matching.JointEmbedding`, small CNN +
        GRU of ``sizes``, initialised from ``seed``) trained for ``steps`` on the first ``n``
        training scenes' images and captions (:func:`~xmodal.translation.text_to_image_fit.
        sentence_pretrain_objective`, with ``text_aux``)."""
        from xmodal.matching.joint import JointEmbedding

        images, scenes = self.scenes.images("train", n) if steps else (None, [])
        torch.manual_seed(seed)
        model = JointEmbedding(len(self.vocab), encoder_kwargs={"channels": 64}, **sizes)
        params, step = fits.sentence_pretrain_objective(
            model, images, scenes, self.vocab, seed=seed, text_aux=text_aux
        )
        fit_steps(torch.optim.Adam(params, lr=2e-3), step, steps=steps, modules=[model])
        return model

    # ------------------------------------------------------------------ model

    def build_model(self) -> nn.Module:
        m = self.config.model
        text, text_dim = None, m.text_dim
        if m.text_run:  # the retrieval model's text side (text_encoder.json keeps its config)
            rtask = kept_upstream(self.run_dir, TEXT_RUN_FILE, "retrieval")
            rtask.vocab = self.vocab
            text, text_dim = rtask.build_model().text, rtask.config.model.embed_dim
        aux = (len(COLOURS) + m.aux_fake, len(SHAPES) + m.aux_fake) if m.aux_weight > 0 else ()
        frozen = m.text_encoder == "pretrained" or text is not None
        size = self.config.data.image_size
        text_side = dict(text_dim=text_dim, text_encoder=text, freeze_text=frozen)
        sizes = dict(word_dim=m.word_dim, hidden=m.hidden, proj_dim=m.proj_dim, image_size=size)
        nets = dict(noise_dim=m.noise_dim, ngf=m.ngf, ndf=m.ndf, upsample=m.upsample)
        disc = dict(d_norm=m.d_norm, d_cond=m.d_cond, aux_classes=aux, aux_stride=m.aux_stride)
        model = t2i.TextToImageGAN(len(self.vocab), **text_side, **sizes, **nets, **disc)
        if self._text_init is not None:  # training only: eval and predict load the weights
            model.text.load_state_dict(self._text_init)
        if self._fitting and not self.resuming and m.aux_weight > 0 and m.aux_pretrain_steps:
            self._pretrain_aux(model.discriminator)
        return model

    def _pretrain_aux(self, discriminator: nn.Module) -> None:
        """``model.aux_pretrain_steps``: D's classifiers (and the layers under them) on the
        real training images' labels before the GAN starts, at ``model.aux_pretrain_lr``."""
        m, o, d = self.config.model, self.config.optim, self.config.data
        images, scenes = self.scenes.images("train", d.train_size)
        params, step, last = fits.classifier_pretrain_objective(
            discriminator, images, scenes, d.batch_size, augment=m.augment, seed=self.config.seed
        )
        lr = o.lr_d if m.aux_pretrain_lr is None else m.aux_pretrain_lr
        opt = torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2))
        start = time.perf_counter()
        fit_steps(opt, step, steps=m.aux_pretrain_steps, modules=[discriminator])
        self.aux_pretrain_log = {"seconds": time.perf_counter() - start, **last}

    def configure_optimizers(self, model: nn.Module):
        o, text = self.config.optim, [p for p in model.text.parameters() if p.requires_grad]
        d_params = [*model.discriminator.parameters(), *text]  # the text: none when frozen
        return [
            torch.optim.Adam(d_params, lr=o.lr_d, betas=(o.beta1, o.beta2)),
            torch.optim.Adam(model.generator.parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2)),
        ]

    def training_step(self, model: nn.Module, batch, step=None):
        """One GAN-INT-CLS step (:func:`~xmodal.translation.text_to_image.gan_int_cls_step`):
        D's update through the engine's ``step``, then G's; without ``step`` only the losses
        (validation)."""
        m = self.config.model
        gan = dict(loss=m.gan_loss, interpolation=m.interpolation, beta=m.beta, augment=m.augment)
        aux = dict(aux_weight=m.aux_weight, aux_fake=m.aux_fake)
        match = dict(matcher=self._matcher, match_weight=m.match_weight)
        update = None if step is None else step.update  # D's (0), G's (1)
        return t2i.gan_int_cls_step(model, batch, update=update, **gan, **aux, **match)

    def on_train_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        if self._grid_epoch != self.epoch and self.run_dir is not None:
            self._grid_epoch = self.epoch  # one grid per epoch: what G draws at this point
            name = f"epoch-{self.epoch:03d}.png"
            save_figure(self._grid(model), self.run_dir / "figures" / "epochs" / name)
        _, logs = self.training_step(model, batch)
        return {k: logs[k] for k in VAL_LOGS}

    # ------------------------------------------------------------------ generation

    def generate(self, model: nn.Module, captions: Sequence[str], *, n: int = 1, seed: int = 0):
        """``n`` images of each caption (:func:`~xmodal.translation.text_to_image.
        generate_images`): ``(len(captions) * n, 3, H, W)`` in [0, 1], noise from ``seed``."""
        max_len, batch_size = self.config.data.max_len, self.config.eval.batch_size
        ids = [t2i.encode_caption(self.vocab, c, max_len=max_len)[0] for c in captions]
        return t2i.generate_images(model.eval(), ids, n=n, seed=seed, batch_size=batch_size)

    def _grid(self, model: nn.Module):
        """The figure of :data:`~xmodal.data.scenes.SAMPLE_CAPTIONS` (rows) under
        ``eval.n_grid`` fixed noises."""
        was_training, n = model.training, self.config.eval.n_grid
        images = self.generate(model, SAMPLE_CAPTIONS, n=n, seed=self.config.seed)
        model.train(was_training)
        return plot_image_grid(images, n, SAMPLE_CAPTIONS)

    # ------------------------------------------------------------------ evaluation

    def _judge(self, train: bool) -> nn.Module:
        """The judge of ``attribute_accuracy``, trained on ``eval.evaluator_images`` real
        training images (when ``train``; else for its saved weights)."""
        e, seed = self.config.eval, self.config.seed
        torch.manual_seed(seed)
        judge = fits.AttributeClassifier(len(COLOURS), len(SHAPES))
        if train:
            images, scenes = self.scenes.images("train", e.evaluator_images)
            params, step = fits.attribute_judge_objective(judge, images, scenes, seed=seed)
            opt = torch.optim.Adam(params, lr=2e-3)
            fit_steps(opt, step, steps=e.classifier_steps, modules=[judge])
        return judge

    def _retrieval_judge(self, train: bool) -> nn.Module:  # the embedding of retrieval_p1
        e, seed = self.config.eval, self.config.seed + 1
        steps = e.retrieval_steps if train else 0
        return self._joint(e.evaluator_images, steps=steps, seed=seed, **EVAL_JOINT)

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        e = self.config.eval
        n = min(e.n_captions, self.config.data.size(split))
        if n < 100:
            raise ParameterError(f"evaluate needs >= 100 scenes of {split!r}. Found: {n}")
        real, scenes = self.scenes.images(split, n)
        judge = cached_module(self.run_dir / "evaluator.pt", self._judge)
        embed = cached_module(self.run_dir / "evaluator-retrieval.pt", self._retrieval_judge)
        draw, alike = partial(self.generate, model), self.scenes.walk(split, 20_000)
        sizes = dict(n_noises=e.n_noises, n_diversity=e.n_diversity, seed=self.config.seed)
        return score_generated(
            draw, real, scenes, judge, embed, self.vocab, candidates=alike, **sizes
        )

    def figures(self, model: nn.Module) -> dict:
        return {"samples": self._grid(model)} if self.config.eval.n_figures else {}

    def predict(
        self, model: nn.Module, inputs: Sequence[str], out_dir, *, n: int, seed: int, out_file=None
    ):
        """Draw ``n`` images of each caption of ``inputs`` and write them as one grid PNG
        (a row per caption) to ``out_file`` (default ``out_dir/<first caption>.png``)."""
        if not inputs:
            raise ParameterError('predict text2image needs a caption, e.g. "a large red star"')
        n, seed = check_positive_int(n, "-n"), check_positive_int(seed, "--seed", minimum=0)
        # The words each caption has that the vocabulary lacks; ParameterError for no words.
        max_len = self.config.data.max_len
        unknown = [t2i.encode_caption(self.vocab, c, max_len=max_len)[1] for c in inputs]
        out_file = grid_path(out_dir, out_file, inputs[0])
        images = self.generate(model, inputs, n=n, seed=seed)
        save_figure(plot_image_grid(images, n, inputs), out_file)
        return t2i.caption_grid_records(inputs, unknown, n, out_file)
