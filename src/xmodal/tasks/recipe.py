"""The ``recipe`` task: im2recipe (Salvador et al. 2017), recipes and dish pictures matched
in one space, trained and scored by the engine.

Data: the world's recipes or a Recipe1M-like folder (``data.name=recipe1m data.root=DIR``);
``vocab.json`` and the dish classes (``dish_classes.json``) come from the training set. A
step embeds the batch's images and recipes once; the loss is InfoNCE or the paper's cosine
loss plus the shared dish classifier's cross entropy on both sides.

Metrics: the paper's protocol, image→recipe and recipe→image median rank and R@1/5/10 on
``eval.draws`` random galleries of 1K (and 10K) test recipes, averaged, and each side's
dish accuracy. docs/recipe.md has the details and the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from xmodal._checks import check_positive_int
from xmodal._io import read_json, write_json
from xmodal.data.recipes import EncodedRecipes, WorldRecipes, collate_recipes
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
    trainer_defaults,
)
from xmodal.engine.config import TrainerConfig
from xmodal.engine.schedule import AdamConfig, world_size
from xmodal.engine.task import Task
from xmodal.errors import DataError, ParameterError
from xmodal.matching.gallery import Embedder, ranked
from xmodal.matching.recipe_search import embed_recipe_split, search_recipes
from xmodal.matching.steps import check_temperature, im2recipe_step
from xmodal.tasks._backbone import backbone_upstream, encoder_groups, start_encoder
from xmodal.text.vocab import Vocabulary
from xmodal.vision.encoders import width_kwargs

__all__ = [
    "RecipeConfig",
    "RecipeDataConfig",
    "RecipeEvalConfig",
    "RecipeModelConfig",
    "RecipeOptimConfig",
    "RecipeTask",
]

# The model fields Im2Recipe takes under their own names.
SIZES = ("embed_dim", "word_dim", "ingredient_hidden", "sentence_hidden", "instruction_hidden")


@dataclass
class RecipeModelConfig(Section):
    """The im2recipe model and objective. ``loss``: ``infonce`` (the default: from scratch
    it learns far faster) or ``cosine`` (the paper's); ``semantic_weight``: the dish
    classifier's share of the loss (0: none). docs/recipe.md has the details."""

    key: ClassVar[str] = "model"

    encoder: str = "small-cnn"
    channels: int = integer(64)  # small-cnn width (ignored by the ResNets)
    embed_dim: int = integer(256)
    word_dim: int = integer(64)
    ingredient_hidden: int = integer(64)  # per direction of the ingredient biLSTM
    sentence_hidden: int = integer(64)
    instruction_hidden: int = integer(128)
    loss: str = choice("infonce", ("infonce", "cosine"))
    temperature: float = 0.07  # InfoNCE's starting temperature (learned)
    margin: float = fraction(0.1)  # the cosine loss's, for non-matching pairs (the paper's)
    negatives: float = fraction(0.2)  # the share of a step's pairs that do not match
    semantic_weight: float = number(0.02)
    batch_norm: bool = flag(True)  # BatchNorm1d before the L2 norm: no collapse to one point
    # A word2vec directory whose vectors initialise the word embedding for training;
    # word_dim must be their dimension.
    word2vec: str | None = None
    # The image encoder's starting weights: a `backbone` run (`default`: the backbone
    # defaults' run with this encoder and width, trained once into the cache; or its
    # folder, whose encoder and channels must be these); null: random.
    backbone: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_temperature(self.temperature, "model.temperature")
        if self.semantic_weight > 1.0:
            raise ParameterError(
                f"model.semantic_weight must be in [0, 1]. Found: {self.semantic_weight}"
            )


@dataclass
class RecipeDataConfig(ImageDataConfig):
    """Where the recipes come from: ``name=world``, the world's (``*_size`` per split, kept
    in memory), or ``name=recipe1m``, every recipe with an image under ``root``. Longer
    recipes are cut to the ``max_*`` caps."""

    sources: ClassVar[tuple[str, ...]] = ("world", "recipe1m")

    root: str | None = None
    test_size: int = 2_000
    batch_size: int = 64
    num_workers: int = 0  # the world's recipes are in memory already
    max_ingredient_words: int = integer(64)
    max_sentences: int = integer(16)
    max_sentence_words: int = integer(32)
    min_freq: int = integer(1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.name == "recipe1m" and self.root is None:
            raise ParameterError(
                "data.name=recipe1m needs data.root (the folder with layer1.json, "
                "layer2.json and images/). Found: root=None"
            )


@dataclass
class RecipeOptimConfig(AdamConfig):
    """Adam with a linear warm-up and a cosine decay to ``min_lr_ratio * lr``;
    ``encoder_lr``: the image encoder's (null: ``lr``; 0: frozen)."""

    encoder_lr: float | None = number(None, optional=True)


@dataclass
class RecipeEvalConfig(EvalConfig):
    """The retrieval protocol: ``draws`` random galleries of each size in ``sizes`` (a size
    over the test split's is skipped; a split under the smallest is scored whole);
    ``top_k`` hits shown per query by figures (``n_figures`` each way) and predict."""

    sizes: tuple[int, ...] = (1000, 10000)
    draws: int = integer(10)
    top_k: int = integer(3)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.sizes:
            raise ParameterError("eval.sizes must name at least one gallery size. Found: ()")
        for i, s in enumerate(self.sizes):
            check_positive_int(s, f"eval.sizes[{i}]", minimum=2)


@dataclass
class RecipeConfig(TaskConfig):
    model: RecipeModelConfig = field(default_factory=RecipeModelConfig)
    data: RecipeDataConfig = field(default_factory=RecipeDataConfig)
    optim: RecipeOptimConfig = field(default_factory=RecipeOptimConfig)
    eval: RecipeEvalConfig = field(default_factory=RecipeEvalConfig)
    trainer: TrainerConfig = trainer_defaults(max_epochs=24, gradient_clip_val=2.0)


# ----------------------------------------------------------------------------- the task


class RecipeTask(Task):
    """im2recipe: image–recipe retrieval with a cosine loss and semantic regularisation."""

    name = "recipe"
    family = "matching"
    summary = "im2recipe: image-recipe retrieval (cosine loss + semantic regularisation)"
    Config = RecipeConfig
    upstream = (backbone_upstream(),)

    def __init__(self, config: RecipeConfig) -> None:
        super().__init__(config)
        self._fitting = False  # setup("fit") was called: build_model loads model.backbone
        self.vocab: Vocabulary | None = None
        self.class_names: tuple[str, ...] | None = None
        self._encoded: dict[str, EncodedRecipes] = {}
        self._word_init: torch.Tensor | None = None
        self._epoch = 0
        self._gallery: tuple | None = None  # (encoded test set, img emb, rec emb)

    # ------------------------------------------------------------------ data

    def world_data(self, split: str) -> Dataset:
        """The world's recipes of ``split`` (:class:`~xmodal.data.recipes.WorldRecipes`)."""
        return WorldRecipes(self.world, split, self.config.data.size(split))

    def recipe1m_data(self, split: str) -> Dataset:
        from xmodal.data.recipe1m import Recipe1M

        d = self.config.data
        ds = Recipe1M(d.root, split, image_size=d.image_size)
        if len(ds) == 0:
            raise DataError(f"data.root={d.root!r} has no {split} recipe with an image")
        return ds

    def encoded(self, split: str) -> EncodedRecipes:
        if split not in self._encoded:
            d = self.config.data
            caps = ("max_ingredient_words", "max_sentences", "max_sentence_words")
            self._encoded[split] = EncodedRecipes(
                self.data(split), self.vocab, self.class_names, **{k: getattr(d, k) for k in caps}
            )
        return self._encoded[split]

    def artifacts(self) -> list[str]:
        return ["vocab.json", "dish_classes.json"]

    def setup(self, run_dir: Path, stage: str) -> None:
        vocab_path, classes_path = Path(run_dir) / "vocab.json", Path(run_dir) / "dish_classes.json"
        self._fitting = stage == "fit"
        if stage == "fit":
            from xmodal.text.word2vec import model_word_init

            m, train = self.config.model, self.data("train")
            texts = [t for r in train.recipes for t in (*r["ingredients"], *r["instructions"])]
            self.vocab = Vocabulary.build(texts, min_freq=self.config.data.min_freq)
            self.class_names = train.class_names
            if m.semantic_weight > 0 and not self.class_names:
                raise DataError(
                    f"data.root={self.config.data.root!r} has no classes.json, which the "
                    "semantic regularisation needs: add it or set model.semantic_weight=0"
                )
            self.vocab.save(vocab_path)
            write_json(classes_path, list(self.class_names or ()), indent=1)
            if m.word2vec:
                self._word_init = model_word_init(self.vocab, m.word2vec, m.word_dim)[0]
        else:
            for path in (vocab_path, classes_path):
                if not path.is_file():
                    raise DataError(f"run folder {str(run_dir)!r} has no {path.name}")
            self.vocab = Vocabulary.load(vocab_path)
            self.class_names = tuple(read_json(classes_path, "class names file")) or None

    def train_dataloader(self) -> DataLoader:
        n, batch = len(self.encoded("train")), self.config.data.batch_size
        if n < batch * world_size():
            raise ParameterError(
                f"data.batch_size={batch} is more than the {n} training recipes "
                f"(per process): an epoch would have no full batch"
            )
        return self.train_loader(self.encoded("train"), collate_fn=collate_recipes, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        val = self.encoded("val")
        return DataLoader(val, min(100, len(val)), shuffle=False, collate_fn=collate_recipes)

    def on_train_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch

    # ------------------------------------------------------------------ model

    @property
    def n_classes(self) -> int:
        """Classes of the shared classifier: none without semantic regularisation."""
        weight, classes = self.config.model.semantic_weight, self.class_names
        return len(classes) if weight > 0 and classes else 0

    def build_model(self) -> nn.Module:
        from xmodal.matching.recipe import Im2Recipe

        m = self.config.model
        model = Im2Recipe(
            len(self.vocab),
            n_classes=self.n_classes,
            encoder=m.encoder,
            encoder_kwargs=width_kwargs(m.encoder, m.channels),
            batch_norm=m.batch_norm,
            word_init=self._word_init,  # training only: eval and predict load the weights
            logit_scale_init=1.0 / m.temperature,
            **{k: getattr(m, k) for k in SIZES},
        )
        start_encoder(self, model.encoder, fitting=self._fitting)
        return model

    def configure_optimizers(self, model: nn.Module):
        groups = encoder_groups(model, model.encoder, self.config.optim.encoder_lr)
        return self.config.optim.configure(groups, self.total_steps())

    def pairs(self, batch, epoch: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``pair_targets`` of a batch, drawn from (seed, epoch, the batch's first items)
        alone: a resumed run pairs the same; ``epoch=None`` (validation) is fixed."""
        from xmodal.matching.recipe import pair_targets

        head = batch["index"][:4].tolist()
        words = [self.config.seed, -1 if epoch is None else epoch, len(batch["index"]), *head]
        rng = np.random.default_rng([w + 1 for w in words])  # entropy words must be >= 0
        return pair_targets(len(batch["index"]), negatives=self.config.model.negatives, rng=rng)

    def _loss(self, model, batch, epoch: int | None) -> tuple[torch.Tensor, dict[str, float]]:
        m = self.config.model
        pairs = None if m.loss == "infonce" else self.pairs(batch, epoch)
        w = m.semantic_weight
        return im2recipe_step(model, batch, pairs, margin=m.margin, semantic_weight=w)

    def training_step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        if self.config.optim.encoder_lr == 0:
            model.encoder.eval()  # frozen: its batch-norm statistics too
        return self._loss(model, batch, self._epoch)

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        loss, parts = self._loss(model, batch, None)
        return {"loss": float(loss), **parts}

    # ------------------------------------------------------------------ inference

    def embed_split(self, model: nn.Module, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image and every recipe of ``split`` → ``(img (N, D), rec (N, D))``."""
        bs = self.config.eval.batch_size
        return embed_recipe_split(model, self.encoded(split), batch_size=bs)

    def evaluate(self, model: nn.Module, split: str) -> dict:
        from xmodal.metrics.galleries import drawn_galleries

        ev = self.config.eval
        img, rec = self.embed_split(model, split)
        directions = ("im2recipe", "recipe2im")
        sizes, draws, seed = ev.sizes, ev.draws, self.config.seed
        out = drawn_galleries(img, rec, sizes=sizes, draws=draws, seed=seed, prefixes=directions)
        out.update(n_recipes=len(img), draws=ev.draws)
        if model.classifier is not None:  # the shared classifier's dish accuracy
            labels, dev = self.encoded(split).labels, self.model_device(model)
            for side, emb in (("im", img), ("recipe", rec)):
                pred = model.classify(emb.to(dev)).argmax(dim=-1).cpu()
                out[f"{side}_class_acc"] = 100.0 * float((pred == labels).double().mean())
        return out

    def figures(self, model: nn.Module) -> dict:
        """The first ``eval.n_figures`` test images with their top recipes, and the same
        recipes with their top images, in the protocol's first gallery (their own match
        framed)."""
        from xmodal.viz.retrieval import plot_recipe_hits

        n = self.config.eval.n_figures
        if n == 0:
            return {}
        data, img, rec = self._gallery_embeddings(model)
        size = min(len(img), min(self.config.eval.sizes))  # the first 1K: the protocol's gallery
        img, rec, k, q = img[:size], rec[:size], self.config.eval.top_k, slice(0, min(n, size))
        to_recipes, to_images = ranked(img[q] @ rec.T, k), ranked(rec[q] @ img.T, k)
        figures = plot_recipe_hits(data.source, to_recipes, to_images)
        names = ("recipe_test_image_to_recipe", "recipe_test_recipe_to_image")
        return dict(zip(names, figures, strict=True))

    # ------------------------------------------------------------------ predict

    def _gallery_embeddings(self, model: nn.Module) -> tuple:
        """The test split as the search gallery, embedded once per task object."""
        if self._gallery is None:
            self._gallery = (self.encoded("test"), *self.embed_split(model, "test"))
        return self._gallery

    def predict(self, model: nn.Module, inputs: Sequence[str], out_dir: Path) -> list[dict]:
        """Each input is an image file → the ``eval.top_k`` recipes of the test gallery
        closest to it, best first, with a figure of the image and their text."""
        from xmodal.data.images import load_image

        if not inputs:
            raise ParameterError("predict recipe needs at least one image file")
        # Check every input before the (slow) gallery is embedded.
        queries = [load_image(x, size=self.config.data.image_size) for x in inputs]
        data, _, rec = self._gallery_embeddings(model)
        embed, recipes = Embedder(model, self.config.eval.batch_size), data.source.recipes
        k = self.config.eval.top_k
        return search_recipes(inputs, queries, out_dir, embed, recipe_emb=rec, recipes=recipes, k=k)
