"""The task registry: built-in metadata without imports, lazy entries, clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.engine.toy_task import ToyTask
from xmodal.errors import ParameterError
from xmodal.registry import get_task, list_tasks, register_task, unregister_task


def test_caption_is_listed_with_its_metadata():
    info = {t.name: t for t in list_tasks()}["caption"]
    assert (info.family, info.data) == ("translation", "world")
    assert "Show, Attend and Tell" in info.summary


def test_listing_tasks_imports_neither_torch_nor_lightning():
    code = (
        "import sys; from xmodal.cli import main; main(['tasks']); "
        "assert 'torch' not in sys.modules and 'lightning' not in sys.modules, 'heavy import'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split() == ["name", "family", "data", "summary"]
    assert any(line.startswith("caption ") for line in out.stdout.splitlines())


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ParameterError) as err:
        get_task("captoin")
    assert "unknown task 'captoin'" in str(err.value)
    assert "did you mean 'caption'" in str(err.value)
    assert "Known tasks: backbone, caption" in str(err.value)


def test_register_a_class_reads_its_attributes():
    try:
        info = register_task(ToyTask, name="toy-r")
        assert (info.name, info.family, info.data) == ("toy-r", "representations", "random")
        assert get_task("toy-r") is ToyTask
        assert "toy-r" in [t.name for t in list_tasks()]
        with pytest.raises(ParameterError, match="already registered"):
            register_task(ToyTask, name="toy-r")
        register_task(ToyTask, name="toy-r", summary="again", overwrite=True)
        assert {t.name: t for t in list_tasks()}["toy-r"].summary == "again"
    finally:
        unregister_task("toy-r")


def test_lazy_entries_import_on_first_use():
    try:
        register_task("tests.engine.toy_task:ToyTask", name="toy-lazy", family="f", data="d",
                      summary="s")  # fmt: skip
        assert get_task("toy-lazy") is ToyTask
        register_task("no_such_module_xyz.tasks:Task", name="ghost", family="f", data="d",
                      summary="s")  # fmt: skip
        assert "ghost" in [t.name for t in list_tasks()]  # listed without importing
        with pytest.raises(ParameterError, match="module 'no_such_module_xyz' cannot be found"):
            get_task("ghost")
        register_task("tests.engine.toy_task:Nope", name="ghost2", family="f", data="d",
                      summary="s")  # fmt: skip
        with pytest.raises(ParameterError, match="has no 'Nope'"):
            get_task("ghost2")
    finally:
        for name in ("toy-lazy", "ghost", "ghost2"):
            unregister_task(name)


@pytest.mark.parametrize("bad", ["no-colon", "mod:", ":Cls"])
def test_bad_entries(bad):
    with pytest.raises(ParameterError, match="module:Class"):
        register_task(bad, name="x", family="f", data="d", summary="s")


def test_only_task_classes():
    with pytest.raises(ParameterError, match="subclass of xmodal.engine.Task"):
        register_task(dict, name="d")
    with pytest.raises(ParameterError, match="non-empty word"):
        register_task(ToyTask, name="two words")
