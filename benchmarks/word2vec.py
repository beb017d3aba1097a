"""Skip-gram word2vec: xmodal.text.word2vec against gensim, same corpus, same settings.

Both train skip-gram with negative sampling on the same file in the same run, with the
settings of the issue: ``dim 100, window 5, negative 5, min_count 5, sample 1e-3,
alpha 0.025 -> 0.0001, 5 epochs, 2 threads``. gensim reads the file with ``LineSentence``
(one sentence per line, whitespace split, lines cut at 10,000 words), which is exactly
what xmodal's reader does, so both see the same tokens and the same vocabulary.

Reported for each: words/s (raw corpus words x epochs / seconds in training, without the
vocabulary pass, as gensim logs it; and end to end with the vocabulary pass), analogy
accuracy on gensim's ``questions-words.txt`` (3CosAdd, ``restrict_vocab=30000``, case
insensitive, both scored by xmodal's ``evaluate_analogies``; gensim's own
``evaluate_word_analogies`` on gensim's vectors is printed as a cross-check) and the
Spearman correlation on gensim's ``wordsim353.tsv``.

The corpus (about 10M tokens of English): Debian's dictionary packages, built by
``--build-corpus DIR``, which runs exactly these steps (needs ``apt-get`` and
``dpkg-deb``, i.e. a Debian or Ubuntu machine with its package lists: ``apt-get update``):

1. ``apt-get download dict-gcide dict-wn dict-foldoc dict-jargon dict-devil`` in
   ``DIR/debs`` (the Collaborative International Dictionary of English = Webster 1913
   plus WordNet glosses, WordNet 3.0, FOLDOC, the Jargon File, The Devil's Dictionary);
2. ``dpkg-deb -x`` each into ``DIR/root``;
3. read every ``usr/share/dictd/*.dict.dz`` (dictzip is gzip: Python's gzip reads it),
   skip the ``00-database-*`` header entries, drop GCIDE markup that is not prose
   (pronunciations ``\\Ab"a*ca\\`` and ``([a^]b"[.a]*k[.a])``, source tags such as
   ``[1913 Webster]``, WordNet sense labels such as ``n 1:``);
4. cut the text into paragraphs (an entry: a headword line and its indented lines, or a
   block between blank lines), tokenize each with :func:`xmodal.text.vocab.tokenize`
   (lower case, letters and digits, apostrophes deleted) and write one paragraph per line
   to ``DIR/corpus.txt``.

Usage:
    python benchmarks/word2vec.py --build-corpus data/w2v          # about 1 minute
    python benchmarks/word2vec.py --corpus data/w2v/corpus.txt     # about 10 minutes on 2 cores
    python benchmarks/word2vec.py --corpus data/w2v/corpus.txt --markdown
    python benchmarks/word2vec.py --corpus data/w2v/corpus.txt --quick   # 1 epoch
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import time
from pathlib import Path

from _machine import machine

DIM, WINDOW, NEGATIVE, MIN_COUNT, SAMPLE = 100, 5, 5, 5, 1e-3
RESTRICT_VOCAB = 30000
PACKAGES = ("dict-gcide", "dict-wn", "dict-foldoc", "dict-jargon", "dict-devil")

# GCIDE pronunciations: \Ab"a*ca\ and the parenthesised ([a^]b"[.a]*k[.a]) after them.
_PRON = re.compile(r"\\[^\\\n]{0,80}\\|\((?=[^)\n]{0,80}\[)[^)\n]{0,80}\)")
_SOURCE = re.compile(r"\[(?:[^\]\n]*(?:Webster|PJC|WordNet|Century|Suppl)[^\]\n]*)\]")
_SENSE = re.compile(r"^\s*(?:(?:n|v|adj|adv)\s+)?\d+:\s", re.MULTILINE)


def _paragraphs(text: str):
    """Entries of a dictd file: a headword line with its indented lines, or a block."""
    lines: list[str] = []
    for line in text.split("\n"):
        if not line.strip():
            if lines:
                yield "\n".join(lines)
                lines = []
            continue
        if lines and not line[0].isspace() and lines[-1][:1].isspace():
            yield "\n".join(lines)  # a new headword after an indented body
            lines = []
        lines.append(line)
    if lines:
        yield "\n".join(lines)


def build_corpus(out_dir: str | Path) -> Path:
    """Download, extract and tokenize the Debian dictionaries into ``out_dir/corpus.txt``."""
    from xmodal._io import atomic_path
    from xmodal.text.vocab import tokenize

    out_dir = Path(out_dir)
    debs, root = out_dir / "debs", out_dir / "root"
    debs.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs, check=True)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    corpus = out_dir / "corpus.txt"
    n_tokens = n_lines = 0
    with atomic_path(corpus) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for dz in sorted((root / "usr/share/dictd").glob("*.dict.dz")):
            with gzip.open(dz, "rt", encoding="utf-8", errors="replace") as f:
                text = f.read()
            for para in _paragraphs(text):
                if para.startswith(("00-database", "00database")):
                    continue
                para = _SENSE.sub(" ", _SOURCE.sub(" ", _PRON.sub(" ", para)))
                tokens = tokenize(para)
                if tokens:
                    out.write(" ".join(tokens) + "\n")
                    n_tokens += len(tokens)
                    n_lines += 1
    print(f"wrote {corpus}: {n_tokens:,} tokens in {n_lines:,} lines from {', '.join(PACKAGES)}")
    return corpus


def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "unknown"


def gensim_data(name: str) -> Path:
    from gensim.test.utils import datapath

    return Path(datapath(name))


def train_ours(corpus: Path, epochs: int, threads: int, seed: int):
    from xmodal.text.word2vec import Word2VecConfig, train_word2vec

    config = Word2VecConfig(dim=DIM, window=WINDOW, negative=NEGATIVE, min_count=MIN_COUNT,
                            sample=SAMPLE, epochs=epochs, threads=threads, seed=seed)  # fmt: skip
    start = time.perf_counter()
    wv = train_word2vec(corpus, config)
    total = time.perf_counter() - start
    corpus_info, training = wv.meta["corpus"], wv.meta["training"]
    return wv, {
        "tokens": corpus_info["tokens"],
        "vocab": len(wv),
        "vocab_s": corpus_info["scan_seconds"],
        "train_s": training["train_seconds"],
        "total_s": total,
    }


def train_gensim(corpus: Path, epochs: int, threads: int, seed: int, corpus_file: bool):
    """gensim's Word2Vec on ``LineSentence(corpus)`` or, with ``corpus_file``, its
    ``corpus_file=`` mode (each worker reads its share of the file in C++)."""
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    from xmodal.text.word2vec import WordVectors

    start = time.perf_counter()
    model = Word2Vec(sg=1, vector_size=DIM, window=WINDOW, negative=NEGATIVE, hs=0,
                     min_count=MIN_COUNT, sample=SAMPLE, epochs=epochs, workers=threads,
                     seed=seed)  # fmt: skip
    if corpus_file:
        model.build_vocab(corpus_file=str(corpus))
    else:
        model.build_vocab(LineSentence(str(corpus)))
    vocab_s = time.perf_counter() - start
    if corpus_file:
        model.train(corpus_file=str(corpus), total_words=model.corpus_total_words, epochs=epochs)
    else:
        model.train(LineSentence(str(corpus)), total_examples=model.corpus_count, epochs=epochs)
    total = time.perf_counter() - start
    wv = WordVectors(model.wv.index_to_key, model.wv.vectors)
    return (
        model,
        wv,
        {
            "tokens": model.corpus_total_words,
            "vocab": len(wv),
            "vocab_s": vocab_s,
            "train_s": total - vocab_s,
            "total_s": total,
        },
    )


def print_table(header: list[str], rows: list[list[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-corpus", metavar="DIR", help="build the corpus in DIR first")
    parser.add_argument("--corpus", metavar="FILE", help="the corpus to train on")
    parser.add_argument("--epochs", type=int, default=5, help="(default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="(default: %(default)s)")
    parser.add_argument("--no-corpus-file", dest="corpus_file", action="store_false",
                        help="skip the run of gensim's corpus_file mode")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="1 epoch: a smoke run")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    args = parser.parse_args(argv)
    corpus = build_corpus(args.build_corpus) if args.build_corpus else None
    if args.corpus:
        corpus = Path(args.corpus)
    if corpus is None:
        if not args.build_corpus:
            parser.error("give --corpus FILE (or --build-corpus DIR to make one)")
        return
    import gensim

    from xmodal.text.word2vec import evaluate_analogies, evaluate_similarity

    epochs = 1 if args.quick else args.epochs
    questions, wordsim = gensim_data("questions-words.txt"), gensim_data("wordsim353.tsv")
    loads = [("before", _load())]
    runs = {}
    wv, runs["xmodal"] = train_ours(corpus, epochs, args.threads, args.seed)
    vectors = {"xmodal": wv}
    loads.append(("after xmodal", _load()))
    model, vectors["gensim"], runs["gensim"] = train_gensim(
        corpus, epochs, args.threads, args.seed, corpus_file=False
    )
    loads.append(("after gensim", _load()))
    if args.corpus_file:
        _, vectors["gensim corpus_file"], runs["gensim corpus_file"] = train_gensim(
            corpus, epochs, args.threads, args.seed, corpus_file=True
        )
        loads.append(("after gensim corpus_file", _load()))

    scores = {
        name: (evaluate_analogies(wv, questions, restrict_vocab=RESTRICT_VOCAB),
               evaluate_similarity(wv, wordsim))
        for name, wv in vectors.items()
    }  # fmt: skip
    check, _ = model.wv.evaluate_word_analogies(str(questions), restrict_vocab=RESTRICT_VOCAB)

    ours = runs["xmodal"]
    setup = (
        f"skip-gram, negative sampling; dim {DIM}, window {WINDOW}, negative {NEGATIVE}, "
        f"min_count {MIN_COUNT}, sample {SAMPLE:g}, alpha 0.025 -> 0.0001, {epochs} epochs, "
        f"{args.threads} threads, seed {args.seed}; corpus {corpus} ({ours['tokens']:,} "
        f"tokens, {corpus.stat().st_size / 1e6:.1f} MB, vocabulary {ours['vocab']:,})"
    )
    load = "; ".join(f"{when} {value}" for when, value in loads)
    lines = [*machine(f"numba {_version('numba')}", f"gensim {gensim.__version__}"),
             ("setup", setup),
             ("load", f"1/5/15-min load average: {load} (2 cores, shared)")]  # fmt: skip
    for key, value in lines:
        print(f"- {key}: {value}" if args.markdown else f"{key:9s} {value}")
    print()

    words = ours["tokens"] * epochs
    rate = {name: words / r["train_s"] for name, r in runs.items()}
    rows = []
    for name, r in runs.items():
        rows.append([name, f"{r['vocab']:,}", f"{r['vocab_s']:.1f}", f"{r['train_s']:.1f}",
                     f"{rate[name]:,.0f}", f"{words / r['total_s']:,.0f}",
                     f"{rate['xmodal'] / rate[name]:.2f}x"])  # fmt: skip
    print("Speed (raw corpus words x epochs / seconds):\n" if args.markdown else "Speed")
    print_table(["", "vocabulary", "vocabulary pass s", "training s", "words/s (training)",
                 "words/s (end to end)", "xmodal / this"], rows, args.markdown)  # fmt: skip
    ratio = rate["xmodal"] / rate["gensim"]
    print(f"\nwords/s xmodal / gensim: {ratio:.2f}x (target >= 1.00x: "
          f"{'PASS' if ratio >= 1.0 else 'MISS'})\n")  # fmt: skip

    (a_x, s_x), (a_g, s_g) = scores["xmodal"], scores["gensim"]
    names = list(scores)
    quality = [
        ["analogy accuracy (questions-words, restrict 30000)",
         *(f"{100 * scores[n][0].accuracy:.2f}%" for n in names),
         f"{100 * (a_x.accuracy - a_g.accuracy):+.2f} pt", ">= -1 pt",
         "PASS" if a_x.accuracy >= a_g.accuracy - 0.01 else "MISS"],
        ["analogy questions evaluated", *(f"{scores[n][0].n_evaluated}" for n in names),
         "", "", ""],
        ["wordsim353 Spearman", *(f"{scores[n][1].spearman:.4f}" for n in names),
         f"{s_x.spearman - s_g.spearman:+.4f}", ">= -0.02",
         "PASS" if s_x.spearman >= s_g.spearman - 0.02 else "MISS"],
        ["wordsim353 Pearson", *(f"{scores[n][1].pearson:.4f}" for n in names),
         f"{s_x.pearson - s_g.pearson:+.4f}", "", ""],
        ["wordsim353 pairs scored", *(f"{scores[n][1].n_pairs}" for n in names), "", "", ""],
    ]  # fmt: skip
    print("Quality:\n" if args.markdown else "Quality")
    print_table(["metric", *names, "xmodal - gensim", "target", "result"], quality,
                args.markdown)  # fmt: skip
    print(
        f"\ncross-check on gensim's vectors: gensim's evaluate_word_analogies "
        f"{100 * check:.2f}%, xmodal's evaluate_analogies {100 * a_g.accuracy:.2f}%\n"
    )
    sections = [[s.name, *(f"{100 * scores[n][0].section(s.name).accuracy:.1f}% of "
                           f"{scores[n][0].section(s.name).n}" for n in names)]
                for s in a_x.sections]  # fmt: skip
    print("Analogy accuracy per section:\n" if args.markdown else "Per section")
    print_table(["section", *names], sections, args.markdown)


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
