"""Text encoders behind one interface: for every registered encoder, batched equals one by
one, ``forward == forward_head(forward_features)``, padding never changes a sentence,
``feature_info`` tells the feature width; the recurrent heads against torch's own final
states; the registry's errors; and the encoders' own options (moved here from the joint
embedding's tests)."""

from __future__ import annotations

import pytest
import torch

from xmodal.errors import ParameterError
from xmodal.nn.losses import info_nce_loss
from xmodal.text.encoders import (
    FeatureInfo,
    GRUTextEncoder,
    QuestionEncoder,
    TextEncoder,
    TransformerTextEncoder,
    create_text_encoder,
    list_text_encoders,
    register_text_encoder,
)
from xmodal.text.vocab import Vocabulary

CAPTIONS = ["a red circle", "two big blue squares on the left of a star", "a star", "circle"]
VOCAB = Vocabulary.build(CAPTIONS)

# Tiny arguments for every registered encoder (a new registration must add its own).
TINY = {
    "gru": dict(word_dim=6, hidden=5, embed_dim=7),
    "transformer": dict(word_dim=8, n_head=2, dropout=0.0, embed_dim=7),
    "lstm-question": dict(word_dim=6, hidden=5, dim=7, layers=2, dropout=0.0),
    "gru-question": dict(word_dim=6, hidden=5, dim=7, layers=2, dropout=0.0),
    "transformer-question": dict(word_dim=8, heads=2, dim=7, dropout=0.0),
}
# Variants of the pooling and shape options, each run through the same invariants.
VARIANTS = [
    ("gru", {}),
    ("gru", {"pooling": "last"}),
    ("gru", {"bidirectional": False, "pooling": "last"}),
    ("gru", {"bidirectional": False}),
    ("transformer", {}),
    ("transformer", {"pooling": "first"}),
    ("transformer", {"width": 12, "n_layer": 1}),
    ("lstm-question", {}),
    ("lstm-question", {"layers": 1}),
    ("gru-question", {}),
    ("transformer-question", {}),
]


def _encoder(name: str, **kw) -> TextEncoder:
    torch.manual_seed(0)
    return create_text_encoder(name, vocab_size=len(VOCAB), **{**TINY[name], **kw}).eval()


def _batch(extra: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    tokens, lengths = VOCAB.encode_batch(CAPTIONS)
    if extra:
        tokens = torch.cat([tokens, torch.zeros(len(tokens), extra, dtype=tokens.dtype)], dim=1)
    return tokens, lengths


def test_every_registered_encoder_is_covered():
    assert list_text_encoders() == sorted(TINY)
    assert {name for name, _ in VARIANTS} == set(TINY)


@pytest.mark.parametrize(("name", "kw"), VARIANTS)
@torch.no_grad()
def test_forward_is_head_of_features_and_feature_info_gives_the_width(name, kw):
    enc = _encoder(name, **kw)
    assert isinstance(enc, TextEncoder)
    tokens, lengths = _batch(extra=3)
    features = enc.forward_features(tokens, lengths)
    assert features.shape == (4, tokens.shape[1], enc.feature_info.channels)
    assert enc.feature_info.stride == 1
    # Zero past each sentence.
    pad = torch.arange(tokens.shape[1])[None, :] >= lengths[:, None]
    assert bool((features[pad] == 0).all())
    out = enc(tokens, lengths)
    assert out.shape == (4, enc.out_dim) == (4, 7)
    assert torch.equal(out, enc.forward_head(features, lengths))


@pytest.mark.parametrize(("name", "kw"), VARIANTS)
@torch.no_grad()
def test_batched_equals_one_by_one(name, kw):
    enc = _encoder(name, **kw)
    tokens, lengths = _batch()
    features = enc.forward_features(tokens, lengths)
    out = enc(tokens, lengths)
    for k in range(len(tokens)):
        n = int(lengths[k])
        alone = tokens[k : k + 1, :n]  # unpadded; lengths=None is "all of it"
        torch.testing.assert_close(enc(alone)[0], out[k], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(enc.forward_features(alone)[0], features[k, :n],
                                   atol=1e-5, rtol=1e-5)  # fmt: skip


@pytest.mark.parametrize(("name", "kw"), VARIANTS)
@torch.no_grad()
def test_tokens_past_the_lengths_never_change_the_sentence(name, kw):
    # Padding positions hold real word ids, and more columns are added: only the lengths
    # (packing, the key padding mask, the pooling) keep them out.
    enc = _encoder(name, **kw)
    tokens, lengths = _batch()
    out = enc(tokens, lengths)
    g = torch.Generator().manual_seed(1)
    for extra in (0, 2, 9):
        longer, _ = _batch(extra)
        pad = torch.arange(longer.shape[1])[None, :] >= lengths[:, None]
        junk = torch.randint(1, len(VOCAB), longer.shape, generator=g)
        changed = torch.where(pad, junk, longer)
        assert not torch.equal(changed, longer)
        torch.testing.assert_close(enc(changed, lengths), out, atol=1e-5, rtol=1e-5)
    # A word inside a sentence does change it (the check above is not vacuous).
    k = int(lengths.argmin())
    inside = tokens.clone()
    inside[k, 0] = tokens[k, 0] % (len(VOCAB) - 1) + 1
    assert not torch.allclose(enc(inside, lengths)[k], out[k], atol=1e-4)


def test_gru_heads_are_torchs_final_hidden_states():
    # "last" is the GRU's h_n (each direction's), "mean" the mean of its valid outputs.
    tokens, lengths = _batch(extra=2)
    for bidirectional in (True, False):
        for pooling in ("last", "mean"):
            enc = _encoder("gru", bidirectional=bidirectional, pooling=pooling)
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                enc.embed(tokens), lengths, batch_first=True, enforce_sorted=False
            )
            out, h = enc.gru(packed)
            if pooling == "last":
                feat = torch.cat(list(h), dim=-1)
            else:
                out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
                feat = out.sum(dim=1) / lengths[:, None]
            expected = torch.nn.functional.normalize(enc.proj(feat), dim=-1)
            assert torch.equal(enc(tokens, lengths), expected)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_question_head_is_the_top_layers_final_state(kind):
    enc = _encoder(f"{kind}-question")
    assert isinstance(enc, QuestionEncoder) and enc.kind == kind
    tokens, lengths = _batch(extra=2)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        enc.embed(tokens), lengths, batch_first=True, enforce_sorted=False
    )
    _, h = enc.rnn(packed)
    h = h[0] if kind == "lstm" else h  # (layers, Q, H)
    assert torch.equal(enc(tokens, lengths), torch.tanh(enc.proj(h[-1])))


def test_transformer_question_is_the_rescaled_sentence_vector():
    enc = _encoder("transformer-question")
    tokens, lengths = _batch()
    expected = torch.tanh(enc.proj(enc.text(tokens, lengths) * 7**0.5))
    torch.testing.assert_close(enc(tokens, lengths), expected, atol=0, rtol=0)
    assert enc.feature_info == enc.text.feature_info == FeatureInfo(channels=8)


def test_state_dict_keys_are_those_of_saved_runs():
    # Saved VQA runs load the question encoder by these names.
    keys = set(_encoder("lstm-question", layers=1).state_dict())
    rnn = {f"rnn.{w}_{kind}_l0" for w in ("weight", "bias") for kind in ("ih", "hh")}
    assert keys == {"embed.weight", "proj.weight", "proj.bias"} | rnn
    keys = set(_encoder("transformer-question").state_dict())
    assert {"text.embed.weight", "text.pos.weight", "proj.weight"} <= keys
    assert all(k.startswith(("text.", "proj.")) for k in keys)


# ----------------------------------------------------------------------------- registry


def test_registry_makes_the_documented_classes():
    assert type(_encoder("gru")) is GRUTextEncoder
    assert type(_encoder("transformer")) is TransformerTextEncoder
    assert [_encoder(f"{k}-question").kind for k in ("lstm", "gru", "transformer")] == [
        "lstm",
        "gru",
        "transformer",
    ]


def test_unknown_name_lists_the_names():
    with pytest.raises(ParameterError, match=r"name must be one of 'gru', 'gru-question', "
                                             r"'lstm-question', .*Found: 'bert'"):  # fmt: skip
        create_text_encoder("bert", vocab_size=10)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("gru", {"hidden": -3}, "hidden must be an integer >= 1. Found: -3"),
        ("gru", {"pooling": "max"}, "pooling must be one of 'mean', 'last'. Found: 'max'"),
        ("transformer", {"n_head": 3}, "width must be divisible by n_head.*width=8, n_head=3"),
        ("transformer", {"dropout": 1.5}, r"dropout must be in \[0, 1\). Found: 1.5"),
        ("lstm-question", {"layers": 0}, "question_layers must be an integer >= 1. Found: 0"),
        ("gru", {"hiden": 4}, "text encoder 'gru' takes the arguments .*Found: hiden=4"),
        ("lstm-question", {"kind": "gru"}, "takes the arguments .*Found: kind='gru'"),
    ],
)
def test_bad_arguments_are_parameter_errors_echoing_the_value(name, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        create_text_encoder(name, vocab_size=10, **{**TINY[name], **kwargs})


def test_missing_vocab_size_and_duplicate_names_are_parameter_errors():
    with pytest.raises(ParameterError, match="needs the argument.*vocab_size"):
        create_text_encoder("gru", hidden=4)
    with pytest.raises(ParameterError, match="already registered. Found: 'gru'"):
        register_text_encoder("gru")(GRUTextEncoder)


def test_bad_inputs_are_parameter_errors():
    enc = _encoder("gru")
    tokens, lengths = _batch()
    with pytest.raises(ParameterError, match="tokens must be an integer tensor"):
        enc(tokens.float(), lengths)
    with pytest.raises(ParameterError, match=r"lengths must be in \[1, "):
        enc.forward_features(tokens, torch.zeros(4, dtype=torch.long))
    features = enc.forward_features(tokens, lengths)
    with pytest.raises(ParameterError, match=r"features must be a float tensor \(B, L, 10\)"):
        enc.forward_head(features[..., :4], lengths)
    with pytest.raises(ParameterError, match=r"lengths must be an integer tensor of shape \(4,\)"):
        enc.forward_head(features, lengths[:2])
    with pytest.raises(ParameterError, match=rf"lengths must be in \[1, {tokens.shape[1]}\]"):
        enc.forward_head(features, lengths + tokens.shape[1])


# ----------------------------------------------------------------------------- options
# (moved from tests/matching/test_joint.py)


def test_word_init_sets_the_embedding():
    weight = torch.randn(len(VOCAB), 6)
    weight[0] = 0
    enc = GRUTextEncoder(len(VOCAB), word_dim=6, hidden=4, embed_dim=5, word_init=weight)
    assert torch.equal(enc.embed.weight.detach(), weight)
    with pytest.raises(ParameterError, match=rf"word_init must have shape \({len(VOCAB)}, 7\)"):
        GRUTextEncoder(len(VOCAB), word_dim=7, word_init=weight)
    with pytest.raises(ParameterError, match="pooling must be one of"):
        GRUTextEncoder(10, pooling="max")


def test_transformer_word_init_sets_the_embedding():
    weight = torch.randn(len(VOCAB), 6)
    weight[0] = 0
    enc = TransformerTextEncoder(len(VOCAB), word_dim=6, width=8, n_head=2, embed_dim=5,
                                 word_init=weight)  # fmt: skip
    assert torch.equal(enc.embed.weight.detach(), weight)
    with pytest.raises(ParameterError, match=rf"word_init must have shape \({len(VOCAB)}, 8\)"):
        TransformerTextEncoder(len(VOCAB), word_dim=8, n_head=2, word_init=weight)


def test_transformer_bad_options_are_parameter_errors():
    with pytest.raises(ParameterError, match="width must be divisible by n_head"):
        TransformerTextEncoder(10, word_dim=6, n_head=4)
    with pytest.raises(ParameterError, match=r"dropout must be in \[0, 1\)"):
        TransformerTextEncoder(10, word_dim=8, n_head=2, dropout=-0.1)
    enc = TransformerTextEncoder(len(VOCAB), word_dim=8, n_head=2, max_len=5)
    tokens, lengths = _batch()
    with pytest.raises(ParameterError, match=r"a caption of \d+ tokens is longer than max_len=5"):
        enc(tokens, lengths)


def test_transformer_padding_keys_are_masked():
    # Padding positions hold real word ids here: only the key padding mask keeps them out.
    torch.manual_seed(0)
    enc = TransformerTextEncoder(len(VOCAB), word_dim=6, n_head=2, dropout=0.0,
                                 embed_dim=12).eval()  # fmt: skip
    tokens, lengths = VOCAB.encode_batch(CAPTIONS)
    pad = torch.arange(tokens.shape[1])[None, :] >= lengths[:, None]
    assert pad.any()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        txt = enc(tokens, lengths)
        for _ in range(3):
            junk = torch.randint(1, len(VOCAB), tokens.shape, generator=g)
            changed = torch.where(pad, junk, tokens)
            assert not torch.equal(changed, tokens)
            assert torch.allclose(enc(changed, lengths), txt, atol=1e-5)
        # The same ids inside the caption do change it (the check above is not vacuous).
        k = int(lengths.argmin())
        inside = tokens.clone()
        inside[k, 1] = junk[k, 1] if junk[k, 1] != tokens[k, 1] else (tokens[k, 1] % 5) + 1
        assert not torch.allclose(enc(inside, lengths)[k], txt[k], atol=1e-4)


def test_transformer_info_nce_training_reduces_the_loss():
    # The text side learns to match fixed image vectors.
    torch.manual_seed(0)
    enc = TransformerTextEncoder(len(VOCAB), word_dim=8, n_layer=1, n_head=2, dropout=0.0,
                                 embed_dim=12)  # fmt: skip
    img = torch.nn.functional.normalize(torch.randn(4, 12), dim=-1)
    tokens, lengths = VOCAB.encode_batch(CAPTIONS)
    opt = torch.optim.Adam(enc.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = info_nce_loss(img, enc(tokens, lengths), 10.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0)
               for p in enc.blocks.parameters())  # fmt: skip
