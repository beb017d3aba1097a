"""The 2-D word map: one point and label per word, one arrow per analogy pair, PCA keeps
offsets (parallel pairs give parallel arrows), t-SNE runs; unknown words are named."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from xmodal.errors import ParameterError
from xmodal.text.word2vec import WordVectors
from xmodal.viz.projection import plot_projection, project_words


@pytest.fixture(scope="module")
def vectors():
    """Countries and capitals as unit vectors in 12-D with capital - country the same
    offset ``d`` for every pair (country = -d/2 + u, capital = d/2 + u, u orthogonal to d)."""
    rng = np.random.default_rng(0)
    countries = ["france", "italy", "spain", "japan", "egypt"]
    capitals = ["paris", "rome", "madrid", "tokyo", "cairo"]
    d = np.zeros(12)
    d[0] = 0.8
    u = rng.standard_normal((5, 12))
    u[:, 0] = 0
    u *= np.sqrt(1 - 0.4**2) / np.linalg.norm(u, axis=1, keepdims=True)
    other = rng.standard_normal((6, 12))
    words = countries + capitals + [f"w{i}" for i in range(6)]
    x = np.vstack([u - d / 2, u + d / 2, other / np.linalg.norm(other, axis=1, keepdims=True)])
    return WordVectors(words, x)


def _arrows(fig: Figure):
    return [p for p in fig.axes[0].patches if isinstance(p, FancyArrowPatch)]


def test_one_point_per_word_and_one_arrow_per_pair(vectors):
    pairs = [("france", "paris"), ("italy", "rome"), ("spain", "madrid")]
    fig = plot_projection(vectors, ["japan", "tokyo", "france", "w0"], analogies=pairs)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    points = ax.collections[0].get_offsets()
    words = ["japan", "tokyo", "france", "w0", "paris", "italy", "rome", "spain", "madrid"]
    assert len(points) == len(words)  # "france" once, though listed and in a pair
    assert [t.get_text() for t in ax.texts] == words
    arrows = _arrows(fig)
    assert len(arrows) == len(pairs)
    # Each arrow runs from the point of its first word to the point of its second.
    where = dict(zip(words, np.asarray(points), strict=True))
    for arrow, (a, b) in zip(arrows, pairs, strict=True):
        (x0, y0), (x1, y1) = arrow._posA_posB
        np.testing.assert_allclose([x0, y0, x1, y1], [*where[a], *where[b]])
    fig.savefig(__import__("io").BytesIO(), format="png", dpi=30)


def test_pca_keeps_a_shared_offset_parallel(vectors):
    words = ["france", "paris", "italy", "rome", "spain", "madrid", "japan", "tokyo"]
    xy = project_words(vectors, words, method="pca")
    assert xy.shape == (8, 2)
    arrows = xy[1::2] - xy[0::2]
    # PCA is linear: equal offsets stay equal arrows (the same direction and length).
    np.testing.assert_allclose(arrows, np.broadcast_to(arrows[0], arrows.shape), atol=1e-6)
    assert np.linalg.norm(arrows[0]) > 0.1


def test_tsne_runs_and_is_seeded(vectors):
    words = list(vectors.words)
    fig = plot_projection(vectors, words, analogies=[("egypt", "cairo")], method="tsne")
    assert len(fig.axes[0].collections[0].get_offsets()) == len(words)
    assert len(_arrows(fig)) == 1
    assert "t-SNE" in fig.axes[0].get_title()
    a = project_words(vectors, words, method="tsne", seed=1)
    b = project_words(vectors, words, method="tsne", seed=1)
    np.testing.assert_allclose(a, b)


def test_bad_input(vectors):
    with pytest.raises(ParameterError, match=r"not in the vocabulary \(16 words\): 'atlantis'"):
        plot_projection(vectors, ["france", "atlantis"])
    with pytest.raises(ParameterError, match="'narnia'"):
        plot_projection(vectors, ["france"], analogies=[("paris", "narnia")])
    with pytest.raises(ParameterError, match="method must be one of 'pca', 'tsne'"):
        plot_projection(vectors, ["france", "paris"], method="umap")
    with pytest.raises(ParameterError, match="at least 2 words"):
        plot_projection(vectors, ["france"])
    with pytest.raises(ParameterError, match=r"analogies\[0\] must be a pair"):
        plot_projection(vectors, ["france", "paris"], analogies=[("france",)])
    with pytest.raises(ParameterError, match="perplexity must be"):
        plot_projection(vectors, ["france", "paris", "rome"], method="tsne", perplexity=5)
