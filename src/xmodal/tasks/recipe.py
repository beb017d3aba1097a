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
import os
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
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
    "EncodedRecipes",
    "RecipeConfig",
    "RecipeDataConfig",
    "RecipeEvalConfig",
    "RecipeModelConfig",
    "RecipeOptimConfig",
    "RecipeTask",
    "WorldRecipes",
    "collate_recipes",
    "encode_recipe",
]

DATA = ("world", "recipe1m")
# retrieval_metrics' image→text / text→image keys, renamed for recipes.
_DIRECTIONS = {"i2t_": "im2recipe_", "t2i_": "recipe2im_"}


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
class RecipeDataConfig:
    """Where the recipes come from.

    ``name=world``: the world's recipes, ``train_size`` / ``val_size`` / ``test_size`` per
    split, generated once and kept in memory (``test_size >= 10000`` adds the 10K
    protocol). ``name=recipe1m``: ``root`` is a Recipe1M-like folder; every recipe with an
    image of each partition is used (the sizes apply to the world only). Recipes longer
    than the caps are cut: ``max_ingredient_words`` over all ingredient lines,
    ``max_sentences`` instructions of ``max_sentence_words`` words each.
    """

    name: str = "world"
    root: str | None = None
    world_seed: int = 0
    image_size: int = 64
    train_size: int = 10_000
    val_size: int = 500
    test_size: int = 2_000
    max_ingredient_words: int = 64
    max_sentences: int = 16
    max_sentence_words: int = 32
    min_freq: int = 1
    batch_size: int = 64
    num_workers: int = 0  # the world's recipes are in memory already

    def __post_init__(self) -> None:
        check_choice(self.name, "data.name", DATA)
        sizes = ("image_size", "train_size", "val_size", "test_size", "batch_size", "min_freq")
        caps = ("max_ingredient_words", "max_sentences", "max_sentence_words")
        for key in sizes + caps:
            check_positive_int(getattr(self, key), f"data.{key}")
        check_positive_int(self.num_workers, "data.num_workers", minimum=0)
        if self.name == "recipe1m" and self.root is None:
            raise ParameterError(
                "data.name=recipe1m needs data.root (the folder with layer1.json, "
                "layer2.json and images/). Found: root=None"
            )


@dataclass
class RecipeOptimConfig(AdamConfig):
    """Adam with a linear warm-up and a cosine decay to ``min_lr_ratio * lr``."""


@dataclass
class RecipeEvalConfig:
    """The retrieval protocol: ``draws`` random galleries of each size in ``sizes`` (a size
    over the test split's is skipped; a split under the smallest size is scored whole);
    ``top_k`` results shown per query by figures and predict."""

    batch_size: int = 250
    sizes: tuple[int, ...] = (1000, 10000)
    draws: int = 10
    top_k: int = 3
    n_figures: int = 4  # test queries shown with their top results, each direction

    def __post_init__(self) -> None:
        check_positive_int(self.batch_size, "eval.batch_size")
        if not self.sizes:
            raise ParameterError("eval.sizes must name at least one gallery size. Found: ()")
        for i, s in enumerate(self.sizes):
            check_positive_int(s, f"eval.sizes[{i}]", minimum=2)
        check_positive_int(self.draws, "eval.draws")
        check_positive_int(self.top_k, "eval.top_k")
        check_positive_int(self.n_figures, "eval.n_figures", minimum=0)


def _default_trainer() -> TrainerConfig:
    return TrainerConfig(max_epochs=24, gradient_clip_val=2.0)


@dataclass
class RecipeConfig:
    seed: int = 0
    model: RecipeModelConfig = field(default_factory=RecipeModelConfig)
    data: RecipeDataConfig = field(default_factory=RecipeDataConfig)
    optim: RecipeOptimConfig = field(default_factory=RecipeOptimConfig)
    eval: RecipeEvalConfig = field(default_factory=RecipeEvalConfig)
    trainer: TrainerConfig = field(default_factory=_default_trainer)


# ----------------------------------------------------------------------------- data


class WorldRecipes(Dataset):
    """The world's recipes ``0 .. size - 1`` of ``split``, drawn once and kept in memory
    (a recipe costs ~2 ms to draw, an epoch would redraw all of them).

    Items as :class:`~xmodal.data.recipe1m.Recipe1M`'s: ``image`` (3, H, W) uint8,
    ``title``, ``ingredients``, ``instructions``, ``dish``, ``id`` (the exporter's
    ``world_{split}_{index:06d}``), ``index``.
    """

    def __init__(self, world, split: str, size: int) -> None:
        from xmodal.world.recipes import DISHES

        size = check_positive_int(size, "size")
        drawn = [world.recipe(split, i) for i in range(size)]
        self.images = torch.stack([r.image for r in drawn])  # (N, 3, H, W) uint8
        self._recipes = [
            {"id": f"world_{split}_{i:06d}", "title": r.title, "ingredients": list(r.ingredients),
             "instructions": list(r.instructions), "dish": r.dish}
            for i, r in enumerate(drawn)
        ]  # fmt: skip
        self.class_names: tuple[str, ...] = tuple(DISHES)

    def __len__(self) -> int:
        return len(self._recipes)

    def __getitem__(self, i: int) -> dict:
        r = self._recipes[i]
        return {"image": self.images[i], **r, "index": i}

    @property
    def recipes(self) -> list[dict]:
        return [dict(r) for r in self._recipes]


def encode_recipe(
    vocab: Vocabulary,
    recipe: dict,
    *,
    max_ingredient_words: int = 64,
    max_sentences: int = 16,
    max_sentence_words: int = 32,
) -> tuple[list[int], list[list[int]]]:
    """A recipe's ``(ingredient ids, [sentence ids, ...])``: the words of all ingredient
    lines in order, and each instruction's words (no <bos>/<eos>; a sentence without a
    word is dropped), cut to the caps. Raises DataError naming the recipe when nothing is
    left of its ingredients or of its instructions."""
    rid = recipe.get("id", recipe.get("title"))
    ingredients = [i for line in recipe["ingredients"]
                   for i in vocab.encode(line, add_bos=False, add_eos=False)]  # fmt: skip
    if not ingredients:
        raise DataError(f"recipe {rid!r}: its ingredients have no words: {recipe['ingredients']!r}")
    sentences = [vocab.encode(s, add_bos=False, add_eos=False)[:max_sentence_words]
                 for s in recipe["instructions"]]  # fmt: skip
    sentences = [s for s in sentences if s][:max_sentences]
    if not sentences:
        raise DataError(
            f"recipe {rid!r}: its instructions have no words: {recipe['instructions']!r}"
        )
    return ingredients[:max_ingredient_words], sentences


class EncodedRecipes(Dataset):
    """A recipe source (:class:`WorldRecipes` or :class:`~xmodal.data.recipe1m.Recipe1M`)
    with its text encoded once: items ``image``, ``ingredients`` LongTensor,
    ``instructions`` list of LongTensors, ``label`` (the dish's index in ``class_names``,
    -1 without classes), ``index``."""

    def __init__(self, source, vocab: Vocabulary, class_names, *, max_ingredient_words: int,
                 max_sentences: int, max_sentence_words: int) -> None:  # fmt: skip
        self.source = source
        index = {c: k for k, c in enumerate(class_names or ())}
        self._text, self._labels = [], []
        for r in source.recipes:
            ingr, sents = encode_recipe(
                vocab, r, max_ingredient_words=max_ingredient_words,
                max_sentences=max_sentences, max_sentence_words=max_sentence_words,
            )  # fmt: skip
            self._text.append((torch.tensor(ingr), [torch.tensor(s) for s in sents]))
            if class_names and r["dish"] not in index:
                raise DataError(f"recipe {r['id']!r}: unknown dish class {r['dish']!r}")
            self._labels.append(index[r["dish"]] if class_names else -1)

    def __len__(self) -> int:
        return len(self._text)

    def __getitem__(self, i: int) -> dict:
        ingr, sents = self._text[i]
        return {"image": self.source[i]["image"], "ingredients": ingr, "instructions": sents,
                "label": self._labels[i], "index": i}  # fmt: skip

    def text_batch(self, rows: Sequence[int]) -> dict:
        """The recipe tensors of ``rows`` as :func:`collate_recipes` gives them (no image)."""
        items = [{"ingredients": self._text[i][0], "instructions": self._text[i][1],
                  "label": self._labels[i], "index": i} for i in rows]  # fmt: skip
        return collate_recipes(items)

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor(self._labels)


def collate_recipes(items: list[dict]) -> dict:
    """``image`` (B, 3, H, W) when the items have one; ``ingredients`` (B, Li) padded and
    ``ingredient_lengths`` (B,); ``instructions`` (B, S, W) padded, ``n_sentences`` (B,),
    ``sentence_lengths`` (B, S) (0 for the padding sentences); ``label``, ``index`` (B,)."""
    b = len(items)
    ingr = [it["ingredients"] for it in items]
    s = max(len(it["instructions"]) for it in items)
    w = max(len(t) for it in items for t in it["instructions"])
    instructions = torch.full((b, s, w), PAD_ID, dtype=torch.long)
    sentence_lengths = torch.zeros(b, s, dtype=torch.long)
    for k, it in enumerate(items):
        for j, t in enumerate(it["instructions"]):
            instructions[k, j, : len(t)] = t
            sentence_lengths[k, j] = len(t)
    batch = {
        "ingredients": nn.utils.rnn.pad_sequence(ingr, batch_first=True, padding_value=PAD_ID),
        "ingredient_lengths": torch.tensor([len(t) for t in ingr]),
        "instructions": instructions,
        "n_sentences": torch.tensor([len(it["instructions"]) for it in items]),
        "sentence_lengths": sentence_lengths,
        "label": torch.tensor([it["label"] for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
    }
    if "image" in items[0]:
        batch["image"] = torch.stack([it["image"] for it in items])
    return batch


_RECIPE_KEYS = ("ingredients", "ingredient_lengths", "instructions", "n_sentences",
                "sentence_lengths")  # fmt: skip


def _write_json_atomic(path: Path, data) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        self._sources: dict[str, Dataset] = {}
        self._encoded: dict[str, EncodedRecipes] = {}
        self._word_init: torch.Tensor | None = None
        self._epoch = 0
        self._gallery: tuple | None = None  # predict: (encoded test set, img emb, rec emb)

    # ------------------------------------------------------------------ data

    def source(self, split: str) -> Dataset:
        """The recipes of ``split``: items with ``image``, ``title``, ``ingredients``,
        ``instructions``, ``dish``, ``id``, ``index``; ``.recipes`` their text alone."""
        if split not in self._sources:
            d = self.config.data
            if d.name == "world":
                size = {"train": d.train_size, "val": d.val_size}.get(split, d.test_size)
                self._sources[split] = WorldRecipes(self.world, split, size)
            else:
                from xmodal.data.recipe1m import Recipe1M

                ds = Recipe1M(d.root, split, image_size=d.image_size)
                if len(ds) == 0:
                    raise DataError(f"data.root={d.root!r} has no {split} recipe with an image")
                self._sources[split] = ds
        return self._sources[split]

    def encoded(self, split: str) -> EncodedRecipes:
        if split not in self._encoded:
            d = self.config.data
            self._encoded[split] = EncodedRecipes(
                self.source(split), self.vocab, self.class_names,
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
            train = self.source("train")
            texts = [t for r in train.recipes for t in (*r["ingredients"], *r["instructions"])]
            self.vocab = Vocabulary.build(texts, min_freq=self.config.data.min_freq)
            self.class_names = train.class_names
            if self.config.model.semantic_weight > 0 and not self.class_names:
                raise DataError(
                    f"data.root={self.config.data.root!r} has no classes.json, which the "
                    "semantic regularisation needs: add it or set model.semantic_weight=0"
                )
            self.vocab.save(vocab_path)
            _write_json_atomic(classes_path, list(self.class_names or ()))
            self._word_init = self._word_vectors() if self.config.model.word2vec else None
        else:
            for path in (vocab_path, classes_path):
                if not path.is_file():
                    raise DataError(f"run folder {str(run_dir)!r} has no {path.name}")
            self.vocab = Vocabulary.load(vocab_path)
            self.class_names = tuple(json.loads(classes_path.read_text())) or None

    def _word_vectors(self) -> torch.Tensor:
        """The ``(V, E)`` embedding weight from ``model.word2vec`` for this vocabulary."""
        from xmodal.text.word2vec import model_word_init

        m = self.config.model
        weight, found = model_word_init(
            self.vocab, m.word2vec, m.word_dim, dim_key="model.word_dim"
        )
        return weight

    def train_dataloader(self) -> DataLoader:
        d = self.config.data
        n = len(self.encoded("train"))
        if n < d.batch_size * world_size():
            raise ParameterError(
                f"data.batch_size={d.batch_size} is more than the {n} training recipes "
                f"(per process): an epoch would have no full batch"
            )
        return seeded_loader(
            self.encoded("train"),
            batch_size=d.batch_size,
            shuffle=True,
            seed=self.config.seed,
            num_workers=d.num_workers,
            collate_fn=collate_recipes,
            drop_last=True,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.encoded("val"),
            batch_size=min(100, len(self.encoded("val"))),
            shuffle=False,
            collate_fn=collate_recipes,
        )

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
        return Im2Recipe(
            len(self.vocab),
            n_classes=self.n_classes,
            encoder=m.encoder,
            encoder_kwargs={"channels": m.channels} if m.encoder == "small-cnn" else {},
            embed_dim=m.embed_dim,
            word_dim=m.word_dim,
            ingredient_hidden=m.ingredient_hidden,
            sentence_hidden=m.sentence_hidden,
            instruction_hidden=m.instruction_hidden,
            batch_norm=m.batch_norm,
            word_init=self._word_init,  # training only: eval and predict load the weights
            logit_scale_init=1.0 / m.temperature,
        )

    def _total_steps(self) -> int:
        per_epoch = len(self.encoded("train")) // (self.config.data.batch_size * world_size())
        return planned_steps(self.config.trainer, per_epoch)

    def configure_optimizers(self, model: nn.Module):
        return self.config.optim.configure(model.parameters(), self._total_steps())

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
        rec = model.embed_recipes(*(batch[k] for k in _RECIPE_KEYS))  # (B, D)
        semantic = {}
        if model.classifier is not None:
            labels = batch["label"]
            semantic = dict(img_logits=model.classify(img), rec_logits=model.classify(rec),
                            img_labels=labels, rec_labels=labels)  # fmt: skip
        w = m.semantic_weight if semantic else 0.0
        if m.loss == "infonce":
            loss, parts = im2recipe_loss(
                img, rec, logit_scale=model.logit_scale(), semantic_weight=w, **semantic
            )
            return loss, {**parts, "logit_scale": float(model.logit_scale().detach())}
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

    @torch.no_grad()
    def embed_images(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` → ``(N, D)`` unit vectors (on the CPU), in batches."""
        model.eval()
        bs, device = self.config.eval.batch_size, self.model_device(model)
        return torch.cat([model.embed_images(images[s : s + bs].to(device)).cpu()
                          for s in range(0, len(images), bs)])  # fmt: skip

    @torch.no_grad()
    def embed_split(self, model: nn.Module, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image and every recipe of ``split`` → ``(img (N, D), rec (N, D))``."""
        model.eval()
        data = self.encoded(split)
        bs, device = self.config.eval.batch_size, self.model_device(model)
        img, rec = [], []
        for s in range(0, len(data), bs):
            rows = range(s, min(s + bs, len(data)))
            batch = data.text_batch(rows)
            rec.append(model.embed_recipes(*(batch[k].to(device) for k in _RECIPE_KEYS)).cpu())
            images = torch.stack([data.source[i]["image"] for i in rows])
            img.append(model.embed_images(images.to(device)).cpu())
        return torch.cat(img), torch.cat(rec)

    def evaluate(self, model: nn.Module, split: str) -> dict:
        from xmodal.metrics.retrieval import retrieval_metrics

        ev = self.config.eval
        img, rec = self.embed_split(model, split)
        n = len(img)
        out: dict = {}
        for size in sorted({s for s in ev.sizes if s <= n} or {n}):
            rng = np.random.default_rng([self.config.seed, size])
            draws = []
            for _ in range(ev.draws):
                idx = torch.from_numpy(np.sort(rng.choice(n, size=size, replace=False)))
                draws.append(retrieval_metrics(img[idx] @ rec[idx].T, torch.arange(size)))
            mean = {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}
            out[_size_key(size)] = {_rename(k): v for k, v in mean.items()}
        out["n_recipes"] = n
        out["draws"] = ev.draws
        if model.classifier is not None:
            labels = self.encoded(split).labels
            with torch.no_grad():
                dev = self.model_device(model)
                for side, emb in (("im", img), ("recipe", rec)):
                    pred = model.classify(emb.to(dev)).argmax(dim=-1).cpu()
                    out[f"{side}_class_acc"] = 100.0 * float((pred == labels).double().mean())
        return out

    def figures(self, model: nn.Module, out_dir: Path) -> list[Path]:
        n = self.config.eval.n_figures
        if n == 0:
            return []
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        data, img, rec = self._gallery_embeddings(model)
        size = min(len(img), min(self.config.eval.sizes))  # the first 1K: the protocol's gallery
        img, rec = img[:size], rec[:size]
        queries = range(min(n, size))
        k = min(self.config.eval.top_k, size)
        recipes = data.source.recipes
        image = lambda i: data.source[i]["image"]  # noqa: E731
        sims = img[list(queries)] @ rec.T  # (n, size): image → recipe
        top = sims.topk(k, dim=1)
        rows = [(image(q), [(_recipe_text(recipes[j]), f"#{j} {s:.2f}", j == q)
                            for j, s in zip(idx.tolist(), sc.tolist(), strict=True)])
                for q, idx, sc in zip(queries, top.indices, top.values, strict=True)]  # fmt: skip
        first = out_dir / "recipe_test_image_to_recipe.png"
        _save_image_to_recipes(rows, first)
        sims = rec[list(queries)] @ img.T  # (n, size): recipe → image
        top = sims.topk(k, dim=1)
        rows = [(_recipe_text(recipes[q]),
                 [(image(j), f"#{j} {s:.2f}", j == q)
                  for j, s in zip(idx.tolist(), sc.tolist(), strict=True)])
                for q, idx, sc in zip(queries, top.indices, top.values, strict=True)]  # fmt: skip
        second = out_dir / "recipe_test_recipe_to_image.png"
        _save_recipe_to_images(rows, second)
        return [first, second]

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
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        data, _, rec = self._gallery_embeddings(model)
        recipes = data.source.recipes
        k = min(self.config.eval.top_k, len(rec))
        records, used = [], set()
        for n, (x, q) in enumerate(zip(inputs, queries, strict=True)):
            top = (self.embed_images(model, q[None]) @ rec.T)[0].topk(k)
            pairs = zip(top.indices.tolist(), top.values.tolist(), strict=True)
            hits = [{"recipe": f"test/{j}", "index": j, "id": recipes[j]["id"],
                     "title": recipes[j]["title"], "dish": recipes[j]["dish"],
                     "score": round(s, 4)} for j, s in pairs]  # fmt: skip
            stem = Path(x).stem + f"-{n}"
            while stem in used:
                stem += "_"
            used.add(stem)
            path = out_dir / f"{stem}_top_recipes.png"
            _save_image_to_recipes(
                [(q, [(_recipe_text(recipes[h["index"]]), f"{h['recipe']} {h['score']:.2f}", False)
                      for h in hits])], path,
            )  # fmt: skip
            text = " | ".join(f"{h['title']} ({h['score']:.2f})" for h in hits)
            records.append({"input": x, "kind": "image", "results": hits, "text": text,
                            "files": [str(path)]})  # fmt: skip
        return records


def _size_key(size: int) -> str:
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def _rename(key: str) -> str:
    for old, new in _DIRECTIONS.items():
        if key.startswith(old):
            return new + key[len(old) :]
    return key


def _recipe_text(recipe: dict, *, lines: int = 3, width: int = 34) -> str:
    """A recipe's title, ingredients and first instructions, wrapped for a figure panel."""
    body = [recipe["title"].upper(), ", ".join(recipe["ingredients"])]
    body += recipe["instructions"][:lines]
    if len(recipe["instructions"]) > lines:
        body.append("...")
    return "\n".join(textwrap.fill(t, width=width, max_lines=3, placeholder=" ...") for t in body)


def _show_image(ax, image: torch.Tensor, label: str | None = None, mark: bool = False) -> None:
    image = image.float() / 255 if image.dtype == torch.uint8 else image
    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_xticks([])
    ax.set_yticks([])
    if label is not None:
        ax.set_xlabel(label, fontsize=7)
    if mark:
        for spine in ax.spines.values():
            spine.set_edgecolor("limegreen")
            spine.set_linewidth(3)


def _show_text(ax, text: str, label: str | None = None, mark: bool = False) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.03, 0.97, text, va="top", ha="left", fontsize=6, transform=ax.transAxes)
    if label is not None:
        ax.set_xlabel(label, fontsize=7)
    for spine in ax.spines.values():
        spine.set_edgecolor("limegreen" if mark else "lightgray")
        spine.set_linewidth(3 if mark else 1)


def _figure(rows: int, cols: int, widths):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        rows, cols, figsize=(sum(widths), 2.3 * rows), squeeze=False,
        gridspec_kw={"width_ratios": widths},
    )  # fmt: skip
    return plt, fig, axes


def _save_hits(rows, path: Path, show_query, show_hit, widths: tuple[float, float]) -> None:
    """One row per query: the query (``show_query(ax, query, "query")``), then its hits
    (``show_hit(ax, *hit)``; a green frame marks the query's own match). ``widths``: of
    the query's column and of each hit's."""
    cols = 1 + max(len(r[1]) for r in rows)
    plt, fig, axes = _figure(len(rows), cols, [widths[0]] + [widths[1]] * (cols - 1))
    for r, (query, hits) in enumerate(rows):
        show_query(axes[r][0], query, "query")
        for c in range(1, cols):
            if c - 1 < len(hits):
                show_hit(axes[r][c], *hits[c - 1])
            else:
                axes[r][c].axis("off")
    fig.subplots_adjust(wspace=0.05, hspace=0.3)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def _save_image_to_recipes(rows, path: Path) -> None:
    """One row per query image: the image, then its top recipes."""
    _save_hits(rows, path, _show_image, _show_text, (1.8, 2.6))


def _save_recipe_to_images(rows, path: Path) -> None:
    """One row per query recipe: its text, then its top images."""
    _save_hits(rows, path, _show_text, _show_image, (2.6, 1.8))
