"""Running a GPT on text: the next-token scores equal a per-block reference and count
every target once, prompts are cut to the context, sampling is reproducible by its seed
(and keeps words apart at word level), and the attention over a sentence has one map per
layer over its tokens."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from xmodal.errors import ParameterError
from xmodal.text.lm_data import TokenBlocks, build_tokenizer
from xmodal.text.lm_inference import attention_over, next_token_scores, prompt_ids, sample_texts
from xmodal.text.transformer import GPT, TransformerConfig

TEXT = "a red circle\nthe blue square\na small green cross\n" * 3


@pytest.fixture(scope="module")
def char_tok():
    return build_tokenizer("char", TEXT)


def _gpt(vocab_size: int, block_size: int = 16) -> GPT:
    torch.manual_seed(0)
    config = TransformerConfig(
        vocab_size=vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=16, dropout=0.0
    )
    return GPT(config).eval()


def test_next_token_scores_equal_a_per_block_reference(char_tok):
    model = _gpt(len(char_tok))
    ids = torch.tensor(char_tok.encode(TEXT))
    blocks = TokenBlocks(ids, 16, full=False)
    scores = next_token_scores(model, blocks, batch_size=3, bits_per_char=True)
    nll, hits = [], []
    with torch.no_grad():
        for i in range(len(blocks)):  # one block at a time: no padding
            x, y = blocks[i]["x"], blocks[i]["y"]
            logits, _ = model(x[None])
            nll += F.cross_entropy(logits[0], y, reduction="none").tolist()
            hits += (logits[0].argmax(-1) == y).tolist()
    assert scores["tokens"] == len(nll) == len(ids) - 1  # every next character once
    assert scores["loss"] == pytest.approx(sum(nll) / len(nll), rel=1e-5)
    assert scores["accuracy"] == sum(hits) / len(hits)
    assert scores["perplexity"] == pytest.approx(math.exp(scores["loss"]))
    assert scores["bits_per_char"] == pytest.approx(scores["loss"] / math.log(2))
    words = next_token_scores(model, blocks, batch_size=len(blocks))
    assert "bits_per_char" not in words and words["loss"] == pytest.approx(scores["loss"])


def test_prompt_ids_keep_the_end_of_a_long_prompt(char_tok):
    assert prompt_ids(char_tok, "", 8) == ([char_tok.separator_id], False)
    ids = char_tok.encode("a red circle")
    assert prompt_ids(char_tok, "a red circle", 20) == (ids, False)
    assert prompt_ids(char_tok, "a red circle", 5) == (ids[-5:], True)


def test_sampling_is_reproducible_by_its_seed(char_tok):
    model = _gpt(len(char_tok))
    kw = dict(max_new_tokens=10, temperature=1.0)
    first = sample_texts(model, char_tok, "a red", 3, seed=7, **kw)
    assert first == sample_texts(model, char_tok, "a red", 3, seed=7, **kw)
    assert first != sample_texts(model, char_tok, "a red", 3, seed=8, **kw)
    assert all(t.startswith("a red") and len(t) == len("a red") + 10 for t in first)
    # the tokens GPT.generate draws with a generator seeded so, decoded after the prompt
    gen = torch.Generator().manual_seed(7)
    idx = torch.tensor([char_tok.encode("a red")] * 3)
    out = model.generate(idx, 10, temperature=1.0, generator=gen)
    assert first == ["a red" + char_tok.decode(row[5:].tolist()) for row in out]
    (greedy,) = sample_texts(model, char_tok, "", 1, max_new_tokens=4, top_k=1)
    assert len(greedy) == 4  # an empty prompt starts a new line, not in the text


def test_word_level_samples_keep_the_prompts_last_word_apart():
    tok = build_tokenizer("word", TEXT)
    model = _gpt(len(tok))
    for text in sample_texts(model, tok, "a red", 4, max_new_tokens=3, seed=0):
        assert text.startswith("a red") and text[len("a red")] in " \n"


def test_attention_over_a_sentence(char_tok):
    model = _gpt(len(char_tok))
    maps, tokens = attention_over(model, char_tok, "a red circle", max_tokens=5)
    assert tokens == ["a", " ", "r", "e", "d"]
    assert len(maps) == 2 and all(m.shape == (2, 5, 5) for m in maps)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 5))
    assert bool((maps[1].triu(1) == 0).all())  # causal
    with pytest.raises(ParameterError, match="eval.attention_text has no tokens. Found: ''"):
        attention_over(model, char_tok, "", max_tokens=5, name="eval.attention_text")
