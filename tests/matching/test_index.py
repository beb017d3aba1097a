"""Vector index: FAISS search against the brute-force torch reference, approximate recall
on clustered data, save/load round trips and the errors on bad input."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from xmodal.errors import DataError, ParameterError
from xmodal.matching.index import VectorIndex, default_nlist, search_torch

pytest.importorskip("faiss")

DIM = 32


def normalised(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def gallery() -> np.ndarray:
    return normalised(np.random.default_rng(0).standard_normal((2000, DIM)))


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return normalised(np.random.default_rng(1).standard_normal((50, DIM)))


@pytest.fixture(scope="module")
def clustered():
    """(gallery, queries): 4,000 points in 64 tight clusters, queries near the same centres."""
    rng = np.random.default_rng(2)
    centres = normalised(rng.standard_normal((64, DIM)))
    points = centres[rng.integers(0, 64, 4000)] + 0.15 * rng.standard_normal((4000, DIM))
    near = centres[rng.integers(0, 64, 100)] + 0.15 * rng.standard_normal((100, DIM))
    return normalised(points), normalised(near)


def recall_at_k(found: torch.Tensor, exact: torch.Tensor) -> float:
    hits = sum(len(set(f.tolist()) & set(e.tolist())) for f, e in zip(found, exact, strict=True))
    return hits / exact.numel()


# -- the torch reference ------------------------------------------------------------------


def test_search_torch_matches_full_sort(gallery, queries):
    scores, ids = search_torch(gallery, queries, k=7, chunk_size=300)  # several chunks
    full = torch.from_numpy(queries) @ torch.from_numpy(gallery).T
    order = full.argsort(dim=1, descending=True)[:, :7]
    assert torch.equal(ids, order)
    torch.testing.assert_close(scores, full.gather(1, order))


def test_search_torch_clips_k_and_checks_input(gallery, queries):
    scores, ids = search_torch(gallery[:5], queries, k=10)
    assert scores.shape == ids.shape == (50, 5)
    assert sorted(ids[0].tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ParameterError, match="dimension 16.*dimension 32"):
        search_torch(gallery, queries[:, :16], k=3)
    with pytest.raises(ParameterError, match="k must be an integer >= 1. Found: 0"):
        search_torch(gallery, queries, k=0)
    with pytest.raises(ParameterError, match="gallery is empty"):
        search_torch(gallery[:0], queries, k=3)


# -- FAISS against the reference -----------------------------------------------------------


def test_flat_equals_torch(gallery, queries):
    index = VectorIndex.build(gallery, kind="flat")
    assert (len(index), index.dim, index.kind) == (2000, DIM, "flat")
    scores, ids = index.search(queries, k=10)
    ref_scores, ref_ids = search_torch(gallery, queries, k=10)
    assert scores.dtype == torch.float32 and ids.dtype == torch.int64
    assert torch.equal(ids, ref_ids)
    torch.testing.assert_close(scores, ref_scores, atol=1e-5, rtol=0)


def test_flat_accepts_torch_float64_and_single_query(gallery, queries):
    index = VectorIndex.build(torch.from_numpy(gallery).double(), kind="flat")
    scores, ids = index.search(torch.from_numpy(queries[3]), k=4)
    assert ids.shape == (1, 4)
    assert torch.equal(ids, search_torch(gallery, queries[3:4], k=4)[1])


def test_k_larger_than_gallery_is_clipped(gallery, queries):
    index = VectorIndex.build(gallery[:6], kind="flat")
    scores, ids = index.search(queries, k=50)
    assert ids.shape == (50, 6)
    assert (ids >= 0).all() and torch.isfinite(scores).all()


def test_add_appends_ids(gallery, queries):
    index = VectorIndex.build(gallery[:1200], kind="flat", names=[f"a{i}" for i in range(1200)])
    index.add(gallery[1200:], names=[f"a{i}" for i in range(1200, 2000)])
    assert len(index) == 2000 and index.names[1500] == "a1500"
    assert torch.equal(index.search(queries, k=5)[1], search_torch(gallery, queries, k=5)[1])


@pytest.mark.parametrize(
    ("kind", "options"),
    [("ivf", {"nlist": 64, "nprobe": 8}), ("hnsw", {"hnsw_m": 16, "ef_search": 64})],
)
def test_approximate_recall_on_clustered_data(clustered, kind, options):
    points, near = clustered
    _, exact = search_torch(points, near, k=10)
    index = VectorIndex.build(points, kind=kind, **options)
    _, found = index.search(near, k=10)
    assert recall_at_k(found, exact) >= 0.95


def test_ivf_more_probes_more_recall(clustered):
    points, near = clustered
    _, exact = search_torch(points, near, k=10)
    index = VectorIndex.build(points, kind="ivf", nlist=64, nprobe=1)
    low = recall_at_k(index.search(near, k=10)[1], exact)
    index.nprobe = 64  # every list: exact
    assert index.nprobe == 64
    full = recall_at_k(index.search(near, k=10)[1], exact)
    assert full == 1.0 and low < full


def test_default_nlist():
    assert default_nlist(1_000_000) == 4000
    assert default_nlist(10_000) == 400
    assert default_nlist(3) == 3


# -- saving and loading ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_save_load_round_trip(tmp_path, clustered, kind):
    points, near = clustered
    names = [f"img/{i:05d}.png" for i in range(len(points))]
    index = VectorIndex.build(points, kind=kind, nlist=32, nprobe=5, ef_search=40, names=names)
    before = index.search(near, k=10)
    index.save(tmp_path / "idx")
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert (meta["dim"], meta["kind"], meta["count"]) == (DIM, kind, len(points))
    loaded = VectorIndex.load(tmp_path / "idx")
    assert (loaded.kind, loaded.dim, len(loaded), loaded.names) == (kind, DIM, len(points), names)
    assert (loaded.nprobe, loaded.ef_search) == (index.nprobe, index.ef_search)
    after = loaded.search(near, k=10)
    assert torch.equal(before[1], after[1]) and torch.equal(before[0], after[0])


def test_load_rejects_what_is_not_an_index(tmp_path, gallery):
    with pytest.raises(DataError, match="not a saved VectorIndex"):
        VectorIndex.load(tmp_path / "missing")
    with pytest.raises(DataError, match="not a saved VectorIndex"):
        VectorIndex.load(tmp_path)  # a folder without the files
    VectorIndex.build(gallery, kind="flat").save(tmp_path / "ok")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "index.json").write_bytes((tmp_path / "ok" / "index.json").read_bytes())
    (tmp_path / "bad" / "index.faiss").write_text("not faiss")
    with pytest.raises(DataError, match="not a readable FAISS index"):
        VectorIndex.load(tmp_path / "bad")
    (tmp_path / "bad" / "index.json").write_text("{broken")
    with pytest.raises(DataError, match="not readable JSON"):
        VectorIndex.load(tmp_path / "bad")
    (tmp_path / "bad" / "index.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DataError, match="not a VectorIndex sidecar"):
        VectorIndex.load(tmp_path / "bad")
    meta = json.loads((tmp_path / "ok" / "index.json").read_text())
    meta["dim"] = 64
    (tmp_path / "ok" / "index.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="dimension 32 but .* dimension 64"):
        VectorIndex.load(tmp_path / "ok")
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ParameterError, match="must be a folder"):
        VectorIndex.build(gallery[:10]).save(afile)


# -- bad input ---------------------------------------------------------------------------------


def test_bad_input(gallery, queries):
    index = VectorIndex.build(gallery, kind="flat")
    with pytest.raises(ParameterError, match="queries have dimension 16 .* dimension 32"):
        index.search(queries[:, :16], k=3)
    with pytest.raises(ParameterError, match="vectors have dimension 8 .* dimension 32"):
        index.add(gallery[:4, :8])
    with pytest.raises(ParameterError, match="k must be an integer >= 1. Found: 0"):
        index.search(queries, k=0)
    with pytest.raises(ParameterError, match="vectors is empty"):
        VectorIndex.build(np.zeros((0, DIM), np.float32))
    bad = gallery[:10].copy()
    bad[4, 2] = np.nan
    with pytest.raises(ParameterError, match=r"vectors contains 1 non-finite.*\(4, 2\)"):
        VectorIndex.build(bad)
    bad_q = queries[:3].copy()
    bad_q[1, 0] = np.inf
    with pytest.raises(ParameterError, match="queries contains 1 non-finite"):
        index.search(bad_q)
    with pytest.raises(ParameterError, match="must have shape"):
        VectorIndex.build(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ParameterError, match="integer"):
        VectorIndex.build(np.ones((4, 4), np.int64))
    with pytest.raises(ParameterError, match="kind must be one of"):
        VectorIndex.build(gallery, kind="lsh")
    with pytest.raises(ParameterError, match=r"nlist must be <= the number of vectors \(10\)"):
        VectorIndex.build(gallery[:10], kind="ivf", nlist=20)
    with pytest.raises(ParameterError, match="one name per gallery vector: 10 vectors, 3 names"):
        VectorIndex.build(gallery[:10], names=["a", "b", "c"])
    with pytest.raises(ParameterError, match="has no names"):
        index.add(gallery[:2], names=["x", "y"])
    with pytest.raises(ParameterError, match="nprobe applies to an 'ivf' index"):
        index.nprobe = 4


def test_missing_faiss_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        VectorIndex.build(np.eye(4, dtype=np.float32))
