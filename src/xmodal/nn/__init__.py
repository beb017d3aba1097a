"""Layers and objectives shared by several families (losses for now)."""

from xmodal.nn.losses import LogitScale, hinge_triplet_loss, info_nce_loss

__all__ = ["LogitScale", "hinge_triplet_loss", "info_nce_loss"]
