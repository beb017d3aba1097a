"""Time the captioning models: training, batched beam search against a per-image loop,
and the data loader against the training step.

1. Training throughput (forward + backward + Adam step) of Show, Attend and Tell and of
   Show and Tell with their default sizes (small-cnn with 128 channels, embeddings 128,
   LSTM 256, attention 128), batches of 64 world images each with one of its five
   captions drawn at random. The images are held in memory, so this is the model alone.
2. Beam search (beam 5, at most 20 words) on 256 val images with each model after that
   training: ``model.generate`` (all images and beams in one tensor program per step)
   against :func:`xmodal.translation.beam_search_loop` (one image at a time), in the same
   run. Both must return the same captions; the table says whether they did.
3. The DataLoader the training task would use (``make_dataset(world, "captioning",
   "train")``, ``collate``, 2 workers, batches of 64) against the Show, Attend and Tell
   step of part 1: the loader must deliver samples faster than the step consumes them.

Timings are the best of the repeats after a warm-up (the machine's other load only ever
adds time).

Usage:
    python benchmarks/captioning.py              # about 3 minutes on 2 cores
    python benchmarks/captioning.py --quick      # fewer steps and images, for a smoke run
    python benchmarks/captioning.py --markdown   # tables as markdown, for docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from dataclasses import dataclass

import torch
from _machine import machine as _machine
from torch.utils.data import DataLoader

from xmodal.text.vocab import Vocabulary, tokenize
from xmodal.translation import ShowAttendTell, ShowTell, beam_search_loop, caption_loss
from xmodal.world import World
from xmodal.world.datasets import collate, make_dataset

BATCH = 64
BEAM = 5
MAX_LEN = 20
LOADER_WORKERS = 2
BEAM_TARGET = 5.0  # batched beam search must be at least this many times the loop's speed
MODELS = {"show-attend-tell": ShowAttendTell, "show-tell": ShowTell}


@dataclass
class Config:
    train_images: int  # held in memory for training
    train_steps: int  # per model; the step time is the median of those after warm-up
    beam_images: int
    beam_repeats: int  # batched search; the loop runs once fewer (at least once)
    loader_batches: int


FULL = Config(
    train_images=2048, train_steps=200, beam_images=256, beam_repeats=3, loader_batches=60
)
QUICK = Config(train_images=256, train_steps=20, beam_images=32, beam_repeats=2, loader_batches=15)


def load(world: World, split: str, n: int):
    ds = make_dataset(world, "captioning", split, size=n)
    items = [ds[i] for i in range(n)]
    images = torch.stack([item["image"] for item in items])  # (n, 3, 64, 64)
    captions = [[" ".join(tokenize(c)) for c in item["captions"]] for item in items]
    return images, captions


def train(name: str, vocab: Vocabulary, images, captions, steps: int, seed: int = 0):
    """Train ``name`` for ``steps`` steps; return (model, median step seconds, last xent)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = MODELS[name](len(vocab))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    times = []
    for _ in range(steps):
        index = rng.sample(range(len(images)), BATCH)
        tokens, _ = vocab.encode_batch([rng.choice(captions[i]) for i in index])
        x = images[index]
        start = time.perf_counter()
        loss, parts = caption_loss(model(x, tokens), tokens, alpha_c=model.alpha_c)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    warm = times[min(3, len(times) - 1) :]
    return model.eval(), statistics.median(warm), parts["xent"].item()


def time_beam_search(model, images, repeats: int):
    """Best seconds of the batched search and of the loop, and whether they agree."""
    kw = dict(beam_size=BEAM, max_len=MAX_LEN, length_penalty=1.0)
    model.generate(images[:8], **kw)  # warm-up
    beam_search_loop(model, images[:2], **kw)
    batched_s, loop_s = [], []
    for r in range(repeats):
        start = time.perf_counter()
        gen = model.generate(images, **kw)
        batched_s.append(time.perf_counter() - start)
        if r < max(repeats - 1, 1):
            start = time.perf_counter()
            ref = beam_search_loop(model, images, **kw)
            loop_s.append(time.perf_counter() - start)
    ours = [row[:n].tolist() for row, n in zip(gen.tokens, gen.lengths, strict=True)]
    theirs = [row[:n].tolist() for row, n in zip(ref.tokens, ref.lengths, strict=True)]
    differ = sum(a != b for a, b in zip(ours, theirs, strict=True))
    return min(batched_s), min(loop_s), differ, gen


def time_loader(world: World, batches: int) -> float:
    """Samples per second of the 2-worker loader in its steady state.

    The clock starts once the batches the workers prefetched during start-up
    (``workers * prefetch_factor``) have been taken, so it measures production, not a queue.
    """
    ds = make_dataset(world, "captioning", "train")
    loader = DataLoader(
        ds, batch_size=BATCH, shuffle=True, num_workers=LOADER_WORKERS, collate_fn=collate
    )
    it = iter(loader)
    for _ in range(2 * LOADER_WORKERS):  # prefetch_factor defaults to 2
        next(it)
    start = time.perf_counter()
    n = 0
    for _ in range(batches):
        n += len(next(it)["image"])
    seconds = time.perf_counter() - start
    del it
    return n / seconds


def machine() -> list[tuple[str, str]]:
    return _machine()


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
    parser.add_argument("--quick", action="store_true", help="fewer steps and images")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)"
    )
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    torch.set_num_threads(args.threads)

    world = World(seed=0)
    images, captions = load(world, "train", config.train_images)
    vocab = Vocabulary.build([c for caps in captions for c in caps])
    val_images, _ = load(world, "val", config.beam_images)

    train_rows, beam_rows, models, all_same = [], [], {}, True
    step_rate = {}
    for name in MODELS:
        model, step_s, loss = train(name, vocab, images, captions, config.train_steps)
        models[name] = model
        step_rate[name] = BATCH / step_s
        params = sum(p.numel() for p in model.parameters())
        train_rows.append(
            [
                name,
                f"{params / 1e6:.2f} M",
                str(BATCH),
                f"{1000 * step_s:.0f}",
                f"{BATCH / step_s:.0f}",
                f"{loss:.3f} after {config.train_steps} steps",
            ]
        )
    for name, model in models.items():
        batched_s, loop_s, differ, gen = time_beam_search(model, val_images, config.beam_repeats)
        same = differ == 0
        all_same = all_same and same
        n = len(val_images)
        speedup = loop_s / batched_s
        beam_rows.append(
            [
                name,
                f"{n} x beam {BEAM}",
                f"{batched_s:.3f}",
                f"{loop_s:.3f}",
                f"{n / batched_s:.0f}",
                f"{n / loop_s:.0f}",
                f"{speedup:.1f}x",
                f">= {BEAM_TARGET:g}x",
                "PASS" if speedup >= BEAM_TARGET and same else "MISS",
                "yes" if same else f"no ({differ} differ)",
                f"{float(gen.lengths.float().mean()):.1f}",
            ]
        )
    loader_rate = time_loader(world, config.loader_batches)
    sat_rate = step_rate["show-attend-tell"]
    loader_rows = [
        [
            f"{LOADER_WORKERS} workers, batch {BATCH}",
            f"{loader_rate:.0f}",
            f"{sat_rate:.0f}",
            f"{loader_rate / sat_rate:.1f}x",
            "PASS" if loader_rate > sat_rate else "MISS",
        ]
    ]

    setup = (
        f"default model sizes; training batch {BATCH}, Adam lr 2e-3, {config.train_steps} "
        f"steps on {config.train_images} in-memory world train images (a random caption of "
        f"five each, vocabulary {len(vocab)}); beam search beam {BEAM}, max_len {MAX_LEN}, "
        f"length_penalty 1 on {config.beam_images} val images"
    )
    sections = [
        (
            "Training step (forward + backward + Adam), images in memory",
            ["model", "parameters", "batch", "step ms", "samples/s", "cross-entropy"],
            train_rows,
        ),
        (
            "Beam search: model.generate (batched) vs beam_search_loop (one image at a time)",
            [
                "model", "images", "batched s", "loop s", "batched images/s", "loop images/s",
                "speed-up", "target", "result", "same captions", "mean words",
            ],
            beam_rows,
        ),
        (
            "Data loading vs the Show, Attend and Tell training step",
            ["loader", "loader samples/s", "step samples/s", "loader / step", "result"],
            loader_rows,
        ),
    ]  # fmt: skip
    for key, value in machine():
        print(f"- {key}: {value}" if args.markdown else f"{key:9s} {value}")
    print(f"- setup: {setup}\n" if args.markdown else f"{'setup':9s} {setup}\n")
    for title, header, rows in sections:
        print(f"{title}:\n" if args.markdown else title)
        print_table(header, rows, args.markdown)
        print()
    print(f"same captions: {'yes' if all_same else 'no'}")
    if not all_same:
        raise SystemExit("the batched beam search and the per-image loop disagree")


if __name__ == "__main__":
    main()
