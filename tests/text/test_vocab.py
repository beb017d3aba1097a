"""Tokenizer and Vocabulary: determinism, cutoffs, round trips, padding, files, bad input."""

from __future__ import annotations

import json
import random

import pytest
import torch

from xmodal.errors import DataError, ParameterError
from xmodal.text import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK_ID, Vocabulary, tokenize


@pytest.fixture(scope="module")
def captions() -> list[str]:
    from xmodal.world import World

    world = World(seed=0)
    return [
        c
        for i in range(200)
        for c in world.scene("train", i, audio=False, questions=False).captions
    ]


# ---------------------------------------------------------------- tokenize


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("A Red  Square.", ["a", "red", "square"]),
        ("it's a man\u2019s hat", ["its", "a", "mans", "hat"]),  # apostrophes deleted
        ("red,blue;t-shirt", ["red", "blue", "t", "shirt"]),  # other punctuation splits
        ("two_dogs and 3 cats!", ["two", "dogs", "and", "3", "cats"]),
        ("Café NOËL", ["café", "noël"]),
        ("  \t\n ?!", []),
    ],
)
def test_tokenize(text, tokens):
    assert tokenize(text) == tokens


# ---------------------------------------------------------------- build


def test_special_ids_are_fixed():
    v = Vocabulary.build(["zebra zebra"])
    assert v.itos[:4] == ("<pad>", "<bos>", "<eos>", "<unk>")
    assert (PAD_ID, BOS_ID, EOS_ID, UNK_ID) == (0, 1, 2, 3)
    assert v.token_to_id("zebra") == 4


def test_build_is_independent_of_corpus_order(captions):
    reference = Vocabulary.build(captions)
    for seed in range(3):
        shuffled = captions[:]
        random.Random(seed).shuffle(shuffled)
        assert Vocabulary.build(shuffled) == reference
    # Ties (equal counts) are broken alphabetically, not by first appearance.
    assert Vocabulary.build(["b a c", "c b a"]).itos[4:] == ("a", "b", "c")
    assert Vocabulary.build(["x y y", "z z"]).itos[4:] == ("y", "z", "x")


def test_frequency_cutoff_is_exact():
    corpus = ["a a a b b c", "a b d"]  # a:4 b:3 c:1 d:1
    assert Vocabulary.build(corpus, min_freq=1).itos[4:] == ("a", "b", "c", "d")
    assert Vocabulary.build(corpus, min_freq=3).itos[4:] == ("a", "b")
    assert Vocabulary.build(corpus, min_freq=4).itos[4:] == ("a",)
    assert Vocabulary.build(corpus, min_freq=5).itos[4:] == ()
    assert Vocabulary.build(corpus, max_size=6).itos[4:] == ("a", "b")
    assert len(Vocabulary.build(corpus, max_size=4)) == 4


def test_build_accepts_token_lists_and_skips_specials():
    v = Vocabulary.build([["Red", "<unk>"], "red"])
    assert v.itos[4:] == ("Red", "red")  # token lists are taken as they are
    assert v.itos.count("<unk>") == 1


def test_extra_specials_follow_the_fixed_four():
    v = Vocabulary.build(["a b"], specials=(*SPECIALS, "<mask>"))
    assert v.itos[:6] == (*SPECIALS, "<mask>", "a")
    assert v.decode([v.token_to_id("<mask>"), 5]) == "<mask> a"


# ---------------------------------------------------------------- encode / decode


def test_world_captions_round_trip(captions):
    v = Vocabulary.build(captions)
    assert len(captions) >= 200
    for c in captions:
        ids = v.encode(c)
        assert ids[0] == BOS_ID and ids[-1] == EOS_ID
        assert UNK_ID not in ids
        assert v.decode(ids) == " ".join(tokenize(c))


def test_unknown_words_map_to_unk():
    v = Vocabulary.build(["a red square"])
    assert v.encode("a purple square") == [BOS_ID, 4, UNK_ID, 6, EOS_ID]
    assert v.token_to_id("purple") == UNK_ID
    assert "purple" not in v and "red" in v and 7 not in v
    assert v.decode(v.encode("a purple square")) == "a <unk> square"


def test_max_len_truncates_then_appends_eos():
    v = Vocabulary.build(["a b c d e"])
    assert v.encode("a b c d e", max_len=4) == [BOS_ID, 4, 5, EOS_ID]
    assert v.encode("a b c d e", max_len=2) == [BOS_ID, EOS_ID]
    assert v.encode("a b c d e", max_len=3, add_bos=False) == [4, 5, EOS_ID]
    assert v.encode("a b", max_len=10) == [BOS_ID, 4, 5, EOS_ID]
    assert v.encode("a b c", add_bos=False, add_eos=False, max_len=1) == [4]


def test_decode_stops_at_eos_and_drops_pad_bos():
    v = Vocabulary.build(["a b"])
    ids = [PAD_ID, BOS_ID, 4, PAD_ID, 5, EOS_ID, 4, PAD_ID]
    assert v.decode(ids) == "a b"
    assert v.decode(torch.tensor(ids)) == "a b"
    assert v.decode(ids, strip_special=False) == "<pad> <bos> a <pad> b <eos> a <pad>"


def test_encode_batch_pads_and_reports_lengths():
    v = Vocabulary.build(["a b c"])
    texts = ["a b c", "a", "zzz yyy"]
    ids, lengths = v.encode_batch(texts)
    assert ids.dtype == torch.long and lengths.dtype == torch.long
    assert ids.shape == (3, 5)
    assert lengths.tolist() == [5, 3, 4]
    for row, n, t in zip(ids, lengths, texts, strict=True):
        assert row[:n].tolist() == v.encode(t)  # batched equals per item
        assert (row[n:] == PAD_ID).all()
    fixed, _ = v.encode_batch(texts, max_len=7)
    assert fixed.shape == (3, 7)
    tight, tight_len = v.encode_batch(texts, max_len=7, pad=False)
    assert tight.shape == (3, 5) and torch.equal(tight_len, lengths)
    cut, cut_len = v.encode_batch(texts, max_len=3)
    assert cut.shape == (3, 3) and cut_len.tolist() == [3, 3, 3]
    assert cut[:, -1].tolist() == [EOS_ID] * 3
    assert v.decode_batch(ids) == ["a b c", "a", "<unk> <unk>"]
    assert v.decode_batch(ids, lengths=torch.tensor([2, 3, 0])) == ["a", "a", ""]


# ---------------------------------------------------------------- files


def test_save_load_round_trip(tmp_path, captions):
    v = Vocabulary.build(captions, specials=(*SPECIALS, "<mask>"))
    path = v.save(tmp_path / "sub" / "vocab.json")
    assert Vocabulary.load(path) == v
    assert [p.name for p in path.parent.iterdir()] == ["vocab.json"]  # no temp file left
    assert Vocabulary.load(path) != Vocabulary.build(captions)


def _write(tmp_path, doc) -> str:
    path = tmp_path / "vocab.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return str(path)


_GOOD = {"format": "xmodal.vocabulary", "version": 1, "specials": list(SPECIALS)}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ('{"format": "xmodal.vocab', "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ({**_GOOD, "format": "other", "tokens": list(SPECIALS)}, "format 'other'"),
        ({**_GOOD, "version": 99, "tokens": list(SPECIALS)}, "version 99"),
        ({**_GOOD}, "'tokens' must be a list"),
        ({**_GOOD, "specials": "x", "tokens": list(SPECIALS)}, "'specials' must be a list"),
        ({**_GOOD, "specials": ["<pad>"], "tokens": ["<pad>"]}, "specials must start"),
        ({**_GOOD, "tokens": ["<pad>", "<bos>", "<eos>", "a"]}, "tokens must start"),
        ({**_GOOD, "tokens": [*SPECIALS, "a", "b", "a"]}, "'a' twice"),
        ({**_GOOD, "tokens": [*SPECIALS, "a", 7]}, "tokens[5]"),
        ({**_GOOD, "tokens": [*SPECIALS, "a b"]}, "'a b'"),
    ],
)
def test_load_rejects_corrupt_files(tmp_path, doc, message):
    path = _write(tmp_path, doc)
    with pytest.raises(DataError, match="vocab") as err:
        Vocabulary.load(path)
    assert message in str(err.value)
    assert path in str(err.value)


def test_load_missing_file_names_path(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(DataError, match="does not exist") as err:
        Vocabulary.load(path)
    assert str(path) in str(err.value)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_freq": 0}, "min_freq must be an integer >= 1. Found: 0"),
        ({"min_freq": 1.5}, "min_freq must be an integer >= 1. Found: 1.5"),
        ({"max_size": 3}, "max_size must be an integer >= 4. Found: 3"),
        ({"specials": ("<bos>", "<pad>", "<eos>", "<unk>")}, "specials must start with"),
        ({"specials": (*SPECIALS, "<unk>")}, "'<unk>' twice"),
    ],
)
def test_build_bad_parameters(kwargs, message):
    with pytest.raises(ParameterError) as err:
        Vocabulary.build(["a b"], **kwargs)
    assert message in str(err.value)


def test_bad_text_input():
    v = Vocabulary.build(["a b"])
    with pytest.raises(ParameterError, match="text must be a str. Found: int 5"):
        tokenize(5)
    with pytest.raises(ParameterError, match=r"texts_or_token_lists\[1\].*NoneType"):
        Vocabulary.build(["a", None])
    with pytest.raises(ParameterError, match="iterable of texts"):
        Vocabulary.build("a b")  # a bare string would be counted letter by letter
    with pytest.raises(ParameterError, match=r"text_or_tokens\[1\] must be a str token"):
        v.encode(["a", 3])
    with pytest.raises(ParameterError, match=r"texts\[1\].*bytes"):
        v.encode_batch(["a", b"b"])
    with pytest.raises(ParameterError, match="max_len must be an integer >= 2. Found: 1"):
        v.encode("a", max_len=1)
    with pytest.raises(ParameterError, match="at least one text"):
        v.encode_batch([])


def test_decode_rejects_ids_out_of_range():
    v = Vocabulary.build(["a b"])  # ids 0..5
    with pytest.raises(ParameterError, match=r"ids\[1\] must be in \[0, 6\). Found: 6"):
        v.decode([4, 6])
    with pytest.raises(ParameterError, match=r"ids\[0\] must be in \[0, 6\). Found: -1"):
        v.decode(torch.tensor([-1]))
    with pytest.raises(ParameterError, match=r"ids\[0\] must be an int id. Found: float 1.0"):
        v.decode([1.0])
    with pytest.raises(ParameterError, match="index must be in"):
        v.id_to_token(99)
    with pytest.raises(ParameterError, match=r"lengths\[0\] must be an integer >= 0. Found: -1"):
        v.decode_batch([[4]], lengths=[-1])
