"""The short fits around the GAN (:mod:`xmodal.translation.text_to_image_fit`): the judge
classifier, each step's loss drawing only from its own generator, and the objectives:
what they train, what they log, and the global random state they leave alone."""

from __future__ import annotations

import pytest
import torch

from xmodal.engine.fit import fit_steps
from xmodal.errors import ParameterError
from xmodal.translation.text_to_image import Discriminator, aux_loss
from xmodal.translation.text_to_image_fit import (
    AttributeClassifier,
    attribute_judge_loss,
    attribute_judge_objective,
    classifier_pretrain_loss,
    classifier_pretrain_objective,
    sentence_pretrain_loss,
    sentence_pretrain_objective,
)


def _tac_discriminator() -> Discriminator:
    torch.manual_seed(0)
    return Discriminator(text_dim=8, proj_dim=4, ndf=4, image_size=32, norm="spectral",
                         cond="projection", aux_classes=(7, 6), aux_stride=4).eval()  # fmt: skip


def _scenes(n: int = 8):
    """The first ``n`` single-object training scenes at 32x32, their images and vocabulary."""
    from xmodal.text.vocab import Vocabulary
    from xmodal.world import World

    world = World(seed=0, image_size=32, min_objects=1, max_objects=1)
    scenes = [world.scene("train", i, audio=False, questions=False) for i in range(n)]
    vocab = Vocabulary.build([c for s in scenes for c in s.captions], min_freq=1)
    return torch.stack([s.image for s in scenes]), scenes, vocab


def test_the_attribute_classifier_gives_colour_and_shape_logits():
    torch.manual_seed(0)
    judge = AttributeClassifier(6, 5, channels=8)
    colour, shape = judge(torch.rand(2, 3, 32, 32))
    assert colour.shape == (2, 6) and shape.shape == (2, 5)
    with pytest.raises(ParameterError, match="n_shapes must be an integer >= 2. Found: 1"):
        AttributeClassifier(6, 1)


@torch.no_grad()
def test_the_auxiliary_fit_losses_draw_only_from_their_generator():
    from xmodal.matching.joint import JointEmbedding
    from xmodal.text.vocab import Vocabulary

    torch.manual_seed(0)
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    D = _tac_discriminator().train()
    judge = AttributeClassifier(7, 6, channels=8)
    captions = [["a red circle", "a circle"], ["a blue square"]] * 5
    vocab = Vocabulary.build([c for cs in captions for c in cs], min_freq=1)
    joint = JointEmbedding(len(vocab), encoder_kwargs={"channels": 8}, embed_dim=8,
                           word_dim=4, hidden=4)  # fmt: skip
    targets = torch.stack([torch.arange(10) % 7, torch.arange(10) % 6])
    losses = {
        "pretrain": lambda g: classifier_pretrain_loss(D.eval(), images, targets, batch_size=4,
                                                       augment="translation", generator=g)[0],
        "judge": lambda g: attribute_judge_loss(judge, images, targets[0], targets[1],
                                                generator=g, batch_size=4),
        "sentence": lambda g: sentence_pretrain_loss(joint, images.float() / 255, captions,
                                                     vocab, generator=g, batch_size=4),
    }  # fmt: skip
    for name, loss_of in losses.items():
        state = torch.random.get_rng_state()
        a = loss_of(torch.Generator().manual_seed(1))
        b = loss_of(torch.Generator().manual_seed(1))
        c = loss_of(torch.Generator().manual_seed(2))
        assert torch.equal(torch.random.get_rng_state(), state), name  # the global RNG: untouched
        assert float(a) == float(b) and float(a) != float(c), name
    # Attribute heads on the sentence: their cross entropy, over the named attributes only.
    heads = [torch.nn.Linear(8, 7), torch.nn.Linear(8, 6)]
    plain = sentence_pretrain_loss(
        joint,
        images.float() / 255,
        captions,
        vocab,
        generator=torch.Generator().manual_seed(3),
        batch_size=4,
    )
    seen = []

    def named(i: int, text: str) -> tuple[int, int]:
        seen.append((i, text))
        return (i % 7, -1)

    with_heads = sentence_pretrain_loss(joint, images.float() / 255, captions, vocab,
                                        generator=torch.Generator().manual_seed(3), batch_size=4,
                                        heads=heads, named=named, weight=0.5)  # fmt: skip
    assert len(seen) == 4 and all(t in captions[i] for i, t in seen)
    tokens, lengths = vocab.encode_batch([t for _, t in seen])
    _, txt = joint(images[[i for i, _ in seen]].float() / 255, tokens, lengths)
    targets = [torch.tensor([i % 7 for i, _ in seen]), torch.full((4,), -1)]
    aux, _ = aux_loss([h(txt) for h in heads], targets)
    assert float(with_heads) == pytest.approx(float(plain + 0.5 * aux), rel=1e-5)


def test_the_text_attribute_term_changes_only_the_sentence_pretraining():
    from xmodal.matching.joint import JointEmbedding

    images, scenes, vocab = _scenes()
    states = []
    for weight in (0.0, 1.0):
        torch.manual_seed(5)
        joint = JointEmbedding(len(vocab), encoder_kwargs={"channels": 8}, embed_dim=8,
                               word_dim=8, hidden=8)  # fmt: skip
        params, step = sentence_pretrain_objective(joint, images, scenes, vocab, seed=0,
                                                   text_aux=weight)  # fmt: skip
        assert len(params) == len(list(joint.parameters())) + (4 if weight else 0)  # 2 heads
        fit_steps(torch.optim.Adam(params, lr=2e-3), step, steps=3, modules=[joint])
        states.append((torch.random.get_rng_state(), joint.state_dict()))
    assert torch.equal(states[0][0], states[1][0])  # the heads take nothing from the seed
    text = [k for k in states[0][1] if k.startswith("text.")]
    assert any(not torch.equal(states[0][1][k], states[1][1][k]) for k in text)


def test_the_classifier_pretraining_trains_d_s_path_to_its_classifiers_and_logs_them():
    images, scenes, _ = _scenes()
    D = _tac_discriminator()
    params, step, last = classifier_pretrain_objective(D, images, scenes, 4, seed=0)
    assert {id(p) for p in params} == {id(p) for m in (D.encode, D.aux) for p in m.parameters()}
    assert last == {}
    state = torch.random.get_rng_state()
    losses = fit_steps(torch.optim.Adam(params, lr=1e-3), step, steps=2, modules=[D])
    assert torch.equal(torch.random.get_rng_state(), state)
    assert set(last) == {"colour", "shape"}
    assert losses[-1] == pytest.approx(last["colour"] + last["shape"], rel=1e-5)
    _, again, _ = classifier_pretrain_objective(D, images, scenes, 4, seed=0)
    _, other, _ = classifier_pretrain_objective(D, images, scenes, 4, seed=1)
    with torch.no_grad():
        D.eval()
        assert float(again(0)) != float(other(0))  # the batches come from the seed


def test_the_judge_objective_learns_each_scene_s_colour_and_shape():
    from xmodal.data.scenes import attribute_classes, class_attributes

    images, scenes, _ = _scenes()
    torch.manual_seed(0)
    judge = AttributeClassifier(6, 5, channels=8)
    params, step = attribute_judge_objective(judge, images, scenes, seed=3)
    assert len(params) == len(list(judge.parameters()))
    colour, shape = class_attributes(attribute_classes(scenes))
    want = attribute_judge_loss(judge, images, colour, shape,
                                generator=torch.Generator().manual_seed(3))  # fmt: skip
    assert float(step(0).detach()) == pytest.approx(float(want.detach()))
