"""The per-word attention figure: one panel per word, titled with it, showing the map the
grounding metric scores over the image; bad shapes refused; the figure saves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from xmodal.errors import ParameterError
from xmodal.viz import plot_caption_attention, upsample_attention
from xmodal.world import World

WORDS = ["a", "red", "circle", "left", "of", "a", "blue", "square"]


@pytest.fixture(scope="module")
def scene():
    return World(seed=0).scene("test", 0, audio=False, questions=False)


def _alphas(n: int, seed: int = 0) -> torch.Tensor:
    a = torch.rand(n, 8, 8, generator=torch.Generator().manual_seed(seed))
    return a / a.sum((1, 2), keepdim=True)


def _image_axes(fig: Figure):
    return [ax for ax in fig.axes if ax.images]


def test_one_panel_per_word_after_the_captioned_image(scene):
    alphas = _alphas(len(WORDS) + 1)  # one step more (<end>): not drawn
    fig = plot_caption_attention(scene.image, WORDS, alphas, ncols=4, title="sample 0")
    axes = _image_axes(fig)
    assert len(axes) == len(WORDS) + 1 == len(fig.axes)
    assert axes[0].get_title() == " ".join(WORDS)
    assert [ax.get_title() for ax in axes[1:]] == WORDS
    assert fig.get_suptitle() == "sample 0"
    # The first panel is the image itself; every word panel overlays its upsampled map.
    shown = np.asarray(axes[0].images[0].get_array())
    np.testing.assert_allclose(shown, scene.image.permute(1, 2, 0).numpy() / 255.0, atol=1e-6)
    maps = upsample_attention(alphas, (64, 64)).numpy()
    for t, ax in enumerate(axes[1:]):
        base, overlay = ax.images
        np.testing.assert_allclose(np.asarray(overlay.get_array()), maps[t], rtol=1e-6)
        assert overlay.get_alpha() == pytest.approx(0.6)
        assert overlay.get_clim() == pytest.approx((0.0, maps[t].max()))


def test_upsampling_is_bilinear_with_cell_centres_and_keeps_the_peak_cell():
    alphas = torch.zeros(1, 4, 4)
    alphas[0, 1, 2] = 1.0
    up = upsample_attention(alphas, (16, 16))[0]
    y, x = divmod(int(up.argmax()), 16)
    assert 4 <= y < 8 and 8 <= x < 12  # inside cell (1, 2)'s footprint
    same = upsample_attention(torch.rand(3, 5, 7), (5, 7))
    assert same.shape == (3, 5, 7)  # same size: identity
    x = torch.rand(2, 5, 7)
    assert torch.allclose(upsample_attention(x, (5, 7)), x)


def test_float_and_numpy_inputs_and_the_figure_saves(scene, tmp_path):
    image = scene.image.float().numpy() / 255.0
    fig = plot_caption_attention(image, WORDS[:3], _alphas(3).numpy())
    assert len(_image_axes(fig)) == 4
    fig.savefig(tmp_path / "attention.png", dpi=50)
    with Image.open(tmp_path / "attention.png") as png:
        assert png.format == "PNG" and png.size[0] > png.size[1] > 0


def test_bad_shapes_and_values_are_refused(scene):
    alphas = _alphas(len(WORDS))
    with pytest.raises(ParameterError, match=r"alphas must have shape \(T, h, w\) with T >= 8"):
        plot_caption_attention(scene.image, WORDS, alphas[:5])
    with pytest.raises(ParameterError, match=r"alphas must have shape \(T, h, w\)"):
        plot_caption_attention(scene.image, WORDS, alphas.flatten(1))
    with pytest.raises(ParameterError, match=r"image must have shape \(3, H, W\)"):
        plot_caption_attention(scene.image.permute(1, 2, 0), WORDS, alphas)
    with pytest.raises(ParameterError, match=r"must lie in \[0, 1\]"):
        plot_caption_attention(scene.image.float(), WORDS, alphas)
    with pytest.raises(ParameterError, match="words must be a list of words"):
        plot_caption_attention(scene.image, "a red circle", alphas)
    with pytest.raises(ParameterError, match="non-finite"):
        plot_caption_attention(scene.image, WORDS, alphas * float("inf"))
    with pytest.raises(ParameterError, match="ncols must be an integer"):
        plot_caption_attention(scene.image, WORDS, alphas, ncols=0)
