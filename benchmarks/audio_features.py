"""Time the audio front end of xmodal against librosa, in the same run, and check parity.

Ops: STFT, power mel spectrogram, MFCC and Griffin-Lim, on one 60 s clip and on a batch
of 32 clips of 10 s at 16 kHz (librosa gets the ``(32, 160000)`` array in one call, xmodal
the same data as a tensor). Both get the same parameters: ``n_fft=512, hop_length=160,
win_length=400, window="hamming", n_mels=80, n_mfcc=13``, float32 input. Each op is run
once to warm up, then librosa and xmodal are timed alternately; the table gives the best
of the repeats (the machine's other load only ever adds time) and the median speed-up.

Griffin-Lim is compared at equal quality: both run 32 iterations with momentum 0.99 from
the STFT magnitude of the clip, and the spectral convergence of both outputs is measured
with :func:`xmodal.audio.functional.spectral_convergence`.

Usage:
    python benchmarks/audio_features.py              # about 2 minutes on 2 cores
    python benchmarks/audio_features.py --quick      # shorter clips, fewer repeats
    python benchmarks/audio_features.py --markdown   # tables as markdown, for docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

# numpy's OpenBLAS (librosa's mel projection runs on it) keeps its worker threads spinning
# for about 0.1 s after each call. In one process that takes a core from torch's thread
# pool during the xmodal timing that follows (+50% on a 2-core machine). Let them sleep
# at once; librosa's own times are the same either way. Must be set before numpy loads.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _machine import machine as _machine  # noqa: E402

from xmodal.audio import functional as F  # noqa: E402

SR = 16000
PARAMS = dict(n_fft=512, hop_length=160, win_length=400, window="hamming")
N_MELS = 80
N_MFCC = 13
GL_ITERS = 32
GL_MOMENTUM = 0.99
GL_SC_SLACK = 0.01  # xmodal's spectral convergence may exceed librosa's by this much

# Minimum speed-up (librosa time / xmodal time) per (op, input); None: reported only.
TARGETS = {
    ("stft", "single"): None,
    ("stft", "batch"): None,
    ("melspectrogram", "single"): 3.0,
    ("melspectrogram", "batch"): 1.5,
    ("mfcc", "single"): 3.0,
    ("mfcc", "batch"): 1.5,
    ("griffinlim", "single"): 3.0,
    ("griffinlim", "batch"): None,
}


@dataclass
class Config:
    single_seconds: float
    batch_size: int
    batch_seconds: float
    repeats: int  # per timed (op, input); Griffin-Lim uses fewer
    gl_repeats: int


FULL = Config(single_seconds=60.0, batch_size=32, batch_seconds=10.0, repeats=15, gl_repeats=3)
QUICK = Config(single_seconds=10.0, batch_size=32, batch_seconds=2.0, repeats=5, gl_repeats=1)


@dataclass
class Row:
    op: str
    input: str
    librosa_s: float
    xmodal_s: float
    median_speedup: float
    target: float | None
    quality_ok: bool = True  # Griffin-Lim: spectral convergence within the slack

    @property
    def speedup(self) -> float:
        return self.librosa_s / self.xmodal_s

    @property
    def result(self) -> str:
        if self.target is None:
            return "-"
        return "PASS" if self.speedup >= self.target and self.quality_ok else "MISS"


def speech_like(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A voiced-speech stand-in: harmonic chirps under a syllable envelope, plus noise.

    The pitch glides between about 90 and 230 Hz, 25 harmonics with a 1/k roll-off, the
    amplitude rises and falls four times a second, and white noise sits about 40 dB below
    the peak. float32, peak about 0.5.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 160.0 + 50.0 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 2 * np.pi))
    f0 += 20.0 * np.sin(2 * np.pi * 2.1 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 26))
    syllables = np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 2 * np.pi)) ** 2
    phrases = 0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t + rng.uniform(0, 2 * np.pi))
    y = voiced * syllables * phrases
    y = 0.5 * y / np.abs(y).max() + 0.005 * rng.standard_normal(t.size)
    return y.astype(np.float32)


def time_pair(
    reference: Callable[[], object], ours: Callable[[], object], repeats: int
) -> tuple[float, float, float]:
    """Best seconds of each after one warm-up call, alternating the two; median speed-up."""
    reference()
    ours()
    ref_times, our_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        reference()
        ref_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        ours()
        our_times.append(time.perf_counter() - start)
    ratios = [r / o for r, o in zip(ref_times, our_times, strict=True)]
    return min(ref_times), min(our_times), statistics.median(ratios)


def relative_error(ours: torch.Tensor, reference: np.ndarray) -> float:
    """max |ours - reference| / max |reference|."""
    ref = torch.from_numpy(np.asarray(reference))
    return float((ours - ref).abs().max() / ref.abs().max())


def feature_ops() -> list[tuple[str, Callable, Callable]]:
    """(name, librosa function of a numpy array, xmodal function of a tensor)."""
    mel = dict(sr=SR, n_mels=N_MELS, power=2.0, **PARAMS)
    return [
        (
            "stft",
            lambda y: librosa.stft(y, dtype=np.complex64, **PARAMS),
            lambda y: F.stft(y, **PARAMS),
        ),
        (
            "melspectrogram",
            lambda y: librosa.feature.melspectrogram(y=y, dtype=np.float32, **mel),
            lambda y: F.melspectrogram(y, **mel),
        ),
        (
            "mfcc",
            lambda y: librosa.feature.mfcc(y=y, n_mfcc=N_MFCC, dtype=np.float32, **mel),
            lambda y: F.mfcc(y, n_mfcc=N_MFCC, **mel),
        ),
    ]


def run_features(
    inputs: dict[str, np.ndarray], config: Config, rows: list[Row]
) -> list[tuple[str, str, float, str]]:
    """Time each feature op on each input into `rows`; return (op, input, error, note)."""
    parity = []
    for name, reference, ours in feature_ops():
        for label, y in inputs.items():
            y_t = torch.from_numpy(y)
            lib_s, our_s, median = time_pair(
                lambda ref=reference, y=y: ref(y), lambda f=ours, y=y_t: f(y), config.repeats
            )
            rows.append(Row(name, label, lib_s, our_s, median, TARGETS[(name, label)]))
            if name == "mfcc" and y.ndim > 1:
                # librosa floors a batch top_db below the peak of the whole batch, xmodal
                # below each clip's own peak: compare with librosa one clip at a time.
                expected = np.stack([reference(clip) for clip in y])
                note = "vs librosa per clip (top_db floor per clip)"
            else:
                expected = reference(y)
                note = ""
            parity.append((name, label, relative_error(ours(y_t), expected), note))
    return parity


def run_griffinlim(
    inputs: dict[str, np.ndarray], config: Config, rows: list[Row]
) -> list[tuple[str, float, float]]:
    """Time Griffin-Lim on each input into `rows`; return (input, librosa SC, xmodal SC)."""
    convergence = []
    for label, y in inputs.items():
        S = np.abs(librosa.stft(y, dtype=np.complex64, **PARAMS))
        S_t = torch.from_numpy(S)
        gl = dict(n_iter=GL_ITERS, momentum=GL_MOMENTUM, length=y.shape[-1], **PARAMS)
        outputs = {}
        # Fixed seeds: every repeat starts from the same random phases.
        lib_s, our_s, median = time_pair(
            lambda S=S, gl=gl, out=outputs: out.update(
                librosa=librosa.griffinlim(
                    S, dtype=np.float32, random_state=np.random.default_rng(0), **gl
                )
            ),
            lambda S=S_t, gl=gl, out=outputs: out.update(
                xmodal=F.griffinlim(S, generator=torch.Generator().manual_seed(0), **gl)
            ),
            config.gl_repeats,
        )
        sc_lib, sc_ours = (
            float(F.spectral_convergence(S_t, torch.as_tensor(outputs[k]), **PARAMS).mean())
            for k in ("librosa", "xmodal")
        )
        row = Row("griffinlim", label, lib_s, our_s, median, TARGETS[("griffinlim", label)])
        row.quality_ok = sc_ours <= sc_lib + GL_SC_SLACK
        rows.append(row)
        convergence.append((label, sc_lib, sc_ours))
    return convergence


def machine() -> list[tuple[str, str]]:
    return _machine(f"librosa {librosa.__version__}", f"numpy {np.__version__}")


def print_report(rows, parity, convergence, inputs, config, markdown: bool) -> None:
    described = {label: describe(y) for label, y in inputs.items()}
    header = [
        "op", "input", "librosa s", "xmodal s", "speed-up", "median speed-up", "target", "result"
    ]  # fmt: skip
    table = [
        [
            r.op,
            described[r.input],
            f"{r.librosa_s:.4f}",
            f"{r.xmodal_s:.4f}",
            f"{r.speedup:.2f}x",
            f"{r.median_speedup:.2f}x",
            "-" if r.target is None else f">= {r.target:g}x",
            r.result,
        ]
        for r in rows
    ]
    parity_table = [
        [name, described[label], f"{err:.2e}", note] for name, label, err, note in parity
    ]
    sc_table = [
        [
            described[label],
            f"{lib:.4f}",
            f"{ours:.4f}",
            "yes" if ours - lib <= GL_SC_SLACK else "no",
        ]
        for label, lib, ours in convergence
    ]
    sc_header = ["input", "librosa SC", "xmodal SC", f"xmodal <= librosa + {GL_SC_SLACK}"]
    parity_header = ["op", "input", "max abs(xmodal - librosa) / max abs(librosa)", "note"]
    setup = (
        f"best of {config.repeats} runs ({config.gl_repeats} for Griffin-Lim) after one "
        f"warm-up; float32; n_fft={PARAMS['n_fft']}, hop_length={PARAMS['hop_length']}, "
        f"win_length={PARAMS['win_length']}, window={PARAMS['window']}, n_mels={N_MELS}, "
        f"n_mfcc={N_MFCC}; Griffin-Lim n_iter={GL_ITERS}, momentum={GL_MOMENTUM}"
    )
    if markdown:
        for key, value in machine():
            print(f"- {key}: {value}")
        print(f"- setup: {setup}\n")
        print_markdown(header, table)
        print("\nParity (float32):\n")
        print_markdown(parity_header, parity_table)
        print("\nGriffin-Lim spectral convergence (mean over clips; lower is better):\n")
        print_markdown(sc_header, sc_table)
        return
    for key, value in machine():
        print(f"{key:9s} {value}")
    print(f"{'setup':9s} {setup}\n")
    print_plain(header, table)
    print("\nParity (float32)")
    print_plain(parity_header, parity_table)
    print("\nGriffin-Lim spectral convergence (mean over clips; lower is better)")
    print_plain(sc_header, sc_table)


def describe(y: np.ndarray) -> str:
    seconds = y.shape[-1] / SR
    if y.ndim == 1:
        return f"1 x {seconds:g} s"
    return f"{y.shape[0]} x {seconds:g} s"


def print_markdown(header: list[str], table: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for line in table:
        print("| " + " | ".join(line) + " |")


def print_plain(header: list[str], table: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *table, strict=True)]
    for line in [header, *table]:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter clips, fewer repeats")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    inputs = {
        "single": speech_like(config.single_seconds, seed=0),
        "batch": np.stack(
            [speech_like(config.batch_seconds, seed=1 + i) for i in range(config.batch_size)]
        ),
    }
    rows: list[Row] = []
    parity = run_features(inputs, config, rows)
    convergence = run_griffinlim(inputs, config, rows)
    print_report(rows, parity, convergence, inputs, config, args.markdown)


if __name__ == "__main__":
    main()
