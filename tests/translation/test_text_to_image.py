"""GAN-INT-CLS: the networks' shapes, the losses against hand-computed values, interpolation,
training through the engine (both networks change), predict and bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch

from xmodal.errors import ParameterError
from xmodal.tasks.text2image import (
    Text2ImageConfig,
    Text2ImageDataConfig,
    Text2ImageEvalConfig,
    Text2ImageModelConfig,
    Text2ImageOptimConfig,
    collate_pairs,
    image_grid,
    named_attributes,
    wrong_indices,
)
from xmodal.translation.text_to_image import (
    Discriminator,
    Generator,
    TextToImageGAN,
    aux_loss,
    diff_augment,
    discriminator_loss,
    generator_loss,
    interpolate_texts,
    mismatched,
)


@torch.no_grad()
def test_generator_gives_images_in_range_at_the_requested_size():
    torch.manual_seed(0)
    g = Generator(text_dim=16, proj_dim=8, noise_dim=10, ngf=4, image_size=64)
    x = g(torch.randn(3, 16), torch.randn(3, 10))
    assert x.shape == (3, 3, 64, 64)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    small = Generator(text_dim=16, proj_dim=8, noise_dim=10, ngf=4, image_size=32)
    assert small(torch.randn(2, 16), torch.randn(2, 10)).shape == (2, 3, 32, 32)


@torch.no_grad()
def test_same_text_other_noise_gives_another_image():
    torch.manual_seed(0)
    g = Generator(text_dim=16, proj_dim=8, noise_dim=10, ngf=4)  # batch statistics
    t = torch.randn(2, 16).repeat_interleave(2, dim=0)  # two texts, twice each
    x = g(t, torch.randn(4, 10))
    assert (x[0] - x[1]).abs().mean() > 0.1 * x.std()  # same text, other noise
    same = g(t, torch.randn(1, 10).repeat(4, 1))
    assert torch.allclose(same[0], same[1]) and not torch.allclose(same[0], same[2])


def test_discriminator_gives_one_logit_per_pair_from_a_4x4_map():
    torch.manual_seed(0)
    d = Discriminator(text_dim=16, proj_dim=8, ndf=4, image_size=64)
    assert d.features(torch.rand(5, 3, 64, 64)).shape == (5, 32, 4, 4)
    out = d(torch.rand(5, 3, 64, 64), torch.randn(5, 16))
    assert out.shape == (5,)
    # The sentence matters: the same image under another sentence is judged differently.
    img = torch.rand(1, 3, 64, 64).repeat(2, 1, 1, 1)
    d.eval()
    logits = d(img, torch.randn(2, 16))
    assert logits[0] != logits[1]


@torch.no_grad()
def test_one_image_encoding_serves_several_sentences_and_the_classifiers():
    torch.manual_seed(0)
    for cond in ("projection", "concat"):
        d = Discriminator(text_dim=16, proj_dim=8, ndf=4, image_size=32, norm="spectral",
                          cond=cond, aux_classes=(6, 5), aux_stride=4).eval()  # fmt: skip
        x, right, wrong = torch.rand(3, 3, 32, 32), torch.randn(3, 16), torch.randn(3, 16)
        mid, h = d.encode_image(x)
        assert mid.shape == (3, 8, 8, 8) and h.shape == (3, 16, 4, 4)
        assert torch.allclose(h, d.features(x))
        logits, heads = d(x, right, aux=True)
        assert torch.allclose(d.score(h, right), logits)
        assert torch.allclose(d.score(h, wrong), d(x, wrong))
        for a, b in zip(d.classify(mid), heads, strict=True):
            assert torch.allclose(a, b)


def test_image_size_must_be_four_times_a_power_of_two():
    with pytest.raises(ParameterError, match="image_size must be 4 times a power of two"):
        Generator(text_dim=4, image_size=48)
    with pytest.raises(ParameterError, match="image_size must be an integer >= 16"):
        Discriminator(text_dim=4, image_size=8)


def _bce(logit: float, target: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_matching_aware_loss_equals_the_hand_computed_bce():
    rr = torch.tensor([2.0, -1.0])  # real image, right text: should be real
    rw = torch.tensor([0.5, -3.0])  # real image, wrong text: fake
    fr = torch.tensor([1.0, 0.0])  # fake image, right text: fake
    loss, parts = discriminator_loss(rr, rw, fr)
    l_rr = (_bce(2.0, 1) + _bce(-1.0, 1)) / 2
    l_rw = (_bce(0.5, 0) + _bce(-3.0, 0)) / 2
    l_fr = (_bce(1.0, 0) + _bce(0.0, 0)) / 2
    assert float(loss) == pytest.approx(l_rr + (l_rw + l_fr) / 2, rel=1e-6)
    assert parts["d_real_wrong"] == pytest.approx(l_rw, rel=1e-6)
    assert parts["p_fake_right"] == pytest.approx((1 / (1 + math.exp(-1)) + 0.5) / 2, rel=1e-6)
    # Reed et al.'s form: -(log D(x,t) + (log(1 - D(x,t')) + log(1 - D(G(z,t),t))) / 2).
    d = torch.sigmoid
    reed = -(d(rr).log() + ((1 - d(rw)).log() + (1 - d(fr)).log()) / 2).mean()
    assert float(loss) == pytest.approx(float(reed), rel=1e-6)


def test_generator_loss_with_and_without_interpolated_texts():
    fr, fi = torch.tensor([0.0, 1.0]), torch.tensor([-2.0])
    loss, parts = generator_loss(fr)
    assert float(loss) == pytest.approx((_bce(0.0, 1) + _bce(1.0, 1)) / 2, rel=1e-6)
    assert "g_interp" not in parts
    loss2, parts2 = generator_loss(fr, fi)
    assert float(loss2) == pytest.approx(float(loss) + _bce(-2.0, 1), rel=1e-6)
    assert parts2["g_interp"] == pytest.approx(_bce(-2.0, 1), rel=1e-6)


@torch.no_grad()
def test_nearest_upsampling_generator_has_no_transposed_doublings():
    torch.manual_seed(0)
    g = Generator(text_dim=16, proj_dim=8, noise_dim=10, ngf=4, image_size=64,
                  upsample="nearest")  # fmt: skip
    x = g(torch.randn(3, 16), torch.randn(3, 10))
    assert x.shape == (3, 3, 64, 64)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    transposed = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(transposed) == 1  # only the 1x1 -> 4x4 projection
    ups = [m for m in g.modules() if isinstance(m, torch.nn.Upsample)]
    assert len(ups) == 4 and all(m.mode == "nearest" for m in ups)  # 4 -> 8 -> ... -> 64
    with pytest.raises(ParameterError, match="upsample must be one of"):
        Generator(text_dim=16, upsample="bilinear")


def test_spectral_norm_discriminator_has_unit_spectral_norm_and_no_batch_norm():
    from torch.nn.utils import parametrize

    torch.manual_seed(0)
    d = Discriminator(text_dim=16, proj_dim=8, ndf=4, image_size=32, norm="spectral")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    layers = [m for m in d.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    for _ in range(30):  # power iterations converge in training mode
        d(torch.rand(2, 3, 32, 32), torch.randn(2, 16))
    d.eval()
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=0.02)
    assert d(torch.rand(5, 3, 32, 32), torch.randn(5, 16)).shape == (5,)
    with pytest.raises(ParameterError, match="norm must be one of"):
        Discriminator(text_dim=16, norm="layer")


@torch.no_grad()
def test_projection_discriminator_scores_the_inner_product_with_the_sentence():
    torch.manual_seed(0)
    d = Discriminator(text_dim=16, proj_dim=8, ndf=4, image_size=32, cond="projection").eval()
    x, t = torch.rand(3, 3, 32, 32), torch.randn(3, 16)
    phi = d.features(x).sum((2, 3))  # (B, C)
    expected = d.judge(phi).flatten() + (d.embed(d.project(t)) * phi).sum(1)
    assert torch.allclose(d(x, t), expected)
    same = x[:1].repeat(2, 1, 1, 1)  # one image under two sentences: only the product differs
    logits = d(same, t[:2])
    gap = ((d.embed(d.project(t[:1])) - d.embed(d.project(t[1:2]))) * phi[:1]).sum()
    assert float(logits[0] - logits[1]) == pytest.approx(float(gap), abs=1e-5)
    with pytest.raises(ParameterError, match="cond must be one of"):
        Discriminator(text_dim=16, cond="film")


@torch.no_grad()
def test_auxiliary_heads_classify_the_pooled_features_one_per_attribute():
    from torch.nn.utils import parametrize

    torch.manual_seed(0)
    x, t = torch.rand(3, 3, 64, 64), torch.randn(3, 16)
    # 64x64: the blocks' maps are 32, 16, 8, 4 wide (strides 2, 4, 8, 16; ndf * 1, 2, 4, 8)
    for cond, stride, width, layer in (("projection", 8, 16, 5), ("concat", 4, 8, 3),
                                       ("projection", 16, 32, 7)):  # fmt: skip
        d = Discriminator(text_dim=16, proj_dim=8, ndf=4, image_size=64, norm="spectral",
                          cond=cond, aux_classes=(6, 5), aux_stride=stride).eval()  # fmt: skip
        logits, heads = d(x, t, aux=True)
        assert torch.equal(logits, d(x, t))  # the heads leave the GAN logit alone
        assert [h.shape for h in heads] == [(3, 6), (3, 5)]
        mid = d.encode[: layer + 1](x * 2 - 1)  # up to that block's leaky ReLU
        assert mid.shape == (3, width, 64 // stride, 64 // stride)
        found = mid.amax((2, 3))  # (B, C'): the heads read the max-pooled map
        for head, out in zip(d.aux, heads, strict=True):
            assert parametrize.is_parametrized(head, "weight")  # spectral like the rest
            assert torch.allclose(out, head(found), atol=1e-6)
    plain = Discriminator(text_dim=16, proj_dim=8, ndf=4, image_size=64)
    assert len(plain.aux) == 0 and plain(x, t, aux=True)[1] == []
    with pytest.raises(ParameterError, match="aux_classes must be an integer >= 2. Found: 1"):
        Discriminator(text_dim=16, aux_classes=(6, 1))
    with pytest.raises(ParameterError, match=r"aux_stride must be one of \[2, 4, 8, 16\]"):
        Discriminator(text_dim=16, aux_classes=(6, 5), aux_stride=32)


def test_aux_loss_is_the_cross_entropy_over_the_named_attributes_only():
    colour = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [0.0, 3.0, 1.0]])  # (3, 3)
    shape = torch.tensor([[1.0, -1.0], [0.0, 2.0], [4.0, 0.0]])  # (3, 2)
    named_colour = torch.tensor([0, -1, 2])  # item 1's caption names no colour
    named_shape = torch.tensor([-1, -1, -1])  # no caption names a shape

    def ce(row: torch.Tensor, k: int) -> float:  # -log softmax, by hand
        return -float(row[k]) + math.log(sum(math.exp(float(v)) for v in row))

    want = (ce(colour[0], 0) + ce(colour[2], 2)) / 2 + 0.0  # the shape term is 0, not NaN
    loss, parts = aux_loss([colour, shape], [named_colour, named_shape])
    assert float(loss) == pytest.approx(want, rel=1e-6)
    assert parts == pytest.approx([want, 0.0])
    full, _ = aux_loss([shape], [torch.tensor([0, 1, 1])])
    assert float(full) == pytest.approx((ce(shape[0], 0) + ce(shape[1], 1) + ce(shape[2], 1)) / 3)
    logits = colour.clone().requires_grad_(True)
    aux_loss([logits], [named_colour])[0].backward()
    assert torch.equal(logits.grad[1], torch.zeros(3))  # an unnamed item gets no gradient
    with pytest.raises(ParameterError, match="one target per head"):
        aux_loss([colour, shape], [named_colour])


def test_named_attributes_reads_what_the_caption_says_about_the_object():
    from xmodal.world import COLOURS, SHAPES, WorldObject

    obj = WorldObject("triangle", "purple", "large", 30, 30, 10)
    c, s = list(COLOURS).index("purple"), list(SHAPES).index("triangle")
    assert named_attributes("a scene with a large purple triangle in the forest", obj) == (c, s)
    assert named_attributes("a purple object", obj) == (c, -1)
    assert named_attributes("there is one triangle", obj) == (-1, s)
    assert named_attributes("one thing", obj) == (-1, -1)
    assert named_attributes("a large object in a forest", obj) == (-1, -1)
    assert named_attributes("no purple triangles", obj) == (-1, -1)  # claims none
    items = [{"image": torch.zeros(3, 4, 4), "tokens": torch.tensor([1, 2]), "label": 0,
              "named": named_attributes(t, obj), "index": 0}
             for t in ("a purple object", "one thing")]  # fmt: skip
    assert collate_pairs(items)["named"].tolist() == [[c, -1], [-1, -1]]


def test_hinge_losses_equal_the_hand_computed_values():
    rr = torch.tensor([2.0, 0.5])  # real image, right text: relu(1 - s) = 0, 0.5
    rw = torch.tensor([0.5, -3.0])  # real image, wrong text: relu(1 + s) = 1.5, 0
    fr = torch.tensor([-1.0, 0.0])  # fake image, right text: relu(1 + s) = 0, 1
    loss, parts = discriminator_loss(rr, rw, fr, loss="hinge")
    assert float(loss) == pytest.approx(0.25 + (0.75 + 0.5) / 2, rel=1e-6)
    assert parts["d_real_right"] == pytest.approx(0.25)
    assert parts["d_real_wrong"] == pytest.approx(0.75)
    assert parts["d_fake_right"] == pytest.approx(0.5)
    g, g_parts = generator_loss(torch.tensor([1.0, 3.0]), torch.tensor([-2.0]), loss="hinge")
    assert float(g) == pytest.approx(-2.0 + 2.0)  # -mean(fake) - mean(interp)
    assert g_parts["g_fake"] == pytest.approx(-2.0) and g_parts["g_interp"] == pytest.approx(2.0)
    with pytest.raises(ParameterError, match="loss must be one of"):
        discriminator_loss(rr, rw, fr, loss="wasserstein")


def test_translation_shifts_whole_images_and_keeps_their_pixels():
    x = torch.rand(6, 3, 16, 16) + 1.0  # every pixel > 0: the zero border is visible
    out = diff_augment(x, "translation", generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.equal(diff_augment(x, "none"), x)
    for i in range(len(x)):  # each output is the input moved by (dy, dx), |dy|, |dx| <= 2
        found = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                moved = torch.zeros_like(x[i])
                ys, xs = slice(max(dy, 0), 16 + min(dy, 0)), slice(max(dx, 0), 16 + min(dx, 0))
                yd, xd = slice(max(-dy, 0), 16 + min(-dy, 0)), slice(max(-dx, 0), 16 + min(-dx, 0))
                moved[:, ys, xs] = x[i][:, yd, xd]
                found.append(torch.equal(out[i], moved))
        assert sum(found) == 1, i
    x.requires_grad_(True)  # differentiable: D's gradient reaches the generator
    diff_augment(x, "translation-cutout").sum().backward()
    assert x.grad is not None and float(x.grad.sum()) > 0
    cut = diff_augment(torch.ones(50, 1, 16, 16), "translation-cutout",
                       generator=torch.Generator().manual_seed(1))  # fmt: skip
    zeros = (cut == 0).flatten(1).sum(1)
    assert int(zeros.max()) >= 16  # a 4x4 square (or the shift's border) is blanked
    with pytest.raises(ParameterError, match="policy must be one of"):
        diff_augment(x, "colour")


def test_interpolation_mixes_each_sentence_with_the_next():
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    out = interpolate_texts(t, beta=0.5)
    assert torch.allclose(out, torch.tensor([[0.5, 0.5], [1.0, 1.5], [1.5, 1.0]]))
    assert torch.equal(interpolate_texts(t, beta=1.0), t)
    assert mismatched(3).tolist() == [1, 2, 0]
    with pytest.raises(ParameterError, match="beta must be in"):
        interpolate_texts(t, beta=1.5)


def test_wrong_captions_come_from_another_class():
    labels = torch.tensor([0, 0, 1, 2, 2])
    wrong = wrong_indices(labels)
    assert (labels[wrong] != labels).all()
    assert wrong_indices(torch.tensor([3, 3])).tolist() == [1, 0]  # all alike: the next one


def test_image_grid_places_each_image():
    imgs = torch.zeros(3, 3, 4, 4)
    imgs[1] = 0.5
    grid = image_grid(imgs, nrow=2, pad=1)
    assert grid.shape == (3, 2 * 5 + 1, 2 * 5 + 1)
    assert float(grid[0, 1, 6]) == 0.5 and float(grid[0, 1, 1]) == 0.0
    assert float(grid[0, 6, 6]) == 1.0  # the empty cell stays white


def test_generate_is_seeded_and_checks_the_noise():
    torch.manual_seed(0)
    model = TextToImageGAN(10, word_dim=4, hidden=4, text_dim=8, proj_dim=4, noise_dim=6,
                           ngf=4, ndf=4, image_size=32).eval()  # fmt: skip
    tokens, lengths = torch.tensor([[1, 5, 2]]), torch.tensor([3])
    a = model.generate(tokens, lengths, generator=torch.Generator().manual_seed(1))
    b = model.generate(tokens, lengths, generator=torch.Generator().manual_seed(1))
    assert a.shape == (1, 3, 32, 32) and torch.equal(a, b)
    with pytest.raises(ParameterError, match="noise must have shape"):
        model.generate(tokens, lengths, torch.zeros(1, 5))


def test_a_frozen_sentence_encoder_gets_no_gradients_and_stays_in_eval_mode():
    from xmodal.tasks.text2image import Text2ImageTask

    model = TextToImageGAN(10, word_dim=4, hidden=4, text_dim=8, proj_dim=4, noise_dim=6,
                           ngf=4, ndf=4, image_size=32, freeze_text=True)  # fmt: skip
    model.train()
    assert model.generator.training and not model.text.training
    assert not any(p.requires_grad for p in model.text.parameters())
    task = Text2ImageTask(Text2ImageConfig())
    opt_d, opt_g = task.configure_optimizers(model)
    in_d = {id(p) for g in opt_d.param_groups for p in g["params"]}
    assert in_d == {id(p) for p in model.discriminator.parameters()}
    unfrozen = TextToImageGAN(10, word_dim=4, hidden=4, text_dim=8, proj_dim=4, noise_dim=6,
                              ngf=4, ndf=4, image_size=32)  # fmt: skip
    opt_d, _ = task.configure_optimizers(unfrozen)
    in_d = {id(p) for g in opt_d.param_groups for p in g["params"]}
    assert {id(p) for p in unfrozen.text.parameters()} <= in_d  # trained with D


def _step_task(**model):
    """A text2image task, its (untrained) model and one batch of 4 world pairs at 32x32."""
    from xmodal.text.vocab import Vocabulary
    from xmodal.tasks.text2image import Text2ImageTask

    config = Text2ImageConfig(
        model=Text2ImageModelConfig(word_dim=4, hidden=4, text_dim=8, proj_dim=4, noise_dim=6,
                                    ngf=4, ndf=4, aux_stride=4, augment="none", **model),
        data=Text2ImageDataConfig(train_size=4, batch_size=4, image_size=32),
    )  # fmt: skip
    task = Text2ImageTask(config)
    scenes = task._scenes("train", 4)
    task.vocab = Vocabulary.build([c for s in scenes for c in s.captions], min_freq=1)
    torch.manual_seed(0)
    model = task.build_model().train()
    pairs = task.pairs("train")
    return task, model, collate_pairs([pairs[k] for k in (0, 5, 10, 15)])


def test_the_generator_step_leaves_the_discriminators_gradients_alone():
    task, model, batch = _step_task()
    D = model.discriminator
    opt_d, opt_g = task.configure_optimizers(model)
    seen: list[dict] = []

    class Step:  # the engine's ManualStep, recording D's gradients after each backward
        optimizers = (opt_d, opt_g)

        def backward(self, loss):
            loss.backward()
            seen.append({n: p.grad.clone() for n, p in D.named_parameters()
                         if p.grad is not None})  # fmt: skip

        def clip_gradients(self, optimizer):
            pass

    g_before = [p.detach().clone() for p in model.generator.parameters()]
    task._losses(model, batch, Step())
    after_d, after_g = seen
    assert after_d and after_d.keys() == after_g.keys()  # D's loss reached D, ...
    for name, grad in after_d.items():  # ... the generator's loss did not
        assert torch.equal(grad, after_g[name]), name
    assert all(p.requires_grad for p in D.parameters())  # unfrozen after the step
    changed = [not torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters(),
                                                    strict=True)]  # fmt: skip
    assert all(changed)  # ... and G learnt through the frozen D


@torch.no_grad()
def test_a_batch_norm_discriminator_encodes_real_and_fake_images_apart():
    torch.manual_seed(0)
    a, b = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32) * 0.2
    task, model, _ = _step_task(d_norm="batch")
    D = model.discriminator.train()  # batch statistics
    mid, h = task._encode(D, [a, b])
    (mid_a, h_a), (mid_b, h_b) = D.encode_image(a), D.encode_image(b)
    assert torch.allclose(mid, torch.cat([mid_a, mid_b]), atol=1e-6)
    assert torch.allclose(h, torch.cat([h_a, h_b]), atol=1e-6)
    assert not torch.allclose(h, D.encode_image(torch.cat([a, b]))[1], atol=1e-3)
    task, model, _ = _step_task(d_norm="spectral")
    D = model.discriminator.eval()  # no batch statistics: one batch (stored power iteration)
    mid, h = task._encode(D, [a, b])
    both = D.encode_image(torch.cat([a, b]))
    assert torch.allclose(mid, both[0]) and torch.allclose(h, both[1])


def test_the_scenes_are_rendered_once_for_every_use(monkeypatch):
    task, _, _ = _step_task()
    calls = []
    render = type(task.world).scene

    def counted(world, split, index, **kwargs):
        calls.append((split, index))
        return render(world, split, index, **kwargs)

    monkeypatch.setattr(type(task.world), "scene", counted)
    task._rendered.clear()
    pairs = task.pairs("train", 6)
    assert len(pairs) == 6 * task.world.config.n_captions
    images, scenes = task._real("train", 6)
    task.pairs("train", 3)
    assert sorted(calls) == [("train", i) for i in range(6)]  # each scene once
    assert images.shape == (6, 3, 32, 32) and images.dtype == torch.uint8
    item = pairs[task.world.config.n_captions + 1]  # scene 1, its second caption
    assert item["index"] == 1 and torch.equal(item["image"], images[1].float() / 255)
    assert item["tokens"].tolist() == task.vocab.encode(scenes[1].captions[1], max_len=24)


def test_config_errors_name_the_value():
    with pytest.raises(ParameterError, match="model.text_encoder must be one of"):
        Text2ImageModelConfig(text_encoder="bert")
    with pytest.raises(ParameterError, match="match_weight needs a joint embedding"):
        Text2ImageModelConfig(text_encoder="joint", match_weight=1.0)
    with pytest.raises(ParameterError, match="model.ngf must be an integer >= 1. Found: 0"):
        Text2ImageModelConfig(ngf=0)
    with pytest.raises(ParameterError, match="model.beta must be in"):
        Text2ImageModelConfig(beta=2.0)
    with pytest.raises(ParameterError, match="data.image_size must be a power of two"):
        Text2ImageDataConfig(image_size=48)
    with pytest.raises(ParameterError, match="optim.beta1 must be in"):
        Text2ImageOptimConfig(beta1=1.0)
    for key, bad in (("upsample", "bicubic"), ("d_norm", "group"), ("gan_loss", "wgan"),
                     ("augment", "colour"), ("d_cond", "film")):  # fmt: skip
        with pytest.raises(ParameterError, match=f"model.{key} must be one of.*{bad}"):
            Text2ImageModelConfig(**{key: bad})
    for key, bad, says in (("aux_weight", -1.0, "must be .*Found: -1"),
                           ("text_aux_weight", -0.5, "must be .*Found: -0.5"),
                           ("aux_fake", 1, "must be true or false. Found: 1"),
                           ("aux_pretrain_lr", 0.0, "must be .*Found: 0"),
                           ("aux_pretrain_steps", -5, "must be .*Found: -5")):  # fmt: skip
        with pytest.raises(ParameterError, match=f"model.{key} {says}"):
            Text2ImageModelConfig(**{key: bad})
    with pytest.raises(ParameterError, match="aux_weight needs single-object scenes"):
        Text2ImageConfig(model=Text2ImageModelConfig(aux_weight=1.0),
                         data=Text2ImageDataConfig(objects=2))  # fmt: skip
    with pytest.raises(ParameterError, match="eval.n_captions must be >= 100"):
        Text2ImageEvalConfig(n_captions=50)
    assert Text2ImageConfig().trainer.max_epochs >= 1


# ------------------------------------------------------------------ through the engine

TINY = [
    "data.train_size=8", "data.val_size=4", "data.test_size=100", "data.batch_size=4",
    "data.num_workers=0", "data.image_size=32", "model.ngf=4", "model.ndf=4",
    "model.word_dim=8", "model.hidden=8", "model.text_dim=8", "model.proj_dim=8",
    "model.noise_dim=8", "model.pretrain_steps=2", "model.aux_pretrain_steps=5",
    "eval.n_captions=100",
    "eval.n_diversity=4", "eval.n_noises=2",
    "eval.classifier_steps=2", "eval.retrieval_steps=2", "eval.evaluator_images=16",
    "eval.n_grid=2", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false", "trainer.accelerator=cpu",
    "trainer.checkpoint_every_n_steps=0",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from xmodal.engine import train

    return train("text2image", runs_dir=tmp_path_factory.mktemp("runs"), overrides=TINY)


def test_training_through_the_engine_changes_both_networks(run):
    from xmodal.engine.run import load_run

    task, model = load_run(run.run_dir)
    torch.manual_seed(run.config.seed)  # the engine seeds before build_model
    start = task.build_model()
    for part in ("generator", "discriminator", "text"):  # the text: by its pre-training
        before = torch.cat([p.flatten() for p in getattr(start, part).parameters()])
        after = torch.cat([p.flatten() for p in getattr(model, part).parameters()])
        assert not torch.allclose(before, after), part
    assert not any(p.requires_grad for p in model.text.parameters())  # frozen
    assert run.metrics["train"]["steps"] == 2 * 10  # 40 pairs / 4: two optimizer steps each
    test = run.metrics["test"]
    percents = ("attribute_accuracy", "shape_accuracy", "colour_accuracy",
                "classifier_real_accuracy", "retrieval_p1")  # fmt: skip
    for key in percents:
        assert 0.0 <= test[key] <= 100.0, key
    assert test["attribute_accuracy"] <= min(test["shape_accuracy"], test["colour_accuracy"])
    for key in ("diversity", "diversity_real"):  # RMS distance of images in [0, 1]
        assert 0.0 <= test[key] <= 1.0, key
    assert test["retrieval_chance"] == 1.0
    assert (run.run_dir / "evaluator.pt").is_file()
    assert (run.run_dir / "figures" / "epochs" / "epoch-000.png").is_file()
    assert "epoch-000.png" in (run.run_dir / "report.html").read_text()


def test_eval_reuses_the_cached_evaluators(run):
    from xmodal.engine.run import evaluate

    again = evaluate(run.run_dir)
    assert again["classifier_real_accuracy"] == run.metrics["test"]["classifier_real_accuracy"]
    assert again["attribute_accuracy"] == run.metrics["test"]["attribute_accuracy"]


def test_predict_writes_a_grid_and_reports_unknown_words(run, tmp_path):
    from xmodal.engine.run import predict

    out = tmp_path / "grid.png"
    records = predict(run.run_dir, ["a large red zebra", "a circle"], tmp_path, n=3, seed=1,
                      out_file=out)  # fmt: skip
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert records[0]["unknown_words"] == ["zebra"] and "<unk>: zebra" in records[0]["text"]
    assert records[1]["unknown_words"] == []
    saved = json.loads((tmp_path / "predictions.json").read_text())
    assert saved[0]["files"] == [str(out)]


def test_predict_cli_takes_out_as_the_grid_file(run, tmp_path, capsys):
    from xmodal.cli import main

    out = tmp_path / "g.png"
    code = main(["predict", "text2image", "--run", str(run.run_dir), "a blue star", "-n", "2",
                 "--seed", "3", "--out", str(out)])  # fmt: skip
    assert code == 0 and out.is_file()
    assert "2 images in" in capsys.readouterr().out


def test_predict_bad_input(run, tmp_path):
    from xmodal.engine.run import predict

    with pytest.raises(ParameterError, match="has no words"):
        predict(run.run_dir, ["  "], tmp_path)
    with pytest.raises(ParameterError, match="has no words"):
        predict(run.run_dir, ["?!"], tmp_path)
    with pytest.raises(ParameterError, match="-n must be an integer >= 1. Found: 0"):
        predict(run.run_dir, ["a red circle"], tmp_path, n=0)
    with pytest.raises(ParameterError, match="must be a .png file"):
        predict(run.run_dir, ["a red circle"], tmp_path, out_file=tmp_path / "x.jpg")


def test_text_run_takes_a_retrieval_runs_vocabulary_and_frozen_text_encoder(tmp_path):
    from xmodal.engine import train
    from xmodal.engine.run import load_run, predict

    retrieval = train("retrieval", runs_dir=tmp_path, overrides=[
        "data.train_size=8", "data.val_size=4", "data.test_size=8", "data.batch_size=4",
        "data.num_workers=0", "model.channels=8", "model.embed_dim=16", "model.word_dim=8",
        "model.hidden=8", "eval.n_figures=0", "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "trainer.accelerator=cpu",
    ])  # fmt: skip
    run = train("text2image", runs_dir=tmp_path,
                overrides=[*TINY, f"model.text_run={retrieval.run_dir}"])  # fmt: skip
    assert (run.run_dir / "text_encoder.json").is_file()
    assert (run.run_dir / "vocab.json").read_text() == (
        retrieval.run_dir / "vocab.json"
    ).read_text()
    _, source = load_run(retrieval.run_dir)
    _, model = load_run(run.run_dir)
    for (name, a), b in zip(source.text.state_dict().items(), model.text.state_dict().values(),
                            strict=True):  # fmt: skip
        assert torch.equal(a, b), name  # frozen: exactly the retrieval run's weights
    records = predict(run.run_dir, ["a red circle"], tmp_path / "p", n=2)
    assert records[0]["unknown_words"] == []
    with pytest.raises(ParameterError, match="holds a 'text2image' run, not 'retrieval'"):
        train("text2image", runs_dir=tmp_path, overrides=[*TINY, f"model.text_run={run.run_dir}"])


def test_the_matching_loss_trains_the_generator_towards_its_caption(tmp_path):
    import csv

    from xmodal.engine import train

    run = train("text2image", runs_dir=tmp_path, overrides=[*TINY, "model.match_weight=1.0"])
    with open(run.run_dir / "logs" / "csv" / "metrics.csv", newline="") as f:
        values = [float(r["train/g_match_epoch"]) for r in csv.DictReader(f)
                  if r.get("train/g_match_epoch")]  # fmt: skip
    assert values and all(v > 0 for v in values)  # logged, a cross entropy over the batch
    plain = train("text2image", runs_dir=tmp_path, overrides=[*TINY, "model.match_weight=0"])
    with open(plain.run_dir / "logs" / "csv" / "metrics.csv", newline="") as f:
        assert "train/g_match_epoch" not in next(csv.reader(f))


def test_the_auxiliary_classifiers_train_on_real_labels_and_judge_the_fakes(tmp_path):
    import csv

    from xmodal.engine import train
    from xmodal.engine.run import load_run

    run = train("text2image", runs_dir=tmp_path,
                overrides=[*TINY, "model.aux_weight=1.0", "model.aux_fake=false"])  # fmt: skip
    with open(run.run_dir / "logs" / "csv" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for key in ("d_aux_colour", "d_aux_shape", "g_aux_colour", "g_aux_shape"):
        values = [float(r[f"train/{key}_epoch"]) for r in rows if r.get(f"train/{key}_epoch")]
        assert values and all(v >= 0 for v in values), key  # cross entropies
    task, model = load_run(run.run_dir)  # the heads are saved and rebuilt with the run
    assert model.discriminator.aux_classes == (6, 5)
    torch.manual_seed(run.config.seed)
    start = task.build_model()
    for a, b in zip(start.discriminator.aux.parameters(), model.discriminator.aux.parameters(),
                    strict=True):  # fmt: skip
        assert not torch.equal(a, b)  # trained
    plain = train("text2image", runs_dir=tmp_path, overrides=[*TINY, "model.aux_weight=0"])
    assert len(load_run(plain.run_dir)[1].discriminator.aux) == 0
    # A run saved before the option existed (no aux_weight in its config) has no heads.
    saved = plain.run_dir / "config.yaml"
    lines = saved.read_text().splitlines(keepends=True)
    saved.write_text("".join(line for line in lines if "aux_weight:" not in line))
    assert len(load_run(plain.run_dir)[1].discriminator.aux) == 0
    # One saved before the "generated" class (no aux_fake) is rebuilt with K classes.
    meta = json.loads((run.run_dir / "model.json").read_text())
    del meta["config"]["model"]["aux_fake"]
    (run.run_dir / "model.json").write_text(json.dumps(meta))
    saved = run.run_dir / "config.yaml"
    lines = saved.read_text().splitlines(keepends=True)
    saved.write_text("".join(line for line in lines if "aux_fake:" not in line))
    assert load_run(run.run_dir)[1].discriminator.aux_classes == (6, 5)


def test_the_generated_class_of_the_classifiers_is_trained_on_fakes(tmp_path):
    import csv

    from xmodal.engine import train
    from xmodal.engine.run import load_run

    run = train("text2image", runs_dir=tmp_path, overrides=TINY)  # the default: K+1
    with open(run.run_dir / "logs" / "csv" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    key = "train/d_aux_generated_epoch"
    values = [float(r[key]) for r in rows if r.get(key)]
    assert values and all(v > 0 for v in values)  # the "generated" class's cross entropy
    _, model = load_run(run.run_dir)
    assert model.discriminator.aux_classes == (7, 6)  # colours + 1, shapes + 1


def test_pretraining_the_classifiers_trains_only_their_path_and_keeps_the_global_seed():
    from xmodal.tasks.text2image import Text2ImageTask

    config = Text2ImageConfig(
        model=Text2ImageModelConfig(aux_weight=1.0, aux_pretrain_steps=3),
        data=Text2ImageDataConfig(train_size=8, batch_size=4, image_size=32),
    )
    task = Text2ImageTask(config)
    torch.manual_seed(0)
    d = Discriminator(text_dim=8, proj_dim=4, ndf=4, image_size=32, norm="spectral",
                      cond="projection", aux_classes=(6, 5), aux_stride=4)  # fmt: skip
    before = {k: v.clone() for k, v in d.state_dict().items()}
    state = torch.random.get_rng_state()
    task._pretrain_aux(d)
    assert torch.equal(torch.random.get_rng_state(), state)  # the GAN's draws are unchanged
    after = {k: v.clone() for k, v in d.state_dict().items()}
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # encode.0 and encode.2 (stride 4) and the heads learn; the layers above do not
    trained = {k.split(".parametrizations")[0] for k in changed if k.endswith("original")}
    assert trained == {"encode.0", "encode.2", "aux.0", "aux.1"}
    assert set(task.aux_pretrain_log) == {"seconds", "colour", "shape"}
    # model.aux_pretrain_lr replaces D's learning rate there
    faster = Text2ImageTask(Text2ImageConfig(
        model=Text2ImageModelConfig(aux_weight=1.0, aux_pretrain_steps=3, aux_pretrain_lr=1e-2),
        data=config.data,
    ))  # fmt: skip
    d.load_state_dict(before)
    faster._pretrain_aux(d)
    again = d.state_dict()
    assert not torch.equal(again["aux.1.parametrizations.weight.original"],
                           after["aux.1.parametrizations.weight.original"])  # fmt: skip


def test_the_text_attribute_term_changes_only_the_sentence_pretraining(tmp_path):
    from xmodal.text.vocab import Vocabulary
    from xmodal.tasks.text2image import Text2ImageTask

    task = Text2ImageTask(Text2ImageConfig(data=Text2ImageDataConfig(image_size=32)))
    images, scenes = task._real("train", 8)
    task.vocab = Vocabulary.build([c for s in scenes for c in s.captions], min_freq=1)
    sizes = {"word_dim": 8, "hidden": 8, "embed_dim": 8}
    states = []
    for weight in (0.0, 1.0):
        torch.manual_seed(5)
        joint = task._train_joint(images, scenes, steps=3, seed=0, text_aux=weight, **sizes)
        states.append((torch.random.get_rng_state(), joint.state_dict()))
    assert torch.equal(states[0][0], states[1][0])  # the heads take nothing from the seed
    text = [k for k in states[0][1] if k.startswith("text.")]
    assert any(not torch.equal(states[0][1][k], states[1][1][k]) for k in text)
