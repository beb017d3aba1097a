"""Referencing: produce one modality while consulting another (VQA, ...).

- :class:`VQAModel`: visual question answering as classification over the frequent
  answers, with stacked attention (SAN), element-wise product or concatenation fusion;
  trained by the ``vqa`` task.
"""

from xmodal.referencing.vqa import QuestionEncoder, VQAModel, VQAOutput

__all__ = ["QuestionEncoder", "VQAModel", "VQAOutput"]
