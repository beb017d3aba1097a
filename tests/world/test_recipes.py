"""The recipes domain: text and picture agree, instructions show, classes are learnable."""

from __future__ import annotations

import re

import numpy as np
import pytest

from xmodal.errors import ParameterError
from xmodal.world import recipes as R
from xmodal.world.recipes import (
    DISHES,
    INGREDIENTS,
    INSTRUCTIONS,
    VESSELS,
    Step,
    recipe_sample,
    render_dish,
)

# Every way the text can name an ingredient: "tomato", "tomatoes", ...
_SURFACE = {name: name for name in INGREDIENTS} | {
    info.plural: name for name, info in INGREDIENTS.items() if info.plural
}
_WORD = re.compile(r"[a-z]+")


def mentioned(text: str) -> set[str]:
    return {_SURFACE[w] for w in _WORD.findall(text) if w in _SURFACE}


def sample(seed: int, dish: str | None = None, size: int = 64) -> R.Recipe:
    return recipe_sample(np.random.default_rng(seed), dish=dish, image_size=size)


@pytest.fixture(scope="module")
def corpus():
    """30 training and 20 held-out recipes per class, from disjoint seeds."""
    train = [sample(10_000 + i, d) for d in DISHES for i in range(30)]
    test = [sample(20_000 + i, d) for d in DISHES for i in range(20)]
    return train, test


# --- tables and determinism ----------------------------------------------------------


def test_tables_are_large_enough_and_consistent():
    assert len(DISHES) >= 10 and len(set(DISHES)) == len(DISHES)
    assert len(INGREDIENTS) >= 20
    assert {"chop", "mix", "bake", "boil", "fry", "mash", "slice"} <= set(INSTRUCTIONS)
    assert set(VESSELS) == {"plate", "bowl", "pot", "pan"}
    # No surface form of one ingredient is another's: the text names each unambiguously.
    assert len(_SURFACE) == len(INGREDIENTS) + sum(1 for i in INGREDIENTS.values() if i.plural)


def test_same_generator_state_gives_same_bytes():
    a, b = sample(7), sample(7)
    assert a.image.tobytes() == b.image.tobytes()
    assert (a.title, a.ingredients, a.instructions, a.state) == (
        b.title,
        b.ingredients,
        b.instructions,
        b.state,
    )
    assert sample(8).image.tobytes() != a.image.tobytes()


def test_banks_depend_on_their_key_only():
    before = [sample(i, d).image.tobytes() for i, d in enumerate(DISHES)]
    for cached in (R._layers, R._blobs, R._vessel_bank, R._water, R._cooked):
        cached.cache_clear()
    # Rebuilt in another order (a 96 px sample first): the same pictures.
    sample(0, "pizza", size=96)
    assert [sample(i, d).image.tobytes() for i, d in enumerate(DISHES)] == before


# --- text --------------------------------------------------------------------------------


def test_text_and_ground_truth_agree(corpus):
    for r in corpus[0]:
        listed = set(r.amounts)
        assert r.dish in DISHES and DISHES[r.label] == r.dish
        assert len(r.ingredients) == len(listed)
        for line, ing in zip(r.ingredients, r.amounts, strict=True):
            assert mentioned(line) == {ing}, line
        said = set()
        for sentence, step in zip(r.instructions, r.steps, strict=True):
            # Each sentence names exactly its step's ingredients, all of them listed.
            assert mentioned(sentence) == set(step.ingredients) <= listed, sentence
            assert sentence.split()[0] in (step.action, "finely", "roughly", "thinly", "cut",
                                           "stir"), sentence  # fmt: skip
            said |= mentioned(sentence)
        assert said == listed, (r.ingredients, r.instructions)  # nothing listed goes unused
        assert mentioned(r.title) <= listed, r.title
        for ing, actions in r.state.items():
            expected = [s.action for s in r.steps if ing in s.ingredients]
            assert actions == expected


def test_text_classifier_recovers_the_dish(corpus):
    """Bag-of-words nearest centroid on ingredients + instructions."""
    train, test = corpus
    vocab = {w: i for i, w in enumerate(sorted({w for r in train for w in words(r)}))}

    def bow(r):
        v = np.zeros(len(vocab))
        for w in words(r):
            if w in vocab:
                v[vocab[w]] += 1
        return v / np.linalg.norm(v)

    centroids = np.stack([np.mean([bow(r) for r in train if r.dish == d], 0) for d in DISHES])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    acc = np.mean([np.argmax(centroids @ bow(r)) == r.label for r in test])
    assert acc >= 0.9, acc


def words(r: R.Recipe) -> list[str]:
    return _WORD.findall(" ".join(r.ingredients + r.instructions))


# --- pictures ------------------------------------------------------------------------------


def histogram(image: np.ndarray, bins: int = 8) -> np.ndarray:
    q = (image.astype(np.int64) * bins) // 256
    h = np.bincount(((q[0] * bins + q[1]) * bins + q[2]).ravel(), minlength=bins**3)
    return h / h.sum()


def test_image_classifier_recovers_the_dish(corpus):
    """Nearest centroid (L1) on an 8x8x8 RGB histogram: measured 0.85 for 12 classes."""
    train, test = corpus
    centroids = np.stack(
        [np.mean([histogram(r.image) for r in train if r.dish == d], 0) for d in DISHES]
    )
    guess = [np.argmin(np.abs(centroids - histogram(r.image)).sum(1)) for r in test]
    acc = np.mean([g == r.label for g, r in zip(guess, test, strict=True)])
    assert acc >= 0.6, acc  # chance is 1/12


def draw(amounts, steps, seed=0):
    return render_dish(np.random.default_rng(seed), amounts, steps)


def food(image: np.ndarray) -> np.ndarray:
    """The food area's pixels, (N, 3) float: inside the radius every vessel keeps free."""
    size = image.shape[-1]
    y, x = np.mgrid[0:size, 0:size] + 0.5 - size / 2
    return image[:, np.hypot(x, y) < 0.3 * size].T.astype(np.float64)


def edges(image: np.ndarray) -> float:
    """Share of food-area neighbours whose colours differ by more than 40."""
    img = image.astype(np.int64)
    size = img.shape[-1]
    dx, dy = np.abs(np.diff(img, axis=2)).sum(0), np.abs(np.diff(img, axis=1)).sum(0)
    diff = dx[:-1, :] + dy[:, :-1]  # (size - 1, size - 1)
    y, x = np.mgrid[0 : size - 1, 0 : size - 1] + 1.0 - size / 2
    return float((diff[np.hypot(x, y) < 0.3 * size] > 40).mean())


BATTER = {"flour": 200, "sugar": 150, "egg": 2, "milk": 200}
MIX = Step("mix", tuple(BATTER))


@pytest.mark.parametrize("seed", range(5))
def test_baking_browns_and_darkens(seed):
    raw, _, v0 = draw(BATTER, [MIX], seed)
    baked, state, v1 = draw(BATTER, [MIX, Step("bake", tuple(BATTER))], seed)
    assert v0 == v1 == "plate" and state["egg"] == ["mix", "bake"]
    r, b = food(raw), food(baked)
    assert b.mean() < r.mean() - 40  # darker
    # browner: blue falls further behind red (a ratio, so darkening alone cannot pass)
    assert (b[:, 2] / b[:, 0]).mean() < (r[:, 2] / r[:, 0]).mean() - 0.1


@pytest.mark.parametrize("seed", range(5))
def test_chopping_makes_many_pieces(seed):
    veg = {"potato": 2, "carrot": 2, "tomato": 2}
    whole, _, _ = draw(veg, [Step("boil", tuple(veg))], seed)
    steps = [Step("chop", (i,)) for i in veg] + [Step("boil", tuple(veg))]
    chopped, state, _ = draw(veg, steps, seed)
    assert state["potato"] == ["chop", "boil"]
    assert edges(chopped) > 1.5 * edges(whole)


@pytest.mark.parametrize("seed", range(5))
def test_mashing_makes_one_smooth_blob(seed):
    veg = {"potato": 3, "butter": 100}
    chopped, _, _ = draw(veg, [Step("chop", ("potato",)), Step("chop", ("butter",))], seed)
    mashed, _, _ = draw(veg, [Step("chop", ("potato",)), Step("mash", tuple(veg))], seed)
    assert edges(mashed) < 0.5 * edges(chopped)


@pytest.mark.parametrize("seed", range(5))
def test_mixing_averages_colours(seed):
    """Unmixed: red, white and yellow apart; mixed: one base of their mean colour."""
    items = {"egg": 2, "milk": 200, "tomato": 2}
    apart, _, _ = draw(items, [Step("mash", ("tomato",))], seed)
    mixed, _, _ = draw(items, [Step("mash", ("tomato",)), Step("mix", tuple(items))], seed)
    mean = np.mean([R._cooked(i, (), inner=True) for i in items], axis=0)

    def near_mean(img):
        return (np.abs(food(img) - mean).max(1) < 40).mean()

    assert near_mean(mixed) > 0.5 and near_mean(apart) < 0.1


@pytest.mark.parametrize("seed", range(5))
def test_boiling_puts_the_dish_in_a_pot_of_water(seed):
    veg = {"carrot": 2, "potato": 1}
    steps = [Step("chop", ("carrot",)), Step("chop", ("potato",))]
    raw, _, v0 = draw(veg, steps, seed)
    boiled, _, v1 = draw(veg, steps + [Step("boil", tuple(veg))], seed)
    assert (v0, v1) == ("plate", "pot")

    def watery(img):
        f = food(img)
        return ((f[:, 2] > f[:, 0] + 30) & (f[:, 2] > 120)).mean()

    assert watery(boiled) > 0.3 and watery(raw) == 0
    # The food itself is paler: its reddest pixels are less saturated.
    sat = lambda img: np.percentile(food(img).max(1) - food(img).min(1), 90)  # noqa: E731
    assert sat(boiled) < sat(raw)


@pytest.mark.parametrize("seed", range(5))
def test_frying_goes_golden_in_a_pan(seed):
    items = {"fish": 2}
    raw, _, v0 = draw(items, [Step("slice", ("fish",))], seed)
    fried, _, v1 = draw(items, [Step("slice", ("fish",)), Step("fry", ("fish",))], seed)
    assert (v0, v1) == ("plate", "pan")
    # Golden: the fish's pixels (neither plate white nor pan grey) turn yellow-brown.
    f = food(fried)
    gold = (f[:, 0] > f[:, 2] + 60) & (f[:, 1] > f[:, 2] + 20)
    r = food(raw)
    assert gold.mean() > 0.02 and ((r[:, 0] > r[:, 2] + 60) & (r[:, 1] > r[:, 2] + 20)).sum() == 0


def test_serving_overrides_the_vessel_and_the_table_varies():
    steps = [Step("boil", ("potato",)), Step("serve", (), "bowl")]
    image, _, vessel = draw({"potato": 2}, steps)
    assert vessel == "bowl" and image.shape == (3, 64, 64) and image.dtype == np.uint8
    corners = {draw({"potato": 2}, steps, s)[0][:, 0, 0].tobytes() for s in range(40)}
    assert len(corners) >= 4


def test_dish_choice_and_sizes():
    assert sample(3, "cake").dish == "cake"
    assert sample(3, None).dish in DISHES
    assert sample(4, "soup", size=32).image.shape == (3, 32, 32)
    assert sample(4, "soup", size=100).image.shape == (3, 100, 100)


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"dish": "lasagne"}, "'lasagne'"),
        ({"image_size": 31}, "31"),
        ({"image_size": 64.0}, "64.0"),
        ({"image_size": True}, "True"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, needle):
    with pytest.raises(ParameterError, match=re.escape(needle)):
        recipe_sample(np.random.default_rng(0), **kwargs)


def test_bad_rng_and_steps_name_the_value():
    with pytest.raises(ParameterError, match="42"):
        recipe_sample(42)
    rng = np.random.default_rng(0)
    with pytest.raises(ParameterError, match="'truffle'"):
        render_dish(rng, {"truffle": 1}, [])
    with pytest.raises(ParameterError, match="'onion'"):
        render_dish(rng, {"potato": 1}, [Step("chop", ("onion",))])
    with pytest.raises(ParameterError, match="'flambe'"):
        render_dish(rng, {"potato": 1}, [Step("flambe", ("potato",))])
    with pytest.raises(ParameterError, match="'tray'"):
        render_dish(rng, {"potato": 1}, [Step("serve", (), "tray")])
    with pytest.raises(ParameterError, match="0"):
        render_dish(rng, {"potato": 0}, [])
