"""The recipes domain: dishes of ingredients changed by ordered instructions.

A recipe is a dish class (salad, soup, pizza, ...), a list of ingredients with
quantities, a list of instruction sentences, and a picture of the finished dish. The
picture is drawn *from the instructions*: every ingredient has a look (colours and a
piece shape) and every instruction changes it visibly, so a model that matches text to
image has to read the steps, not just the ingredient names:

- chop: the ingredient becomes many small chunks of its inner colour;
- slice: thin strips;
- mash: one smooth blob (several mashed together: one blob of their mean colour);
- mix: the mixed ingredients' mean colour as a textured base; pieces stay on top of it;
- boil: paler colours, and the dish ends up in a pot of water;
- fry: golden-brown with oil glints, in a pan;
- bake: browner, with darker rims;
- serve: on a plate, in a bowl, pot or pan.

The vessel is the last ``serve``'s, else the last cooking step's (boil: pot, fry: pan,
bake: plate), else a plate. ``Recipe.state`` gives, per ingredient, the actions applied
to it in order: the ground truth of what the picture shows.

Speed: a recipe costs ~150 us at 64 px. Table-and-vessel pictures, ingredient layers
(per ingredient, form, cooking and amount) and blob textures are drawn once into small
banks seeded from their key alone; a sample picks variants and mirror images from its
own generator and composes a handful of masked copies.

Example:
    >>> r = recipe_sample(np.random.default_rng(0), dish="pizza")
    >>> r.dish, r.image.shape
    ('pizza', (3, 64, 64))
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from xmodal._checks import check_positive_int
from xmodal.errors import ParameterError

__all__ = [
    "DISHES",
    "INGREDIENTS",
    "INSTRUCTIONS",
    "MIN_IMAGE_SIZE",
    "VESSELS",
    "Ingredient",
    "Recipe",
    "Step",
    "ingredient_line",
    "recipe_sample",
    "render_dish",
]

# Below 32 px a chopped piece is under a pixel and the instructions stop being visible.
MIN_IMAGE_SIZE = 32

# ------------------------------------------------------------------------------ tables


class Ingredient(NamedTuple):
    """How an ingredient looks and is measured.

    kind: the piece shape when whole: "round", "long", "slab", "leaf", "grain", "strand",
        "powder", "liquid" or "egg".
    skin, inner: RGB of its outside and of its cut face (chopped and sliced pieces show
        the inner colour with a rim of the skin's).
    measure: "count" (2 tomatoes), "g", "ml", "slices" (of bread), "head" (of lettuce) or
        "fillets" (of fish).
    plural: the plural of a counted name.
    """

    kind: str
    skin: tuple[int, int, int]
    inner: tuple[int, int, int]
    measure: str = "count"
    plural: str = ""


INGREDIENTS: dict[str, Ingredient] = {
    "tomato": Ingredient("round", (205, 35, 30), (225, 75, 55), "count", "tomatoes"),
    "onion": Ingredient("round", (185, 130, 70), (238, 226, 215), "count", "onions"),
    "potato": Ingredient("round", (160, 115, 65), (236, 214, 150), "count", "potatoes"),
    "carrot": Ingredient("long", (240, 115, 25), (250, 150, 50), "count", "carrots"),
    "egg": Ingredient("egg", (232, 215, 185), (250, 195, 35), "count", "eggs"),
    "flour": Ingredient("powder", (244, 238, 226), (244, 238, 226), "g"),
    "rice": Ingredient("grain", (250, 250, 246), (250, 250, 246), "g"),
    "pasta": Ingredient("strand", (238, 212, 130), (238, 212, 130), "g"),
    "cheese": Ingredient("slab", (245, 195, 50), (250, 215, 90), "g"),
    "chicken": Ingredient("slab", (232, 165, 145), (240, 190, 170), "g"),
    "fish": Ingredient("slab", (205, 205, 215), (242, 228, 220), "fillets"),
    "mushroom": Ingredient("round", (165, 125, 90), (232, 216, 190), "count", "mushrooms"),
    "pepper": Ingredient("round", (35, 145, 45), (120, 200, 90), "count", "peppers"),
    "lettuce": Ingredient("leaf", (80, 170, 50), (150, 210, 100), "head"),
    "apple": Ingredient("round", (200, 30, 40), (245, 235, 190), "count", "apples"),
    "banana": Ingredient("long", (245, 215, 55), (250, 240, 200), "count", "bananas"),
    "lemon": Ingredient("round", (250, 228, 45), (250, 245, 140), "count", "lemons"),
    "bread": Ingredient("slab", (185, 125, 55), (240, 220, 170), "slices"),
    "butter": Ingredient("slab", (250, 232, 140), (252, 238, 160), "g"),
    "milk": Ingredient("liquid", (250, 250, 250), (250, 250, 250), "ml"),
    "beans": Ingredient("grain", (125, 50, 35), (155, 80, 55), "g"),
    "corn": Ingredient("grain", (250, 205, 35), (252, 220, 80), "g"),
    "cucumber": Ingredient("long", (35, 105, 40), (190, 225, 150), "count", "cucumbers"),
    "orange": Ingredient("round", (250, 135, 15), (250, 165, 50), "count", "oranges"),
    "strawberry": Ingredient("round", (220, 30, 50), (240, 110, 120), "count", "strawberries"),
    "sugar": Ingredient("powder", (252, 252, 252), (252, 252, 252), "g"),
}

# action -> what it does to the picture (see the module docstring).
INSTRUCTIONS: dict[str, str] = {
    "chop": "many small chunks of the inner colour",
    "slice": "thin strips",
    "mash": "one smooth blob of the mashed ingredients' mean colour",
    "mix": "a textured base of the mixed ingredients' mean colour, pieces on top",
    "boil": "paler colours; in a pot of water",
    "fry": "golden-brown with oil glints; in a pan",
    "bake": "browner with darker rims; on a plate",
    "serve": "in the named vessel",
}
_COOKS = ("boil", "fry", "bake")
_COOK_VESSEL = {"boil": "pot", "fry": "pan", "bake": "plate"}

VESSELS: tuple[str, ...] = ("plate", "bowl", "pot", "pan")
_SERVE_TEXT = {
    "plate": "serve on a plate.",
    "bowl": "serve in a bowl.",
    "pot": "serve in the pot.",
    "pan": "serve in the pan.",
}

DISHES: tuple[str, ...] = (
    "salad",
    "soup",
    "omelette",
    "pasta dish",
    "pizza",
    "stew",
    "fried rice",
    "cake",
    "mashed potatoes",
    "sandwich",
    "fruit salad",
    "fish and chips",
)

# Ingredients a mix dissolves into its base (the rest stay visible pieces on top):
# powders, liquids, eggs and butter, which melts.
_ABSORBED_KINDS = frozenset({"powder", "liquid", "egg"})
_MELTS = frozenset({"butter"})


class Step(NamedTuple):
    """One instruction: ``action`` from INSTRUCTIONS applied to ``ingredients``.

    ``serve`` names its vessel instead: ``Step("serve", (), "bowl")``.
    """

    action: str
    ingredients: tuple[str, ...] = ()
    vessel: str | None = None


@dataclass
class Recipe:
    """A recipe with its picture and ground truth.

    Attributes:
        dish: the class name, from DISHES; ``label`` its index.
        title: a varied name for it ("spicy tomato soup").
        ingredients: one line per ingredient ("2 tomatoes", "200 g flour").
        instructions: one sentence per step ("chop the onion.").
        image: ``(3, H, W)`` uint8 RGB of the finished dish.
        state: ingredient -> the actions applied to it, in order (``serve`` excluded).
        vessel: what it is served in, from VESSELS.
        amounts: ingredient -> its quantity in its measure (count, g, ml, ...).
        steps: the instructions as :class:`Step` records.
    """

    dish: str
    label: int
    title: str
    ingredients: list[str]
    instructions: list[str]
    image: np.ndarray
    state: dict[str, list[str]]
    vessel: str
    amounts: dict[str, int] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)


# ------------------------------------------------------------------------------ text


def _name(ing: str, amount: int) -> str:
    """How an instruction refers to an ingredient: "the tomatoes", "the flour"."""
    info = INGREDIENTS[ing]
    return info.plural if info.measure == "count" and amount > 1 else ing


def ingredient_line(ing: str, amount: int) -> str:
    """``"2 tomatoes"``, ``"200 g flour"``, ``"3 slices of bread"``."""
    measure = INGREDIENTS[ing].measure
    if measure == "count":
        return f"{amount} {_name(ing, amount)}"
    if measure in ("g", "ml"):
        return f"{amount} {measure} {ing}"
    if measure == "slices":
        return f"{amount} slice{'s' if amount > 1 else ''} of {ing}"
    if measure == "head":
        return f"{amount} head{'s' if amount > 1 else ''} of {ing}"
    return f"{amount} {ing} fillet{'s' if amount > 1 else ''}"  # fillets


def _join(names: list[str]) -> str:
    names = [f"the {n}" for n in names]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


# action -> sentence templates; {x}: all its ingredients, {a} the first, {b} the rest.
_TEMPLATES_ONE = {
    "chop": ("chop {x}.", "finely chop {x}.", "roughly chop {x}."),
    "slice": ("slice {x}.", "thinly slice {x}.", "cut {x} into thin slices."),
    "mash": ("mash {x}.", "mash {x} until smooth."),
    "mix": ("mix {x} well.", "mix {x} in a bowl."),
    "boil": ("boil {x}.", "boil {x} for {n} minutes.", "boil {x} until soft."),
    "fry": ("fry {x} until golden.", "fry {x} in hot oil.", "fry {x} for {n} minutes."),
    "bake": ("bake {x} for {n} minutes.", "bake {x} until brown."),
}
_TEMPLATES_MANY = {
    "chop": ("chop {x}.", "finely chop {x}."),
    "slice": ("slice {x}.", "thinly slice {x}."),
    "mash": ("mash {a} with {b}.", "mash {x} together until smooth."),
    "mix": ("mix {a} with {b}.", "mix {x} together.", "stir {x} together in a bowl."),
    "boil": ("boil {a} with {b}.", "boil {x} for {n} minutes.", "boil {a} with {b} until soft."),
    "fry": ("fry {a} with {b}.", "fry {x} until golden.", "fry {x} in hot oil."),
    "bake": ("bake {x} for {n} minutes.", "bake {a} with {b} until brown."),
}


class _Draws:
    """Uniforms from one vector drawn up front: a scalar rng call costs as much as 32."""

    __slots__ = ("rng", "u", "i")

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.u = rng.random(64).tolist()
        self.i = 0

    def next(self) -> float:
        if self.i == len(self.u):
            self.u = self.rng.random(64).tolist()
            self.i = 0
        self.i += 1
        return self.u[self.i - 1]

    def pick(self, seq):
        return seq[int(self.next() * len(seq))]

    def chance(self, p: float) -> bool:
        return self.next() < p

    def int(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi]."""
        return lo + int(self.next() * (hi - lo + 1))

    def some(self, pool, lo: int, hi: int) -> list:
        """lo..hi distinct items of ``pool``, in a random order."""
        rest = list(pool)
        out = []
        for _ in range(self.int(lo, hi)):
            out.append(rest.pop(int(self.next() * len(rest))))
        return out


def _sentence(d: _Draws, step: Step, amounts: dict[str, int]) -> str:
    if step.action == "serve":
        return _SERVE_TEXT[step.vessel]
    names = [_name(i, amounts[i]) for i in step.ingredients]
    table = _TEMPLATES_ONE if len(names) == 1 else _TEMPLATES_MANY
    template = d.pick(table[step.action])
    return template.format(
        x=_join(names), a=_join(names[:1]), b=_join(names[1:]), n=d.pick((5, 10, 15, 20, 30))
    )


# ------------------------------------------------------------------------------ dishes
#
# One function per dish: characteristic ingredients, optional ones, amounts, and the
# steps in one of several orders. Each returns (amounts, steps, title words).

_GRAMS = (100, 150, 200, 250, 300)


def _amount(d: _Draws, ing: str, lo: int = 1, hi: int = 3) -> int:
    measure = INGREDIENTS[ing].measure
    if measure == "g":
        return d.pick(_GRAMS)
    if measure == "ml":
        return d.pick((100, 150, 200, 250))
    return d.int(lo, hi)


def _cut(d: _Draws, ing: str, p_slice: float = 0.5) -> Step:
    return Step("slice" if d.chance(p_slice) else "chop", (ing,))


def _salad(d: _Draws):
    extras = d.some(("tomato", "cucumber", "onion", "pepper", "cheese", "corn"), 2, 3)
    amounts = {"lettuce": 1} | {i: _amount(d, i, 1, 2) for i in extras}
    steps = [_cut(d, i, 0.6) for i in ["lettuce", *extras] if i != "corn"]
    if "corn" in extras:
        steps.append(Step("boil", ("corn",)))
    d_order = steps[:]
    steps = [d_order.pop(int(d.next() * len(d_order))) for _ in range(len(steps))]
    steps.append(Step("serve", (), "bowl"))
    main = d.pick([i for i in extras if i != "corn"] or ["green"])
    return amounts, steps, f"{d.pick(('fresh', 'summer', 'crunchy', 'simple'))} {main} salad"


def _soup(d: _Draws):
    veg = d.some(("tomato", "carrot", "onion", "potato", "mushroom"), 2, 3)
    extras = d.some(("beans", "milk"), 0, 1)
    amounts = {i: _amount(d, i, 1, 3) for i in veg + extras}
    steps = [Step("mash" if i == "tomato" and d.chance(0.3) else "chop", (i,)) for i in veg]
    steps.append(Step("boil", tuple(veg + extras)))
    if d.chance(0.3):
        steps.append(Step("serve", (), "pot"))
    adj = "creamy" if "milk" in extras else d.pick(("hearty", "spicy", "winter", "homemade"))
    return amounts, steps, f"{adj} {veg[0]} soup"


def _omelette(d: _Draws):
    fill = d.some(("cheese", "mushroom", "onion", "pepper", "tomato"), 0, 2)
    milk = ["milk"] if d.chance(0.5) else []
    amounts = {"egg": d.int(2, 4)} | {i: _amount(d, i, 1, 1) for i in milk + fill}
    steps = [Step("chop", (i,)) for i in fill]
    inside = fill if d.chance(0.5) else []
    steps.append(Step("mix", tuple(["egg"] + milk + inside)))
    steps.append(Step("fry", tuple(["egg"] + milk + fill)))
    if d.chance(0.15):
        steps.append(Step("serve", (), "plate"))
    main = d.pick(fill) if fill else d.pick(("fluffy", "classic", "french"))
    return amounts, steps, f"{main} omelette"


def _pasta(d: _Draws):
    extras = d.some(("cheese", "mushroom", "onion", "chicken", "pepper"), 0, 2)
    amounts = {"pasta": d.pick((200, 250, 300)), "tomato": d.int(2, 3)}
    amounts |= {i: _amount(d, i, 1, 2) for i in extras}
    steps = [Step("boil", ("pasta",)), Step("mash" if d.chance(0.6) else "chop", ("tomato",))]
    cooked = [i for i in extras if i != "cheese"]
    for i in cooked:
        steps.insert(d.int(0, len(steps)), _cut(d, i, 0.3))
    if cooked:
        steps.append(Step("fry", tuple(cooked)))
    steps.append(Step("mix", ("pasta", "tomato", *cooked)))
    if "cheese" in extras:
        steps.append(Step("chop", ("cheese",)))
    steps.append(Step("serve", (), "plate" if d.chance(0.2) else "bowl"))
    main = d.pick(("tomato", *extras))
    return amounts, steps, d.pick((f"{main} pasta", f"pasta with {main}"))


def _pizza(d: _Draws):
    dough = ["flour"] + d.some(("milk", "butter"), 1, 2)
    tops = d.some(("mushroom", "pepper", "onion", "chicken", "corn"), 0, 2)
    amounts = {"flour": d.pick((200, 250, 300)), "tomato": d.int(2, 3), "cheese": d.pick(_GRAMS)}
    amounts |= {i: _amount(d, i, 1, 2) for i in dough[1:] + tops}
    prep = [Step("mash", ("tomato",)), Step("chop", ("cheese",))]
    prep += [_cut(d, i, 0.6) for i in tops if i != "corn"]
    steps = [Step("mix", tuple(dough))]
    for s in prep:
        steps.insert(d.int(0, len(steps)), s)
    steps.append(Step("bake", ("flour", "tomato", "cheese", *tops)))
    if d.chance(0.5):
        steps.append(Step("serve", (), "plate"))
    main = d.pick(tops) if tops else d.pick(("cheese", "tomato"))
    return amounts, steps, f"{d.pick(('homemade', 'crispy', 'classic'))} {main} pizza"


def _stew(d: _Draws):
    veg = ["potato", "carrot"] + d.some(("onion", "beans", "mushroom"), 0, 2)
    amounts = {"chicken": d.pick((300, 400, 500))} | {i: _amount(d, i, 2, 3) for i in veg}
    steps = [Step("chop", ("chicken",)), Step("fry", ("chicken",))]
    for i in veg:
        if i != "beans" and d.chance(0.3):
            steps.insert(d.int(0, len(steps)), Step("chop", (i,)))
    steps.append(Step("boil", ("chicken", *veg)))
    if d.chance(0.3):
        steps.append(Step("serve", (), "pot"))
    return amounts, steps, f"{d.pick(('hearty', 'rustic', 'slow', 'winter'))} chicken stew"


def _fried_rice(d: _Draws):
    veg = d.some(("onion", "corn", "beans", "carrot", "pepper", "chicken"), 2, 3)
    amounts = {"rice": d.pick((150, 200, 250, 300)), "egg": d.int(1, 2)}
    amounts |= {i: _amount(d, i, 1, 2) for i in veg}
    steps = [Step("boil", ("rice",))]
    for i in veg:
        if i not in ("corn", "beans"):
            steps.insert(d.int(0, len(steps)), Step("chop", (i,)))
    steps.append(Step("fry", ("rice", *veg)))
    steps.insert(d.int(1, len(steps)), Step("fry", ("egg",)))
    if d.chance(0.15):
        steps.append(Step("serve", (), "bowl"))
    main = d.pick([i for i in veg if i in ("chicken", "corn", "egg")] or ["egg"])
    return amounts, steps, f"{main} fried rice"


def _cake(d: _Draws):
    batter = ["flour", "sugar", "egg"] + d.some(("butter", "milk"), 1, 2)
    fruit = d.some(("strawberry", "banana", "apple", "lemon"), 0, 1)
    amounts = {i: _amount(d, i, 2, 3) for i in batter + fruit}
    steps = [Step("mix", tuple(batter)), Step("bake", tuple(batter))]
    if fruit:
        steps.append(_cut(d, fruit[0], 0.7))
    steps.append(Step("serve", (), "plate"))
    main = fruit[0] if fruit else d.pick(("sponge", "vanilla", "birthday"))
    return amounts, steps, f"{main} cake"


def _mash(d: _Draws):
    extras = ["butter"] + d.some(("milk", "cheese", "onion"), 0, 2)
    amounts = {"potato": d.int(3, 5)} | {i: _amount(d, i) for i in extras}
    steps = [Step("boil", ("potato",)), Step("mash", ("potato", *extras))]
    if d.chance(0.5):
        steps.insert(0, Step("chop", ("potato",)))
    if "onion" in extras:
        steps.insert(d.int(0, 1), Step("chop", ("onion",)))
    steps.append(Step("serve", (), "plate" if d.chance(0.2) else "bowl"))
    adj = "cheesy" if "cheese" in extras else d.pick(("creamy", "buttery", "smooth"))
    return amounts, steps, f"{adj} mashed potatoes"


def _sandwich(d: _Draws):
    fill = d.some(("cheese", "lettuce", "tomato", "chicken", "cucumber", "egg"), 2, 3)
    amounts = {"bread": 2} | {i: _amount(d, i, 1, 2) for i in fill}
    steps = [_cut(d, i, 0.7) for i in fill]
    if "egg" in fill:
        steps.insert(0, Step("boil", ("egg",)))
    # Toasted, so the bread stays two whole slices under the filling.
    steps.insert(d.int(0, len(steps)), Step("bake" if d.chance(0.6) else "fry", ("bread",)))
    steps.append(Step("serve", (), "plate"))
    return amounts, steps, f"{d.pick(fill)} sandwich"


def _fruit_salad(d: _Draws):
    fruit = d.some(("apple", "banana", "orange", "strawberry"), 3, 4)
    sugar = ["sugar"] if d.chance(0.4) else []
    amounts = {i: _amount(d, i, 1, 3) for i in fruit + sugar}
    steps = [_cut(d, i, 0.3) for i in fruit]
    steps.append(Step("mix", tuple(fruit + sugar)))
    steps.append(Step("serve", (), "bowl"))
    return amounts, steps, f"{d.pick(('fresh', 'summer', 'tropical', 'sweet'))} fruit salad"


def _fish_chips(d: _Draws):
    lemon = ["lemon"] if d.chance(0.6) else []
    amounts = {"fish": d.int(1, 2), "potato": d.int(3, 4)} | {i: 1 for i in lemon}
    steps = [Step("slice", ("potato",)), Step("fry", ("potato",)), Step("fry", ("fish",))]
    if d.chance(0.5):
        steps[1:] = steps[:0:-1]
    if lemon:
        steps.insert(d.int(0, len(steps)), Step("slice", ("lemon",)))
    if d.chance(0.7):
        steps.append(Step("serve", (), "plate"))
    return amounts, steps, f"{d.pick(('classic', 'crispy', 'seaside'))} fish and chips"


_MAKERS = {
    "salad": _salad,
    "soup": _soup,
    "omelette": _omelette,
    "pasta dish": _pasta,
    "pizza": _pizza,
    "stew": _stew,
    "fried rice": _fried_rice,
    "cake": _cake,
    "mashed potatoes": _mash,
    "sandwich": _sandwich,
    "fruit salad": _fruit_salad,
    "fish and chips": _fish_chips,
}
assert tuple(_MAKERS) == DISHES


# ------------------------------------------------------------------------------ colour

_FRY_RGB = np.array((215, 150, 50), np.float64)
_BAKE_RGB = np.array((150, 85, 35), np.float64)


def _cook_colour(rgb: np.ndarray, cooks: tuple[str, ...]) -> np.ndarray:
    """An RGB (float, (..., 3)) after the cooking steps, in order."""
    c = np.asarray(rgb, np.float64)
    for cook in cooks:
        if cook == "boil":  # paler and a little washed out
            c = 0.7 * c + 0.3 * 255.0
            c = 0.8 * c + 0.2 * c.mean(axis=-1, keepdims=True)
        elif cook == "fry":
            c = 0.55 * c + 0.45 * _FRY_RGB
        else:  # bake
            c = 0.9 * (0.5 * c + 0.5 * _BAKE_RGB)
    return c


@functools.cache
def _cooked(ing: str, cooks: tuple[str, ...], inner: bool) -> np.ndarray:
    info = INGREDIENTS[ing]
    out = _cook_colour(np.array(info.inner if inner else info.skin, np.float64), cooks)
    out.flags.writeable = False
    return out


# ------------------------------------------------------------------------------ banks
#
# Every bank is drawn from np.random.default_rng(<its key as integers>), so its contents
# are a function of the key alone; the sample's generator only picks from it.

_TABLES = 8  # table-top variants behind each vessel
_VARIANTS = 6  # layouts per ingredient layer or blob texture (x4 with the mirror images)
_FOOD = 0.34  # food stays inside this radius (fraction of the side) in every vessel


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size] + 0.5
    return y - size / 2, x - size / 2


def _noise(rng: np.random.Generator, size: int, cell: float) -> np.ndarray:
    """Smooth value noise in [0, 1], (size, size), cells of ``cell`` pixels."""
    n = int(size / cell) + 2
    grid = rng.random((n, n))
    t = np.arange(size) / cell
    i = t.astype(np.int64)
    f = t - i
    f = f * f * (3 - 2 * f)
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f) + rows[:, i + 1] * f


def _table(rng: np.random.Generator, size: int, t: int) -> np.ndarray:
    """A table top (size, size, 3) float: wood of four tones, stone, or a checked cloth."""
    y, x = _grid(size)
    if t < 4:  # wood: grain along x
        base = np.array(((150, 105, 65), (120, 80, 50), (175, 135, 90), (100, 70, 45))[t])
        grain = np.sin(y / size * rng.uniform(25, 40) + 3 * _noise(rng, size, size / 4))
        return base * (1 + 0.08 * grain)[..., None]
    if t < 6:
        stone = np.array(((130, 130, 128), (165, 160, 150))[t - 4])
        return stone * (0.9 + 0.2 * _noise(rng, size, size / 10))[..., None]
    colour = np.array(((175, 100, 95), (110, 125, 165))[t - 6], np.float64)
    cell = max(size // 8, 2)
    check = ((np.floor((y + size) / cell) + np.floor((x + size) / cell)) % 2)[..., None]
    return check * colour + (1 - check) * np.array((235, 232, 225))


@functools.lru_cache(maxsize=64)
def _vessel_bank(vessel: str, size: int) -> np.ndarray:
    """(_TABLES, 3, size, size) uint8: the vessel, empty, on each table top."""
    y, x = _grid(size)
    r = np.hypot(x, y) / size
    out = np.empty((_TABLES, 3, size, size), np.uint8)
    for t in range(_TABLES):
        rng = np.random.default_rng([VESSELS.index(vessel), size, t])
        img = _table(rng, size, t)
        light = 1 + 0.12 * (-(x + y) / size)[..., None]  # lit from the top left
        if vessel == "plate":
            img[r <= 0.47] = (228, 228, 222)
            img[(r > 0.455) & (r <= 0.47)] = (175, 175, 170)
            img[r <= 0.39] = (245, 245, 241)
            img[(r > 0.38) & (r <= 0.39)] = (212, 212, 207)
        elif vessel == "bowl":
            rim = np.array((60, 100, 165)) * light
            img[r <= 0.47] = rim[r <= 0.47]
            inner = np.array((236, 228, 210)) * (1 - 0.3 * (r / 0.38) ** 3)[..., None]
            img[r <= 0.38] = inner[r <= 0.38]
        elif vessel == "pot":
            handles = (np.abs(y) < 0.05 * size) & (np.abs(x) > 0.4 * size)
            handles &= np.abs(x) < 0.49 * size
            img[handles] = (80, 80, 86)
            metal = np.array((165, 170, 176)) * light
            img[r <= 0.45] = metal[r <= 0.45]
            water = (
                np.array((60, 125, 205)) * (0.92 + 0.16 * _noise(rng, size, size / 8))[..., None]
            )
            img[r <= 0.4] = water[r <= 0.4]
        else:  # pan: a dark disc with a wooden handle to the bottom right
            along = (x + y) / np.sqrt(2)
            across = np.abs(x - y) / np.sqrt(2)
            handle = (along > 0.4 * size) & (along < 0.75 * size) & (across < 0.045 * size)
            img[handle] = (70, 45, 25)
            img[r <= 0.45] = (50, 50, 55)
            sheen = (
                np.array((88, 88, 92))
                * (1 + 0.25 * np.exp(-(((x + y) / size + 0.3) ** 2) * 30))[..., None]
            )
            img[r <= 0.41] = sheen[r <= 0.41]
        out[t] = np.clip(np.rint(img), 0, 255).astype(np.uint8).transpose(2, 0, 1)
    out.flags.writeable = False
    return out


_TINT = np.float32(0.35)


@functools.lru_cache(maxsize=64)
def _water(size: int) -> tuple[int, int, np.ndarray]:
    """(y0, y1, mask): the pot's water, a disc in the square [y0, y1) x [y0, y1)."""
    y, x = _grid(size)
    mask = np.hypot(x, y) / size <= 0.4
    rows = np.nonzero(mask.any(1))[0]
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    mask = np.ascontiguousarray(mask[y0:y1, y0:y1])
    mask.flags.writeable = False
    return y0, y1, mask


class _Layer(NamedTuple):
    """A cropped picture to copy: rgb (3, h, w) uint8 where mask (h, w), at (y0, x0)."""

    rgb: np.ndarray
    mask: np.ndarray
    y0: int
    x0: int


def _crop(rgb: np.ndarray, mask: np.ndarray) -> _Layer:
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    rgb = np.ascontiguousarray(rgb[:, y0:y1, x0:x1])
    mask = np.ascontiguousarray(mask[y0:y1, x0:x1])
    rgb.flags.writeable = mask.flags.writeable = False
    return _Layer(rgb, mask, int(y0), int(x0))


# (kind, form) -> pieces per unit of amount, extra pieces, half length, half width (as
# fractions of the side), superellipse exponent (2: ellipse, 4: rounded rectangle), and
# whether the cut face (inner colour) shows.
_PIECES = {
    ("round", "whole"): (1, 0, 0.10, 0.10, 2, False),
    ("long", "whole"): (1, 0, 0.17, 0.055, 2, False),
    ("slab", "whole"): (1, 0, 0.15, 0.11, 4, False),
    ("leaf", "whole"): (3, 0, 0.15, 0.10, 2, False),
    ("egg", "whole"): (1, 0, 0.075, 0.055, 2, False),
    ("grain", "whole"): (20, 15, 0.028, 0.016, 2, False),
    ("strand", "whole"): (12, 12, 0.09, 0.013, 2, False),
    ("powder", "whole"): (0, 1, 0.2, 0.17, 2, False),
    ("liquid", "whole"): (0, 1, 0.2, 0.15, 2, False),
    ("any", "chop"): (7, 6, 0.04, 0.032, 4, True),
    ("any", "slice"): (4, 3, 0.13, 0.022, 4, True),
}
_FORMS = ("whole", "chop", "slice")


def _units(ing: str, amount: int) -> int:
    """1..3: how much of the ingredient the picture shows."""
    measure = INGREDIENTS[ing].measure
    if measure in ("g", "ml"):
        return 1 if amount <= 150 else 2 if amount <= 250 else 3
    return min(max(amount, 1), 3)


@functools.lru_cache(maxsize=4096)
def _layers(ing: str, form: str, cooks: tuple[str, ...], units: int, size: int):
    """_VARIANTS layouts of an ingredient's pieces: tuple of _Layer."""
    info = INGREDIENTS[ing]
    kind = info.kind
    # Fine grains, strands and powders do not change shape when cut.
    shape_form = "whole" if kind in ("grain", "strand", "powder", "liquid") else form
    per, extra, a, b, p, cut = _PIECES[(kind if shape_form == "whole" else "any", shape_form)]
    n = per * units + extra
    if kind == "egg" and form == "whole" and "fry" in cooks:
        a = b = 0.12  # a fried egg: white with a yolk
    elif ing == "bread" and form == "whole":
        a, b = 0.2, 0.16  # slices of bread fill the plate, as in a sandwich
    y, x = _grid(size)
    code = [INGREDIENTS_INDEX[ing], _FORMS.index(form), units, size]
    code += [_COOKS.index(c) + 1 for c in cooks]
    rng = np.random.default_rng(code)
    skin = _cooked(ing, cooks, inner=False)
    inner = _cooked(ing, cooks, inner=True)
    out = []
    for _ in range(_VARIANTS):
        scale = rng.uniform(0.85, 1.15, n) * size
        ha, hb = a * scale, b * scale
        spread = 0.55 if kind in ("powder", "liquid") else 1.0
        reach = np.maximum(_FOOD * size * spread - ha, 1.0)
        rad, ang = np.sqrt(rng.random(n)) * reach, rng.uniform(0, 2 * np.pi, n)
        cy, cx = rad * np.sin(ang), rad * np.cos(ang)
        theta = rng.uniform(0, np.pi, n)
        f32 = np.float32
        cos, sin = (
            np.cos(theta).astype(f32)[:, None, None],
            np.sin(theta).astype(f32)[:, None, None],
        )
        dx = x.astype(f32) - cx.astype(f32)[:, None, None]
        dy = y.astype(f32) - cy.astype(f32)[:, None, None]
        u = (dx * cos + dy * sin) / ha.astype(f32)[:, None, None]
        v = (dy * cos - dx * sin) / hb.astype(f32)[:, None, None]
        # Squares instead of a general power: this loop is what building a bank costs.
        u2, v2 = u * u, v * v
        rho = np.sqrt(u2 + v2) if p == 2 else np.sqrt(np.sqrt(u2 * u2 + v2 * v2))
        if kind in ("leaf", "powder") or (kind == "egg" and a > 0.1):
            wob = rng.uniform(0, 2 * np.pi, n)[:, None, None]
            rho = rho / (1 + 0.13 * np.sin(5 * np.arctan2(v, u) + wob))
        inside = rho <= 1
        label = np.where(inside, np.arange(n)[:, None, None], -1).max(0)
        mask = label >= 0
        if not mask.any():
            continue
        lab = np.maximum(label, 0)
        rr = np.take_along_axis(rho, lab[None], 0)[0]
        jitter = rng.uniform(0.92, 1.08, n)[lab][..., None]
        if cut:  # cut face, with a thin rim of skin on the chunk's edge
            col = np.where((rr > 0.7)[..., None], skin, inner)
        elif kind == "egg":
            if a > 0.1:  # fried: white, golden edge, yolk in the middle
                col = np.where((rr < 0.38)[..., None], inner, _cook_colour((250, 250, 245), cooks))
            elif "boil" in cooks:  # a shelled boiled egg
                col = np.broadcast_to(np.array((248, 246, 238), np.float64), rr.shape + (3,))
            else:
                col = np.broadcast_to(skin, rr.shape + (3,))
        elif kind == "slab" and ing == "bread":  # crust around the crumb
            col = np.where((rr > 0.75)[..., None], skin, inner)
        else:
            col = np.broadcast_to(skin, rr.shape + (3,))
        # Rounded pieces: lit from the top left, darker towards the rim.
        shade = 1.08 - 0.18 * rr**2 - 0.06 * np.clip((x + y) / size * 4, -1, 1) * (p == 2)
        col = col * (jitter * shade[..., None])
        if "bake" in cooks:  # darker rims
            col = col * np.where(rr > 0.65, 0.7, 1.0)[..., None]
        if cooks and cooks[-1] == "fry":  # oil glints
            glint = (rng.random(rr.shape) < 0.05)[..., None]
            col = np.where(glint, 0.35 * col + 0.65 * np.array((255, 248, 215)), col)
        rgb = np.clip(np.rint(col), 0, 255).astype(np.uint8).transpose(2, 0, 1)
        out.append(_crop(rgb, mask))
    return tuple(out)


INGREDIENTS_INDEX = {name: i for i, name in enumerate(INGREDIENTS)}


@functools.lru_cache(maxsize=256)
def _blobs(style: str, baked: bool, fried: bool, size: int):
    """_VARIANTS blob textures: (mult (h, w) float32, add (h, w) float32, _Layer mask).

    A blob's pixels are ``colour * mult * (1 - add) + 255 * add``: mix blobs are large and
    mottled, mash blobs smaller and smooth with a soft highlight.
    """
    y, x = _grid(size)
    rng = np.random.default_rng([("mix", "mash").index(style), int(baked), int(fried), size])
    out = []
    for _ in range(_VARIANTS):
        radius = (0.92 if style == "mix" else 0.62) * _FOOD * size
        cy, cx = rng.uniform(-0.06, 0.06, 2) * size * (style == "mash")
        dy, dx = y - cy, x - cx
        ang = np.arctan2(dy, dx)
        wob = 1 + 0.05 * np.sin(4 * ang + rng.uniform(0, 6.3)) + 0.03 * np.sin(7 * ang)
        rr = np.hypot(dx, dy) / (radius * wob)
        mask = rr <= 1
        if style == "mix":
            mult = 0.88 + 0.24 * _noise(rng, size, size / 12)
        else:
            mult = 1.06 - 0.16 * rr**2 + 0.12 * np.exp(-((dx + dy + 0.4 * radius) ** 2) / size)
        if baked:
            mult = mult * np.where(rr > 0.8, 0.62, 1.0)
        add = np.zeros_like(mult)
        if fried:
            add[rng.random(mult.shape) < 0.04] = 0.6
        layer = _crop(np.zeros((3, size, size), np.uint8), mask)
        h, w = layer.mask.shape
        sl = (slice(layer.y0, layer.y0 + h), slice(layer.x0, layer.x0 + w))
        m = np.ascontiguousarray(mult[sl], np.float32)
        ad = np.ascontiguousarray(add[sl], np.float32)
        m.flags.writeable = ad.flags.writeable = False
        out.append((m, ad, layer))
    return tuple(out)


# ------------------------------------------------------------------------------ drawing


def _paste(image: np.ndarray, layer: _Layer, rgb: np.ndarray, flip: int, size: int) -> None:
    """Copy ``rgb`` where ``layer.mask``, mirrored left-right (flip & 1), up-down (flip & 2)."""
    mask = layer.mask
    h, w = mask.shape
    y0, x0 = layer.y0, layer.x0
    if flip & 1:
        rgb, mask, x0 = rgb[:, :, ::-1], mask[:, ::-1], size - x0 - w
    if flip & 2:
        rgb, mask, y0 = rgb[:, ::-1], mask[::-1], size - y0 - h
    np.copyto(image[:, y0 : y0 + h, x0 : x0 + w], rgb, where=mask)


def _check_image_size(image_size) -> int:
    return check_positive_int(image_size, "image_size", minimum=MIN_IMAGE_SIZE)


def _check_steps(amounts, steps) -> None:
    if not isinstance(amounts, dict) or not amounts:
        raise ParameterError(f"ingredients must be a non-empty dict. Found: {amounts!r}")
    for ing, amount in amounts.items():
        if ing not in INGREDIENTS:
            raise ParameterError(
                f"unknown ingredient {ing!r}; the ingredients are {tuple(INGREDIENTS)}"
            )
        if isinstance(amount, bool) or not isinstance(amount, numbers.Integral) or amount < 1:
            raise ParameterError(f"amount of {ing!r} must be an integer >= 1. Found: {amount!r}")
    for k, step in enumerate(steps):
        if not isinstance(step, Step) or step.action not in INSTRUCTIONS:
            raise ParameterError(
                f"steps[{k}] must be a Step with an action from {tuple(INSTRUCTIONS)}. "
                f"Found: {step!r}"
            )
        if step.action == "serve":
            if step.vessel not in VESSELS:
                raise ParameterError(
                    f"steps[{k}] serves in an unknown vessel {step.vessel!r}; the vessels are "
                    f"{VESSELS}"
                )
        elif not step.ingredients:
            raise ParameterError(f"steps[{k}] ({step.action}) names no ingredient")
        for ing in step.ingredients:
            if ing not in amounts:
                raise ParameterError(
                    f"steps[{k}] uses {ing!r}, which is not among the ingredients {tuple(amounts)}"
                )


def render_dish(
    rng: np.random.Generator,
    ingredients: dict[str, int],
    steps: list[Step],
    *,
    image_size: int = 64,
    validate: bool = True,
) -> tuple[np.ndarray, dict[str, list[str]], str]:
    """Draw the dish that ``steps`` make of ``ingredients``.

    Args:
        rng: the sample's generator: it picks the table, and a layout and mirror image of
            each ingredient's pieces and of each blob.
        ingredients: ingredient -> amount in its measure (count, g, ml, ...).
        steps: the instructions in order.
        image_size: side of the square image in pixels (>= 32).
        validate: check the arguments (the recipe generator's own are always valid).

    Returns:
        ``(image, state, vessel)``: image (3, H, W) uint8 RGB; state: ingredient -> the
        actions applied to it in order; the vessel it ends up in.

    Example:
        >>> img, state, vessel = render_dish(np.random.default_rng(0), {"potato": 2},
        ...     [Step("chop", ("potato",)), Step("boil", ("potato",))])
        >>> state, vessel
        ({'potato': ['chop', 'boil']}, 'pot')
    """
    if validate:
        if not isinstance(rng, np.random.Generator):
            raise ParameterError(f"rng must be a numpy.random.Generator. Found: {rng!r}")
        image_size = _check_image_size(image_size)
        _check_steps(ingredients, steps)
    size = image_size
    state: dict[str, list[str]] = {i: [] for i in ingredients}
    vessel = "plate"
    # Ingredients mixed or mashed together form one blob; groups merge when they meet.
    group_of: dict[str, int] = {}
    groups: list[list] = []  # [members (list), style]
    for step in steps:
        if step.action == "serve":
            vessel = step.vessel
            continue
        for ing in step.ingredients:
            state[ing].append(step.action)
        if step.action in _COOK_VESSEL:
            vessel = _COOK_VESSEL[step.action]
        elif step.action in ("mix", "mash"):
            ids = {group_of[i] for i in step.ingredients if i in group_of}
            members = list(step.ingredients)
            style = step.action
            for g in sorted(ids):
                members += [m for m in groups[g][0] if m not in members]
                style = "mix" if "mix" in (style, groups[g][1]) else "mash"
                groups[g] = None
            groups.append([members, style])
            for m in members:
                group_of[m] = len(groups) - 1

    d = _Draws(rng)
    bank = _vessel_bank(vessel, size)
    image = bank[int(d.next() * len(bank))].copy()
    if vessel == "pot":  # the water takes on the colour of what boiled in it
        boiled = [_cooked(i, ("boil",), inner=True) for i, a in state.items() if "boil" in a]
        if boiled:
            y0, y1, water = _water(size)
            region = image[:, y0:y1, y0:y1]
            tint = np.mean(boiled, axis=0).astype(np.float32)[:, None, None]
            tinted = (region * np.float32(1 - _TINT) + tint * _TINT).astype(np.uint8)
            np.copyto(region, tinted, where=water)
    absorbed = set()
    live = [g for g in groups if g is not None]
    live.sort(key=lambda g: g[1] != "mix")  # bases first, sauces on top
    for members, style in live:
        colours, baked, fried = [], False, False
        for m in members:
            cooks = tuple(a for a in state[m] if a in _COOK_VESSEL)
            colours.append(_cooked(m, cooks, inner=True))
            baked |= "bake" in cooks
            fried |= bool(cooks) and cooks[-1] == "fry"
            if style == "mash" or INGREDIENTS[m].kind in _ABSORBED_KINDS or m in _MELTS:
                absorbed.add(m)
        colour = np.mean(colours, axis=0).astype(np.float32)
        mult, add, layer = d.pick(_blobs(style, baked, fried, size))
        pix = colour[:, None, None] * mult
        if fried:
            pix = pix * (1 - add) + 255 * add
        rgb = np.clip(pix, 0, 255).astype(np.uint8)
        _paste(image, layer, rgb, int(d.next() * 4), size)

    # Pieces: whole ones below, slices above them, chunks on top.
    order = {"whole": 0, "slice": 1, "chop": 2}
    pieces = []
    for ing, actions in state.items():
        if ing in absorbed:
            continue
        form = "whole"
        for a in actions:
            if a in ("chop", "slice"):
                form = a
        cooks = tuple(a for a in actions if a in _COOK_VESSEL)
        pieces.append((order[form], ing, form, cooks))
    pieces.sort(key=lambda t: t[0])
    for _, ing, form, cooks in pieces:
        layer = d.pick(_layers(ing, form, cooks, _units(ing, ingredients[ing]), size))
        _paste(image, layer, layer.rgb, int(d.next() * 4), size)
    return image, state, vessel


# ------------------------------------------------------------------------------ recipes


def recipe_sample(
    rng: np.random.Generator, *, image_size: int = 64, dish: str | None = None
) -> Recipe:
    """A random recipe of ``dish`` (default: a random class) with its picture.

    Args:
        rng: the sample's generator; the only source of randomness.
        image_size: side of the square image in pixels (>= 32).
        dish: a class from DISHES, or None for a uniformly random one.

    Example:
        >>> r = recipe_sample(np.random.default_rng(1), dish="soup")
        >>> r.vessel, all(i in r.state for i in r.amounts)
        ('pot', True)
    """
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)). Found: {rng!r}"
        )
    size = _check_image_size(image_size)
    d = _Draws(rng)
    if dish is None:
        dish = d.pick(DISHES)
    elif dish not in _MAKERS:
        raise ParameterError(f"unknown dish {dish!r}; the dishes are {DISHES}")
    amounts, steps, title = _MAKERS[dish](d)
    instructions = [_sentence(d, s, amounts) for s in steps]
    image, state, vessel = render_dish(rng, amounts, steps, image_size=size, validate=False)
    return Recipe(
        dish=dish,
        label=DISHES.index(dish),
        title=title,
        ingredients=[ingredient_line(i, a) for i, a in amounts.items()],
        instructions=instructions,
        image=image,
        state=state,
        vessel=vessel,
        amounts=amounts,
        steps=steps,
    )
