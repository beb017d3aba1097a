"""Questions grouped by image: the world's scenes hold the questions of its VQA view in
its order, the answer classes are the most frequent answers and keep their file's bytes,
a run's vocabularies round-trip through its folder, the figures' questions take the
families in turn, out-of-vocabulary words are named, and a question of no words is
refused."""

from __future__ import annotations

import json

import pytest
import torch

from xmodal.data.questions import (
    QuestionSplit,
    QuestionVocabulary,
    figure_questions,
    load_answers,
    save_answers,
    top_answers,
    unknown_words,
    world_questions,
)
from xmodal.errors import DataError, ParameterError
from xmodal.metrics.vqa import normalize_answer
from xmodal.text.vocab import Vocabulary
from xmodal.world import World
from xmodal.world.datasets import make_dataset


def test_world_scenes_hold_the_questions_of_the_vqa_view():
    view = make_dataset(World(seed=0), "vqa", "val", size=25)
    split = world_questions(view)
    assert [len(g) for g in split.groups] == [10, 10, 5]  # the last scene is cut at 25
    assert len(split) == 3
    for i in range(25):
        item = view[i]
        assert split.questions[i] == item["question"]
        assert split.answers[i] == [item["answer"]] * 10
        assert split.families[i] == item["family"]
    torch.testing.assert_close(split.image(2), view[20]["image"])


def _split(answers: list[list[str]]) -> QuestionSplit:
    n = len(answers)
    return QuestionSplit(["q"] * n, answers, ["all"] * n, [list(range(n))], None, [0])


def test_top_answers_rank_by_count_then_name():
    split = _split([["yes"] * 10, ["no"] * 10, ["yes"] * 10, ["two"] * 10, ["b"] * 10])
    assert top_answers(split, 3) == (["yes", "b", "no"], "yes")  # one count per question
    # normalised, every human answer counts: "two" and "2" are one class
    split = _split([["two"] * 6 + ["2"] * 4, ["Yes."] * 9 + [""]])
    assert top_answers(split, 5, normalize=normalize_answer) == (["2", "yes"], "2")
    with pytest.raises(DataError, match="have no answers"):
        top_answers(_split([[""] * 10]), 5)


def test_the_answers_file_round_trips_with_its_bytes(tmp_path):
    path = save_answers(tmp_path / "answers.json", ["yes", "no"], "yes")
    assert path.read_bytes() == json.dumps({"answers": ["yes", "no"], "majority": "yes"},
                                           indent=1).encode()  # fmt: skip
    assert load_answers(path) == (["yes", "no"], "yes")
    path.write_text('{"answers": ["yes"]}')
    with pytest.raises(DataError, match="is not an answers file"):
        load_answers(path)


def test_unknown_words_are_named_and_empty_questions_refused():
    vocab = Vocabulary.build(["what colour is the circle"])
    assert unknown_words(vocab, "what color is the star?") == ["color", "star"]
    assert unknown_words(vocab, "What colour is the circle?") == []
    with pytest.raises(ParameterError, match="has no words"):
        unknown_words(vocab, " ?! ")
    with pytest.raises(ParameterError, match="must be a string"):
        unknown_words(vocab, 3)


def test_the_vocabularies_of_a_run_round_trip_and_make_its_datasets(tmp_path):
    split = world_questions(make_dataset(World(seed=0), "vqa", "train", size=30))
    vocab = QuestionVocabulary.build(split, top_k=4, normalize=normalize_answer)
    assert (vocab.answers, vocab.majority) == top_answers(split, 4, normalize=normalize_answer)
    assert vocab.words.itos == Vocabulary.build(split.questions).itos
    vocab.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(QuestionVocabulary.files)
    again = QuestionVocabulary.load(tmp_path, normalize=normalize_answer)
    assert again == vocab and again.words.itos == vocab.words.itos
    item = again.dataset(split, max_len=24)[1]
    assert item["question_index"] == list(range(10, 20))
    assert item["target"].shape == (10, 4) and "referents" not in item
    assert "referents" in again.dataset(split, max_len=24, referents=True)[0]


def test_the_figures_questions_take_the_families_in_turn():
    split = world_questions(make_dataset(World(seed=0), "vqa", "val", size=40))
    shown = figure_questions(split, 6)
    assert len(shown) == len(split.groups) == 4  # no more than the images
    assert [shown[g] in split.groups[g] for g in range(4)] == [True] * 4
    families = sorted(set(split.families))
    for g, i in enumerate(shown):
        wanted = families[g % len(families)]
        has = any(split.families[j] == wanted for j in split.groups[g])
        assert split.families[i] == wanted if has else i == split.groups[g][g]
    assert figure_questions(split, 0) == []
