"""Matching: models that map modalities into one space and compare them there.

- :class:`JointEmbedding` (an image encoder and a text encoder of
  :mod:`xmodal.text.encoders`, :class:`GRUTextEncoder` or :class:`TransformerTextEncoder`,
  both L2-normalised into one space; the two are re-exported here), trained by the
  ``retrieval`` task; :mod:`xmodal.matching.arithmetic` does arithmetic and tags in it;
- :class:`Im2Recipe` (an image encoder and :class:`RecipeEncoder`, ingredients and
  instructions), trained by the ``recipe`` task with :func:`im2recipe_loss`;
- :class:`VectorIndex`: search of a gallery of embeddings on FAISS (exact or approximate),
  saved and loaded without pickle; :func:`search_torch` is the exact brute-force search.
"""

from xmodal.matching.index import VectorIndex, search_torch
from xmodal.matching.joint import JointEmbedding
from xmodal.matching.recipe import Im2Recipe, RecipeEncoder, im2recipe_loss
from xmodal.text.encoders import GRUTextEncoder, TransformerTextEncoder

__all__ = [
    "GRUTextEncoder",
    "Im2Recipe",
    "JointEmbedding",
    "RecipeEncoder",
    "TransformerTextEncoder",
    "VectorIndex",
    "im2recipe_loss",
    "search_torch",
]
