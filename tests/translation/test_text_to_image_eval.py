"""The metrics of generated world scenes (:mod:`xmodal.translation.text_to_image_eval`),
wired to stand-in judges whose answers are known: each metric from the right images, the
noises drawn from the seed, and the real images alike taken in order."""

from __future__ import annotations

import pytest
import torch

from xmodal.data.scenes import attribute_classes, class_attributes, naming_caption
from xmodal.translation.text_to_image_eval import score_generated


class _Judge(torch.nn.Module):
    """Calls every image colour 0 and shape 0."""

    def forward(self, images):
        logits = torch.zeros(len(images), 6)
        logits[:, 0] = 1.0
        return logits, logits[:, :5]


class _Embed(torch.nn.Module):
    """Every image and every caption the same vector: each image's own caption wins the
    ties, so P@1 is 100."""

    def embed_images(self, images):
        return torch.ones(len(images), 4)

    def embed_texts(self, tokens, lengths):
        return torch.ones(len(tokens), 4)


def test_score_generated_gives_each_metric_from_its_images():
    from xmodal.text.vocab import Vocabulary
    from xmodal.world import World

    world = World(seed=0, image_size=32, min_objects=1, max_objects=1)
    scenes = [world.scene("test", i, audio=False, questions=False) for i in range(100)]
    real = torch.stack([s.image for s in scenes])
    vocab = Vocabulary.build([c for s in scenes for c in s.captions], min_freq=1)
    calls = []

    def draw(captions, *, n, seed):  # the real images back, the same under every noise
        calls.append((list(captions), n, seed))
        return real[: len(captions)].float().div(255).repeat_interleave(n, dim=0)

    more = (world.scene("test", i, audio=False, questions=False) for i in range(500))
    metrics = score_generated(draw, real, scenes, _Judge(), _Embed(), vocab, candidates=more,
                              n_noises=3, n_diversity=5, seed=7)  # fmt: skip
    captions = [naming_caption(s) for s in scenes]
    assert calls == [(captions, 1, 7), (captions[:5], 3, 8)]
    colour, shape = class_attributes(attribute_classes(scenes))
    c, s = 100 * float((colour == 0).float().mean()), 100 * float((shape == 0).float().mean())
    both = 100 * float(((colour == 0) & (shape == 0)).float().mean())
    assert metrics["colour_accuracy"] == pytest.approx(c) == metrics["classifier_real_colour"]
    assert metrics["shape_accuracy"] == pytest.approx(s) == metrics["classifier_real_shape"]
    assert metrics["attribute_accuracy"] == pytest.approx(both)
    assert metrics["retrieval_p1"] == metrics["retrieval_p1_real"] == 100.0
    assert metrics["retrieval_chance"] == 1.0 and metrics["n_captions"] == 100
    assert metrics["diversity"] == 0.0  # one image under every noise
    assert 0.0 < metrics["diversity_real"] <= 1.0  # real scenes alike still differ
