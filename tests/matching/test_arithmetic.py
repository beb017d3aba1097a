"""Embedding arithmetic and tags: the query vector, the world's success rate and its chance
level, and tag retrieval, on hand-built embeddings whose answers are known."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from xmodal.errors import ParameterError
from xmodal.matching.arithmetic import (
    arithmetic_success,
    embedding_arithmetic,
    tag_metrics,
    world_space_metrics,
)


def test_the_query_is_the_normalised_sum():
    q, a, b = torch.tensor([1.0, 0, 0]), torch.tensor([0.6, 0.8, 0]), torch.tensor([0, 0, 1.0])
    got = embedding_arithmetic(q, [a], [b])
    want = torch.tensor([0.4, -0.8, 1.0])
    assert torch.allclose(got, want / want.norm())
    assert torch.allclose(embedding_arithmetic(2 * q), q)  # no terms: normalised query
    assert torch.allclose(
        embedding_arithmetic(q, [a, a], [b, b]), F.normalize(q - 2 * a + 2 * b, dim=0)
    )


@pytest.mark.parametrize(
    "args, message",
    [
        ((torch.ones(3), [torch.ones(3)], []), "cancels out to the zero vector"),
        ((torch.ones(3), [torch.ones(4)], []), "minus[0] has dimension 4 but the query has 3"),
        ((torch.ones(3), [], [torch.ones(1, 3)]), "plus[0] must be a 1-d float tensor"),
        ((torch.ones(2, 3), [], []), "query must be a 1-d float tensor"),
    ],
)
def test_bad_arithmetic_is_refused(args, message):
    with pytest.raises(ParameterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        embedding_arithmetic(*args)


def _space():
    """A space where an image is the sum of its objects' colour and shape axes (normalised);
    axes red, blue, circle, square, star."""
    axis = dict(zip(["red", "blue", "circle", "square", "star"], torch.eye(5), strict=True))
    objects = [
        [("red", "circle")],
        [("red", "square")],
        [("blue", "star")],
        [("red", "star")],
        [("blue", "square")],
        [("blue", "circle"), ("red", "square")],  # not a query: two objects
    ]
    emb = torch.stack(
        [F.normalize(sum(axis[c] + axis[s] for c, s in objs), dim=0) for objs in objects]
    )
    return emb, axis, objects


SHAPES = ["circle", "square", "star"]


def test_arithmetic_success_finds_the_swapped_shape_in_a_perfect_space():
    emb, axis, objects = _space()
    got = arithmetic_success(emb, axis, objects, SHAPES, k=1)
    # 5 single-object images x 2 other shapes. Here image - s + s' scores 1.21 against a
    # single (c, s') image, 0.85 against the two-object one that holds (c, s'), and at most
    # 0.71 against any other: every wanted pair exists, so every query finds it first.
    assert got["arithmetic_queries"] == 10
    assert got["arithmetic_top1"] == pytest.approx(100.0)


def test_arithmetic_leaves_the_query_image_out_and_counts_misses():
    emb, axis, objects = _space()
    keep = [0, 1, 2, 4, 5]  # no red star: "red circle - circle + star" has no answer
    emb, objects = emb[keep], [objects[i] for i in keep]
    got = arithmetic_success(emb, axis, objects, SHAPES, k=1)
    # (red, star) is wanted by the red circle and the red square and exists nowhere: 6/8.
    assert got["arithmetic_queries"] == 8
    assert got["arithmetic_top1"] == pytest.approx(75.0)
    assert arithmetic_success(emb, axis, objects, SHAPES, k=10)["arithmetic_top10"] == (
        pytest.approx(75.0)
    )
    # A gallery where the query image is the only holder of its pair: never counted found.
    alone = arithmetic_success(emb[:1], axis, objects[:1], SHAPES, k=5)
    assert alone["arithmetic_queries"] == 2 and alone["arithmetic_top5"] == 0.0


@pytest.mark.parametrize("k", [1, 2, 3])
def test_chance_is_that_of_k_random_other_images(k):
    emb, axis, objects = _space()
    got = arithmetic_success(emb, axis, objects, SHAPES, k=k)
    # Enumerate every k-subset of the other images: the share holding the wanted pair.
    total = 0.0
    for i, objs in enumerate(objects):
        if len(objs) != 1:
            continue
        colour, shape = objs[0]
        others = [j for j in range(len(objects)) if j != i]
        for s in SHAPES:
            if s == shape:
                continue
            subsets = list(itertools.combinations(others, k))
            total += sum(any((colour, s) in objects[j] for j in sub) for sub in subsets) / len(
                subsets
            )
    assert got["arithmetic_chance"] == pytest.approx(100.0 * total / got["arithmetic_queries"])


def test_arithmetic_needs_a_vector_per_shape_and_a_row_per_image():
    emb, axis, objects = _space()
    with pytest.raises(ParameterError, match=r"no vector for the shapes \['heart'\]"):
        arithmetic_success(emb, axis, objects, ["circle", "heart"])
    with pytest.raises(ParameterError, match="one row per entry of objects"):
        arithmetic_success(emb[:3], axis, objects, ["circle"])


def test_tag_metrics_on_a_perfect_and_a_reversed_space():
    emb, axis, objects = _space()
    tags = list(axis)
    tag_emb = torch.stack([axis[t] for t in tags])
    truth = [{w for pair in objs for w in pair} for objs in objects]
    # Every image's true words outscore the others (0.71 or 0.5 against 0); every word's
    # two best images have it.
    got = tag_metrics(emb, tag_emb, tags, truth, k=2)
    assert got == {"tag_i2t_rprec": pytest.approx(100.0), "tag_t2i_P@2": pytest.approx(100.0)}
    worst = tag_metrics(emb, -tag_emb, tags, truth, k=2)
    assert worst["tag_i2t_rprec"] < 50.0 and worst["tag_t2i_P@2"] < 50.0
    with pytest.raises(ParameterError, match="one row per tag"):
        tag_metrics(emb, tag_emb[:2], tags, truth)


def test_world_space_metrics_score_the_world_s_objects_with_the_words_the_vocabulary_has():
    from types import SimpleNamespace

    from xmodal.text.vocab import Vocabulary
    from xmodal.world import World
    from xmodal.world.schema import COLOURS, SHAPES

    world, n = World(seed=0), 12
    words = [*COLOURS, *SHAPES]
    axis = dict(zip(words, torch.eye(len(words)), strict=True))
    objects = [
        [(o.colour, o.shape) for o in world.scene("test", i, audio=False).objects] for i in range(n)
    ]
    emb = torch.stack(
        [F.normalize(sum(axis[c] + axis[s] for c, s in objs), dim=0) for objs in objects]
    )
    known = [w for w in words if w not in (words[0], list(SHAPES)[1])]  # two words never seen
    asked = []

    def texts(ws):
        asked.append(list(ws))
        return torch.stack([axis[w] for w in ws])

    embed = SimpleNamespace(vocab=Vocabulary.build([" ".join(known)]), texts=texts)
    got = world_space_metrics(emb, world, "test", embed)
    assert asked == [known]  # one pass over the words the vocabulary holds, in order
    vectors = {w: axis[w] for w in known}
    shapes = [s for s in SHAPES if s in known]
    want = arithmetic_success(emb, vectors, objects, shapes, k=5)
    truth = [{w for pair in objs for w in pair} for objs in objects]
    want.update(tag_metrics(emb, torch.stack([axis[w] for w in known]), known, truth, k=10))
    assert got == want
    # An image whose one object's shape has no word cannot have it taken away: no query.
    singles = sum(len(objs) == 1 and objs[0][1] in shapes for objs in objects)
    assert got["arithmetic_queries"] == singles * (len(shapes) - 1) > 0
    assert any(len(objs) == 1 and objs[0][1] not in shapes for objs in objects)
