"""seeded_loader: the order of an epoch is a pure function of (seed, epoch)."""

from __future__ import annotations

import pytest
import torch

from xmodal.engine import seeded_loader
from xmodal.errors import ParameterError


def _order(loader, epoch):
    loader.sampler.set_epoch(epoch)
    return torch.cat([b for b in loader]).tolist()


def test_order_depends_only_on_seed_and_epoch():
    data = torch.arange(20)
    a = seeded_loader(data, batch_size=6, shuffle=True, seed=3)
    b = seeded_loader(data, batch_size=6, shuffle=True, seed=3)
    for epoch in range(3):  # a has run three epochs, b none: epoch 3 is the same
        _order(a, epoch)
    assert _order(a, 3) == _order(b, 3)
    assert _order(a, 3) != _order(a, 4)
    assert sorted(_order(a, 5)) == list(range(20))  # every sample once per epoch
    c = seeded_loader(data, batch_size=6, shuffle=True, seed=4)
    assert _order(c, 3) != _order(b, 3)


def test_no_shuffle_and_last_batch():
    loader = seeded_loader(torch.arange(10), batch_size=4, shuffle=False, seed=0)
    assert _order(loader, 7) == list(range(10))
    assert [len(b) for b in loader] == [4, 4, 2]
    dropped = seeded_loader(torch.arange(10), batch_size=4, shuffle=False, seed=0, drop_last=True)
    assert [len(b) for b in dropped] == [4, 4]


def test_iteration_leaves_the_global_rng_alone():
    loader = seeded_loader(torch.arange(10), batch_size=3, shuffle=True, seed=0)
    state = torch.get_rng_state()
    for epoch in range(2):
        _order(loader, epoch)
    assert torch.equal(state, torch.get_rng_state())


def test_skip_once_applies_to_its_epoch_only():
    loader = seeded_loader(torch.arange(12), batch_size=4, shuffle=True, seed=1)
    full = _order(loader, 2)
    loader.sampler.skip_once(4, epoch=2)
    assert _order(loader, 2) == full[4:]
    assert _order(loader, 2) == full  # once
    loader.sampler.skip_once(4, epoch=2)
    assert len(_order(loader, 3)) == 12  # another epoch is not skipped


def test_workers_persist():
    loader = seeded_loader(torch.arange(4), batch_size=2, shuffle=False, seed=0, num_workers=2)
    assert loader.persistent_workers and loader.num_workers == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"num_workers": -1}, "num_workers must be an integer >= 0"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"shuffle": "yes"}, "shuffle must be True or False"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"batch_size": 2, "shuffle": True, "seed": 0} | kwargs
    with pytest.raises(ParameterError, match=match):
        seeded_loader(torch.arange(4), **args)


def test_datasets_need_a_length():
    with pytest.raises(ParameterError, match="with a length"):
        seeded_loader(iter(range(3)), batch_size=2, shuffle=False, seed=0)
    with pytest.raises(ParameterError, match="empty"):
        seeded_loader([], batch_size=2, shuffle=False, seed=0)


def test_tasks_import_the_engine_without_lightning():
    import subprocess
    import sys

    code = (
        "import sys; from xmodal.engine import Task, TrainerConfig, seeded_loader, load_config; "
        "assert 'lightning' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
