"""Image grids (:mod:`xmodal.viz.grid`): each image in its cell, the figure with a label
left of each row, and the file a grid goes to."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from xmodal.errors import ParameterError
from xmodal.viz.grid import grid_path, image_grid, plot_image_grid


def test_image_grid_places_each_image():
    imgs = torch.zeros(3, 3, 4, 4)
    imgs[1] = 0.5
    grid = image_grid(imgs, nrow=2, pad=1)
    assert grid.shape == (3, 2 * 5 + 1, 2 * 5 + 1)
    assert float(grid[0, 1, 6]) == 0.5 and float(grid[0, 1, 1]) == 0.0
    assert float(grid[0, 6, 6]) == 1.0  # the empty cell stays white


def test_image_grid_clamps_and_checks_its_input():
    grid = image_grid(torch.full((1, 3, 2, 2), 3.0), nrow=1, pad=0)
    assert torch.equal(grid, torch.ones(3, 2, 2))
    with pytest.raises(ParameterError, match=r"images must have shape \(N, C, H, W\)"):
        image_grid(torch.zeros(3, 4, 4), nrow=1)
    with pytest.raises(ParameterError, match="nrow must be an integer >= 1. Found: 0"):
        image_grid(torch.zeros(1, 3, 4, 4), nrow=0)


def test_plot_image_grid_draws_the_grid_with_a_label_per_row(tmp_path):
    from xmodal.viz.figure import save_figure

    images = torch.rand(6, 3, 8, 8)
    fig = plot_image_grid(images, 3, ["a red circle", "a blue square"])
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts] == ["a red circle", "a blue square"]
    shown = ax.images[0].get_array()
    want = image_grid(images, 3).permute(1, 2, 0).numpy()
    assert np.allclose(np.asarray(shown), want)
    assert len(plot_image_grid(images, 3).axes[0].texts) == 0  # no labels, no margin text
    path = save_figure(fig, tmp_path / "grid.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_grid_path_is_the_given_png_or_the_label_as_a_stem(tmp_path):
    assert grid_path(tmp_path, None, " a large red star! ") == tmp_path / "a_large_red_star.png"
    assert grid_path(tmp_path, None, "?!") == tmp_path / "caption.png"
    assert grid_path(tmp_path, None, "x" * 80).name == "x" * 60 + ".png"
    assert grid_path(tmp_path, str(tmp_path / "g.PNG"), "a") == tmp_path / "g.PNG"
    with pytest.raises(ParameterError, match="must be a .png file. Found: '.*x.jpg'"):
        grid_path(tmp_path, tmp_path / "x.jpg", "a")
