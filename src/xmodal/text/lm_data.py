"""Text for a language model: read a file, split it, tokenize it, cut it into blocks.

- :func:`read_text`: a UTF-8 text file as one string, with a :class:`DataError` naming the
  file for a missing, empty or undecodable one (the byte offset of the first bad byte).
- :func:`split_text`: contiguous train / val / test parts (the end of a text is held out,
  not random lines, so the model is scored on text it has not seen around).
- :class:`CharTokenizer` (one id per character, saved as ``chars.json``) and
  :class:`WordTokenizer` (the words of :func:`xmodal.text.vocab.tokenize`, line ends as
  ``<eos>``, saved as the :class:`~xmodal.text.vocab.Vocabulary` ``vocab.json``), made by
  :func:`build_tokenizer` and read back by :func:`load_tokenizer`.
- :class:`TokenBlocks`: a token stream as ``(x, y)`` blocks of the context length, ``y``
  being ``x`` shifted by one token; :func:`collate_blocks` pads a batch of them.

Example::

    text = read_text("shakespeare.txt")
    train, val, test = split_text(text, val_fraction=0.05, test_fraction=0.05)
    tok = build_tokenizer("char", train)
    blocks = TokenBlocks(torch.tensor(tok.encode(train)), block_size=128)
    x, y = blocks[0]["x"], blocks[0]["y"]           # (128,), (128,)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from xmodal._checks import check_bool, check_choice, check_positive_int
from xmodal._io import write_json
from xmodal.errors import DataError, ParameterError
from xmodal.text.vocab import EOS_ID, UNK, Vocabulary

__all__ = [
    "LEVELS",
    "CharTokenizer",
    "TokenBlocks",
    "WordTokenizer",
    "build_tokenizer",
    "collate_blocks",
    "load_tokenizer",
    "read_text",
    "split_text",
    "tokenizer_file",
]

LEVELS = ("char", "word")
IGNORE = -100  # the target id cross-entropy skips (padding)

_CHARS_FORMAT = "xmodal.chars"
_CHARS_VERSION = 1
UNKNOWN_CHAR = "\ufffd"  # id 0 of every CharTokenizer: a character not seen in training


# ----------------------------------------------------------------------------- text


def read_text(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file, line ends as ``\\n`` and a leading BOM dropped.

    Raises DataError for a missing file, a folder, bytes that are not UTF-8 (naming the
    offset) and a file with no text (empty or only whitespace).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"text file {str(path)!r} does not exist")
    if not path.is_file():
        raise DataError(f"text file {str(path)!r} is not a file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"text file {str(path)!r} cannot be read: {err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"text file {str(path)!r} is not UTF-8: byte {data[err.start]:#04x} at offset "
            f"{err.start} ({err.reason}); convert it, e.g. iconv -t utf-8"
        ) from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DataError(f"text file {str(path)!r} is empty ({len(data)} bytes, no text)")
    return text


def _cut(text: str, at: int) -> int:
    """``at`` moved forward to the next whitespace, so no word is cut in two."""
    while 0 < at < len(text) and not text[at - 1].isspace() and not text[at].isspace():
        at += 1
    return at


def split_text(text: str, *, val_fraction: float, test_fraction: float) -> tuple[str, str, str]:
    """``(train, val, test)``: the first ``1 - val - test`` of ``text``, then val, then test.

    The cuts are moved to the next whitespace. Raises DataError if a part holds no text.
    """
    if not isinstance(text, str):
        raise ParameterError(f"text must be a str. Found: {type(text).__name__}")
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < f < 1.0:
            raise ParameterError(f"{name} must be in (0, 1). Found: {f!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ParameterError(
            f"val_fraction + test_fraction must be < 1. Found: {val_fraction} + {test_fraction}"
        )
    n = len(text)
    a = _cut(text, round(n * (1 - val_fraction - test_fraction)))
    b = max(a, _cut(text, round(n * (1 - test_fraction))))
    parts = (text[:a], text[a:b], text[b:])
    for name, part in zip(("train", "val", "test"), parts, strict=True):
        if not part.strip():
            raise DataError(
                f"the {name} part of a {n}-character text holds no text "
                f"(val_fraction={val_fraction}, test_fraction={test_fraction}); give more text"
            )
    return parts


# ----------------------------------------------------------------------------- tokenizers


class CharTokenizer:
    """One id per character; id 0 stands for any character not seen when it was built.

    >>> tok = CharTokenizer.build("hello")
    >>> tok.encode("hole?")
    [2, 4, 3, 1, 0]
    >>> tok.decode([2, 1, 3, 3, 4])
    'hello'
    """

    level = "char"
    filename = "chars.json"

    def __init__(self, chars: Sequence[str]):
        chars = list(chars)
        for i, c in enumerate(chars):
            if not isinstance(c, str) or len(c) != 1:
                raise ParameterError(f"chars[{i}] must be a single character. Found: {c!r}")
        if len(set(chars)) != len(chars) or UNKNOWN_CHAR in chars:
            raise ParameterError("chars must be distinct and must not hold U+FFFD (id 0)")
        self.itos = [UNKNOWN_CHAR, *chars]
        self.stoi = {c: i for i, c in enumerate(self.itos)}
        self.separator_id = self.stoi.get("\n", 0)  # where a text starts a new line

    @classmethod
    def build(cls, text: str) -> CharTokenizer:
        """The characters of ``text``, sorted."""
        return cls(sorted(set(text) - {UNKNOWN_CHAR}))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise ParameterError(f"text must be a str. Found: {type(text).__name__}")
        return [self.stoi.get(c, 0) for c in text]

    def tokens(self, text: str) -> list[str]:
        """``text`` as the tokens the model sees (unknown characters as U+FFFD)."""
        return [self.itos[i] for i in self.encode(text)]

    def decode(self, ids) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return "".join(self.itos[i] for i in ids)

    def save(self, path: str | os.PathLike) -> Path:
        doc = {"format": _CHARS_FORMAT, "version": _CHARS_VERSION, "chars": self.itos[1:]}
        return write_json(path, doc, indent=None, ensure_ascii=False)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CharTokenizer:
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"character vocabulary {path} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataError(f"character vocabulary {path} cannot be read: {err}") from None
        if not isinstance(doc, dict) or doc.get("format") != _CHARS_FORMAT:
            raise DataError(f"{path} is not a character vocabulary (format {_CHARS_FORMAT!r})")
        if doc.get("version") != _CHARS_VERSION or not isinstance(doc.get("chars"), list):
            raise DataError(f"{path}: unsupported version {doc.get('version')!r} or no chars")
        try:
            return cls(doc["chars"])
        except ParameterError as err:
            raise DataError(f"{path}: {err}") from None


class WordTokenizer:
    """Words of :func:`~xmodal.text.vocab.tokenize` through a :class:`Vocabulary`; each line
    end is ``<eos>``, so a text is one stream of lines and generation can end a line.

    >>> tok = WordTokenizer.build("a red circle\\na blue square\\n")
    >>> tok.decode(tok.encode("a red square\\na"))
    'a red square\\na'
    """

    level = "word"
    filename = "vocab.json"

    def __init__(self, vocab: Vocabulary):
        if not isinstance(vocab, Vocabulary):
            raise ParameterError(f"vocab must be a Vocabulary. Found: {type(vocab).__name__}")
        self.vocab = vocab
        self.separator_id = EOS_ID

    @classmethod
    def build(cls, text: str, *, min_freq: int = 1) -> WordTokenizer:
        return cls(Vocabulary.build(text.split("\n"), min_freq=min_freq))

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise ParameterError(f"text must be a str. Found: {type(text).__name__}")
        ids: list[int] = []
        lines = text.split("\n")
        for k, line in enumerate(lines):
            ids += self.vocab.encode(line, add_bos=False, add_eos=False)
            if k < len(lines) - 1:
                ids.append(EOS_ID)
        return ids

    def tokens(self, text: str) -> list[str]:
        return [self.vocab.itos[i] for i in self.encode(text)]

    def decode(self, ids) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        out, line = [], []
        for i in ids:
            if i == EOS_ID:
                out.append(" ".join(line))
                line = []
            else:
                line.append(self.vocab.itos[i] if 0 <= i < len(self.vocab) else UNK)
        out.append(" ".join(line))
        return "\n".join(out)

    def save(self, path: str | os.PathLike) -> Path:
        return self.vocab.save(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> WordTokenizer:
        return cls(Vocabulary.load(path))


Tokenizer = CharTokenizer | WordTokenizer
_CLASSES = {"char": CharTokenizer, "word": WordTokenizer}


def tokenizer_file(level: str) -> str:
    """The file name a tokenizer of ``level`` is saved under in a run folder."""
    return _CLASSES[check_choice(level, "level", LEVELS)].filename


def build_tokenizer(level: str, text: str, *, min_freq: int = 1) -> Tokenizer:
    """A tokenizer of ``level`` (``"char"`` or ``"word"``) fitted to ``text``."""
    check_choice(level, "level", LEVELS)
    if level == "char":
        return CharTokenizer.build(text)
    return WordTokenizer.build(text, min_freq=check_positive_int(min_freq, "min_freq"))


def load_tokenizer(level: str, folder: str | os.PathLike) -> Tokenizer:
    """The tokenizer of ``level`` saved in ``folder`` (a run folder)."""
    cls = _CLASSES[check_choice(level, "level", LEVELS)]
    return cls.load(Path(folder) / cls.filename)


# ----------------------------------------------------------------------------- blocks


class TokenBlocks(Dataset):
    """A 1-D token stream as next-token blocks: item ``i`` is ``{"x", "y"}`` with
    ``x = ids[s : s + L]`` and ``y = ids[s + 1 : s + L + 1]``, ``s = offset + i * L``.

    ``full=True`` (training): only whole blocks of ``L = block_size``; :meth:`set_epoch`
    shifts where they start by ``offset`` in ``[0, L)`` so each epoch cuts the text
    elsewhere (a pure function of the epoch; one block fewer leaves room for it).
    ``full=False`` (evaluation): blocks from 0 covering every next-token target exactly
    once, the last one possibly shorter.
    """

    def __init__(self, ids: torch.Tensor, block_size: int, *, full: bool = True,
                 name: str = "text"):  # fmt: skip
        if not isinstance(ids, torch.Tensor) or ids.ndim != 1:
            raise ParameterError(f"ids must be a 1-D tensor of token ids. Found: {ids!r:.80}")
        self.ids = ids.long()
        self.block_size = check_positive_int(block_size, "block_size")
        self.full = check_bool(full, "full")
        self.offset = 0
        n, L = len(self.ids), self.block_size
        if full:
            if n < L + 1:
                raise DataError(
                    f"the {name} holds {n} tokens; a training block needs block_size + 1 = "
                    f"{L + 1}: give more text or lower model.block_size"
                )
            # As many blocks as fit after any offset in [0, L) (up to one fewer than at 0).
            self.n_blocks = max(1, (n - L) // L)
            self.max_offset = min(L - 1, n - 1 - self.n_blocks * L)
        else:
            if n < 2:
                raise DataError(f"the {name} holds {n} token(s); scoring needs at least 2")
            self.n_blocks = -(-(n - 1) // L)
            self.max_offset = 0

    def set_epoch(self, epoch: int, seed: int = 0) -> None:
        """Cut epoch ``epoch``'s blocks at an offset drawn from (seed, epoch)."""
        if self.full and self.max_offset > 0:
            key = f"{int(seed)}:{int(epoch)}".encode()
            draw = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
            self.offset = draw % (self.max_offset + 1)

    def __len__(self) -> int:
        return self.n_blocks

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n_blocks:
            raise IndexError(i)
        s = self.offset + i * self.block_size
        chunk = self.ids[s : s + self.block_size + 1]
        return {"x": chunk[:-1], "y": chunk[1:]}

    @property
    def n_targets(self) -> int:
        """Next-token targets over all blocks (what a per-token mean divides by)."""
        if self.full:
            return self.n_blocks * self.block_size
        return len(self.ids) - 1


def collate_blocks(items: list[dict]) -> dict:
    """Stack blocks; shorter ones are right-padded (``x`` with 0, ``y`` with -100, ignored)."""
    T = max(len(it["x"]) for it in items)
    x = torch.zeros(len(items), T, dtype=torch.long)
    y = torch.full((len(items), T), IGNORE, dtype=torch.long)
    for k, it in enumerate(items):
        x[k, : len(it["x"])] = it["x"]
        y[k, : len(it["y"])] = it["y"]
    return {"x": x, "y": y}
