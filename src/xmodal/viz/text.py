"""Texts as a figure, so a report that shows figures shows them: sampled texts of a
language model, one block each, in a monospace font.

The figure is made without pyplot, so it needs no display and touches no global state.

Example:
    >>> fig = plot_text_samples(["a red circle", "a big blue square"], title="samples")
    >>> save_figure(fig, "samples.png")
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from matplotlib.figure import Figure

from xmodal._checks import check_positive_int
from xmodal.errors import ParameterError

__all__ = ["plot_text_samples"]


def plot_text_samples(
    samples: Sequence[str], *, title: str = "samples", width: int = 100, max_lines: int = 12
) -> Figure:
    """``samples`` one under the other, each headed ``sample k:``, its lines wrapped at
    ``width`` characters and cut to its first ``max_lines``; ``title`` above them. The
    figure's height follows the number of lines. Returns a
    :class:`matplotlib.figure.Figure`."""
    if isinstance(samples, str) or not all(isinstance(s, str) for s in samples):
        raise ParameterError(f"samples must be a list of strings. Found: {samples!r:.80}")
    width = check_positive_int(width, "width")
    max_lines = check_positive_int(max_lines, "max_lines")
    blocks = []
    for k, s in enumerate(samples):
        lines = [w for line in s.split("\n") for w in (textwrap.wrap(line, width) or [""])]
        blocks.append(f"sample {k}:\n" + "\n".join(lines[:max_lines]))
    body = "\n\n".join(blocks)
    n_lines = body.count("\n") + 3
    fig = Figure(figsize=(9, 0.15 * n_lines + 0.4))
    fig.text(
        0.01,
        0.99,
        title + "\n\n" + body,
        va="top",
        ha="left",
        family="monospace",
        fontsize=8,
        parse_math=False,
    )
    return fig
