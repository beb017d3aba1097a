"""A module's weights: frozen for a while, or kept in a file once trained.

:func:`frozen`: in a GAN's generator step the discriminator judges the generator's images;
gradients must flow through the discriminator to the images, but not into its weights::

    with frozen(discriminator):
        loss_g = generator_loss(discriminator(generator(z)))
    loss_g.backward()  # the generator's gradients only

:func:`cached_module`: a judge trained once and reused from its file (no pickle)::

    judge = cached_module(run_dir / "judge.pt", make_judge)  # make_judge(train: bool)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from xmodal._io import atomic_path
from xmodal.errors import DataError

__all__ = ["cached_module", "frozen"]


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` with ``requires_grad=False`` on every parameter inside the block; each
    parameter's own flag is given back after it (also after an error)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def cached_module(path: str | Path | None, make: Callable[[bool], nn.Module]) -> nn.Module:
    """A module whose trained weights are kept in the file ``path``, in eval mode.

    When ``path`` holds them, ``make(False)`` builds the module and they are loaded into it
    (``weights_only``: nothing is unpickled); otherwise ``make(True)`` builds and trains it
    and its ``state_dict`` is saved at ``path`` (atomically; not at all for ``None``).
    Weights that do not fit raise DataError naming the file.
    """
    model = make(False)
    if path is not None and Path(path).is_file():
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except (RuntimeError, OSError, KeyError) as err:
            raise DataError(f"{path} cannot be read as the cached module's weights: {err}; "
                            "delete it to train the module again") from None  # fmt: skip
        return model.eval()
    model = make(True)
    if path is not None:
        with atomic_path(path) as tmp:
            torch.save(model.state_dict(), tmp)
    return model.eval()
