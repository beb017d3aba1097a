"""Retrieval figures: one row per query with its hits in order, their labels, the right
hit framed in green, a recipe drawn as its wrapped text; the figures save as PNGs."""

from __future__ import annotations

import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from xmodal.viz.figure import save_figure
from xmodal.viz.retrieval import (
    hit_rows,
    plot_image_to_recipes,
    plot_query_captions,
    plot_ranked_images,
    plot_recipe_hits,
    plot_recipe_to_images,
    plot_text_to_images,
    recipe_text,
)

GREEN = to_rgba("limegreen")
RECIPE = {
    "title": "Tomato soup",
    "ingredients": ["2 tomatoes", "1 onion"],
    "instructions": ["chop the onion.", "boil the tomatoes.", "mix.", "serve hot."],
}


def _images(n: int) -> list[torch.Tensor]:
    return [torch.full((3, 8, 8), k / n) for k in range(n)]


def _framed(ax) -> bool:
    return all(s.get_edgecolor() == GREEN and s.get_linewidth() == 3 for s in ax.spines.values())


def test_ranked_images_one_row_per_query_labels_and_marks():
    rows = [("'a red circle'", _images(3), ["#0 0.9", "#4 0.5", "#2 0.1"], [False, True, False]),
            ("'a star'", _images(2), ["#1 0.8", "#3 0.2"], None)]  # fmt: skip
    fig = plot_ranked_images(rows)
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 6  # 2 rows of the widest row's 3 columns
    grid = [axes[0:3], axes[3:6]]
    assert [ax.get_xlabel() for ax in grid[0]] == rows[0][2]
    assert [_framed(ax) for ax in grid[0]] == [False, True, False]
    assert not grid[1][2].axison and not grid[1][2].images  # the short row's empty slot
    assert [t.get_text() for t in grid[0][0].texts] == ["'a red circle'"]
    assert [t.get_text() for t in grid[1][0].texts] == ["'a star'"]
    assert torch.allclose(torch.from_numpy(grid[0][1].images[0].get_array().data).float(),
                          torch.full((8, 8, 3), 1 / 3))  # fmt: skip


def test_a_uint8_image_is_drawn_as_its_float_colours():
    image = torch.full((3, 4, 4), 255, dtype=torch.uint8)
    fig = plot_ranked_images([("q", [image], ["x"], None)])
    assert fig.axes[0].images[0].get_array().max() == 1.0


def test_query_captions_lists_the_hits_in_order(tmp_path):
    hits = [{"caption": "a red circle", "score": 0.91}, {"caption": "a blue star", "score": 0.5}]
    fig = plot_query_captions(_images(1)[0], hits)
    (text,) = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert text == "1. a red circle  (0.91)\n2. a blue star  (0.50)"
    path = save_figure(fig, tmp_path / "q.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recipe_text_wraps_and_elides_the_instructions_after_three():
    text = recipe_text(RECIPE, width=20)
    lines = text.split("\n")
    assert lines[0] == "TOMATO SOUP" and lines[1] == "2 tomatoes, 1 onion"
    assert lines[2:] == ["chop the onion.", "boil the tomatoes.", "mix.", "..."]
    assert all(len(line) <= 20 for line in lines)
    assert recipe_text(RECIPE, lines=4).split("\n")[-1] == "serve hot."


def test_image_to_recipes_and_back_put_the_query_first_and_frame_the_match():
    text = recipe_text(RECIPE)
    fig = plot_image_to_recipes(
        [(_images(1)[0], [(text, "#0 0.9", True), (text, "#1 0.2", False)])]
    )
    query, first, second = fig.axes
    assert query.images and query.get_xlabel() == "query"
    assert [t.get_text() for t in first.texts] == [text] and first.get_xlabel() == "#0 0.9"
    assert _framed(first) and not _framed(second)
    fig = plot_recipe_to_images([(text, [(im, f"#{k}", k == 1) for k, im in enumerate(_images(2))]),
                                 (text, [(_images(1)[0], "#5", False)])])  # fmt: skip
    axes = fig.axes
    assert len(axes) == 6 and [t.get_text() for t in axes[0].texts] == [text]
    assert [_framed(ax) for ax in axes[1:3]] == [False, True]
    assert not axes[5].axison  # the second query has one hit


def test_text_to_images_titles_each_caption_with_its_image_and_frames_it():
    images = _images(3)
    ranking = [[(1, 0.9), (0, 0.5)], [(1, 0.8), (2, 0.1)]]
    fig = plot_text_to_images(["a red circle", "a star"], images, ranking)
    axes = fig.axes
    assert len(axes) == 4
    assert axes[0].texts[0].get_text() == "'a red circle' (test image 0)"
    assert [ax.get_xlabel() for ax in axes] == ["#1 0.90", "#0 0.50", "#1 0.80", "#2 0.10"]
    assert [_framed(ax) for ax in axes] == [False, True, True, False]
    assert (axes[0].images[0].get_array() == images[1].permute(1, 2, 0).numpy()).all()
    # The plausible matches (the query is true of them) are labelled "true".
    fig = plot_text_to_images(["a red circle", "a star"], images, ranking,
                              true_of=lambda i, j: (i, j) in {(0, 1), (0, 0)})  # fmt: skip
    assert [ax.get_xlabel() for ax in fig.axes] == ["#1 0.90 true", "#0 0.50 true", "#1 0.80",
                                                    "#2 0.10"]  # fmt: skip


def test_hit_rows_label_each_hit_and_mark_the_query_s_own():
    rows = hit_rows([[(2, 0.5), (0, 0.25)], [(1, 1.0)]], lambda q: f"q{q}", lambda j: f"h{j}")
    assert rows == [
        ("q0", [("h2", "#2 0.50", False), ("h0", "#0 0.25", True)]),
        ("q1", [("h1", "#1 1.00", True)]),
    ]


def test_recipe_hits_draw_both_directions_of_a_recipe_source():
    class Source:
        recipes = [dict(RECIPE, title=f"soup {k}") for k in range(2)]

        def __getitem__(self, i):
            return {"image": _images(2)[i]}

    to_recipes, to_images = plot_recipe_hits(Source(), [[(1, 0.9), (0, 0.2)]], [[(0, 0.7)]])
    query, first, second = to_recipes.axes
    assert query.images and first.texts[0].get_text().startswith("SOUP 1")
    assert [first.get_xlabel(), _framed(first), _framed(second)] == ["#1 0.90", False, True]
    query, hit = to_images.axes
    assert query.texts[0].get_text().startswith("SOUP 0") and hit.images and _framed(hit)
