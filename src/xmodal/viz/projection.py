"""Word vectors in two dimensions: a PCA or t-SNE map of chosen words, analogies as arrows.

:func:`plot_projection` places each word at its 2-D projection and draws one arrow per
analogy pair ``(a, b)`` from ``a`` to ``b``: when the vectors capture a relation, the
arrows of its pairs (``man -> woman``, ``king -> queen``) come out roughly parallel and of
similar length. PCA (a linear map: offsets between words are kept up to the projection,
so parallel arrows are meaningful) is the default; t-SNE (scikit-learn, non-linear) keeps
neighbourhoods rather than offsets.

The vectors are scaled to unit length first, since cosine is what word2vec's
neighbours and analogies use. The figure is made without pyplot, so it needs no
display and touches no global state.

Example::

    wv = WordVectors.load("w2v")
    fig = plot_projection(wv, ["paris", "france", "rome", "italy"],
                          analogies=[("france", "paris"), ("italy", "rome")])
    fig.savefig("capitals.png")
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from xmodal._checks import check_choice, check_positive_int
from xmodal.errors import ParameterError

__all__ = ["plot_projection", "project_words"]

METHODS = ("pca", "tsne")


def _words(words, name: str) -> list[str]:
    if isinstance(words, str) or not isinstance(words, Iterable):
        raise ParameterError(f"{name} must be a list of words. Found: {words!r:.80}")
    words = list(words)
    for i, w in enumerate(words):
        if not isinstance(w, str):
            raise ParameterError(f"{name}[{i}] must be a str. Found: {type(w).__name__} {w!r}")
    return words


def _pairs(analogies) -> list[tuple[str, str]]:
    if isinstance(analogies, str) or not isinstance(analogies, Iterable):
        raise ParameterError(f"analogies must be a list of (a, b) pairs. Found: {analogies!r:.80}")
    pairs = []
    for i, pair in enumerate(analogies):
        if (
            isinstance(pair, str)
            or not isinstance(pair, Sequence)
            or len(pair) != 2
            or not all(isinstance(w, str) for w in pair)
        ):
            raise ParameterError(f"analogies[{i}] must be a pair of words (a, b). Found: {pair!r}")
        pairs.append((pair[0], pair[1]))
    return pairs


def project_words(
    vectors, words: Sequence[str], *, method: str = "pca", seed: int = 0, perplexity=None
) -> np.ndarray:
    """``(len(words), 2)`` coordinates of ``words`` by PCA or t-SNE of their unit vectors.

    ``vectors`` is a :class:`xmodal.text.word2vec.WordVectors`; a word not in it raises
    ParameterError naming every missing word. t-SNE's ``perplexity`` defaults to
    ``min(30, (n - 1) / 3)`` (it must stay below the number of words).
    """
    method = check_choice(method, "method", METHODS)
    words = _words(words, "words")
    if len(words) < 2:
        raise ParameterError(f"a projection needs at least 2 words. Found: {len(words)}")
    missing = [w for w in dict.fromkeys(words) if w not in vectors]
    if missing:
        shown = ", ".join(repr(w) for w in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise ParameterError(f"not in the vocabulary ({len(vectors):,} words): {shown}{more}")
    x = vectors.unit_vectors[[vectors.index(w) for w in words]].astype(np.float64)
    try:
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE
    except ImportError as err:  # pragma: no cover - scikit-learn is a dependency
        raise ImportError("plot_projection needs scikit-learn: pip install scikit-learn") from err
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(x)
    n = len(words)
    if perplexity is None:
        perplexity = min(30.0, max(1.0, (n - 1) / 3))
    if not isinstance(perplexity, (int, float)) or not 0 < perplexity < n:
        raise ParameterError(
            f"perplexity must be a number in (0, {n}) (the number of words). Found: {perplexity!r}"
        )
    # The exact gradient is quick for the few hundred words a figure can show, and unlike
    # Barnes-Hut it runs no OpenMP threads (which crawl on a busy machine).
    tsne = TSNE(n_components=2, perplexity=float(perplexity), init="pca", random_state=seed,
                metric="cosine", method="exact" if n <= 1000 else "barnes_hut")  # fmt: skip
    return tsne.fit_transform(x)


def plot_projection(
    vectors,
    words: Sequence[str] = (),
    *,
    analogies: Iterable[tuple[str, str]] = (),
    method: str = "pca",
    seed: int = 0,
    perplexity=None,
    title: str | None = None,
    figsize: tuple[float, float] = (7.0, 6.0),
) -> Figure:
    """Draw ``words`` (and the words of ``analogies``) on a 2-D map; return the Figure.

    One point and label per distinct word; one arrow ``a -> b`` per analogy pair. Raises
    ParameterError naming any word not in ``vectors``.
    """
    pairs = _pairs(analogies)
    words = _words(words, "words")
    all_words = list(dict.fromkeys([*words, *(w for pair in pairs for w in pair)]))
    xy = project_words(vectors, all_words, method=method, seed=check_positive_int(
        seed, "seed", minimum=0), perplexity=perplexity)  # fmt: skip
    where = {w: xy[i] for i, w in enumerate(all_words)}

    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    in_pairs = {w for pair in pairs for w in pair}
    colors = ["tab:orange" if w in in_pairs else "tab:blue" for w in all_words]
    ax.scatter(xy[:, 0], xy[:, 1], s=24, c=colors, zorder=3)
    for w, (x, y) in zip(all_words, xy, strict=True):
        ax.annotate(w, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=9, zorder=4)
    for a, b in pairs:
        ax.add_patch(
            FancyArrowPatch(where[a], where[b], arrowstyle="-|>", mutation_scale=12,
                            color="tab:red", alpha=0.7, lw=1.2, shrinkA=4, shrinkB=4, zorder=2)
        )  # fmt: skip
    name = "PCA" if method == "pca" else "t-SNE"
    ax.set_title(title if title is not None else f"{name} of {len(all_words)} word vectors")
    ax.set_xlabel(f"{name} 1")
    ax.set_ylabel(f"{name} 2")
    ax.grid(alpha=0.3)
    ax.margins(0.12)
    return fig
