"""What a retrieval model found: each query with its top hits, best first.

- :func:`plot_ranked_images`: one row per query, its title over its top images (a text
  query's, or an embedding-arithmetic query's); :func:`plot_text_to_images` draws a
  split's own captions so, each with its top images;
- :func:`plot_query_captions`: an image query beside its top captions;
- :func:`plot_image_to_recipes` / :func:`plot_recipe_to_images`: im2recipe's two
  directions, a recipe drawn as its text (:func:`recipe_text`), their rows made by
  :func:`hit_rows`; :func:`plot_recipe_hits` draws both for a recipe source.

A green frame marks the hit that is the query's own match. Images are ``(3, H, W)``
uint8 or float in [0, 1]. The figures are made without pyplot (no display, no global
state); :func:`xmodal.viz.figure.save_figure` writes them.

Example::

    fig = plot_ranked_images([("'a red circle'", [img0, img1], ["#0 0.81", "#5 0.62"],
                               [True, False])])
    save_figure(fig, "top_images.png")
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import torch
from matplotlib.figure import Figure

__all__ = [
    "hit_rows",
    "plot_image_to_recipes",
    "plot_query_captions",
    "plot_ranked_images",
    "plot_recipe_hits",
    "plot_recipe_to_images",
    "plot_text_to_images",
    "recipe_text",
]

_MARK = "limegreen"


def _pixels(image: torch.Tensor):
    """``(H, W, 3)`` float in [0, 1] of a ``(3, H, W)`` uint8 or float image."""
    image = image.float() / 255 if image.dtype == torch.uint8 else image
    return image.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy()


def _show_image(ax, image: torch.Tensor, label: str | None = None, mark: bool = False) -> None:
    ax.imshow(_pixels(image))
    ax.set_xticks([])
    ax.set_yticks([])
    if label is not None:
        ax.set_xlabel(label, fontsize=7)
    if mark:
        for spine in ax.spines.values():
            spine.set_edgecolor(_MARK)
            spine.set_linewidth(3)


def _show_text(ax, text: str, label: str | None = None, mark: bool = False) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.03, 0.97, text, va="top", ha="left", fontsize=6, transform=ax.transAxes)
    if label is not None:
        ax.set_xlabel(label, fontsize=7)
    for spine in ax.spines.values():
        spine.set_edgecolor(_MARK if mark else "lightgray")
        spine.set_linewidth(3 if mark else 1)


def plot_ranked_images(rows: Sequence[tuple]) -> Figure:
    """One row per query: ``(title, images, labels, marks)``, the title written over the
    row's images, each image with its label (a green frame where ``marks``, a list of
    bools or None, says it is the right one)."""
    cols = max(len(r[1]) for r in rows)
    fig = Figure(figsize=(1.6 * cols, 1.9 * len(rows)))
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for r, (title, images, labels, marks) in enumerate(rows):
        for c in range(cols):
            if c < len(images):
                _show_image(axes[r][c], images[c], labels[c], marks is not None and marks[c])
            else:
                axes[r][c].axis("off")
        # Text, not a title: a long query must not widen the first column.
        axes[r][0].text(0, 1.08, title, transform=axes[r][0].transAxes, fontsize=8)
    fig.subplots_adjust(wspace=0.08, hspace=0.55)
    return fig


def plot_text_to_images(
    queries: Sequence[str],
    images: Sequence[torch.Tensor],
    ranking: Sequence[Sequence[tuple[int, float]]],
    *,
    split: str = "test",
    true_of=None,
) -> Figure:
    """:func:`plot_ranked_images` of captions of ``images``: ``queries[i]`` is one of image
    ``i``'s, ``ranking[i]`` its ranked ``(j, score)`` hits among ``images``; each hit is
    labelled ``#j score``, and image ``i`` itself is framed. With ``true_of`` (a callable
    ``(query index, image index) -> bool``: the query is true of that image, a plausible
    match), the plausible hits are labelled ``true``."""
    mark = (lambda i, j: "") if true_of is None else (lambda i, j: " true" * bool(true_of(i, j)))
    rows = [
        (
            f"{q!r} ({split} image {i})",
            [images[j] for j, _ in hits],
            [f"#{j} {s:.2f}{mark(i, j)}" for j, s in hits],
            [j == i for j, _ in hits],
        )
        for i, (q, hits) in enumerate(zip(queries, ranking, strict=True))
    ]
    return plot_ranked_images(rows)


def plot_query_captions(image: torch.Tensor, hits: Sequence[dict]) -> Figure:
    """An image query beside its top captions: ``hits`` of ``{"caption", "score"}``."""
    fig = Figure(figsize=(7, 2.4))
    ax, tx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 3]})
    ax.imshow(_pixels(image))
    ax.axis("off")
    tx.axis("off")
    lines = [f"{k + 1}. {h['caption']}  ({h['score']:.2f})" for k, h in enumerate(hits)]
    tx.text(0, 1, "\n".join(lines), va="top", fontsize=8, wrap=True)
    return fig


def recipe_text(recipe: dict, *, lines: int = 3, width: int = 34) -> str:
    """A recipe's title, ingredients and first ``lines`` instructions, wrapped to
    ``width`` characters for a figure panel."""
    body = [recipe["title"].upper(), ", ".join(recipe["ingredients"])]
    body += recipe["instructions"][:lines]
    if len(recipe["instructions"]) > lines:
        body.append("...")
    return "\n".join(textwrap.fill(t, width=width, max_lines=3, placeholder=" ...") for t in body)


def _plot_hits(rows, show_query, show_hit, widths: tuple[float, float]) -> Figure:
    """One row per ``(query, hits)``: the query (``show_query(ax, query, "query")``), then
    its hits (``show_hit(ax, *hit)``, a hit being ``(item, label, mark)``). ``widths``: of
    the query's column and of each hit's."""
    cols = 1 + max(len(r[1]) for r in rows)
    ratios = [widths[0]] + [widths[1]] * (cols - 1)
    fig = Figure(figsize=(sum(ratios), 2.3 * len(rows)))
    axes = fig.subplots(len(rows), cols, squeeze=False, gridspec_kw={"width_ratios": ratios})
    for r, (query, hits) in enumerate(rows):
        show_query(axes[r][0], query, "query")
        for c in range(1, cols):
            if c - 1 < len(hits):
                show_hit(axes[r][c], *hits[c - 1])
            else:
                axes[r][c].axis("off")
    fig.subplots_adjust(wspace=0.05, hspace=0.3)
    return fig


def hit_rows(ranking: Sequence[Sequence[tuple[int, float]]], query, hit) -> list[tuple]:
    """The rows of :func:`plot_image_to_recipes` and :func:`plot_recipe_to_images`: query
    ``q`` (0, 1, ...) with its ranked ``(j, score)`` hits ``ranking[q]`` as ``(query(q),
    [(hit(j), "#j score", j == q), ...])``, so the query's own match is framed."""
    return [
        (query(q), [(hit(j), f"#{j} {s:.2f}", j == q) for j, s in hits])
        for q, hits in enumerate(ranking)
    ]


def plot_image_to_recipes(rows: Sequence[tuple]) -> Figure:
    """One row per query image: ``(image, [(recipe text, label, mark), ...])``, the image
    then its top recipes."""
    return _plot_hits(rows, _show_image, _show_text, (1.8, 2.6))


def plot_recipe_to_images(rows: Sequence[tuple]) -> Figure:
    """One row per query recipe: ``(recipe text, [(image, label, mark), ...])``, its text
    then its top images."""
    return _plot_hits(rows, _show_text, _show_image, (2.6, 1.8))


def plot_recipe_hits(source, to_recipes, to_images) -> tuple[Figure, Figure]:
    """:func:`plot_image_to_recipes` and :func:`plot_recipe_to_images` of a recipe source
    (items with an ``image``, ``.recipes`` their text): ``to_recipes[q]`` is image ``q``'s
    ranked ``(j, score)`` recipes, ``to_images[q]`` recipe ``q``'s ranked images."""
    recipes = source.recipes
    image, recipe = lambda i: source[i]["image"], lambda i: recipe_text(recipes[i])
    return (
        plot_image_to_recipes(hit_rows(to_recipes, image, recipe)),
        plot_recipe_to_images(hit_rows(to_images, recipe, image)),
    )
