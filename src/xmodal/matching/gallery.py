"""Galleries to search: embeddings made in batches, the ranked hits of queries, images and
captions indexed for search (:class:`ImageGallery`, :class:`CaptionGallery`), a folder
of images embedded into a persistent FAISS index (:class:`VectorIndex` plus
``gallery.json``, which says where the images are), and the searches of ``xmodal
predict retrieval`` (:func:`search_queries`: text, image, arithmetic and tag queries,
each with its hits and a figure).

The functions take the embedding and the image reader as callables, so any model of
:mod:`xmodal.matching` (a joint embedding's ``embed_images``, im2recipe's) and any image
loader can be used.

Example::

    emb = embed_batches(model.embed_images, images, batch_size=250)    # (N, D) on the CPU
    hits = ranked(queries @ emb.T, k=5)                                # [[(j, score), ...]]
    gallery = ImageGallery(VectorIndex.build(emb, names=paths), images.__getitem__)
    gallery.search(query, k=5)                    # [{"image": path, "index", "score"}, ...]
    index_image_folder("photos", "photos-index", embed=..., read=load_image)
    gallery = open_image_gallery("photos-index", dim=256, read=load_image)
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from xmodal._checks import check_choice, check_positive_int
from xmodal._io import write_json
from xmodal.errors import DataError, ParameterError
from xmodal.text.vocab import UNK_ID, tokenize

__all__ = [
    "GALLERY_FILE",
    "IMAGE_SUFFIXES",
    "CaptionGallery",
    "Embedder",
    "ImageGallery",
    "check_query_text",
    "embed_batches",
    "index_image_folder",
    "is_image_path",
    "open_image_gallery",
    "ranked",
    "search_queries",
    "split_galleries",
    "tag_words",
    "top_hits",
]

GALLERY_FILE = "gallery.json"  # beside a saved image index: where its images are
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
# Words that say nothing of an image: left out of the tags of tag_words.
_FUNCTION_WORDS = frozenset(
    "a an the of is are and or to in on at by with there this that it its we see "
    "picture photo image scene some two three one thing things shape shapes".split()
)


@torch.no_grad()
def embed_batches(
    embed: Callable, items: Sequence, *, batch_size: int, device=None
) -> torch.Tensor:
    """``embed(items[s : s + batch_size])`` for each batch of ``items`` (a tensor, a list or
    a range; a tensor's batches moved to ``device`` first), on the CPU and concatenated:
    ``(len(items), D)``.

        >>> emb = embed_batches(model.embed_images, images, batch_size=250)  # doctest: +SKIP
    """
    out = []
    for s in range(0, len(items), batch_size):
        batch = items[s : s + batch_size]
        if device is not None and isinstance(batch, torch.Tensor):
            batch = batch.to(device)
        out.append(embed(batch).cpu())
    return torch.cat(out)


@dataclass
class Embedder:
    """A matching model's sides as functions of plain inputs: the model in eval mode,
    ``batch_size`` inputs at a time on its device, the unit vectors back on the CPU.

    ``images(x (N, 3, H, W)) -> (N, D)``; with a ``vocab``, ``texts([str] * N) -> (N, D)``
    (each text encoded to at most ``max_len`` tokens, <bos> and <eos> included) and
    ``check(text)`` (:func:`check_query_text`).

        >>> embed = Embedder(model, 250, vocab=vocab, max_len=32)  # doctest: +SKIP
        >>> embed.texts(["a red circle"]) @ embed.images(images).T  # (1, N) # doctest: +SKIP
    """

    model: object  # an nn.Module with embed_images (and embed_texts, with a vocab)
    batch_size: int
    vocab: object = None
    max_len: int | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def images(self, images: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        return embed_batches(
            self.model.embed_images, images, batch_size=self.batch_size, device=self.device
        )

    def texts(self, texts: Sequence[str]) -> torch.Tensor:
        self.model.eval()
        device = self.device

        def embed(batch: list[str]) -> torch.Tensor:
            tokens, lengths = self.vocab.encode_batch(batch, max_len=self.max_len, pad=False)
            return self.model.embed_texts(tokens.to(device), lengths)

        return embed_batches(embed, list(texts), batch_size=self.batch_size)

    def check(self, text: str) -> str:
        return check_query_text(text, self.vocab)


def top_hits(index, query: torch.Tensor, k: int) -> list[tuple[int, float]]:
    """The ``k`` best ``(id, score)`` of one ``(D,)`` query in the :class:`VectorIndex`
    ``index``, best first (slots an approximate index left empty dropped)."""
    scores, ids = index.search(query, k)
    return [(j, s) for j, s in zip(ids[0].tolist(), scores[0].tolist(), strict=True) if j >= 0]


def ranked(scores: torch.Tensor, k: int) -> list[list[tuple[int, float]]]:
    """The top ``k`` of each row of ``scores`` ``(Q, N)``: per query, ``(index, score)``
    pairs, best first (``k`` is clipped to ``N``)."""
    top = scores.topk(min(k, scores.shape[1]), dim=1)
    return [
        list(zip(ids.tolist(), values.tolist(), strict=True))
        for ids, values in zip(top.indices, top.values, strict=True)
    ]


def is_image_path(x: str | Path) -> bool:
    """Whether a query (a path or a text) names an image: its suffix is an image's, or it
    is a file."""
    return Path(x).suffix.lower() in IMAGE_SUFFIXES or Path(x).is_file()


def check_query_text(text: str, vocab) -> str:
    """``text`` if ``vocab`` knows at least one of its words; a ParameterError naming the
    words out of the vocabulary otherwise."""
    words = tokenize(text)
    if not words:
        raise ParameterError(f"query text {text!r} has no words")
    unknown = [w for w in words if vocab.token_to_id(w) == UNK_ID]
    if len(unknown) == len(words):
        raise ParameterError(
            f"query text {text!r}: no word is in the vocabulary "
            f"(out of vocabulary: {', '.join(unknown)})"
        )
    return text


def tag_words(words: Sequence[str]) -> list[str]:
    """The content words of ``words`` (a vocabulary's, specials left out), the candidate
    tags of an image: alphabetic, and not a function word or one that names a picture."""
    return [w for w in words if w not in _FUNCTION_WORDS and w.isalpha()]


@dataclass
class ImageGallery:
    """Images searched by vector: ``index`` holds their embeddings under their names, and
    ``image(j)`` gives image ``j`` ``(3, H, W)`` to show."""

    index: object  # a VectorIndex
    image: Callable[[int], torch.Tensor]

    def search(self, query: torch.Tensor, k: int) -> list[dict]:
        """The top ``k`` images of a ``(D,)`` query, best first: ``{"image": its name,
        "index", "score"}``."""
        return [{"image": self.index.names[j], "index": j, "score": round(s, 4)}
                for j, s in top_hits(self.index, query, k)]  # fmt: skip


@dataclass
class CaptionGallery:
    """Captions searched by vector: ``index`` holds their embeddings, ``texts`` them and
    ``owners`` the name of each one's image."""

    index: object  # a VectorIndex
    texts: list[str]
    owners: list[str]

    def search(self, query: torch.Tensor, k: int) -> list[dict]:
        """The top ``k`` captions of a ``(D,)`` query, best first: ``{"caption", "image",
        "score"}``."""
        return [{"caption": self.texts[j], "image": self.owners[j], "score": round(s, 4)}
                for j, s in top_hits(self.index, query, k)]  # fmt: skip


def index_image_folder(
    folder: str | Path,
    out: str | Path,
    *,
    embed: Callable[[torch.Tensor], torch.Tensor],
    read: Callable[[Path], torch.Tensor],
    kind: str = "flat",
    batch_size: int = 250,
    meta: dict | None = None,
) -> dict:
    """Embed every image under ``folder`` (recursively, hidden files left out) and save a
    FAISS index of them to the folder ``out`` (:meth:`VectorIndex.save`), with
    ``gallery.json``: ``{"root": the folder, **meta, "indexed", "skipped",
    "skipped_files" (the first 100)}``, written atomically.

    ``read(path)`` gives a ``(3, H, W)`` image or raises :class:`DataError` (the file is
    then skipped and counted, not fatal); ``embed`` maps ``(B, 3, H, W)`` to ``(B, D)``,
    ``batch_size`` images at a time. Names in the index are the files' paths relative to
    ``folder``. Returns ``{"indexed", "skipped", "skipped_files", "dim", "kind", "out"}``.
    """
    from xmodal.matching.index import KINDS, VectorIndex

    check_choice(kind, "kind", KINDS)
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"--images {str(folder)!r} is not a folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    names, chunks, skipped, batch = [], [], [], []
    for k, path in enumerate(files):
        try:
            batch.append(read(path))
            names.append(path.relative_to(root).as_posix())
        except DataError:
            skipped.append(path.relative_to(root).as_posix())
        if len(batch) == batch_size or (k == len(files) - 1 and batch):
            chunks.append(embed(torch.stack(batch)).cpu())
            batch = []
    if not names:
        raise DataError(
            f"no readable image in {str(folder)!r} ({len(files)} files, {len(skipped)} skipped)"
        )
    index = VectorIndex.build(torch.cat(chunks), kind=kind, names=names)
    out = index.save(out)
    write_json(out / GALLERY_FILE, {"root": str(root.resolve()), **(meta or {}),
                                    "indexed": len(names), "skipped": len(skipped),
                                    "skipped_files": skipped[:100]}, indent=1)  # fmt: skip
    return {"indexed": len(names), "skipped": len(skipped), "skipped_files": skipped,
            "dim": index.dim, "kind": kind, "out": str(out)}  # fmt: skip


def open_image_gallery(
    index: str | Path, *, dim: int, read: Callable[[Path], torch.Tensor]
) -> ImageGallery:
    """The :class:`ImageGallery` of an index that :func:`index_image_folder` saved: image
    ``j`` is ``read(root / index.names[j])``, ``root`` the folder of ``gallery.json``. The
    index must hold ``dim``-d vectors (those of the model that will search it)."""
    from xmodal.matching.index import VectorIndex

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
    return ImageGallery(found, lambda j: read(root / found.names[j]))


def split_galleries(
    images: torch.Tensor, captions: Sequence[Sequence[str]], embed: Embedder, *, split="test"
) -> tuple[ImageGallery, CaptionGallery]:
    """A dataset split as galleries to search, indexed with FAISS (exact): its
    ``images (N, 3, H, W)``, named ``{split}/{i}``, and every caption of ``captions[i]``
    (those of image ``i``), owned by its image."""
    from xmodal.matching.index import VectorIndex

    names = [f"{split}/{i}" for i in range(len(images))]
    texts = [c for cs in captions for c in cs]
    owners = [names[i] for i, cs in enumerate(captions) for _ in cs]
    image_index = VectorIndex.build(embed.images(images), names=names)
    caption_index = VectorIndex.build(embed.texts(texts))
    image_gallery = ImageGallery(image_index, images.__getitem__)
    return image_gallery, CaptionGallery(caption_index, texts, owners)


def _sort_queries(inputs, text, image, minus, plus) -> list[tuple[str, str]]:
    """``(kind, query)`` of each query of :func:`search_queries`: a positional input is an
    ``"image"`` when :func:`is_image_path` says so, else a ``"text"``; then ``text`` and
    ``image``. Arithmetic words need an image query."""
    queries = [("image" if is_image_path(x) else "text", x) for x in inputs]
    queries += [("text", x) for x in text or []] + [("image", x) for x in image or []]
    if not queries:
        raise ParameterError("predict retrieval needs a text or an image query. Found none")
    if (minus or plus) and not any(kind == "image" for kind, _ in queries):
        raise ParameterError("--minus and --plus apply to an image query: add --image FILE")
    return queries


def search_queries(
    inputs: Sequence[str],
    out_dir: str | Path,
    embed: Embedder,
    *,
    read_image: Callable[[str], torch.Tensor],
    split: Callable[[], tuple[torch.Tensor, list[list[str]]]],
    k: int,
    text: Sequence[str] | None = None,
    image: Sequence[str] | None = None,
    minus: Sequence[str] | None = None,
    plus: Sequence[str] | None = None,
    tags: bool = False,
    index: str | Path | None = None,
) -> list[dict]:
    """The searches of ``xmodal predict retrieval``, one per query, each with a figure in
    ``out_dir``. Each of ``inputs`` is an image file (its suffix is an image's, or the
    file exists) or else a text; ``text`` and ``image`` add queries of a known kind.

    - text → the top ``k`` images (``text-<n>_top_images.png``); a one-word text is a tag
      query;
    - image → the top ``k`` captions (``<stem>-<n>_top_captions.png``); with ``minus`` /
      ``plus`` words, ``normalize(image − Σ minus + Σ plus)``
      (:func:`~xmodal.matching.arithmetic.embedding_arithmetic`) → the top images, shown
      after the query image (kind ``"arithmetic"``);
    - with ``tags``, an image or arithmetic query also gets its top ``k`` words of the
      vocabulary (:func:`tag_words`).

    The gallery is a dataset split, ``split()``: its images ``(N, 3, H, W)`` and the
    captions of each (:func:`split_galleries`, made on first need); with ``index`` the
    images are instead those of the saved index of :func:`index_image_folder`
    (:func:`open_image_gallery`). Every input is read (``read_image``) or checked
    (``embed.check``), the words too, before any gallery is made. Returns per query
    ``{"input", "kind", ["tags"], "results", "text" (a one-line summary), "files"}``.
    """
    from xmodal.matching.arithmetic import embedding_arithmetic
    from xmodal.viz.figure import save_figure

    queries = _sort_queries(inputs, text, image, minus, plus)
    k = check_positive_int(k, "top_k")
    minus, plus = list(minus or []), list(plus or [])
    loaded = [read_image(x) if kind == "image" else embed.check(x) for kind, x in queries]
    terms = [embed.check(w) for w in minus + plus]
    term_emb = list(embed.texts(terms)) if terms else []
    galleries = functools.cache(lambda: split_galleries(*split(), embed))
    if index is None:
        gallery = galleries()[0]
    else:  # checked to hold the model's vectors
        gallery = open_image_gallery(index, dim=embed.model.embed_dim, read=read_image)
    words = tag_words(embed.vocab.itos[len(embed.vocab.specials) :]) if tags else []
    tag_emb = embed.texts(words) if words else None
    records = []
    for n, ((kind, x), q) in enumerate(zip(queries, loaded, strict=True)):
        stem = ("text" if kind == "text" else Path(x).stem) + f"-{n}"
        vec = embed.texts([q])[0] if kind == "text" else embed.images(q[None])[0]
        if kind == "image" and (minus or plus):
            vec = embedding_arithmetic(vec, term_emb[: len(minus)], term_emb[len(minus) :])
            x = " ".join([Path(x).name, *(f"- {w}" for w in minus), *(f"+ {w}" for w in plus)])
            kind = "arithmetic"
        if kind == "image":
            hits, summary, fig, name = _top_captions(galleries()[1], vec, q, k)
        else:
            title, query = (repr(x), None) if kind == "text" else (x, q)
            hits, summary, fig, name = _top_images(gallery, vec, title, query, k)
        record = {"input": x, "kind": kind}
        if kind != "text" and tag_emb is not None:
            top = ranked((tag_emb @ vec)[None], k)[0]
            record["tags"] = [{"tag": words[j], "score": round(s, 4)} for j, s in top]
            summary += " | tags: " + ", ".join(t["tag"] for t in record["tags"])
        path = save_figure(fig, Path(out_dir) / f"{stem}_{name}.png")
        record.update(results=hits, text=summary, files=[str(path)])
        records.append(record)
    return records


def _top_captions(gallery: CaptionGallery, vec: torch.Tensor, image: torch.Tensor, k: int):
    """An image query's top captions: ``(hits, summary, figure, figure name)``."""
    from xmodal.viz.retrieval import plot_query_captions

    hits = gallery.search(vec, k)
    summary = " | ".join(f"{h['caption']} ({h['score']:.2f})" for h in hits)
    return hits, summary, plot_query_captions(image, hits), "top_captions"


def _top_images(gallery: ImageGallery, vec: torch.Tensor, title: str, query, k: int):
    """A query's top images, after the ``query`` image unless it is None: ``(hits,
    summary, figure, figure name)``."""
    from xmodal.viz.retrieval import plot_ranked_images

    hits = gallery.search(vec, k)
    shown = [gallery.image(h["index"]) for h in hits]
    labels = [f"{h['image']} {h['score']:.2f}" for h in hits]
    if query is not None:
        shown, labels = [query, *shown], ["query", *labels]
    summary = ", ".join(f"{h['image']} ({h['score']:.2f})" for h in hits)
    return hits, summary, plot_ranked_images([(title, shown, labels, None)]), "top_images"
