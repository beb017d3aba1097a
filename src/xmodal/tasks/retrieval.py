"""The ``retrieval`` task: an image–text joint embedding trained and scored by the engine.

Data: the world (``data.name=world``), or a Karpathy-style ``dataset_*.json`` with its
image folder (``data.name=karpathy data.json=... data.root=...``: COCO, Flickr8k/30k,
shared with the caption task). A training step takes ``data.batch_size`` images
with ``data.captions_per_step`` of their captions each (all 5 by default; fewer are drawn
at random per image and epoch, seeded, so a resumed run draws the same); captions of the
same image are never each other's negatives (``image_ids`` of :mod:`xmodal.nn.losses`).
The vocabulary is built from the training captions and saved as ``vocab.json``.

Metrics (``evaluate``): the standard 1K protocol of VSE++ on the test images with all
their captions: image→text and text→image Recall@1/5/10, median and mean rank, rsum; and
``duplicate_captions``, the test captions that are word for word a caption of another
test image (a text query cannot tell those images apart, so they cap text→image R@1). On
the world also the embedding-arithmetic success rate (``image − "circle" + "square"``
finds a square of the same colour among the top 5, :mod:`xmodal.matching.arithmetic`)
and word ↔ image tag retrieval against each image's true colour and shape words.

Search (``predict``): the test split is the gallery, embedded once and searched with FAISS
(:class:`~xmodal.matching.VectorIndex`); ``--index DIR`` searches a persistent index of an
image folder instead (``xmodal retrieval index``).

Example::

    xmodal train retrieval                                # CLIP's symmetric InfoNCE
    xmodal train retrieval model.loss=vse++               # VSE++ (hardest negative)
    xmodal predict retrieval --run runs/retrieval/<id> "a red circle" query.png
    xmodal predict retrieval --run DIR --text "a red circle above a blue star"
    xmodal predict retrieval --run DIR --image img.png --tags
    xmodal predict retrieval --run DIR --image img.png --minus circle --plus square
    xmodal retrieval index --run DIR --images FOLDER --out gallery-index
    xmodal predict retrieval --run DIR --index gallery-index --text "a green star"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from xmodal._checks import check_choice, check_positive_int, check_positive_number
from xmodal.data.captions import (
    CaptionedImages,
    caption_rows,
    collate_captioned,
    duplicate_captions,
)
from xmodal.engine.base import EvalConfig, ImageDataConfig, TaskConfig, trainer_defaults
from xmodal.engine.config import TrainerConfig
from xmodal.engine.options import option
from xmodal.engine.schedule import AdamConfig
from xmodal.engine.task import Task
from xmodal.errors import DataError, ParameterError
from xmodal.matching.gallery import embed_batches, ranked
from xmodal.text.vocab import UNK_ID, Vocabulary, tokenize

__all__ = [
    "RetrievalConfig",
    "RetrievalDataConfig",
    "RetrievalEvalConfig",
    "RetrievalModelConfig",
    "RetrievalOptimConfig",
    "RetrievalTask",
]

LOSSES = ("vse++", "triplet", "infonce")


@dataclass
class RetrievalModelConfig:
    """The joint embedding. ``loss``: ``infonce`` (symmetric, learned temperature; the
    default), ``vse++`` (hinge, hardest negative) or ``triplet`` (hinge summed over
    negatives).

    InfoNCE is the default because it learns fastest from scratch on the world: 3 epochs
    (168 s on 2 CPU cores) gave image→text R@1 28.1% and text→image 12.0%, against 2.1%
    and 0.7% for ``vse++`` (whose hardest negative gives little signal while the
    embeddings are still random, as Faghri et al. note).
    """

    encoder: str = "small-cnn"
    channels: int = 128  # small-cnn width (ignored by the ResNets)
    embed_dim: int = 256
    word_dim: int = 128
    # The text side: "gru" (hidden, bidirectional) or "transformer" (text_layers pre-LN
    # blocks of text_heads heads, text_width wide (None: word_dim), no causal mask).
    text_encoder: str = "gru"
    hidden: int = 256
    bidirectional: bool = True
    text_layers: int = 2
    text_heads: int = 4
    text_width: int | None = None
    text_dropout: float = 0.1
    pooling: str = "mean"  # gru: "mean" or "last"; transformer: "mean" or "first"
    loss: str = "infonce"
    margin: float = 0.2
    temperature: float = 0.07  # InfoNCE's starting temperature (learned)
    # A word2vec directory whose vectors initialise the word embedding for training;
    # word_dim must be their dimension.
    word2vec: str | None = None

    def __post_init__(self) -> None:
        check_choice(self.loss, "model.loss", LOSSES)
        check_choice(self.text_encoder, "model.text_encoder", ("gru", "transformer"))
        poolings = ("mean", "last") if self.text_encoder == "gru" else ("mean", "first")
        check_choice(self.pooling, "model.pooling", poolings)
        for name in ("channels", "embed_dim", "word_dim", "hidden", "text_layers", "text_heads"):
            check_positive_int(getattr(self, name), f"model.{name}")
        if self.text_width is not None:
            check_positive_int(self.text_width, "model.text_width")
        if not 0.0 <= self.text_dropout < 1.0:
            raise ParameterError(
                f"model.text_dropout must be in [0, 1). Found: {self.text_dropout}"
            )
        check_positive_number(self.margin, "model.margin", allow_zero=True)
        check_positive_number(self.temperature, "model.temperature")
        if self.temperature < 0.01:
            raise ParameterError(
                f"model.temperature must be >= 0.01 (a logit scale <= 100). "
                f"Found: {self.temperature}"
            )


@dataclass
class RetrievalDataConfig(ImageDataConfig):
    """Images with all their captions. ``name=world``: the world's scenes,
    ``train_size`` / ``val_size`` / ``test_size`` of them (``test_size=1000`` is the
    standard 1K protocol). ``name=karpathy``: ``json`` is a Karpathy ``dataset_*.json`` and
    ``root`` the folder its image paths are relative to (its splits' sizes are the file's;
    a test split over 1000 images is scored in 1K folds, as COCO 5-fold 1K)."""

    sources: ClassVar[tuple[str, ...]] = ("world", "karpathy")

    json: str | None = None
    root: str | None = None
    batch_size: int = 128  # images per step
    max_len: int = 32  # tokens per caption, <bos> and <eos> included
    captions_per_step: int = 5  # captions of each image in a training step
    min_freq: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int(self.max_len, "data.max_len", minimum=3)
        check_positive_int(self.min_freq, "data.min_freq")
        check_positive_int(self.captions_per_step, "data.captions_per_step")
        if self.name == "karpathy":
            from xmodal.data.karpathy import check_karpathy_config

            check_karpathy_config(self.json, self.root)


@dataclass
class RetrievalOptimConfig(AdamConfig):
    """Adam with a linear warm-up and a cosine decay to ``min_lr_ratio * lr``."""


@dataclass
class RetrievalEvalConfig(EvalConfig):
    """Evaluation, figures (``n_figures`` test captions with their top images) and
    predict: ``top_k`` results per query."""

    top_k: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int(self.top_k, "eval.top_k")


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
    default_data = "world"
    Config = RetrievalConfig

    @dataclass
    class PredictOptions:
        text: list[str] | None = option(
            None, "a text query: its top images (a single word is a tag query); repeatable",
            metavar="TEXT",
        )  # fmt: skip
        image: list[str] | None = option(
            None, "an image query: its top captions (with --minus/--plus: the top images of "
            "the arithmetic); repeatable", metavar="FILE",
        )  # fmt: skip
        minus: list[str] | None = option(
            None, "embedding arithmetic: take the text's vector away from each --image "
            "query's; repeatable", metavar="WORD",
        )  # fmt: skip
        plus: list[str] | None = option(
            None, "embedding arithmetic: add the text's vector; repeatable", metavar="WORD"
        )
        tags: bool = option(False, "also give each image query's top words (image → tags)")
        index: str | None = option(
            None, "search the image index that `xmodal retrieval index` built instead of the "
            "test split", metavar="DIR",
        )  # fmt: skip
        top_k: int | None = option(
            None, "results per query (default: eval.top_k)", flags=("-k",), metavar="K"
        )

    def __init__(self, config: RetrievalConfig) -> None:
        super().__init__(config)
        self.vocab: Vocabulary | None = None
        self._word_init: torch.Tensor | None = None
        self._epoch = 0
        self._scenes: dict[str, tuple] = {}  # world split -> (captions, objects)
        self._gallery: tuple | None = None  # predict: the test split, embedded and indexed

    # ------------------------------------------------------------------ data

    def world_data(self, split: str) -> Dataset:
        """The world's captioning view: items with ``image``, ``captions``, ``index``."""
        from xmodal.world.datasets import make_dataset

        return make_dataset(self.world, "captioning", split, size=self.config.data.size(split))

    def karpathy_data(self, split: str) -> Dataset:
        from xmodal.data.karpathy import KarpathyCaptions

        d = self.config.data
        return KarpathyCaptions(d.json, d.root, split, image_size=d.image_size)

    def _world_scenes(self, split: str) -> tuple[list[list[str]], list[list[tuple[str, str]]]]:
        """Per image of a world split: its captions and its objects' (colour, shape)."""
        if split not in self._scenes:
            world, n = self.world, len(self.data(split))
            scenes = [world.scene(split, i, audio=False, questions=False) for i in range(n)]
            self._scenes[split] = (
                [list(s.captions) for s in scenes],
                [[(o.colour, o.shape) for o in s.objects] for s in scenes],
            )
        return self._scenes[split]

    def captions(self, split: str) -> list[list[str]]:
        """Every caption of every image of ``split`` (no image is rendered)."""
        if self.config.data.name == "karpathy":
            return [list(cs) for cs in self.data(split).captions]
        return self._world_scenes(split)[0]

    def artifacts(self) -> list[str]:
        return ["vocab.json"]

    def setup(self, run_dir: Path, stage: str) -> None:
        path = Path(run_dir) / "vocab.json"
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
        return DataLoader(self._sets("val"), batch_size=min(100, self.config.data.val_size),
                          shuffle=False, collate_fn=collate_captioned)  # fmt: skip

    def on_train_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch

    # ------------------------------------------------------------------ model

    def build_model(self) -> nn.Module:
        from xmodal.matching.joint import JointEmbedding

        m = self.config.model
        text = {k: getattr(m, k) for k in ("hidden", "bidirectional", "pooling", "text_encoder",
                                           "text_layers", "text_heads", "text_width",
                                           "text_dropout")}  # fmt: skip
        return JointEmbedding(
            len(self.vocab), encoder=m.encoder,
            encoder_kwargs={"channels": m.channels} if m.encoder == "small-cnn" else {},
            embed_dim=m.embed_dim, word_dim=m.word_dim, text_max_len=self.config.data.max_len,
            word_init=self._word_init,  # training only: eval and predict load the weights
            logit_scale_init=1.0 / m.temperature, **text,
        )  # fmt: skip

    def _rows(self, batch, k: int | None) -> torch.Tensor:
        """Caption rows a step uses (:func:`~xmodal.data.captions.caption_rows`)."""
        n = batch["tokens"].shape[0] // len(batch["index"])
        index = batch["index"].tolist()
        return caption_rows(index, n, k, seed=self.config.seed, epoch=self._epoch)

    def _loss(self, model, batch, k: int | None) -> tuple[torch.Tensor, dict[str, float]]:
        from xmodal.nn.losses import hinge_triplet_loss, info_nce_loss

        m = self.config.model
        rows = self._rows(batch, k).to(batch["tokens"].device)
        per_image = len(rows) // len(batch["index"])
        img = model.embed_images(batch["image"])  # (B, D): each image encoded once
        txt = model.embed_texts(batch["tokens"][rows], batch["lengths"][rows])  # (B * k, D)
        img = img.repeat_interleave(per_image, dim=0)
        ids = batch["index"].repeat_interleave(per_image)
        if m.loss == "infonce":
            scale = model.logit_scale()
            loss = info_nce_loss(img, txt, scale, image_ids=ids)
            return loss, {"logit_scale": float(scale.detach())}
        hardest = m.loss == "vse++"
        return hinge_triplet_loss(img, txt, margin=m.margin, hardest=hardest, image_ids=ids), {}

    def training_step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        return self._loss(model, batch, self.config.data.captions_per_step)

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        loss, _ = self._loss(model, batch, None)
        return {"loss": float(loss)}

    # ------------------------------------------------------------------ inference

    def embed_images(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` → ``(N, D)`` unit vectors (on the CPU), in batches."""
        model.eval()
        return embed_batches(model.embed_images, images, batch_size=self.config.eval.batch_size,
                             device=self.model_device(model))  # fmt: skip

    def embed_texts(self, model: nn.Module, texts: Sequence[str]) -> torch.Tensor:
        """Texts → ``(N, D)`` unit vectors (on the CPU), in batches."""
        model.eval()
        device, max_len = self.model_device(model), self.config.data.max_len

        def embed(batch: list[str]) -> torch.Tensor:
            tokens, lengths = self.vocab.encode_batch(batch, max_len=max_len, pad=False)
            return model.embed_texts(tokens.to(device), lengths)

        return embed_batches(embed, list(texts), batch_size=self.config.eval.batch_size)

    def _split_images(self, split: str) -> torch.Tensor:
        images = self.data(split)
        return torch.stack([images[i]["image"] for i in range(len(images))])

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        from xmodal.metrics.retrieval import fold_average, retrieval_metrics

        captions = self.captions(split)
        texts = [c for cs in captions for c in cs]
        text_image = torch.tensor([i for i, cs in enumerate(captions) for _ in cs])
        img_emb = self.embed_images(model, self._split_images(split))
        sims = img_emb @ self.embed_texts(model, texts).T
        if len(captions) > 1000 and len(captions) % 1000 == 0:  # COCO 5K: five 1K folds
            metrics = fold_average(sims, text_image, n_folds=len(captions) // 1000)
        else:
            metrics = retrieval_metrics(sims, text_image)
        metrics["duplicate_captions"] = duplicate_captions(captions)
        metrics["n_images"] = len(captions)
        metrics["n_texts"] = len(texts)
        if self.config.data.name == "world":
            metrics.update(self._world_metrics(model, split, img_emb))
        return metrics

    def semantic_ceiling(self, split: str = "test") -> dict[str, float]:
        """:func:`~xmodal.metrics.retrieval.retrieval_ceiling` of a world split: the R@1 of
        a model that knows exactly which test images each caption is true of
        (:meth:`World.caption_is_true`). Slow (every caption against every image: about a
        minute for the 1K test), so not part of :meth:`evaluate`."""
        from xmodal.metrics.retrieval import retrieval_ceiling
        from xmodal.world import language

        if self.config.data.name != "world":
            raise ParameterError("semantic_ceiling needs the world's scenes (data.name=world)")
        world, n = self.world, len(self.data(split))
        scenes = [world.scene(split, i, audio=False, questions=False) for i in range(n)]
        facts = [language.caption_facts(c) for s in scenes for c in s.captions]
        truth = torch.tensor([[language.facts_hold(f, s.objects, s.place, margin=world.margin)
                               for f in facts] for s in scenes])  # fmt: skip
        text_image = torch.tensor([i for i, s in enumerate(scenes) for _ in s.captions])
        return retrieval_ceiling(truth, text_image)

    def _world_metrics(self, model: nn.Module, split: str, img_emb) -> dict[str, float]:
        """Embedding arithmetic (``image − s + s'``, top 5) and tags on a world split."""
        from xmodal.matching.arithmetic import arithmetic_success, tag_metrics
        from xmodal.world.schema import COLOURS, SHAPES

        objects = self._world_scenes(split)[1]
        shapes = [s for s in SHAPES if self.vocab.token_to_id(s) != UNK_ID]
        tags = [w for w in (*COLOURS, *SHAPES) if self.vocab.token_to_id(w) != UNK_ID]
        tag_emb = self.embed_texts(model, tags)
        out = arithmetic_success(
            img_emb, dict(zip(tags, tag_emb, strict=True)), objects, shapes, k=5
        )
        truth = [{w for pair in objs for w in pair} for objs in objects]
        out.update(tag_metrics(img_emb, tag_emb, tags, truth, k=10))
        return out

    def figures(self, model: nn.Module) -> dict:
        """The first ``eval.n_figures`` test images' first captions as text queries, each
        with its top test images (its own framed)."""
        from xmodal.viz.retrieval import plot_ranked_images

        n = self.config.eval.n_figures
        if n == 0:
            return {}
        images, captions = self._split_images("test"), self.captions("test")
        queries = [captions[i][0] for i in range(min(n, len(captions)))]
        sims = self.embed_texts(model, queries) @ self.embed_images(model, images).T
        rows = [(f"{q!r} (test image {i})", [images[j] for j, _ in hits],
                 [f"#{j} {s:.2f}" for j, s in hits], [j == i for j, _ in hits])
                for i, (q, hits) in enumerate(zip(queries, ranked(sims, self.config.eval.top_k),
                                                  strict=True))]  # fmt: skip
        return {"retrieval_test_text_to_image": plot_ranked_images(rows)}

    # ------------------------------------------------------------------ predict

    def _test_gallery(self, model: nn.Module) -> tuple:
        """The test split as the search gallery, ``(ImageGallery, CaptionGallery)``: images
        and captions embedded once per task object and indexed with FAISS (exact)."""
        from xmodal.matching.gallery import CaptionGallery, ImageGallery
        from xmodal.matching.index import VectorIndex

        if self._gallery is None:
            images, captions = self._split_images("test"), self.captions("test")
            texts = [c for cs in captions for c in cs]
            names = [f"test/{i}" for i in range(len(images))]
            self._gallery = (
                ImageGallery(VectorIndex.build(self.embed_images(model, images), names=names),
                             images.__getitem__),
                CaptionGallery(VectorIndex.build(self.embed_texts(model, texts)), texts,
                               [names[i] for i, cs in enumerate(captions) for _ in cs]),
            )  # fmt: skip
        return self._gallery

    def _image_gallery(self, model: nn.Module, index: str | None):
        """The images to search: the test split, or the saved index of ``xmodal retrieval
        index`` (checked to hold the model's vectors)."""
        from xmodal.data.images import load_image
        from xmodal.matching.gallery import open_image_gallery

        if index is None:
            return self._test_gallery(model)[0]
        size = self.config.data.image_size
        read = lambda path: load_image(path, size=size)  # noqa: E731
        return open_image_gallery(index, dim=model.embed_dim, read=read)

    def _query_text(self, text: str) -> str:
        words = tokenize(text)
        if not words:
            raise ParameterError(f"query text {text!r} has no words")
        unknown = [w for w in words if self.vocab.token_to_id(w) == UNK_ID]
        if len(unknown) == len(words):
            raise ParameterError(
                f"query text {text!r}: no word is in the vocabulary "
                f"(out of vocabulary: {', '.join(unknown)})"
            )
        return text

    def _tag_words(self) -> list[str]:
        """The vocabulary's content words, the candidates of image → tags."""
        from xmodal.matching.gallery import tag_words

        return tag_words(self.vocab.itos[len(self.vocab.specials) :])

    def predict(
        self, model: nn.Module, inputs: Sequence[str], out_dir: Path, *, text, image, minus,
        plus, tags, index, top_k,
    ) -> list[dict]:  # fmt: skip
        """Search the gallery (the test split, or ``index``) with each query.

        Each positional input is an image file (its suffix is an image's, or the file
        exists) or else a text; ``text`` and ``image`` add queries of a known kind.

        - text → the top images, shown as a grid (a one-word text is a tag query);
        - image → the top test captions (with ``tags``: also the top content words);
        - image with ``minus`` / ``plus`` words → ``normalize(image − Σ minus + Σ plus)``
          → the top images, shown after the query image.
        """
        from xmodal.data.images import load_image
        from xmodal.matching.arithmetic import embedding_arithmetic
        from xmodal.matching.gallery import is_image_path
        from xmodal.viz.figure import save_figure
        from xmodal.viz.retrieval import plot_query_captions, plot_ranked_images

        queries = [("image" if is_image_path(x) else "text", x) for x in inputs]
        queries += [("text", x) for x in text or []] + [("image", x) for x in image or []]
        if not queries:
            raise ParameterError("predict retrieval needs a text or an image query. Found none")
        minus, plus = list(minus or []), list(plus or [])
        if (minus or plus) and not any(kind == "image" for kind, _ in queries):
            raise ParameterError("--minus and --plus apply to an image query: add --image FILE")
        k = check_positive_int(self.config.eval.top_k if top_k is None else top_k, "top_k")
        # Check every input before the (slow) gallery is embedded.
        size = self.config.data.image_size
        loaded = [load_image(x, size=size) if kind == "image" else self._query_text(x)
                  for kind, x in queries]  # fmt: skip
        terms = [self._query_text(w) for w in minus + plus]
        term_emb = list(self.embed_texts(model, terms)) if terms else []
        gallery = self._image_gallery(model, index)
        tag_words = self._tag_words() if tags else []
        tag_emb = self.embed_texts(model, tag_words) if tag_words else None
        records = []
        for n, ((kind, x), q) in enumerate(zip(queries, loaded, strict=True)):
            stem = ("text" if kind == "text" else Path(x).stem) + f"-{n}"
            if kind == "text":
                vec = self.embed_texts(model, [q])[0]
            else:
                vec = self.embed_images(model, q[None])[0]
            if kind == "image" and (minus or plus):
                vec = embedding_arithmetic(vec, term_emb[: len(minus)], term_emb[len(minus) :])
                x = " ".join([Path(x).name, *(f"- {w}" for w in minus), *(f"+ {w}" for w in plus)])
                kind = "arithmetic"
            if kind == "image":  # → the top test captions
                hits = self._test_gallery(model)[1].search(vec, k)
                fig, name = plot_query_captions(q, hits), "top_captions"
                summary = " | ".join(f"{h['caption']} ({h['score']:.2f})" for h in hits)
            else:  # → the top images of the gallery
                hits = gallery.search(vec, k)
                shown = [gallery.image(h["index"]) for h in hits]
                labels = [f"{h['image']} {h['score']:.2f}" for h in hits]
                if kind == "arithmetic":
                    shown, labels = [q, *shown], ["query", *labels]
                title = repr(x) if kind == "text" else x
                fig, name = plot_ranked_images([(title, shown, labels, None)]), "top_images"
                summary = ", ".join(f"{h['image']} ({h['score']:.2f})" for h in hits)
            record = {"input": x, "kind": kind}
            if kind != "text" and tag_emb is not None:
                top = ranked((tag_emb @ vec)[None], k)[0]
                record["tags"] = [{"tag": tag_words[j], "score": round(s, 4)} for j, s in top]
                summary += " | tags: " + ", ".join(t["tag"] for t in record["tags"])
            path = save_figure(fig, out_dir / f"{stem}_{name}.png")
            record.update(results=hits, text=summary, files=[str(path)])
            records.append(record)
        return records

    def build_index(
        self, model: nn.Module, images: str | Path, out: str | Path, *, kind: str = "flat",
        run_dir: str | Path | None = None,
    ) -> dict:  # fmt: skip
        """Embed every image under the folder ``images`` (recursively) and save a FAISS
        index of them to the folder ``out`` with ``gallery.json`` (the image folder, the
        run, what was skipped): :func:`~xmodal.matching.gallery.index_image_folder`, whose
        dict it returns. Files that are not readable images are skipped and counted."""
        from xmodal.data.images import load_image
        from xmodal.matching.gallery import index_image_folder

        size = self.config.data.image_size
        meta = {"run": None if run_dir is None else str(Path(run_dir).resolve()),
                "image_size": size}  # fmt: skip
        return index_image_folder(
            images, out, embed=lambda x: self.embed_images(model, x),
            read=lambda path: load_image(path, size=size), kind=kind,
            batch_size=self.config.eval.batch_size, meta=meta,
        )  # fmt: skip
