"""A run killed with SIGKILL (a preempted job, an out-of-memory kill) resumes from its last
periodic checkpoint as if it had never stopped, and one sent SIGTERM saves a checkpoint at
the batch it is in, exits with 143 and resumes as exactly: real processes, loader workers
on.

The case that used to fail: with worker processes the loader's first iterator exists, and
its workers draw indices, before Lightning sets the sampler's epoch and before a callback
could tell the sampler which batches were done; the engine now does both before the fit.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tasks.conftest import without_timing

KILLER = Path(__file__).with_name("_kill_after_checkpoint.py")
# Caption at a small width, 10 batches of 32 an epoch, 2 loader workers, a checkpoint
# every 4 steps: the settings under which a hard kill did not resume exactly.
CONFIG = [
    "model.backbone=null", "data.train_size=320", "data.val_size=32", "data.test_size=16",
    "data.num_workers=2",
    "model.channels=16", "model.hidden_dim=32", "model.embed_dim=16", "model.attention_dim=16",
    "trainer.max_epochs=2", "trainer.checkpoint_every_n_steps=4", "trainer.accelerator=cpu",
    "trainer.devices=1", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
    "eval.meteor=false", "eval.n_figures=0",
]  # fmt: skip


def _xmodal(*args: str, signal_at: tuple[str, int] | None = None) -> subprocess.CompletedProcess:
    """``xmodal ARGS`` in a new process; ``signal_at=("KILL" | "TERM", step)`` sends it
    that signal at that optimizer step, ``("AUX", step)`` SIGKILL at that step of an
    auxiliary fit (see _kill_after_checkpoint.py)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    command = [sys.executable, "-m", "xmodal", *args]
    if signal_at is not None:
        command = [sys.executable, str(KILLER), signal_at[0], str(signal_at[1]), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def _metrics(run: Path) -> dict:
    return without_timing(json.loads((run / "metrics.json").read_text()))


def _log(run: Path) -> list[dict[str, str]]:
    """The rows of the run's training log (logs/csv/metrics.csv)."""
    with open(run / "logs" / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("straight") / "run"
    assert _xmodal("train", "caption", "--run-dir", str(run), *CONFIG).returncode == 0
    return run


@pytest.mark.parametrize("epoch", [0, 1])
def test_a_run_killed_after_a_periodic_checkpoint_resumes_exactly(straight, tmp_path, epoch):
    # Killed as the batch after a periodic checkpoint starts: a step drawn at random
    # among the checkpoints inside the epoch (steps 4 and 8 of epoch 0, 12 and 16 of
    # epoch 1), the same draw every time.
    step = random.Random(epoch).choice([[4, 8], [12, 16]][epoch])
    run = tmp_path / "run"
    killed = _xmodal("train", "caption", "--run-dir", str(run), *CONFIG, signal_at=("KILL", step))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (run / "metrics.json").exists() and (run / "checkpoints" / "last.ckpt").is_file()
    resumed = _xmodal("train", "caption", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _metrics(run) == _metrics(straight)
    assert _log(run) == _log(straight)


@pytest.mark.parametrize(("name", "status"), [("TERM", 143), ("USR1", 138)])
def test_sigterm_saves_the_current_batch_exits_143_and_resumes_exactly(straight, tmp_path,
                                                                       name, status):  # fmt: skip
    """And SIGUSR1 (SLURM's --signal=USR1@120) the same way, with status 138."""
    import torch

    run = tmp_path / "run"
    stopped = _xmodal("train", "caption", "--run-dir", str(run), *CONFIG, signal_at=(name, 6))
    assert stopped.returncode == status, stopped.stderr[-2000:]
    assert f"training interrupted by SIG{name}; checkpoint saved in" in stopped.stderr
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 6  # the batch the signal came in, not the step-4 checkpoint
    resumed = _xmodal("train", "caption", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _metrics(run) == _metrics(straight)
    assert _log(run) == _log(straight)


# Every task of the contract suite, tiny, two epochs, a checkpoint every 3 optimizer steps.
TASKS = ["caption", "retrieval", "recipe", "vqa", "text2image", "gpt", "word2vec"]


@pytest.mark.parametrize("task", TASKS)
def test_every_task_killed_at_a_random_step_resumes_exactly(tmp_path, task):
    """SIGKILL at a step drawn at random after the first periodic checkpoint (text2image
    steps two optimizers a batch, so global_step grows by 2): metrics.json and the whole
    training log equal the straight run's; the steps the killed run logged after its last
    checkpoint are logged once, by the resumed run."""
    import torch

    from tests.tasks.conftest import tiny

    config = tiny(task, "trainer.max_epochs=2", "trainer.checkpoint_every_n_steps=3")
    straight, run = tmp_path / "straight", tmp_path / "run"
    assert _xmodal("train", task, "--run-dir", str(straight), *config).returncode == 0
    end = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    per_batch = end // len({row["step"] for row in _log(straight)})
    step = random.Random(task).choice(range(3 + (-3 % per_batch), end, per_batch))
    killed = _xmodal("train", task, "--run-dir", str(run), *config, signal_at=("KILL", step))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (run / "metrics.json").exists()
    resumed = _xmodal("train", task, "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _metrics(run) == _metrics(straight)
    assert _log(run) == _log(straight)


def test_a_run_killed_in_its_auxiliary_fit_is_trained_again_by_resume(tmp_path):
    """VQA pre-trains its encoder before the main fit (no checkpoint is written there):
    killed at its third pre-training step, the folder already holds the run's config, and
    ``--resume`` trains it again from its beginning, to the straight run's numbers."""
    from tests.tasks.conftest import tiny

    config = tiny("vqa", "model.pretrain_steps=6", "trainer.max_epochs=2")
    straight, run = tmp_path / "straight", tmp_path / "run"
    assert _xmodal("train", "vqa", "--run-dir", str(straight), *config).returncode == 0
    killed = _xmodal("train", "vqa", "--run-dir", str(run), *config, signal_at=("AUX", 3))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (run / "config.yaml").is_file() and not (run / "checkpoints").exists()
    resumed = _xmodal("train", "vqa", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "no checkpoint yet (the run stopped before its first one); training it again" in (
        resumed.stdout
    )
    assert _metrics(run) == _metrics(straight)
    assert _log(run) == _log(straight)
