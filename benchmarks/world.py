"""How fast the world makes samples, on one core.

Targets (issue 3): shapes scenes with 1 s of 16 kHz audio (and captions and questions) at
>= 1,000 per second; image + captions only at >= 5,000 per second. Image + captions +
questions and places are reported too. Each rate is measured over consecutive indices
of the train split after a warm-up, in one process with torch and numpy on one thread,
and the best of several rounds is kept (the machine's other load only ever adds time).

Usage:
    python benchmarks/world.py              # about 30 s
    python benchmarks/world.py --markdown   # a table for docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402

from xmodal.world import World  # noqa: E402

TARGETS = {
    "scenes with 1 s audio": 1000.0,
    "scenes, image + captions only": 5000.0,
    "talking faces, warm speech cache": 200.0,
    "two-speaker mixtures, warm speech cache": 200.0,
}


def _rate(fn, n: int, rounds: int) -> float:
    fn(0)  # warm-up: caches of textures, wavetables, filters
    best = 0.0
    start_index = 1
    for _ in range(rounds):
        t = time.perf_counter()
        for i in range(start_index, start_index + n):
            fn(i)
        best = max(best, n / (time.perf_counter() - t))
        start_index += n
    return best


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--n", type=int, default=2000, help="samples per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    world = World(seed=0)
    rows = [
        ("scenes with 1 s audio", _rate(lambda i: world.scene("train", i), args.n, args.rounds)),
        ("scenes, image + captions only",
         _rate(lambda i: world.scene("train", i, audio=False, questions=False), args.n,
               args.rounds)),
        ("scenes, image + captions + questions",
         _rate(lambda i: world.scene("train", i, audio=False), args.n, args.rounds)),
        ("places with 1 s audio", _rate(lambda i: world.place("train", i), args.n, args.rounds)),
        ("places, image only",
         _rate(lambda i: world.place("train", i, audio=False), args.n, args.rounds)),
    ]  # fmt: skip
    # Talking faces with a warm speech cache: 50 sentences x 4 speakers, synthesized once.
    import tempfile

    cache = tempfile.mkdtemp(prefix="xmodal-speech-")
    for k in range(4):
        for j in range(50):
            world.utterance("train", k, j, cache_dir=cache)
    rows.append(("talking faces, warm speech cache",
                 _rate(lambda i: world.utterance("train", i % 4, i % 50, cache_dir=cache),
                       min(args.n, 400), args.rounds)))  # fmt: skip
    # Two-speaker mixtures: the first 60 mixtures' utterances are cached first.
    for i in range(61):
        world.mixture("train", i, cache_dir=cache)
    rows.append(("two-speaker mixtures, warm speech cache",
                 _rate(lambda i: world.mixture("train", i % 60, cache_dir=cache), 60,
                       args.rounds)))  # fmt: skip
    print(f"date      {datetime.date.today()}")
    print(f"cpu       {_cpu()}, one thread")
    print(f"versions  python {platform.python_version()}, torch {torch.__version__}")
    cfg = world.config
    print(f"world     image_size {cfg.image_size}, {cfg.sample_rate} Hz, {cfg.clip_seconds} s")
    print(f"timing    {args.n} samples per round, best of {args.rounds} rounds")
    if args.markdown:
        print("\n| samples | per second | target | result |\n|---|---|---|---|")
    for name, rate in rows:
        target = TARGETS.get(name)
        verdict = "-" if target is None else ("PASS" if rate >= target else "MISS")
        target_text = "-" if target is None else f">= {target:,.0f}"
        if args.markdown:
            print(f"| {name} | {rate:,.0f} | {target_text} | {verdict} |")
        else:
            print(f"{name:40s} {rate:10,.0f}/s   target {target_text:>9s}   {verdict}")


if __name__ == "__main__":
    main()
