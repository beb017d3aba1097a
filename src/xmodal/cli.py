"""The ``xmodal`` command.

    xmodal --version
    xmodal audio show FILE --out fig.png
    xmodal audio features FILE --kind mel|mfcc|spectrogram --out x.npy
    xmodal audio griffinlim FILE --out y.wav
    xmodal world export --format coco|vqa|av-manifest|ljspeech|recipe1m|esc50|flickr-soundnet|vggss
        --out DIR [--size N]
    xmodal world preview --domain scenes|places|faces|recipes -n 16 --out grid.png
    xmodal tasks
    xmodal train TASK [--config f.yaml] [--runs-dir runs] [--resume DIR] [key=value ...]
    xmodal eval TASK --run DIR [--split test]
    xmodal predict TASK --run DIR [INPUT...] [--out DIR] [the task's options]
    xmodal retrieval index --run DIR --images FOLDER --out INDEX [--kind flat|ivf|hnsw]
    xmodal word2vec train CORPUS --out DIR [--dim 100 --window 5 --negative 5 --epochs 5 ...]
    xmodal word2vec eval DIR [--analogies F] [--similarity F]
    xmodal word2vec neighbors DIR WORD | "king - man + woman" [-n 10]
    xmodal word2vec plot DIR WORD... [--analogy A:B ...] [--method pca|tsne] --out fig.png

Every subcommand has ``--help``. A bad file or parameter ends with one line on stderr,
``xmodal: error: ...``, and exit status 1 (2 for a malformed command line); no traceback.
Ctrl-C ends with exit status 130, SIGTERM with 143 and SIGUSR1 with 138 (training first
saves a checkpoint at the current batch to resume from).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from xmodal import __version__
from xmodal.errors import DataError, ParameterError, XmodalError

__all__ = ["build_parser", "main"]


def _add_frame_options(p: argparse.ArgumentParser, *, mel: bool = False) -> None:
    g = p.add_argument_group("analysis (defaults: 16 kHz, 25 ms Hamming window, 10 ms hop)")
    g.add_argument(
        "--sr",
        type=int,
        default=16000,
        help="resample the file to this rate in Hz (default: %(default)s)",
    )
    g.add_argument("--n-fft", type=int, default=512, help="FFT size (default: %(default)s)")
    g.add_argument(
        "--win-length",
        type=int,
        default=400,
        help="window length in samples (default: %(default)s)",
    )
    g.add_argument(
        "--hop-length",
        type=int,
        default=160,
        help="hop between frames in samples (default: %(default)s)",
    )
    g.add_argument("--window", default="hamming", choices=["hamming", "hann", "ones"],
                   help="window function (default: %(default)s)")  # fmt: skip
    if mel:
        g.add_argument("--n-mels", type=int, default=80, help="mel bands (default: %(default)s)")
        g.add_argument("--n-mfcc", type=int, default=13, help="MFCCs (default: %(default)s)")


def _frames(args) -> dict:
    return dict(n_fft=args.n_fft, win_length=args.win_length, hop_length=args.hop_length,
                window=args.window)  # fmt: skip


_FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg")


def _add_figure_options(p: argparse.ArgumentParser) -> None:
    """``--out`` and ``--dpi`` of a command that draws a figure (:func:`_save_figure`)."""
    p.add_argument("--out", required=True, help="figure to write (.png, .pdf, .svg)")
    p.add_argument("--dpi", type=int, default=120, help="resolution of a raster figure")


def _add_run_option(p: argparse.ArgumentParser, metavar: str = "DIR",
                    help: str = "a run folder") -> None:  # fmt: skip
    """``--run``, the run folder a command loads its trained model from (``args.run_dir``)."""
    p.add_argument("--run", dest="run_dir", required=True, metavar=metavar, help=help)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line parser; ``argv`` names the task of ``xmodal predict TASK``, whose own
    options (the fields of its ``PredictOptions``) it then accepts."""
    parser = argparse.ArgumentParser(
        prog="xmodal",
        description="Multimodal learning with vision, text and audio.",
    )
    parser.add_argument("--version", action="version", version=f"xmodal {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    audio = commands.add_parser("audio", help="sound representations: view, extract, invert",
                                description="Sound representations of a file.")  # fmt: skip
    verbs = audio.add_subparsers(dest="verb", metavar="VERB", required=True)

    show = verbs.add_parser(
        "show", help="waveform, spectrogram, mel spectrogram and MFCC in one figure",
        description="Draw the waveform, spectrogram, mel spectrogram and MFCC of FILE.",
    )  # fmt: skip
    show.add_argument("file", metavar="FILE", help="a sound file (WAV, FLAC, OGG, ...)")
    _add_figure_options(show)
    _add_frame_options(show, mel=True)
    show.set_defaults(run=_audio_show)

    feats = verbs.add_parser(
        "features", help="save a spectrogram, mel spectrogram or MFCC as .npy",
        description="Compute features of FILE and save them as a (bands, frames) .npy array "
        "(channels first if --no-mono).",
    )  # fmt: skip
    feats.add_argument("file", metavar="FILE", help="a sound file")
    feats.add_argument("--kind", required=True, choices=["spectrogram", "mel", "mfcc"],
                       help="power spectrogram, power mel spectrogram, or MFCC")  # fmt: skip
    feats.add_argument("--out", required=True, help="the .npy file to write")
    feats.add_argument(
        "--db",
        action="store_true",
        help="convert spectrogram/mel power to dB (power_to_db, top_db=80)",
    )
    feats.add_argument("--no-mono", dest="mono", action="store_false",
                       help="keep the channels instead of averaging them")  # fmt: skip
    _add_frame_options(feats, mel=True)
    feats.set_defaults(run=_audio_features)

    gl = verbs.add_parser(
        "griffinlim", help="round trip through a magnitude spectrogram with Griffin-Lim",
        description="Keep only the STFT magnitude of FILE, rebuild a waveform with fast "
        "Griffin-Lim, write it, and print the spectral convergence.",
    )  # fmt: skip
    gl.add_argument("file", metavar="FILE", help="a sound file")
    gl.add_argument("--out", required=True, help="the sound file to write (.wav, .flac, ...)")
    gl.add_argument("--n-iter", type=int, default=32, help="iterations (default: %(default)s)")
    gl.add_argument(
        "--momentum",
        type=float,
        default=0.99,
        help="fast Griffin-Lim momentum in [0, 1) (default: %(default)s)",
    )
    gl.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the random initial phases (default: %(default)s)",
    )
    _add_frame_options(gl)
    gl.set_defaults(run=_audio_griffinlim)

    _add_world_commands(commands)
    _add_engine_commands(commands, _predict_options(argv))
    _add_word2vec_commands(commands)
    _add_retrieval_commands(commands)
    return parser


# Spelled out rather than imported from xmodal.world, which loads torch and matplotlib:
# `xmodal --help` stays instant. tests/test_cli_world.py checks they match the library.
WORLD_FORMATS = ("coco", "vqa", "av-manifest", "ljspeech", "recipe1m", "esc50", "flickr-soundnet",
                 "vggss")  # fmt: skip
WORLD_DOMAINS = ("scenes", "places", "faces", "recipes")
_CACHE_HELP = "speech cache folder (default: xmodal's user cache)"
WORLD_DEFAULT_SIZES = "train 1000, val 200, test 200"


def _add_world_commands(commands) -> None:
    world = commands.add_parser("world", help="the built-in procedural world: export, preview",
                                description="The built-in procedural world.")  # fmt: skip
    verbs = world.add_subparsers(dest="verb", metavar="VERB", required=True)

    # --format and --domain are checked by the library, not by argparse choices, so a bad
    # value ends like every other bad value: one line naming it, exit status 1.
    exp = verbs.add_parser(
        "export", help="write the world in a real dataset format",
        description="Write the world's train, val and test splits to DIR in a real dataset "
        "format: coco (Karpathy dataset_coco.json + COCO captions + PNG images), vqa (VQA v2 "
        "questions and annotations + images), av-manifest (VGGSound-like manifest.csv, "
        "PNG frames, WAV audio, sounding-object masks), ljspeech (LJSpeech-1.1 metadata.csv "
        "and WAVs of the captions read aloud, at the world's 16 kHz), recipe1m "
        "(Recipe1M-like layer1.json, layer2.json, classes.json + dish images), esc50 "
        "(ESC-50's meta/esc50.csv and 5 s WAVs of the world's labelled sounds, 5 folds, "
        "40 clips per class of the test split by default), flickr-soundnet "
        "(Flickr-SoundNet's JPEG frames, WAVs, Annotations/*.xml boxes of the sounding "
        "objects and metadata/flickr_*.csv lists) or vggss (VGG-SS's frames, WAVs, "
        "metadata/vggss.json boxes and metadata/vggss_*.csv lists).",
    )  # fmt: skip
    exp.add_argument("--format", required=True, metavar="|".join(WORLD_FORMATS),
                     help="the dataset format")  # fmt: skip
    exp.add_argument("--out", required=True, metavar="DIR", help="folder to create (new or empty)")
    exp.add_argument("--seed", type=int, default=0, help="world seed (default: %(default)s)")
    exp.add_argument("--size", type=int, default=None, metavar="N",
                     help=f"samples per split (default: {WORLD_DEFAULT_SIZES})")  # fmt: skip
    exp.add_argument("--overwrite", action="store_true", help="replace a non-empty DIR")
    exp.add_argument("--cache-dir", default=None, metavar="DIR", help=_CACHE_HELP)
    exp.set_defaults(run=_world_export)

    pre = verbs.add_parser(
        "preview", help="a grid of world samples as a figure",
        description="Draw the first N samples of a world domain: scenes (image, caption, a "
        "question with its answer, spectrogram), places (image, class, spectrogram), faces "
        "(face, sex, age, voice; person 0 talking, with the spectrogram of the speech) or "
        "recipes (dish, title, first instructions).",
    )  # fmt: skip
    pre.add_argument(
        "--domain", required=True, metavar="|".join(WORLD_DOMAINS), help="what to draw"
    )
    pre.add_argument("-n", type=int, default=16, help="how many samples (default: %(default)s)")
    _add_figure_options(pre)
    pre.add_argument("--seed", type=int, default=0, help="world seed (default: %(default)s)")
    pre.add_argument("--split", default="train", help="world split (default: %(default)s)")
    pre.add_argument("--cache-dir", default=None, metavar="DIR", help=_CACHE_HELP)
    pre.set_defaults(run=_world_preview)


_PREDICT_VALUED = ("--run", "--out")  # predict's common options that take a value


def _predict_options(argv: list[str] | None) -> argparse.ArgumentParser | None:
    """The options of the task named in ``xmodal predict TASK ...`` as a parent parser
    (None when argv is not a predict command or names no registered task: the normal
    parse reports that)."""
    if not argv or argv[0] != "predict":
        return None
    rest, name = iter(argv[1:]), None
    for arg in rest:
        if arg in _PREDICT_VALUED:
            next(rest, None)
        elif not arg.startswith("-"):
            name = arg
            break
    if name is None:
        return None
    from xmodal.registry import get_task

    try:
        cls = get_task(name)
    except XmodalError:
        return None
    from xmodal.engine.options import add_option_arguments

    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group(f"{name} options")
    add_option_arguments(group, cls.PredictOptions)
    return options


def _add_engine_commands(commands, predict_options=None) -> None:
    tasks = commands.add_parser("tasks", help="list the tasks that train, eval and predict run",
                                description="List the registered tasks.")  # fmt: skip
    tasks.set_defaults(run=_tasks)

    tr = commands.add_parser(
        "train", help="train a task; everything goes to a new run folder",
        description="Train TASK on its default data and write a run folder: the resolved "
        "config, checkpoints/last.ckpt (resumable), logs, model.safetensors + model.json, "
        "metrics.json, figures and report.html. Config values come from the task's "
        "defaults, then --config, then KEY=VALUE overrides (dotted keys, values read as "
        "YAML), e.g. trainer.max_epochs=3 trainer.devices=4 trainer.strategy=ddp.",
    )  # fmt: skip
    tr.add_argument("task", metavar="TASK", help="a task name (see `xmodal tasks`)")
    tr.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    tr.add_argument("--config", metavar="FILE", default=None, help="a YAML config file")
    tr.add_argument("--runs-dir", default="runs", metavar="DIR",
                    help="new runs go to DIR/TASK/<time> (default: %(default)s)")  # fmt: skip
    tr.add_argument("--run-dir", default=None, metavar="DIR",
                    help="write the run to DIR instead (e.g. the same for every process of a "
                    "multi-node job)")  # fmt: skip
    tr.add_argument("--resume", default=None, metavar="DIR",
                    help="continue the run in DIR from its last checkpoint, with its config "
                    "(overrides apply on top, e.g. trainer.max_epochs=20)")  # fmt: skip
    tr.add_argument("--print-config", action="store_true",
                    help="print the resolved config as YAML and exit without training")  # fmt: skip
    tr.set_defaults(run=_train)

    ev = commands.add_parser(
        "eval", help="evaluate a trained run on a split",
        description="Compute every metric of TASK on SPLIT with the run's exported model; "
        "print them and write RUN/eval-SPLIT.json.",
    )  # fmt: skip
    ev.add_argument("task", metavar="TASK", help="the run's task")
    _add_run_option(ev)
    ev.add_argument("--split", default="test", help="data split (default: %(default)s)")
    ev.set_defaults(run=_eval)

    pr = commands.add_parser(
        "predict", help="run a trained model on files or texts",
        description="Run the run's model on each INPUT (a file path or a text, as the task "
        "expects); print each result and the files written. A task may take options of "
        "its own: `xmodal predict TASK --help` lists them.",
        parents=[predict_options] if predict_options is not None else [],
    )  # fmt: skip
    pr.add_argument("task", metavar="TASK", help="the run's task")
    pr.add_argument("inputs", nargs="*", metavar="INPUT", help="files or texts")
    _add_run_option(pr)
    pr.add_argument("--out", default=None, metavar="DIR",
                    help="folder for the outputs (default: RUN/predictions)")  # fmt: skip
    defaults = {} if predict_options is None else vars(predict_options.parse_args([]))
    pr.set_defaults(run=_predict, predict_defaults=defaults)


def _add_retrieval_commands(commands) -> None:
    ret = commands.add_parser(
        "retrieval", help="image-text retrieval galleries: index",
        description="Galleries for a trained `retrieval` run.",
    )  # fmt: skip
    verbs = ret.add_subparsers(dest="verb", metavar="VERB", required=True)
    ix = verbs.add_parser(
        "index", help="embed a folder of images into a persistent FAISS index",
        description="Embed every image under FOLDER (recursively) with the run's model and "
        "save a FAISS index to OUT (index.faiss, index.json, gallery.json). Files that are "
        "not images are skipped and counted. Search it with `xmodal predict retrieval --run "
        "RUN --index OUT --text ...`.",
    )  # fmt: skip
    _add_run_option(ix, "RUN", "a retrieval run folder")
    ix.add_argument("--images", required=True, metavar="FOLDER", help="the image folder")
    ix.add_argument("--out", required=True, metavar="OUT", help="the index folder to write")
    ix.add_argument("--kind", default="flat", choices=["flat", "ivf", "hnsw"],
                    help="exact (flat) or approximate search (default: %(default)s)")  # fmt: skip
    ix.set_defaults(run=_retrieval_index)


def _retrieval_index(args) -> int:
    from xmodal.engine.run import load_run

    task, model = load_run(args.run_dir, "retrieval", stage="predict")
    info = task.build_index(model, args.images, args.out, kind=args.kind, run_dir=args.run_dir)
    print(f"indexed {info['indexed']} images ({info['dim']}-d, {info['kind']}); "
          f"skipped {info['skipped']} files that are not images")  # fmt: skip
    for name in info["skipped_files"][:10]:
        print(f"  skipped {name}")
    print(f"wrote {info['out']}")
    return 0


class _LazyOptionsParser(argparse.ArgumentParser):
    """A subcommand parser that declares some of its options only when it is used:
    ``declare(parser)`` runs before its first parse (``--help`` included). The word2vec
    training flags come from ``Word2VecConfig``, whose import loads torch (seconds), which
    every other command would otherwise pay."""

    def __init__(self, *args, declare=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._declare = declare

    def parse_known_args(self, args=None, namespace=None):
        declare, self._declare = self._declare, None
        if declare is not None:
            declare(self)
        return super().parse_known_args(args, namespace)


def _w2v_train_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per field of Word2VecConfig (``min_count`` -> ``--min-count``), with the
    field's type, default and help: the config is the only place they are written."""
    from xmodal.engine.options import add_option_arguments
    from xmodal.text.word2vec import Word2VecConfig

    group = parser.add_argument_group("training (defaults: as gensim and word2vec.c)")
    add_option_arguments(group, Word2VecConfig)


def _add_word2vec_commands(commands) -> None:
    w2v = commands.add_parser(
        "word2vec", help="skip-gram word vectors: train, eval, neighbors, plot",
        description="Skip-gram word2vec with negative sampling (xmodal.text.word2vec). "
        "`xmodal train word2vec` trains the same model as a task of the engine.",
    )  # fmt: skip
    verbs = w2v.add_subparsers(dest="verb", metavar="VERB", required=True,
                               parser_class=_LazyOptionsParser)  # fmt: skip

    tr = verbs.add_parser(
        "train", help="train word vectors on a text file",
        description="Train skip-gram word vectors on CORPUS (UTF-8, one sentence per line, "
        "tokens separated by whitespace, taken as they are) and write DIR/vectors.bin "
        "(word2vec binary format), DIR/vocab.txt and DIR/config.json. Defaults are "
        "word2vec.c's and gensim's.",
        declare=_w2v_train_flags,
    )  # fmt: skip
    tr.add_argument("corpus", metavar="CORPUS", help="the text file to train on")
    tr.add_argument(
        "--out", required=True, metavar="DIR", help="folder to write (created if needed)"
    )
    tr.add_argument("--overwrite", action="store_true", help="replace vectors already in DIR")
    tr.add_argument("--no-progress", dest="progress", action="store_false",
                    help="do not draw the progress bar on stderr")  # fmt: skip
    tr.set_defaults(run=_w2v_train)

    ev = verbs.add_parser(
        "eval", help="analogy accuracy and word-similarity correlation",
        description="Score the vectors in DIR: analogy accuracy (3CosAdd, per section) on a "
        "questions-words.txt-format file and the Spearman/Pearson correlation with human "
        "scores on a wordsim353.tsv-format file, as gensim computes them. Writes "
        "DIR/eval.json.",
    )  # fmt: skip
    ev.add_argument("dir", metavar="DIR", help="a word2vec folder (or a vectors file)")
    ev.add_argument("--analogies", metavar="FILE", help="questions-words format file")
    ev.add_argument("--similarity", metavar="FILE", help="wordsim353 format file")
    ev.add_argument("--restrict-vocab", type=int, default=300000, metavar="N",
                    help="only the N most frequent words (default: %(default)s)")  # fmt: skip
    ev.add_argument("--case-sensitive", action="store_true",
                    help="match words exactly (default: ignore case, as gensim)")  # fmt: skip
    ev.set_defaults(run=_w2v_eval)

    nb = verbs.add_parser(
        "neighbors", help="nearest words of a word, or of word arithmetic",
        description="Print the words nearest (cosine) to WORD, or to an expression such as "
        "'king - man + woman' (3CosAdd; the words of the expression are left out).",
    )  # fmt: skip
    nb.add_argument("dir", metavar="DIR", help="a word2vec folder (or a vectors file)")
    nb.add_argument("query", metavar="WORD", nargs="+",
                    help="a word, or words joined by ' + ' and ' - '")  # fmt: skip
    nb.add_argument("-n", type=int, default=10, help="how many (default: %(default)s)")
    nb.set_defaults(run=_w2v_neighbors)

    pl = verbs.add_parser(
        "plot", help="2-D map of chosen words with analogy arrows",
        description="Project WORDS (and the words of each --analogy) to 2-D with PCA or "
        "t-SNE and draw one arrow per analogy pair A:B.",
    )  # fmt: skip
    pl.add_argument("dir", metavar="DIR", help="a word2vec folder (or a vectors file)")
    pl.add_argument("words", metavar="WORD", nargs="*", help="words to place")
    pl.add_argument("--analogy", action="append", default=[], metavar="A:B",
                    help="draw an arrow from A to B (repeat for several)")  # fmt: skip
    pl.add_argument("--method", default="pca", metavar="pca|tsne",
                    help="projection (default: %(default)s)")  # fmt: skip
    pl.add_argument("--seed", type=int, default=0, help="t-SNE seed (default: %(default)s)")
    _add_figure_options(pl)
    pl.set_defaults(run=_w2v_plot)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)] + [r[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _metrics_table(metrics: dict) -> str:
    from xmodal.engine.report import flatten_metrics

    def fmt(v) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    flat = flatten_metrics(metrics)
    if not flat:
        return "(no metrics)"
    return _table([("metric", "value")] + [(k, fmt(v)) for k, v in flat.items()])


def _tasks(args) -> int:
    from xmodal.registry import list_tasks

    rows = [("name", "family", "data", "summary")]
    rows += [(t.name, t.family, t.data, t.summary) for t in list_tasks()]
    print(_table(rows))
    return 0


def _train(args) -> int:
    from xmodal.engine.config import format_config
    from xmodal.engine.run import resolve_config, train

    if args.print_config:
        cfg = resolve_config(args.task, config_file=args.config, overrides=args.overrides,
                             resume=args.resume)  # fmt: skip
        print(format_config(cfg), end="")
        return 0
    run = train(args.task, config_file=args.config, overrides=args.overrides,
                runs_dir=args.runs_dir, run_dir=args.run_dir, resume=args.resume,
                echo=lambda line: print(line, flush=True))  # fmt: skip
    if run.metrics:
        print(_metrics_table(run.metrics))
        print(f"run folder: {run.run_dir}")
    return 0


def _eval(args) -> int:
    from xmodal.engine.run import evaluate

    metrics = evaluate(args.run_dir, args.split, task=args.task)
    print(_metrics_table({args.split: metrics}))
    print(f"wrote {Path(args.run_dir) / f'eval-{args.split}.json'}")
    return 0


def _predict(args) -> int:
    from xmodal.engine.run import predict
    from xmodal.registry import get_task

    out = Path(args.out) if args.out is not None else Path(args.run_dir) / "predictions"
    # The options given; predict fills in the others from the task's PredictOptions.
    options = {
        name: getattr(args, name)
        for name, default in args.predict_defaults.items()
        if getattr(args, name) != default
    }
    # A task that writes one file may take --out FILE (e.g. text2image's grid.png): the
    # file goes to the task as out_file, predictions.json beside it.
    if args.out is not None and out.suffix.lower() in get_task(args.task).predict_out_suffixes:
        options["out_file"] = out
        out = out.parent
    records = predict(args.run_dir, args.inputs, out, task=args.task, **options)
    for k, record in enumerate(records):
        if isinstance(record, dict) and "text" in record:
            item = record.get("input", args.inputs[k] if k < len(args.inputs) else k)
            print(f"{item}: {record['text']}")
        for path in record.get("files", []) if isinstance(record, dict) else []:
            print(f"wrote {path}")
    print(f"wrote {out / 'predictions.json'}")
    return 0


def _out_path(value: str, suffixes: tuple[str, ...] = _FIGURE_SUFFIXES) -> Path:
    path = Path(value)
    if path.suffix.lower() not in suffixes:
        raise ParameterError(f"--out must end in {' or '.join(suffixes)}. Found: {value}")
    return path


def _save_figure(fig, out: Path, dpi: int) -> None:
    from xmodal._io import atomic_path

    # Drawn to a temporary file and renamed: an interrupted run leaves no half figure.
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format=out.suffix.lstrip(".").lower())


def _audio_show(args) -> int:
    from xmodal.audio import load
    from xmodal.viz import audio_figure

    out = _out_path(args.out)
    y, sr = load(args.file, sr=args.sr)
    fig = audio_figure(y, sr=sr, n_mels=args.n_mels, n_mfcc=args.n_mfcc,
                       title=Path(args.file).name, **_frames(args))  # fmt: skip
    _save_figure(fig, out, args.dpi)
    print(f"wrote {out} ({len(y) / sr:.2f} s at {sr} Hz)")
    return 0


def _audio_features(args) -> int:
    import numpy as np

    from xmodal.audio import functional as F
    from xmodal.audio import load

    out = _out_path(args.out, (".npy",))
    y, sr = load(args.file, sr=args.sr, mono=args.mono)
    if args.kind == "spectrogram":
        x = F.spectrogram(y, **_frames(args))
    elif args.kind == "mel":
        x = F.melspectrogram(y, sr=sr, n_mels=args.n_mels, **_frames(args))
    else:
        x = F.mfcc(y, sr=sr, n_mels=args.n_mels, n_mfcc=args.n_mfcc, **_frames(args))
    if args.db and args.kind != "mfcc":
        x = F.power_to_db(x)
    from xmodal._io import atomic_path

    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.save(f, x.numpy())
    print(f"wrote {out}: {args.kind}{' (dB)' if args.db else ''} of shape {tuple(x.shape)}")
    return 0


def _audio_griffinlim(args) -> int:
    import torch

    from xmodal.audio import functional as F
    from xmodal.audio import load, save

    y, sr = load(args.file, sr=args.sr)
    if not bool(y.abs().max() > 0):
        raise DataError(f"{args.file}: is silent (all samples are zero); nothing to rebuild")
    S = F.spectrogram(y, power=1.0, **_frames(args))
    gen = torch.Generator().manual_seed(args.seed)
    y_hat = F.griffinlim(S, n_iter=args.n_iter, momentum=args.momentum, length=len(y),
                         generator=gen, **_frames(args))  # fmt: skip
    sc = F.spectral_convergence(S, y_hat, **_frames(args)).item()
    peak = float(y_hat.abs().max())
    if peak > 1.0:  # the rebuilt phase can add a little overshoot; keep the file unclipped
        y_hat = y_hat / peak
    out = save(args.out, y_hat, sr)
    print(f"spectral convergence: {sc:.4f} (n_iter={args.n_iter}, momentum={args.momentum})")
    print(f"wrote {out}")
    return 0


def _world(seed: int):
    from xmodal.world import World

    return World(seed=seed)


def _world_export(args) -> int:
    from xmodal.world.export import export

    sizes = {}
    if args.size is not None:
        if args.size < 1:
            raise ParameterError(f"--size must be an integer >= 1. Found: {args.size}")
        sizes["sizes"] = args.size
    out_dir = Path(args.out)
    # Checked here as well as in export() so the message names the flag, not the keyword.
    if out_dir.is_dir() and any(out_dir.iterdir()) and not args.overwrite:
        raise ParameterError(
            f"--out {args.out} is not empty; choose a new folder or add --overwrite"
        )
    out = export(_world(args.seed), args.format, args.out, overwrite=args.overwrite,
                 cache_dir=args.cache_dir, **sizes)  # fmt: skip
    print(f"wrote {out} ({args.format}, world seed {args.seed})")
    return 0


def _world_preview(args) -> int:
    from xmodal.world.preview import preview

    out = _out_path(args.out)
    fig = preview(_world(args.seed), args.domain, n=args.n, split=args.split,
                  cache_dir=args.cache_dir)  # fmt: skip
    _save_figure(fig, out, args.dpi)
    print(f"wrote {out} ({args.n} {args.domain} of {args.split}, world seed {args.seed})")
    return 0


def _w2v_train(args) -> int:
    from dataclasses import fields

    from xmodal.text.word2vec import Word2VecConfig, train_word2vec

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out {args.out} exists and is not a folder")
    if (out / "vectors.bin").exists() and not args.overwrite:
        raise ParameterError(
            f"--out {args.out} already holds vectors.bin; choose a new folder or add --overwrite"
        )
    config = Word2VecConfig(**{f.name: getattr(args, f.name) for f in fields(Word2VecConfig)})
    wv = train_word2vec(args.corpus, config, out_dir=out, progress=args.progress)
    corpus, training = wv.meta["corpus"], wv.meta["training"]
    print(
        f"{corpus['tokens']:,} tokens, vocabulary {len(wv):,} words (min_count "
        f"{config.min_count}), {config.epochs} epochs in {training['train_seconds']:.1f} s: "
        f"{training['words_per_second']:,.0f} words/s, final loss "
        f"{training['epoch_loss'][-1]:.4f}"
    )
    if corpus["replaced_bytes"]:
        print(
            f"warning: {corpus['replaced_bytes']:,} byte(s) on {corpus['replaced_lines']:,} "
            "line(s) were not UTF-8 and were replaced by U+FFFD",
            file=sys.stderr,
        )
    print(f"wrote {out}")
    return 0


def _w2v_load(path: str):
    from xmodal.text.word2vec import WordVectors

    return WordVectors.load(path)


def _w2v_eval(args) -> int:
    from xmodal._io import write_json
    from xmodal.text.word2vec import evaluate_analogies, evaluate_similarity

    if not args.analogies and not args.similarity:
        raise ParameterError("give --analogies FILE and/or --similarity FILE")
    wv = _w2v_load(args.dir)
    kw = dict(restrict_vocab=args.restrict_vocab, case_insensitive=not args.case_sensitive)
    report: dict = {}
    if args.analogies:
        res = evaluate_analogies(wv, args.analogies, **kw)
        report["analogies"] = {"file": str(args.analogies), **res.to_dict()}
        rows = [("section", "accuracy", "correct / evaluated")]
        rows += [(s.name, f"{100 * s.accuracy:.1f}%", f"{len(s.correct)} / {s.n}")
                 for s in res.sections]  # fmt: skip
        correct = sum(len(s.correct) for s in res.sections)
        rows.append(("total", f"{100 * res.accuracy:.2f}%", f"{correct} / {res.n_evaluated}"))
        print(_table(rows))
        print(f"analogies: {res.n_oov} of {res.n_questions} questions skipped for words "
              f"outside the vocabulary ({res.oov_ratio:.1f}%)")  # fmt: skip
    if args.similarity:
        sim = evaluate_similarity(wv, args.similarity, **kw)
        report["similarity"] = {"file": str(args.similarity), **sim.to_dict()}
        print(f"similarity: Spearman {sim.spearman:.4f}, Pearson {sim.pearson:.4f} on "
              f"{sim.n_pairs} pairs ({sim.n_oov} skipped for unknown words, "
              f"{sim.oov_ratio:.1f}%)")  # fmt: skip
    target = Path(args.dir)
    if target.is_dir():
        out = write_json(target / "eval.json", report, indent=2)
        print(f"wrote {out}")
    return 0


def _w2v_neighbors(args) -> int:
    from xmodal.text.word2vec import query_neighbours

    wv = _w2v_load(args.dir)
    if args.n < 1:
        raise ParameterError(f"-n must be an integer >= 1. Found: {args.n}")
    result = query_neighbours(wv, " ".join(args.query), topn=args.n)
    print(_table([("word", "cosine")] + [(w, f"{c:.4f}") for w, c in result]))
    return 0


def _w2v_plot(args) -> int:
    from xmodal.viz.projection import plot_projection

    out = _out_path(args.out)
    pairs = []
    for item in args.analogy:
        a, sep, b = item.partition(":")
        if not sep or not a or not b or ":" in b:
            raise ParameterError(f"--analogy must be A:B (two words). Found: {item!r}")
        pairs.append((a, b))
    if not args.words and not pairs:
        raise ParameterError("give words to plot and/or --analogy A:B pairs")
    wv = _w2v_load(args.dir)
    fig = plot_projection(wv, args.words, analogies=pairs, method=args.method, seed=args.seed)
    _save_figure(fig, out, args.dpi)
    n = len(dict.fromkeys([*args.words, *(w for p in pairs for w in p)]))
    print(f"wrote {out} ({args.method}, {n} words, {len(pairs)} arrows)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        # `xmodal train TASK --runs-dir x a=1 b=2`: argparse leaves the overrides after an
        # option unparsed; they keep their order (later wins).
        command = getattr(args, "command", None)
        if command == "train" and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        elif command == "predict" and not any(e.startswith("-") for e in extra):
            # Likewise the inputs after an option (`predict TASK --run DIR a.png b.png`).
            args.inputs = [*args.inputs, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.run(args)
    except XmodalError as err:
        print(f"xmodal: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:  # training's TrainingInterrupted says how to resume
        print(f"xmodal: {err or 'interrupted'}", file=sys.stderr)
        stopped_by = getattr(err, "signal", None) or "SIGINT"
        return 128 + int(getattr(signal, stopped_by, signal.SIGINT))  # 130, 143 or 138


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
