"""Matching: models that map modalities into one space and compare them there.

- :class:`JointEmbedding` (image encoder + :class:`GRUTextEncoder`, both L2-normalised
  into one space), trained by the ``retrieval`` task;
- :class:`VectorIndex`: search of a gallery of embeddings on FAISS (exact or approximate),
  saved and loaded without pickle; :func:`search_torch` is the exact brute-force search.
"""

from xmodal.matching.index import VectorIndex, search_torch
from xmodal.matching.joint import GRUTextEncoder, JointEmbedding

__all__ = ["GRUTextEncoder", "JointEmbedding", "VectorIndex", "search_torch"]
