"""Captioning models: teacher forcing, the loss, and beam search (batched == per image)."""

from __future__ import annotations

import copy
import functools
import math
from collections import Counter

import pytest
import torch

from xmodal.errors import ParameterError
from xmodal.text.vocab import BOS_ID, EOS_ID, PAD_ID, Vocabulary, tokenize
from xmodal.translation import (
    CaptionOutput,
    ShowAttendTell,
    ShowTell,
    beam_search_loop,
    caption_loss,
    captioning,
    target_mask,
)
from xmodal.world import World
from xmodal.world.datasets import make_dataset
from xmodal.world.language import word_attributes

TINY = dict(encoder_kwargs={"channels": 16}, embed_dim=16, hidden_dim=32, dropout=0.0)
MODELS = {
    "show-tell": lambda v, **kw: ShowTell(v, **{**TINY, **kw}),
    "show-attend-tell": lambda v, **kw: ShowAttendTell(v, attention_dim=16, **{**TINY, **kw}),
    # The attention's query also sees the previous word.
    "word-query": lambda v, **kw: ShowAttendTell(
        v, attention_dim=16, word_query=True, **{**TINY, **kw}
    ),  # fmt: skip
    # Colour and shape words factored: p(group | language) * p(value | attended region).
    "factored": lambda v, **kw: ShowAttendTell(
        v, attention_dim=16, word_query=True, word_attributes=_attributes(), **{**TINY, **kw}
    ),  # fmt: skip
}


def _attributes() -> dict:
    """The colour and shape words of the test vocabulary (:func:`word_attributes`)."""
    return word_attributes(_world_data()[2].itos)


@pytest.fixture(scope="module")
def world_data():
    return _world_data()


@functools.cache
def _world_data():
    """8 world images, their captions as word lists, a vocabulary of all 40 captions and
    the first caption of each encoded."""
    ds = make_dataset(World(seed=0), "captioning", "train", size=8)
    items = [ds[i] for i in range(8)]
    images = torch.stack([item["image"] for item in items])  # (8, 3, 64, 64)
    captions = [[" ".join(tokenize(c)) for c in item["captions"]] for item in items]
    vocab = Vocabulary.build([c for caps in captions for c in caps])
    tokens, _ = vocab.encode_batch([caps[0] for caps in captions])
    return images, captions, vocab, tokens


def make(name: str, vocab_size: int, seed: int = 0, **kw):
    torch.manual_seed(seed)
    return MODELS[name](vocab_size, **kw)


def bleu4(hypotheses: list[str], references: list[str]) -> float:
    """Corpus BLEU-4 with one reference per hypothesis (Papineni et al., 2002)."""
    matches, totals = [0] * 4, [0] * 4
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        h, r = hyp.split(), ref.split()
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        for n in range(1, 5):
            hc = Counter(tuple(h[i : i + n]) for i in range(len(h) - n + 1))
            rc = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
            matches[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            totals[n - 1] += max(len(h) - n + 1, 0)
    if min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / 4
    brevity = min(0.0, 1.0 - ref_len / max(hyp_len, 1))
    return math.exp(log_precision + brevity)


def test_bleu4_reference_points():
    assert bleu4(["a red square on the left"], ["a red square on the left"]) == 1.0
    assert bleu4(["blue circle"], ["a red square on the left"]) == 0.0
    # 5 of 6 unigrams, 4/5 bigrams, 3/4 trigrams, 2/3 four-grams; lengths equal.
    got = bleu4(["a red square on the right"], ["a red square on the left"])
    assert got == pytest.approx((5 / 6 * 4 / 5 * 3 / 4 * 2 / 3) ** 0.25)


# --------------------------------------------------------------------------- forward


@pytest.mark.parametrize("name", list(MODELS))
def test_forward_shapes(name, world_data):
    images, _, vocab, tokens = world_data
    model = make(name, len(vocab))
    out = model(images, tokens)
    b, length = tokens.shape
    assert out.logits.shape == (b, length - 1, len(vocab))
    if name == "show-tell":
        assert out.alphas is None and model.alpha_c == 0.0
    else:
        assert out.alphas.shape == (b, length - 1, 8, 8)
        assert model.alpha_c == 1.0
    assert model.vocab_size == len(vocab)
    assert (model.bos_id, model.eos_id, model.pad_id) == (BOS_ID, EOS_ID, PAD_ID)


def test_attention_is_a_distribution_at_every_step(world_data):
    images, _, vocab, tokens = world_data
    alphas = make("show-attend-tell", len(vocab))(images, tokens).alphas
    assert (alphas >= 0).all()
    torch.testing.assert_close(alphas.sum(dim=(-2, -1)), torch.ones(alphas.shape[:2]))


def test_precomputed_attention_equals_the_attention_module(world_data):
    images, _, vocab, _ = world_data
    model = make("show-attend-tell", len(vocab)).eval()
    memory, (h, _) = model._start(images)
    h = h + torch.randn_like(h)  # any query
    context, alpha = model._attend(memory, h)
    feats = model.encoder.forward_features(images)
    ref_context, ref_alpha = model.attention(h, feats)
    torch.testing.assert_close(context, ref_context)
    torch.testing.assert_close(alpha.view(ref_alpha.shape), ref_alpha)
    # k rows per image broadcast against the image's features.
    h3 = torch.randn(3 * len(images), model.hidden_dim)
    context3, _ = model._attend(memory, h3)
    ref3, _ = model.attention(h3, feats.repeat_interleave(3, dim=0))
    torch.testing.assert_close(context3, ref3)


def test_a_word_query_looks_where_the_previous_word_says(world_data):
    """With word_query the query is W_h h + W_y E y: the module's attention with that sum
    as its projected query; the same state after another word looks elsewhere."""
    images, _, vocab, _ = world_data
    model = make("word-query", len(vocab)).eval()
    memory, (h, _) = model._start(images)
    red, blue = (
        model.embed(torch.full((len(images),), vocab.token_to_id(w))) for w in ("red", "blue")
    )
    context, alpha = model._attend(memory, h, red)
    feats = model.encoder.forward_features(images).flatten(2).transpose(1, 2)  # (B, N, C)
    query = model.attention.query_proj(h) + model.word_query(red)
    scores = model.attention.score_proj(
        torch.tanh(model.attention.feature_proj(feats) + query[:, None])
    ).squeeze(-1)
    torch.testing.assert_close(alpha, torch.softmax(scores, -1))
    torch.testing.assert_close(context, torch.bmm(alpha[:, None], feats)[:, 0])
    assert not torch.allclose(model._attend(memory, h, blue)[1], alpha)


@pytest.mark.parametrize("name", list(MODELS))
def test_tokens_after_eos_do_not_change_the_loss(name, world_data):
    images, _, vocab, tokens = world_data
    model = make(name, len(vocab)).eval()
    loss, parts = caption_loss(model(images, tokens), tokens, alpha_c=model.alpha_c)
    garbage = tokens.clone()
    after = target_mask(tokens).logical_not()  # (B, L-1): positions of tokens[:, 1:] past <eos>
    assert after.any()
    noise = torch.randint(
        4, len(vocab), garbage[:, 1:].shape, generator=torch.Generator().manual_seed(0)
    )
    garbage[:, 1:][after] = noise[after]
    assert not torch.equal(garbage, tokens)
    loss2, parts2 = caption_loss(model(images, garbage), garbage, alpha_c=model.alpha_c)
    torch.testing.assert_close(loss2, loss)
    torch.testing.assert_close(parts2["attention_reg"], parts["attention_reg"])


def test_target_mask_stops_after_the_first_eos():
    tokens = torch.tensor([[BOS_ID, 5, 6, EOS_ID, PAD_ID], [BOS_ID, 5, EOS_ID, 7, EOS_ID]])
    expected = torch.tensor([[True, True, True, False], [True, True, False, False]])
    assert torch.equal(target_mask(tokens), expected)


def test_cross_entropy_by_hand():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 9)
    tokens = torch.tensor([[BOS_ID, 5, 6, EOS_ID, PAD_ID], [BOS_ID, 7, EOS_ID, PAD_ID, PAD_ID]])
    logp = torch.log_softmax(logits, dim=-1)
    picked = [logp[0, 0, 5], logp[0, 1, 6], logp[0, 2, EOS_ID], logp[1, 0, 7], logp[1, 1, EOS_ID]]
    loss, parts = caption_loss(CaptionOutput(logits), tokens)
    torch.testing.assert_close(loss, -torch.stack(picked).mean())
    assert parts["attention_reg"] == 0


def test_doubly_stochastic_term_analytic():
    # 4 locations (2x2), captions of 4 targets: looking at location t at step t covers every
    # location exactly once, so the term is 0; uniform attention gives sum_t = 1 too.
    tokens = torch.tensor([[BOS_ID, 5, 6, 7, EOS_ID, PAD_ID, PAD_ID]])
    logits = torch.zeros(1, 6, 9)
    one_hot = torch.zeros(1, 6, 4)
    one_hot[0, torch.arange(4), torch.arange(4)] = 1.0
    one_hot[0, 4:] = torch.tensor([0.7, 0.1, 0.1, 0.1])  # pad steps: ignored
    _, parts = caption_loss(CaptionOutput(logits, one_hot.view(1, 6, 2, 2)), tokens, alpha_c=1.0)
    assert parts["attention_reg"] == 0
    uniform = torch.full((1, 6, 2, 2), 0.25)
    _, parts = caption_loss(CaptionOutput(logits, uniform), tokens, alpha_c=1.0)
    assert parts["attention_reg"] == 0
    # Always location 0: it gets 4 (error 3), the others 0 (error 1 each): (9 + 3) / 4 = 3.
    fixed = torch.zeros(1, 6, 4)
    fixed[0, :, 0] = 1.0
    loss, parts = caption_loss(CaptionOutput(logits, fixed.view(1, 6, 2, 2)), tokens, alpha_c=0.5)
    assert parts["attention_reg"] == pytest.approx(3.0)
    assert loss == pytest.approx(parts["xent"] + 0.5 * 3.0)


@pytest.mark.parametrize("name", list(MODELS))
def test_gradients_reach_encoder_and_decoder(name, world_data):
    images, _, vocab, tokens = world_data
    model = make(name, len(vocab), alpha_c=0.5) if name != "show-tell" else make(name, len(vocab))
    loss, _ = caption_loss(model(images, tokens), tokens, alpha_c=model.alpha_c)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    assert model.embed.weight.grad[PAD_ID].abs().sum() == 0  # padding_idx


# --------------------------------------------------------------------------- generation


def greedy_by_recompute(model, images, max_len):
    """Greedy decoding the slow way: the whole prefix through ``forward`` at every step."""
    model.eval()
    b = len(images)
    seq = torch.full((b, 1), BOS_ID)
    done = torch.zeros(b, dtype=torch.bool)
    with torch.no_grad():
        for _ in range(max_len):
            padded = torch.cat([seq, torch.full((b, 1), PAD_ID)], dim=1)
            logits = model(images, padded).logits[:, -1].clone()
            logits[:, [PAD_ID, BOS_ID]] = float("-inf")
            nxt = logits.argmax(dim=-1).masked_fill(done, PAD_ID)
            done |= nxt == EOS_ID
            seq = torch.cat([seq, nxt.masked_fill(nxt == EOS_ID, PAD_ID).unsqueeze(1)], dim=1)
            if done.all():
                break
    words = seq[:, 1:]
    return words, (words != PAD_ID).sum(dim=1)


@pytest.mark.parametrize("name", list(MODELS))
def test_beam_one_is_greedy_decoding(name, world_data, trained):
    images, _, vocab, _ = world_data
    for model in (make(name, len(vocab)).double(), copy.deepcopy(trained[name]).double()):
        gen = model.generate(images, beam_size=1, max_len=12)
        words, lengths = greedy_by_recompute(model, images, 12)
        assert torch.equal(gen.lengths, lengths)
        assert torch.equal(gen.tokens, words[:, : gen.tokens.shape[1]])
        if gen.alphas is not None:  # the maps of teacher forcing on the generated words
            tokens = torch.cat([torch.full((len(images), 1), BOS_ID), gen.tokens], dim=1)
            with torch.no_grad():
                alphas = model(images, tokens).alphas  # (B, T, 8, 8)
            keep = (gen.tokens != PAD_ID).view(*gen.tokens.shape, 1, 1)
            torch.testing.assert_close(gen.alphas, alphas * keep)


@pytest.fixture(scope="module")
def trained(world_data):
    """Each model trained on the 8 images (first caption each) until it recites them."""
    images, _, vocab, tokens = world_data
    models = {}
    for name, steps in (("show-tell", 100), ("show-attend-tell", 100), ("word-query", 100),
                        ("factored", 100)):  # fmt: skip
        model = (
            make(name, len(vocab), alpha_c=0.0) if name != "show-tell" else make(name, len(vocab))
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            loss, _ = caption_loss(model(images, tokens), tokens, alpha_c=model.alpha_c)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        models[name] = model.eval()
    return models


@pytest.mark.parametrize("name", list(MODELS))
def test_tiny_model_overfits_eight_images(name, world_data, trained):
    images, captions, vocab, _ = world_data
    gen = trained[name].generate(images, beam_size=3, max_len=20)
    hypotheses = vocab.decode_batch(gen.tokens, lengths=gen.lengths)
    references = [caps[0] for caps in captions]
    assert bleu4(hypotheses, references) > 0.9


def assert_same_generation(gen, ref):
    assert torch.equal(gen.tokens, ref.tokens)
    assert torch.equal(gen.lengths, ref.lengths)
    torch.testing.assert_close(gen.scores, ref.scores)
    if ref.alphas is None:
        assert gen.alphas is None
    else:
        torch.testing.assert_close(gen.alphas, ref.alphas)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("beam_size", [3, 5])
@pytest.mark.parametrize("state", ["random", "trained"])
def test_batched_beam_search_equals_the_per_image_loop(name, beam_size, state, world_data, trained):
    images, _, vocab, _ = world_data
    # float64: the two searches multiply different-sized matrices, whose float32 results may
    # differ in the last bit; near-ties must not decide the test.
    model = (make(name, len(vocab)) if state == "random" else copy.deepcopy(trained[name])).double()
    for length_penalty in (1.0, 0.0):
        kw = dict(beam_size=beam_size, max_len=12, length_penalty=length_penalty)
        gen = model.generate(images, **kw)
        ref = beam_search_loop(model, images, **kw)
        assert_same_generation(gen, ref)
        assert gen.tokens.shape[1] == int(gen.lengths.max())


def test_attention_in_chunks_of_images_gives_the_same_search(world_data, trained, monkeypatch):
    images, _, vocab, tokens = world_data
    model = copy.deepcopy(trained["show-attend-tell"]).double()
    whole = model.generate(images, beam_size=3, max_len=12)
    with torch.no_grad():
        out = model(images, tokens)
    monkeypatch.setattr(captioning, "_ATTENTION_CHUNK", 1)  # one image per chunk
    assert_same_generation(model.generate(images, beam_size=3, max_len=12), whole)
    with torch.no_grad():
        chunked = model(images, tokens)
    torch.testing.assert_close(chunked.alphas, out.alphas)
    torch.testing.assert_close(chunked.logits, out.logits)


@pytest.mark.parametrize("name", list(MODELS))
def test_generation_is_well_formed(name, world_data, trained):
    images, _, vocab, _ = world_data
    model = trained[name].train()
    gen = model.generate(images, beam_size=3, max_len=20)
    assert model.training  # the mode is restored
    assert not gen.scores.requires_grad and gen.scores.shape == (len(images),)
    positions = torch.arange(gen.tokens.shape[1])
    inside = positions < gen.lengths.unsqueeze(1)
    assert (gen.tokens[~inside] == PAD_ID).all()
    assert (gen.tokens[inside] > EOS_ID).all()  # words only: no <pad>, <bos> or <eos>
    if gen.alphas is not None:
        sums = gen.alphas.sum(dim=(-2, -1))
        torch.testing.assert_close(sums, inside.float())
    assert (gen.scores <= 0).all()


class TableModel(captioning._Captioner):
    """A decoder whose next-word distribution depends only on the last word (a table)."""

    def __init__(self, table: torch.Tensor) -> None:
        torch.nn.Module.__init__(self)
        self.vocab_size = table.shape[0]
        self.register_buffer("log_table", table.log())

    def _start(self, images):
        return (), (torch.zeros(len(images), 1, dtype=torch.float64),)

    def _step(self, memory, state, words):
        return self.log_table[words], None, state


def test_length_normalisation_changes_the_choice():
    # Words 4 ("a") and 5 ("b"). From <bos>: <eos> 0.45, a 0.55; after a: b 0.9, <eos> 0.1;
    # after b: <eos> 0.9. Beams of 2 end with "" (log .45) and "a b" (log .55 .9 .9):
    # raw, "" wins (-0.799 > -0.808); per token, "a b" does (-0.808 / 3 > -0.799 / 1).
    eps = 1e-9
    table = torch.full((6, 6), eps, dtype=torch.float64)
    table[BOS_ID, [EOS_ID, 4]] = torch.tensor([0.45, 0.55], dtype=torch.float64)
    table[4, [5, EOS_ID]] = torch.tensor([0.9, 0.1], dtype=torch.float64)
    table[5, [EOS_ID, 4]] = torch.tensor([0.9, 0.1], dtype=torch.float64)
    model = TableModel(table)
    images = torch.zeros(1, 3, 8, 8)
    for lp, words, score in ((0.0, [], math.log(0.45)), (1.0, [4, 5], math.log(0.55 * 0.81) / 3)):
        gen = model.generate(images, beam_size=2, max_len=5, length_penalty=lp)
        ref = beam_search_loop(model, images, beam_size=2, max_len=5, length_penalty=lp)
        assert gen.tokens.tolist() == [words] and ref.tokens.tolist() == [words]
        assert gen.scores.item() == pytest.approx(score, abs=1e-6)
        assert ref.scores.item() == pytest.approx(score, abs=1e-6)
    greedy = model.generate(images, beam_size=1, max_len=5)
    assert greedy.tokens.tolist() == [[4, 5]]  # a 0.55 > <eos> 0.45


def test_max_len_caps_the_captions(world_data):
    images, _, vocab, _ = world_data
    gen = make("show-attend-tell", len(vocab)).generate(images, beam_size=2, max_len=3)
    assert gen.tokens.shape[1] <= 3 and (gen.lengths <= 3).all()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(beam_size=0), "beam_size"),
        (dict(beam_size=2.0), "beam_size"),
        (dict(beam_size=10_000), "beam_size"),
        (dict(max_len=0), "max_len"),
        (dict(length_penalty=-1.0), "length_penalty"),
    ],
)
@pytest.mark.parametrize("search", ["generate", "loop"])
def test_bad_search_arguments(kwargs, match, search, world_data):
    images, _, vocab, _ = world_data
    model = make("show-tell", len(vocab))
    run = (
        model.generate if search == "generate" else lambda x, **kw: beam_search_loop(model, x, **kw)
    )
    with pytest.raises(ParameterError, match=match):
        run(images, **kwargs)


@pytest.mark.parametrize("name", list(MODELS))
def test_bad_images_and_tokens(name, world_data):
    images, _, vocab, tokens = world_data
    model = make(name, len(vocab))
    with pytest.raises(ParameterError, match="images"):
        model.generate(images[:, :1])
    with pytest.raises(ParameterError, match="images"):
        model.generate(images[0])
    with pytest.raises(ParameterError, match="images"):
        beam_search_loop(model, images[0])
    with pytest.raises(ParameterError, match="images"):
        model(images[0], tokens)
    bad_tokens = {
        "float": tokens.float(),
        "1-D": tokens[0],
        "L=1": tokens[:, :1],
        "out of range": tokens.masked_fill(tokens == EOS_ID, len(vocab)),
        "negative": tokens.masked_fill(tokens == EOS_ID, -1),
        "batch": tokens[:3],
    }
    for label, bad in bad_tokens.items():
        with pytest.raises(ParameterError, match="tokens"):
            model(images, bad)
        assert label


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(vocab_size=4), "vocab_size"),
        (dict(embed_dim=0), "embed_dim"),
        (dict(hidden_dim=-2), "hidden_dim"),
        (dict(dropout=1.0), "dropout"),
        (dict(encoder="nope"), "name"),
        (dict(encoder_kwargs=[("channels", 8)]), "encoder_kwargs"),
        (dict(attention_dim=0), "attention_dim"),
        (dict(gate="yes"), "gate"),
        (dict(alpha_c=-1.0), "alpha_c"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    kwargs = {"vocab_size": 20, **kwargs}
    with pytest.raises(ParameterError, match=match):
        ShowAttendTell(**kwargs)


def test_bad_loss_arguments(world_data):
    images, _, vocab, tokens = world_data
    out = make("show-tell", len(vocab))(images, tokens)
    with pytest.raises(ParameterError, match="alpha_c"):
        caption_loss(out, tokens, alpha_c=1.0)  # no attention maps to regularise
    with pytest.raises(ParameterError, match="tokens"):
        caption_loss(out, tokens[:, :-1])
    with pytest.raises(ParameterError, match="no target"):
        caption_loss(CaptionOutput(torch.zeros(1, 2, 9)), torch.tensor([[BOS_ID, 0, 0]]))
    with pytest.raises(ParameterError, match="output"):
        caption_loss(out.logits, tokens)


@pytest.mark.parametrize("cls", [ShowTell, ShowAttendTell])
def test_captions_per_image_equals_repeated_images(cls):
    # k captions per image with the encoder run once == the images repeated k times.
    torch.manual_seed(0)
    model = cls(12, encoder_kwargs={"channels": 8}, embed_dim=8, hidden_dim=12).double().eval()
    images = torch.rand(3, 3, 32, 32, dtype=torch.float64)
    tokens = torch.randint(4, 12, (6, 5))
    tokens[:, 0], tokens[:, -1] = BOS_ID, EOS_ID
    shared = model(images, tokens, captions_per_image=2)
    repeated = model(images.repeat_interleave(2, 0), tokens)
    torch.testing.assert_close(shared.logits, repeated.logits)
    if cls is ShowAttendTell:
        torch.testing.assert_close(shared.alphas, repeated.alphas)
    with pytest.raises(ParameterError, match="tokens"):
        model(images, tokens, captions_per_image=3)  # 6 rows for 3 images x 3 captions


def test_factored_words_take_their_value_from_the_attended_region_alone(world_data):
    """``word_attributes``: the output is a distribution; within a group (the colours, the
    shapes) the words' shares depend on the attended context only, whatever the previous
    word and state; the other words' logits are the plain model's, renormalised."""
    _, _, vocab, _ = world_data
    found = _attributes()
    assert {g for g, _, _ in found.values()} >= {"colour", "shape"}
    model = make("factored", len(vocab)).double().eval()
    torch.manual_seed(1)
    n = 5
    context = torch.randn(1, model.feature_dim, dtype=torch.float64).expand(n, -1)
    emb = torch.randn(n, model.embed_dim, dtype=torch.float64)  # five different languages
    h = torch.randn(n, model.hidden_dim, dtype=torch.float64)
    with torch.no_grad():
        logp = model._logits(emb, h, context)
        plain = model.out(torch.tanh(emb + model.out_h(h) + model.out_z(context)))
    torch.testing.assert_close(logp.logsumexp(-1), torch.zeros(n, dtype=torch.float64))
    for group in ("colour", "shape"):
        ids = [i for i, (g, _, _) in found.items() if g == group]
        within = logp[:, ids].log_softmax(-1)
        torch.testing.assert_close(within, within[:1].expand(n, -1))
        assert not torch.allclose(logp[:, ids].logsumexp(-1), logp[:1, ids].logsumexp(-1))
    others = [i for i in range(len(vocab)) if i not in found]
    torch.testing.assert_close(logp[:, others].log_softmax(-1), plain[:, others].log_softmax(-1))
    with pytest.raises(ParameterError, match="word ids outside"):
        make("factored", 5)
    mixed = {3: ("g", "colour", "red"), 4: ("g", "shape", "circle")}
    with pytest.raises(ParameterError, match="group 'g' names several attributes"):
        make("word-query", len(vocab), word_attributes=mixed)


def test_factored_words_leave_the_plain_model_unchanged(world_data):
    _, _, vocab, _ = world_data
    plain, empty = (
        make("word-query", len(vocab)),
        make("word-query", len(vocab), word_attributes={}),
    )
    assert plain.state_dict().keys() == empty.state_dict().keys()
