"""train / load_run / evaluate / predict on the toy task: the run folder, exact resume,
Ctrl-C, exported weights without pickle, and the errors."""

from __future__ import annotations

import csv
import json
import pickle
import signal

import pytest
import torch
from safetensors import safe_open
from torch import nn

from xmodal.engine import TrainingInterrupted, evaluate, load_config, load_run, predict, train
from xmodal.engine.run import export_weights, load_weights
from xmodal.errors import DataError, ParameterError


def _scores(run):
    return {split: run.metrics[split] for split in ("val", "test")}


def _rows(run_dir):
    with open(run_dir / "logs" / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_run_folder_layout(trained):
    d = trained.run_dir
    assert d.parent.name == "toy"
    for name in ("config.yaml", "run.json", "stats.json", "checkpoints/last.ckpt",
                 "logs/csv/metrics.csv", "model.safetensors", "model.json", "metrics.json",
                 "figures/pred-vs-target.png", "report.html"):  # fmt: skip
        assert (d / name).is_file(), name
    assert list((d / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    assert not [p for p in d.rglob("*") if p.name.endswith(".tmp")]  # atomic writes only

    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics == trained.metrics
    assert set(metrics) == {"val", "test", "train"}
    assert metrics["test"]["n"] == 32 and metrics["test"]["mse"] > 0
    assert metrics["train"]["epochs"] == 2 and metrics["train"]["steps"] == 16  # 64 / 8 × 2
    assert metrics["train"]["samples"] == 128 and metrics["train"]["samples_per_s"] > 0
    assert metrics["train"]["setup_seconds"] > 0  # setup + build_model, before the fit
    meta = json.loads((d / "model.json").read_text())
    assert meta["task"] == "toy" and meta["config"]["trainer"]["max_epochs"] == 2
    assert json.loads((d / "run.json").read_text())["task"] == "toy"
    assert load_config(type(trained.config), config_file=d / "config.yaml") == trained.config


def test_logs_have_every_step_and_epoch(trained):
    rows = _rows(trained.run_dir)
    steps = [int(r["step"]) for r in rows if r["train/loss_step"]]
    assert steps == list(range(16))
    assert [r["epoch"] for r in rows if r["val/mse"]] == ["0", "1"]
    assert sum(1 for r in rows if r["train/mae_epoch"]) == 2


def test_report_embeds_curves_and_figures(trained):
    text = (trained.run_dir / "report.html").read_text()
    assert text.count("data:image/png;base64,") == 2
    assert "http://" not in text and "https://" not in text
    assert "test/mse" in text and "interrupt_at_step" in text  # metrics and config


def test_exported_weights_equal_the_checkpoint_and_load_without_pickle(trained, monkeypatch):
    d = trained.run_dir
    ckpt = torch.load(d / "checkpoints" / "last.ckpt", weights_only=True)
    with safe_open(d / "model.safetensors", framework="pt") as f:
        for key in f.keys():
            assert torch.equal(f.get_tensor(key), ckpt["state_dict"][f"model.{key}"])

    def no_pickle(*args, **kwargs):
        raise AssertionError("load_run must not unpickle")

    monkeypatch.setattr(torch, "load", no_pickle)
    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    task, model = load_run(d)
    assert not model.training
    # the reloaded model gives the metrics the trained one gave
    with torch.no_grad():
        assert task.evaluate(model, "test") == trained.metrics["test"]


def test_evaluate_and_predict(trained, tmp_path):
    d = trained.run_dir
    assert evaluate(d, "val") == trained.metrics["val"]
    assert json.loads((d / "eval-val.json").read_text()) == trained.metrics["val"]
    records = predict(d, ["1,2,3,4", "0,0,0,0"], tmp_path / "out")
    assert [r["input"] for r in records] == ["1,2,3,4", "0,0,0,0"]
    task, model = load_run(d)
    x = (torch.tensor([1.0, 2, 3, 4]) - task.mean) / task.std
    assert records[0]["value"] == pytest.approx(model(x[None]).item())
    assert (tmp_path / "out" / "prediction-1.txt").is_file()
    assert json.loads((tmp_path / "out" / "predictions.json").read_text()) == records
    predict(d, "0,1,0,1")
    assert (d / "predictions" / "prediction-0.txt").is_file()
    with pytest.raises(ParameterError, match="split must be a plain name"):
        evaluate(d, "../x")


def test_same_seed_same_metrics_other_seed_other_metrics(toy, trained, tmp_path):
    again = train(toy, runs_dir=tmp_path)
    assert again.run_dir != trained.run_dir
    assert _scores(again) == _scores(trained)
    other = train(toy, runs_dir=tmp_path, overrides=["seed=1"])
    assert other.metrics["test"]["mse"] != trained.metrics["test"]["mse"]


def test_resume_from_an_epoch_end_equals_an_uninterrupted_run(toy, trained, tmp_path):
    first = train(toy, runs_dir=tmp_path, overrides=["trainer.max_epochs=1"])
    assert first.metrics["train"]["epochs"] == 1
    resumed = train(toy, resume=first.run_dir, overrides=["trainer.max_epochs=2"])
    assert resumed.run_dir == first.run_dir
    assert _scores(resumed) == _scores(trained)
    assert resumed.metrics["train"]["steps"] == 16 and resumed.metrics["train"]["samples"] == 128
    assert resumed.metrics["train"]["seconds"] > first.metrics["train"]["seconds"]  # summed
    assert "max_epochs: 2" in (first.run_dir / "config.yaml").read_text()
    steps = [int(r["step"]) for r in _rows(first.run_dir) if r["train/loss_step"]]
    assert steps == list(range(16))  # the second session appended to the log


def test_the_task_knows_whether_its_run_resumes(toy, tmp_path, monkeypatch):
    from tests.engine.toy_task import ToyTask

    seen, setup = [], ToyTask.setup

    def recording_setup(self, run_dir, stage):
        if stage == "fit":
            seen.append(self.resuming)  # set before setup: build_model may rely on it
        return setup(self, run_dir, stage)

    monkeypatch.setattr(ToyTask, "setup", recording_setup)
    first = train(toy, runs_dir=tmp_path, overrides=["trainer.max_epochs=1"])
    train(toy, resume=first.run_dir, overrides=["trainer.max_epochs=2"])
    assert seen == [False, True]


@pytest.mark.parametrize(
    "where",
    [
        "interrupt_at_step=0",
        "interrupt_at_step=5",
        "interrupt_at_step=8",
        "interrupt_in_validation=true",
    ],  # fmt: skip
)
def test_ctrl_c_saves_a_checkpoint_and_the_resume_finishes_identically(
    toy, trained, tmp_path, where
):
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as err:
        train(toy, runs_dir=tmp_path, overrides=[where])
    assert isinstance(err.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGINT) is handler  # Lightning set it to SIG_IGN
    run_dir = err.value.run_dir
    assert f"xmodal train toy --resume {run_dir}" in str(err.value)
    ckpt = torch.load(err.value.checkpoint, weights_only=True)
    assert "state_dict" in ckpt and "optimizer_states" in ckpt
    assert not (run_dir / "model.safetensors").exists()
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
    with pytest.raises(DataError, match="training may not have finished.*--resume"):
        load_run(run_dir)

    off = "interrupt_at_step=-1" if "step" in where else "interrupt_in_validation=false"
    resumed = train(toy, resume=run_dir, overrides=[off])
    assert _scores(resumed) == _scores(trained)
    assert resumed.metrics["train"]["steps"] == 16


def test_tied_weights_are_stored_once(tmp_path):
    def tied():
        model = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 5, bias=False))
        model[1].weight = model[0].weight
        return model

    torch.manual_seed(0)
    model = tied()
    export_weights(model, tmp_path / "m.safetensors")
    with safe_open(tmp_path / "m.safetensors", framework="pt") as f:
        assert list(f.keys()) == ["0.weight"]
    fresh = load_weights(tied(), tmp_path / "m.safetensors")
    assert torch.equal(fresh[1].weight, model[0].weight)
    assert fresh[1].weight is fresh[0].weight
    with pytest.raises(DataError, match="does not fit the model"):
        load_weights(nn.Linear(2, 2), tmp_path / "m.safetensors")


def test_load_run_errors(toy, trained, tmp_path):
    with pytest.raises(DataError, match="no such run folder"):
        load_run(tmp_path / "nope")
    with pytest.raises(DataError, match="has no model.json: training may not have finished"):
        load_run(tmp_path)
    with pytest.raises(ParameterError, match="holds a 'toy' run, not 'caption'"):
        load_run(trained.run_dir, "caption")
    with pytest.raises(ParameterError, match="holds a 'toy' run, not 'caption'"):
        evaluate(trained.run_dir, task="caption")


def test_train_errors(toy, trained, tmp_path):
    with pytest.raises(ParameterError, match="unknown task 'nope'"):
        train("nope", runs_dir=tmp_path)
    with pytest.raises(ParameterError, match="'trainer.max_epoch'"):
        train(toy, runs_dir=tmp_path, overrides=["trainer.max_epoch=1"])
    assert not (tmp_path / "toy").exists()  # nothing made before the config is valid
    with pytest.raises(DataError, match="no such run folder"):
        train(toy, resume=tmp_path / "nope")
    with pytest.raises(ParameterError, match="already holds a run; continue it with --resume"):
        train(toy, run_dir=trained.run_dir)
    config = (trained.run_dir / "config.yaml").read_text()
    with pytest.raises(DataError, match="does not fit the model the config builds"):
        train(toy, resume=trained.run_dir, overrides=["model.hidden=8"])
    assert (trained.run_dir / "config.yaml").read_text() == config  # left as it was
    with pytest.raises(ParameterError, match="Lightning rejected the trainer"):
        train(toy, runs_dir=tmp_path, overrides=["trainer.accelerator=abacus"])


def test_a_run_whose_data_fails_in_setup_leaves_no_folder(toy, tmp_path, monkeypatch):
    from tests.engine.toy_task import ToyTask

    def bad_setup(self, run_dir, stage):
        (run_dir / "stats.json").write_text("{}")  # an artifact half written, then the error
        raise DataError("data.path: empty file")

    monkeypatch.setattr(ToyTask, "setup", bad_setup)
    with pytest.raises(DataError, match="empty file"):
        train(toy, runs_dir=tmp_path / "runs")
    assert list((tmp_path / "runs" / "toy").iterdir()) == []
    with pytest.raises(DataError, match="empty file"):
        train(toy, run_dir=tmp_path / "new")
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()  # a folder the user made is theirs: kept
    with pytest.raises(DataError, match="empty file"):
        train(toy, run_dir=tmp_path / "mine")
    assert (tmp_path / "mine").is_dir()


def test_a_killed_run_resumes_exactly_from_its_periodic_checkpoint(
    toy, trained, tmp_path, monkeypatch
):
    from xmodal.engine.module import LastCheckpoint

    # A kill saves nothing: only the checkpoint of step 5 (mid-epoch 0) is left.
    def killed(self, trainer, pl_module, exception):
        self.interrupted = True

    monkeypatch.setattr(LastCheckpoint, "on_exception", killed)
    overrides = ["trainer.checkpoint_every_n_steps=5", "interrupt_at_step=7"]
    with pytest.raises(TrainingInterrupted) as err:
        train(toy, runs_dir=tmp_path, overrides=overrides)
    assert torch.load(err.value.checkpoint, weights_only=True)["global_step"] == 5
    monkeypatch.undo()
    resumed = train(toy, resume=err.value.run_dir, overrides=["interrupt_at_step=-1"])
    assert _scores(resumed) == _scores(trained)


# ------------------------------------------------------------------------------ damaged checkpoints


def test_the_checkpoint_before_the_last_is_kept(trained):
    folder = trained.run_dir / "checkpoints"
    last = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)
    previous = torch.load(folder / "previous.ckpt", map_location="cpu", weights_only=True)
    assert (last["epoch"], previous["epoch"]) == (1, 0)  # the two epoch ends


def test_a_damaged_last_checkpoint_falls_back_to_the_previous_one(toy, trained, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained.run_dir, run)
    (run / "metrics.json").unlink()
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # a disk that lost its end
    with pytest.warns(UserWarning, match=r"last.ckpt: cannot be read as a checkpoint.*resuming "
                                         r"from .*previous.ckpt"):  # fmt: skip
        again = train(toy, resume=run)
    assert _scores(again) == _scores(trained)  # epoch 2 again, from the end of epoch 1
    assert (run / "checkpoints" / "last.ckpt.damaged").is_file()


def test_a_checkpoint_of_random_bytes_and_no_previous_one_is_a_clear_error(
    toy, trained, tmp_path, capsys
):
    import shutil

    from xmodal.cli import main

    run = tmp_path / "run"
    shutil.copytree(trained.run_dir, run)
    (run / "checkpoints" / "previous.ckpt").unlink()
    (run / "checkpoints" / "last.ckpt").write_bytes(torch.randint(0, 256, (4096,)).byte().numpy()
                                                    .tobytes())  # fmt: skip
    with pytest.raises(DataError, match="cannot be read as a checkpoint.*no previous.ckpt"):
        train(toy, resume=run)
    assert main(["train", toy, "--resume", str(run)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("xmodal: error: ") and "last.ckpt" in err[0]
