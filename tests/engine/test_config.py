"""Configs: typed overrides, YAML layers, strict keys and types, and the YAML round trip."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from tests.engine.toy_task import ToyConfig
from xmodal.engine.config import (
    TrainerConfig,
    config_from_dict,
    config_to_dict,
    format_config,
    load_config,
    parse_overrides,
)
from xmodal.errors import DataError, ParameterError


def test_defaults_without_layers():
    assert load_config(ToyConfig) == ToyConfig()


def test_overrides_are_typed_by_yaml_and_by_the_field():
    cfg = load_config(ToyConfig, overrides=[
        "trainer.max_epochs=3", "lr=1e-3", "n_train=128", "trainer.gradient_clip_val=null",
        "eval_splits=[test]", "tags={a: 1}", "trainer.devices=0,1", "trainer.deterministic=true",
        "model.dropout=0",
    ])  # fmt: skip
    assert cfg.trainer.max_epochs == 3 and type(cfg.trainer.max_epochs) is int
    assert cfg.lr == 0.001 and type(cfg.lr) is float  # YAML reads "1e-3" as a string
    assert cfg.model.dropout == 0.0 and type(cfg.model.dropout) is float  # int → float
    assert cfg.trainer.gradient_clip_val is None
    assert cfg.eval_splits == ("test",)  # list → tuple
    assert cfg.tags == {"a": 1}
    assert cfg.trainer.devices == "0,1"
    assert cfg.trainer.deterministic is True


def test_later_override_wins_and_partial_sections_keep_the_task_defaults():
    cfg = load_config(ToyConfig, overrides=["trainer.max_epochs=3", "trainer.max_epochs=5"])
    assert cfg.trainer.max_epochs == 5
    # The toy's TrainerConfig default differs from TrainerConfig(); the rest is kept.
    assert cfg.trainer.enable_progress_bar is False and cfg.trainer.log_every_n_steps == 1


def test_unknown_key_names_the_dotted_key_and_the_valid_ones():
    with pytest.raises(ParameterError) as err:
        load_config(ToyConfig, overrides=["trainer.max_epoch=3"])
    msg = str(err.value)
    assert "'trainer.max_epoch'" in msg and "did you mean 'max_epochs'" in msg
    assert "max_steps" in msg and "precision" in msg and "lr" not in msg.split("keys")[-1]
    with pytest.raises(ParameterError, match=r"unknown config key 'nope'.*top level.*seed"):
        load_config(ToyConfig, overrides=["nope=1"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.max_epochs=abc", "'trainer.max_epochs' must be int. Found: 'abc' (str)"),
        ("seed=true", "config key 'seed' must be int. Found: True (bool)"),
        ("seed=1.5", "config key 'seed' must be int. Found: 1.5 (float)"),
        ("trainer.enable_progress_bar=1", "'trainer.enable_progress_bar' must be bool"),
        ("eval_splits=[1]", "config key 'eval_splits[0]' must be str. Found: 1 (int)"),
        ("eval_splits=test", "'eval_splits' must be tuple[str, ...]"),
        ("tags={a: x}", "config key 'tags.a' must be int"),
        ("model=3", "'model' must be a mapping of ModelConfig fields"),
        ("seed.x=1", "config key 'seed' must be int"),
        ("trainer.gradient_clip_val=fast", "'trainer.gradient_clip_val' must be float | null"),
    ],
)
def test_wrong_types_name_key_type_and_value(override, message):
    with pytest.raises(ParameterError) as err:
        load_config(ToyConfig, overrides=[override])
    assert message in str(err.value)


@pytest.mark.parametrize("bad", ["trainer.max_epochs", "=3", "a..b=1", 3])
def test_malformed_overrides(bad):
    with pytest.raises(ParameterError, match="override"):
        load_config(ToyConfig, overrides=[bad])


def test_parse_overrides_nests_and_keeps_unparseable_text():
    assert parse_overrides(["a.b=1", "a.c=x: y: z", "d=[1, 2]", "e="]) == {
        "a": {"b": 1, "c": "x: y: z"}, "d": [1, 2], "e": None,
    }  # fmt: skip
    with pytest.raises(ParameterError, match="already set"):
        parse_overrides(["a=1", "a.b=2"])


def test_dataclass_checks_run(tmp_path):
    with pytest.raises(ParameterError, match="batch_size must be >= 1. Found: 0"):
        load_config(ToyConfig, overrides=["batch_size=0"])
    with pytest.raises(ParameterError, match="'trainer.precision' must be one of .*bf16-mixed"):
        load_config(ToyConfig, overrides=["trainer.precision=fp17"])
    with pytest.raises(ParameterError, match="DD:HH:MM:SS"):
        load_config(ToyConfig, overrides=["trainer.max_time=2h"])
    with pytest.raises(ParameterError, match="'trainer.max_epochs' must be an integer >= -1"):
        load_config(ToyConfig, overrides=["trainer.max_epochs=-2"])


def test_yaml_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.5\ntrainer:\n  max_epochs: 7\n  precision: bf16-mixed\n")
    cfg = load_config(ToyConfig, config_file=path, overrides=["trainer.max_epochs=9"])
    assert (cfg.lr, cfg.trainer.max_epochs, cfg.trainer.precision) == (0.5, 9, "bf16-mixed")
    assert cfg.trainer.log_every_n_steps == 1  # the task's default survives the file
    (tmp_path / "empty.yaml").write_text("")
    assert load_config(ToyConfig, config_file=tmp_path / "empty.yaml") == ToyConfig()


def test_bad_files_are_named(tmp_path):
    with pytest.raises(ParameterError, match="missing.yaml does not exist"):
        load_config(ToyConfig, config_file=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: [1, 2\n")
    with pytest.raises(DataError, match="bad.yaml: not valid YAML"):
        load_config(ToyConfig, config_file=bad)
    seq = tmp_path / "list.yaml"
    seq.write_text("- 1\n- 2\n")
    with pytest.raises(DataError, match="list.yaml: a config file must hold a mapping"):
        load_config(ToyConfig, config_file=seq)
    typo = tmp_path / "typo.yaml"
    typo.write_text("trainer:\n  max_epoch: 3\n")
    with pytest.raises(ParameterError, match="'trainer.max_epoch'"):
        load_config(ToyConfig, config_file=typo)


def test_format_config_round_trips_in_field_order(tmp_path):
    cfg = load_config(ToyConfig, overrides=["lr=0.25", "eval_splits=[test]", "tags={b: 2}",
                                            "trainer.max_time='00:01:00:00'"])  # fmt: skip
    text = format_config(cfg)
    assert text.splitlines()[0] == "seed: 0"
    names = [line.split(":")[0] for line in text.splitlines() if not line.startswith((" ", "-"))]
    assert names == list(config_to_dict(cfg))
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert load_config(ToyConfig, config_file=path) == cfg
    assert config_from_dict(ToyConfig, config_to_dict(cfg)) == cfg


@dataclass
class _Kinds:
    mode: Literal["a", "b"] = "a"
    devices: int | str = "auto"
    limit: float | int = 1.0
    pair: tuple[int, str] = (1, "x")
    sizes: list[int] = field(default_factory=list)
    path: Path | None = None


def test_more_annotation_kinds():
    cfg = config_from_dict(_Kinds, {"mode": "b", "devices": 2, "limit": 5, "pair": [2, "y"],
                                    "sizes": (1, 2), "path": "x/y"})  # fmt: skip
    assert cfg == _Kinds("b", 2, 5, (2, "y"), [1, 2], Path("x/y"))
    assert type(cfg.limit) is int and type(config_from_dict(_Kinds, {"limit": 0.5}).limit) is float
    with pytest.raises(ParameterError, match="'mode' must be one of 'a', 'b'. Found: 'c'"):
        config_from_dict(_Kinds, {"mode": "c"})
    with pytest.raises(ParameterError, match=r"'pair' must be tuple\[int, str\] \(2 items\)"):
        config_from_dict(_Kinds, {"pair": [1]})
    with pytest.raises(ParameterError, match="'devices' must be int | str. Found: 1.5"):
        config_from_dict(_Kinds, {"devices": 1.5})
    assert config_to_dict(cfg)["pair"] == [2, "y"] and config_to_dict(cfg)["path"] == "x/y"


def test_trainer_fields_are_trainer_arguments():
    import lightning.pytorch as pl

    params = inspect.signature(pl.Trainer.__init__).parameters
    kwargs = TrainerConfig().trainer_kwargs()
    assert "checkpoint_every_n_steps" not in kwargs
    assert set(kwargs) <= set(params)
