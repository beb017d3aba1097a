"""The ``recipe`` task: im2recipe (Salvador et al. 2017), recipes and dish pictures matched
in one space, trained and scored by the engine.

Data: the world's recipes (``data.name=world``, :meth:`xmodal.world.World.recipe`), or a
Recipe1M-like folder (``data.name=recipe1m data.root=DIR``: ``layer1.json``,
``layer2.json``, ``classes.json``, ``images/``, the layout
:func:`xmodal.world.export.export` writes as ``"recipe1m"``; see
:class:`xmodal.data.recipe1m.Recipe1M`). The vocabulary is built from the training
recipes' ingredient lines and instructions and saved as ``vocab.json``; the dish classes
of the semantic regularisation as ``dish_classes.json``.

A training step embeds ``data.batch_size`` images and their recipes once, pairs
``model.negatives`` (20%) of the images with another recipe of the batch (drawn from the
seed, the epoch and the batch, so a resumed run draws the same) and minimises
:func:`xmodal.matching.recipe.im2recipe_loss`: the cosine embedding loss with
``model.margin`` plus ``model.semantic_weight`` of the shared dish classifier's cross
entropy on both modalities (0 turns the regularisation off).

Metrics (``evaluate``): the paper's protocol, image→recipe (``im2recipe_*``) and
recipe→image (``recipe2im_*``) median rank and R@1/5/10 on ``eval.draws`` (10) random
subsets of 1K test recipes, averaged (``1k/...``), and of 10K where the test split holds
that many (``data.test_size``); plus the shared classifier's dish accuracy on each side.

Example::

    xmodal train recipe                                   # the world, paper-like defaults
    xmodal train recipe model.semantic_weight=0           # without semantic regularisation
    xmodal train recipe data.name=recipe1m data.root=exports/recipe1m
    xmodal predict recipe --run runs/recipe/<id> dish.png
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from xmodal._checks import check_choice, check_positive_int, check_positive_number
from xmodal._io import write_json
from xmodal.data.recipes import RECIPE_KEYS, EncodedRecipes, WorldRecipes, collate_recipes
from xmodal.engine.base import EvalConfig, ImageDataConfig, TaskConfig, trainer_defaults
from xmodal.engine.config import TrainerConfig
from xmodal.engine.schedule import AdamConfig, world_size
from xmodal.engine.task import Task
from xmodal.errors import DataError, ParameterError
from xmodal.matching.gallery import embed_batches, ranked
from xmodal.text.vocab import Vocabulary

__all__ = [
    "RecipeConfig",
    "RecipeDataConfig",
    "RecipeEvalConfig",
    "RecipeModelConfig",
    "RecipeOptimConfig",
    "RecipeTask",
]


@dataclass
class RecipeModelConfig:
    """The im2recipe model and objective.

    ``loss``: the matching term, ``infonce`` (symmetric, every other recipe of the batch a
    negative, learned temperature starting at ``temperature``; the default) or ``cosine``
    (the paper's cosine embedding loss on pairs); ``margin``: the cosine loss's margin for
    non-matching pairs (the paper's 0.1); ``negatives``: the fraction of a step's pairs
    that do not match (the paper's 20%; cosine only); ``semantic_weight``: ``w`` of
    ``(1 - w) * match + w / 2 * (CE_img + CE_rec)``, the paper code's 0.98 / 0.01 / 0.01
    at the default 0.02; 0 turns it off.

    InfoNCE is the default because from scratch on the world it learns far faster: at 8
    epochs image→recipe medR on 1K is 2.0 against 16.1 for the paper's cosine loss (8.8
    at 24 epochs); docs/recipe.md has the measurements.
    """

    encoder: str = "small-cnn"
    channels: int = 64  # small-cnn width (ignored by the ResNets)
    embed_dim: int = 256
    word_dim: int = 64
    ingredient_hidden: int = 64  # per direction of the ingredient biLSTM
    sentence_hidden: int = 64
    instruction_hidden: int = 128
    loss: str = "infonce"
    temperature: float = 0.07  # InfoNCE's starting temperature (learned)
    margin: float = 0.1
    negatives: float = 0.2
    semantic_weight: float = 0.02
    batch_norm: bool = True  # BatchNorm1d before the L2 norm: no collapse to one point
    # A word2vec directory whose vectors initialise the word embedding for training;
    # word_dim must be their dimension.
    word2vec: str | None = None

    def __post_init__(self) -> None:
        check_choice(self.loss, "model.loss", ("infonce", "cosine"))
        check_positive_number(self.temperature, "model.temperature")
        if self.temperature < 0.01:
            raise ParameterError(
                f"model.temperature must be >= 0.01 (a logit scale <= 100). "
                f"Found: {self.temperature}"
            )
        for name in ("channels", "embed_dim", "word_dim", "ingredient_hidden",
                     "sentence_hidden", "instruction_hidden"):  # fmt: skip
            check_positive_int(getattr(self, name), f"model.{name}")
        check_positive_number(self.margin, "model.margin", allow_zero=True)
        if self.margin >= 1.0:
            raise ParameterError(f"model.margin must be in [0, 1) (a cosine). Found: {self.margin}")
        if not (isinstance(self.negatives, (int, float)) and 0.0 <= self.negatives < 1.0):
            raise ParameterError(
                f"model.negatives must be a fraction in [0, 1). Found: {self.negatives!r}"
            )
        check_positive_number(self.semantic_weight, "model.semantic_weight", allow_zero=True)
        if self.semantic_weight > 1.0:
            raise ParameterError(
                f"model.semantic_weight must be in [0, 1]. Found: {self.semantic_weight}"
            )


@dataclass
class RecipeDataConfig(ImageDataConfig):
    """Where the recipes come from.

    ``name=world``: the world's recipes, ``train_size`` / ``val_size`` / ``test_size`` per
    split, generated once and kept in memory (``test_size >= 10000`` adds the 10K
    protocol). ``name=recipe1m``: ``root`` is a Recipe1M-like folder; every recipe with an
    image of each partition is used (the sizes apply to the world only). Recipes longer
    than the caps are cut: ``max_ingredient_words`` over all ingredient lines,
    ``max_sentences`` instructions of ``max_sentence_words`` words each.
    """

    sources: ClassVar[tuple[str, ...]] = ("world", "recipe1m")

    root: str | None = None
    test_size: int = 2_000
    batch_size: int = 64
    num_workers: int = 0  # the world's recipes are in memory already
    max_ingredient_words: int = 64
    max_sentences: int = 16
    max_sentence_words: int = 32
    min_freq: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("min_freq", "max_ingredient_words", "max_sentences", "max_sentence_words"):
            check_positive_int(getattr(self, key), f"data.{key}")
        if self.name == "recipe1m" and self.root is None:
            raise ParameterError(
                "data.name=recipe1m needs data.root (the folder with layer1.json, "
                "layer2.json and images/). Found: root=None"
            )


@dataclass
class RecipeOptimConfig(AdamConfig):
    """Adam with a linear warm-up and a cosine decay to ``min_lr_ratio * lr``."""


@dataclass
class RecipeEvalConfig(EvalConfig):
    """The retrieval protocol: ``draws`` random galleries of each size in ``sizes`` (a size
    over the test split's is skipped; a split under the smallest size is scored whole);
    ``top_k`` results shown per query by figures and predict, ``n_figures`` test queries
    each direction."""

    sizes: tuple[int, ...] = (1000, 10000)
    draws: int = 10
    top_k: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.sizes:
            raise ParameterError("eval.sizes must name at least one gallery size. Found: ()")
        for i, s in enumerate(self.sizes):
            check_positive_int(s, f"eval.sizes[{i}]", minimum=2)
        check_positive_int(self.draws, "eval.draws")
        check_positive_int(self.top_k, "eval.top_k")


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
    default_data = "world"
    Config = RecipeConfig

    def __init__(self, config: RecipeConfig) -> None:
        super().__init__(config)
        self.vocab: Vocabulary | None = None
        self.class_names: tuple[str, ...] | None = None
        self._encoded: dict[str, EncodedRecipes] = {}
        self._word_init: torch.Tensor | None = None
        self._epoch = 0
        self._gallery: tuple | None = None  # predict: (encoded test set, img emb, rec emb)

    # ------------------------------------------------------------------ data

    def world_data(self, split: str) -> Dataset:
        """The world's recipes of ``split``: items with ``image``, ``title``,
        ``ingredients``, ``instructions``, ``dish``, ``id``, ``index``; ``.recipes`` their
        text alone."""
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
            self._encoded[split] = EncodedRecipes(
                self.data(split), self.vocab, self.class_names,
                max_ingredient_words=d.max_ingredient_words, max_sentences=d.max_sentences,
                max_sentence_words=d.max_sentence_words,
            )  # fmt: skip
        return self._encoded[split]

    def artifacts(self) -> list[str]:
        return ["vocab.json", "dish_classes.json"]

    def setup(self, run_dir: Path, stage: str) -> None:
        run_dir = Path(run_dir)
        vocab_path, classes_path = run_dir / "vocab.json", run_dir / "dish_classes.json"
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
            self.class_names = tuple(json.loads(classes_path.read_text())) or None

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
        return DataLoader(val, batch_size=min(100, len(val)), shuffle=False,
                          collate_fn=collate_recipes)  # fmt: skip

    def on_train_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch

    # ------------------------------------------------------------------ model

    @property
    def n_classes(self) -> int:
        """Classes of the shared classifier: none without semantic regularisation."""
        if self.config.model.semantic_weight == 0 or not self.class_names:
            return 0
        return len(self.class_names)

    def build_model(self) -> nn.Module:
        from xmodal.matching.recipe import Im2Recipe

        m = self.config.model
        sizes = {k: getattr(m, k) for k in ("embed_dim", "word_dim", "ingredient_hidden",
                                            "sentence_hidden", "instruction_hidden")}  # fmt: skip
        return Im2Recipe(
            len(self.vocab), n_classes=self.n_classes, encoder=m.encoder,
            encoder_kwargs={"channels": m.channels} if m.encoder == "small-cnn" else {},
            batch_norm=m.batch_norm, **sizes,
            word_init=self._word_init,  # training only: eval and predict load the weights
            logit_scale_init=1.0 / m.temperature,
        )  # fmt: skip

    def pairs(self, batch, epoch: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``pair_targets`` of a batch, drawn from (seed, epoch, the batch's first items)
        alone: a resumed run pairs the same; ``epoch=None`` (validation) is fixed."""
        from xmodal.matching.recipe import pair_targets

        head = batch["index"][:4].tolist()
        words = [self.config.seed, -1 if epoch is None else epoch, len(batch["index"]), *head]
        rng = np.random.default_rng([w + 1 for w in words])  # entropy words must be >= 0
        return pair_targets(len(batch["index"]), negatives=self.config.model.negatives, rng=rng)

    def _loss(self, model, batch, epoch: int | None) -> tuple[torch.Tensor, dict[str, float]]:
        from xmodal.matching.recipe import im2recipe_loss

        m = self.config.model
        img = model.embed_images(batch["image"])  # (B, D)
        rec = model.embed_recipes(*(batch[k] for k in RECIPE_KEYS))  # (B, D)
        semantic = {}
        if model.classifier is not None:
            labels = batch["label"]
            semantic = dict(img_logits=model.classify(img), rec_logits=model.classify(rec),
                            img_labels=labels, rec_labels=labels)  # fmt: skip
        w = m.semantic_weight if semantic else 0.0
        if m.loss == "infonce":
            scale = model.logit_scale()
            loss, parts = im2recipe_loss(img, rec, logit_scale=scale, semantic_weight=w, **semantic)
            return loss, {**parts, "logit_scale": float(scale.detach())}
        rows, target = self.pairs(batch, epoch)
        return im2recipe_loss(
            img, rec[rows.to(img.device)], target.to(img.device), margin=m.margin,
            semantic_weight=w, **semantic,
        )  # fmt: skip

    def training_step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        return self._loss(model, batch, self._epoch)

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        loss, parts = self._loss(model, batch, None)
        return {"loss": float(loss), **parts}

    # ------------------------------------------------------------------ inference

    def embed_images(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` → ``(N, D)`` unit vectors (on the CPU), in batches."""
        model.eval()
        return embed_batches(model.embed_images, images, batch_size=self.config.eval.batch_size,
                             device=self.model_device(model))  # fmt: skip

    def embed_split(self, model: nn.Module, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image and every recipe of ``split`` → ``(img (N, D), rec (N, D))``."""
        model.eval()
        data, device = self.encoded(split), self.model_device(model)

        def recipes(rows: range) -> torch.Tensor:
            batch = data.text_batch(rows)
            return model.embed_recipes(*(batch[k].to(device) for k in RECIPE_KEYS))

        def images(rows: range) -> torch.Tensor:
            return model.embed_images(data.image_batch(rows).to(device))

        rows, bs = range(len(data)), self.config.eval.batch_size
        img = embed_batches(images, rows, batch_size=bs)
        return img, embed_batches(recipes, rows, batch_size=bs)

    def evaluate(self, model: nn.Module, split: str) -> dict:
        from xmodal.metrics.galleries import drawn_galleries

        ev = self.config.eval
        img, rec = self.embed_split(model, split)
        out: dict = drawn_galleries(
            img, rec, sizes=ev.sizes, draws=ev.draws, seed=self.config.seed,
            prefixes=("im2recipe", "recipe2im"),
        )  # fmt: skip
        out["n_recipes"] = len(img)
        out["draws"] = ev.draws
        if model.classifier is not None:
            labels, dev = self.encoded(split).labels, self.model_device(model)
            with torch.no_grad():
                for side, emb in (("im", img), ("recipe", rec)):
                    pred = model.classify(emb.to(dev)).argmax(dim=-1).cpu()
                    out[f"{side}_class_acc"] = 100.0 * float((pred == labels).double().mean())
        return out

    def figures(self, model: nn.Module) -> dict:
        """The first ``eval.n_figures`` test images with their top recipes, and the same
        recipes with their top images, in the protocol's first gallery (its own match
        framed)."""
        from xmodal.viz.retrieval import plot_image_to_recipes, plot_recipe_to_images, recipe_text

        n = self.config.eval.n_figures
        if n == 0:
            return {}
        data, img, rec = self._gallery_embeddings(model)
        size = min(len(img), min(self.config.eval.sizes))  # the first 1K: the protocol's gallery
        img, rec, k = img[:size], rec[:size], self.config.eval.top_k
        queries = list(range(min(n, size)))
        source = data.source
        image, recipe = lambda i: source[i]["image"], lambda i: recipe_text(source.recipes[i])

        def rows(query_of, hit_of, ranking) -> list:
            return [(query_of(q), [(hit_of(j), f"#{j} {s:.2f}", j == q) for j, s in hits])
                    for q, hits in zip(queries, ranking, strict=True)]  # fmt: skip

        to_recipes = rows(image, recipe, ranked(img[queries] @ rec.T, k))
        to_images = rows(recipe, image, ranked(rec[queries] @ img.T, k))
        return {
            "recipe_test_image_to_recipe": plot_image_to_recipes(to_recipes),
            "recipe_test_recipe_to_image": plot_recipe_to_images(to_images),
        }

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
        from xmodal.viz.figure import save_figure
        from xmodal.viz.retrieval import plot_image_to_recipes, recipe_text

        if not inputs:
            raise ParameterError("predict recipe needs at least one image file")
        # Check every input before the (slow) gallery is embedded.
        queries = [load_image(x, size=self.config.data.image_size) for x in inputs]
        data, _, rec = self._gallery_embeddings(model)
        recipes = data.source.recipes
        records = []
        for n, (x, q) in enumerate(zip(inputs, queries, strict=True)):
            (top,) = ranked(self.embed_images(model, q[None]) @ rec.T, self.config.eval.top_k)
            hits = [{"recipe": f"test/{j}", "index": j, "id": recipes[j]["id"],
                     "title": recipes[j]["title"], "dish": recipes[j]["dish"],
                     "score": round(s, 4)} for j, s in top]  # fmt: skip
            shown = [(recipe_text(recipes[h["index"]]), f"{h['recipe']} {h['score']:.2f}", False)
                     for h in hits]  # fmt: skip
            path = Path(out_dir) / f"{Path(x).stem}-{n}_top_recipes.png"
            save_figure(plot_image_to_recipes([(q, shown)]), path)
            text = " | ".join(f"{h['title']} ({h['score']:.2f})" for h in hits)
            records.append({"input": x, "kind": "image", "results": hits, "text": text,
                            "files": [str(path)]})  # fmt: skip
        return records
