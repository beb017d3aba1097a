"""The VQA attention figure: the image, then one panel per hop; the answer titled in red
when it is wrong; a split's examples named by image and family."""

from __future__ import annotations

import pytest
import torch
from matplotlib.figure import Figure

from xmodal.errors import ParameterError
from xmodal.viz.vqa import plot_vqa_attention, plot_vqa_examples


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


def test_examples_are_named_by_image_and_family_with_the_true_answer():
    class Split:  # what a QuestionSplit gives the figures
        questions = ["is there a circle?", "what colour is it?", "how many?"]
        answers = [["yes"] * 10, ["red"] * 6 + ["blue"] * 4, ["2"] * 10]
        families = ["yes/no", "colour", "count"]

        def image(self, g):
            return torch.full((3, 16, 16), 0.1 * g)

    maps = {1: torch.softmax(torch.randn(2, 4), -1).view(2, 2, 2)}
    figures = plot_vqa_examples(Split(), [0, 1], ["yes", "blue"], maps, prefix="vqa_val")
    assert list(figures) == ["vqa_val_0_yes_no", "vqa_val_1_colour"]
    assert len(figures["vqa_val_0_yes_no"].axes) == 1  # no maps for question 0
    wrong = figures["vqa_val_1_colour"]
    assert len(wrong.axes) == 3 and wrong.axes[0].get_title() == "answer: blue (true: red)"
    assert wrong._suptitle.get_text() == "what colour is it?"
    with pytest.raises(ParameterError, match="one answer per shown question"):
        plot_vqa_examples(Split(), [0, 1], ["yes"])
