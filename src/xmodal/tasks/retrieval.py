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

    xmodal train retrieval                                # VSE++ (hardest negative)
    xmodal train retrieval model.loss=infonce             # CLIP's symmetric InfoNCE
    xmodal predict retrieval --run runs/retrieval/<id> "a red circle" query.png
    xmodal predict retrieval --run DIR --text "a red circle above a blue star"
    xmodal predict retrieval --run DIR --image img.png --tags
    xmodal predict retrieval --run DIR --image img.png --minus circle --plus square
    xmodal retrieval index --run DIR --images FOLDER --out gallery-index
    xmodal predict retrieval --run DIR --index gallery-index --text "a green star"
"""

from __future__ import annotations

import json
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
from xmodal.text.vocab import PAD_ID, UNK_ID, Vocabulary, tokenize

__all__ = [
    "RetrievalConfig",
    "RetrievalDataConfig",
    "RetrievalEvalConfig",
    "RetrievalModelConfig",
    "RetrievalOptimConfig",
    "RetrievalTask",
    "CaptionedImages",
    "collate_captioned",
    "duplicate_captions",
]

LOSSES = ("vse++", "triplet", "infonce")
DATA = ("world", "karpathy")
GALLERY_FILE = "gallery.json"  # beside a saved image index: where its images are
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


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
class RetrievalDataConfig:
    """Images with all their captions. ``name=world``: the world's scenes,
    ``train_size`` / ``val_size`` / ``test_size`` of them (``test_size=1000`` is the
    standard 1K protocol). ``name=karpathy``: ``json`` is a Karpathy ``dataset_*.json`` and
    ``root`` the folder its image paths are relative to (its splits' sizes are the file's;
    a test split over 1000 images is scored in 1K folds, as COCO 5-fold 1K)."""

    name: str = "world"
    json: str | None = None
    root: str | None = None
    world_seed: int = 0
    image_size: int = 64
    train_size: int = 10_000
    val_size: int = 500
    test_size: int = 1_000
    max_len: int = 32  # tokens per caption, <bos> and <eos> included
    captions_per_step: int = 5  # captions of each image in a training step
    min_freq: int = 1
    batch_size: int = 128  # images per step
    num_workers: int = 2

    def __post_init__(self) -> None:
        check_choice(self.name, "data.name", DATA)
        for key in ("image_size", "train_size", "val_size", "test_size", "batch_size"):
            check_positive_int(getattr(self, key), f"data.{key}")
        check_positive_int(self.max_len, "data.max_len", minimum=3)
        check_positive_int(self.min_freq, "data.min_freq")
        check_positive_int(self.captions_per_step, "data.captions_per_step")
        check_positive_int(self.num_workers, "data.num_workers", minimum=0)
        if self.name == "karpathy":
            from xmodal.data.karpathy import check_karpathy_config

            check_karpathy_config(self.json, self.root)


@dataclass
class RetrievalOptimConfig(AdamConfig):
    """Adam with a linear warm-up and a cosine decay to ``min_lr_ratio * lr``."""


@dataclass
class RetrievalEvalConfig:
    """Evaluation, figures and predict: ``top_k`` results per query."""

    batch_size: int = 250
    top_k: int = 5
    n_figures: int = 4  # test captions shown with their top images

    def __post_init__(self) -> None:
        check_positive_int(self.batch_size, "eval.batch_size")
        check_positive_int(self.top_k, "eval.top_k")
        check_positive_int(self.n_figures, "eval.n_figures", minimum=0)


def _default_trainer() -> TrainerConfig:
    # 780 steps: about 9 minutes on 2 CPU cores (0.67 s a step).
    return TrainerConfig(max_epochs=10, gradient_clip_val=2.0)


@dataclass
class RetrievalConfig:
    seed: int = 0
    model: RetrievalModelConfig = field(default_factory=RetrievalModelConfig)
    data: RetrievalDataConfig = field(default_factory=RetrievalDataConfig)
    optim: RetrievalOptimConfig = field(default_factory=RetrievalOptimConfig)
    eval: RetrievalEvalConfig = field(default_factory=RetrievalEvalConfig)
    trainer: TrainerConfig = field(default_factory=_default_trainer)


# ----------------------------------------------------------------------------- data


class CaptionedImages(Dataset):
    """Each image with all its captions encoded: ``image`` (3, H, W), ``tokens`` a list of
    LongTensors (<bos> ... <eos>), ``index``."""

    def __init__(self, images: Dataset, vocab: Vocabulary, *, max_len: int):
        self.images, self.vocab, self.max_len = images, vocab, max_len

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        item = self.images[i]
        if not item["captions"]:
            raise DataError(f"image {item['index']} has no caption")
        tokens = [
            torch.tensor(self.vocab.encode(c, max_len=self.max_len)) for c in item["captions"]
        ]
        return {"image": item["image"], "tokens": tokens, "index": item["index"]}


def collate_captioned(items: list[dict]) -> dict:
    """``image`` (B, 3, H, W); ``tokens`` (B * n, L) padded, ``lengths`` (B * n,): the
    ``n`` captions of image ``b`` are rows ``b * n ... b * n + n - 1``; ``index`` (B,)."""
    n = min(len(it["tokens"]) for it in items)
    rows = [t for it in items for t in it["tokens"][:n]]
    return {
        "image": torch.stack([it["image"] for it in items]),
        "tokens": nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=PAD_ID),
        "lengths": torch.tensor([len(t) for t in rows]),
        "index": torch.tensor([it["index"] for it in items]),
    }


def duplicate_captions(captions: Sequence[Sequence[str]]) -> int:
    """How many captions (of ``captions[i]``, the captions of image ``i``) are word for word
    a caption of another image: a text query cannot tell those images apart."""
    owners: dict[str, set[int]] = {}
    for i, cs in enumerate(captions):
        for c in cs:
            owners.setdefault(" ".join(tokenize(c)), set()).add(i)
    return sum(len(owners[" ".join(tokenize(c))]) > 1 for cs in captions for c in cs)


# ----------------------------------------------------------------------------- the task


class RetrievalTask(Task):
    """Image–text retrieval (matching) with a joint embedding: VSE, VSE++ or InfoNCE."""

    name = "retrieval"
    family = "matching"
    summary = "Image-text retrieval: joint embedding (VSE++ hinge, triplet or InfoNCE)"
    default_data = "world"
    Config = RetrievalConfig

    def __init__(self, config: RetrievalConfig) -> None:
        super().__init__(config)
        self.vocab: Vocabulary | None = None
        self._images: dict[str, Dataset] = {}
        self._word_init: torch.Tensor | None = None
        self._epoch = 0
        self._scenes: dict[str, tuple] = {}  # world split -> (captions, objects)
        self._gallery: dict | None = None  # predict: the test split, embedded and indexed

    # ------------------------------------------------------------------ data

    def images(self, split: str) -> Dataset:
        """The images of ``split``: items with ``image``, ``captions``, ``index``."""
        if split not in self._images:
            d = self.config.data
            if d.name == "world":
                from xmodal.world.datasets import make_dataset

                size = {"train": d.train_size, "val": d.val_size}.get(split, d.test_size)
                self._images[split] = make_dataset(self.world, "captioning", split, size=size)
            else:
                from xmodal.data.karpathy import KarpathyCaptions

                self._images[split] = KarpathyCaptions(
                    d.json, d.root, split, image_size=d.image_size
                )
        return self._images[split]

    def _world_scenes(self, split: str) -> tuple[list[list[str]], list[list[tuple[str, str]]]]:
        """Per image of a world split: its captions and its objects' (colour, shape)."""
        if split not in self._scenes:
            world, n = self.world, len(self.images(split))
            scenes = [world.scene(split, i, audio=False, questions=False) for i in range(n)]
            self._scenes[split] = (
                [list(s.captions) for s in scenes],
                [[(o.colour, o.shape) for o in s.objects] for s in scenes],
            )
        return self._scenes[split]

    def captions(self, split: str) -> list[list[str]]:
        """Every caption of every image of ``split`` (no image is rendered)."""
        images = self.images(split)
        if self.config.data.name == "karpathy":
            return [list(cs) for cs in images.captions]
        return self._world_scenes(split)[0]

    def artifacts(self) -> list[str]:
        return ["vocab.json"]

    def setup(self, run_dir: Path, stage: str) -> None:
        path = Path(run_dir) / "vocab.json"
        if stage == "fit":
            texts = [c for cs in self.captions("train") for c in cs]
            self.vocab = Vocabulary.build(texts, min_freq=self.config.data.min_freq)
            self.vocab.save(path)
            self._word_init = self._word_vectors() if self.config.model.word2vec else None
        else:
            if not path.is_file():
                raise DataError(f"run folder {str(run_dir)!r} has no vocab.json")
            self.vocab = Vocabulary.load(path)

    def _word_vectors(self) -> torch.Tensor:
        """The ``(V, E)`` embedding weight from ``model.word2vec`` for this vocabulary."""
        from xmodal.text.word2vec import model_word_init

        m = self.config.model
        weight, found = model_word_init(
            self.vocab, m.word2vec, m.word_dim, dim_key="model.word_dim"
        )
        return weight

    def _sets(self, split: str) -> CaptionedImages:
        return CaptionedImages(self.images(split), self.vocab, max_len=self.config.data.max_len)

    def train_dataloader(self) -> DataLoader:
        d = self.config.data
        return seeded_loader(
            self._sets("train"),
            batch_size=d.batch_size,
            shuffle=True,
            seed=self.config.seed,
            num_workers=d.num_workers,
            collate_fn=collate_captioned,
            drop_last=True,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self._sets("val"),
            batch_size=min(100, self.config.data.val_size),
            shuffle=False,
            collate_fn=collate_captioned,
        )

    def on_train_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch

    # ------------------------------------------------------------------ model

    def build_model(self) -> nn.Module:
        from xmodal.matching.joint import JointEmbedding

        m = self.config.model
        return JointEmbedding(
            len(self.vocab),
            encoder=m.encoder,
            encoder_kwargs={"channels": m.channels} if m.encoder == "small-cnn" else {},
            embed_dim=m.embed_dim,
            word_dim=m.word_dim,
            hidden=m.hidden,
            bidirectional=m.bidirectional,
            pooling=m.pooling,
            word_init=self._word_init,  # training only: eval and predict load the weights
            logit_scale_init=1.0 / m.temperature,
            text_encoder=m.text_encoder,
            text_layers=m.text_layers,
            text_heads=m.text_heads,
            text_width=m.text_width,
            text_max_len=self.config.data.max_len,
            text_dropout=m.text_dropout,
        )

    def _total_steps(self) -> int:
        per_epoch = len(self.images("train")) // (self.config.data.batch_size * world_size())
        return planned_steps(self.config.trainer, per_epoch)

    def configure_optimizers(self, model: nn.Module):
        return self.config.optim.configure(model.parameters(), self._total_steps())

    def _rows(self, batch, k: int | None) -> torch.Tensor:
        """Caption rows a step uses: ``k`` of each image's captions (all when ``k`` is None
        or not smaller), drawn from (seed, epoch, image index) alone."""
        index = batch["index"].tolist()
        n = batch["tokens"].shape[0] // len(index)
        if k is None or k >= n:
            return torch.arange(len(index) * n)
        rows = []
        for b, i in enumerate(index):
            rng = np.random.default_rng([self.config.seed, self._epoch, i])
            rows += [b * n + int(j) for j in sorted(rng.permutation(n)[:k])]
        return torch.tensor(rows)

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
        loss = hinge_triplet_loss(
            img, txt, margin=m.margin, hardest=m.loss == "vse++", image_ids=ids
        )
        return loss, {}

    def training_step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        return self._loss(model, batch, self.config.data.captions_per_step)

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        loss, _ = self._loss(model, batch, None)
        return {"loss": float(loss)}

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def embed_images(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` → ``(N, D)`` unit vectors (on the CPU), in batches."""
        model.eval()
        bs, device = self.config.eval.batch_size, self.model_device(model)
        return torch.cat(
            [
                model.embed_images(images[s : s + bs].to(device)).cpu()
                for s in range(0, len(images), bs)
            ]
        )

    @torch.no_grad()
    def embed_texts(self, model: nn.Module, texts: Sequence[str]) -> torch.Tensor:
        """Texts → ``(N, D)`` unit vectors (on the CPU), in batches."""
        model.eval()
        bs, device = self.config.eval.batch_size, self.model_device(model)
        out = []
        for s in range(0, len(texts), bs):
            tokens, lengths = self.vocab.encode_batch(
                list(texts[s : s + bs]), max_len=self.config.data.max_len, pad=False
            )
            out.append(model.embed_texts(tokens.to(device), lengths).cpu())
        return torch.cat(out)

    def _split_images(self, split: str) -> torch.Tensor:
        images = self.images(split)
        return torch.stack([images[i]["image"] for i in range(len(images))])

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        from xmodal.metrics.retrieval import fold_average, retrieval_metrics

        captions = self.captions(split)
        texts = [c for cs in captions for c in cs]
        text_image = torch.tensor([i for i, cs in enumerate(captions) for _ in cs])
        img_emb = self.embed_images(model, self._split_images(split))
        txt_emb = self.embed_texts(model, texts)
        sims = img_emb @ txt_emb.T
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
        world, n = self.world, len(self.images(split))
        scenes = [world.scene(split, i, audio=False, questions=False) for i in range(n)]
        captions = [s.captions for s in scenes]
        facts = [language.caption_facts(c) for cs in captions for c in cs]
        truth = torch.tensor(
            [
                [language.facts_hold(f, s.objects, s.place, margin=world.margin) for f in facts]
                for s in scenes
            ]
        )
        text_image = torch.tensor([i for i, cs in enumerate(captions) for _ in cs])
        return retrieval_ceiling(truth, text_image)

    def _world_metrics(self, model: nn.Module, split: str, img_emb) -> dict[str, float]:
        """Embedding arithmetic (``image − s + s'``, top 5) and tags on a world split."""
        from xmodal.matching.arithmetic import arithmetic_success, tag_metrics
        from xmodal.world.schema import COLOURS, SHAPES

        objects = self._world_scenes(split)[1]
        shapes = [s for s in SHAPES if self.vocab.token_to_id(s) != UNK_ID]
        tags = [w for w in (*COLOURS, *SHAPES) if self.vocab.token_to_id(w) != UNK_ID]
        tag_emb = self.embed_texts(model, tags)
        word = dict(zip(tags, tag_emb, strict=True))
        out = arithmetic_success(img_emb, word, objects, shapes, k=5)
        truth = [{w for pair in objs for w in pair} for objs in objects]
        out.update(tag_metrics(img_emb, tag_emb, tags, truth, k=10))
        return out

    def figures(self, model: nn.Module, out_dir: Path) -> list[Path]:
        n = self.config.eval.n_figures
        if n == 0:
            return []
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        images = self._split_images("test")
        captions = self.captions("test")
        queries = [captions[i][0] for i in range(min(n, len(captions)))]
        sims = self.embed_texts(model, queries) @ self.embed_images(model, images).T
        k = min(self.config.eval.top_k, len(images))
        top = sims.topk(k, dim=1)
        rows = [
            (f"{q!r} (test image {i})", [images[j] for j in idx.tolist()],
             [f"#{j} {s:.2f}" for j, s in zip(idx.tolist(), sc.tolist(), strict=True)],
             [j == i for j in idx.tolist()])
            for i, (q, idx, sc) in enumerate(zip(queries, top.indices, top.values, strict=True))
        ]  # fmt: skip
        path = out_dir / "retrieval_test_text_to_image.png"
        _save_grid(rows, path)
        return [path]

    # ------------------------------------------------------------------ predict

    def _test_gallery(self, model: nn.Module) -> dict:
        """The test split as the search gallery: images and captions embedded once per task
        object and indexed with FAISS (exact search)."""
        from xmodal.matching.index import VectorIndex

        if self._gallery is None:
            images = self._split_images("test")
            captions = self.captions("test")
            texts = [c for cs in captions for c in cs]
            self._gallery = {
                "images": images,
                "image_index": VectorIndex.build(
                    self.embed_images(model, images),
                    names=[f"test/{i}" for i in range(len(images))],
                ),
                "texts": texts,
                "owners": [i for i, cs in enumerate(captions) for _ in cs],
                "text_index": VectorIndex.build(self.embed_texts(model, texts)),
            }
        return self._gallery

    def _image_gallery(self, model: nn.Module, index: str | None, dim: int):
        """``(VectorIndex, image of id)`` to search images in: the test split, or the saved
        index of ``xmodal retrieval index`` (checked to hold ``dim``-d vectors)."""
        from xmodal.data.images import load_image
        from xmodal.matching.index import VectorIndex

        if index is None:
            g = self._test_gallery(model)
            return g["image_index"], lambda j: g["images"][j]
        found = VectorIndex.load(index)
        meta_path = Path(index) / GALLERY_FILE
        if not meta_path.is_file():
            raise DataError(
                f"{index} has no {GALLERY_FILE}: build image indexes with `xmodal retrieval index`"
            )
        try:
            root = Path(json.loads(meta_path.read_text(encoding="utf-8"))["root"])
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            raise DataError(
                f"{meta_path} is not a gallery file of `xmodal retrieval index` (JSON with "
                f'"root", the image folder): {error!r}'
            ) from error
        if found.dim != dim:
            raise ParameterError(
                f"index {index} holds {found.dim}-d vectors but this run's model embeds in "
                f"{dim}-d (the index was built with another model: rebuild it with "
                "`xmodal retrieval index --run` this run)"
            )
        size = self.config.data.image_size
        return found, lambda j: load_image(root / found.names[j], size=size)

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
        return [
            w
            for w in self.vocab.itos[len(self.vocab.specials) :]
            if w not in _FUNCTION_WORDS and w.isalpha()
        ]

    @classmethod
    def add_predict_arguments(cls, parser) -> None:
        parser.add_argument("--text", action="append", metavar="TEXT",
                            help="a text query: its top images (a single word is a tag "
                            "query); repeatable")  # fmt: skip
        parser.add_argument("--image", action="append", metavar="FILE",
                            help="an image query: its top captions (with --minus/--plus: "
                            "the top images of the arithmetic); repeatable")  # fmt: skip
        parser.add_argument("--minus", action="append", metavar="WORD",
                            help="embedding arithmetic: take the text's vector away from "
                            "each --image query's; repeatable")  # fmt: skip
        parser.add_argument(
            "--plus",
            action="append",
            metavar="WORD",
            help="embedding arithmetic: add the text's vector; repeatable",
        )
        parser.add_argument(
            "--tags",
            action="store_true",
            help="also give each image query's top words (image → tags)",
        )
        parser.add_argument("--index", metavar="DIR", default=None,
                            help="search the image index that `xmodal retrieval index` built "
                            "instead of the test split")  # fmt: skip
        parser.add_argument(
            "-k",
            "--top-k",
            dest="top_k",
            type=int,
            default=None,
            metavar="K",
            help="results per query (default: eval.top_k)",
        )

    def predict(
        self,
        model: nn.Module,
        inputs: Sequence[str],
        out_dir: Path,
        *,
        text: Sequence[str] | None = None,
        image: Sequence[str] | None = None,
        minus: Sequence[str] | None = None,
        plus: Sequence[str] | None = None,
        tags: bool = False,
        index: str | None = None,
        top_k: int | None = None,
    ) -> list[dict]:
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

        queries = [("image" if _is_image_path(x) else "text", x) for x in inputs]
        queries += [("text", x) for x in text or []] + [("image", x) for x in image or []]
        if not queries:
            raise ParameterError("predict retrieval needs a text or an image query. Found none")
        minus, plus = list(minus or []), list(plus or [])
        if (minus or plus) and not any(kind == "image" for kind, _ in queries):
            raise ParameterError("--minus and --plus apply to an image query: add --image FILE")
        k = check_positive_int(self.config.eval.top_k if top_k is None else top_k, "top_k")
        # Check every input before the (slow) gallery is embedded.
        size = self.config.data.image_size
        loaded = [
            load_image(x, size=size) if kind == "image" else self._query_text(x)
            for kind, x in queries
        ]
        terms = [self._query_text(w) for w in minus + plus]
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        term_emb = list(self.embed_texts(model, terms)) if terms else []
        minus_emb, plus_emb = term_emb[: len(minus)], term_emb[len(minus) :]
        image_index, image_of = self._image_gallery(model, index, model.embed_dim)
        tag_words = self._tag_words() if tags else []
        tag_emb = self.embed_texts(model, tag_words) if tag_words else None
        records, used = [], set()
        for n, ((kind, x), q) in enumerate(zip(queries, loaded, strict=True)):
            stem = _unique(("text" if kind == "text" else Path(x).stem) + f"-{n}", used)
            if kind == "text" or minus or plus:
                if kind == "text":
                    vec, title = self.embed_texts(model, [q])[0], repr(x)
                else:
                    query = self.embed_images(model, q[None])[0]
                    vec = embedding_arithmetic(query, minus_emb, plus_emb)
                    title = " ".join(
                        [Path(x).name, *(f"- {w}" for w in minus), *(f"+ {w}" for w in plus)]
                    )
                    kind = "arithmetic"
                scores, ids = image_index.search(vec, k)
                hits = [
                    {"image": image_index.names[j], "index": j, "score": round(s, 4)}
                    for j, s in zip(ids[0].tolist(), scores[0].tolist(), strict=True)
                    if j >= 0
                ]
                shown = [image_of(h["index"]) for h in hits]
                labels = [f"{h['image']} {h['score']:.2f}" for h in hits]
                if kind == "arithmetic":
                    shown, labels = [q, *shown], ["query", *labels]
                path = out_dir / f"{stem}_top_images.png"
                _save_grid([(title, shown, labels, None)], path)
                summary = ", ".join(f"{h['image']} ({h['score']:.2f})" for h in hits)
                record = {"input": title if kind == "arithmetic" else x, "kind": kind}
            else:
                g = self._test_gallery(model)
                vec = self.embed_images(model, q[None])[0]
                scores, ids = g["text_index"].search(vec, k)
                hits = [
                    {
                        "caption": g["texts"][j],
                        "image": f"test/{g['owners'][j]}",
                        "score": round(s, 4),
                    }
                    for j, s in zip(ids[0].tolist(), scores[0].tolist(), strict=True)
                ]
                path = out_dir / f"{stem}_top_captions.png"
                _save_query_captions(q, hits, path)
                summary = " | ".join(f"{h['caption']} ({h['score']:.2f})" for h in hits)
                record = {"input": x, "kind": kind}
            if kind != "text" and tag_emb is not None:
                top = (tag_emb @ vec).topk(min(k, len(tag_words)))
                record["tags"] = [
                    {"tag": tag_words[j], "score": round(s, 4)}
                    for j, s in zip(top.indices.tolist(), top.values.tolist(), strict=True)
                ]
                summary += " | tags: " + ", ".join(t["tag"] for t in record["tags"])
            record.update(results=hits, text=summary, files=[str(path)])
            records.append(record)
        return records

    def build_index(
        self, model: nn.Module, images: str | Path, out: str | Path, *, kind: str = "flat",
        run_dir: str | Path | None = None,
    ) -> dict:  # fmt: skip
        """Embed every image under the folder ``images`` (recursively) and save a FAISS
        index of them to the folder ``out`` (:meth:`VectorIndex.save`, plus
        ``gallery.json``: the image folder, the run, what was skipped).

        Files that are not readable images are skipped and counted, not fatal. Returns
        ``{"indexed", "skipped", "skipped_files", "dim", "kind", "out"}``.
        """
        from xmodal.data.images import load_image
        from xmodal.matching.index import KINDS, VectorIndex

        check_choice(kind, "kind", KINDS)
        root = Path(images)
        if not root.is_dir():
            raise DataError(f"--images {str(images)!r} is not a folder")
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        size, bs = self.config.data.image_size, self.config.eval.batch_size
        names, chunks, skipped, batch = [], [], [], []
        for k, path in enumerate(files):
            try:
                batch.append(load_image(path, size=size))
                names.append(path.relative_to(root).as_posix())
            except DataError:
                skipped.append(path.relative_to(root).as_posix())
            if len(batch) == bs or (k == len(files) - 1 and batch):
                chunks.append(self.embed_images(model, torch.stack(batch)))
                batch = []
        if not names:
            raise DataError(
                f"no readable image in {str(images)!r} ({len(files)} files, {len(skipped)} skipped)"
            )
        index = VectorIndex.build(torch.cat(chunks), kind=kind, names=names)
        out = index.save(out)
        meta = {
            "root": str(root.resolve()),
            "run": None if run_dir is None else str(Path(run_dir).resolve()),
            "image_size": size,
            "indexed": len(names),
            "skipped": len(skipped),
            "skipped_files": skipped[:100],
        }
        (out / GALLERY_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return {"indexed": len(names), "skipped": len(skipped), "skipped_files": skipped,
                "dim": index.dim, "kind": kind, "out": str(out)}  # fmt: skip


# Words that say nothing of an image: left out of image → tags.
_FUNCTION_WORDS = frozenset(
    "a an the of is are and or to in on at by with there this that it its we see "
    "picture photo image scene some two three one thing things shape shapes".split()
)


def _is_image_path(x: str) -> bool:
    """A positional predict input is an image when its suffix is an image's or it exists."""
    return Path(x).suffix.lower() in IMAGE_SUFFIXES or Path(x).is_file()


def _unique(name: str, used: set[str]) -> str:
    while name in used:
        name += "_"
    used.add(name)
    return name


def _save_grid(rows, path: Path) -> None:
    """One row per query: its title, then its images with a label each (a green frame
    where ``marks`` says the image is the right one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.6 * cols, 1.9 * len(rows)), squeeze=False)
    for r, (title, imgs, labels, marks) in enumerate(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(imgs):
                ax.axis("off")
                continue
            img = imgs[c]
            img = img.float() / 255 if img.dtype == torch.uint8 else img
            ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_xlabel(labels[c], fontsize=7)
            if marks is not None and marks[c]:
                for spine in ax.spines.values():
                    spine.set_edgecolor("limegreen")
                    spine.set_linewidth(3)
        # Text, not a title: a long query must not widen the first column.
        axes[r][0].text(0, 1.08, title, transform=axes[r][0].transAxes, fontsize=8)
    fig.subplots_adjust(wspace=0.08, hspace=0.55)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def _save_query_captions(image: torch.Tensor, hits: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, tx) = plt.subplots(1, 2, figsize=(7, 2.4), gridspec_kw={"width_ratios": [1, 3]})
    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
    ax.axis("off")
    tx.axis("off")
    lines = [f"{k + 1}. {h['caption']}  ({h['score']:.2f})" for k, h in enumerate(hits)]
    tx.text(0, 1, "\n".join(lines), va="top", fontsize=8, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
