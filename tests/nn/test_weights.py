"""A module's weights (:mod:`xmodal.nn.weights`): frozen inside a block and given back as
they were, and trained once into a file that later calls read instead of training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xmodal.errors import DataError
from xmodal.nn.weights import cached_module, frozen


def test_frozen_passes_gradients_through_and_restores_each_flag():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    net[1].bias.requires_grad_(False)  # already frozen before: stays so after
    x = torch.randn(2, 3, requires_grad=True)
    with frozen(net) as inside:
        assert inside is net and not any(p.requires_grad for p in net.parameters())
        net(x).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0  # through the module ...
    assert all(p.grad is None for p in net.parameters())  # ... not into its weights
    assert [p.requires_grad for p in net.parameters()] == [True, True, True, False]
    with pytest.raises(RuntimeError, match="boom"), frozen(net):
        raise RuntimeError("boom")
    assert [p.requires_grad for p in net.parameters()] == [True, True, True, False]


def test_cached_module_trains_once_then_reads_the_file(tmp_path):
    calls = []

    def make(train: bool) -> nn.Module:
        calls.append(train)
        torch.manual_seed(0)
        model = nn.Linear(2, 2)
        if train:
            with torch.no_grad():
                model.weight.fill_(7.0)
        return model

    path = tmp_path / "judge.pt"
    first = cached_module(path, make)
    assert calls == [False, True] and path.is_file() and not first.training
    again = cached_module(path, make)
    assert calls == [False, True, False]  # built, then its weights read: no training
    assert torch.equal(again.weight, torch.full((2, 2), 7.0)) and not again.training
    assert cached_module(None, make).weight.eq(7.0).all()  # no file: trained, not saved
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    torch.save({"other": torch.zeros(1)}, path)
    with pytest.raises(DataError, match="judge.pt cannot be read as the cached module's weights"):
        cached_module(path, make)
