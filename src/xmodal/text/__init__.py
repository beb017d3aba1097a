"""Text as a representation: words, word vectors and the transformer.

- ``xmodal.text.vocab``: :func:`tokenize` and the :class:`Vocabulary` every text task shares;
- ``xmodal.text.word2vec``: skip-gram word vectors (:func:`train_word2vec`,
  :class:`WordVectors`, analogy and similarity evaluation, the word2vec file formats);
- ``xmodal.text.transformer``: attention, the transformer block and :class:`GPT`;
  ``xmodal.text.heads``: GPT-1's fine-tuning heads;
- ``xmodal.text.encoders``: sentence encoders behind one interface (:class:`TextEncoder`:
  ``forward_features`` per token, ``forward_head`` per sentence, ``feature_info``), made
  by name with :func:`create_text_encoder` (``gru``, ``transformer``, ``lstm-question``, ...).

The common names are re-exported here::

    from xmodal import text
    vocab = text.Vocabulary.build(captions, min_freq=2)
    ids, lengths = vocab.encode_batch(captions[:8])     # (8, L), (8,)
    gpt = text.GPT(text.TransformerConfig.preset("tiny", vocab_size=len(vocab)))
"""

from xmodal.text import encoders, vocab
from xmodal.text.encoders import *  # noqa: F403 - the names of encoders.__all__
from xmodal.text.heads import MultipleChoice, PairSimilarity, SequenceClassifier
from xmodal.text.transformer import (
    GPT,
    Block,
    MultiHeadAttention,
    Transformer,
    TransformerConfig,
    scaled_dot_product_attention,
)
from xmodal.text.vocab import *  # noqa: F403 - the names of vocab.__all__
from xmodal.text.word2vec import (
    Word2VecConfig,
    WordVectors,
    embedding_from_word2vec,
    evaluate_analogies,
    evaluate_similarity,
    load_word2vec_format,
    save_word2vec_format,
    train_word2vec,
)

__all__ = [
    *encoders.__all__,
    *vocab.__all__,
    "GPT",
    "Block",
    "MultiHeadAttention",
    "Transformer",
    "TransformerConfig",
    "scaled_dot_product_attention",
    "MultipleChoice",
    "PairSimilarity",
    "SequenceClassifier",
    "Word2VecConfig",
    "WordVectors",
    "embedding_from_word2vec",
    "evaluate_analogies",
    "evaluate_similarity",
    "load_word2vec_format",
    "save_word2vec_format",
    "train_word2vec",
]
