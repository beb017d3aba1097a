"""Short auxiliary fits: a pre-training stage, a probe, a judge classifier.

Some tasks train a small model before or beside their main fit (VQA pre-trains its image
encoder on the world's object labels; text-to-image pre-trains a sentence encoder and its
discriminator's classifiers, and trains the classifier that judges its images). Such a fit
is a few hundred plain optimizer steps on batches the task draws itself: no epochs, no
checkpoints, no logger. :func:`fit_steps` is that loop, written once::

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)

    def step(_):
        idx = torch.randint(len(images), (64,), generator=gen)
        return F.cross_entropy(model(images[idx]), labels[idx])

    losses = fit_steps(opt, step, steps=500, modules=[model])

The batches come from the task's own generator, so the global random state (hence the
main fit) is the same with or without the auxiliary fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from xmodal._checks import check_positive_int
from xmodal.errors import ParameterError

__all__ = ["fit_steps"]


def fit_steps(
    optimizer: torch.optim.Optimizer,
    loss_of_step: Callable[[int], torch.Tensor],
    *,
    steps: int,
    modules: Sequence[nn.Module] = (),
) -> list[float]:
    """Take ``steps`` optimizer steps, step ``k`` minimising ``loss_of_step(k)``.

    ``modules`` are put in training mode for the fit and back in the mode each had after
    it. Gradients are on inside (the engine evaluates under ``torch.no_grad``). Returns
    every step's loss; a loss that is not finite raises ParameterError naming the step.
    """
    check_positive_int(steps, "steps", minimum=0)
    modes = [m.training for m in modules]
    for m in modules:
        m.train()
    losses: list[float] = []
    try:
        with torch.enable_grad():
            for k in range(steps):
                loss = loss_of_step(k)
                value = float(loss.detach())
                if not math.isfinite(value):  # before the update: the weights stay finite
                    raise ParameterError(
                        f"the auxiliary fit's loss is not finite at step {k}. Found: {value}"
                    )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(value)
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)
    return losses
