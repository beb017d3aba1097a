"""How well a text-to-image generator draws the captions of single-object world scenes,
judged by models trained apart from it on real images (docs/text2image.md, Metrics).

For each scene, a caption naming its object's colour and shape
(:func:`~xmodal.data.scenes.naming_caption`) is drawn; a judge classifier
(:class:`~xmodal.translation.text_to_image_fit.AttributeClassifier`) says whether the
image shows both, a joint embedding whether it finds the image's caption again among 100
(P@1), and the images of one caption under other noises are compared with real images
alike (diversity)::

    def draw(captions, *, n, seed):  # (len(captions) * n, 3, H, W) in [0, 1]
        ...

    metrics = score_generated(draw, real, scenes, judge, embed, vocab, candidates=more)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from xmodal.data.scenes import (
    attribute_classes,
    class_attributes,
    naming_caption,
    same_attribute_images,
)
from xmodal.metrics.generation import attribute_accuracy, caption_p_at_1, mean_pairwise_rms

__all__ = ["score_generated"]


def score_generated(
    draw: Callable[..., torch.Tensor],
    real: torch.Tensor,
    scenes: Sequence,
    judge: nn.Module,
    embed: nn.Module,
    vocab,
    *,
    candidates: Iterable,
    n_noises: int = 8,
    n_diversity: int = 50,
    seed: int = 0,
) -> dict[str, float]:
    """The metrics of the images ``draw(captions, n=n, seed=seed)`` gives (``(len(captions) * n, 3,
    H, W)`` in [0, 1], a caption's ``n`` together) for ``scenes`` (at least 100) and their
    ``real`` images ``(N, 3, H, W)`` uint8; accuracies and precisions in percent:

    - ``attribute_accuracy`` (colour and shape right), ``colour_accuracy``,
      ``shape_accuracy``: ``judge(images)`` → (colour logits, shape logits) on one image
      per caption (noise from ``seed``); ``classifier_real_accuracy`` (``_colour``,
      ``_shape``): the same on ``real``, the ceiling;
    - ``retrieval_p1``: :func:`~xmodal.metrics.generation.caption_p_at_1` of
      ``embed.embed_images`` against ``embed.embed_texts`` of the captions (encoded with
      ``vocab``), ``retrieval_p1_real`` on ``real``, ``retrieval_chance`` (1);
    - ``diversity``: :func:`~xmodal.metrics.generation.mean_pairwise_rms` of the
      ``n_noises`` images (noise from ``seed + 1``) of each of the first ``n_diversity``
      captions; ``diversity_real``: of real images alike, the first ``n_noises`` scenes of
      ``candidates`` (in order) with each one's size, colour and shape
      (:func:`~xmodal.data.scenes.same_attribute_images`);
    - ``n_captions``: N.
    """
    n = len(scenes)
    captions = [naming_caption(s) for s in scenes]
    fake = draw(captions, n=1, seed=seed)  # (n, 3, H, W)
    colour, shape = class_attributes(attribute_classes(scenes))
    both, (col, shp) = attribute_accuracy(judge(fake), [colour, shape])
    real_both, (real_col, real_shp) = attribute_accuracy(judge(real), [colour, shape])
    metrics = {
        "attribute_accuracy": both,
        "shape_accuracy": shp,
        "colour_accuracy": col,
        "classifier_real_accuracy": real_both,
        "classifier_real_shape": real_shp,
        "classifier_real_colour": real_col,
    }
    txt = embed.embed_texts(*vocab.encode_batch(captions))  # (n, D)
    metrics["retrieval_p1"] = caption_p_at_1(embed.embed_images(fake), txt)
    metrics["retrieval_p1_real"] = caption_p_at_1(embed.embed_images(real.float() / 255), txt)
    metrics["retrieval_chance"] = 1.0  # one caption in 100
    k = min(n_diversity, n)
    many = draw(captions[:k], n=n_noises, seed=seed + 1)
    metrics["diversity"] = mean_pairwise_rms(many.view(k, n_noises, *many.shape[1:]))
    alike = same_attribute_images(scenes[:k], candidates, n_noises)
    metrics["diversity_real"] = mean_pairwise_rms(alike)  # real images alike
    metrics["n_captions"] = n
    return metrics
