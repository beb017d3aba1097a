"""`xmodal tasks | train | eval | predict` on the toy task of tests/engine."""

from __future__ import annotations

import json

import pytest

from xmodal.cli import main
from xmodal.engine import load_config


@pytest.fixture(scope="module")
def run_dir(toy, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    assert main(["train", "toy", "--runs-dir", str(runs), "trainer.max_epochs=1"]) == 0
    (folder,) = (runs / "toy").iterdir()
    return folder


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    assert err[0].startswith("xmodal: error: ")
    return err[0]


def test_tasks_table(toy, capsys):
    assert main(["tasks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "family", "data", "summary"]
    rows = {line.split()[0]: line.split(None, 3) for line in lines[1:]}
    assert rows["caption"][1:3] == ["translation", "world"]
    assert rows["toy"][1:] == ["representations", "random", "Toy regression (engine tests)"]


def test_train_prints_the_folder_then_the_metrics(toy, tmp_path, capsys):
    code = main(["train", "toy", "trainer.max_epochs=1", "--runs-dir", str(tmp_path), "seed=3"])
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    (folder,) = (tmp_path / "toy").iterdir()
    assert out[0] == f"run folder: {folder}"
    metrics = json.loads((folder / "metrics.json").read_text())
    table = {line.split()[0]: line.split()[1] for line in out if line.startswith(("test/", "val/"))}
    assert table["test/mse"] == f"{metrics['test']['mse']:.4g}"
    assert metrics["train"]["epochs"] == 1
    cfg = load_config(_toy_config(), config_file=folder / "config.yaml")
    assert cfg.seed == 3  # the override after --runs-dir was applied


def _toy_config():
    from tests.engine.toy_task import ToyConfig

    return ToyConfig


def test_print_config_round_trips_and_trains_nothing(toy, tmp_path, capsys):
    args = ["train", "toy", "--runs-dir", str(tmp_path), "lr=0.5", "eval_splits=[test]"]
    assert main([*args, "--print-config"]) == 0
    text = capsys.readouterr().out
    assert not (tmp_path / "toy").exists()
    (tmp_path / "c.yaml").write_text(text)
    cfg = load_config(_toy_config(), config_file=tmp_path / "c.yaml")
    assert cfg.lr == 0.5 and cfg.eval_splits == ("test",)
    assert cfg == load_config(_toy_config(), overrides=["lr=0.5", "eval_splits=[test]"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "nope"], "unknown task 'nope'"),
        (["train", "toy", "trainer.max_epoch=2"], "unknown config key 'trainer.max_epoch'"),
        (["train", "toy", "trainer.max_epochs=abc"], "must be int. Found: 'abc' (str)"),
        (["train", "toy", "--config", "/no/such.yaml"], "config file /no/such.yaml does not exist"),
        (["eval", "toy", "--run", "/no/such/run"], "/no/such/run: no such run folder"),
    ],
)
def test_errors_are_one_line(toy, tmp_path, capsys, argv, message):
    assert main([*argv, "--runs-dir", str(tmp_path)] if argv[0] == "train" else argv) == 1
    assert message in _error(capsys)


def test_eval_prints_a_table_and_writes_json(run_dir, capsys):
    assert main(["eval", "toy", "--run", str(run_dir), "--split", "val"]) == 0
    out = capsys.readouterr().out.splitlines()
    saved = json.loads((run_dir / "eval-val.json").read_text())
    assert out[0].split() == ["metric", "value"]
    assert out[1].split() == ["val/mse", f"{saved['mse']:.4g}"]
    assert out[-1] == f"wrote {run_dir / 'eval-val.json'}"


def test_eval_of_another_task_is_refused(run_dir, capsys):
    assert main(["eval", "caption", "--run", str(run_dir)]) == 1
    assert "holds a 'toy' run, not 'caption'" in _error(capsys)


def test_predict_prints_texts_and_files(run_dir, tmp_path, capsys):
    assert main(["predict", "toy", "--run", str(run_dir), "1,2,3,4", "0,0,0,0",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    records = json.loads((tmp_path / "predictions.json").read_text())
    assert out[0] == f"1,2,3,4: {records[0]['text']}"
    assert f"wrote {tmp_path / 'prediction-1.txt'}" in out
    assert main(["predict", "toy", "--run", str(run_dir), "a,b"]) == 1
    assert "not comma-separated numbers" in _error(capsys)


def test_predict_takes_the_task_s_own_options(run_dir, tmp_path, capsys):
    base = ["predict", "toy", "--run", str(run_dir), "--out", str(tmp_path)]
    assert main([*base, "1,2,3,4"]) == 0
    plain = json.loads((tmp_path / "predictions.json").read_text())[0]["value"]
    # Options before and after the inputs; --extra alone is enough input.
    assert main([*base, "--scale", "2", "1,2,3,4", "--extra", "0,0,0,0"]) == 0
    records = json.loads((tmp_path / "predictions.json").read_text())
    assert [r["input"] for r in records] == ["1,2,3,4", "0,0,0,0"]
    assert records[0]["value"] == pytest.approx(2 * plain)
    capsys.readouterr()
    assert main([*base, "--extra", "1,2,3,4"]) == 0
    assert capsys.readouterr().out.startswith("1,2,3,4: ")
    # Without any input, and with another task's option: clear errors.
    assert main(base) == 1
    assert "at least one input" in _error(capsys)
    with pytest.raises(SystemExit) as exit_:
        main([*base, "1,2,3,4", "--minus", "x"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit):
        main(["predict", "toy", "--help"])
    assert "--scale" in capsys.readouterr().out


def test_ctrl_c_exits_130_with_how_to_resume(toy, tmp_path, capsys):
    argv = ["train", "toy", "--runs-dir", str(tmp_path), "interrupt_at_step=3"]
    assert main(argv) == 130
    (folder,) = (tmp_path / "toy").iterdir()
    assert f"xmodal train toy --resume {folder}" in capsys.readouterr().err
    assert main(["train", "toy", "--resume", str(folder), "interrupt_at_step=-1"]) == 0
    assert capsys.readouterr().out.startswith(f"resuming: {folder}")
    assert json.loads((folder / "metrics.json").read_text())["train"]["steps"] == 16
