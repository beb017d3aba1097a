"""Running a VQA model over questions: the predict records of (image file, question)
pairs carry the model's top answers and the words it could not read, and the metrics of
a split's answers are the VQA accuracy per family, the majority baseline, the held-out
combinations' accuracy and each hop's pointing game."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from xmodal.data.questions import QuestionSplit, QuestionVocabulary, world_questions
from xmodal.errors import ParameterError
from xmodal.metrics.vqa import vqa_scores
from xmodal.referencing.vqa import VQAModel
from xmodal.referencing.vqa_inference import AnsweredQuestions, answer_pairs, score_answers
from xmodal.world import World
from xmodal.world.datasets import make_dataset

TINY = dict(
    encoder_kwargs={"channels": 16},
    word_dim=8,
    hidden=16,
    embed_dim=16,
    attention_dim=8,
    classifier_hidden=16,
    dropout=0.0,
)


@pytest.fixture(scope="module")
def vocab() -> QuestionVocabulary:
    split = world_questions(make_dataset(World(seed=0), "vqa", "train", size=50))
    return QuestionVocabulary.build(split, top_k=6)


def _png(path, index: int):
    scene = World(seed=0).scene("test", index, audio=False, questions=False)
    Image.fromarray(scene.image.permute(1, 2, 0).numpy()).save(path)
    return str(path)


@pytest.mark.parametrize("fusion", ["san", "product"])
def test_answer_pairs_records_the_models_top_answers(vocab, tmp_path, fusion):
    torch.manual_seed(0)
    model = VQAModel(len(vocab.words), len(vocab.answers), fusion=fusion, **TINY)
    pairs = [
        (_png(tmp_path / "a.png", 0), "what colour is the circle?"),
        (_png(tmp_path / "b.png", 1), "is there a zorb?"),
    ]
    kw = dict(image_size=64, max_len=24, top_k=3)
    records, images, attention = answer_pairs(model, pairs, vocab, **kw)
    assert images.shape == (2, 3, 64, 64) and not model.training
    tokens, lengths = vocab.words.encode_batch([q for _, q in pairs], max_len=24, pad=False)
    probs, ids, maps = model.answer(images, tokens, lengths, top_k=3)
    for n, ((path, question), record) in enumerate(zip(pairs, records, strict=True)):
        keys = ["input", "image", "question", "answers", "unknown_words", "text", "files"]
        assert list(record) == keys
        assert record["input"] == f"{path} {question!r}" and record["image"] == path
        assert [a["answer"] for a in record["answers"]] == [vocab.answers[j] for j in ids[n]]
        assert [a["probability"] for a in record["answers"]] == [
            round(float(p), 4) for p in probs[n]
        ]
        assert record["files"] == []
    assert records[0]["unknown_words"] == [] and records[1]["unknown_words"] == ["zorb"]
    assert records[1]["text"].endswith("  [not in the vocabulary, read as <unk>: zorb]")
    first = records[0]["answers"][0]
    assert records[0]["text"].startswith(f"{first['answer']} ({first['probability']:.2f}), ")
    if fusion == "san":
        torch.testing.assert_close(attention, maps)
    else:
        assert attention is None and maps is None
    with pytest.raises(ParameterError, match="has no words"):
        answer_pairs(model, [(pairs[0][0], "?!")], vocab, **kw)


def test_score_answers_are_the_vqa_metrics_of_the_split():
    answers = [["yes"] * 10, ["2"] * 10, ["red"] * 10, ["no"] * 10]
    families = ["exist", "count", "colour", "exist"]
    named = [False, False, True, True]
    split = QuestionSplit(["q"] * 4, answers, families, [[0, 1], [2, 3]], None, [0, 1], named)
    classes = ["yes", "no", "2", "red"]
    predicted = torch.tensor([0, 2, 0, 1])
    result = AnsweredQuestions(predicted, hits=torch.tensor([3, 0]), has=torch.tensor([4, 0]))
    metrics = score_answers(result, split, classes, "yes")
    expected = vqa_scores(["yes", "2", "yes", "no"], answers, groups=split.families)
    assert {k: metrics[k] for k in expected} == expected
    assert metrics["accuracy"] == 75.0 and metrics["majority_accuracy"] == 25.0
    assert metrics["accuracy_held_out_named"] == 50.0 and metrics["n_held_out_named"] == 2
    assert metrics["pointing_hop1"] == 75.0 and metrics["pointing_hop2"] == 0.0  # none had any
    assert metrics["n_images"] == 2 and metrics["n_classes"] == 4
    whole = QuestionSplit(["q"] * 4, answers, ["all"] * 4, [[0, 1, 2, 3]], None, [0])
    plain = score_answers(AnsweredQuestions(predicted), whole, classes, "no")
    assert "n_held_out_named" not in plain and "pointing_hop1" not in plain
    assert plain["majority_accuracy"] == 25.0 and plain["n_images"] == 1
