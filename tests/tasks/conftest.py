"""What the task tests share: one table of tiny overrides per task (a run in seconds on a
CPU), training through the real CLI or the engine, reading a run's files (metrics, log,
weights), the one-line CLI error, the ``xmodal tasks`` listing, eval that may not unpickle,
and world images written as files for predict."""

from __future__ import annotations

import atexit
import contextlib
import csv
import io
import json
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

if TYPE_CHECKING:
    from xmodal.engine import Run

# The engine's quiet, quick settings: one process on the CPU, one epoch, no progress bar.
ENGINE = [
    "trainer.max_epochs=1", "trainer.accelerator=cpu", "trainer.devices=1",
    "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]  # fmt: skip

# Per task: the smallest config that still exercises every code path (figures included).
TINY: dict[str, list[str]] = {
    "backbone": [
        "data.train_size=16", "data.val_size=8", "data.test_size=8", "data.batch_size=8",
        "data.num_workers=0", "model.channels=16", "eval.batch_size=8", "eval.n_figures=1",
    ],
    "caption": [
        "model.backbone=null",  # tests that want one give a tiny run (test_backbone.py)
        # The paper's attention query: two steps of it already name colours and shapes,
        # which the grounding checks need (the word-aware one's name none so soon).
        "model.word_query=false",
        # The paper's output layer too: the factored one (tests/translation) names no
        # colour in two steps of this size.
        "model.factored_words=false",
        "data.train_size=16", "data.val_size=8", "data.test_size=8", "data.batch_size=8",
        "data.num_workers=0", "model.channels=16", "model.hidden_dim=32",
        "model.embed_dim=16", "model.attention_dim=16", "eval.meteor=false",
        "eval.batch_size=8", "eval.n_figures=1",
    ],
    "retrieval": [
        "model.backbone=null", "optim.encoder_lr=null",  # test_backbone.py gives one
        "data.train_size=16", "data.val_size=8", "data.test_size=8", "data.batch_size=8",
        "data.num_workers=0", "model.channels=16", "model.hidden=16", "model.word_dim=8",
        "model.embed_dim=16", "eval.batch_size=8", "eval.n_figures=1",
    ],
    "localize": [
        "model.backbone=null", "optim.encoder_lr=null",  # the backbone has its own tests
        "data.train_size=16", "data.val_size=8", "data.test_size=8", "data.batch_size=8",
        "data.num_workers=0", "model.channels=16", "model.audio_width=0.125",
        "model.embed_dim=16", "eval.batch_size=8", "eval.n_figures=2",
    ],
    "recipe": [
        "data.train_size=24", "data.val_size=8", "data.test_size=12", "data.batch_size=12",
        "data.num_workers=0", "model.channels=8", "model.word_dim=8", "model.embed_dim=8",
        "model.ingredient_hidden=8", "model.sentence_hidden=8",
        "model.instruction_hidden=8", "eval.batch_size=8", "eval.sizes=[10, 10000]",
        "eval.draws=3", "eval.n_figures=1",
    ],
    "vqa": [
        "data.train_size=120", "data.val_size=40", "data.test_size=60", "data.batch_size=4",
        "data.num_workers=0", "model.channels=16", "model.hidden=16", "model.word_dim=8",
        "model.embed_dim=16", "model.attention_dim=8", "model.classifier_hidden=16",
        "model.pretrain_steps=2", "eval.batch_size=8",
    ],
    "text2image": [
        "data.train_size=8", "data.val_size=4", "data.test_size=100", "data.batch_size=4",
        "data.num_workers=0", "data.image_size=32", "model.ngf=4", "model.ndf=4",
        "model.word_dim=8", "model.hidden=8", "model.text_dim=8", "model.proj_dim=8",
        "model.noise_dim=8", "model.pretrain_steps=2", "model.aux_pretrain_steps=5",
        "eval.n_captions=100", "eval.n_diversity=4", "eval.n_noises=2",
        "eval.classifier_steps=2", "eval.retrieval_steps=2", "eval.evaluator_images=16",
        "eval.n_grid=2", "trainer.checkpoint_every_n_steps=0",
    ],
    "gpt": [
        "model.n_layer=1", "model.n_embd=16", "model.n_head=2", "model.block_size=16",
        "data.batch_size=8", "data.train_size=40", "data.val_size=8", "data.test_size=8",
        "eval.n_samples=2", "eval.max_new_tokens=12",
    ],
    "word2vec": ["data.train_size=40", "model.dim=16", "data.batch_words=500"],
    "soundnet": [  # model.teacher: a tiny backbone run, made on first use (tiny())
        "data.train_size=16", "data.val_size=8", "data.test_size=8", "data.batch_size=8",
        "data.num_workers=0", "model.width=0.25", "eval.batch_size=8", "eval.n_figures=1",
        "eval.transfer_clips=5",
    ],
    "scene-sound": [
        "model.backbone=null", "optim.encoder_lr=null",  # the backbone has its own tests
        "data.train_size=16", "data.val_size=8", "data.test_size=8", "data.batch_size=8",
        "data.num_workers=0", "model.channels=16", "model.audio_width=0.125",
        "model.embed_dim=16", "eval.batch_size=8", "eval.prototype_clips=16",
        "eval.n_figures=1",
    ],
}  # fmt: skip

# A task file's override on top of ``TINY`` where its runs need no figure.
NO_FIGURES = "eval.n_figures=0"


_TEACHER: list[Path] = []


def _tiny_teacher() -> Path:
    """A tiny backbone run, trained on first use and kept for the session: the teacher of
    tiny ``soundnet`` runs (its default, the backbone's defaults, takes minutes)."""
    if not _TEACHER:
        root = Path(tempfile.mkdtemp(prefix="xmodal-tiny-teacher-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _TEACHER.append(train_tiny("backbone", root, "eval.n_figures=0"))
    return _TEACHER[0]


def tiny(task: str, *overrides: str) -> list[str]:
    """The engine's quick settings, the task's tiny overrides, then ``overrides`` (a tiny
    ``soundnet`` run gets the tiny teacher unless ``overrides`` name a teacher)."""
    teacher = []
    if task == "soundnet" and not any(o.startswith("model.teacher") for o in overrides):
        teacher = [f"model.teacher={_tiny_teacher()}"]
    return [*ENGINE, *TINY[task], *teacher, *overrides]


def train_tiny(task: str, runs: Path, *overrides: str) -> Path:
    """``xmodal train TASK`` (tiny) through the CLI into a new folder under ``runs``."""
    from xmodal.cli import main

    parent = Path(runs) / task
    before = set(parent.glob("*")) if parent.is_dir() else set()
    assert main(["train", task, "--runs-dir", str(runs), *tiny(task, *overrides)]) == 0
    (folder,) = set(parent.glob("*")) - before
    return folder


def train_printed(task: str, runs: Path, *overrides: str) -> tuple[Path, str]:
    """:func:`train_tiny`'s folder and what ``xmodal train`` printed on stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        folder = train_tiny(task, runs, *overrides)
    return folder, out.getvalue()


def tiny_run(task: str, runs: Path, *overrides: str) -> Run:
    """A tiny run of ``task`` through the engine (no CLI) under ``runs``: its ``Run``
    (``run_dir``, ``config``, ``metrics``)."""
    from xmodal.engine import train

    return train(task, runs_dir=runs, overrides=tiny(task, *overrides))


def train_refused(task: str, runs: Path, capsys, *overrides: str) -> str:
    """``xmodal train TASK OVERRIDES`` that must fail: its one-line error. It made no
    ``runs/TASK`` folder."""
    from xmodal.cli import main

    assert main(["train", task, "--runs-dir", str(runs), *overrides]) == 1
    err = one_line_error(capsys)
    assert not (Path(runs) / task).exists()
    return err


def read_metrics(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def read_log(run_dir: Path) -> list[dict[str, str]]:
    """The rows of a run's ``logs/csv/metrics.csv`` (a column a row lacks is ``""``)."""
    with open(Path(run_dir) / "logs" / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def read_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """A run's exported weights, ``model.safetensors`` (no pickle)."""
    from safetensors.torch import load_file

    return load_file(str(Path(run_dir) / "model.safetensors"))


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """The same tensors under the same names, bit for bit."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def without_timing(metrics: dict) -> dict:
    """metrics.json less its ``train`` block (seconds and rates differ run to run)."""
    return {k: v for k, v in metrics.items() if k != "train"}


def one_line_error(capsys) -> str:
    """The CLI's error: one line on stderr, ``xmodal: error: ...``."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("xmodal: error: "), err
    return err[0]


def listed_tasks(capsys) -> dict[str, list[str]]:
    """``xmodal tasks``, a row per task: name, family, default data, summary."""
    from xmodal.cli import main

    assert main(["tasks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    return {line.split()[0]: line.split(None, 3) for line in lines[1:]}  # under the header


def save_png(image: torch.Tensor, path: Path) -> Path:
    """A ``(3, H, W)`` image in [0, 1] (or uint8) as a PNG file."""
    from PIL import Image

    if image.dtype != torch.uint8:
        image = (image * 255).round().to(torch.uint8)
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(path)
    return path


def world_png(path: Path, *, index: int = 0, split: str = "test", size: int = 64) -> Path:
    """Scene ``index`` of the world's ``split`` as a PNG file."""
    from xmodal.world import World

    scene = World(seed=0, image_size=size).scene(split, index, audio=False, questions=False)
    return save_png(scene.image, path)


def world_wav(path: Path, *, index: int = 0, split: str = "test", seconds: float = 2.0) -> Path:
    """Scene ``index``'s sound (``seconds`` long) as a 16-bit WAV file at 16 kHz."""
    from xmodal.audio.io import save
    from xmodal.world import World

    scene = World(seed=0, clip_seconds=seconds).scene(split, index, questions=False)
    return save(path, scene.audio, scene.sample_rate)


@pytest.fixture(scope="session")
def scene_png(tmp_path_factory) -> Path:
    """The world's test scene 0 as a 64x64 RGB PNG file (read only)."""
    return world_png(tmp_path_factory.mktemp("images") / "scene.png")


@pytest.fixture
def no_pickle(monkeypatch):
    """``torch.load`` and ``pickle`` fail the test: eval reads safetensors and JSON only."""

    def refuse(*args, **kwargs):
        raise AssertionError("xmodal eval must not unpickle")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


@pytest.fixture(scope="session")
def one_thread():
    """Tiny models run fastest on one thread (a loaded machine makes a second one wait)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
