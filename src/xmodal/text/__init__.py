"""Text as a representation: tokenization and the vocabulary shared by every text task.

``xmodal.text.vocab`` holds :func:`tokenize` and :class:`Vocabulary`; the common names are
re-exported here::

    from xmodal import text
    vocab = text.Vocabulary.build(captions, min_freq=2)
    ids, lengths = vocab.encode_batch(captions[:8])     # (8, L), (8,)
"""

from xmodal.text.vocab import (
    BOS,
    BOS_ID,
    EOS,
    EOS_ID,
    PAD,
    PAD_ID,
    SPECIALS,
    UNK,
    UNK_ID,
    Vocabulary,
    tokenize,
)

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
