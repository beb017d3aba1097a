"""The text-LM data code: reading a text file (normalised, or a DataError naming it),
splitting it into contiguous parts cut between words, the character and word tokenizers
(round trip, files), and next-token blocks that cover the text."""

from __future__ import annotations

import random

import pytest
import torch

from xmodal.errors import DataError, ParameterError
from xmodal.text.lm_data import (
    UNKNOWN_CHAR,
    CharTokenizer,
    TokenBlocks,
    build_tokenizer,
    collate_blocks,
    load_tokenizer,
    read_text,
    split_text,
)
from xmodal.text.vocab import EOS_ID


def _corpus(n_lines: int = 60, seed: int = 0) -> str:
    rng = random.Random(seed)
    subjects = ["the cat", "a dog", "my friend", "the old man", "a bird"]
    verbs = ["sees", "likes", "follows", "draws", "finds"]
    objects = ["a red ball", "the river", "two apples", "the moon", "a small house"]
    return "".join(
        f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}.\n"
        for _ in range(n_lines)
    )


def test_read_text_normalises_and_refuses(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffline one\r\nline two\rend".encode())
    assert read_text(path) == "line one\nline two\nend"
    with pytest.raises(DataError, match="is not a file"):
        read_text(tmp_path)
    path.write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(DataError, match="byte 0xe9 at offset 3"):
        read_text(path)


def test_split_text_is_contiguous_and_cuts_between_words():
    text = _corpus(100)
    train, val, test = split_text(text, val_fraction=0.1, test_fraction=0.2)
    assert train + val + test == text
    assert abs(len(train) - 0.7 * len(text)) < 20 and abs(len(test) - 0.2 * len(text)) < 20
    for left, right in ((train, val), (val, test)):  # no word is cut in two
        assert left[-1].isspace() or right[0].isspace()
    with pytest.raises(DataError, match="the val part of a 5-character text holds no text"):
        split_text("abcde", val_fraction=0.01, test_fraction=0.01)
    with pytest.raises(ParameterError, match="val_fraction must be in \\(0, 1\\). Found: 0"):
        split_text(text, val_fraction=0, test_fraction=0.1)


def test_token_blocks_shift_by_one_and_cover_the_text():
    ids = torch.arange(100)
    train = TokenBlocks(ids, 16)
    assert len(train) == (100 - 16) // 16 == 5
    for epoch in range(6):
        train.set_epoch(epoch, seed=3)
        assert 0 <= train.offset <= 15
        for i in range(len(train)):
            item = train[i]
            assert len(item["x"]) == 16 and torch.equal(item["y"], item["x"] + 1)
            assert int(item["x"][0]) == train.offset + 16 * i
    offsets = set()
    for epoch in range(6):
        train.set_epoch(epoch, seed=3)
        offsets.add(train.offset)
    assert len(offsets) > 1  # the cut moves between epochs ...
    train.set_epoch(2, seed=3)
    first = train.offset
    train.set_epoch(2, seed=3)
    assert train.offset == first  # ... as a pure function of (seed, epoch)

    scoring = TokenBlocks(ids, 16, full=False)
    batch = collate_blocks([scoring[i] for i in range(len(scoring))])
    assert batch["x"].shape == (7, 16) and scoring.n_targets == 99
    targets = batch["y"][batch["y"] != -100]
    assert torch.equal(targets, ids[1:])  # every next token exactly once
    assert (batch["x"][-1, 3:] == 0).all() and (batch["y"][-1, 3:] == -100).all()
    with pytest.raises(DataError, match="the text holds 10 tokens; a training block needs"):
        TokenBlocks(torch.arange(10), 16)


def test_char_tokenizer_round_trip_and_file(tmp_path):
    tok = build_tokenizer("char", "hello world\n")
    assert tok.decode(tok.encode("hello\nworld")) == "hello\nworld"
    assert tok.encode("hex") == [tok.stoi["h"], tok.stoi["e"], 0]
    assert tok.decode([0]) == UNKNOWN_CHAR and tok.separator_id == tok.stoi["\n"]
    tok.save(tmp_path / "chars.json")
    assert load_tokenizer("char", tmp_path).itos == tok.itos
    (tmp_path / "chars.json").write_text('{"format": "other"}')
    with pytest.raises(DataError, match="is not a character vocabulary"):
        CharTokenizer.load(tmp_path / "chars.json")
    with pytest.raises(ParameterError, match="level must be one of 'char', 'word'. Found: 'bpe'"):
        build_tokenizer("bpe", "text")


def test_word_tokenizer_lines_end_with_eos(tmp_path):
    tok = build_tokenizer("word", "a red circle\nthe blue square\n")
    ids = tok.encode("a red circle\nthe")
    assert ids[3] == EOS_ID and len(ids) == 5
    assert tok.decode(ids) == "a red circle\nthe"
    assert tok.decode(tok.encode("a green circle")) == "a <unk> circle"
    tok.save(tmp_path / "vocab.json")
    assert load_tokenizer("word", tmp_path).vocab == tok.vocab
