"""The task contract, checked on every registered task with the tiny overrides of
``conftest.TINY``: the run folder is complete, ``xmodal eval`` gives metrics.json again
without unpickling anything, a bad key is a one-line error, another task's run is
refused, a resumed run equals one never stopped, and predict works on one sample."""

from __future__ import annotations

import dataclasses
import pickle
import typing
from pathlib import Path

import pytest
import torch

from tests.tasks.conftest import (
    TINY,
    one_line_error,
    read_metrics,
    tiny,
    train_tiny,
    without_timing,
    world_png,
    world_wav,
)
from xmodal.cli import main
from xmodal.errors import ParameterError
from xmodal.registry import get_task, list_tasks

TASKS = sorted(TINY)


def test_every_registered_task_is_in_the_table():
    registered = {t.name for t in list_tasks() if not t.name.startswith("toy")}
    assert registered == set(TINY), registered ^ set(TINY)


def _predict_inputs(task: str, tmp: Path) -> tuple[list[str], list[str]]:
    """(inputs, option flags) of one ``xmodal predict TASK`` query."""
    image = str(world_png(tmp / "scene.png"))
    return {
        "backbone": ([image], []),
        "caption": ([image], []),
        "retrieval": ([], ["--text", "a red circle"]),
        "recipe": ([image], []),
        "vqa": ([image, "what colour is the circle?"], []),
        "text2image": (["a red circle"], ["-n", "2"]),
        "gpt": (["the"], []),
        "word2vec": (["red", "big - large + small"], ["-n", "3"]),
        "soundnet": ([str(world_wav(tmp / "two-seconds.wav"))], []),
        "scene-sound": ([str(world_wav(tmp / "one-second.wav", seconds=1.0))], []),
        "localize": ([image, str(world_wav(tmp / "one-second.wav", seconds=1.0))], []),
    }[task]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, one_thread):
    """One finished tiny run per task, made on first use (read only)."""
    made: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("runs")

    def get(task: str) -> Path:
        if task not in made:
            made[task] = train_tiny(task, root)
        return made[task]

    return get


@pytest.mark.parametrize("task", TASKS)
def test_the_run_folder_is_complete(task, runs):
    d = runs(task)
    files = ["config.yaml", "run.json", "model.safetensors", "model.json", "metrics.json",
             "report.html", "checkpoints/last.ckpt", "logs/csv/metrics.csv"]  # fmt: skip
    cls = get_task(task)
    from xmodal.engine.run import load_run

    task_obj, _ = load_run(d)
    files += task_obj.artifacts()
    missing = [f for f in files if not (d / f).exists()]
    assert not missing, missing
    assert list((d / "figures").glob("*.png")), "no figure"
    assert not [p for p in d.rglob("*") if p.name.endswith(".tmp")]  # atomic writes only
    metrics = read_metrics(d)
    assert set(cls.Config().eval_splits) <= set(metrics) and "train" in metrics
    assert "<img" in (d / "report.html").read_text()


@pytest.mark.parametrize("task", TASKS)
def test_eval_gives_metrics_json_again_and_unpickles_nothing(task, runs, monkeypatch):
    from xmodal.engine import evaluate

    d = runs(task)

    def refuse(*args, **kwargs):
        raise AssertionError("eval unpickled something")

    torch_load = torch.load

    def weights_only(*args, **kwargs):
        assert kwargs.get("weights_only", True) is True, "torch.load without weights_only"
        return torch_load(*args, **kwargs)

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", weights_only)
    metrics = read_metrics(d)
    for split in get_task(task).Config().eval_splits:
        assert evaluate(d, split) == metrics[split], split


@pytest.mark.parametrize("task", TASKS)
def test_every_section_checks_its_switches_in_python_too(task):
    """A bool field given 1 in Python (no YAML reading checks the type there) is refused,
    naming its key."""
    cfg = get_task(task).Config()
    checked = 0
    for section in dataclasses.fields(cfg):
        value = getattr(cfg, section.name)
        if not dataclasses.is_dataclass(value):
            continue
        hints = typing.get_type_hints(type(value))
        for f in dataclasses.fields(value):
            if hints[f.name] is bool:
                with pytest.raises(ParameterError, match=f"{section.name}.{f.name}'? must be"):
                    dataclasses.replace(value, **{f.name: 1})
                checked += 1
    assert checked >= 3, checked  # the trainer's three at least


@pytest.mark.parametrize("task", TASKS)
def test_a_bad_key_is_a_one_line_error(task, tmp_path, capsys):
    assert main(["train", task, "--runs-dir", str(tmp_path), "model.no_such_key=1"]) == 1
    assert "unknown config key 'model.no_such_key'" in one_line_error(capsys)
    assert not (tmp_path / task).exists() or not any((tmp_path / task).iterdir())


@pytest.mark.parametrize("task", TASKS)
def test_another_tasks_run_is_refused(task, runs, capsys):
    other = "gpt" if task != "gpt" else "caption"
    d = runs(task)
    assert main(["eval", other, "--run", str(d)]) == 1
    assert f"holds a '{task}' run, not '{other}'" in one_line_error(capsys)
    assert main(["train", other, "--resume", str(d)]) == 1
    assert task in one_line_error(capsys)


@pytest.mark.parametrize("task", TASKS)
def test_resume_equals_an_uninterrupted_run(task, tmp_path, monkeypatch, one_thread):
    """Stopped (Ctrl-C) as the second of two epochs starts, then resumed: the same run,
    schedule and all, as one never stopped."""
    from xmodal.engine import TrainingInterrupted, train

    config = tiny(task, "trainer.max_epochs=2")
    straight = train(task, runs_dir=tmp_path / "a", overrides=config)
    cls = get_task(task)
    start = cls.on_train_epoch_start

    def stop_at_the_second_epoch(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        start(self, epoch)

    monkeypatch.setattr(cls, "on_train_epoch_start", stop_at_the_second_epoch)
    with pytest.raises(TrainingInterrupted) as stop:
        train(task, runs_dir=tmp_path / "b", overrides=config)
    monkeypatch.setattr(cls, "on_train_epoch_start", start)
    again = train(task, resume=stop.value.run_dir)
    assert again.metrics["train"]["epochs"] == straight.metrics["train"]["epochs"] == 2
    assert without_timing(again.metrics) == without_timing(straight.metrics)


def _same(a, b) -> bool:
    """Equal batches: tensors bit for bit, containers item by item, anything else ==."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


@pytest.mark.parametrize("task", TASKS)
def test_training_batches_draw_nothing_from_the_global_random_state(task, tmp_path):
    """An epoch's batches are a function of (seed, epoch) alone, whatever the global
    random states (Python, NumPy, torch) hold: loader worker processes, whose states no
    checkpoint keeps, have nothing to draw, and a resumed run sees the same batches."""
    from xmodal.engine.config import load_config
    from xmodal.engine.module import reseed, skip_done_batches

    cls = get_task(task)
    obj = cls(load_config(cls.Config, overrides=tiny(task)))
    obj.setup(tmp_path, "fit")

    def an_epoch(global_seed: int) -> list:
        reseed(global_seed)  # Python's, NumPy's and torch's global generators
        loader = obj.train_dataloader()
        skip_done_batches(loader, (1, 0))  # epoch 1, as the engine sets it
        obj.on_train_epoch_start(1)
        return list(loader)

    first = an_epoch(1)
    assert first and _same(first, an_epoch(2))


@pytest.mark.parametrize("task", TASKS)
def test_predict_works_on_one_sample(task, runs, tmp_path, capsys):
    inputs, flags = _predict_inputs(task, tmp_path)
    out = tmp_path / "out"
    assert main(["predict", task, "--run", str(runs(task)), *inputs, *flags, "--out",
                 str(out)]) == 0  # fmt: skip
    assert (out / "predictions.json").is_file()
    assert f"wrote {out / 'predictions.json'}" in capsys.readouterr().out
