"""Loaders for real dataset formats; the world's exporters write the same formats."""

from xmodal.data.avmanifest import AVManifest
from xmodal.data.esc50 import ESC50
from xmodal.data.images import load_image
from xmodal.data.karpathy import KarpathyCaptions
from xmodal.data.sound_sources import VGGSS, FlickrSoundNet

__all__ = ["AVManifest", "ESC50", "FlickrSoundNet", "KarpathyCaptions", "VGGSS", "load_image"]
