"""The ``retrieval`` task: an image–text joint embedding trained and scored by the engine.

Data: the world or a Karpathy-style ``dataset_*.json`` with its image folder
(``data.name=karpathy``). A step embeds ``data.batch_size`` images once with
``data.captions_per_step`` of their captions each; the vocabulary is saved as ``vocab.json``.

Metrics: VSE++'s 1K protocol on the test images with all their captions (R@1/5/10, median
and mean rank both ways, rsum), ``duplicate_captions``, and on the world embedding
arithmetic and word ↔ image tags. Predict searches the test split or a saved FAISS index
(``xmodal retrieval index``). docs/retrieval.md has the details and the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from xmodal._checks import check_choice
from xmodal.data.captions import CaptionedImages, caption_rows, collate_captioned, image_captions
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
from xmodal.engine.options import option
from xmodal.engine.schedule import AdamConfig
from xmodal.engine.task import Task
from xmodal.errors import DataError, ParameterError
from xmodal.matching.gallery import Embedder, ranked
from xmodal.matching.steps import JOINT_LOSSES, check_temperature, joint_embedding_step
from xmodal.tasks._backbone import backbone_upstream, encoder_groups, start_encoder
from xmodal.text.vocab import Vocabulary
from xmodal.vision.encoders import width_kwargs

__all__ = [
    "RetrievalConfig",
    "RetrievalDataConfig",
    "RetrievalEvalConfig",
    "RetrievalModelConfig",
    "RetrievalOptimConfig",
    "RetrievalTask",
]

# The model fields JointEmbedding does not take (it takes the others under their names).
NOT_MODEL_KEYS = ("channels", "loss", "margin", "temperature", "word2vec", "backbone")


@dataclass
class RetrievalModelConfig(Section):
    """The joint embedding. ``loss``: ``infonce`` (symmetric, learned temperature; the
    default: it learns fastest from scratch, docs/retrieval.md), ``vse++`` (hinge, hardest
    negative) or ``triplet`` (hinge summed over negatives)."""

    key: ClassVar[str] = "model"

    encoder: str = "small-cnn"
    channels: int = integer(128)  # small-cnn width (ignored by the ResNets)
    # The image's vector: "attention" (CLIP's attention pooling, image_heads heads: it keeps
    # where things are and what goes with what; docs/retrieval.md), or "mean" over the map.
    image_pooling: str = choice("attention", ("mean", "attention", "flatten"))
    image_heads: int = integer(8)
    # Transformer blocks over the map's locations before the pooling (0: none).
    image_layers: int = integer(0, minimum=0)
    embed_dim: int = integer(256)
    word_dim: int = integer(128)
    # The text side: "gru" (hidden, bidirectional) or "transformer" (text_layers pre-LN
    # blocks of text_heads heads, text_width wide (None: word_dim), no causal mask).
    text_encoder: str = choice("gru", ("gru", "transformer"))
    hidden: int = integer(256)
    bidirectional: bool = flag(True)
    text_layers: int = integer(2)
    text_heads: int = integer(4)
    text_width: int | None = integer(None, optional=True)
    text_dropout: float = fraction(0.1)
    pooling: str = "mean"  # gru: "mean" or "last"; transformer: "mean" or "first"
    loss: str = choice("infonce", JOINT_LOSSES)
    margin: float = number(0.2)
    temperature: float = 0.07  # InfoNCE's starting temperature (learned)
    # A word2vec directory whose vectors initialise the word embedding for training;
    # word_dim must be their dimension.
    word2vec: str | None = None
    # The encoder's starting weights: a `backbone` run (`default`: the defaults' run,
    # trained once into the cache; or its folder), whose encoder and channels must be
    # these; null: random (then set optim.encoder_lr=null to train it at optim.lr).
    backbone: str | None = "default"

    def __post_init__(self) -> None:
        super().__post_init__()
        poolings = ("mean", "last") if self.text_encoder == "gru" else ("mean", "first")
        check_choice(self.pooling, "model.pooling", poolings)
        check_temperature(self.temperature, "model.temperature")


@dataclass
class RetrievalDataConfig(ImageDataConfig):
    """Images with all their captions. ``name=world``: ``train_size`` / ``val_size`` /
    ``test_size`` scenes (1000: the 1K protocol). ``name=karpathy``: ``json``, a Karpathy
    ``dataset_*.json``, and ``root``, the folder of its images (its own split sizes; a
    test split of a multiple of 1000 over 1000 images is scored in 1K folds)."""

    sources: ClassVar[tuple[str, ...]] = ("world", "karpathy")

    json: str | None = None
    root: str | None = None
    batch_size: int = 128  # images per step
    max_len: int = integer(32, minimum=3)  # tokens per caption, <bos> and <eos> included
    captions_per_step: int = integer(5)  # captions of each image in a training step
    min_freq: int = integer(1)
    # The world only: each training caption's near miss (one word changed so that it is
    # false of the image: a relation reversed, a count, colour or shape changed) as another
    # negative text of every image, as NegCLIP trains. Off by default: it teaches counts,
    # not relations, and costs a step 12% more (docs/retrieval.md).
    hard_negatives: bool = flag(False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hard_negatives and self.name != "world":
            raise ParameterError(
                "data.hard_negatives=true needs the world (its parser checks that each near "
                f"miss is false); data.name={self.name!r} has no such check"
            )
        if self.name == "karpathy":
            from xmodal.data.karpathy import check_karpathy_config

            check_karpathy_config(self.json, self.root)


@dataclass
class RetrievalOptimConfig(AdamConfig):
    """Adam with a linear warm-up and a cosine decay to ``min_lr_ratio * lr``;
    ``encoder_lr``: the encoder's (null: ``lr``; 0: frozen); the pretrained backbone is
    fine-tuned gently."""

    encoder_lr: float | None = number(3e-4, optional=True)


@dataclass
class RetrievalEvalConfig(EvalConfig):
    """Evaluation, figures (``n_figures`` test captions) and predict: ``top_k`` hits each."""

    top_k: int = integer(5)


@dataclass
class RetrievalConfig(TaskConfig):
    model: RetrievalModelConfig = field(default_factory=RetrievalModelConfig)
    data: RetrievalDataConfig = field(default_factory=RetrievalDataConfig)
    optim: RetrievalOptimConfig = field(default_factory=RetrievalOptimConfig)
    eval: RetrievalEvalConfig = field(default_factory=RetrievalEvalConfig)
    # 780 steps: about 9 minutes on 2 CPU cores (0.67 s a step).
    trainer: TrainerConfig = trainer_defaults(max_epochs=10, gradient_clip_val=2.0)


# ----------------------------------------------------------------------------- the task


class RetrievalTask(Task):
    """Image–text retrieval (matching) with a joint embedding: VSE, VSE++ or InfoNCE."""

    name = "retrieval"
    family = "matching"
    summary = "Image-text retrieval: joint embedding (VSE++ hinge, triplet or InfoNCE)"
    Config = RetrievalConfig
    upstream = (backbone_upstream(),)

    @dataclass
    class PredictOptions:
        """Queries repeat (``--text a --text b``); docs/retrieval.md shows them."""

        text: list[str] | None = option(None, "a text query: its top images (a word: a tag query)")
        image: list[str] | None = option(
            None, "an image query: its top captions (--minus/--plus: images)", metavar="FILE"
        )
        minus: list[str] | None = option(
            None, "embedding arithmetic: subtract the word from each --image", metavar="WORD"
        )
        plus: list[str] | None = option(
            None, "embedding arithmetic: add the word to each --image", metavar="WORD"
        )
        tags: bool = option(False, "also give each image query's top words (image → tags)")
        index: str | None = option(
            None, "search this `xmodal retrieval index` instead of the test split", metavar="DIR"
        )
        top_k: int | None = option(
            None, "results per query (default: eval.top_k)", flags=("-k",), metavar="K"
        )

    def __init__(self, config: RetrievalConfig) -> None:
        super().__init__(config)
        self.vocab: Vocabulary | None = None
        self._word_init: torch.Tensor | None = None
        self._epoch = 0
        self._captions: dict[str, list[list[str]]] = {}
        self._fitting = False  # setup("fit") was called: build_model loads model.backbone

    # ------------------------------------------------------------------ data

    def world_data(self, split: str) -> Dataset:
        """The world's captioning view: items with ``image``, ``captions``, ``index``, and
        in the training split the captions' ``near_misses`` (``data.hard_negatives``)."""
        from xmodal.world.datasets import make_dataset

        d = self.config.data
        near = split == "train" and d.hard_negatives
        return make_dataset(self.world, "captioning", split, size=d.size(split), near_misses=near)

    def karpathy_data(self, split: str) -> Dataset:
        from xmodal.data.karpathy import KarpathyCaptions

        d = self.config.data
        return KarpathyCaptions(d.json, d.root, split, image_size=d.image_size)

    def captions(self, split: str) -> list[list[str]]:
        """The captions of each image of ``split`` (no image is rendered)."""
        if split not in self._captions:
            self._captions[split] = image_captions(self.data(split), self.world)
        return self._captions[split]

    def artifacts(self) -> list[str]:
        return ["vocab.json"]

    def setup(self, run_dir: Path, stage: str) -> None:
        path = Path(run_dir) / "vocab.json"
        self._fitting = stage == "fit"
        # A run saved before the backbone and the attention pooling (resumed or evaluated)
        # had a random encoder at the one learning rate, and the mean.
        older_run_values(run_dir, self.config.model, backbone=None, image_pooling="mean")
        older_run_values(run_dir, self.config.optim, encoder_lr=None)
        if stage == "fit":
            from xmodal.text.word2vec import model_word_init

            texts = [c for cs in self.captions("train") for c in cs]
            self.vocab = Vocabulary.build(texts, min_freq=self.config.data.min_freq)
            self.vocab.save(path)
            m = self.config.model
            if m.word2vec:
                self._word_init = model_word_init(self.vocab, m.word2vec, m.word_dim)[0]
        else:
            if not path.is_file():
                raise DataError(f"run folder {str(run_dir)!r} has no vocab.json")
            self.vocab = Vocabulary.load(path)

    def _sets(self, split: str) -> CaptionedImages:
        return CaptionedImages(self.data(split), self.vocab, max_len=self.config.data.max_len)

    def train_dataloader(self) -> DataLoader:
        return self.train_loader(self._sets("train"), collate_fn=collate_captioned, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        size = min(100, self.config.data.val_size)
        return DataLoader(self._sets("val"), size, shuffle=False, collate_fn=collate_captioned)

    def on_train_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch

    # ------------------------------------------------------------------ model

    def build_model(self) -> nn.Module:
        from xmodal.matching.joint import JointEmbedding

        m = self.config.model
        model = JointEmbedding(
            len(self.vocab),
            encoder_kwargs=width_kwargs(m.encoder, m.channels),
            text_max_len=self.config.data.max_len,
            word_init=self._word_init,  # training only: eval and predict load the weights
            logit_scale_init=1.0 / m.temperature,
            image_size=self.config.data.image_size,
            **{k: v for k, v in vars(m).items() if k not in NOT_MODEL_KEYS},
        )
        start_encoder(self, model.encoder, fitting=self._fitting)
        return model

    def configure_optimizers(self, model: nn.Module):
        groups = encoder_groups(model, model.encoder, self.config.optim.encoder_lr)
        return self.config.optim.configure(groups, self.total_steps())

    def _rows(self, batch, k: int | None) -> torch.Tensor:
        """Caption rows a step uses (:func:`~xmodal.data.captions.caption_rows`)."""
        n = batch["tokens"].shape[0] // len(batch["index"])
        index = batch["index"].tolist()
        return caption_rows(index, n, k, seed=self.config.seed, epoch=self._epoch)

    def _loss(
        self, model, batch, k: int | None, hard_negatives: bool = False
    ) -> tuple[torch.Tensor, dict[str, float]]:
        m, rows = self.config.model, self._rows(batch, k)
        return joint_embedding_step(model, batch, rows, loss=m.loss, margin=m.margin,
                                    hard_negatives=hard_negatives)  # fmt: skip

    def training_step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        if self.config.optim.encoder_lr == 0:
            model.encoder.eval()  # frozen: its batch-norm statistics too
        d = self.config.data
        return self._loss(model, batch, d.captions_per_step, hard_negatives=d.hard_negatives)

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        loss, _ = self._loss(model, batch, None)
        return {"loss": float(loss)}

    # ------------------------------------------------------------------ inference

    def embedder(self, model: nn.Module) -> Embedder:
        """The model's images and texts → ``(N, D)`` unit vectors (on the CPU), in batches."""
        d, e = self.config.data, self.config.eval
        return Embedder(model, e.batch_size, vocab=self.vocab, max_len=d.max_len)

    def _split_images(self, split: str) -> torch.Tensor:
        images = self.data(split)
        return torch.stack([images[i]["image"] for i in range(len(images))])

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        from xmodal.data.captions import duplicate_captions
        from xmodal.metrics.retrieval import fold_average, retrieval_metrics

        captions, embed = self.captions(split), self.embedder(model)
        texts = [c for cs in captions for c in cs]
        text_image = torch.tensor([i for i, cs in enumerate(captions) for _ in cs])
        img_emb = embed.images(self._split_images(split))
        sims = img_emb @ embed.texts(texts).T
        if len(captions) > 1000 and len(captions) % 1000 == 0:  # COCO 5K: five 1K folds
            metrics = fold_average(sims, text_image, n_folds=len(captions) // 1000)
        else:
            metrics = retrieval_metrics(sims, text_image)
        metrics["duplicate_captions"] = duplicate_captions(captions)
        metrics["n_images"] = len(captions)
        metrics["n_texts"] = len(texts)
        if self.config.data.name == "world":  # what is true, arithmetic and tags
            from xmodal.matching.arithmetic import world_space_metrics
            from xmodal.metrics.retrieval import (
                near_miss_accuracy,
                plausible_retrieval_metrics,
                retrieval_ceiling,
                world_near_misses,
                world_truth,
            )

            truth, _ = world_truth(self.world, split, len(captions))  # scenes 0..n-1
            metrics["plausible"] = plausible_retrieval_metrics(sims, truth)
            metrics["ceiling"] = retrieval_ceiling(truth, text_image)
            image, caption, miss, kind = world_near_misses(self.world, split, len(captions))
            own = img_emb[torch.tensor(image)]
            scores = [(own * embed.texts(texts)).sum(1) for texts in (caption, miss)]
            metrics["near_miss"] = near_miss_accuracy(*scores, kind)
            metrics.update(world_space_metrics(img_emb, self.world, split, embed))
        return metrics

    def figures(self, model: nn.Module) -> dict:
        """The first ``eval.n_figures`` test images' first captions as text queries, each
        with its top test images (its own framed)."""
        from xmodal.viz.retrieval import plot_text_to_images

        n, embed = self.config.eval.n_figures, self.embedder(model)
        if n == 0:
            return {}
        images, captions = self._split_images("test"), self.captions("test")
        queries = [captions[i][0] for i in range(min(n, len(captions)))]
        ranking = ranked(embed.texts(queries) @ embed.images(images).T, self.config.eval.top_k)
        true_of = None
        if self.config.data.name == "world":  # the plausible matches, labelled "true"
            world = self.world

            def true_of(i: int, j: int) -> bool:
                return world.caption_is_true(queries[i], world.scene("test", j, audio=False))

        figure = plot_text_to_images(queries, images, ranking, true_of=true_of)
        return {"retrieval_test_text_to_image": figure}

    # ------------------------------------------------------------------ predict

    def predict(
        self, model: nn.Module, inputs: Sequence[str], out_dir: Path, *, top_k, **queries
    ) -> list[dict]:
        """Search the test split (or the saved ``index``) with each query: ``text``,
        ``image``, ``minus``, ``plus``, ``tags`` and ``index`` are those of
        :func:`~xmodal.matching.gallery.search_queries`."""
        from xmodal.data.images import load_image
        from xmodal.matching.gallery import search_queries

        return search_queries(
            inputs,
            Path(out_dir),
            self.embedder(model),
            read_image=partial(load_image, size=self.config.data.image_size),
            split=lambda: (self._split_images("test"), self.captions("test")),
            k=self.config.eval.top_k if top_k is None else top_k,
            **queries,
        )

    def build_index(self, model, images, out, *, kind="flat", run_dir=None) -> dict:
        """Embed every image under the folder ``images`` into a FAISS index saved to ``out``
        with ``gallery.json`` (:func:`~xmodal.matching.gallery.index_image_folder`)."""
        from xmodal.data.images import load_image
        from xmodal.matching.gallery import index_image_folder

        size = self.config.data.image_size
        run = None if run_dir is None else str(Path(run_dir).resolve())
        return index_image_folder(
            images,
            out,
            embed=self.embedder(model).images,
            read=partial(load_image, size=size),
            kind=kind,
            batch_size=self.config.eval.batch_size,
            meta={"run": run, "image_size": size},
        )
