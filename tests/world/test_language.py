"""Captions, questions and the caption parser of xmodal.world.language.

Scenes are built here (random attributes, non-overlapping objects whose centres differ by
more than the margin on x or y, on a 64-pixel canvas), and every answer is re-derived
from the objects with this file's own matcher and ``schema.relation``, not the module's.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from xmodal.errors import ParameterError
from xmodal.world.language import (
    PLACE_PHRASES,
    RELATION_PHRASES,
    SIZE_WORDS,
    CaptionFacts,
    Mention,
    answer_question,
    caption_facts,
    captions,
    facts_hold,
    near_miss,
    near_miss_kind,
    question_referents,
    questions,
    scene_text,
)
from xmodal.world.schema import COLOURS, PLACES, SHAPES, SIZES, Question, WorldObject, relation

SIDE = 64
MARGIN = 0.1 * SIDE
NUMBERS = ("zero", "one", "two", "three")


def make_scene(rng: np.random.Generator, m: int) -> list[WorldObject]:
    """m objects with random attributes, apart, each pair clearly related on x or y."""
    while True:
        objs: list[WorldObject] = []
        for _ in range(200):
            size = list(SIZES)[rng.integers(len(SIZES))]
            r = SIZES[size][0] * SIDE
            x, y = rng.uniform(r, SIDE - r, size=2)
            if all(
                np.hypot(x - o.x, y - o.y) > r + o.radius
                and (abs(x - o.x) > MARGIN or abs(y - o.y) > MARGIN)
                for o in objs
            ):
                shape = list(SHAPES)[rng.integers(len(SHAPES))]
                colour = list(COLOURS)[rng.integers(len(COLOURS))]
                objs.append(WorldObject(shape, colour, size, float(x), float(y), r))
                if len(objs) == m:
                    return objs


def scenes(count: int, seed: int):
    """(objects, place) for `count` scenes of 1, 2 and 3 objects in turn."""
    rng = np.random.default_rng(seed)
    return [(make_scene(rng, 1 + i % 3), PLACES[rng.integers(len(PLACES))]) for i in range(count)]


def matching(objs, descr: dict) -> list[WorldObject]:
    return [o for o in objs if all(descr[k] is None or getattr(o, k) == descr[k] for k in descr)]


def one(objs, descr: dict) -> WorldObject:
    found = matching(objs, descr)
    assert len(found) == 1, f"{descr} is not unique in {objs}"
    return found[0]


@pytest.fixture(scope="module")
def many_scenes():
    return scenes(2000, seed=7)


# ---------------------------------------------------------------------------- captions


def test_every_caption_parses_fully_and_is_true_of_its_scene(many_scenes):
    rng = np.random.default_rng(0)
    for objs, place in many_scenes[:600]:
        for text in captions(rng, objs, place, n=5, margin=MARGIN):
            facts = caption_facts(text)
            assert facts.unparsed == [], text
            assert facts.mentions, text
            assert facts_hold(facts, objs, place, margin=MARGIN), (text, objs, place)


def test_a_caption_with_a_unique_colour_is_false_once_that_colour_changes(many_scenes):
    rng = np.random.default_rng(1)
    falsified = 0
    for objs, place in many_scenes[:600]:
        colours = Counter(o.colour for o in objs)
        target = next(o for o in objs)
        if colours[target.colour] != 1:
            continue
        new_colour = next(c for c in COLOURS if c not in colours)
        changed = [dataclasses.replace(target, colour=new_colour)] + objs[1:]
        for text in captions(rng, objs, place, n=5, margin=MARGIN):
            facts = caption_facts(text)
            if any(m.colour == target.colour and m.count != 0 for m in facts.mentions):
                # a claim that something of the old colour is there ("a red ...", "the
                # red ...", not "no red ...") was about the target alone, and now fails
                assert not facts_hold(facts, changed, place, margin=MARGIN), text
                falsified += 1
    assert falsified > 300


def test_captions_are_mostly_false_of_another_scene(many_scenes):
    rng = np.random.default_rng(2)
    false = total = 0
    for (objs, place), (other, other_place) in zip(
        many_scenes[:500], many_scenes[500:1000], strict=True
    ):
        for text in captions(rng, objs, place, n=5, margin=MARGIN):
            total += 1
            false += not facts_hold(caption_facts(text), other, other_place, margin=MARGIN)
    # measured about 0.95: a caption names specific attributes, counts and places
    assert false / total > 0.85


def test_captions_are_varied_within_a_scene(many_scenes):
    rng = np.random.default_rng(3)
    for objs, place in many_scenes[:300]:
        got = captions(rng, objs, place, n=8, margin=MARGIN)
        assert len(got) == 8
        assert len(set(got)) == 8, got
    # the grammar has many more than 20 captions for a 2-object scene
    objs, place = many_scenes[1]
    assert len(objs) == 2
    many = set()
    for _ in range(20):
        many.update(captions(rng, objs, place, n=10, margin=MARGIN))
    assert len(many) >= 100


def test_captions_cover_the_vocabulary():
    rng = np.random.default_rng(4)
    words: Counter = Counter()
    texts = []
    for objs, place in scenes(500, seed=11):
        for text in captions(rng, objs, place, n=5, margin=MARGIN):
            texts.append(text)
            words.update(text.split())
    for word in [*SHAPES, *COLOURS, *(w for ws in SIZE_WORDS.values() for w in ws)]:
        assert words[word] + words[word + "s"] + words[word + "es"] > 0, word
    for word in ("object", "shape", "thing", "one", "two", "three", "no", "the", "there"):
        assert words[word] > 0, word
    joined = "\n".join(texts)
    for phrases in RELATION_PHRASES.values():
        for phrase in phrases:
            assert f" {phrase} " in joined, phrase
    for phrases in PLACE_PHRASES.values():
        for phrase in phrases:
            assert any(t.endswith(" " + phrase) or t.startswith(phrase + ", ") for t in texts), (
                phrase
            )


def test_every_place_phrasing_parses_to_its_place():
    for place, phrases in PLACE_PHRASES.items():
        for phrase in phrases:
            facts = caption_facts(f"a red circle {phrase}")
            assert facts.place == place, phrase
            assert facts.mentions == [Mention(None, None, "red", "circle")]
            assert facts.unparsed == []


def test_relations_are_stated_only_when_clear():
    # x differs by less than the margin, y by more: only above/below may be said
    objs = [
        WorldObject("circle", "red", "small", 30.0, 10.0, 5.76),
        WorldObject("square", "blue", "small", 30.0 + 0.5 * MARGIN, 40.0, 5.76),
    ]
    rng = np.random.default_rng(5)
    said = set()
    for _ in range(200):
        for text in captions(rng, objs, "beach", n=5, margin=MARGIN):
            said.update(r for _, r, _ in caption_facts(text).relations)
    assert said == {"above", "below"}


def test_a_scene_without_clear_pairs_gets_no_relations():
    objs = [
        WorldObject("circle", "red", "small", 30.0, 30.0, 5.76),
        WorldObject("square", "blue", "small", 31.0, 32.0, 5.76),
    ]
    rng = np.random.default_rng(6)
    for _ in range(50):
        for text in captions(rng, objs, "city", n=5, margin=MARGIN):
            assert caption_facts(text).relations == []
        for q in questions(rng, objs, n=10, margin=MARGIN):
            assert q.family != "relation"


def test_same_seed_same_text_other_seed_other_text(many_scenes):
    differs = 0
    for k, (objs, place) in enumerate(many_scenes[:50]):
        a = np.random.default_rng([k, 1])
        b = np.random.default_rng([k, 1])
        c = np.random.default_rng([k, 2])
        ca, qa = captions(a, objs, place, margin=MARGIN), questions(a, objs, n=10, margin=MARGIN)
        cb, qb = captions(b, objs, place, margin=MARGIN), questions(b, objs, n=10, margin=MARGIN)
        assert ca == cb
        assert [(q.question, q.answer, q.facts) for q in qa] == [
            (q.question, q.answer, q.facts) for q in qb
        ]
        differs += captions(c, objs, place, margin=MARGIN) != ca
    assert differs >= 45


def test_scene_text_is_captions_then_questions(many_scenes):
    for k, (objs, place) in enumerate(many_scenes[:100]):
        a, b = np.random.default_rng(k), np.random.default_rng(k)
        caps, qs = scene_text(a, objs, place, n_captions=4, n_questions=7, margin=MARGIN)
        assert caps == captions(b, objs, place, n=4, margin=MARGIN)
        assert qs == questions(b, objs, n=7, margin=MARGIN)
        assert a.random() == b.random()  # and the generator is left in the same state


def test_larger_scenes_and_more_text_than_the_scene_allows():
    rng = np.random.default_rng(12)
    # five objects on a grid, 24 px apart: wider than the world draws, still valid
    objs = [
        WorldObject(
            list(SHAPES)[rng.integers(5)], "red", list(SIZES)[i % 2], 12.0 + 24 * i, 20.0, 10.24
        )
        for i in range(5)
    ]
    for _ in range(20):
        for text in captions(rng, objs, "snow", n=10, margin=MARGIN):
            facts = caption_facts(text)
            assert facts.unparsed == [] and facts_hold(facts, objs, "snow", margin=MARGIN), text
        for q in questions(rng, objs, n=10, margin=MARGIN):
            assert answer_question(q, objs, margin=MARGIN) == q.answer, q
    # one small red circle has few distinct questions; n is still met
    lone = [WorldObject("circle", "red", "small", 30.0, 30.0, 5.76)]
    qs = questions(rng, lone, n=200, margin=MARGIN)
    assert len(qs) == 200 and len({q.question for q in qs}) > 50
    assert all(q.answer == answer_question(q, lone, margin=MARGIN) for q in qs)


# --------------------------------------------------------------------------- questions


def expected_answer(q, objs) -> str:
    """The answer worked out from the question's facts and the objects, independently."""
    f = q.facts
    if q.family in ("exist", "count"):
        found = matching(objs, {k: f[k] for k in ("size", "colour", "shape")})
        assert f["count"] == len(found)
        if q.family == "exist":
            return "yes" if found else "no"
        return NUMBERS[len(found)]
    if q.family in ("colour", "shape"):
        return getattr(one(objs, f), q.family)
    b = one(objs, f["b"])
    if f["ask"] == "yes/no":
        a = one(objs, f["a"])
        holds = relation(a, b, margin=MARGIN)
        opposite = {"left of": "right of", "right of": "left of", "above": "below"}
        opposite["below"] = "above"
        # asked only where the answer is clear either way
        assert f["relation"] in holds or opposite[f["relation"]] in holds
        return "yes" if f["relation"] in holds else "no"
    there = [o for o in objs if o is not b and f["relation"] in relation(o, b, margin=MARGIN)]
    assert len(there) == 1
    return getattr(there[0], f["ask"])


def check_text_matches_facts(q) -> None:
    words = set(q.question.rstrip("?").split())
    f = q.facts
    descrs = [f] if q.family != "relation" else [f["b"], *([f["a"]] if "a" in f else [])]
    for d in descrs:
        if d["colour"] is not None:
            assert d["colour"] in words, q
        if d["shape"] is not None:
            assert d["shape"] in words or d["shape"] + "s" in words or "crosses" in words, q
        if d["size"] is not None:
            assert words & set(SIZE_WORDS[d["size"]]), q
    if q.family == "colour":
        assert not words & set(COLOURS), q  # the question does not give the answer away
    if q.family == "shape":
        assert not words & set(SHAPES), q


def test_every_answer_is_right(many_scenes):
    rng = np.random.default_rng(8)
    for objs, _ in many_scenes:
        qs = questions(rng, objs, n=10, margin=MARGIN)
        assert len(qs) == 10
        assert len({q.question for q in qs}) == 10  # distinct
        for q in qs:
            assert q.answer == expected_answer(q, objs), q
            check_text_matches_facts(q)
            assert answer_question(q, objs, margin=MARGIN) == q.answer, q
            assert q.question.endswith("?") and q.question == q.question.lower()


def test_question_referents_are_what_each_answer_is_read_from(many_scenes):
    rng = np.random.default_rng(9)
    kinds = Counter()
    for objs, _ in many_scenes[:600]:
        for q in questions(rng, objs, n=10, margin=MARGIN):
            first, second = question_referents(q, objs, margin=MARGIN)
            kind = q.facts.get("ask", q.family)
            kinds[kind] += 1
            if q.family in ("exist", "count"):
                assert first == second and len(first) == q.facts["count"], q
                assert all(
                    objs[i] in matching(objs, {k: q.facts[k] for k in ("size", "colour", "shape")})
                    for i in first
                )
            elif q.family in ("colour", "shape"):
                assert first == second and len(first) == 1, q
                assert getattr(objs[first[0]], q.family) == q.answer, q
            elif kind == "yes/no":  # first A, then B; the answer is their relation
                assert len(first) == len(second) == 1 and first != second, q
                holds = q.facts["relation"] in relation(
                    objs[first[0]], objs[second[0]], margin=MARGIN
                )
                assert ("yes" if holds else "no") == q.answer, q
            else:  # first B, then the thing beside it, whose colour or shape is the answer
                assert len(first) == len(second) == 1 and first != second, q
                assert objs[first[0]] is one(objs, q.facts["b"])
                assert getattr(objs[second[0]], kind) == q.answer, q
    assert set(kinds) == {"exist", "count", "colour", "shape", "yes/no"}  # every kind seen


def test_question_referents_of_a_hand_built_scene():
    objs = [WorldObject("circle", "red", "large", 10, 20, 10),
            WorldObject("square", "blue", "small", 45, 40, 6)]  # fmt: skip
    red_circle = {"size": None, "colour": "red", "shape": "circle"}
    blue = {"size": None, "colour": "blue", "shape": None}
    yes_no = {"a": red_circle, "relation": "left of", "b": blue, "ask": "yes/no"}
    beside = {"relation": "right of", "b": red_circle, "ask": "colour"}
    purple = {"size": None, "colour": "purple", "shape": None, "count": 0}
    cases = [
        (
            Question("is the red circle left of the blue thing?", "yes", "relation", yes_no),
            ([0], [1]),
        ),
        (
            Question(
                "what colour is the thing right of the red circle?", "blue", "relation", beside
            ),
            ([0], [1]),
        ),
        (Question("is there a purple thing?", "no", "exist", purple), ([], [])),
        (Question("what shape is the blue thing?", "square", "shape", blue), ([1], [1])),
    ]
    for q, expected in cases:
        assert question_referents(q, objs, margin=MARGIN) == expected
    with pytest.raises(ParameterError, match="is the red circle"):
        question_referents("is the red circle left of the blue thing?", objs, margin=MARGIN)
    with pytest.raises(ParameterError, match="facts"):
        question_referents(Question("is there a thing?", "yes", "exist", {}), objs, margin=MARGIN)


def test_answers_are_balanced(many_scenes):
    rng = np.random.default_rng(9)
    answers: dict[str, Counter] = {
        f: Counter() for f in ("exist", "count", "colour", "shape", "relation")
    }
    for objs, _ in many_scenes:
        for q in questions(rng, objs, n=10, margin=MARGIN):
            answers[q.family][q.answer] += 1
    yes_no = answers["exist"] + Counter(
        {a: c for a, c in answers["relation"].items() if a in ("yes", "no")}
    )
    for counter in (yes_no, answers["exist"]):
        assert 0.4 <= counter["yes"] / (counter["yes"] + counter["no"]) <= 0.6, counter
    rel = answers["relation"]
    assert 0.4 <= rel["yes"] / (rel["yes"] + rel["no"]) <= 0.6, rel
    counts = answers["count"]
    assert set(counts) == set(NUMBERS), counts
    for word in NUMBERS:
        assert counts[word] / counts.total() >= 0.1, counts
    assert set(answers["colour"]) == set(COLOURS)
    assert set(answers["shape"]) == set(SHAPES)
    # "what colour is the shape left of ...": both kinds of relation answer occur
    assert set(rel) & set(COLOURS) and set(rel) & set(SHAPES)
    families = {f: c.total() for f, c in answers.items()}
    assert min(families.values()) / sum(families.values()) > 0.1, families


# ------------------------------------------------------------------------------ parser


def test_parser_reads_a_caption_exactly():
    facts = caption_facts("The red circle is left of two BIG squares, at night.")
    assert facts == CaptionFacts(
        mentions=[Mention(1, None, "red", "circle"), Mention(2, "large", None, "square")],
        relations=[(0, "left of", 1)],
        place="night",
        unparsed=[],
    )
    facts = caption_facts("there are no little green crosses and a thing under a purple diamond")
    assert facts.mentions == [
        Mention(0, "small", "green", "cross"),
        Mention(None, None, None, None),
        Mention(None, None, "purple", "diamond"),
    ]
    assert facts.relations == [(1, "below", 2)]
    # a determiner before a non-object noun does not reach the next noun phrase
    assert caption_facts("the picture of circles").mentions == [Mention(None, None, None, "circle")]


def test_facts_hold_follows_the_counting_rules():
    objs = [
        WorldObject("circle", "red", "large", 10.0, 10.0, 10.24),
        WorldObject("circle", "blue", "small", 40.0, 12.0, 5.76),
        WorldObject("square", "red", "small", 40.0, 50.0, 5.76),
    ]

    def holds(text, place="beach"):
        return facts_hold(caption_facts(text), objs, place, margin=MARGIN)

    assert holds("a circle") and holds("two circles") and holds("a red circle")
    assert not holds("one circle") and not holds("three circles")
    assert not holds("the circle")  # two circles: "the" would not pick one out
    assert holds("the red circle") and holds("the square") and holds("three shapes")
    assert holds("no triangles") and not holds("no squares")
    assert holds("the red circle is left of the blue circle")
    assert not holds("the red circle is right of the blue circle")
    # dy between the circles is 2 px, under the margin: neither above nor below is clear
    assert not holds("the red circle is above the blue circle")
    assert not holds("the red circle is below the blue circle")
    assert holds("a circle above a square") and not holds("a square above a circle")
    assert holds("a red circle on the beach") and not holds("a red circle in the forest")
    assert not holds("a green circle") and not holds("a big square")


@pytest.mark.parametrize(
    "text",
    ["", "   ", "<unk>", "<unk> <unk> <unk>", "!!! ???", "the the the", "and of to", "left of"],
)
def test_garbage_parses_to_nothing_and_does_not_hold(text):
    facts = caption_facts(text)
    assert facts.mentions == [] and facts.relations == [] and facts.place is None
    objs = [WorldObject("circle", "red", "large", 10.0, 10.0, 10.24)]
    assert facts_hold(facts, objs, "beach", margin=MARGIN) is False


@pytest.mark.parametrize(
    ("text", "holds", "unparsed"),
    [
        ("circle circle circle", True, []),
        ("<unk> red <unk> circle <unk>", True, ["<unk>", "<unk>", "<unk>"]),
        ("a red red red circle", True, []),
        ("a red blue circle", True, ["blue"]),  # the first colour counts
        ("a red", False, ["red"]),  # modifiers without a noun claim nothing
        ("a red circle left of", True, []),  # a relation without its second phrase
        ("a red circle on the beach in the forest", True, ["forest"]),
        ("a red circle left of <unk> left of a square", False, ["<unk>"]),
    ],
)
def test_model_like_output_parses_safely(text, holds, unparsed):
    objs = [WorldObject("circle", "red", "large", 10.0, 10.0, 10.24)]
    facts = caption_facts(text)
    assert facts.unparsed == unparsed
    assert facts_hold(facts, objs, "beach", margin=MARGIN) is holds


def test_answer_question_reads_paraphrases_and_rejects_others():
    objs = [
        WorldObject("circle", "red", "large", 10.0, 10.0, 10.24),
        WorldObject("square", "blue", "small", 40.0, 50.0, 5.76),
    ]
    ask = lambda text: answer_question(text, objs, margin=MARGIN)  # noqa: E731
    assert ask("Is there a big red circle?") == "yes"
    assert ask("can you see a green circle") == "no"
    assert ask("how many shapes are there?") == "two"
    assert ask("What color is the square?") == "blue"
    assert ask("which shape is the little thing?") == "square"
    assert ask("is the circle above the square?") == "yes"
    assert ask("is the square to the left of the circle?") == "no"
    assert ask("what shape is the object below the red circle?") == "square"
    for bad in ("", "hello there", "what colour is the triangle?", "what colour is the shape?"):
        with pytest.raises(ParameterError, match="question"):
            ask(bad)


# -------------------------------------------------------------------------- near misses


def test_near_misses_are_false_of_the_scene_and_one_edit_away():
    rng = np.random.default_rng(3)
    made = total = 0
    for objs, place in scenes(300, seed=11):
        for text in captions(rng, objs, place, n=5, margin=MARGIN):
            miss = near_miss(text, objs, place, rng, margin=MARGIN)
            total += 1
            if miss is None:
                continue
            made += 1
            assert not facts_hold(caption_facts(miss), objs, place, margin=MARGIN), miss
            old, new = text.split(), miss.split()
            assert len(old) == len(new)
            # One word, or two traded, plus the article, the noun's number and "is"/"are".
            changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
            assert 1 <= len(changed) <= 4, (text, miss)
            assert not any(
                w == "a" and n[:1] in "aeiou" for w, n in zip(new, new[1:], strict=False)
            ), miss
            assert caption_facts(miss).unparsed == caption_facts(text).unparsed
    assert made >= 0.95 * total


def test_near_miss_edits_relations_counts_and_bindings():
    objs = [WorldObject("circle", "red", "large", 10.0, 20.0, 10.24),
            WorldObject("square", "blue", "small", 45.0, 40.0, 6.4)]  # fmt: skip
    text = "a red circle to the left of a blue square"  # "the" opens no noun phrase
    assert facts_hold(caption_facts(text), objs, "beach", margin=MARGIN)
    misses = {near_miss(text, objs, "beach", np.random.default_rng(s), margin=MARGIN)
              for s in range(200)}  # fmt: skip
    assert "a red circle to the right of a blue square" in misses  # the relation reversed
    assert "a blue circle to the left of a red square" in misses  # colours traded
    assert "a red square to the left of a blue circle" in misses  # shapes traded
    assert "no red circles to the left of a blue square" in misses  # a count changed
    assert "an orange circle to the left of a blue square" in misses  # the article follows
    two = [WorldObject("circle", "red", "large", 10.0, 20.0, 10.24),
           WorldObject("circle", "red", "large", 45.0, 40.0, 10.24)]  # fmt: skip
    counts = {near_miss("there are two circles", two, "city", np.random.default_rng(s),
                        margin=MARGIN) for s in range(200)}  # fmt: skip
    assert {"there is one circle", "there are three circles", "there are no circles"} <= counts
    assert not any("four" in c for c in counts)  # no scene has more than max_count=3
    assert "there are four circles" in {
        near_miss("there are two circles", two, "city", np.random.default_rng(s), margin=MARGIN,
                  max_count=4) for s in range(200)}  # fmt: skip
    kinds = {
        "a red circle to the right of a blue square": "relation",
        "a blue circle to the left of a red square": "binding",
        "a red square to the left of a blue circle": "binding",
        "no red circles to the left of a blue square": "count",
        "an orange circle to the left of a blue square": "attribute",
    }
    assert {miss: near_miss_kind(text, miss) for miss in kinds} == kinds
    with pytest.raises(ParameterError, match="not a near miss.*another length"):
        near_miss_kind(text, "a red circle")
    # "the" of "to the left of" opens no noun phrase: it is never recounted.
    assert not any("two left" in m or "no left" in m for m in misses)
    # Nothing to edit that makes it false: no near miss.
    assert near_miss("we see a picture", objs, "beach", np.random.default_rng(0),
                     margin=MARGIN) is None  # fmt: skip
    with pytest.raises(ParameterError, match="text must be a string"):
        near_miss(3, objs, "beach", np.random.default_rng(0), margin=MARGIN)
    with pytest.raises(ParameterError, match="place.*'moon'"):
        near_miss(text, objs, "moon", np.random.default_rng(0), margin=MARGIN)


# -------------------------------------------------------------------------- bad input


def test_bad_input_raises_parameter_error_naming_the_value():
    rng = np.random.default_rng(0)
    objs = [WorldObject("circle", "red", "large", 10.0, 10.0, 10.24)]
    with pytest.raises(ParameterError, match="place.*'moon'"):
        captions(rng, objs, "moon", margin=MARGIN)
    with pytest.raises(ParameterError, match="n must .* 0"):
        captions(rng, objs, "beach", n=0, margin=MARGIN)
    with pytest.raises(ParameterError, match="n must .* 2.5"):
        questions(rng, objs, n=2.5, margin=MARGIN)
    with pytest.raises(ParameterError, match=r"objects must .*\[\]"):
        captions(rng, [], "beach", margin=MARGIN)
    with pytest.raises(ParameterError, match=r"objects must .*\[\]"):
        questions(rng, [], n=3, margin=MARGIN)
    with pytest.raises(ParameterError, match="'pink'"):
        captions(rng, [dataclasses.replace(objs[0], colour="pink")], "beach", margin=MARGIN)
    with pytest.raises(ParameterError, match="WorldObjects.*'circle'"):
        questions(rng, ["circle"], n=3, margin=MARGIN)
    with pytest.raises(ParameterError, match="margin.*-1"):
        questions(rng, objs, n=3, margin=-1.0)
    with pytest.raises(ParameterError, match="margin.*nan"):
        captions(rng, objs, "beach", margin=float("nan"))
    with pytest.raises(ParameterError, match="place.*'mars'"):
        facts_hold(caption_facts("a circle"), objs, "mars", margin=MARGIN)
    with pytest.raises(ParameterError, match="text must be a string.*None"):
        caption_facts(None)
    with pytest.raises(ParameterError, match="n_questions must .* -3"):
        scene_text(rng, objs, "beach", n_questions=-3, margin=MARGIN)
