"""Loaders for real dataset formats; the world's exporters write the same formats."""

from xmodal.data.images import load_image
from xmodal.data.karpathy import KarpathyCaptions

__all__ = ["KarpathyCaptions", "load_image"]
