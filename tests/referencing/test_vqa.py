"""The VQA model: attention maps are distributions over the feature map, one image serves
many questions exactly as if repeated, padding changes nothing, every fusion and question
encoder gives the documented shapes, bad input is refused, and a tiny model learns a few
world questions by heart."""

from __future__ import annotations

import pytest
import torch

from xmodal.errors import ParameterError
from xmodal.referencing.vqa import VQAModel, attended_positions
from xmodal.text.vocab import Vocabulary
from xmodal.vision.attention import AdditiveAttention
from xmodal.world import World
from xmodal.world.datasets import make_dataset

TINY = dict(encoder_kwargs={"channels": 16}, word_dim=8, hidden=16, embed_dim=16,
            attention_dim=8, classifier_hidden=16, dropout=0.0)  # fmt: skip


def _inputs(n_images=3, per_image=2, vocab=20, length=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n_images, 3, 32, 32, generator=g)
    q = n_images * per_image
    tokens = torch.randint(4, vocab, (q, length), generator=g)
    lengths = torch.randint(2, length + 1, (q,), generator=g)
    for row, n in zip(tokens, lengths, strict=True):
        row[n:] = 0
    index = torch.arange(n_images).repeat_interleave(per_image)
    return images, tokens, lengths, index


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_attention_maps_sum_to_one_over_the_feature_map(hops):
    torch.manual_seed(0)
    model = VQAModel(20, 7, fusion="san", hops=hops, **TINY).eval()
    images, tokens, lengths, index = _inputs()
    out = model(images, tokens, lengths, index)
    h, w = model.encoder.forward_features(images).shape[-2:]  # 32 / stride 8 = 4
    assert (h, w) == (4, 4)
    assert out.logits.shape == (6, 7)
    assert out.attention.shape == (6, hops, h, w)
    assert bool((out.attention >= 0).all())
    torch.testing.assert_close(out.attention.sum(dim=(-2, -1)), torch.ones(6, hops))
    # The soft attention is xmodal.vision's, one module per hop.
    assert all(type(a) is AdditiveAttention for a in model.attention)
    assert len(model.attention) == hops


@pytest.mark.parametrize(
    ("fusion", "readout"),
    [("san", "concat"), ("san", "sum"), ("product", "sum"), ("concat", "sum")],
)
def test_an_image_shared_by_questions_equals_the_image_repeated(fusion, readout):
    torch.manual_seed(0)
    model = VQAModel(20, 5, fusion=fusion, readout=readout, **TINY).eval()
    images, tokens, lengths, index = _inputs()
    shared = model(images, tokens, lengths, index)
    repeated = model(images[index], tokens, lengths)
    torch.testing.assert_close(shared.logits, repeated.logits, atol=1e-5, rtol=1e-5)
    if fusion == "san":
        torch.testing.assert_close(shared.attention, repeated.attention, atol=1e-6, rtol=1e-5)
    else:
        assert shared.attention is None and repeated.attention is None


@pytest.mark.parametrize("encoder", ["lstm", "gru", "transformer"])
def test_padding_never_changes_the_answer(encoder):
    torch.manual_seed(0)
    model = VQAModel(20, 5, question_encoder=encoder, text_heads=2, **TINY).eval()
    images, tokens, lengths, index = _inputs()
    a = model(images, tokens, lengths, index).logits
    padded = torch.cat([tokens, torch.zeros(tokens.shape[0], 5, dtype=tokens.dtype)], dim=1)
    b = model(images, padded, lengths, index).logits
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # Each question alone gives the same as in the batch.
    one = model(images[index[:1]], tokens[:1, : int(lengths[0])], lengths[:1]).logits
    torch.testing.assert_close(one, a[:1], atol=1e-5, rtol=1e-5)


def test_answer_gives_sorted_probabilities_of_the_top_answers():
    torch.manual_seed(0)
    model = VQAModel(20, 4, **TINY).eval()
    images, tokens, lengths, index = _inputs()
    probs, ids, attention = model.answer(images, tokens, lengths, index, top_k=10)
    assert probs.shape == ids.shape == (6, 4)  # k is capped at the answers there are
    assert bool((probs[:, :-1] >= probs[:, 1:]).all())
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(6))  # all 4 answers shown
    assert attention.shape[:2] == (6, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fusion": "sum"}, "fusion must be one of"),
        ({"question_encoder": "rnn"}, "question_encoder must be one of"),
        ({"hops": 0}, "hops must be an integer >= 1"),
        ({"readout": "mean"}, "readout must be one of"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"encoder": "vgg"}, "name must be one of"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        VQAModel(20, 5, **{**TINY, **kwargs})


def test_bad_forward_inputs_name_the_problem():
    model = VQAModel(20, 5, **TINY).eval()
    images, tokens, lengths, index = _inputs()
    with pytest.raises(ParameterError, match="one question per image"):
        model(images, tokens, lengths)
    with pytest.raises(ParameterError, match=r"image_index must lie in \[0, 3\)"):
        model(images, tokens, lengths, index + 1)
    with pytest.raises(ParameterError, match="image_index must be an integer tensor"):
        model(images, tokens, lengths, index[:2])
    with pytest.raises(ParameterError, match="lengths must be in"):
        model(images, tokens, torch.zeros_like(lengths), index)
    with pytest.raises(ParameterError, match="tokens must be an integer tensor"):
        model(images, tokens.float(), lengths, index)
    with pytest.raises(ParameterError, match="images must have shape"):
        model(images[:, :1], tokens, lengths, index)


@pytest.mark.parametrize("readout", ["sum", "concat"])
def test_san_readout_is_the_documented_vector(readout):
    """``sum``: the classifier reads u_K = v_Q + c_1 + ... + c_K (Yang et al.); ``concat``:
    [v_Q, c_1, ..., c_K, v_Q * c_1, ..., v_Q * c_K, v_Q * v_I, vec(r (x) v_Q)] with v_I the
    pooled, normalised, projected image and r the hops' attended (x, y) positions."""
    torch.manual_seed(0)
    model = VQAModel(20, 5, hops=2, readout=readout, **TINY).eval()
    images, tokens, lengths, index = _inputs()
    with torch.no_grad():
        features = model.encoder.forward_features(images)[index]
        q = model.question(tokens, lengths)
        v = torch.tanh(model.image_proj(features))
        u, contexts, positions = q, [], []
        for attend in model.attention:
            c, alpha = attend(u, v)
            u, contexts = u + c, [*contexts, c]
            h, w = alpha.shape[1:]
            ys, xs = torch.meshgrid(
                torch.linspace(-1 + 1 / h, 1 - 1 / h, h),
                torch.linspace(-1 + 1 / w, 1 - 1 / w, w),
                indexing="ij",
            )
            positions += [(alpha * xs).sum((1, 2)), (alpha * ys).sum((1, 2))]
        if readout == "sum":
            fused = u
        else:
            pooled = features.mean(dim=(2, 3))
            pooled = pooled / pooled.norm(dim=1, keepdim=True) * pooled.shape[1] ** 0.5
            image = torch.tanh(model.pooled_proj(pooled))
            where = [p[:, None] * q for p in positions]  # x_1 v_Q, y_1 v_Q, x_2 v_Q, y_2 v_Q
            products = [q * c for c in contexts]
            fused = torch.cat([q, *contexts, *products, q * image, *where], dim=1)
        expected = model.classifier(fused)
        out = model(images, tokens, lengths, index)
    assert fused.shape[1] == (1 if readout == "sum" else 10) * 16
    torch.testing.assert_close(out.logits, expected, atol=1e-5, rtol=1e-5)


def test_attended_positions_are_the_expected_cell_centres():
    attention = torch.zeros(3, 2, 4, 8)
    attention[0, 0, 0, 0] = 1.0  # top-left cell: centre (-7/8, -3/4)
    attention[0, 1, 3, 5] = 1.0  # row 3, column 5: (3/8, 3/4)
    attention[1] = 1.0 / 32  # uniform: the middle
    attention[2, :, 1, 2] = attention[2, :, 2, 6] = (
        0.5  # halfway between (-3/8, -1/4) and (5/8, 1/4)
    )
    expected = torch.tensor([[-7 / 8, -3 / 4, 3 / 8, 3 / 4], [0, 0, 0, 0], [1 / 8, 0, 1 / 8, 0]])
    torch.testing.assert_close(attended_positions(attention), expected)


@pytest.mark.parametrize(
    ("fusion", "readout"), [("san", "concat"), ("san", "sum"), ("product", "sum")]
)
def test_a_tiny_model_learns_eight_world_questions(fusion, readout):
    """Eight questions about four scenes, learnt by heart in 300 steps (the loss under
    0.05 after 110-190 steps for SAN with the concat readout, ~60 with the sum readout,
    ~110 for product, over three seeds)."""
    torch.manual_seed(0)
    view = make_dataset(World(seed=0), "vqa", "train", size=40)
    items = [view[i] for i in (0, 1, 10, 11, 20, 21, 30, 31)]  # 2 questions of 4 scenes
    vocab = Vocabulary.build([it["question"] for it in items])
    images = torch.stack([items[i]["image"] for i in range(0, 8, 2)])
    tokens, lengths = vocab.encode_batch([it["question"] for it in items])
    index = torch.arange(4).repeat_interleave(2)
    labels = torch.tensor([it["label"] for it in items])
    model = VQAModel(len(vocab), len(view.answers), fusion=fusion, readout=readout, **TINY)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(
            model(images, tokens, lengths, index).logits, labels
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(images, tokens, lengths, index).logits.argmax(dim=1)
    assert pred.tolist() == labels.tolist()
    assert float(loss.detach()) < 0.05
