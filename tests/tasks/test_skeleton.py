"""What the tasks share beside the engine (:mod:`xmodal.tasks._skeleton`): old runs' keys
put back, one manual update through the engine's step, and an upstream run's config kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from xmodal.errors import DataError
from xmodal.tasks._skeleton import kept_upstream, manual_update, older_run_values


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


def test_manual_update_zeroes_backpropagates_clips_and_steps_in_order():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = torch.optim.SGD([w], lr=0.5)
    calls = []

    class Step:
        optimizers = (None, opt)

        def backward(self, loss):
            calls.append(("backward", w.grad))
            loss.backward()

        def clip_gradients(self, optimizer):
            calls.append(("clip", optimizer))
            w.grad.mul_(0.5)

    w.grad = torch.ones(2)  # stale: zeroed before the backward
    manual_update(Step(), 1, (w**2).sum())
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
