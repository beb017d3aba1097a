"""Nearest-neighbour search of L2-normalised embeddings by inner product.

A gallery of embeddings (images, captions, recipes) is searched with FAISS
(``faiss-cpu``): :class:`VectorIndex` wraps an exact index (``"flat"``) or an approximate
one (``"ivf"``: inverted lists over k-means cells, ``"hnsw"``: a navigable small-world
graph), saves it with FAISS's own writer plus a JSON sidecar (no pickle), and loads it
back. :func:`search_torch` is the same exact search as chunked matmul + top-k in PyTorch:
the reference the FAISS results are tested against, and a fallback without FAISS.

Scores are inner products; for L2-normalised vectors they are cosine similarities, so the
embeddings of :mod:`xmodal.matching` can be searched as they are.

Example::

    index = VectorIndex.build(gallery, kind="ivf", nprobe=16, names=paths)  # gallery (N, D)
    scores, ids = index.search(queries, k=10)  # (Q, 10) each, best first
    index.save("runs/retrieval/gallery-index")
    index = VectorIndex.load("runs/retrieval/gallery-index")
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from xmodal._checks import as_signal, check_choice, check_positive_int
from xmodal._io import atomic_path, write_text
from xmodal.errors import DataError, ParameterError

__all__ = ["KINDS", "VectorIndex", "default_nlist", "search_torch"]

KINDS = ("flat", "ivf", "hnsw")
INDEX_FILE = "index.faiss"
META_FILE = "index.json"
_FORMAT = "xmodal-vector-index"
_VERSION = 1
# FAISS warns when k-means has fewer than 39 points per centroid; 64 keeps the cells good
# while training on a sample of a large gallery instead of all of it.
_TRAIN_POINTS_PER_LIST = 64


def _faiss():
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            "xmodal.matching.index needs FAISS: install the `faiss-cpu` package "
            "(pip install faiss-cpu)"
        ) from error
    return faiss


def _as_vectors(x, name: str, dim: int | None = None) -> np.ndarray:
    """``x`` (N, D) as a C-contiguous float32 numpy array, checked (finite, non-empty)."""
    x = as_signal(x, name, min_ndim=2)
    if x.ndim != 2:
        raise ParameterError(f"{name} must have shape (N, D). Found shape {tuple(x.shape)}")
    if dim is not None and x.shape[1] != dim:
        raise ParameterError(
            f"{name} have dimension {x.shape[1]} but the index holds vectors of "
            f"dimension {dim} (shape {tuple(x.shape)})"
        )
    return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)


def _check_names(names, count: int, what: str) -> list[str]:
    if isinstance(names, (str, bytes)) or not hasattr(names, "__len__"):
        raise ParameterError(f"names must be a list of strings. Found: {type(names).__name__}")
    names = list(names)
    if len(names) != count:
        raise ParameterError(
            f"names must give one name per {what} vector: {count} vectors, {len(names)} names"
        )
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise ParameterError(f"names must be strings. Found: {bad[0]!r}")
    return names


def default_nlist(count: int) -> int:
    """Number of IVF lists for a gallery of ``count`` vectors: about 4 * sqrt(count)."""
    return max(1, min(count, round(4 * math.sqrt(count))))


def search_torch(
    gallery, queries, k: int = 10, *, chunk_size: int = 65536
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact inner-product search: chunked ``queries @ gallery.T`` and a running top-k.

    Args:
        gallery: (N, D) float tensor or array (L2-normalised for cosine similarity).
        queries: (Q, D) float tensor or array.
        k: neighbours per query; clipped to N (a gallery of 5 gives 5 for ``k=10``).
        chunk_size: gallery rows per matmul, which bounds memory at (Q, chunk_size) scores.

    Returns:
        ``(scores, ids)``: (Q, min(k, N)) float32 and int64, best first.

    Example::

        scores, ids = search_torch(gallery, queries, k=5)
    """
    k = check_positive_int(k, "k")
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    gallery = as_signal(gallery, "gallery", min_ndim=2)
    if gallery.ndim != 2:
        raise ParameterError(f"gallery must have shape (N, D). Found shape {tuple(gallery.shape)}")
    queries = as_signal(queries, "queries", min_ndim=2)
    if queries.ndim != 2:
        raise ParameterError(f"queries must have shape (Q, D). Found shape {tuple(queries.shape)}")
    if queries.shape[1] != gallery.shape[1]:
        raise ParameterError(
            f"queries have dimension {queries.shape[1]} but the gallery has dimension "
            f"{gallery.shape[1]}"
        )
    gallery = gallery.to(torch.float32)
    queries = queries.to(device=gallery.device, dtype=torch.float32)
    n = gallery.shape[0]
    k = min(k, n)
    best_scores = best_ids = None
    for start in range(0, n, chunk_size):
        block = queries @ gallery[start : start + chunk_size].T  # (Q, chunk)
        scores, ids = block.topk(min(k, block.shape[1]), dim=1)
        ids += start
        if best_scores is not None:
            scores = torch.cat([best_scores, scores], dim=1)  # (Q, <= 2k)
            ids = torch.cat([best_ids, ids], dim=1)
            scores, order = scores.topk(k, dim=1)
            ids = ids.gather(1, order)
        best_scores, best_ids = scores, ids
    return best_scores, best_ids


class VectorIndex:
    """A FAISS index of (N, D) embeddings searched by inner product, with optional names.

    Build one with :meth:`build`, or :meth:`load` a saved one; the constructor is internal.

    Attributes:
        dim: D, the embedding dimension.
        kind: ``"flat"`` (exact), ``"ivf"`` or ``"hnsw"`` (approximate).
        names: one string per vector (an image path, a caption id), or None.
    """

    def __init__(self, index, *, kind: str, names: list[str] | None = None):
        self._index = index
        self.kind = kind
        self.names = names

    # -- building -------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        vectors,
        *,
        kind: str = "flat",
        nlist: int | None = None,
        nprobe: int = 8,
        hnsw_m: int = 32,
        ef_construction: int = 40,
        ef_search: int = 64,
        names=None,
        seed: int = 0,
    ) -> VectorIndex:
        """Index ``vectors`` (N, D) float32 (L2-normalised for cosine similarity).

        Args:
            kind: ``"flat"`` exact search; ``"ivf"`` k-means cells (``nlist`` of them, default
                about 4 * sqrt(N), trained on at most 64 * nlist vectors), ``nprobe`` visited
                per query; ``"hnsw"`` a graph with ``hnsw_m`` links per node,
                ``ef_construction`` and ``ef_search`` candidate lists when building and
                searching. Larger ``nprobe`` / ``ef_search``: higher recall, slower search.
            names: optional list of N strings kept with the index (paths, caption ids).
            seed: seeds the k-means sample and initialisation of ``"ivf"``.

        Example::

            index = VectorIndex.build(embeddings, kind="ivf", nlist=256, nprobe=16)
        """
        faiss = _faiss()
        check_choice(kind, "kind", KINDS)
        data = _as_vectors(vectors, "vectors")
        n, dim = data.shape
        if names is not None:
            names = _check_names(names, n, "gallery")
        ef_search = check_positive_int(ef_search, "ef_search")
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            nlist = default_nlist(n) if nlist is None else check_positive_int(nlist, "nlist")
            nprobe = check_positive_int(nprobe, "nprobe")
            if nlist > n:
                raise ParameterError(
                    f"nlist must be <= the number of vectors ({n}) to train k-means. Found: {nlist}"
                )
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = seed
            index.cp.max_points_per_centroid = _TRAIN_POINTS_PER_LIST
            sample = data
            if n > _TRAIN_POINTS_PER_LIST * nlist:
                rng = np.random.default_rng(seed)
                rows = np.sort(rng.choice(n, _TRAIN_POINTS_PER_LIST * nlist, replace=False))
                sample = data[rows]
            index.train(sample)
            del sample
            index.nprobe = min(nprobe, nlist)
        else:
            hnsw_m = check_positive_int(hnsw_m, "hnsw_m", minimum=2)
            ef_construction = check_positive_int(ef_construction, "ef_construction")
            index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
            index.hnsw.efSearch = ef_search
        index.add(data)
        return cls(index, kind=kind, names=names)

    def add(self, vectors, *, names=None) -> None:
        """Append ``vectors`` (M, D); their ids follow the existing ones (N, N+1, ...).

        An index built with names needs ``names`` for the new vectors too, and one built
        without takes none.
        """
        data = _as_vectors(vectors, "vectors", self.dim)
        if (names is None) != (self.names is None):
            has = "has names" if self.names is not None else "has no names"
            raise ParameterError(
                f"the index {has}: pass names for added vectors exactly when the index has them"
            )
        if names is not None:
            names = _check_names(names, len(data), "added")
        self._index.add(data)
        if names is not None:
            self.names.extend(names)

    # -- searching ------------------------------------------------------------------------

    def search(self, queries, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` best gallery vectors for each query, by inner product.

        Args:
            queries: (Q, D) or (D,) float tensor or array.
            k: neighbours per query; clipped to the gallery size N.

        Returns:
            ``(scores, ids)``: (Q, min(k, N)) float32 and int64 tensors, best first. An
            approximate index can find fewer than k candidates when ``nprobe`` (IVF) or
            ``ef_search`` (HNSW) is too small; those trailing slots hold id -1 and score
            -inf.
        """
        k = check_positive_int(k, "k")
        if isinstance(queries, (torch.Tensor, np.ndarray)) and queries.ndim == 1:
            queries = queries[None]
        data = _as_vectors(queries, "queries", self.dim)
        n = len(self)
        if n == 0:
            raise DataError("the index is empty: add vectors before searching")
        scores, ids = self._index.search(data, min(k, n))
        missing = ids < 0
        if missing.any():
            scores[missing] = -np.inf
        return torch.from_numpy(scores), torch.from_numpy(ids)

    @property
    def nprobe(self) -> int | None:
        """IVF lists visited per query (None for other kinds); settable."""
        return int(self._index.nprobe) if self.kind == "ivf" else None

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if self.kind != "ivf":
            raise ParameterError(f"nprobe applies to an 'ivf' index. This one is {self.kind!r}")
        value = check_positive_int(value, "nprobe")
        self._index.nprobe = min(value, self._index.nlist)

    @property
    def ef_search(self) -> int | None:
        """HNSW candidate list size when searching (None for other kinds); settable."""
        return int(self._index.hnsw.efSearch) if self.kind == "hnsw" else None

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if self.kind != "hnsw":
            raise ParameterError(f"ef_search applies to an 'hnsw' index. This one is {self.kind!r}")
        self._index.hnsw.efSearch = check_positive_int(value, "ef_search")

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __repr__(self) -> str:
        extra = f", nprobe={self.nprobe}" if self.kind == "ivf" else ""
        extra += f", ef_search={self.ef_search}" if self.kind == "hnsw" else ""
        return f"VectorIndex(kind={self.kind!r}, dim={self.dim}, count={len(self)}{extra})"

    # -- saving and loading ---------------------------------------------------------------

    def save(self, path) -> Path:
        """Write the index to the folder ``path``: ``index.faiss`` (FAISS's ``write_index``)
        and ``index.json`` (format, dim, kind, count, search settings, names). Each file is
        written to a temporary name and renamed, so a crash never leaves half a file."""
        faiss = _faiss()
        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise ParameterError(
                f"path must be a folder to save the index in. Found a file: {path}"
            )
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": _FORMAT,
            "version": _VERSION,
            "dim": self.dim,
            "kind": self.kind,
            "count": len(self),
            "metric": "inner_product",
            "nprobe": self.nprobe,
            "ef_search": self.ef_search,
            "names": self.names,
        }
        with atomic_path(folder / INDEX_FILE) as tmp:
            faiss.write_index(self._index, str(tmp))
        write_text(folder / META_FILE, json.dumps(meta))  # the bytes earlier versions wrote
        return folder

    @classmethod
    def load(cls, path) -> VectorIndex:
        """Read an index saved by :meth:`save` from the folder ``path``.

        Raises DataError when ``path`` is not such a folder, a file is unreadable, or the
        sidecar disagrees with the FAISS file (dimension, count, kind).
        """
        faiss = _faiss()
        folder = Path(path)
        meta_path, index_path = folder / META_FILE, folder / INDEX_FILE
        if not folder.is_dir() or not meta_path.is_file() or not index_path.is_file():
            raise DataError(
                f"{path} is not a saved VectorIndex: expected a folder holding {INDEX_FILE} "
                f"and {META_FILE}"
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataError(f"{meta_path} is not readable JSON: {error}") from error
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise DataError(f"{meta_path} is not a VectorIndex sidecar (format {_FORMAT!r})")
        if meta.get("version") != _VERSION or meta.get("kind") not in KINDS:
            raise DataError(
                f"{meta_path}: unsupported version {meta.get('version')!r} or kind "
                f"{meta.get('kind')!r}"
            )
        try:
            index = faiss.read_index(str(index_path))
        except RuntimeError as error:
            raise DataError(f"{index_path} is not a readable FAISS index") from error
        if index.d != meta.get("dim") or index.ntotal != meta.get("count"):
            raise DataError(
                f"{index_path} holds {index.ntotal} vectors of dimension {index.d} but "
                f"{meta_path} says {meta.get('count')} of dimension {meta.get('dim')}"
            )
        expected = {"flat": faiss.IndexFlat, "ivf": faiss.IndexIVF, "hnsw": faiss.IndexHNSW}
        if not isinstance(index, expected[meta["kind"]]):
            raise DataError(
                f"{index_path} is a {type(index).__name__}, not the {meta['kind']!r} index "
                f"{meta_path} describes"
            )
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise DataError(f"{index_path} does not search by inner product")
        names = meta.get("names")
        if names is not None and (not isinstance(names, list) or len(names) != index.ntotal):
            raise DataError(f"{meta_path}: names must be a list of {index.ntotal} strings")
        loaded = cls(index, kind=meta["kind"], names=names)
        if meta["kind"] == "ivf" and meta.get("nprobe"):
            loaded.nprobe = meta["nprobe"]
        if meta["kind"] == "hnsw" and meta.get("ef_search"):
            loaded.ef_search = meta["ef_search"]
        return loaded
