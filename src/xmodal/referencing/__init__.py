"""Referencing: produce one modality while consulting another (VQA, ...).

- :class:`VQAModel`: visual question answering as classification over the frequent
  answers, with stacked attention (SAN), element-wise product or concatenation fusion;
  trained by the ``vqa`` task. Its question encoder, :class:`QuestionEncoder`, lives in
  :mod:`xmodal.text.encoders` (re-exported here).
- :class:`SoundSourceLocalizer`: where in a picture its sound comes from (Senocak et al.,
  2018), the cosine of a sound with every position of the picture's map; trained by the
  ``localize`` task with :func:`~xmodal.referencing.sound_source.localization_losses`.
- :class:`LookingToListen`: audio–visual speech separation (Ephrat et al., 2018), one
  complex ratio mask per speaker from the mixture and, optionally, the speakers' faces.
"""

from xmodal.referencing.sound_source import SoundSourceLocalizer
from xmodal.referencing.speech_separation import LookingToListen
from xmodal.referencing.vqa import VQAModel, VQAOutput
from xmodal.text.encoders import QuestionEncoder

__all__ = ["LookingToListen", "QuestionEncoder", "SoundSourceLocalizer", "VQAModel", "VQAOutput"]
