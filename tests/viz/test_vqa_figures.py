"""The VQA attention figure: the image, then one panel per hop; the answer titled in red
when it is wrong."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from xmodal.viz.vqa import plot_vqa_attention


def test_one_panel_per_hop_and_a_wrong_answer_in_red():
    image = torch.rand(3, 32, 32)
    fig = plot_vqa_attention(image, "what colour is the circle?", "red", "blue",
                             torch.softmax(torch.randn(2, 16), -1).view(2, 4, 4))  # fmt: skip
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 3 and [a.get_title() for a in axes[1:]] == ["hop 1", "hop 2"]
    assert axes[0].get_title() == "answer: red (true: blue)"
    assert axes[0].title.get_color() == "red"
    assert fig._suptitle.get_text() == "what colour is the circle?"
    right = plot_vqa_attention(image, "is there a circle?", "yes", "yes")
    assert len(right.axes) == 1 and right.axes[0].title.get_color() == "black"
