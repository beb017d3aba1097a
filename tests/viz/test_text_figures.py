"""Texts as a figure: each sample headed and cut to its first lines, long lines wrapped,
the figure as tall as its text, and a string refused for a list of samples."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from xmodal.errors import ParameterError
from xmodal.viz.text import plot_text_samples


def test_samples_are_headed_wrapped_and_cut():
    long = "word " * 50  # 250 characters: three lines at width 100
    samples = ["a red circle", long, "\n".join(map(str, range(20)))]
    fig = plot_text_samples(samples, title="samples (temperature 0.8)")
    assert isinstance(fig, Figure)
    (text,) = fig.texts
    body = text.get_text()
    assert body.startswith("samples (temperature 0.8)\n\nsample 0:\na red circle\n\nsample 1:")
    assert "sample 2:\n0\n1\n" in body and "\n11" in body and "\n12" not in body  # 12 lines
    assert max(len(line) for line in body.split("\n")) <= 100
    short = plot_text_samples(["a red circle"])
    assert short.get_figheight() < fig.get_figheight()
    with pytest.raises(ParameterError, match="samples must be a list of strings"):
        plot_text_samples("a red circle")
