"""Word-level tokenization and the :class:`Vocabulary` every text task shares.

Tokenization follows the Karpathy COCO preprocessing (neuraltalk2 ``prepro``): lower-case,
drop punctuation, split on whitespace. Two choices make it total on any text:

- apostrophes are *deleted*, so a contraction stays one word: ``"it's"`` -> ``"its"``,
  ``"don't"`` -> ``"dont"`` (as the Karpathy script does);
- every other non-alphanumeric character *separates* words, so text written without
  spaces still splits: ``"red,blue"`` -> ``["red", "blue"]``, ``"t-shirt"`` ->
  ``["t", "shirt"]`` (the Karpathy script would glue these into ``"redblue"``).

Tokens are runs of Unicode letters and digits; the underscore is not part of a word. The
evaluation reference (pycocoevalcap's PTBTokenizer) needs Java and is not used here.

Special tokens have fixed ids in every vocabulary, so models can hard-code them:

====== == ============================================
token  id use
====== == ============================================
<pad>  0  padding in batches (``encode_batch``)
<bos>  1  start of a sequence
<eos>  2  end of a sequence; ``decode`` stops at it
<unk>  3  any word not in the vocabulary
====== == ============================================

Example::

    vocab = Vocabulary.build(["a red square", "a blue circle"], min_freq=1)
    vocab.encode("a red cat")          # [1, 4, 7, 3, 2]: <bos> a red <unk> <eos>
    vocab.decode([1, 4, 7, 3, 2])      # 'a red <unk>'
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import torch

from xmodal._checks import check_bool, check_positive_int
from xmodal._io import write_json
from xmodal.errors import DataError, ParameterError

__all__ = [
    "BOS",
    "BOS_ID",
    "EOS",
    "EOS_ID",
    "PAD",
    "PAD_ID",
    "SPECIALS",
    "UNK",
    "UNK_ID",
    "Vocabulary",
    "tokenize",
]

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
SPECIALS: tuple[str, ...] = (PAD, BOS, EOS, UNK)

_FORMAT = "xmodal.vocabulary"
_VERSION = 1

# Straight and typographic apostrophes: deleted so contractions stay one word.
_APOSTROPHES = str.maketrans("", "", "'\u2019")
# A word is a run of letters and digits: \w minus the underscore.
_WORD = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into lower-case alphanumeric words (see the module docstring).

    >>> tokenize("A man's T-shirt, red.")
    ['a', 'mans', 't', 'shirt', 'red']
    """
    if not isinstance(text, str):
        raise ParameterError(f"text must be a str. Found: {type(text).__name__} {text!r:.80}")
    return _WORD.findall(text.lower().translate(_APOSTROPHES))


def _tokens_of(item, name: str) -> list[str]:
    """A text is tokenized; a list/tuple of strings is taken as already tokenized."""
    if isinstance(item, str):
        return tokenize(item)
    if isinstance(item, (list, tuple)):
        for j, tok in enumerate(item):
            if not isinstance(tok, str):
                raise ParameterError(
                    f"{name}[{j}] must be a str token. Found: {type(tok).__name__} {tok!r:.80}"
                )
        return list(item)
    raise ParameterError(
        f"{name} must be a str or a list of str tokens. Found: {type(item).__name__} {item!r:.80}"
    )


def _check_specials(specials) -> tuple[str, ...]:
    if isinstance(specials, str) or not isinstance(specials, Sequence):
        raise ParameterError(f"specials must be a sequence of str. Found: {specials!r:.80}")
    specials = tuple(specials)
    if specials[: len(SPECIALS)] != SPECIALS:
        raise ParameterError(
            f"specials must start with {list(SPECIALS)} (their ids are fixed). "
            f"Found: {list(specials)!r:.200}"
        )
    _check_token_list(specials, "specials", ParameterError)
    return specials


def _check_token_list(tokens: Sequence, name: str, error: type[Exception]) -> None:
    seen: set[str] = set()
    for i, tok in enumerate(tokens):
        # decode joins with spaces, so a token with whitespace would not survive a round trip.
        if not isinstance(tok, str) or not tok or tok != tok.strip() or len(tok.split()) != 1:
            raise error(f"{name}[{i}] must be a non-empty str without whitespace. Found: {tok!r}")
        if tok in seen:
            raise error(f"{name} holds the token {tok!r} twice (second at index {i})")
        seen.add(tok)


class Vocabulary:
    """A fixed map between words and integer ids, with the special tokens first.

    Usually made with :meth:`Vocabulary.build` or :meth:`Vocabulary.load`. The constructor
    takes the ordinary words (ids ``len(specials)`` on, in the order given) and the
    specials, which must start with ``("<pad>", "<bos>", "<eos>", "<unk>")``; extra
    specials (e.g. ``"<mask>"``) may follow them.
    """

    def __init__(self, words: Sequence[str] = (), *, specials: Sequence[str] = SPECIALS):
        specials = _check_specials(specials)
        if isinstance(words, str) or not isinstance(words, Iterable):
            raise ParameterError(f"words must be a sequence of str. Found: {words!r:.80}")
        itos = specials + tuple(words)
        _check_token_list(itos, "specials + words", ParameterError)
        self._specials = specials
        self._itos = itos
        self._stoi = {tok: i for i, tok in enumerate(itos)}

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(
        cls,
        texts_or_token_lists: Iterable,
        *,
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = SPECIALS,
    ) -> Vocabulary:
        """Count the words of a corpus and keep the frequent ones.

        Each item is a text (tokenized with :func:`tokenize`) or a list of tokens (taken as
        is). Words seen fewer than ``min_freq`` times are dropped; ``max_size`` caps the
        whole vocabulary, specials included. Words are ordered by count, most frequent
        first, ties broken alphabetically, so the result does not depend on the order of
        the corpus. Words equal to a special token are not counted.
        """
        min_freq = check_positive_int(min_freq, "min_freq")
        specials = _check_specials(specials)
        if max_size is not None:
            max_size = check_positive_int(max_size, "max_size", minimum=len(specials))
        if isinstance(texts_or_token_lists, str) or not isinstance(texts_or_token_lists, Iterable):
            # A bare string would be iterated character by character.
            raise ParameterError(
                "texts_or_token_lists must be an iterable of texts or token lists. "
                f"Found: {type(texts_or_token_lists).__name__} {texts_or_token_lists!r:.80}"
            )
        counts: Counter[str] = Counter()
        for i, item in enumerate(texts_or_token_lists):
            counts.update(_tokens_of(item, f"texts_or_token_lists[{i}]"))
        for tok in specials:
            counts.pop(tok, None)
        words = sorted(
            (w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w)
        )
        if max_size is not None:
            words = words[: max_size - len(specials)]
        return cls(words, specials=specials)

    # ------------------------------------------------------------------ lookup

    pad_id, bos_id, eos_id, unk_id = PAD_ID, BOS_ID, EOS_ID, UNK_ID

    @property
    def specials(self) -> tuple[str, ...]:
        return self._specials

    @property
    def itos(self) -> tuple[str, ...]:
        """Every token, indexed by id."""
        return self._itos

    @property
    def stoi(self) -> Mapping[str, int]:
        """Token -> id (read-only)."""
        return MappingProxyType(self._stoi)

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token) -> bool:
        return isinstance(token, str) and token in self._stoi

    def __iter__(self):
        return iter(self._itos)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self._itos == other._itos and self._specials == other._specials

    def __hash__(self) -> int:
        return hash((self._itos, self._specials))

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, specials={len(self._specials)})"

    def token_to_id(self, token: str) -> int:
        """The id of ``token``; ``UNK_ID`` for a word not in the vocabulary."""
        if not isinstance(token, str):
            raise ParameterError(f"token must be a str. Found: {type(token).__name__} {token!r}")
        return self._stoi.get(token, UNK_ID)

    def id_to_token(self, index: int) -> str:
        return self._itos[self._check_id(index, "index")]

    def _check_id(self, index, name: str) -> int:
        if isinstance(index, bool) or not isinstance(index, int):
            raise ParameterError(
                f"{name} must be an int id. Found: {type(index).__name__} {index!r}"
            )
        if not 0 <= index < len(self._itos):
            raise ParameterError(f"{name} must be in [0, {len(self._itos)}). Found: {index}")
        return index

    # ------------------------------------------------------------------ encode / decode

    def encode(
        self,
        text_or_tokens: str | Sequence[str],
        *,
        add_bos: bool = True,
        add_eos: bool = True,
        max_len: int | None = None,
    ) -> list[int]:
        """Ids of a text (tokenized) or of a token list (taken as is); unknown words -> <unk>.

        ``max_len`` caps the length of the result, <bos> and <eos> included. The words are
        truncated first and <eos> is appended after, so a truncated sequence still ends
        with <eos> and a decoder trained on it learns to stop.
        """
        tokens = _tokens_of(text_or_tokens, "text_or_tokens")
        add_bos, add_eos = check_bool(add_bos, "add_bos"), check_bool(add_eos, "add_eos")
        ids = [self._stoi.get(t, UNK_ID) for t in tokens]
        if max_len is not None:
            max_len = check_positive_int(max_len, "max_len", minimum=max(1, add_bos + add_eos))
            ids = ids[: max_len - add_bos - add_eos]
        return [BOS_ID] * add_bos + ids + [EOS_ID] * add_eos

    def decode(self, ids, *, strip_special: bool = True) -> str:
        """The text of a sequence of ids (a list or 1-D tensor), words joined by spaces.

        With ``strip_special`` (the default) decoding stops at the first <eos> and drops
        <pad> and <bos>; <unk> and any extra specials are kept, since they stand for
        content. Without it every id is rendered.
        """
        strip_special = check_bool(strip_special, "strip_special")
        ids = self._id_list(ids, "ids")
        words = []
        for i in ids:
            if strip_special:
                if i == EOS_ID:
                    break
                if i in (PAD_ID, BOS_ID):
                    continue
            words.append(self._itos[i])
        return " ".join(words)

    def _id_list(self, ids, name: str) -> list[int]:
        if isinstance(ids, torch.Tensor):
            if ids.ndim != 1 or ids.is_floating_point() or ids.is_complex():
                raise ParameterError(
                    f"{name} must be a 1-D integer tensor. Found: {ids.dtype} {tuple(ids.shape)}"
                )
            ids = ids.tolist()
        elif isinstance(ids, str) or not isinstance(ids, Sequence):
            raise ParameterError(f"{name} must be a sequence of int ids. Found: {ids!r:.80}")
        out = []
        for j, i in enumerate(ids):
            if hasattr(i, "__index__") and not isinstance(i, bool):
                i = i.__index__()  # numpy integers
            out.append(self._check_id(i, f"{name}[{j}]"))
        return out

    def encode_batch(
        self,
        texts: Sequence,
        *,
        add_bos: bool = True,
        add_eos: bool = True,
        max_len: int | None = None,
        pad: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a batch and pad it with <pad> (id 0).

        Returns ``(ids, lengths)``: ``ids`` is a LongTensor ``(B, L)``, ``lengths`` a
        LongTensor ``(B,)`` counting <bos> and <eos>. Each row is ``encode(text, ...)``
        followed by padding. ``L`` is ``max_len`` when ``pad`` is true and ``max_len`` is
        given (the same shape for every batch), else the longest row of this batch.
        """
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise ParameterError(f"texts must be a sequence of texts. Found: {texts!r:.80}")
        if len(texts) == 0:
            raise ParameterError("texts must hold at least one text. Found: an empty sequence")
        pad = check_bool(pad, "pad")
        rows = [
            self.encode(
                _tokens_of(t, f"texts[{k}]"), add_bos=add_bos, add_eos=add_eos, max_len=max_len
            )
            for k, t in enumerate(texts)
        ]
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
        width = max_len if (pad and max_len is not None) else int(lengths.max())
        out = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
        for k, r in enumerate(rows):
            out[k, : len(r)] = torch.tensor(r, dtype=torch.long)
        return out, lengths

    def decode_batch(self, ids, *, lengths=None, strip_special: bool = True) -> list[str]:
        """Decode each row of ``ids`` (a LongTensor ``(B, L)`` or a list of id lists).

        ``lengths`` (optional, ``(B,)``) cuts each row before decoding, e.g. the lengths
        returned by :meth:`encode_batch`.
        """
        if isinstance(ids, torch.Tensor):
            if ids.ndim != 2:
                raise ParameterError(f"ids must be a 2-D tensor (B, L). Found {tuple(ids.shape)}")
            rows = list(ids)
        elif isinstance(ids, Sequence) and not isinstance(ids, str):
            rows = list(ids)
        else:
            raise ParameterError(
                f"ids must be a (B, L) tensor or a list of lists. Found {ids!r:.80}"
            )
        if lengths is not None:
            lengths = lengths.tolist() if isinstance(lengths, torch.Tensor) else list(lengths)
            if len(lengths) != len(rows):
                raise ParameterError(
                    f"lengths must have one entry per row ({len(rows)}). Found {len(lengths)}"
                )
            rows = [
                r[: check_positive_int(n, f"lengths[{k}]", minimum=0)]
                for k, (r, n) in enumerate(zip(rows, lengths, strict=True))
            ]
        return [self.decode(r, strip_special=strip_special) for r in rows]

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike) -> Path:
        """Write the vocabulary as JSON, atomically (a reader never sees half a file)."""
        doc = {
            "format": _FORMAT,
            "version": _VERSION,
            "specials": list(self._specials),
            "tokens": list(self._itos),
        }
        return write_json(path, doc, indent=0, ensure_ascii=False)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Read a vocabulary written by :meth:`save`; DataError if the file is not one."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(f"vocabulary file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as err:
            raise DataError(f"cannot read vocabulary file {path}: {err}") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"vocabulary file {path} is not valid JSON: {err}") from None
        if not isinstance(doc, dict):
            raise DataError(
                f"vocabulary file {path} must hold a JSON object. Found: {type(doc).__name__}"
            )
        if doc.get("format") != _FORMAT:
            raise DataError(
                f"vocabulary file {path} has format {doc.get('format')!r}; expected {_FORMAT!r}"
            )
        if doc.get("version") != _VERSION:
            raise DataError(
                f"vocabulary file {path} has version {doc.get('version')!r}; "
                f"this xmodal reads version {_VERSION}"
            )
        specials, tokens = doc.get("specials"), doc.get("tokens")
        for key, value in (("specials", specials), ("tokens", tokens)):
            if not isinstance(value, list):
                raise DataError(
                    f"vocabulary file {path}: {key!r} must be a list. Found: {value!r:.80}"
                )
        if specials[: len(SPECIALS)] != list(SPECIALS):
            raise DataError(
                f"vocabulary file {path}: specials must start with {list(SPECIALS)}. "
                f"Found: {specials!r:.200}"
            )
        if tokens[: len(specials)] != specials:
            raise DataError(
                f"vocabulary file {path}: tokens must start with the specials {specials!r:.200}. "
                f"Found: {tokens[: len(specials)]!r:.200}"
            )
        _check_token_list(tokens, f"vocabulary file {path}: tokens", DataError)
        return cls(tokens[len(specials) :], specials=specials)
