"""Galleries to search: embeddings made in batches, the ranked hits of queries, images and
captions indexed for search (:class:`ImageGallery`, :class:`CaptionGallery`), and a folder
of images embedded into a persistent FAISS index (:class:`VectorIndex` plus
``gallery.json``, which says where the images are).

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

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from xmodal._checks import check_choice
from xmodal._io import write_json
from xmodal.errors import DataError, ParameterError

__all__ = [
    "GALLERY_FILE",
    "IMAGE_SUFFIXES",
    "CaptionGallery",
    "ImageGallery",
    "embed_batches",
    "index_image_folder",
    "is_image_path",
    "open_image_gallery",
    "ranked",
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
