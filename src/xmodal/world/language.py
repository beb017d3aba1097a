"""Captions and questions about a shapes scene, and a parser that checks a caption against one.

Three things live here, all built on the vocabulary of :mod:`xmodal.world.schema`:

- :func:`captions`: lower-case English sentences that are true of a scene, from a small
  grammar with paraphrases (``big``/``large``, ``thing``/``shape``/``object``, several
  openings and word orders), counts, spatial relations and the place.
- :func:`questions`: :class:`~xmodal.world.schema.Question` records of five families
  (exist, count, colour, shape, relation) with answers balanced across scenes.
- :func:`caption_facts` and :func:`facts_hold`: a parser that turns a caption (this
  grammar's, a paraphrase, or a model's attempt at one) into facts, and a check of those
  facts against a scene, so a generated caption can be scored by what it says.

Semantics, shared by generator and parser:

- ``a red circle`` claims at least one red circle; ``two circles`` and ``no squares``
  claim exactly two and exactly zero; ``the red circle`` claims exactly one (a definite
  description is only used for something unique in the scene).
- ``object``, ``shape`` and ``thing`` stand for any shape.
- ``A left of B`` holds when some object matching A and another matching B are *clearly*
  in that relation: their centres differ by more than ``margin`` pixels on its axis.
  Generated relations and relation questions use only clear relations, so neither is
  ever true or false by a pixel.

Count answers are number words: ``"zero"``, ``"one"``, ``"two"``, ``"three"`` (up to
``"ten"``); yes/no answers are ``"yes"`` and ``"no"``; colour and shape answers are the
vocabulary's own words.

Every choice is drawn from the ``numpy.random.Generator`` passed in (uniforms taken in
blocks, consumed in a fixed order), so a scene's seed fixes its text exactly. The hot path
is plain Python over tables built at import: no regular expressions and nothing compiled
per call, so captions and questions cost tens of microseconds per scene.

Example:
    >>> rng = np.random.default_rng(0)
    >>> objs = [WorldObject("circle", "red", "large", 10, 20, 10),
    ...         WorldObject("square", "blue", "small", 45, 40, 6)]
    >>> captions(rng, objs, "beach", n=2, margin=6.4)
    ['one little blue thing', 'a picture of one red circle and one blue square']
    >>> facts_hold(caption_facts("a red circle left of a blue square"), objs, "beach",
    ...            margin=6.4)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import permutations

import numpy as np

from xmodal._checks import check_choice, check_positive_int, check_positive_number
from xmodal.errors import ParameterError
from xmodal.world.schema import (
    COLOURS,
    PLACES,
    RELATIONS,
    SHAPES,
    SIZES,
    Question,
    WorldObject,
    relation,
)

__all__ = [
    "CaptionFacts",
    "Mention",
    "NUMBER_WORDS",
    "PLACE_PHRASES",
    "RELATION_PHRASES",
    "SIZE_WORDS",
    "answer_question",
    "caption_facts",
    "captions",
    "facts_hold",
    "near_miss",
    "near_miss_kind",
    "NEAR_MISS_KINDS",
    "question_referents",
    "questions",
    "scene_text",
    "word_attribute",
    "word_attributes",
    "word_categories",
]

# ----------------------------------------------------------------------------- vocabulary

NUMBER_WORDS: tuple[str, ...] = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
)
_MAX_OBJECTS = len(NUMBER_WORDS) - 1

# Each size has two words, so a caption model must learn they mean the same.
SIZE_WORDS: dict[str, tuple[str, ...]] = {"large": ("large", "big"), "small": ("small", "little")}
_ANY_NOUNS = ("object", "shape", "thing")
_PLURALS = {"cross": "crosses"}  # every other noun takes an "s"

# Three phrasings per place. Words are chosen so that none is also a relation word
# ("under the sea" would read as "below"): the parser needs no lookahead.
PLACE_PHRASES: dict[str, tuple[str, ...]] = {
    "beach": ("on a beach", "on the beach", "at the seaside"),
    "forest": ("in a forest", "in the forest", "in the woods"),
    "city": ("in a city", "in the city", "on a city street"),
    "desert": ("in a desert", "in the desert", "among sand dunes"),
    "snow": ("in the snow", "on snowy ground", "in a snowy landscape"),
    "night": ("at night", "in the dark", "at night time"),
    "field": ("in a field", "in a meadow", "on a grassy field"),
    "underwater": ("underwater", "on the seabed", "deep in the ocean"),
}

RELATION_PHRASES: dict[str, tuple[str, ...]] = {
    "left of": ("to the left of", "left of", "on the left of"),
    "right of": ("to the right of", "right of", "on the right of"),
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
}
_OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}

assert set(PLACE_PHRASES) == set(PLACES), "a place without phrasings"
assert set(RELATION_PHRASES) == set(RELATIONS), "a relation without phrasings"
assert set(SIZE_WORDS) == set(SIZES), "a size without words"


def _plural(noun: str) -> str:
    return _PLURALS.get(noun, noun + "s")


def _with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


# A descriptor ("key") is (size, colour, shape) with None for "any", numbered so that the
# hot path indexes lists instead of hashing tuples. Every object matches 8 keys, ordered
# by bits 4 = size, 2 = colour, 1 = shape: its 7th is its full name, its 0th "object".
# Phrases of every key are built here once, in every synonym variant.
_KEYS = [(s, c, sh) for s in (None, *SIZES) for c in (None, *COLOURS) for sh in (None, *SHAPES)]
_KEY_ID = {k: i for i, k in enumerate(_KEYS)}


def _phrases(key: tuple, plural: bool) -> tuple[str, ...]:
    size, colour, shape = key
    sizes = SIZE_WORDS[size] if size else ("",)
    nouns = (shape,) if shape else _ANY_NOUNS
    out = []
    for s in sizes:
        for noun in nouns:
            words = (s, colour or "", _plural(noun) if plural else noun)
            out.append(" ".join(w for w in words if w))
    return tuple(out)


_SING = [_phrases(k, False) for k in _KEYS]  # "big red circle"
_INDEF = [tuple(_with_article(p) for p in v) for v in _SING]  # "a big red circle"
_PLUR = [_phrases(k, True) for k in _KEYS]  # "big red circles"
# "what shape is the blue shape?" reads badly: shape questions say "object" or "thing".
_SING_NO_SHAPE_WORD = [tuple(p for p in v if p.split()[-1] != "shape") for v in _SING]
_DESCR = [{"size": k[0], "colour": k[1], "shape": k[2]} for k in _KEYS]  # copied on use
_SUBKEYS = {
    (s, c, sh): tuple(
        _KEY_ID[(s if i & 4 else None, c if i & 2 else None, sh if i & 1 else None)]
        for i in range(8)
    )
    for s in SIZES
    for c in COLOURS
    for sh in SHAPES
}


def _near(key: tuple) -> tuple[int, ...]:
    """Keys that differ from ``key`` in exactly one stated attribute: near misses."""
    size, colour, shape = key
    out = []
    if size:
        out += [(s, colour, shape) for s in SIZES if s != size]
    if colour:
        out += [(size, c, shape) for c in COLOURS if c != colour]
    if shape:
        out += [(size, colour, sh) for sh in SHAPES if sh != shape]
    return tuple(_KEY_ID[k] for k in out)


_NEAR = [_near(k) for k in _KEYS]
_PERMS = {m: tuple(permutations(range(m))) for m in range(1, 4)}

# Weighted choices are tuples with repeats, picked uniformly. Attribute captions favour
# full names (informative), but also say "a red thing" or "a big circle".
_ATTR_PATTERNS = (7, 7, 7, 7, 3, 3, 3, 5, 5, 1, 6, 6, 2, 4)
_COUNT_PATTERNS = (0, 0, 1, 1, 1, 2, 2, 4, 3, 5, 6)
_EXIST_PATTERNS = (1, 1, 3, 3, 3, 5, 7, 7, 2, 6, 4)
_COUNT_Q_PATTERNS = (0, 1, 1, 2, 2, 3, 4, 5, 6, 7)
_REL_PATTERNS = (7, 3, 3, 1, 5, 2, 6)

# For each object (its 8 keys), the indefinite noun phrases of attribute captions with
# patterns and synonyms pre-weighted: 6 slots per pattern, so one pick chooses both.
_ATTR_NPS = {
    ks: tuple(p for pat in _ATTR_PATTERNS for p in _INDEF[ks[pat]] * (6 // len(_INDEF[ks[pat]])))
    for ks in _SUBKEYS.values()
}
_N_ATTR_NPS = 6 * len(_ATTR_PATTERNS)
assert all(len(v) == _N_ATTR_NPS for v in _ATTR_NPS.values())
_UNIQUE_ALL = (1, 2, 3, 4, 5, 6, 7)
_NO_COLOUR = (0, 1, 4, 5)  # descriptions that do not give the colour away
_NO_SHAPE = (0, 2, 4, 6)
_ATTR_PREFIXES = ("", "", "", "there is ", "we see ", "a picture of ", "an image of ")
_ATTR_PREFIXES += ("a scene with ",)
_PLURAL_PREFIXES = ("", "", "there are ", "we see ", "a picture of ")
_SINGULAR_PREFIXES = ("", "", "there is ", "we see ", "a picture of ")
_EXIST_FORMS = (("is there ", "?"), ("can you see ", "?"), ("is there ", " in the picture?"))
_COUNT_FORMS = (("how many ", " are there?"), ("how many ", " can you see?"))
_COUNT_FORMS += (("how many ", " are in the picture?"),)
_COLOUR_FORMS = (("what colour is the ", "?"), ("what is the colour of the ", "?"))
_COLOUR_FORMS += (("which colour is the ", "?"),)
_SHAPE_FORMS = (("what shape is the ", "?"), ("what is the shape of the ", "?"))
_SHAPE_FORMS += (("which shape is the ", "?"),)


def _texts(forms, phrases) -> list[tuple[str, ...]]:
    """Every (form, phrasing) combination of every key, so a question is one pick."""
    return [tuple(head + p + tail for head, tail in forms for p in ps) for ps in phrases]


_EXIST_TEXTS = _texts(_EXIST_FORMS, _INDEF)
_COUNT_TEXTS = _texts(_COUNT_FORMS, _PLUR)
_COLOUR_TEXTS = _texts(_COLOUR_FORMS, _SING)
_SHAPE_TEXTS = _texts(_SHAPE_FORMS, _SING_NO_SHAPE_WORD)
# Count targets per number of objects: higher counts are rarer by chance, so they are
# asked more often, which spreads answers over zero..three across scenes.
_COUNT_TARGETS = {
    1: (0, 1),
    2: (0, 1, 2, 2),
    3: (0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3),
}
_INF = float("inf")

# --------------------------------------------------------------------- shared scene view


# Uniforms are drawn from the generator in blocks (one numpy call each) and consumed with
# list.pop, the cheapest call Python has. A block is topped up before each attempt at a
# caption or question so that it holds the most one attempt can take (counted from the
# code below): a question <= 22; a caption <= 3 * objects + 27 (Fisher-Yates above 3).
# A first block of 96 covers the usual 40-70 draws of a call.
_BLOCK = 96
_QUESTION_DRAWS = 24


def _pick(nxt, seq):
    return seq[int(nxt() * len(seq))]


def _clear_relations(a: WorldObject, b: WorldObject, margin: float) -> list[str]:
    # _scene has its own table-driven copy of this test for the hot path.
    return relation(a, b, margin=margin)


_PAIR_RELATIONS = [
    ({-1: ("left of",), 0: (), 1: ("right of",)}[sx] + {-1: ("above",), 0: (), 1: ("below",)}[sy])
    for sx in (-1, 0, 1)
    for sy in (-1, 0, 1)
]


def _scene(objects, margin) -> tuple[list, list, list]:
    """Validate a scene; return each object's 8 keys, the count of every key, clear pairs.

    Pairs are ``(i, j, relations)`` for ordered i != j with at least one clear relation.
    """
    if type(margin) is not float or not 0.0 <= margin < _INF:  # fast path for the usual
        margin = check_positive_number(margin, "margin", allow_zero=True)
    if not isinstance(objects, (list, tuple)) or not 1 <= len(objects) <= _MAX_OBJECTS:
        raise ParameterError(
            f"objects must be a list of 1 to {_MAX_OBJECTS} WorldObjects. Found: {objects!r}"
        )
    keys = []
    counts = [0] * len(_KEYS)
    for o in objects:
        if not isinstance(o, WorldObject):
            raise ParameterError(f"objects must hold WorldObjects. Found: {o!r}")
        ks = _SUBKEYS.get((o.size, o.colour, o.shape))
        if ks is None:
            raise ParameterError(
                "each object's size, colour and shape must be words of the schema. "
                f"Found: {o.size!r}, {o.colour!r}, {o.shape!r}"
            )
        keys.append(ks)
        for k in ks:
            counts[k] += 1
    pairs = []
    m = len(objects)
    for i in range(m - 1):
        ax, ay = objects[i].x, objects[i].y
        for j in range(i + 1, m):
            dx, dy = ax - objects[j].x, ay - objects[j].y
            # sign of each clear difference (-1, 0, 1) -> _PAIR_RELATIONS index, 4 = none
            r = 3 * ((dx > margin) - (dx < -margin)) + (dy > margin) - (dy < -margin) + 4
            if r != 4:
                pairs.append((i, j, _PAIR_RELATIONS[r]))
                pairs.append((j, i, _PAIR_RELATIONS[8 - r]))
    return keys, counts, pairs


def _absent_key(nxt, keys, counts, patterns):
    """A key matching no object, or None: mostly a near miss of a present object."""
    for _ in range(6):
        near = _NEAR[_pick(nxt, keys)[_pick(nxt, patterns)]]
        if near:
            key = _pick(nxt, near)
            if not counts[key]:
                return key
    return None


# ------------------------------------------------------------------------------ captions


def _np(nxt, key, counts, definite_p: float) -> str:
    """Noun phrase with article: "the ..." only if the key is unique, with prob definite_p."""
    if counts[key] == 1 and nxt() < definite_p:
        return "the " + _pick(nxt, _SING[key])
    return _pick(nxt, _INDEF[key])


def _join(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _order(nxt, m: int):
    """A random order of m objects (a table lookup up to 3)."""
    if m in _PERMS:
        return _pick(nxt, _PERMS[m])
    order = list(range(m))
    for i in range(m - 1, 0, -1):  # Fisher-Yates
        j = int(nxt() * (i + 1))
        order[i], order[j] = order[j], order[i]
    return order


def _attribute_caption(nxt, keys, counts) -> str:
    order = _order(nxt, len(keys))
    if len(keys) > 1 and nxt() < 0.25:  # mention only some objects
        order = order[: 1 + int(nxt() * (len(keys) - 1))]
    parts = [_ATTR_NPS[keys[i]][int(nxt() * _N_ATTR_NPS)] for i in order]
    return _pick(nxt, _ATTR_PREFIXES) + _join(parts)


def _count_caption(nxt, keys, counts) -> str:
    p = _pick(nxt, _COUNT_PATTERNS)
    groups = []
    for i in _order(nxt, len(keys)):
        if keys[i][p] not in groups:
            groups.append(keys[i][p])
    if nxt() < 0.4:  # state one group's exact count only
        groups = groups[:1]
    parts = []
    for key in groups:
        c = counts[key]
        if c > 1:
            parts.append(NUMBER_WORDS[c] + " " + _pick(nxt, _PLUR[key]))
        elif nxt() < 0.5:
            parts.append(_pick(nxt, _INDEF[key]))
        else:
            parts.append("one " + _pick(nxt, _SING[key]))
    if p and nxt() < 0.2:  # and something that is not there
        absent = _absent_key(nxt, keys, counts, (p,))
        if absent is not None:
            parts.append("no " + _pick(nxt, _PLUR[absent]))
    prefixes = _SINGULAR_PREFIXES if counts[groups[0]] == 1 else _PLURAL_PREFIXES
    return _pick(nxt, prefixes) + _join(parts)


def _relation_caption(nxt, keys, counts, pairs) -> str:
    i, j, rels = _pick(nxt, pairs)
    rel = _pick(nxt, RELATION_PHRASES[_pick(nxt, rels)])
    key_a = keys[i][_pick(nxt, _REL_PATTERNS)]
    b = _np(nxt, keys[j][_pick(nxt, _REL_PATTERNS)], counts, 0.6)
    r = nxt()
    if r < 0.4:  # "the blue square is above the small green triangle"
        return _np(nxt, key_a, counts, 0.7) + " is " + rel + " " + b
    if r < 0.75:  # "a red circle to the left of a blue square"
        return _np(nxt, key_a, counts, 0.3) + " " + rel + " " + b
    return "there is " + _pick(nxt, _INDEF[key_a]) + " " + rel + " " + b


def captions(
    rng: np.random.Generator,
    objects: list[WorldObject],
    place: str,
    *,
    n: int = 5,
    margin: float,
) -> list[str]:
    """``n`` lower-case captions, each true of the scene, distinct when the grammar allows.

    Forms: attribute lists ("a big red circle and a small blue square"), exact counts
    ("two circles and a triangle", "there are three shapes", "one red object and no
    squares"), relations between clearly related objects ("the blue square is above the
    small green triangle"), each with an opening ("there is", "we see", "a picture of")
    and, about half the time, the place before or after ("... in the woods").

    Args:
        rng: the sample's generator; the captions are a function of its state.
        objects: 1 to 10 objects of the scene.
        place: one of ``schema.PLACES``.
        n: number of captions (>= 1). If the scene allows fewer distinct captions
            than ``n`` after a fixed number of tries, some are repeated.
        margin: pixels by which centres must differ for a relation to be stated.

    Returns:
        ``n`` strings.
    """
    n = _check_n(n, "n")
    _check_place(place)
    return _captions(rng, _scene(objects, margin), place, n)


def _check_n(n, name: str) -> int:
    return n if type(n) is int and n >= 1 else check_positive_int(n, name)


def _check_place(place) -> None:
    if place not in PLACE_PHRASES:
        check_choice(place, "place", PLACES)


def _captions(rng, scene, place: str, n: int) -> list[str]:
    keys, counts, pairs = scene
    draws = rng.random(_BLOCK).tolist()
    nxt = draws.pop
    most = 3 * len(keys) + 28
    place_phrases = PLACE_PHRASES[place]
    out: list[str] = []
    seen = set()
    for _ in range(4 * n + 8):
        if len(draws) < most:
            draws.extend(rng.random(_BLOCK).tolist())
        r = nxt()
        if pairs and r < 0.35:
            text = _relation_caption(nxt, keys, counts, pairs)
        elif r < 0.65:
            text = _attribute_caption(nxt, keys, counts)
        else:
            text = _count_caption(nxt, keys, counts)
        r = nxt()
        if r < 0.35:
            text = text + " " + _pick(nxt, place_phrases)
        elif r < 0.5:
            text = _pick(nxt, place_phrases) + ", " + text
        if text not in seen:
            seen.add(text)
            out.append(text)
            if len(out) == n:
                return out
    return [out[i % len(out)] for i in range(n)]


# ----------------------------------------------------------------------------- questions
# Each builder returns (question, answer, family, facts) or None when the scene does not
# allow that question; questions() makes Question records only of those it keeps.


def _unique_key(nxt, obj_keys, counts, patterns):
    """A key of this object that no other object matches, or None."""
    cands = [obj_keys[p] for p in patterns if counts[obj_keys[p]] == 1]
    return _pick(nxt, cands) if cands else None


def _exist_question(nxt, objects, keys, counts, pairs, by_count):
    if nxt() < 0.5:
        key = _pick(nxt, keys)[_pick(nxt, _EXIST_PATTERNS)]
    else:
        key = _absent_key(nxt, keys, counts, _EXIST_PATTERNS)
        if key is None:
            return None
    count = counts[key]
    facts = _DESCR[key].copy()
    facts["count"] = count
    return (
        _pick(nxt, _EXIST_TEXTS[key]),
        "yes" if count else "no",
        "exist",
        facts,
    )


def _count_question(nxt, objects, keys, counts, pairs, by_count):
    target = _pick(nxt, _COUNT_TARGETS.get(len(keys), _COUNT_TARGETS[3]))
    if target == 0:
        key = _absent_key(nxt, keys, counts, _COUNT_Q_PATTERNS)
        if key is None:
            return None
    else:
        cands = by_count[target] if target < len(by_count) else None
        if not cands:
            return None
        key = _pick(nxt, cands)
    count = counts[key]
    facts = _DESCR[key].copy()
    facts["count"] = count
    return (
        _pick(nxt, _COUNT_TEXTS[key]),
        NUMBER_WORDS[count],
        "count",
        facts,
    )


def _attribute_question(attr: str, texts, patterns, nxt, objects, keys, counts):
    """A question "what ``attr`` is the ...?" (colour or shape) about one object, described
    so that no other object matches."""
    i = int(nxt() * len(keys))
    key = _unique_key(nxt, keys[i], counts, patterns)
    if key is None:
        return None
    return (
        _pick(nxt, texts[key]),
        getattr(objects[i], attr),
        attr,
        _DESCR[key].copy(),
    )


def _colour_question(nxt, objects, keys, counts, pairs, by_count):
    return _attribute_question("colour", _COLOUR_TEXTS, _NO_COLOUR, nxt, objects, keys, counts)


def _shape_question(nxt, objects, keys, counts, pairs, by_count):
    return _attribute_question("shape", _SHAPE_TEXTS, _NO_SHAPE, nxt, objects, keys, counts)


def _relation_question(nxt, objects, keys, counts, pairs, by_count):
    i, j, rels = _pick(nxt, pairs)
    key_b = _unique_key(nxt, keys[j], counts, _UNIQUE_ALL)
    if key_b is None:
        return None
    b = _pick(nxt, _SING[key_b])
    rel = _pick(nxt, rels)
    if nxt() < 0.6:  # "is the red circle left of the blue square?"
        key_a = _unique_key(nxt, keys[i], counts, _UNIQUE_ALL)
        if key_a is None:
            return None
        holds = nxt() < 0.5
        if not holds:  # the opposite of a clear relation is clearly false
            rel = _OPPOSITE[rel]
        a = _pick(nxt, _SING[key_a])
        text = "is the " + a + " " + _pick(nxt, RELATION_PHRASES[rel]) + " the " + b + "?"
        facts = {"a": _DESCR[key_a].copy(), "relation": rel, "b": _DESCR[key_b].copy()}
        facts["ask"] = "yes/no"
        return text, "yes" if holds else "no", "relation", facts
    # "what colour is the shape left of the blue square?": only if one object is there
    there = [p[0] for p in pairs if p[1] == j and rel in p[2]]
    if len(there) != 1:
        return None
    if nxt() < 0.5:
        ask, answer, noun = (
            "colour",
            objects[there[0]].colour,
            _pick(nxt, _ANY_NOUNS),
        )
    else:
        ask, answer, noun = "shape", objects[there[0]].shape, _pick(nxt, ("object", "thing"))
    text = f"what {ask} is the {noun} {_pick(nxt, RELATION_PHRASES[rel])} the {b}?"
    return text, answer, "relation", {"relation": rel, "b": _DESCR[key_b].copy(), "ask": ask}


# Family weights as repeats: exist 3, count 3, colour 2, shape 2, relation 3.
_BUILDERS = (_exist_question,) * 3 + (_count_question,) * 3 + (_colour_question,) * 2
_BUILDERS += (_shape_question,) * 2
_BUILDERS_SINGLE = _BUILDERS  # a scene without a related pair gets no relation question
_BUILDERS += (_relation_question,) * 3


def questions(
    rng: np.random.Generator,
    objects: list[WorldObject],
    *,
    n: int,
    margin: float,
) -> list[Question]:
    """``n`` questions about the scene with their answers, distinct when possible.

    Families: ``exist`` ("is there a green triangle?" -> yes/no, present and absent
    descriptions drawn half and half, absent ones mostly one attribute away from a present
    object), ``count`` ("how many red objects are there?" -> "zero".."three", the target
    count drawn first so answers spread over 0..3), ``colour`` and ``shape`` ("what colour
    is the square?", asked only of a description one object matches), and ``relation``
    ("is the red circle left of the blue square?" -> yes/no, or "what colour is the shape
    left of the blue square?" when exactly one object is there). Relations are clear ones
    only (centres more than ``margin`` apart on the axis).

    Each question's ``facts`` hold what it asks: the described ``size``/``colour``/
    ``shape`` (None = any) and, for exist and count, the true ``count``; for relation,
    ``relation``, ``b`` (and ``a`` for yes/no) descriptions and ``ask`` ("yes/no",
    "colour", "shape").

    Args:
        rng: the sample's generator.
        objects: 1 to 10 objects of the scene.
        n: number of questions (>= 1); repeated only if the scene allows too few.
        margin: pixels by which centres must differ for a relation to be asked about.
    """
    n = _check_n(n, "n")
    return _questions(rng, objects, _scene(objects, margin), n)


def _questions(rng, objects, scene, n: int) -> list[Question]:
    keys, counts, pairs = scene
    draws = rng.random(_BLOCK).tolist()
    nxt = draws.pop
    # keys by how many objects they match; a key matching c objects is listed c times,
    # so a pick from a list is uniform over its keys
    by_count: list[list[int]] = [[] for _ in range(len(keys) + 1)]
    for ks in keys:
        for k in ks:
            by_count[counts[k]].append(k)
    builders = _BUILDERS if pairs else _BUILDERS_SINGLE
    n_builders = len(builders)
    out: list[Question] = []
    seen = set()
    for _ in range(4 * n + 12):
        if len(draws) < _QUESTION_DRAWS:
            draws.extend(rng.random(_BLOCK).tolist())
        q = builders[int(nxt() * n_builders)](nxt, objects, keys, counts, pairs, by_count)
        if q is not None and q[0] not in seen:
            seen.add(q[0])
            out.append(Question(*q))
            if len(out) == n:
                return out
    # "how many objects are there?" can always be asked, so out is never empty here
    return [out[i % len(out)] for i in range(n)]


def scene_text(
    rng: np.random.Generator,
    objects: list[WorldObject],
    place: str,
    *,
    n_captions: int = 5,
    n_questions: int = 10,
    margin: float,
) -> tuple[list[str], list[Question]]:
    """Captions and questions of one scene: ``captions(...)`` then ``questions(...)``.

    Exactly what the two calls in that order return from the same generator, with the
    scene examined once (a few microseconds less per scene).
    """
    n_captions = _check_n(n_captions, "n_captions")
    n_questions = _check_n(n_questions, "n_questions")
    _check_place(place)
    scene = _scene(objects, margin)
    return _captions(rng, scene, place, n_captions), _questions(rng, objects, scene, n_questions)


# -------------------------------------------------------------------------------- parser


@dataclass(frozen=True)
class Mention:
    """One noun phrase of a caption.

    Attributes:
        count: None for "at least one" ("a red circle", "circles"); otherwise the exact
            number claimed: "two circles" -> 2, "no squares" -> 0, and "the square" -> 1
            (a definite description claims its referent is unique in the scene).
        size, colour, shape: vocabulary words, or None where the phrase does not say
            ("thing", "shape" and "object" leave the shape None).
    """

    count: int | None
    size: str | None
    colour: str | None
    shape: str | None


@dataclass
class CaptionFacts:
    """What a caption claims.

    Attributes:
        mentions: the noun phrases, in order.
        relations: ``(a, relation, b)`` with indices into ``mentions``: "A left of B".
        place: the place named (the first, if several), or None.
        unparsed: words the parser did not use: unknown words ("<unk>", typos), a second
            colour or size inside one noun phrase, modifiers without a noun, a second
            place. They are ignored by :func:`facts_hold`; a strict scorer can require
            this list to be empty.
    """

    mentions: list[Mention] = field(default_factory=list)
    relations: list[tuple[int, str, int]] = field(default_factory=list)
    place: str | None = None
    unparsed: list[str] = field(default_factory=list)


_DET, _SIZE, _COLOUR, _NOUN, _REL, _PLACE, _SKIP, _OTHER = range(8)
_LEXICON: dict[str, tuple[int, object]] = {}
_LEXICON.update({w: (_DET, None) for w in ("a", "an", "some", "any")})
_LEXICON.update({w: (_DET, i) for i, w in enumerate(NUMBER_WORDS)})
_LEXICON.update({str(i): (_DET, i) for i in range(len(NUMBER_WORDS))})
_LEXICON.update({"the": (_DET, 1), "no": (_DET, 0), "single": (_DET, 1)})
_LEXICON.update({w: (_SIZE, s) for s, ws in SIZE_WORDS.items() for w in ws})
_LEXICON.update({"tiny": (_SIZE, "small"), "huge": (_SIZE, "large")})
_LEXICON.update({c: (_COLOUR, c) for c in COLOURS})
_LEXICON.update({w: (_NOUN, sh) for sh in SHAPES for w in (sh, _plural(sh))})
_LEXICON.update({w: (_NOUN, None) for n_ in _ANY_NOUNS for w in (n_, _plural(n_))})
_LEXICON.update({"left": (_REL, "left of"), "right": (_REL, "right of")})
_LEXICON.update({w: (_REL, "above") for w in ("above", "over")})
_LEXICON.update({w: (_REL, "below") for w in ("below", "under", "beneath", "underneath")})
_PLACE_WORDS = {
    "beach": ("beach", "seaside", "shore", "coast"),
    "forest": ("forest", "woods", "wood", "trees"),
    "city": ("city", "street", "town"),
    "desert": ("desert", "dunes"),
    "snow": ("snow", "snowy"),
    "night": ("night", "dark", "nighttime"),
    "field": ("field", "meadow", "grassy", "grass"),
    "underwater": ("underwater", "seabed", "ocean", "sea"),
}
_LEXICON.update({w: (_PLACE, p) for p, ws in _PLACE_WORDS.items() for w in ws})
_FILLER = (
    "and also with is are there here we see can you of to on in at among deep which that it"
    " its next by"
).split()
_LEXICON.update({w: (_SKIP, None) for w in _FILLER})
# Nouns that are not objects: "the picture of circles" must not make "circles" definite.
_OTHER_NOUNS = "picture pictures image images photo photos scene scenes time ground landscape sand"
_LEXICON.update({w: (_OTHER, None) for w in _OTHER_NOUNS.split()})

_PUNCTUATION = str.maketrans({c: " " for c in ",.;:!?\"'()-"})
_NONE = object()  # no determiner seen yet


def caption_facts(text: str) -> CaptionFacts:
    """Parse a caption into the facts it claims (see :class:`CaptionFacts`).

    Reads this module's grammar and close paraphrases, word by word with no lookahead:
    a determiner or number ("a", "the", "two", "no", "3"), sizes and colours, then a
    noun closes a noun phrase; a relation word ("left", "above", "under") links the last
    noun phrase to the next one; a place word ("beach", "woods", "night") sets the place.
    Anything else goes to ``unparsed`` and is otherwise ignored, so any string parses.

    Example:
        ``caption_facts("the red circle is left of two big squares at night")`` gives
        mentions ``[Mention(1, None, "red", "circle"), Mention(2, "large", None,
        "square")]``, relations ``[(0, "left of", 1)]``, place ``"night"`` and nothing
        unparsed.
    """
    if not isinstance(text, str):
        raise ParameterError(f"text must be a string. Found: {text!r}")
    facts = CaptionFacts()
    mentions, unparsed = facts.mentions, facts.unparsed
    det = _NONE
    size = colour = None
    pending_words: list[str] = []  # modifiers waiting for their noun
    rel_from = None  # (mention index, relation) waiting for its second noun phrase

    for word in text.lower().translate(_PUNCTUATION).split():
        kind, value = _LEXICON.get(word, (-1, None))
        if kind == _NOUN:
            mentions.append(Mention(None if det is _NONE else det, size, colour, value))
            if rel_from is not None:
                facts.relations.append((rel_from[0], rel_from[1], len(mentions) - 1))
                rel_from = None
            det, size, colour, pending_words = _NONE, None, None, []
        elif kind == _SIZE or kind == _COLOUR:
            current = size if kind == _SIZE else colour
            if current is not None and current != value:
                unparsed.append(word)  # "a red blue circle": keep the first colour
                continue
            if kind == _SIZE:
                size = value
            else:
                colour = value
            pending_words.append(word)
        elif kind == _DET:
            unparsed.extend(pending_words)  # modifiers that never got a noun
            det, size, colour, pending_words = value, None, None, []
        elif kind == _REL or kind == _PLACE or kind == _OTHER:
            # "to the left of", "in the forest": a determiner here belonged to no noun
            unparsed.extend(pending_words)
            det, size, colour, pending_words = _NONE, None, None, []
            if kind == _REL:
                if mentions:
                    rel_from = (len(mentions) - 1, value)
                else:
                    unparsed.append(word)
            elif kind == _PLACE:
                if facts.place is None:
                    facts.place = value
                elif facts.place != value:
                    unparsed.append(word)
        elif kind == -1:
            unparsed.append(word)
    unparsed.extend(pending_words)
    return facts


_WORD_EDGES = ",.;:!?\"'()-"


def word_attribute(word: str) -> tuple[str, str] | None:
    """The attribute a single caption word names: ``("colour", c)``, ``("shape", s)`` or None.

    Reads the parser's own lexicon, so plurals count ("crosses" -> ``("shape", "cross")``)
    and every colour word of the vocabulary is found; words that name no particular
    colour or shape ("thing", "object", "big", "left") give None. Case and surrounding
    punctuation are ignored.

    Example:
        >>> word_attribute("Circles,"), word_attribute("red"), word_attribute("thing")
        (('shape', 'circle'), ('colour', 'red'), None)
    """
    if not isinstance(word, str):
        raise ParameterError(f"word must be a string. Found: {word!r}")
    kind, value = _LEXICON.get(word.lower().strip(_WORD_EDGES), (-1, None))
    if kind == _COLOUR:
        return ("colour", value)
    if kind == _NOUN and value is not None:
        return ("shape", value)
    return None


def word_attributes(words: Sequence[str]) -> dict[int, tuple[str, str, str]]:
    """The words of a vocabulary (``words[i]`` is word ``i``) that name a colour or a shape:
    ``{i: (group, attribute, value)}``, the groups ``colour``, ``shape`` and
    ``shape-plural`` (:class:`~xmodal.translation.ShowAttendTell`'s ``word_attributes``).

    Example:
        >>> found = word_attributes(["<pad>", "a", "red", "circle", "crosses"])
        >>> found[2], found[4], sorted(found)
        (('colour', 'colour', 'red'), ('shape-plural', 'shape', 'cross'), [2, 3, 4])
    """
    found = {}
    for i, word in enumerate(words):
        named = word_attribute(word)
        if named is not None:
            attr, value = named
            plural = attr == "shape" and word.lower().strip(_WORD_EDGES) != value
            found[i] = (attr + ("-plural" if plural else ""), attr, value)
    return found


def _matches(m: Mention, o: WorldObject) -> bool:
    return (
        (m.shape is None or m.shape == o.shape)
        and (m.colour is None or m.colour == o.colour)
        and (m.size is None or m.size == o.size)
    )


def facts_hold(
    facts: CaptionFacts, objects: list[WorldObject], place: str, *, margin: float
) -> bool:
    """Whether everything ``facts`` claims is true of the scene.

    Each mention must match as many objects as it claims (at least one for ``count=None``,
    exactly ``count`` otherwise); each relation must hold clearly (centres more than
    ``margin`` apart on its axis) between some object matching its first mention and
    another matching its second; a named place must be ``place``. Facts that claim
    nothing (no mention and no place, as parsed from "", "<unk>" or garbage) do not hold:
    an empty caption earns no credit. ``unparsed`` words are ignored.

    Args:
        facts: from :func:`caption_facts`.
        objects: the scene's objects (may be empty).
        place: the scene's place, one of ``schema.PLACES``.
        margin: pixels, as for :func:`captions`.
    """
    check_choice(place, "place", PLACES)
    check_positive_number(margin, "margin", allow_zero=True)
    if not isinstance(facts, CaptionFacts):
        raise ParameterError(f"facts must be a CaptionFacts. Found: {facts!r}")
    if not isinstance(objects, (list, tuple)) or not all(
        isinstance(o, WorldObject) for o in objects
    ):
        raise ParameterError(f"objects must be a list of WorldObjects. Found: {objects!r}")
    if not facts.mentions and facts.place is None:
        return False
    if facts.place is not None and facts.place != place:
        return False
    matching = []
    for m in facts.mentions:
        idx = [i for i, o in enumerate(objects) if _matches(m, o)]
        if (len(idx) == 0) if m.count is None else (len(idx) != m.count):
            return False
        matching.append(idx)
    for a, rel, b in facts.relations:
        if not any(
            i != j and rel in _clear_relations(objects[i], objects[j], margin)
            for i in matching[a]
            for j in matching[b]
        ):
            return False
    return True


# ------------------------------------------------------------------------------ answering

_ASK_WORDS = {"colour": "colour", "color": "colour", "shape": "shape"}


def _unique(mention: Mention, objects) -> int | None:
    idx = [i for i, o in enumerate(objects) if _matches(mention, o)]
    return idx[0] if len(idx) == 1 else None


def answer_question(question: Question | str, objects: list[WorldObject], *, margin: float) -> str:
    """The answer to a question of :func:`questions`' forms, worked out from the text.

    Reads "is there / can you see a X", "how many X", "what colour|shape is the X" (and
    "what is the colour of the X"), "is the X <relation> the Y" and "what colour|shape is
    the thing <relation> the Y". Answers as :func:`questions` does: yes/no, number words,
    colour and shape words.

    Raises:
        ParameterError: the question is not of these forms, or a "the" description does
            not pick out exactly one object.
    """
    text = question.question if isinstance(question, Question) else question
    if not isinstance(text, str):
        raise ParameterError(f"question must be a Question or a string. Found: {question!r}")
    _scene(objects, margin)  # validates both
    words = text.lower().translate(_PUNCTUATION).split()
    bad = ParameterError(f"question is not one this grammar asks or answers. Found: {text!r}")
    if words[:2] in (["is", "there"], ["can", "you"]) or words[:2] == ["how", "many"]:
        facts = caption_facts(" ".join(words[2:]))
        if not facts.mentions:
            raise bad
        m = facts.mentions[0]
        n = sum(_matches(m, o) for o in objects)
        if words[0] == "how":
            return NUMBER_WORDS[n]
        return "yes" if n else "no"
    if words[:2] == ["is", "the"]:
        facts = caption_facts(" ".join(words[1:]))
        if len(facts.mentions) != 2 or len(facts.relations) != 1:
            raise bad
        a, b = (_unique(m, objects) for m in facts.mentions)
        if a is None or b is None:
            raise bad
        holds = facts.relations[0][1] in _clear_relations(objects[a], objects[b], margin)
        return "yes" if holds else "no"
    ask = next((_ASK_WORDS[w] for w in words[:4] if w in _ASK_WORDS), None)
    if words[:1] not in (["what"], ["which"]) or ask is None:
        raise bad
    start = next(i for i, w in enumerate(words) if w in _ASK_WORDS) + 1
    facts = caption_facts(" ".join(words[start:]))
    if facts.relations:  # the thing <relation> the Y
        a, rel, b_index = facts.relations[0]
        b = _unique(facts.mentions[b_index], objects)
        if b is None:
            raise bad
        there = [
            i
            for i, o in enumerate(objects)
            if i != b
            and _matches(facts.mentions[a], o)
            and rel in _clear_relations(o, objects[b], margin)
        ]
        target = there[0] if len(there) == 1 else None
    else:
        target = _unique(facts.mentions[0], objects) if facts.mentions else None
    if target is None:
        raise bad
    return objects[target].colour if ask == "colour" else objects[target].shape


def question_referents(
    question: Question, objects: list[WorldObject], *, margin: float
) -> tuple[list[int], list[int]]:
    """Which objects a question of :func:`questions` is about, in the order a reader looks
    for them: ``(first, second)``, lists of indices into ``objects``.

    From the question's ``facts`` (the generator's record, not its text): for exist,
    count, colour and shape, both are the objects the description matches (none for "is
    there a purple square?" -> no); for "is the A <relation> the B?", ``([A], [B])``; for
    "what colour is the thing <relation> the B?", ``([B], [the thing])``: find B, then look
    beside it. Supervision for where a model looks (the two hops of a stacked-attention
    VQA model), and a check of it.

    Raises:
        ParameterError: ``question`` is not a :class:`Question` with its family's facts.
    """
    _scene(objects, margin)

    def matching(d: dict) -> list[int]:
        m = Mention(None, d["size"], d["colour"], d["shape"])
        return [i for i, o in enumerate(objects) if _matches(m, o)]

    facts = question.facts if isinstance(question, Question) else None
    try:
        if question.family != "relation":
            found = matching(facts)
            return found, list(found)
        b = matching(facts["b"])
        if facts["ask"] == "yes/no":
            return matching(facts["a"]), b
        rel = facts["relation"]
        there = [i for i, o in enumerate(objects) if len(b) == 1 and i != b[0]
                 and rel in _clear_relations(o, objects[b[0]], margin)]  # fmt: skip
        return b, there
    except (AttributeError, KeyError, TypeError) as e:
        raise ParameterError(
            f"question must be a world Question with its family's facts. Found: {question!r}"
        ) from e


def word_categories() -> dict[str, list[str]]:
    """The world's words of one kind: colours, shapes and sizes (both words of each size),
    e.g. for checking that word vectors put each word near words of its kind."""
    sizes = [w for words in SIZE_WORDS.values() for w in words]
    return {"colour": list(COLOURS), "shape": list(SHAPES), "size": sizes}


# ----------------------------------------------------------------------------- near misses

NEAR_MISS_KINDS = ("relation", "count", "binding", "attribute")
_FLIP = {"left": ("right",), "right": ("left",)}
_FLIP.update({w: ("below", "under", "beneath") for w in ("above", "over")})
_FLIP.update({w: ("above", "over") for w in ("below", "under", "beneath", "underneath")})
_COUNTED = {"a", "an", "the", "no", *NUMBER_WORDS}  # determiners a near miss may change
_SINGULAR = {_plural(n): n for n in (*SHAPES, *_ANY_NOUNS)}
_ALL_SIZE_WORDS = tuple(w for ws in SIZE_WORDS.values() for w in ws)


def _core(token: str) -> str:
    return token.strip(_WORD_EDGES)


def _put(tokens: list[str], j: int, word: str) -> None:
    """Token ``j`` says ``word`` instead, its punctuation kept ("cross," -> "circle,")."""
    core = _core(tokens[j])
    start = tokens[j].find(core)
    tokens[j] = tokens[j][:start] + word + tokens[j][start + len(core) :]


def _number(noun: str, plural: bool) -> str:
    """``noun`` (a shape or "thing"/"object"/"shape", either number) singular or plural."""
    singular = _SINGULAR.get(noun, noun)
    return _plural(singular) if plural else singular


def _near_miss_edits(
    tokens: list[str], rng: np.random.Generator, max_count: int
) -> dict[str, list]:
    """Every one-word edit of :func:`near_miss` for ``tokens`` by kind (those of
    :data:`NEAR_MISS_KINDS`), each a function that edits a copy in place; their values are
    drawn from ``rng`` when the edit is made. A count becomes "no" or a number up to
    ``max_count``."""
    kinds = [_LEXICON.get(_core(t), (-1, None)) for t in tokens]
    count_words = ("no", *NUMBER_WORDS[1 : max_count + 1])
    edits: dict[str, list] = {kind: [] for kind in NEAR_MISS_KINDS}

    def replace(j, options):
        return lambda ts: _put(ts, j, options[int(rng.integers(len(options)))])

    def noun_of(j):
        """The noun of the noun phrase determiner ``j`` opens, or None ("to the left")."""
        k = j + 1
        while k < len(kinds) and kinds[k][0] in (_SIZE, _COLOUR):
            k += 1
        return k if k < len(kinds) and kinds[k][0] == _NOUN else None

    def recount(j, noun):
        old = kinds[j][1]

        def edit(ts):
            counts = [w for w in count_words if _LEXICON[w][1] != old]
            word = counts[int(rng.integers(len(counts)))]
            plural = _LEXICON[word][1] != 1
            _put(ts, j, word)
            _put(ts, noun, _number(_core(ts[noun]), plural))
            for k in (j - 1, noun + 1):  # "there is a circle" -> "there are two circles"
                if 0 <= k < len(ts) and _core(ts[k]) in ("is", "are"):
                    _put(ts, k, "are" if plural else "is")

        return edit

    def swap(j, k):
        def edit(ts):
            a, b = _core(ts[j]), _core(ts[k])
            if kinds[j][0] == _NOUN:  # each position keeps its number
                j_plural, k_plural = a in _SINGULAR, b in _SINGULAR
                a, b = _number(a, k_plural), _number(b, j_plural)
            _put(ts, j, b)
            _put(ts, k, a)

        return edit

    for j, (kind, value) in enumerate(kinds):
        word = _core(tokens[j])
        if word in _FLIP:
            edits["relation"].append(replace(j, _FLIP[word]))
        elif kind == _DET and word in _COUNTED and noun_of(j) is not None:
            edits["count"].append(recount(j, noun_of(j)))
        elif kind == _COLOUR:
            edits["attribute"].append(replace(j, tuple(c for c in COLOURS if c != value)))
        elif kind == _SIZE:
            sizes = tuple(w for w in _ALL_SIZE_WORDS if _LEXICON[w][1] != value)
            edits["attribute"].append(replace(j, sizes))
        elif kind == _NOUN and value is not None:
            plural = word in _SINGULAR
            shapes = tuple(_number(s, plural) for s in SHAPES if s != value)
            edits["attribute"].append(replace(j, shapes))
        for k in range(j):  # two colours or two shapes trade places
            if kind in (_COLOUR, _NOUN) and kinds[k][0] == kind:
                if value is not None and kinds[k][1] not in (None, value):
                    edits["binding"].append(swap(k, j))
    return edits


def _articles(tokens: list[str]) -> None:
    """Each "a" / "an" agrees with the word after it."""
    for j in range(len(tokens) - 1):
        if _core(tokens[j]) in ("a", "an"):
            _put(tokens, j, "an" if _core(tokens[j + 1])[:1] in "aeiou" else "a")


def near_miss(
    text: str,
    objects: list[WorldObject],
    place: str,
    rng: np.random.Generator,
    *,
    margin: float,
    max_count: int = 3,
    tries: int = 8,
) -> str | None:
    """A caption one word away from ``text`` that is false of the scene: a hard negative,
    as NegCLIP makes them (Yuksekgonul et al., 2023, "When and why vision-language models
    behave like bags-of-words"), checked against the scene by :func:`facts_hold`.

    The edits: a relation reversed ("left" -> "right", "over" -> "under"), a count changed
    ("two circles" -> "three circles", "a circle" -> "no circles"; up to ``max_count``, the
    most objects a scene has, so no edit says a number no true caption says), a colour,
    size or shape replaced, or two colours or two shapes traded between noun phrases (what goes with
    what). Articles and the changed noun's number follow the edit. Up to ``tries`` edits
    are made until one is false, each of a kind drawn uniformly from those the caption
    allows (a caption has many more words to replace than relations to reverse), then
    uniformly within it; None if none is false (a caption with nothing to edit: "we see a
    picture").

    Example:
        >>> objs = [WorldObject("circle", "red", "large", 10, 20, 10),
        ...         WorldObject("square", "blue", "small", 45, 40, 6)]
        >>> rng = np.random.default_rng(0)
        >>> miss = near_miss("a red circle left of a blue square", objs, "beach", rng,
        ...                  margin=6.4)
        >>> facts_hold(caption_facts(miss), objs, "beach", margin=6.4)
        False
    """
    if not isinstance(text, str):
        raise ParameterError(f"text must be a string. Found: {text!r}")
    _check_place(place)
    tries = check_positive_int(tries, "tries")
    max_count = check_positive_int(max_count, "max_count")
    if max_count >= len(NUMBER_WORDS):
        raise ParameterError(f"max_count must be < {len(NUMBER_WORDS)}. Found: {max_count}")
    tokens = text.lower().split()
    edits = _near_miss_edits(tokens, rng, max_count)
    for _ in range(tries):
        kinds = [kind for kind in NEAR_MISS_KINDS if edits[kind]]
        if not kinds:
            break
        left = edits[kinds[int(rng.integers(len(kinds)))]]
        edited = list(tokens)
        left.pop(int(rng.integers(len(left))))(edited)
        _articles(edited)
        miss = " ".join(edited)
        facts = caption_facts(miss)  # that claims something, and something false
        if (facts.mentions or facts.place) and not facts_hold(facts, objects, place, margin=margin):
            return miss
    return None


def near_miss_kind(text: str, miss: str) -> str:
    """Which edit of :func:`near_miss` turned ``text`` into ``miss``: ``"relation"``
    (reversed), ``"count"``, ``"binding"`` (two colours or shapes traded: what goes with
    what) or ``"attribute"`` (a colour, size or shape replaced).

    Example:
        >>> near_miss_kind("a red circle left of a blue square",
        ...                "a blue circle left of a red square")
        'binding'
    """
    old, new = text.split(), miss.split()
    if len(old) != len(new):
        raise ParameterError(f"{miss!r} is not a near miss of {text!r} (another length)")
    changed = [(_core(a), _core(b)) for a, b in zip(old, new, strict=True) if a != b]
    kinds = {_LEXICON.get(a, (-1, None))[0] for a, _ in changed}
    if _REL in kinds:
        return "relation"
    articles = {"a", "an"}  # "a" -> "an" follows another edit
    if any(_LEXICON.get(a, (-1, None))[0] == _DET and {a, b} != articles for a, b in changed):
        return "count"
    traded = [(a, b) for a, b in changed if _LEXICON.get(a, (-1, None))[0] in (_COLOUR, _NOUN)]
    if len(traded) == 2 and traded[0][0] == _number(traded[1][1], traded[0][0] in _SINGULAR):
        return "binding"
    if not changed:
        raise ParameterError(f"{miss!r} is not a near miss of {text!r} (the same words)")
    return "attribute"
