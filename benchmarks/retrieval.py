"""Time gallery search: FAISS (exact flat and approximate IVF / HNSW) against brute-force
torch matmul + top-k, on a 1M x 256 gallery of L2-normalised embeddings.

Two galleries, each searched by 1,000 queries for their 10 best matches by inner product:

- ``random``: Gaussian vectors, normalised. Nearest neighbours of such data are barely
  nearer than the rest, the worst case for an approximate index; its recall is shown as is.
- ``clustered``: vectors around N / 1000 random centres (noise 0.05 per dimension, about
  0.8 of the centre's norm), normalised; queries are drawn the same way. This is how real
  embeddings look (images of the same thing lie together), so approximate recall means
  something here.

For each index: build time, batch throughput (all queries in one call, best of the
repeats, all threads), single-query latency (median over one-at-a-time calls, one
thread), recall@10 against the exact answer of torch, and the ratios to torch
(throughput: index / torch; latency: torch / index, so > 1 means faster than torch either
way). IVF has nlist = 4 * sqrt(N) and is trained on 64 * nlist vectors; it is searched
with several nprobe values.

Usage:
    python benchmarks/retrieval.py              # 1M x 256, several minutes on 2 cores, ~6 GB
    python benchmarks/retrieval.py --quick      # 100K x 256
    python benchmarks/retrieval.py --hnsw       # also an HNSW index (slow to build)
    python benchmarks/retrieval.py --markdown   # tables as markdown, for docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from dataclasses import dataclass

import faiss
import torch
from _machine import machine as _machine

from xmodal.matching.index import VectorIndex, default_nlist, search_torch

K = 10
DIM = 256
QUERIES = 1000


@dataclass
class Config:
    gallery: int
    single: int  # queries timed one at a time
    repeats: int  # batch searches; the best is kept
    nprobes: tuple[int, ...]
    ef_searches: tuple[int, ...]


FULL = Config(gallery=1_000_000, single=50, repeats=3, nprobes=(8, 32, 128), ef_searches=(64, 256))
QUICK = Config(gallery=100_000, single=50, repeats=3, nprobes=(8, 32, 128), ef_searches=(64, 256))


def normalise_(x: torch.Tensor) -> torch.Tensor:
    return x.div_(x.norm(dim=1, keepdim=True))


def make_data(kind: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(gallery (n, DIM), queries (QUERIES, DIM)), normalised, generated in chunks so the
    gallery is the only large allocation."""
    g = torch.Generator().manual_seed(seed)
    gallery = torch.empty(n, DIM)
    queries = torch.empty(QUERIES, DIM)
    if kind == "random":
        for x in (gallery, queries):
            x.normal_(generator=g)
            normalise_(x)
        return gallery, queries
    centres = normalise_(torch.randn(max(n // 1000, 1), DIM, generator=g))
    for x in (gallery, queries):
        for start in range(0, len(x), 100_000):
            block = x[start : start + 100_000]
            assign = torch.randint(len(centres), (len(block),), generator=g)
            block.normal_(generator=g).mul_(0.05).add_(centres[assign])
            normalise_(block)
    return gallery, queries


def time_search(search, queries: torch.Tensor, config: Config):
    """(best batch seconds, median single-query seconds, ids of the batch search)."""
    search(queries[:8])  # warm-up
    batch_s = []
    for _ in range(config.repeats):
        start = time.perf_counter()
        ids = search(queries)
        batch_s.append(time.perf_counter() - start)
    # One thread for single queries: a server runs one query per thread, and on a shared
    # machine a 2-thread call of a few ms waits on whichever thread was descheduled.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    single_s = []
    for i in range(config.single):
        q = queries[i : i + 1]
        start = time.perf_counter()
        search(q)
        single_s.append(time.perf_counter() - start)
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    return min(batch_s), statistics.median(single_s), ids


def recall(found: torch.Tensor, exact: torch.Tensor) -> float:
    hits = sum(len(set(f.tolist()) & set(e.tolist())) for f, e in zip(found, exact, strict=True))
    return hits / exact.numel()


def run_gallery(kind: str, config: Config, hnsw: bool) -> list[list[str]]:
    gallery, queries = make_data(kind, config.gallery, seed=0 if kind == "random" else 1)
    n = len(gallery)
    rows = []

    def row(name, build_s, batch_s, single_s, r, torch_batch_s, torch_single_s):
        rows.append(
            [
                kind,
                name,
                "-" if build_s is None else f"{build_s:.1f}",
                f"{QUERIES / batch_s:,.0f}",
                f"{1000 * single_s:.2f}",
                f"{r:.3f}",
                f"{torch_batch_s / batch_s:.2f}x",
                f"{torch_single_s / single_s:.2f}x",
            ]
        )

    def torch_search(q, gallery=gallery):
        return search_torch(gallery, q, K)[1]

    t_batch, t_single, exact = time_search(torch_search, queries, config)
    row("torch matmul + topk (exact)", None, t_batch, t_single, 1.0, t_batch, t_single)

    start = time.perf_counter()
    flat = VectorIndex.build(gallery, kind="flat")
    build_s = time.perf_counter() - start
    batch_s, single_s, ids = time_search(
        lambda q, index=flat: index.search(q, K)[1], queries, config
    )
    row("faiss flat (exact)", build_s, batch_s, single_s, recall(ids, exact), t_batch, t_single)
    del flat
    gc.collect()

    nlist = default_nlist(n)
    start = time.perf_counter()
    ivf = VectorIndex.build(gallery, kind="ivf", nlist=nlist)
    build_s = time.perf_counter() - start
    for nprobe in config.nprobes:
        ivf.nprobe = nprobe
        batch_s, single_s, ids = time_search(
            lambda q, index=ivf: index.search(q, K)[1], queries, config
        )
        name = f"faiss ivf nlist {nlist}, nprobe {nprobe}"
        row(name, build_s, batch_s, single_s, recall(ids, exact), t_batch, t_single)
        build_s = None  # built once for all nprobe values
    del ivf
    gc.collect()

    if hnsw:
        start = time.perf_counter()
        graph = VectorIndex.build(gallery, kind="hnsw", hnsw_m=32, ef_construction=40)
        build_s = time.perf_counter() - start
        for ef in config.ef_searches:
            graph.ef_search = ef
            batch_s, single_s, ids = time_search(
                lambda q, index=graph: index.search(q, K)[1], queries, config
            )
            name = f"faiss hnsw M 32, ef_search {ef}"
            row(name, build_s, batch_s, single_s, recall(ids, exact), t_batch, t_single)
            build_s = None
        del graph
    del gallery
    gc.collect()
    return rows


def machine() -> list[tuple[str, str]]:
    return _machine(f"faiss-cpu {faiss.__version__}")


def print_table(header: list[str], table: list[list[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for line in table:
            print("| " + " | ".join(line) + " |")
        return
    widths = [max(len(str(c)) for c in column) for column in zip(header, *table, strict=True)]
    for line in [header, *table]:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 100K gallery instead of 1M")
    parser.add_argument("--hnsw", action="store_true", help="also build and time HNSW")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch and FAISS threads"
    )
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)

    start = time.perf_counter()
    rows = []
    for kind in ("random", "clustered"):
        rows += run_gallery(kind, config, args.hnsw)
    total = time.perf_counter() - start

    setup = (
        f"gallery {config.gallery:,} x {DIM} float32, L2-normalised; {QUERIES:,} queries, "
        f"top {K} by inner product; batch = all queries in one call (best of "
        f"{config.repeats}); single = median of {config.single} one-query calls on 1 thread; "
        f"recall@{K} "
        f"against torch's exact answer; batch on {args.threads} threads; whole run {total:.0f} s"
    )
    for key, value in machine():
        print(f"- {key}: {value}" if args.markdown else f"{key:9s} {value}")
    print(f"- setup: {setup}\n" if args.markdown else f"{'setup':9s} {setup}\n")
    header = [
        "gallery", "search", "build s", "batch queries/s", "single query ms",
        f"recall@{K}", "batch vs torch", "single vs torch",
    ]  # fmt: skip
    print_table(header, rows, args.markdown)


if __name__ == "__main__":
    main()
