"""Soft visual attention: a distribution over locations, and its weighted sum of features."""

from __future__ import annotations

import pytest
import torch

from xmodal.errors import ParameterError
from xmodal.vision import AdditiveAttention, AttentionPool2d, DotProductAttention

B, DQ, C, DH, H, W = 3, 5, 6, 4, 3, 4


def make(kind: str, dtype=torch.float32):
    torch.manual_seed(0)
    if kind == "additive":
        return AdditiveAttention(DQ, C, DH).to(dtype)
    if kind == "dot-projected":
        return DotProductAttention(DQ, C, hidden_dim=DH).to(dtype)
    return DotProductAttention(C, C)


def inputs(kind: str, dtype=torch.float32, layout: str = "map"):
    g = torch.Generator().manual_seed(1)
    dq = C if kind == "dot" else DQ
    query = torch.randn(B, dq, generator=g, dtype=dtype)
    feats = torch.randn(B, C, H, W, generator=g, dtype=dtype)
    if layout == "set":
        feats = feats.flatten(2).transpose(1, 2)  # (B, N, C)
    return query, feats


KINDS = ["additive", "dot-projected", "dot"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layout", ["map", "set"])
def test_alpha_is_a_distribution_and_context_its_weighted_sum(kind, layout):
    attn = make(kind)
    query, feats = inputs(kind, layout=layout)
    context, alpha = attn(query, feats)
    assert context.shape == (B, C)
    assert alpha.shape == ((B, H, W) if layout == "map" else (B, H * W))
    flat = alpha.reshape(B, -1)
    assert (flat >= 0).all()
    torch.testing.assert_close(flat.sum(dim=1), torch.ones(B))
    locations = feats.flatten(2).transpose(1, 2) if layout == "map" else feats  # (B, N, C)
    by_hand = torch.stack(
        [sum(flat[b, i] * locations[b, i] for i in range(H * W)) for b in range(B)]
    )
    torch.testing.assert_close(context, by_hand)


@pytest.mark.parametrize("kind", KINDS)
def test_both_layouts_give_the_same_answer(kind):
    attn = make(kind)
    query, feats = inputs(kind)
    c_map, a_map = attn(query, feats)
    c_set, a_set = attn(query, feats.flatten(2).transpose(1, 2))
    torch.testing.assert_close(c_map, c_set)
    torch.testing.assert_close(a_map.reshape(B, -1), a_set)
    # Row-major flattening: location (i, j) is index i * W + j.
    assert a_map[1, 2, 3] == a_set[1, 2 * W + 3]


def test_additive_score_matches_the_formula():
    attn = make("additive", torch.float64)
    query, feats = inputs("additive", torch.float64, layout="set")
    Wf, bf = attn.feature_proj.weight, attn.feature_proj.bias
    Wq, w = attn.query_proj.weight, attn.score_proj.weight[0]
    e = torch.tanh(feats @ Wf.T + bf + (query @ Wq.T).unsqueeze(1)) @ w  # (B, N)
    _, alpha = attn(query, feats)
    torch.testing.assert_close(alpha, torch.softmax(e, dim=1))


def test_dot_product_score_is_scaled():
    attn = make("dot")
    query, feats = inputs("dot", layout="set")
    e = torch.einsum("bnc,bc->bn", feats, query) / C**0.5
    _, alpha = attn(query, feats)
    torch.testing.assert_close(alpha, torch.softmax(e, dim=1))


@pytest.mark.parametrize("kind", KINDS)
def test_masked_locations_get_exactly_zero(kind):
    attn = make(kind)
    query, feats = inputs(kind)
    mask = torch.rand(B, H, W, generator=torch.Generator().manual_seed(2)) > 0.5
    mask[:, 0, 0] = True
    context, alpha = attn(query, feats, mask=mask)
    assert (alpha[~mask] == 0).all()
    assert (alpha[mask] > 0).all()
    torch.testing.assert_close(alpha.sum(dim=(1, 2)), torch.ones(B))
    # Masking is the same as dropping those locations.
    for b in range(B):
        kept = feats[b].flatten(1).T[mask[b].flatten()]  # (N_kept, C)
        c_b, a_b = attn(query[b : b + 1], kept.unsqueeze(0))
        torch.testing.assert_close(context[b : b + 1], c_b)
        torch.testing.assert_close(alpha[b][mask[b]], a_b[0])


def test_additive_attention_peaks_where_the_query_points():
    # W_f = identity (first DH channels), W_q = 0, w = e_0: the score is tanh(f_i[0]),
    # so the location whose channel 0 is high wins.
    attn = AdditiveAttention(DQ, C, DH)
    with torch.no_grad():
        attn.feature_proj.weight.copy_(torch.eye(DH, C))
        attn.feature_proj.bias.zero_()
        attn.query_proj.weight.zero_()
        attn.score_proj.weight.copy_(10 * torch.eye(1, DH))
    feats = torch.full((1, C, H, W), -1.0)
    feats[0, 0, 2, 1] = 3.0
    context, alpha = attn(torch.randn(1, DQ), feats)
    assert alpha.flatten().argmax() == 2 * W + 1
    assert alpha[0, 2, 1] > 0.99
    torch.testing.assert_close(context, feats[:, :, 2, 1], atol=0.05, rtol=0)


def test_dot_product_attention_follows_the_query():
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(2, C, H, W, generator=g)
    targets = [(0, 3), (2, 2)]
    query = torch.stack([4 * feats[b, :, i, j] for b, (i, j) in enumerate(targets)])
    feats_sharp = feats.clone()
    for b, (i, j) in enumerate(targets):
        feats_sharp[b, :, i, j] *= 3
    _, alpha = DotProductAttention(C, C)(query, feats_sharp)
    for b, (i, j) in enumerate(targets):
        assert alpha[b].flatten().argmax() == i * W + j
        assert alpha[b, i, j] > 0.9


@pytest.mark.parametrize("kind", KINDS)
def test_batched_equals_per_item(kind):
    attn = make(kind)
    query, feats = inputs(kind)
    context, alpha = attn(query, feats)
    for b in range(B):
        c_b, a_b = attn(query[b : b + 1], feats[b : b + 1])
        torch.testing.assert_close(context[b : b + 1], c_b)
        torch.testing.assert_close(alpha[b : b + 1], a_b)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind):
    attn = make(kind, torch.float64)
    query, feats = inputs(kind, torch.float64)
    query.requires_grad_()
    feats.requires_grad_()
    mask = torch.ones(B, H, W, dtype=torch.bool)
    mask[0, 1, :] = False
    assert torch.autograd.gradcheck(lambda q, f: attn(q, f, mask=mask), (query, feats))
    context, _ = attn(query, feats)
    context.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in attn.parameters())


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda a: a(torch.randn(B, DQ + 1), torch.randn(B, C, H, W)), r"query.*\(3, 6\)"),
        (lambda a: a(torch.randn(DQ), torch.randn(B, C, H, W)), r"query.*\(5,\)"),
        (lambda a: a(torch.randn(B, DQ), torch.randn(B, C + 1, H, W)), r"\(B, 6, H', W'\).*7"),
        (lambda a: a(torch.randn(B, DQ), torch.randn(B, H * W, C + 1)), r"\(B, N, 6\).*7"),
        (lambda a: a(torch.randn(B, DQ), torch.randn(C, H)), r"features.*\(6, 3\)"),
        (lambda a: a(torch.randn(B, DQ), torch.randn(B + 1, C, H, W)), r"batch size.*3 and 4"),
        (lambda a: a(torch.randn(B, DQ), torch.randn(B, 0, C)), r"no locations"),
        (
            lambda a: a(torch.randn(B, DQ), torch.randn(B, C, H, W), mask=torch.ones(B, H * W) > 0),
            r"mask must have shape \(3, 3, 4\).*\(3, 12\)",
        ),
        (
            lambda a: a(torch.randn(B, DQ), torch.randn(B, C, H, W), mask=torch.ones(B, H, W)),
            r"bool.*torch.float32",
        ),
        (
            lambda a: a(
                torch.randn(B, DQ),
                torch.randn(B, C, H, W),
                mask=torch.arange(B * H * W).view(B, H, W) >= H * W,
            ),
            r"at least one location.*\[0\]",
        ),
    ],
)
def test_bad_input_raises_parameter_error(call, match):
    with pytest.raises(ParameterError, match=match):
        call(AdditiveAttention(DQ, C, DH))


def test_bad_constructor_arguments_raise_parameter_error():
    with pytest.raises(ParameterError, match=r"hidden_dim.*Found: 0"):
        AdditiveAttention(DQ, C, 0)
    with pytest.raises(ParameterError, match=r"query_dim=5, feature_dim=6"):
        DotProductAttention(DQ, C)


# ----------------------------------------------------------------- CLIP's attention pooling


def clip_attention_pool(pool, x: torch.Tensor) -> torch.Tensor:
    """CLIP's own ``AttentionPool2d.forward`` (openai/CLIP ``clip/model.py``) on our weights."""
    x = x.flatten(start_dim=2).permute(2, 0, 1)  # NCHW -> (HW)NC
    x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)  # (HW+1)NC
    x = x + pool.positional_embedding[:, None, :].to(x.dtype)
    x, _ = torch.nn.functional.multi_head_attention_forward(
        query=x[:1], key=x, value=x, embed_dim_to_check=x.shape[-1], num_heads=pool.heads,
        q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight,
        v_proj_weight=pool.v_proj.weight, in_proj_weight=None,
        in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0,
        out_proj_weight=pool.c_proj.weight, out_proj_bias=pool.c_proj.bias,
        use_separate_proj_weight=True, training=False, need_weights=False,
    )  # fmt: skip
    return x.squeeze(0)


@pytest.mark.parametrize("heads", [1, 4])
def test_attention_pool_matches_clips_forward(heads):
    torch.manual_seed(0)
    pool = AttentionPool2d((3, 4), 8, heads).eval()
    x = torch.randn(2, 8, 3, 4)
    torch.testing.assert_close(pool(x), clip_attention_pool(pool, x), rtol=1e-5, atol=1e-6)


def test_attention_pool_keeps_where_things_are():
    """Moving a feature to another location changes the vector (a mean would not)."""
    torch.manual_seed(0)
    pool = AttentionPool2d((3, 3), 8, 2, out_dim=5).eval()
    x = torch.zeros(1, 8, 3, 3)
    a, b = x.clone(), x.clone()
    a[0, :, 0, 0] = 1.0
    b[0, :, 2, 2] = 1.0
    assert pool(a).shape == (1, 5)
    assert not torch.allclose(pool(a), pool(b), atol=1e-4)


def test_attention_pool_bad_input_is_a_parameter_error():
    with pytest.raises(ParameterError, match="divisible by heads"):
        AttentionPool2d((2, 2), 6, 4)
    pool = AttentionPool2d((2, 2), 8, 2)
    with pytest.raises(ParameterError, match=r"\(B, 8, H', W'\). Found: \(1, 6, 2, 2\)"):
        pool(torch.zeros(1, 6, 2, 2))


def test_attention_pool_resizes_its_positions_for_another_map():
    """A map of another size gets the position embedding resized bicubically (CLIP's and
    timm's convention); resizing to the learnt grid is the identity."""
    from xmodal.vision.attention import resize_positions

    torch.manual_seed(0)
    pool = AttentionPool2d((4, 4), 8, 2).eval()
    table = pool.positional_embedding[1:]
    assert resize_positions(table, (4, 4), (4, 4)) is table
    bigger = resize_positions(table, (4, 4), (8, 8))
    assert bigger.shape == (64, 8)
    back = torch.nn.functional.interpolate(bigger.T.reshape(1, 8, 8, 8), size=(4, 4),
                                           mode="area")  # fmt: skip
    assert torch.allclose(back.reshape(8, 16).T, table, atol=0.3)  # the same layout
    with torch.no_grad():
        assert pool(torch.randn(2, 8, 2, 3)).shape == (2, 8)
