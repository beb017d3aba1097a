"""The worked example of docs/architecture.md ("Adding a task") is real code: it is run
here as a task, through the same verbs as every task, so the page stays true."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest

DOC = Path(__file__).parents[1] / "docs" / "architecture.md"


@pytest.fixture(scope="module")
def example_task():
    text = DOC.read_text(encoding="utf-8")
    (code,) = re.findall(r"<!-- example-task -->\n```python\n(.*?)```", text, flags=re.S)
    module = types.ModuleType("example_places")
    sys.modules[module.__name__] = module  # dataclasses resolve annotations through it
    exec(compile(code, str(DOC), "exec"), module.__dict__)  # noqa: S102 - our own docs
    from xmodal.registry import register_task, unregister_task

    register_task(module.PlacesTask, overwrite=True)
    yield module
    unregister_task("example-places")
    del sys.modules[module.__name__]


def test_the_worked_example_trains_evaluates_and_predicts(example_task, tmp_path, capsys):
    from xmodal.audio import save
    from xmodal.cli import main
    from xmodal.world import World

    tiny = ["data.train_size=32", "data.val_size=8", "data.test_size=16", "data.batch_size=8",
            "data.num_workers=0", "model.channels=8", "trainer.max_epochs=1",
            "trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false"]  # fmt: skip
    assert main(["train", "example-places", "--runs-dir", str(tmp_path), *tiny]) == 0
    (run,) = (tmp_path / "example-places").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())["test"]
    assert metrics["n"] == 16 and metrics["chance"] == pytest.approx(1 / 8)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert (run / "figures" / "probabilities_test_0.png").is_file()

    assert main(["eval", "example-places", "--run", str(run)]) == 0
    assert json.loads((run / "eval-test.json").read_text()) == metrics

    sample = World(seed=0).place("test", 0)
    wav = save(tmp_path / "place.wav", sample.audio, 16000)
    capsys.readouterr()
    assert main(["predict", "example-places", "--run", str(run), str(wav), "-k", "2"]) == 0
    (line, *_) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{wav}: ") and line.count(",") == 1  # two places


def test_the_example_has_the_predict_flag_from_its_dataclass(example_task, capsys):
    from xmodal.cli import main

    with pytest.raises(SystemExit):
        main(["predict", "example-places", "--help"])
    assert "-k TOP_K, --top-k TOP_K" in capsys.readouterr().out
