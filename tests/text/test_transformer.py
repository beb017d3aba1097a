"""The transformer against references and invariants: multi-head attention equals
torch.nn.MultiheadAttention with the same weights (masks included), the causal mask hides
the future, KV-cache decoding equals full recomputation, sinusoidal positions follow the
formula, a tiny GPT memorises a short text, the fine-tuning heads have the right shapes,
respect their symmetries and train, and every bad input is refused by name."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from xmodal.errors import ParameterError
from xmodal.text.heads import (
    MultipleChoice,
    PairSimilarity,
    SequenceClassifier,
    pack_choices,
    pack_pairs,
    pack_sequences,
)
from xmodal.text.transformer import (
    GPT,
    PRESETS,
    MultiHeadAttention,
    TransformerConfig,
    scaled_dot_product_attention,
    sinusoidal_position_embedding,
)

V = 23


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and on a loaded machine a second thread
    only waits for the first."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(**kw) -> TransformerConfig:
    base = dict(vocab_size=V, block_size=32, n_layer=2, n_head=4, n_embd=32, dropout=0.0)
    return TransformerConfig(**{**base, **kw})


def _gpt(seed: int = 0, dtype=torch.float32, **kw) -> GPT:
    torch.manual_seed(seed)
    model = GPT(_config(**kw)).to(dtype).eval()
    # Trained-looking weights: larger than the N(0, 0.02) init, so attention is not uniform.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


# ----------------------------------------------------------------------------- attention


def _pair(embed_dim=16, num_heads=4, bias=True, seed=0):
    """nn.MultiheadAttention and our MultiHeadAttention holding the same weights."""
    torch.manual_seed(seed)
    ref = torch.nn.MultiheadAttention(embed_dim, num_heads, bias=bias, batch_first=True).eval()
    ours = MultiHeadAttention(embed_dim, num_heads, bias=bias).eval()
    with torch.no_grad():
        q, k, v = ref.in_proj_weight.chunk(3)
        ours.q_proj.weight.copy_(q)
        ours.k_proj.weight.copy_(k)
        ours.v_proj.weight.copy_(v)
        ours.out_proj.weight.copy_(ref.out_proj.weight)
        if bias:
            bq, bk, bv = ref.in_proj_bias.chunk(3)
            ours.q_proj.bias.copy_(bq)
            ours.k_proj.bias.copy_(bk)
            ours.v_proj.bias.copy_(bv)
            ours.out_proj.bias.copy_(ref.out_proj.bias)
    return ref, ours


B, T = 3, 7
CAUSAL = torch.ones(T, T, dtype=torch.bool).triu(1)  # True: may not attend (nn.MHA)
PAD = torch.tensor([[0] * 7, [0] * 5 + [1] * 2, [0] * 3 + [1] * 4], dtype=torch.bool)
FLOAT = torch.randn(T, T, generator=torch.Generator().manual_seed(3))


# nn.MultiheadAttention warns about a float attn_mask beside a bool key_padding_mask (ours
# takes both as they are).
@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning")
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(
    "attn_mask, key_padding_mask",
    [(None, None), (CAUSAL, None), (None, PAD), (CAUSAL, PAD), (FLOAT, None), (FLOAT, PAD)],
    ids=["none", "causal", "padding", "causal+padding", "float", "float+padding"],
)
def test_mha_equals_torch_multihead_attention(attn_mask, key_padding_mask, bias):
    ref, ours = _pair(bias=bias)
    x = torch.randn(B, T, 16, generator=torch.Generator().manual_seed(1))
    y_ref, w_ref = ref(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                       need_weights=True, average_attn_weights=False)  # fmt: skip
    for need_weights in (True, False):  # the explicit path and the fused kernel
        y, w, cache = ours(x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=need_weights)  # fmt: skip
        torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=1e-5)
        assert cache is None
        if need_weights:
            assert w.shape == (B, 4, T, T)
            torch.testing.assert_close(w, w_ref, atol=1e-6, rtol=1e-5)
        else:
            assert w is None


def test_mha_causal_flag_equals_a_causal_mask_and_cross_attention_matches():
    ref, ours = _pair()
    x = torch.randn(B, T, 16)
    y_ref, w_ref = ref(x, x, x, attn_mask=CAUSAL, key_padding_mask=PAD,
                       average_attn_weights=False)  # fmt: skip
    for kpm, (yr, wr) in ((None, ref(x, x, x, attn_mask=CAUSAL, average_attn_weights=False)),
                          (PAD, (y_ref, w_ref))):  # fmt: skip
        y, w, _ = ours(x, causal=True, key_padding_mask=kpm, need_weights=True)
        torch.testing.assert_close(y, yr, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(w, wr, atol=1e-6, rtol=1e-5)
        assert (w.triu(1) == 0).all()
    # Cross-attention: 7 queries over 5 keys with their own values.
    mem, val = torch.randn(B, 5, 16), torch.randn(B, 5, 16)
    y_ref, w_ref = ref(x, mem, val, average_attn_weights=False)
    y, w, _ = ours(x, mem, val, need_weights=True)
    torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(w, w_ref, atol=1e-6, rtol=1e-5)


def test_sdpa_explicit_path_equals_the_fused_kernel():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 8, generator=g) for _ in range(3))
    mask = torch.rand(6, 6, generator=g) > 0.3
    mask |= torch.eye(6, dtype=torch.bool)  # every query keeps a key
    for kw in ({}, {"is_causal": True}, {"attn_mask": mask}, {"attn_mask": mask.float() - 1}):
        fused, none = scaled_dot_product_attention(q, k, v, **kw)
        explicit, w = scaled_dot_product_attention(q, k, v, need_weights=True, **kw)
        assert none is None
        torch.testing.assert_close(explicit, fused, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(explicit, w @ v, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 6))
        ref = F.scaled_dot_product_attention(q, k, v, **kw)
        torch.testing.assert_close(fused, ref)


def test_a_query_that_sees_no_key_gets_zeros_not_nan():
    _, ours = _pair()
    x = torch.randn(1, 4, 16)
    left_pad = torch.tensor([[True, True, False, False]])  # causal: queries 0, 1 see only pads
    y, w, _ = ours(x, causal=True, key_padding_mask=left_pad, need_weights=True)
    assert torch.isfinite(y).all() and torch.isfinite(w).all()
    torch.testing.assert_close(y[0, :2], ours.out_proj.bias.expand(2, 16))  # zero attention out
    assert (w[0, :, :2] == 0).all()
    torch.testing.assert_close(w[0, :, 2:].sum(-1), torch.ones(4, 2))


def test_mha_cache_appends_keys_and_values():
    _, ours = _pair()
    x = torch.randn(2, 6, 16)
    full, _, (k, v) = ours(x, causal=True, use_cache=True)
    assert k.shape == v.shape == (2, 4, 6, 4)
    head, _, cache = ours(x[:, :4], causal=True, use_cache=True)
    tail, _, (k2, v2) = ours(x[:, 4:], causal=True, past_key_value=cache, use_cache=True)
    torch.testing.assert_close(torch.cat([head, tail], 1), full, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(k2, k)
    torch.testing.assert_close(v2, v)


# ----------------------------------------------------------------------------- positions


@pytest.mark.parametrize("dim", [16, 7])
def test_sinusoidal_embedding_is_the_vaswani_formula(dim):
    pe = sinusoidal_position_embedding(50, dim)
    assert pe.shape == (50, dim) and pe.dtype == torch.float32
    for pos in (0, 1, 17, 49):
        for i in range(dim):
            angle = pos / 10000 ** ((i - i % 2) / dim)
            want = math.sin(angle) if i % 2 == 0 else math.cos(angle)
            assert pe[pos, i].item() == pytest.approx(want, abs=1e-6)


def test_sinusoidal_positions_are_not_weights():
    model = GPT(_config(position="sinusoidal"))
    assert not any("wpe" in k for k in model.state_dict())
    torch.testing.assert_close(
        model.transformer.wpe(5, 3), sinusoidal_position_embedding(32, 32)[3:8]
    )


# ----------------------------------------------------------------------------- the model


CONFIGS = [
    {},
    {"norm": "post"},
    {"position": "sinusoidal"},
    {"bias": False, "n_head": 2},
]
IDS = ["pre-ln", "post-ln", "sinusoidal", "no-bias"]


@pytest.mark.parametrize("kw", CONFIGS, ids=IDS)
def test_causal_mask_hides_the_future(kw):
    model = _gpt(**kw)
    idx = torch.randint(0, V, (2, 20), generator=torch.Generator().manual_seed(0))
    logits, _ = model(idx)
    for t in (0, 7, 18):
        changed = idx.clone()
        changed[:, t + 1] = (changed[:, t + 1] + 1) % V
        other, _ = model(changed)
        torch.testing.assert_close(other[:, : t + 1], logits[:, : t + 1], atol=1e-6, rtol=1e-6)
        assert not torch.allclose(other[:, t + 1], logits[:, t + 1])  # it did change something


@pytest.mark.parametrize("kw", CONFIGS, ids=IDS)
def test_incremental_decoding_equals_the_full_forward(kw):
    model = _gpt(**kw)
    idx = torch.randint(0, V, (2, 12))
    full = model.lm_head(model.transformer(idx).hidden)
    out = model.transformer(idx[:, :5], use_cache=True)
    steps = [model.lm_head(out.hidden)]
    past = out.past_key_values
    for t in range(5, 12, 3):  # chunks of 3 new tokens (a causal mask within the chunk)
        out = model.transformer(idx[:, t : t + 3], past_key_values=past, use_cache=True)
        past = out.past_key_values
        steps.append(model.lm_head(out.hidden))
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    assert past[0][0].shape == (2, model.config.n_head, 12, model.config.head_dim)


@pytest.mark.parametrize("kw", CONFIGS, ids=IDS)
def test_kv_cache_generation_equals_full_recomputation(kw):
    model = _gpt(dtype=torch.float64, **kw)
    prompt = torch.randint(0, V, (3, 5), generator=torch.Generator().manual_seed(2))
    n = 40  # 5 + 40 > block_size 32: the window slides past the context
    greedy = model.generate(prompt, n, top_k=1, use_cache=True)
    assert greedy.shape == (3, 5 + n) and torch.equal(greedy[:, :5], prompt)
    assert torch.equal(greedy, model.generate(prompt, n, top_k=1, use_cache=False))
    # Greedy is the argmax of the full forward at every step (within the context).
    logits, _ = model(greedy[:, :32])
    assert torch.equal(logits[:, 4:31].argmax(-1), greedy[:, 5:32])
    for top_k in (None, 5):
        runs = [
            model.generate(prompt, n, temperature=0.7, top_k=top_k, use_cache=cache,
                           generator=torch.Generator().manual_seed(7))
            for cache in (True, False)
        ]  # fmt: skip
        assert torch.equal(runs[0], runs[1])
        assert not torch.equal(runs[0], greedy)


def test_sampling_follows_temperature_and_top_k():
    model = _gpt()
    prompt = torch.zeros(64, 1, dtype=torch.long)
    logits = model(prompt)[0][0, -1]
    allowed = set(torch.topk(logits, 3).indices.tolist())
    out = model.generate(prompt, 1, top_k=3, generator=torch.Generator().manual_seed(0))
    assert set(out[:, 1].tolist()) <= allowed and len(set(out[:, 1].tolist())) > 1
    cold = model.generate(prompt, 1, temperature=1e-4, generator=torch.Generator().manual_seed(0))
    assert (cold[:, 1] == logits.argmax()).all()
    same = [model.generate(prompt[:4], 10, generator=torch.Generator().manual_seed(3))
            for _ in range(2)]  # fmt: skip
    assert torch.equal(*same)


def test_generate_restores_training_mode_and_returns_only_the_prompt_for_zero_tokens():
    model = _gpt().train()
    prompt = torch.randint(0, V, (2, 4))
    assert torch.equal(model.generate(prompt, 0), prompt)
    model.generate(prompt, 3)
    assert model.training
    maps = model.attention_maps(prompt)
    assert model.training and len(maps) == 2


def test_weights_are_tied_and_counted_once():
    model = GPT(_config())
    assert model.lm_head.weight is model.transformer.wte.weight
    n = sum(p.numel() for p in model.parameters())
    assert model.num_parameters() == n
    untied = sum(p.numel() for name, p in model.named_parameters(remove_duplicate=False))
    assert untied - n == V * 32


def test_attention_maps_are_causal_distributions_and_match_the_output():
    model = _gpt()
    idx = torch.randint(0, V, (2, 9))
    maps = model.attention_maps(idx)
    assert len(maps) == 2 and all(m.shape == (2, 4, 9, 9) for m in maps)
    for m in maps:
        torch.testing.assert_close(m.sum(-1), torch.ones(2, 4, 9))
        assert (m.triu(1) == 0).all() and (m >= 0).all()
    # The weights path gives the same hidden states as the fused path.
    torch.testing.assert_close(model.transformer(idx, need_weights=True).hidden,
                               model.transformer(idx).hidden, atol=1e-6, rtol=1e-5)  # fmt: skip
    assert torch.equal(maps[0][:, :, 0, 0], torch.ones(2, 4))  # the first token sees itself


def test_presets():
    gpt1 = TransformerConfig.preset("gpt1")
    assert (gpt1.n_layer, gpt1.n_embd, gpt1.n_head, gpt1.block_size) == (12, 768, 12, 512)
    assert (gpt1.norm, gpt1.position, gpt1.vocab_size) == ("post", "learned", 40478)
    tiny = TransformerConfig.preset("tiny", vocab_size=65, dropout=0.0)
    assert (tiny.n_layer, tiny.n_embd, tiny.dropout) == (4, 128, 0.0)
    assert set(PRESETS) == {"gpt1", "small", "tiny", "micro"}


def test_a_tiny_gpt_memorises_a_short_text():
    text = "the quick brown fox jumps over the lazy dog. " * 3
    chars = sorted(set(text))
    ids = torch.tensor([chars.index(c) for c in text])[None]  # (1, 135)
    torch.manual_seed(0)
    config = TransformerConfig.preset("micro", vocab_size=len(chars), block_size=160)
    model = GPT(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    for _ in range(80):  # about a second on one core
        _, loss = model(ids[:, :-1], ids[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05, loss.item()
    # It recites the text from its first character.
    out = model.generate(ids[:, :1], ids.size(1) - 1, top_k=1)
    assert "".join(chars[i] for i in out[0]) == text


# ----------------------------------------------------------------------------- heads


def _body(seed=0) -> GPT:
    torch.manual_seed(seed)
    return GPT(_config(dropout=0.0))


def _sequences(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 12, (n,), generator=g).tolist()
    return [torch.randint(4, V, (m,), generator=g).tolist() for m in lengths]


def test_heads_output_shapes_and_padding_invariance():
    seqs = _sequences(5)
    idx, lengths = pack_sequences(seqs)
    clf = SequenceClassifier(_body(), n_classes=3).eval()
    logits, loss = clf(idx, lengths)
    assert logits.shape == (5, 3) and loss is None
    # Each sequence alone (no padding) gives the logits it gets in the padded batch.
    for i, s in enumerate(seqs):
        alone, _ = clf(torch.tensor([s]))
        torch.testing.assert_close(alone[0], logits[i], atol=1e-5, rtol=1e-5)

    ab, ba, lengths = pack_pairs(seqs[:4], seqs[1:], delimiter_id=1)
    assert ab.shape == ba.shape
    assert lengths.tolist() == [
        len(a) + len(b) + 1 for a, b in zip(seqs[:4], seqs[1:], strict=True)
    ]
    assert ab[0, : len(seqs[0])].tolist() == seqs[0] and ab[0, len(seqs[0])] == 1
    score, _ = PairSimilarity(_body()).eval()(ab, ba, lengths)
    assert score.shape == (4,)
    classes, _ = PairSimilarity(_body(), n_classes=3).eval()(ab, ba, lengths)
    assert classes.shape == (4, 3)

    idx, lengths = pack_choices(seqs[:2], [seqs[2:5], seqs[1:4]], delimiter_id=1, start_id=2,
                                extract_id=3)  # fmt: skip
    assert idx.shape[:2] == lengths.shape == (2, 3)
    assert idx[0, 0, 0] == 2 and idx[0, 0, lengths[0, 0] - 1] == 3
    scores, _ = MultipleChoice(_body()).eval()(idx, lengths)
    assert scores.shape == (2, 3)


def test_pair_similarity_does_not_depend_on_the_order_of_the_pair():
    seqs = _sequences(6, seed=1)
    model = PairSimilarity(_body(), n_classes=2).eval()
    ab, ba, lengths = pack_pairs(seqs[:3], seqs[3:], delimiter_id=1)
    swapped_ab, swapped_ba, swapped_lengths = pack_pairs(seqs[3:], seqs[:3], delimiter_id=1)
    out, _ = model(ab, ba, lengths)
    swapped, _ = model(swapped_ab, swapped_ba, swapped_lengths)
    torch.testing.assert_close(out, swapped, atol=1e-5, rtol=1e-5)


def test_multiple_choice_scores_follow_the_answers():
    seqs = _sequences(4, seed=2)
    model = MultipleChoice(_body()).eval()
    idx, lengths = pack_choices([seqs[0]], [[seqs[1], seqs[2], seqs[3]]], delimiter_id=1)
    perm = [2, 0, 1]
    idx_p, lengths_p = pack_choices([seqs[0]], [[seqs[1 + p] for p in perm]], delimiter_id=1)
    scores, _ = model(idx, lengths)
    permuted, _ = model(idx_p, lengths_p)
    torch.testing.assert_close(permuted[0], scores[0, perm], atol=1e-5, rtol=1e-5)


def _train(model, batches, steps=40, lr=3e-3):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for step in range(steps):
        _, loss = model(*batches[step % len(batches)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_heads_train():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    seqs = _sequences(32, seed=3)
    # Classification: does the sequence hold token 5? (with GPT-1's auxiliary LM loss)
    for s in seqs[::2]:
        s[int(torch.randint(len(s), (1,), generator=g))] = 5
    labels = torch.tensor([int(5 in s) for s in seqs])
    idx, lengths = pack_sequences(seqs)
    clf = SequenceClassifier(_body(), 2, dropout=0.0)
    losses = _train(clf, [(idx, lengths, labels)])
    assert losses[-1] < 0.7 * losses[0], losses
    assert (clf.eval()(idx, lengths)[0].argmax(-1) == labels).float().mean() >= 0.9
    # Similarity score: 1 for a pair of equal sequences, 0 otherwise.
    a = seqs[:16]
    b = [s if i % 2 else seqs[16 + i] for i, s in enumerate(a)]
    target = torch.tensor([float(i % 2) for i in range(16)])
    ab, ba, lengths = pack_pairs(a, b, delimiter_id=1)
    losses = _train(
        PairSimilarity(_body(), dropout=0.0, lm_weight=0.0), [(ab, ba, lengths, target)]
    )
    assert losses[-1] < 0.3 * losses[0], losses
    # Multiple choice: the right answer repeats the context's first token.
    contexts = seqs[:16]
    choices = [[[c[0]], [4 + (c[0] - 3) % (V - 4)], [4 + (c[0] - 2) % (V - 4)]] for c in contexts]
    order = torch.randint(3, (16,), generator=g)
    choices = [
        [ch[(j + int(o)) % 3] for j in range(3)] for ch, o in zip(choices, order, strict=True)
    ]
    labels = torch.tensor([(3 - int(o)) % 3 for o in order])
    idx, lengths = pack_choices(contexts, choices, delimiter_id=1)
    mc = MultipleChoice(_body(), dropout=0.0, lm_weight=0.0)
    losses = _train(mc, [(idx, lengths, labels)], steps=100)
    assert losses[-1] < 0.3 * losses[0], losses
    assert (mc.eval()(idx, lengths)[0].argmax(-1) == labels).float().mean() >= 0.9


def test_the_auxiliary_lm_loss_is_the_body_lm_loss_on_the_tokens():
    seqs = _sequences(3, seed=4)
    idx, lengths = pack_sequences(seqs)
    body = _body()
    labels = torch.tensor([0, 1, 0])
    with_lm = SequenceClassifier(body, 2, lm_weight=0.5, dropout=0.0).eval()
    logits, loss = with_lm(idx, lengths, labels)
    task = F.cross_entropy(logits, labels)
    targets = torch.cat([torch.tensor(s[1:]) for s in seqs])
    lm = torch.cat([body(torch.tensor([s]))[0][0, :-1] for s in seqs])
    torch.testing.assert_close(
        loss, task + 0.5 * F.cross_entropy(lm, targets), atol=1e-5, rtol=1e-5
    )


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"n_embd": 30, "n_head": 4}, "n_embd must be divisible by n_head"),
        ({"n_head": 0}, "n_head must be an integer >= 1"),
        ({"block_size": 0}, "block_size must be an integer >= 1"),
        ({"vocab_size": 0}, "vocab_size must be an integer >= 1"),
        ({"dropout": 1.0}, "dropout must be in [0, 1)"),
        (
            {"position": "rotary"},
            "position must be one of 'learned', 'sinusoidal'. Found: 'rotary'",
        ),
        ({"norm": "middle"}, "norm must be one of 'pre', 'post'"),
    ],
)
def test_bad_config_is_refused_by_name(kw, message):
    with pytest.raises(ParameterError) as err:
        _config(**kw)
    assert message in str(err.value)


def test_bad_head_count_for_the_width():
    with pytest.raises(ParameterError, match="embed_dim=30, num_heads=4"):
        MultiHeadAttention(30, 4)
    with pytest.raises(ParameterError, match="preset must be one of"):
        TransformerConfig.preset("gpt5", vocab_size=3)
    with pytest.raises(ParameterError, match="needs vocab_size"):
        TransformerConfig.preset("tiny")


def test_a_sequence_longer_than_the_context_is_refused():
    model = _gpt()
    with pytest.raises(
        ParameterError,
        match="a sequence of 33 tokens is longer than the context length block_size=32",
    ):
        model(torch.zeros(1, 33, dtype=torch.long))
    past = model.transformer(torch.zeros(1, 30, dtype=torch.long), use_cache=True).past_key_values
    with pytest.raises(ParameterError, match=r"33 tokens \(30 cached \+ 3 new\) is longer"):
        model.transformer(torch.zeros(1, 3, dtype=torch.long), past_key_values=past)
    with pytest.raises(ParameterError, match="the prompt has 40 tokens, more than the context"):
        model.generate(torch.zeros(1, 40, dtype=torch.long), 2)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"top_k": 0}, "top_k must be an integer >= 1. Found: 0"),
        ({"top_k": 2.5}, "top_k must be an integer >= 1. Found: 2.5"),
        ({"temperature": 0.0}, "temperature must be a finite number > 0. Found: 0.0"),
        ({"temperature": -1}, "temperature must be a finite number > 0. Found: -1.0"),
        ({"temperature": float("nan")}, "temperature must be a finite number > 0"),
        ({"max_new_tokens": -1}, "max_new_tokens must be an integer >= 0. Found: -1"),
        ({"generator": 3}, "generator must be a torch.Generator"),
    ],
)
def test_bad_generation_settings(kw, message):
    model = _gpt()
    args = {"max_new_tokens": 2, **kw}
    with pytest.raises(ParameterError) as err:
        model.generate(torch.zeros(1, 2, dtype=torch.long), **args)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "idx, message",
    [
        (torch.zeros(2, 3), "must be a 2-D integer tensor"),
        (torch.zeros(3, dtype=torch.long), "must be a 2-D integer tensor"),
        (torch.zeros(2, 0, dtype=torch.long), "at least one token"),
        (torch.tensor([[1, V]]), f"token id {V}, outside [0, vocab_size={V})"),
        (torch.tensor([[-1, 2]]), "token id -1"),
        ([[1, 2]], "must be a torch.Tensor of token ids"),
    ],
)
def test_bad_token_ids(idx, message):
    with pytest.raises(ParameterError) as err:
        _gpt()(idx)
    assert message in str(err.value)


def test_bad_targets_and_head_inputs():
    model = _gpt()
    with pytest.raises(ParameterError, match="targets must be a tensor of the shape of idx"):
        model(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    clf = SequenceClassifier(_body(), 2)
    idx = torch.ones(2, 5, dtype=torch.long)
    with pytest.raises(ParameterError, match=r"lengths must be integers in \[1, 5\]"):
        clf(idx, torch.tensor([0, 5]))
    with pytest.raises(ParameterError, match=r"idx must be a \(B, T\) tensor"):
        clf([[1, 2]])
    with pytest.raises(ParameterError, match="one length per sequence"):
        clf(idx, torch.tensor([3]))
    with pytest.raises(ParameterError, match="n_classes must be an integer >= 2"):
        SequenceClassifier(_body(), 1)
    with pytest.raises(ParameterError, match="body must be a xmodal GPT"):
        SequenceClassifier(torch.nn.Linear(2, 2), 2)
    with pytest.raises(ParameterError, match="same number"):
        pack_choices([[5], [6]], [[[1], [2]], [[3]]], delimiter_id=1)
    with pytest.raises(ParameterError, match=r"seqs\[1\] is empty"):
        pack_sequences([[4], []])
    with pytest.raises(ParameterError, match="idx must be a \\(B, K, T\\) tensor"):
        MultipleChoice(_body())(idx)
