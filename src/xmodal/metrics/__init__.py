"""Metrics of what models produce: caption scores (COCO), what a caption says about a world
scene and where its words looked (grounding), retrieval, VQA and generated images."""

from xmodal.metrics.captioning import (
    METRICS,
    best_reference_scores,
    coco_scores,
    leave_one_out_scores,
)
from xmodal.metrics.generation import attribute_accuracy, caption_p_at_1, mean_pairwise_rms
from xmodal.metrics.grounding import (
    attention_grounding,
    content_precision,
    grounding_chance,
    held_out_recall,
)
from xmodal.metrics.retrieval import (
    fold_average,
    retrieval_ceiling,
    retrieval_metrics,
    retrieval_ranks,
)
from xmodal.metrics.vqa import normalize_answer, vqa_accuracy, vqa_scores

__all__ = [
    "METRICS",
    "attention_grounding",
    "coco_scores",
    "content_precision",
    "grounding_chance",
    "held_out_recall",
    "best_reference_scores",
    "leave_one_out_scores",
    "fold_average",
    "retrieval_ceiling",
    "retrieval_metrics",
    "retrieval_ranks",
    "normalize_answer",
    "vqa_accuracy",
    "vqa_scores",
    "attribute_accuracy",
    "caption_p_at_1",
    "mean_pairwise_rms",
]
