"""Word vectors: look-up, neighbours, arithmetic, and the word2vec text and binary formats.

:class:`WordVectors` holds a vocabulary (most frequent word first) and one float32 vector
per word. It is what :func:`xmodal.text.word2vec.train_word2vec` returns and what a
word2vec directory holds:

========== ===============================================================
file       content
========== ===============================================================
vectors.bin  the vectors in word2vec's binary format (gensim and word2vec.c read it)
vocab.txt    ``word count`` per line, word2vec.c's ``-save-vocab`` format (if counts)
config.json  the training config and the run's numbers (``meta``)
========== ===============================================================

The formats are word2vec.c's: a header line ``"<words> <dim>\\n"``, then per word either
``word v1 v2 ... vD\\n`` (text) or ``word `` followed by ``D`` little-endian float32 and a
``\\n`` (binary). gensim's ``KeyedVectors.load_word2vec_format`` reads both, and
:func:`load_word2vec_format` reads gensim's (which leaves out the binary ``\\n``).

Example::

    wv = WordVectors.load("w2v")
    wv.most_similar("paris", topn=3)
    wv.arithmetic(positive=["king", "woman"], negative=["man"], topn=1)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np

from xmodal._checks import check_bool, check_positive_int
from xmodal._io import atomic_path, write_json, write_text
from xmodal.errors import DataError, ParameterError

__all__ = [
    "WordVectors",
    "embedding_from_word2vec",
    "load_word2vec_format",
    "model_word_init",
    "parse_arithmetic",
    "save_word2vec_format",
]

_FORMAT = "xmodal.word2vec"
_VERSION = 1
_CHUNK = 1 << 20


class WordVectors:
    """Words and their vectors, with cosine neighbours and 3CosAdd arithmetic.

    ``words``: distinct non-empty strings without whitespace; ``vectors``: ``(V, D)``
    finite numbers (kept as float32); ``counts``: optional ``(V,)`` corpus counts;
    ``meta``: a JSON-able dict saved as ``config.json``.
    """

    def __init__(self, words: Sequence[str], vectors, *, counts=None, meta: Mapping | None = None):
        if isinstance(words, str) or not isinstance(words, Iterable):
            raise ParameterError(f"words must be a sequence of str. Found: {words!r:.80}")
        words = tuple(words)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words) or vectors.shape[1] < 1:
            raise ParameterError(
                f"vectors must have shape (len(words), dim) = ({len(words)}, dim >= 1). "
                f"Found: {vectors.shape}"
            )
        if len(words) == 0:
            raise ParameterError("words is empty: word vectors need at least one word")
        index: dict[str, int] = {}
        for i, w in enumerate(words):
            if not isinstance(w, str) or not w or len(w.split()) != 1 or w != w.strip():
                raise ParameterError(f"words[{i}] must be a non-empty str without whitespace. "
                                     f"Found: {w!r}")  # fmt: skip
            if index.setdefault(w, i) != i:
                raise ParameterError(f"words holds {w!r} twice (at {index[w]} and {i})")
        finite = np.isfinite(vectors).all(axis=1)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            raise ParameterError(f"the vector of {words[bad]!r} (row {bad}) holds NaN or Inf")
        if counts is not None:
            counts = np.asarray(counts, dtype=np.int64)
            if counts.shape != (len(words),) or (counts < 0).any():
                raise ParameterError(
                    f"counts must be ({len(words)},) non-negative integers. Found shape "
                    f"{counts.shape}"
                )
        self._words = words
        self._index = index
        self.vectors = vectors
        self.counts = counts
        self.meta = dict(meta) if meta is not None else {}
        self._unit: np.ndarray | None = None

    # ------------------------------------------------------------------ look-up

    @property
    def words(self) -> tuple[str, ...]:
        """Every word, by index (most frequent first for trained vectors)."""
        return self._words

    @property
    def key_to_index(self) -> Mapping[str, int]:
        return MappingProxyType(self._index)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self._words)

    def __contains__(self, word) -> bool:
        return isinstance(word, str) and word in self._index

    def __repr__(self) -> str:
        return f"WordVectors(words={len(self)}, dim={self.dim})"

    def index(self, word: str) -> int:
        """The row of ``word``; ParameterError naming it if it is not in the vocabulary."""
        if not isinstance(word, str):
            raise ParameterError(f"word must be a str. Found: {type(word).__name__} {word!r:.80}")
        i = self._index.get(word)
        if i is None:
            hint = ""
            for other in (word.lower(), word.upper(), word.capitalize()):
                if other != word and other in self._index:
                    hint = f"; did you mean {other!r}?"
                    break
            raise ParameterError(
                f"word {word!r} is not in the vocabulary ({len(self):,} words){hint}"
            )
        return i

    def __getitem__(self, word: str) -> np.ndarray:
        """The vector of ``word``, shape ``(dim,)`` (a read-only view)."""
        v = self.vectors[self.index(word)]
        v.flags.writeable = False
        return v

    @property
    def unit_vectors(self) -> np.ndarray:
        """``(V, D)`` vectors scaled to length 1 (a zero vector stays zero); cached."""
        if self._unit is None or self._unit.shape != self.vectors.shape:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._unit = self.vectors / np.where(norms > 0, norms, 1).astype(np.float32)
        return self._unit

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        u = self.unit_vectors
        return float(u[self.index(a)] @ u[self.index(b)])

    # ------------------------------------------------------------------ neighbours

    def _ranked(self, query: np.ndarray, exclude: Iterable[int], topn: int, restrict_vocab):
        topn = check_positive_int(topn, "topn")
        n = len(self)
        if restrict_vocab is not None:
            n = min(check_positive_int(restrict_vocab, "restrict_vocab"), n)
        norm = float(np.linalg.norm(query))
        if not np.isfinite(norm):
            raise ParameterError("the query vector holds NaN or Inf")
        query = (query / norm if norm > 0 else query).astype(np.float32)
        sims = self.unit_vectors[:n] @ query
        exclude = [i for i in exclude if i < n]
        sims[exclude] = -np.inf
        k = min(topn, n - len(exclude))
        if k <= 0:
            return []
        best = np.argpartition(-sims, k - 1)[:k] if k < n else np.arange(n)
        best = best[np.argsort(-sims[best], kind="stable")][:k]
        return [(self._words[i], float(sims[i])) for i in best.tolist()]

    def most_similar(self, word_or_vector, topn: int = 10, *, restrict_vocab: int | None = None):
        """The ``topn`` nearest words by cosine, as ``[(word, cosine), ...]``, best first.

        ``word_or_vector`` is a word (left out of its own neighbours) or a ``(dim,)``
        vector. ``restrict_vocab`` searches only the first (most frequent) words.
        """
        if isinstance(word_or_vector, str):
            i = self.index(word_or_vector)
            return self._ranked(self.unit_vectors[i], [i], topn, restrict_vocab)
        v = np.asarray(word_or_vector, dtype=np.float32)
        if v.shape != (self.dim,):
            raise ParameterError(f"the query vector must have shape ({self.dim},). "
                                 f"Found: {v.shape}")  # fmt: skip
        return self._ranked(v, [], topn, restrict_vocab)

    def arithmetic(
        self,
        positive: Sequence[str] = (),
        negative: Sequence[str] = (),
        *,
        topn: int = 10,
        restrict_vocab: int | None = None,
    ):
        """Words nearest to ``sum(unit(positive)) - sum(unit(negative))`` (3CosAdd).

        The input words are left out of the answer, as in the analogy task and in gensim's
        ``most_similar(positive=..., negative=...)``. ``king - man + woman`` is
        ``arithmetic(positive=["king", "woman"], negative=["man"])``.
        """
        for name, group in (("positive", positive), ("negative", negative)):
            if isinstance(group, str) or not isinstance(group, Iterable):
                raise ParameterError(f"{name} must be a list of words. Found: {group!r:.80}")
        positive, negative = list(positive), list(negative)
        if not positive and not negative:
            raise ParameterError("arithmetic needs at least one positive or negative word")
        rows = [self.index(w) for w in positive + negative]
        weights = np.r_[np.ones(len(positive)), -np.ones(len(negative))].astype(np.float32)
        query = weights @ self.unit_vectors[rows]
        return self._ranked(query, rows, topn, restrict_vocab)

    # ------------------------------------------------------------------ files

    def save_word2vec_format(self, path, *, binary: bool = True) -> Path:
        """Write the word2vec binary (default) or text format; see :func:`save_word2vec_format`."""
        return save_word2vec_format(self, path, binary=binary)

    @classmethod
    def load_word2vec_format(cls, path, *, binary: bool | None = None, **kwargs) -> WordVectors:
        return load_word2vec_format(path, binary=binary, **kwargs)

    def save(self, directory) -> Path:
        """Write ``vectors.bin``, ``vocab.txt`` (with counts) and ``config.json`` to
        ``directory`` (created if needed; each file written atomically)."""
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise ParameterError(f"{directory}: exists and is not a directory")
        directory.mkdir(parents=True, exist_ok=True)
        save_word2vec_format(self, directory / "vectors.bin", binary=True)
        if self.counts is not None:
            text = "".join(f"{w} {c}\n" for w, c in zip(self._words, self.counts.tolist(),
                                                         strict=True))  # fmt: skip
            write_text(directory / "vocab.txt", text)
        info = {"format": _FORMAT, "version": _VERSION, "words": len(self), "dim": self.dim,
                **self.meta}  # fmt: skip
        write_json(directory / "config.json", info, indent=2, default=_json_default)
        return directory

    @classmethod
    def load(cls, path) -> WordVectors:
        """Read a word2vec directory (:meth:`save`) or a single word2vec-format file."""
        path = Path(path)
        if path.is_file():
            return load_word2vec_format(path)
        if not path.is_dir():
            raise DataError(f"{path}: no such word2vec directory or vectors file")
        vec_path = path / "vectors.bin"
        if not vec_path.is_file():
            raise DataError(f"{path}: holds no vectors.bin (is it a word2vec directory?)")
        wv = load_word2vec_format(vec_path, binary=True)
        meta: dict = {}
        if (path / "config.json").is_file():
            try:
                meta = json.loads((path / "config.json").read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise DataError(f"{path / 'config.json'}: is not valid JSON ({err})") from None
            found = meta.get("format") if isinstance(meta, dict) else None
            if found != _FORMAT:
                raise DataError(f"{path / 'config.json'}: is not an xmodal word2vec config "
                                f"(format {found!r})")  # fmt: skip
            for key in ("format", "version", "words", "dim"):
                meta.pop(key, None)
        counts = None
        if (path / "vocab.txt").is_file():
            counts = _read_vocab_counts(path / "vocab.txt", wv.words)
        return cls(wv.words, wv.vectors, counts=counts, meta=meta)

    def to_tensor(self):
        """The vectors as a ``(V, D)`` float32 torch tensor (shares memory)."""
        import torch

        return torch.from_numpy(self.vectors)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _read_vocab_counts(path: Path, words: Sequence[str]) -> np.ndarray:
    counts = np.zeros(len(words), dtype=np.int64)
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [line for line in f.read().split("\n") if line.strip()]
    if len(lines) != len(words):
        raise DataError(f"{path}: holds {len(lines)} words but vectors.bin holds {len(words)}")
    for i, (line, word) in enumerate(zip(lines, words, strict=True)):
        parts = line.split()
        if len(parts) != 2 or parts[0] != word or not parts[1].isdigit():
            raise DataError(f"{path}: line {i + 1} must be '{word} <count>'. Found: {line!r:.80}")
        counts[i] = int(parts[1])
    return counts


# ---------------------------------------------------------------- the word2vec formats


def save_word2vec_format(vectors: WordVectors, path, *, binary: bool = True) -> Path:
    """Write ``vectors`` in word2vec's binary (``binary=True``) or text format.

    Binary: header ``"V D\\n"``, then ``word`` + space + ``D`` little-endian float32 +
    ``\\n`` per word (word2vec.c's layout). Text: ``word v1 ... vD`` per line, each value
    printed with 9 significant digits, which float32 survives exactly.
    """
    if not isinstance(vectors, WordVectors):
        raise ParameterError(f"vectors must be WordVectors. Found: {type(vectors).__name__}")
    binary = check_bool(binary, "binary")
    path = Path(path)
    n, dim = vectors.vectors.shape
    data = vectors.vectors.astype("<f4", copy=False)

    def write(f):
        f.write(f"{n} {dim}\n".encode())
        for start in range(0, n, 4096):
            stop = min(start + 4096, n)
            if binary:
                rows = data[start:stop]
                parts = []
                for word, row in zip(vectors.words[start:stop], rows, strict=True):
                    parts.append(word.encode("utf-8") + b" " + row.tobytes() + b"\n")
                f.write(b"".join(parts))
            else:
                fmt = " ".join(["%.9g"] * dim)
                rows = data[start:stop].tolist()
                words = vectors.words[start:stop]
                lines = [f"{w} {fmt % tuple(r)}\n" for w, r in zip(words, rows, strict=True)]
                f.write("".join(lines).encode("utf-8"))

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
    return path


_HEADER = re.compile(rb"^\s*(\d+)\s+(\d+)\s*$")


def _read_header(f, path: Path) -> tuple[int, int]:
    line = f.readline(256)
    m = _HEADER.match(line)
    if not m or not line.endswith(b"\n"):
        raise DataError(
            f"{path}: the first line must be '<number of words> <dimensions>' (word2vec "
            f"format). Found: {line[:80]!r}"
        )
    n, dim = int(m.group(1)), int(m.group(2))
    if n < 1 or dim < 1:
        raise DataError(f"{path}: the header says {n} words of {dim} dimensions; both must be >= 1")
    return n, dim


def _sniff_binary(f, dim: int) -> bool:
    """True unless the first record reads as a text line of a word and ``dim`` numbers."""
    pos = f.tell()
    head = f.read(min(64 + dim * 40, 1 << 16))
    f.seek(pos)
    line = head.split(b"\n", 1)[0]
    try:
        parts = line.decode("utf-8").split()
        if len(parts) != dim + 1:
            return True
        [float(x) for x in parts[1:]]
    except (UnicodeDecodeError, ValueError):
        return True
    return False


def load_word2vec_format(
    path, *, binary: bool | None = None, unicode_errors: str = "strict"
) -> WordVectors:
    """Read a word2vec text or binary file (word2vec.c's, gensim's or ours).

    ``binary=None`` tells the two apart from the first record. ``unicode_errors`` is passed
    to ``bytes.decode`` for the words ("replace" reads files with broken UTF-8).
    Raises DataError naming the file for a wrong header, a truncated file, a record of the
    wrong length, a duplicate word or non-finite values.
    """
    path = Path(path)
    if binary is not None:
        binary = check_bool(binary, "binary")
    if unicode_errors not in ("strict", "replace", "ignore"):
        raise ParameterError(
            f"unicode_errors must be 'strict', 'replace' or 'ignore'. Found: {unicode_errors!r}"
        )
    if not path.is_file():
        raise DataError(f"{path}: no such vectors file")
    with open(path, "rb") as f:
        n, dim = _read_header(f, path)
        if binary is None:
            binary = _sniff_binary(f, dim)
        reader = _read_binary if binary else _read_text
        words, vectors = reader(f, n, dim, path, unicode_errors)
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise DataError(f"{path}: the vector of {words[bad]!r} (record {bad + 1}) holds NaN or Inf")
    seen: dict[str, int] = {}
    for i, w in enumerate(words):
        if seen.setdefault(w, i) != i:
            raise DataError(
                f"{path}: the word {w!r} appears twice (records {seen[w] + 1} and {i + 1})"
            )
    return WordVectors(words, vectors)


def _decode_word(raw: bytes, path: Path, record: int, errors: str) -> str:
    try:
        word = raw.decode("utf-8", errors=errors)
    except UnicodeDecodeError:
        raise DataError(f"{path}: the word of record {record} is not UTF-8 ({raw[:40]!r}); "
                        "pass unicode_errors='replace' to read it anyway") from None  # fmt: skip
    if not word or len(word.split()) != 1:
        raise DataError(f"{path}: record {record} has an empty or malformed word {word!r:.80}")
    return word


def _read_binary(f, n: int, dim: int, path: Path, errors: str):
    vectors = np.empty((n, dim), dtype=np.float32)
    words: list[str] = []
    nbytes = 4 * dim
    buf, pos = b"", 0
    for i in range(n):
        while True:
            # A record: optional newline(s) (word2vec.c writes one after each vector), the
            # word, a space, the float32s.
            while pos < len(buf) and buf[pos] in b"\n\r":
                pos += 1
            space = buf.find(b" ", pos)
            if space >= 0 and len(buf) - space - 1 >= nbytes:
                break
            more = f.read(max(_CHUNK, nbytes + 1024))
            if not more:
                raise DataError(f"{path}: ends in record {i + 1} of {n} (a truncated file, or "
                                "a header that promises too many words)")  # fmt: skip
            buf, pos = buf[pos:] + more, 0
        words.append(_decode_word(buf[pos:space], path, i + 1, errors))
        vectors[i] = np.frombuffer(buf, dtype="<f4", count=dim, offset=space + 1)
        pos = space + 1 + nbytes
    rest = (buf[pos:] + f.read(64)).strip()
    if rest:
        raise DataError(
            f"{path}: holds more than the {n} records of its header (next bytes "
            f"{rest[:20]!r}), or the header's {dim} dimensions are wrong"
        )
    return words, vectors


def _read_text(f, n: int, dim: int, path: Path, errors: str):
    vectors = np.empty((n, dim), dtype=np.float32)
    words: list[str] = []
    for i in range(n):
        line = f.readline()
        if not line:
            raise DataError(f"{path}: ends at line {i + 2}; the header promises {n} words")
        parts = line.rstrip(b"\r\n").split()
        if len(parts) != dim + 1:
            raise DataError(f"{path}: line {i + 2} has {len(parts) - 1} values, the header "
                            f"says {dim} (is this the text format?)")  # fmt: skip
        words.append(_decode_word(parts[0], path, i + 1, errors))
        try:
            vectors[i] = np.array(parts[1:], dtype=np.float32)
        except ValueError:
            raise DataError(f"{path}: line {i + 2} holds a value that is not a number") from None
    rest = f.read(1 << 16).strip()
    if rest:
        raise DataError(f"{path}: holds more lines than the {n} of its header")
    return words, vectors


# ---------------------------------------------------------------- helpers


def parse_arithmetic(expression: str) -> tuple[list[str], list[str]]:
    """``"king - man + woman"`` -> ``(["king", "woman"], ["man"])``.

    Words are separated by ``+`` or ``-`` with spaces around (so hyphenated words such as
    ``"t-shirt"`` stay whole); a single word is ``([word], [])``.
    """
    if not isinstance(expression, str) or not expression.strip():
        raise ParameterError(f"expression must be a non-empty str. Found: {expression!r}")
    tokens = expression.split()
    positive: list[str] = []
    negative: list[str] = []
    sign = +1
    expect_word = True
    for tok in tokens:
        if tok in ("+", "-"):
            if expect_word and (positive or negative):
                raise ParameterError(f"expression has two operators in a row: {expression!r}")
            sign = +1 if tok == "+" else -1
            expect_word = True
            continue
        if not expect_word:
            raise ParameterError(
                f"expression needs + or - between words (with spaces): {expression!r}"
            )
        (positive if sign > 0 else negative).append(tok)
        expect_word = False
    if expect_word:
        raise ParameterError(f"expression ends with an operator: {expression!r}")
    return positive, negative


def embedding_from_word2vec(vocab, source, *, std: float | None = None, generator=None):
    """An ``nn.Embedding`` weight for ``vocab`` initialised from word2vec vectors.

    ``vocab`` is a :class:`xmodal.text.vocab.Vocabulary`; ``source`` a word2vec directory,
    a vectors file or a :class:`WordVectors`. A vocabulary word takes the vector of the
    same word, else of its lower-cased form; the others (and the special tokens but
    ``<pad>``) get ``normal(0, std)`` with ``std`` the found vectors' (default), and
    ``<pad>`` (id 0) gets zeros. Returns ``(weight, n_found)``: a ``(len(vocab), dim)``
    float32 tensor and how many ordinary words were found. Example::

        weight, found = embedding_from_word2vec(vocab, "runs/w2v")
        emb = nn.Embedding.from_pretrained(weight, freeze=False, padding_idx=0)
    """
    import torch

    from xmodal.text.vocab import PAD_ID, Vocabulary

    if not isinstance(vocab, Vocabulary):
        raise ParameterError(f"vocab must be a Vocabulary. Found: {type(vocab).__name__}")
    wv = source if isinstance(source, WordVectors) else WordVectors.load(source)
    rows = np.full(len(vocab), -1, dtype=np.int64)
    n_special = len(vocab.specials)
    for i, word in enumerate(vocab.itos[n_special:], start=n_special):
        j = wv.key_to_index.get(word)
        if j is None:
            j = wv.key_to_index.get(word.lower())
        if j is not None:
            rows[i] = j
    found = rows >= 0
    n_found = int(found.sum())
    if std is None:
        std = float(wv.vectors[rows[found]].std()) if n_found else float(wv.vectors.std())
    elif not (isinstance(std, (int, float)) and np.isfinite(std) and std >= 0):
        raise ParameterError(f"std must be a finite number >= 0 or None. Found: {std!r}")
    weight = torch.randn(len(vocab), wv.dim, generator=generator) * std
    if n_found:
        weight[torch.from_numpy(np.flatnonzero(found))] = torch.from_numpy(wv.vectors[rows[found]])
    weight[PAD_ID] = 0.0
    return weight, n_found


def model_word_init(vocab, source, dim: int, *, dim_key: str = "model.word_dim"):
    """A task's ``model.word2vec=source`` as its word embedding's starting weight.

    :func:`embedding_from_word2vec`, checked for what a task's config asks: the vectors
    must be ``dim``-dimensional (``dim_key`` names the config key to change when they are
    not) and hold at least one word of ``vocab``. Returns ``(weight (V, dim), n_found)``.
    """
    weight, found = embedding_from_word2vec(vocab, source)
    if weight.shape[1] != dim:
        raise ParameterError(
            f"model.word2vec={str(source)!r} holds {weight.shape[1]}-d vectors but "
            f"{dim_key}={dim}: set {dim_key}={weight.shape[1]}"
        )
    if found == 0:
        raise DataError(
            f"model.word2vec={str(source)!r} has none of the {len(vocab)} vocabulary words"
        )
    return weight, found
