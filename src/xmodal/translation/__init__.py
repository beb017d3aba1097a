"""Translation: turn one modality into another (captioning, ...)."""

from xmodal.translation.captioning import (
    CaptionOutput,
    Generation,
    ShowAttendTell,
    ShowTell,
    beam_search_loop,
    caption_loss,
    target_mask,
)

__all__ = [
    "CaptionOutput",
    "Generation",
    "ShowAttendTell",
    "ShowTell",
    "beam_search_loop",
    "caption_loss",
    "target_mask",
]
