"""Time GPT generation with and without the KV cache (the claim: >= 5x at 512 tokens).

The same model (a preset with a 512-token context, random weights: speed does not depend
on what the weights say), the same prompt (one token, batch 1), greedy decoding, so both
ways must return the same tokens; the table says whether they did. For each length ``L``
the model generates ``L - 1`` tokens after the prompt, so the last step sees ``L`` tokens:

- without the cache every step runs the whole sequence so far through the model
  (``O(L^2)`` token-layers in all, what a straightforward loop does);
- with it every step runs only the newest token, reusing the keys and values of the
  earlier ones (``O(L)`` token-layers, attention still reads all ``L`` keys).

Timings are the best of the repeats after a warm-up (other load only ever adds time).

Usage:
    python benchmarks/transformer.py                 # the "small" preset (10.8 M), minutes
    python benchmarks/transformer.py --preset tiny   # 0.9 M parameters, seconds
    python benchmarks/transformer.py --quick         # lengths 64 and 128 only
    python benchmarks/transformer.py --markdown      # tables as markdown, for docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from _machine import machine

from xmodal.text.transformer import GPT, PRESETS, TransformerConfig

CONTEXT = 512
LENGTHS = (64, 128, 256, 512)
QUICK_LENGTHS = (64, 128)
TARGET = 5.0  # the cache must be at least this many times faster at 512 tokens
VOCAB = 256  # a byte-level vocabulary


def time_generate(model: GPT, length: int, *, use_cache: bool, repeats: int):
    """Best seconds to generate ``length - 1`` tokens after a 1-token prompt, and the tokens."""
    prompt = torch.zeros(1, 1, dtype=torch.long)
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = model.generate(prompt, length - 1, top_k=1, use_cache=use_cache)
        best = min(best, time.perf_counter() - start)
    return best, out


def print_table(header: list[str], rows: list[list[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS),
                        help="model size (default: %(default)s)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="lengths 64 and 128 only")
    parser.add_argument("--repeats", type=int, default=2, help="cached runs per length")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch threads (default: all cores)")  # fmt: skip
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lengths = QUICK_LENGTHS if args.quick else LENGTHS

    torch.manual_seed(0)
    config = TransformerConfig.preset(args.preset, vocab_size=VOCAB, block_size=CONTEXT,
                                      dropout=0.0)  # fmt: skip
    model = GPT(config).eval()
    model.generate(torch.zeros(1, 1, dtype=torch.long), 16, top_k=1)  # warm-up
    model.generate(torch.zeros(1, 1, dtype=torch.long), 16, top_k=1, use_cache=False)

    rows, all_same, ratio_at = [], True, {}
    for length in lengths:
        cached_s, cached = time_generate(model, length, use_cache=True, repeats=args.repeats)
        # The uncached loop is the slow one: once at the longest lengths, twice below.
        full_s, full = time_generate(model, length, use_cache=False,
                                     repeats=1 if length >= 256 else args.repeats)  # fmt: skip
        same = torch.equal(cached, full)
        all_same = all_same and same
        new = length - 1
        ratio = full_s / cached_s
        ratio_at[length] = ratio
        verdict = ""
        if length == CONTEXT:
            verdict = "PASS" if ratio >= TARGET and same else "MISS"
        rows.append([str(length), f"{new / cached_s:.0f}", f"{new / full_s:.0f}",
                     f"{cached_s:.2f}", f"{full_s:.2f}", f"{ratio:.1f}x",
                     f">= {TARGET:g}x" if length == CONTEXT else "", verdict,
                     "yes" if same else "no"])  # fmt: skip

    params = model.num_parameters()
    setup = (
        f"GPT preset {args.preset!r} ({config.n_layer} layers, {config.n_embd} wide, "
        f"{config.n_head} heads, {params / 1e6:.1f} M parameters), context {CONTEXT}, "
        f"vocabulary {VOCAB}, float32, batch 1, 1-token prompt, greedy; best of "
        f"{args.repeats} cached runs, the uncached best of {args.repeats} below 256 tokens "
        "and one run from 256"
    )
    for key, value in machine():
        print(f"- {key}: {value}" if args.markdown else f"{key:9s} {value}")
    print(f"- setup: {setup}\n" if args.markdown else f"{'setup':9s} {setup}\n")
    print("Generation: KV cache vs full recomputation every step\n" if args.markdown
          else "Generation: KV cache vs full recomputation every step")  # fmt: skip
    header = ["tokens", "cached tok/s", "uncached tok/s", "cached s", "uncached s",
              "speed-up", "target", "result", "same tokens"]  # fmt: skip
    print_table(header, rows, args.markdown)
    print()
    print(f"same tokens: {'yes' if all_same else 'no'}")
    if not all_same:
        raise SystemExit("cached and uncached generation disagree")


if __name__ == "__main__":
    main()
