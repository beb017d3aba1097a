"""VQA's losses: the soft cross-entropy follows the annotators and skips questions none
of whose answers is a class; the attention loss is the cross-entropy of each hop's map
against the share of each cell its objects cover."""

from __future__ import annotations

import pytest
import torch

from xmodal.data.questions import QuestionsByImage
from xmodal.metrics.vqa import normalize_answer
from xmodal.referencing.vqa_losses import attention_loss, soft_cross_entropy
from xmodal.text.vocab import Vocabulary


def test_attention_loss_is_the_cross_entropy_against_the_objects_cells():
    attention = torch.full((3, 3, 4, 4), 1 / 16)  # uniform maps, 3 hops
    attention[1, 0] = 0.0
    attention[1, 0, 0, 1] = 1.0  # question 1, hop 1: all on cell (0, 1)
    referents = torch.zeros(3, 2, 16, 16, dtype=torch.bool)
    referents[0, 0, 0:4, 0:4] = True  # question 0, first look: cell (0, 0) entirely
    referents[0, 1, 0:4, 4:6] = True  # second look: half of cell (0, 1) ...
    referents[0, 1, 8:12, 8:10] = True  # ... and half of cell (2, 2)
    referents[1, 0, 0:4, 4:8] = True  # question 1, first look: cell (0, 1)
    # question 2 has no referents: its maps do not count
    loss, used = attention_loss(attention, referents)
    uniform = torch.log(torch.tensor(16.0))
    # q0: hop 1 and hops 2, 3 (held to the second look) under uniform maps; q1: hop 1 exact
    assert used == 4
    torch.testing.assert_close(loss, (3 * uniform + 0.0) / 4)
    none, used = attention_loss(attention, torch.zeros_like(referents))
    assert used == 0 and float(none) == 0.0


def test_soft_targets_follow_the_annotators_and_skip_unknown_answers():
    vocab = Vocabulary.build(["what is it"])
    classes = {"2": 0, "yes": 1, "red": 2}
    ds = QuestionsByImage(None, vocab, classes, normalize=normalize_answer, max_len=8)
    target = ds.target(["two"] * 6 + ["Yes."] * 3 + ["blue"])  # "blue" is no class
    torch.testing.assert_close(target, torch.tensor([6 / 9, 3 / 9, 0.0]))
    assert ds.target(["blue"] * 10).sum() == 0
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    loss, used = soft_cross_entropy(logits, torch.stack([target, torch.zeros(3)]))
    expected = -(target * logits[0].log_softmax(0)).sum()
    assert used == 1 and float(loss) == pytest.approx(float(expected))
    none, used = soft_cross_entropy(logits, torch.zeros(2, 3))  # nothing to learn, no NaN
    assert used == 0 and float(none) == 0.0
