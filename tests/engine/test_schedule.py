import math

import pytest
import torch

from xmodal.engine.config import TrainerConfig
from xmodal.engine.schedule import planned_steps, warmup_cosine, world_size
from xmodal.errors import ParameterError


def test_warmup_then_cosine_to_the_floor():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = warmup_cosine(opt, warmup_steps=4, total_steps=12, min_lr_ratio=0.1)
    assert sched["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched["lr_scheduler"]["scheduler"].step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[8] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[12:] == pytest.approx([0.1, 0.1])


def test_planned_steps_follow_the_trainer_config():
    assert world_size() == 1
    assert planned_steps(TrainerConfig(max_epochs=3), 10) == 30
    assert planned_steps(TrainerConfig(max_epochs=3, max_steps=7), 10) == 7
    assert planned_steps(TrainerConfig(max_epochs=2, limit_train_batches=4), 10) == 8
    assert planned_steps(TrainerConfig(max_epochs=2, limit_train_batches=0.5), 10) == 10
    assert planned_steps(TrainerConfig(max_epochs=1), 0) == 1


def test_adam_config_builds_adam_on_the_warmup_cosine_plan():
    from xmodal.engine.schedule import AdamConfig

    w = torch.nn.Parameter(torch.zeros(3))
    out = AdamConfig(lr=0.1, weight_decay=0.01, warmup_steps=2, min_lr_ratio=0.5).configure([w], 10)
    optimizer, scheduler = out["optimizer"], out["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.defaults["weight_decay"] == 0.01
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.05) and lrs[1] == pytest.approx(0.1)  # warm-up
    assert lrs[-1] > 0.05 and lrs == sorted(lrs[:2]) + sorted(lrs[2:], reverse=True)
    with pytest.raises(ParameterError, match=r"optim.min_lr_ratio must be in \[0, 1\]"):
        AdamConfig(min_lr_ratio=2.0)
