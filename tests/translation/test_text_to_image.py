"""GAN-INT-CLS (:mod:`xmodal.translation.text_to_image`): the networks' shapes, the losses
against hand-computed values, interpolation, DiffAugment, the discriminator's and the
generator's objectives, one step of both networks, sampling and predict's records."""

from __future__ import annotations

import math

import pytest
import torch

from xmodal.errors import ParameterError
from xmodal.translation.text_to_image import (
    Discriminator,
    Generator,
    TextToImageGAN,
    aux_loss,
    caption_grid_records,
    diff_augment,
    discriminator_loss,
    discriminator_objective,
    encode_caption,
    encode_parts,
    gan_int_cls_step,
    generate_images,
    generator_loss,
    generator_objective,
    image_caption_loss,
    interpolate_texts,
    mismatched,
    wrong_indices,
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


@torch.no_grad()
def test_a_batch_norm_discriminator_encodes_real_and_fake_images_apart():
    torch.manual_seed(0)
    a, b = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32) * 0.2
    D = Discriminator(text_dim=8, proj_dim=4, ndf=4, image_size=32, norm="batch",
                      cond="projection", aux_classes=(7, 6), aux_stride=4)  # fmt: skip
    D.train()  # batch statistics
    mid, h = encode_parts(D, [a, b])
    (mid_a, h_a), (mid_b, h_b) = D.encode_image(a), D.encode_image(b)
    assert torch.allclose(mid, torch.cat([mid_a, mid_b]), atol=1e-6)
    assert torch.allclose(h, torch.cat([h_a, h_b]), atol=1e-6)
    assert not torch.allclose(h, D.encode_image(torch.cat([a, b]))[1], atol=1e-3)
    D = Discriminator(text_dim=8, proj_dim=4, ndf=4, image_size=32, norm="spectral",
                      cond="projection", aux_classes=(7, 6), aux_stride=4)  # fmt: skip
    D.eval()  # no batch statistics: one batch (stored power iteration)
    mid, h = encode_parts(D, [a, b])
    both = D.encode_image(torch.cat([a, b]))
    assert torch.allclose(mid, both[0]) and torch.allclose(h, both[1])


def _tac_discriminator() -> Discriminator:
    torch.manual_seed(0)
    return Discriminator(text_dim=8, proj_dim=4, ndf=4, image_size=32, norm="spectral",
                         cond="projection", aux_classes=(7, 6), aux_stride=4).eval()  # fmt: skip


@torch.no_grad()
def test_the_discriminator_objective_is_the_matching_aware_loss_plus_the_classifiers():
    D = _tac_discriminator()
    real, fake = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)
    text, wrong = torch.randn(4, 8), torch.randn(4, 8)
    truth = [torch.tensor([0, 1, 2, 3]), torch.tensor([4, 3, 2, 1])]
    loss, logs = discriminator_objective(D, real, fake, text, wrong, loss="hinge", truth=truth,
                                         aux_weight=0.5, aux_fake=True)  # fmt: skip
    mid, h = D.encode_image(torch.cat([real, fake]))
    gan, _ = discriminator_loss(D.score(h[:4], text), D.score(h[:4], wrong), D.score(h[4:], text),
                                loss="hinge")  # fmt: skip
    heads = D.classify(mid)
    on_real, parts = aux_loss([x[:4] for x in heads], truth)
    on_fake, _ = aux_loss([x[4:] for x in heads], [torch.full((4,), 6), torch.full((4,), 5)])
    assert float(loss) == pytest.approx(float(gan + 0.5 * (on_real + on_fake)), rel=1e-5)
    assert logs["d_aux_colour"] == pytest.approx(parts[0], rel=1e-5)
    assert logs["d_aux_generated"] == pytest.approx(float(on_fake), rel=1e-5)
    shape_acc = float((heads[1][:4].argmax(1) == truth[1]).float().mean())
    assert logs["d_aux_shape_acc"] == pytest.approx(shape_acc)
    plain, plain_logs = discriminator_objective(D, real, fake, text, wrong, loss="hinge")
    assert float(plain) == pytest.approx(float(gan), rel=1e-5)  # no truth: no classifiers
    assert not any(k.startswith("d_aux") for k in plain_logs)


def test_the_generator_objective_reaches_the_images_and_not_the_discriminator():
    D = _tac_discriminator()
    made = torch.rand(8, 3, 32, 32, requires_grad=True)  # right sentences, then interpolated
    conds = [torch.randn(4, 8), torch.randn(4, 8)]
    named = [torch.tensor([0, -1, 2, -1]), torch.tensor([-1, -1, 1, 0])]
    loss, logs = generator_objective(D, made, conds, loss="hinge", named=named, aux_weight=2.0)
    loss.backward()
    assert made.grad is not None and float(made.grad.abs().sum()) > 0
    assert all(p.grad is None for p in D.parameters())  # D stayed frozen ...
    assert all(p.requires_grad for p in D.parameters())  # ... and is unfrozen after
    with torch.no_grad():
        mid, h = D.encode_image(made)
        judged = D.score(h, torch.cat(conds))
        gan, _ = generator_loss(judged[:4], judged[4:], loss="hinge")
        aux, parts = aux_loss(D.classify(mid[:4]), named)
    assert float(loss.detach()) == pytest.approx(float(gan + 2.0 * aux), rel=1e-5)
    assert logs["g_aux_shape"] == pytest.approx(parts[1], rel=1e-5) and "g_interp" in logs
    only_right, logs = generator_objective(D, made[:4].detach(), conds[:1], loss="hinge")
    assert "g_interp" not in logs and "g_aux_colour" not in logs


def test_the_image_caption_loss_picks_each_image_s_own_caption():
    class Matcher(torch.nn.Module):
        def embed_images(self, images):
            return torch.nn.functional.normalize(images.flatten(1)[:, :3], dim=1)

        def logit_scale(self):
            return torch.tensor(2.0, requires_grad=True)

    images = torch.rand(3, 3, 4, 4)
    text = torch.nn.functional.normalize(torch.randn(3, 3), dim=1)
    img = Matcher().embed_images(images)
    logits = 2.0 * img @ text.T
    want = sum(-float(torch.log_softmax(logits[i], 0)[i]) for i in range(3)) / 3
    assert float(image_caption_loss(Matcher(), images, text)) == pytest.approx(want, rel=1e-5)


def test_encode_caption_reads_unknown_words_as_unk_and_refuses_an_empty_caption():
    from xmodal.text.vocab import Vocabulary

    vocab = Vocabulary.build(["a red circle", "a blue square"], min_freq=1)
    ids, unknown = encode_caption(vocab, "a red zebra", max_len=24)
    assert ids == vocab.encode("a red zebra", max_len=24) and unknown == ["zebra"]
    assert encode_caption(vocab, "A Blue square.", max_len=24)[1] == []
    for bad in ("  ", "?!"):
        with pytest.raises(ParameterError, match="has no words"):
            encode_caption(vocab, bad, max_len=24)
    with pytest.raises(ParameterError, match="must be a string"):
        encode_caption(vocab, 5, max_len=24)


@torch.no_grad()
def test_generate_images_gives_every_caption_the_same_noises_in_any_batching():
    torch.manual_seed(0)
    model = TextToImageGAN(10, word_dim=4, hidden=4, text_dim=8, proj_dim=4, noise_dim=6,
                           ngf=4, ndf=4, image_size=32).eval()  # fmt: skip
    ids = [[1, 5, 2], [1, 6, 7, 2]]
    out = generate_images(model, ids, n=3, seed=4)
    assert out.shape == (6, 3, 32, 32)
    noise = torch.randn(3, 6, generator=torch.Generator().manual_seed(4))
    for c, caption in enumerate(ids):  # caption c's images: its k-th under noise row k
        tokens = torch.tensor([caption] * 3)
        direct = model.generate(tokens, torch.tensor([len(caption)] * 3), noise)
        assert torch.allclose(out[3 * c : 3 * c + 3], direct, atol=1e-6)
    assert torch.allclose(generate_images(model, ids, n=3, seed=4, batch_size=2), out, atol=1e-6)
    assert not torch.allclose(generate_images(model, ids, n=3, seed=5), out)
    with pytest.raises(ParameterError, match="n must be an integer >= 1"):
        generate_images(model, ids, n=0)


def _step_batch(n: int = 4) -> tuple[TextToImageGAN, dict]:
    """An untrained GAN with TAC-GAN's classifiers (K+1) and a batch of ``n`` (image,
    caption) pairs, two of them of class 0, in the layout of ``collate_pairs``."""
    torch.manual_seed(0)
    model = TextToImageGAN(10, word_dim=4, hidden=4, text_dim=8, proj_dim=4, noise_dim=6,
                           ngf=4, ndf=4, image_size=32, d_norm="spectral", d_cond="projection",
                           aux_classes=(7, 6), aux_stride=4)  # fmt: skip
    batch = {
        "image": torch.rand(n, 3, 32, 32),
        "tokens": torch.randint(3, 10, (n, 5)),
        "lengths": torch.full((n,), 5),
        "label": torch.tensor([0, 0, 7, 13])[:n],
        "named": torch.tensor([[0, 0], [0, -1], [-1, 2], [2, 3]])[:n],
    }
    return model.train(), batch


def test_a_gan_step_updates_d_before_g_is_judged_and_logs_every_term():
    import copy

    model, batch = _step_batch()
    runs = {}
    for bump in (0.0, 1.0):  # D's judge changed (or not) by its update
        gan, seen = copy.deepcopy(model), []

        def update(i: int, loss: torch.Tensor, gan=gan, seen=seen, bump=bump) -> None:
            seen.append((i, float(loss.detach())))
            if i == 0:
                with torch.no_grad():
                    gan.discriminator.judge.parametrizations.weight.original.add_(bump)

        torch.manual_seed(1)
        loss, logs = gan_int_cls_step(gan, batch, loss="hinge", aux_weight=1.0, aux_fake=True,
                                      update=update)  # fmt: skip
        runs[bump] = seen, loss, logs
    seen, loss, logs = runs[1.0]
    assert [i for i, _ in seen] == [0, 1]  # D's optimizer, then G's
    assert seen[0][1] == pytest.approx(logs["d_loss"]) and seen[1][1] == pytest.approx(
        logs["g_loss"]
    )
    assert float(loss) == pytest.approx(logs["d_loss"] + logs["g_loss"])
    assert runs[0.0][2]["d_loss"] == logs["d_loss"]  # D's loss: before its update
    assert runs[0.0][2]["g_loss"] != logs["g_loss"]  # G's: judged by the updated D
    for key in (
        "d_real_right",
        "d_real_wrong",
        "d_fake_right",
        "g_fake",
        "g_interp",
        "d_aux_colour",
        "d_aux_shape",
        "d_aux_generated",
        "g_aux_colour",
        "g_aux_shape",
    ):
        assert key in logs, key
    _, plain = gan_int_cls_step(model, batch, interpolation=False)  # no update, no TAC-GAN
    assert "g_interp" not in plain and "d_aux_colour" not in plain and "g_match" not in plain


def test_a_gan_step_adds_the_matching_term_under_the_matcher():
    class Matcher(torch.nn.Module):
        def embed_images(self, images):
            return torch.nn.functional.normalize(images.flatten(1)[:, :8], dim=1)

        def logit_scale(self):
            return torch.tensor(2.0)

    model, batch = _step_batch()
    model.eval()  # the same D and G in both calls (no power iteration, no batch statistics)
    torch.manual_seed(2)
    _, without = gan_int_cls_step(model, batch, matcher=Matcher(), match_weight=0.0)
    torch.manual_seed(2)
    _, logs = gan_int_cls_step(model, batch, matcher=Matcher(), match_weight=0.5)
    assert "g_match" not in without and logs["g_match"] > 0
    assert logs["g_loss"] == pytest.approx(without["g_loss"] + 0.5 * logs["g_match"], rel=1e-5)


def test_predict_records_name_the_grid_and_the_unknown_words():
    records = caption_grid_records(["a red zebra", "a circle"], [["zebra"], []], 3, "out/g.png")
    assert records[0] == {
        "input": "a red zebra",
        "text": "3 images in out/g.png  [not in the vocabulary, read as <unk>: zebra]",
        "unknown_words": ["zebra"],
        "files": ["out/g.png"],
    }
    assert records[1]["text"] == "3 images in out/g.png" and records[1]["unknown_words"] == []
