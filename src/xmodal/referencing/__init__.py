"""Referencing: produce one modality while consulting another (VQA, ...).

- :class:`VQAModel`: visual question answering as classification over the frequent
  answers, with stacked attention (SAN), element-wise product or concatenation fusion;
  trained by the ``vqa`` task. Its question encoder, :class:`QuestionEncoder`, lives in
  :mod:`xmodal.text.encoders` (re-exported here).
"""

from xmodal.referencing.vqa import VQAModel, VQAOutput
from xmodal.text.encoders import QuestionEncoder

__all__ = ["QuestionEncoder", "VQAModel", "VQAOutput"]
