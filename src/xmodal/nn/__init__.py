"""Layers and objectives shared by several families: losses, frozen and cached weights."""

from xmodal.nn.losses import LogitScale, distillation_loss, hinge_triplet_loss, info_nce_loss
from xmodal.nn.weights import cached_module, frozen

__all__ = [
    "LogitScale",
    "cached_module",
    "distillation_loss",
    "frozen",
    "hinge_triplet_loss",
    "info_nce_loss",
]
