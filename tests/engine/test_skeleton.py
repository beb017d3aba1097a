"""The skeleton tasks share: base config sections, data sources by name, the default
optimizer and schedule, figures written by the engine, predict options from a dataclass,
short auxiliary fits and upstream runs."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import ClassVar

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from xmodal.engine import Task, TrainerConfig, format_config, load_config, train
from xmodal.engine.base import (
    DataConfig,
    EvalConfig,
    ImageDataConfig,
    Section,
    TaskConfig,
    choice,
    flag,
    fraction,
    integer,
    number,
    older_run_values,
    trainer_defaults,
)
from xmodal.engine.fit import fit_steps
from xmodal.engine.keep import kept_upstream
from xmodal.engine.module import ManualStep
from xmodal.engine.options import add_option_arguments, check_options, option
from xmodal.engine.schedule import AdamConfig
from xmodal.engine.upstream import Upstream, config_key, resolve_upstreams, upstream_run
from xmodal.errors import DataError, ParameterError
from xmodal.viz.figure import save_figures, unique_stems

# ----------------------------------------------------------------------------- configs


@dataclass
class _Data(ImageDataConfig):
    sources: ClassVar[tuple[str, ...]] = ("world", "folder")
    train_size: int = 20
    root: str | None = None


@dataclass
class _Config(TaskConfig):
    data: _Data = field(default_factory=_Data)
    optim: AdamConfig = field(default_factory=AdamConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    trainer: TrainerConfig = trainer_defaults(max_epochs=3, gradient_clip_val=1.0)


def test_sections_keep_their_defaults_and_add_fields():
    cfg = _Config()
    assert cfg.data.train_size == 20 and cfg.data.val_size == 500  # new default, base default
    assert cfg.data.image_size == 64 and cfg.data.root is None
    assert cfg.trainer.max_epochs == 3 and cfg.trainer.gradient_clip_val == 1.0
    assert TrainerConfig().max_epochs == 10  # the factory does not change the class
    assert cfg.eval_splits == ("test",)
    assert [cfg.data.size(s) for s in ("train", "val", "test", "compositional")] == [
        20, 500, 1000, 1000,
    ]  # fmt: skip
    # The task's sections first, the trainer last.
    keys = [line.split(":")[0] for line in format_config(cfg).splitlines() if line[:1] != " "]
    assert keys == ["seed", "data", "optim", "eval", "trainer"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.name=coco", "data.name must be one of 'world', 'folder'. Found: 'coco'"),
        ("data.batch_size=0", "data.batch_size must be an integer >= 1. Found: 0"),
        ("data.image_size=0", "data.image_size must be an integer >= 1. Found: 0"),
        ("data.num_workers=-1", "data.num_workers must be an integer >= 0. Found: -1"),
        ("data.world_seed=-2", "data.world_seed must be an integer >= 0. Found: -2"),
        ("eval.n_figures=-1", "eval.n_figures must be an integer >= 0. Found: -1"),
    ],
)
def test_section_checks_name_the_key(override, message):
    with pytest.raises(ParameterError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_config(_Config, overrides=[override])


def test_declared_checks_name_the_key_and_survive_a_new_default():
    @dataclass
    class Model(Section):
        key: ClassVar[str] = "model"
        arch: str = choice("a", ("a", "b"))
        width: int = integer(8)
        lr: float = number(1e-3, positive=True)
        dropout: float = fraction(0.1)
        top_k: int | None = integer(None, optional=True)
        gate: bool = flag(True)

    @dataclass
    class Wider(Model):
        width: int = 16  # a new default, the same check

    assert Wider().width == 16 and Model(top_k=None).top_k is None
    for kwargs, message in [
        ({"arch": "c"}, "model.arch must be one of 'a', 'b'. Found: 'c'"),
        ({"width": 0}, "model.width must be an integer >= 1. Found: 0"),
        ({"lr": 0.0}, "model.lr must be a finite number > 0. Found: 0.0"),
        ({"dropout": 1.0}, "model.dropout must be in [0, 1). Found: 1.0"),
        ({"top_k": 0}, "model.top_k must be an integer >= 1. Found: 0"),
        ({"gate": 1}, "model.gate must be True or False. Found: 1"),
    ]:
        for cls in (Model, Wider):
            with pytest.raises(ParameterError) as err:
                cls(**kwargs)
            assert str(err.value) == message
    with pytest.raises(ParameterError, match="model.width must be an integer >= 1. Found: -1"):
        Wider(width=-1)


def test_the_root_checks_the_seed():
    with pytest.raises(ParameterError, match="seed must be an integer >= 0. Found: -1"):
        _Config(seed=-1)


def test_a_plain_data_section_has_no_image_size():
    assert not hasattr(DataConfig(), "image_size")


# ----------------------------------------------------------------------------- the task


class _Task(Task):
    name = "skeleton"
    Config = _Config

    def world_data(self, split):
        return list(range(self.config.data.size(split)))

    def folder_data(self, split):
        return [split]


def test_data_reads_the_named_source_once_per_split():
    task = _Task(_Config())
    first = task.data("train")
    assert first == list(range(20)) and task.data("train") is first
    other = _Task(load_config(_Config, overrides=["data=folder"]))
    assert other.data("val") == ["val"]


def test_a_source_without_a_reader_is_a_clear_error():
    @dataclass
    class Data(DataConfig):
        sources: ClassVar[tuple[str, ...]] = ("world", "tape")

    @dataclass
    class ReelConfig(TaskConfig):
        data: Data = field(default_factory=Data)

    class T(Task):
        name = "reel"
        Config = ReelConfig

    with pytest.raises(ParameterError, match="task 'reel' cannot read data source 'tape'"):
        T(ReelConfig(data=Data(name="tape"))).data("train")


def test_the_default_optimizer_spans_the_planned_steps():
    task = _Task(load_config(_Config, overrides=["data.batch_size=4", "optim.warmup_steps=2"]))
    assert task.steps_per_epoch() == 5 and task.total_steps() == 15  # 20 // 4 × 3 epochs
    model = nn.Linear(2, 1)
    out = task.configure_optimizers(model)
    opt, sched = out["optimizer"], out["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == pytest.approx(1e-3)
    lrs = []
    for _ in range(15):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[1] == pytest.approx(2e-3)  # warmed up after 2 steps
    assert lrs[-1] < lrs[2] and opt.param_groups[0]["lr"] == pytest.approx(0.02 * 2e-3)


# ----------------------------------------------------------------------------- figures


def test_figures_are_written_atomically_and_closed(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    other = Figure()
    other.add_subplot().plot([1, 0])
    paths = save_figures({"line": fig, "other.v2": other, "notes.txt": "a\n"}, tmp_path / "f")
    assert [p.name for p in paths] == ["line.png", "other.v2.png", "notes.txt"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths[:2])
    assert (tmp_path / "f" / "notes.txt").read_text() == "a\n"
    assert fig.number not in plt.get_fignums()
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == sorted(p.name for p in paths)


@pytest.mark.parametrize("name", ["../up", "a/b", "", ".hidden", "x y"])
def test_a_figure_name_cannot_leave_the_folder(tmp_path, name):
    with pytest.raises(ParameterError, match="a figure name must be a file stem"):
        save_figures({name: Figure()}, tmp_path)


def test_text_figures_must_be_txt(tmp_path):
    with pytest.raises(ParameterError, match="must end in .txt"):
        save_figures({"notes": "text"}, tmp_path)


def test_unique_stems():
    assert unique_stems(["a/x.png", "b/x.png", "y.jpg", "c/x.png"]) == ["x", "x-1", "y", "x-3"]


# ----------------------------------------------------------------------------- options


@dataclass
class _Options:
    text: list[str] | None = option(None, "a query", metavar="TEXT")
    top_k: int | None = option(None, "results per query", flags=("-k",))
    n: int = option(8, "images per caption", flags=("-n",))
    tags: bool = option(False, "also give tags")


def test_flags_come_from_the_dataclass():
    parser = argparse.ArgumentParser()
    add_option_arguments(parser, _Options)
    defaults = vars(parser.parse_args([]))
    assert defaults == {"text": None, "top_k": None, "n": 8, "tags": False}
    args = parser.parse_args(["--text", "a", "--text", "b", "-k", "3", "--tags", "-n", "2"])
    assert vars(args) == {"text": ["a", "b"], "top_k": 3, "n": 2, "tags": True}
    text = " ".join(parser.format_help().split())
    assert "images per caption (default 8)" in text and "a query; repeatable" in text


def test_options_get_their_defaults_and_unknown_ones_are_refused():
    assert check_options(_Options, "t", {"n": 3}) == {"text": None, "top_k": None, "n": 3,
                                                      "tags": False}  # fmt: skip
    with pytest.raises(ParameterError, match=r"predict t has no option 'm'. Its options: n, "):
        check_options(_Options, "t", {"m": 1})
    with pytest.raises(ParameterError, match="Its options: none"):
        check_options(None, "t", {"m": 1})


# ----------------------------------------------------------------------------- fit_steps


def test_fit_steps_fits_and_restores_modes():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 3, generator=gen)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    model = nn.Sequential(nn.Linear(3, 1), nn.Dropout(0.0))
    model.eval()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(k):
        assert model.training and torch.is_grad_enabled()
        idx = torch.randint(256, (32,), generator=gen)
        return nn.functional.mse_loss(model(x[idx]).squeeze(-1), y[idx])

    with torch.no_grad():
        losses = fit_steps(opt, step, steps=200, modules=[model])
    assert len(losses) == 200 and losses[-1] < 1e-3 * losses[0]
    assert not model.training


def test_fit_steps_stops_on_a_nan_loss():
    w = nn.Parameter(torch.ones(1))
    opt = torch.optim.SGD([w], lr=0.1)
    with pytest.raises(ParameterError, match="not finite at step 0"):
        fit_steps(opt, lambda k: w.sum() * float("nan"), steps=3)


# ----------------------------------------------------------------------------- upstream


@pytest.fixture
def down_task(toy):
    """'toy-down': the toy task with a declared upstream, a 'toy' run named by 'teacher'."""
    from tests.engine.toy_task import ToyConfig, ToyTask
    from xmodal.registry import register_task, unregister_task

    @dataclass
    class DownConfig(ToyConfig):
        teacher: str | None = None

    class DownTask(ToyTask):
        name = "toy-down"
        Config = DownConfig
        upstream = (Upstream("teacher", "toy"),)

    register_task(DownTask, overwrite=True)
    yield "toy-down"
    unregister_task("toy-down")


def test_an_upstream_is_trained_once_into_the_cache_and_reused(down_task, tmp_path,
                                                               monkeypatch):  # fmt: skip
    monkeypatch.setenv("XMODAL_CACHE", str(tmp_path / "cache"))
    first = train(down_task, runs_dir=tmp_path / "runs")
    folder = tmp_path / "cache" / "runs" / "toy" / config_key("toy")
    assert (folder / "model.safetensors").is_file()
    assert first.config.teacher == str(folder)
    assert f"teacher: {folder}" in (first.run_dir / "config.yaml").read_text()
    info = json.loads((first.run_dir / "run.json").read_text())["upstream"]["teacher"]
    seconds = info.pop("seconds")  # its training counts in the time of this run
    assert info == {"task": "toy", "run": str(folder), "trained_by_engine": True, "asked": None}
    assert 0 < seconds == first.metrics["train"]["upstream_seconds"]

    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    second = train(down_task, runs_dir=tmp_path / "runs")
    info = json.loads((second.run_dir / "run.json").read_text())["upstream"]["teacher"]
    assert info["trained_by_engine"] is False and "seconds" not in info
    assert "upstream_seconds" not in second.metrics["train"]
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert second.metrics["test"] == first.metrics["test"]  # the upstream leaves no trace


def test_a_given_upstream_run_is_checked(down_task, trained, tmp_path):
    run = train(down_task, runs_dir=tmp_path, overrides=[f"teacher={trained.run_dir}"])
    assert run.config.teacher == str(trained.run_dir)
    with pytest.raises(DataError, match="is not a finished 'toy' run"):
        train(down_task, runs_dir=tmp_path, overrides=[f"teacher={run.run_dir / 'figures'}"])
    with pytest.raises(DataError, match="no such run folder"):
        train(down_task, runs_dir=tmp_path, overrides=[f"teacher={tmp_path / 'none'}"])


def test_an_optional_upstream_left_out_is_skipped():
    @dataclass
    class C:
        teacher: str | None = None

    calls = []
    cfg = C()
    done = resolve_upstreams([Upstream("teacher", "toy", required=False)], cfg,
                             train=lambda *a, **k: calls.append(a))  # fmt: skip
    assert done == {} and cfg.teacher is None and not calls
    with pytest.raises(ParameterError, match="upstream key 'nope' is not in the task's config"):
        resolve_upstreams([Upstream("nope", "toy")], cfg, train=None)


def test_the_defaults_run_inherits_the_declared_keys(toy, tmp_path, monkeypatch):
    """``inherit``: the defaults' run takes those keys from the run's config, so a run with
    another value gets (and caches) its own upstream, and one with the default the same."""
    monkeypatch.setenv("XMODAL_CACHE", str(tmp_path))

    @dataclass
    class C:
        teacher: str | None = "default"
        lr: float = 0.01
        n_features: int = 4

    calls = []

    def fake_train(task, **kwargs):
        calls.append(kwargs["overrides"])
        folder = kwargs["run_dir"]
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"")
        (folder / "model.json").write_text(json.dumps({"task": task}))

    up = Upstream("teacher", "toy", required=False, inherit=("lr", "n_features"))
    cfg = C()
    resolve_upstreams([up], cfg, train=fake_train)
    assert calls == [["lr=0.01", "n_features=4"]]
    assert cfg.teacher == str(tmp_path / "runs" / "toy" / config_key("toy", ["lr=0.01"]))
    assert config_key("toy", ["lr=0.01"]) != config_key("toy")
    cfg = C(lr=0.05)  # the toy's own default: the defaults' run itself
    resolve_upstreams([up], cfg, train=fake_train)
    assert cfg.teacher == str(tmp_path / "runs" / "toy" / config_key("toy"))


def test_several_processes_never_train_an_upstream(toy, tmp_path):
    with pytest.raises(ParameterError, match="several processes are training: train it first"):
        upstream_run("toy", train=None, cache_dir=tmp_path)
    assert not (tmp_path / "runs" / "toy").exists()


def test_the_cache_key_follows_the_config(toy):
    assert config_key("toy") == config_key("toy", [])
    assert config_key("toy") != config_key("toy", ["lr=0.01"])


def test_upstream_run_continues_an_unfinished_cached_run(toy, tmp_path):
    calls = []

    def fake_train(task, **kwargs):
        calls.append(kwargs)
        folder = kwargs.get("run_dir") or kwargs.get("resume")
        (folder / "model.safetensors").write_bytes(b"")
        (folder / "model.json").write_text(json.dumps({"task": task}))

    folder = tmp_path / "runs" / "toy" / config_key("toy")
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"")
    got, trained = upstream_run("toy", train=fake_train, cache_dir=tmp_path)
    assert (got, trained) == (folder, True) and calls[0]["resume"] == folder


# ------------------------------------------------------- older runs, manual updates, kept parts


@dataclass
class _Model:
    key: ClassVar[str] = "model"
    aux_weight: float = 1.0
    aux_fake: bool = True


def test_older_run_values_set_only_the_keys_the_saved_config_lacks(tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 0\nmodel:\n  aux_weight: 2.0\n")
    section = _Model(aux_weight=2.0)
    older_run_values(tmp_path, section, aux_weight=0.0, aux_fake=False)
    assert section == _Model(aux_weight=2.0, aux_fake=False)
    for text in ("model: [1, 2]\n", ": : not yaml\n"):  # unreadable as such: nothing changes
        (tmp_path / "config.yaml").write_text(text)
        section = _Model()
        older_run_values(tmp_path, section, aux_weight=0.0, aux_fake=False)
        assert section == _Model()
    older_run_values(tmp_path / "none", section, aux_fake=False)  # no config.yaml at all
    assert section == _Model()


def test_a_manual_update_zeroes_backpropagates_clips_and_steps_in_order():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = torch.optim.SGD([w], lr=0.5)
    calls = []

    class Step(ManualStep):  # the engine's step, its three primitives recorded
        optimizers = (None, opt)

        def __init__(self):
            pass

        def backward(self, loss):
            calls.append(("backward", w.grad))
            loss.backward()

        def clip_gradients(self, optimizer):
            calls.append(("clip", optimizer))
            w.grad.mul_(0.5)

    w.grad = torch.ones(2)  # stale: zeroed before the backward
    Step().update(1, (w**2).sum())
    assert [c[0] for c in calls] == ["backward", "clip"] and calls[1][1] is opt
    assert calls[0][1] is None or not calls[0][1].any()
    assert w.detach().tolist() == pytest.approx([0.5, 1.0])  # w - 0.5 * (2w / 2)


def test_kept_upstream_needs_the_config_it_kept(tmp_path):
    with pytest.raises(DataError, match="upstream run spec .* does not exist"):
        kept_upstream(tmp_path, "text_encoder.json", "retrieval")
    (tmp_path / "text_encoder.json").write_text('{"run": "x"}')
    with pytest.raises(DataError, match="text_encoder.json of .* has no 'config' object"):
        kept_upstream(tmp_path, "text_encoder.json", "retrieval")
    (tmp_path / "text_encoder.json").write_text('{"config": {"model": {"embed_dim": 24}}}')
    task = kept_upstream(tmp_path, "text_encoder.json", "retrieval")
    assert task.name == "retrieval" and task.config.model.embed_dim == 24
