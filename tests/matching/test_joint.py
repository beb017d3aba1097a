"""The joint embedding model: shapes, unit norm, padding invariance, batched = one by one,
for the GRU and the transformer text encoders (the encoders alone:
tests/text/test_encoders.py)."""

from __future__ import annotations

import pytest
import torch

from xmodal.errors import ParameterError
from xmodal.matching import JointEmbedding
from xmodal.matching.joint import MapTransformer
from xmodal.text.encoders import GRUTextEncoder, TransformerTextEncoder
from xmodal.text.transformer import Block
from xmodal.text.vocab import Vocabulary

CAPTIONS = ["a red circle", "two big blue squares on the left of a star", "a star", "circle"]
VOCAB = Vocabulary.build(CAPTIONS)


def _model(**kw) -> JointEmbedding:
    torch.manual_seed(0)
    kw.setdefault("encoder_kwargs", {"channels": 8})
    return JointEmbedding(len(VOCAB), embed_dim=12, word_dim=6, hidden=10, **kw).eval()


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_shapes_unit_norm_padding_and_batching(bidirectional, pooling):
    model = _model(bidirectional=bidirectional, pooling=pooling)
    images = torch.rand(3, 3, 32, 32)
    tokens, lengths = VOCAB.encode_batch(CAPTIONS)
    with torch.no_grad():
        img, txt = model(images, tokens, lengths)
        assert img.shape == (3, 12) and txt.shape == (4, 12)
        for e in (img, txt):
            assert torch.allclose(e.norm(dim=1), torch.ones(len(e)), atol=1e-6)
        # Extra padding changes nothing.
        padded = torch.cat([tokens, torch.zeros(4, 7, dtype=tokens.dtype)], dim=1)
        assert torch.allclose(model.embed_texts(padded, lengths), txt, atol=1e-6)
        # Batched equals one by one (each caption alone, unpadded).
        for k in range(4):
            alone = model.embed_texts(tokens[k : k + 1, : lengths[k]], lengths[k : k + 1])
            assert torch.allclose(alone[0], txt[k], atol=1e-6)
            assert torch.allclose(model.embed_images(images[k % 3 : k % 3 + 1])[0],
                                  img[k % 3], atol=1e-5)  # fmt: skip


def test_bad_input_is_a_parameter_error():
    model = _model()
    tokens, lengths = VOCAB.encode_batch(CAPTIONS)
    with pytest.raises(ParameterError, match="tokens must be an integer tensor"):
        model.embed_texts(tokens.float(), lengths)
    with pytest.raises(ParameterError, match=r"lengths must be an integer tensor of shape \(4,\)"):
        model.embed_texts(tokens, lengths[:2])
    with pytest.raises(ParameterError, match=r"lengths must be in \[1, "):
        model.embed_texts(tokens, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ParameterError, match="images must have shape"):
        model.embed_images(torch.rand(2, 1, 32, 32))


def test_gru_state_dict_keys_are_unchanged():
    # Saved GRU runs load by these names; the transformer option must not move them.
    keys = {k for k in _model().state_dict() if k.startswith("text.")}
    gru = {f"text.gru.{w}_{kind}_l0{rev}" for w in ("weight", "bias")
           for kind in ("ih", "hh") for rev in ("", "_reverse")}  # fmt: skip
    assert keys == {"text.embed.weight", "text.proj.weight", "text.proj.bias"} | gru
    assert isinstance(_model().text, GRUTextEncoder)


# ----------------------------------------------------------------------------- transformer


def _transformer(**kw) -> JointEmbedding:
    kw.setdefault("text_heads", 2)
    kw.setdefault("text_dropout", 0.0)
    return _model(text_encoder="transformer", **kw)


@pytest.mark.parametrize("pooling", ["mean", "first"])
@pytest.mark.parametrize("text_width", [None, 8])
def test_transformer_shapes_unit_norm_padding_and_batching(pooling, text_width):
    model = _transformer(pooling=pooling, text_width=text_width, text_layers=2)
    assert isinstance(model.text, TransformerTextEncoder)
    assert all(isinstance(b, Block) for b in model.text.blocks) and len(model.text.blocks) == 2
    tokens, lengths = VOCAB.encode_batch(CAPTIONS)
    with torch.no_grad():
        txt = model.embed_texts(tokens, lengths)
        assert txt.shape == (4, 12)
        assert torch.allclose(txt.norm(dim=1), torch.ones(4), atol=1e-6)
        # The same captions padded to other lengths give the same vectors.
        for extra in (1, 5, 20):
            padded = torch.cat([tokens, torch.zeros(4, extra, dtype=tokens.dtype)], dim=1)
            assert torch.allclose(model.embed_texts(padded, lengths), txt, atol=1e-5)
        # Batched (padded to the longest) equals one by one (unpadded).
        for k in range(4):
            alone = model.embed_texts(tokens[k : k + 1, : lengths[k]], lengths[k : k + 1])
            assert torch.allclose(alone[0], txt[k], atol=1e-5)
        # Not a bag of words: the position embedding makes order matter.
        k = int(lengths.argmax())
        flipped = tokens[k : k + 1, : lengths[k]].flip(1)
        assert not torch.allclose(model.embed_texts(flipped, lengths[k : k + 1])[0], txt[k],
                                  atol=1e-3)  # fmt: skip


def test_transformer_bad_options_are_parameter_errors():
    with pytest.raises(ParameterError, match=r"text_encoder must be one of 'gru', 'transformer'"):
        _model(text_encoder="lstm")
    with pytest.raises(ParameterError, match="text_width must be divisible by text_heads.*"
                                             "text_width=6, text_heads=4"):  # fmt: skip
        _model(text_encoder="transformer")  # word_dim=6, 4 heads by default
    with pytest.raises(ParameterError, match="text_layers must be an integer >= 1. Found: 0"):
        _transformer(text_layers=0)
    with pytest.raises(ParameterError, match="text_heads must be an integer >= 1"):
        _transformer(text_heads=2.0)
    with pytest.raises(ParameterError, match="text_width must be an integer >= 1"):
        _transformer(text_width=-8)
    with pytest.raises(ParameterError, match="text_max_len must be an integer >= 1"):
        _transformer(text_max_len=0)
    with pytest.raises(ParameterError, match=r"text_dropout must be in \[0, 1\). Found: 1.0"):
        _transformer(text_dropout=1.0)
    with pytest.raises(ParameterError, match="pooling must be one of 'mean', 'first'"):
        _transformer(pooling="last")
    # A caption longer than the position table; padding past it alone is fine.
    model = _transformer(text_max_len=5)
    tokens, lengths = VOCAB.encode_batch(CAPTIONS)
    with pytest.raises(ParameterError, match=r"a caption of \d+ tokens is longer than max_len=5"):
        model.embed_texts(tokens, lengths)
    short = lengths <= 5
    assert model.embed_texts(tokens[short], lengths[short]).shape == (int(short.sum()), 12)
    with pytest.raises(ParameterError, match="tokens must be an integer tensor"):
        model.embed_texts(tokens.float(), lengths)


def test_transformer_word_init_reaches_the_text_encoder():
    weight = torch.randn(len(VOCAB), 6)
    weight[0] = 0
    model = _transformer(word_init=weight)
    assert torch.equal(model.text.embed.weight.detach(), weight)


def test_attention_pooling_reads_the_map_through_clips_pool():
    """``image_pooling="attention"``: the image vector is the pool's output on the
    encoder's map (an image of ``image_size`` → its map's grid), normalised; a mean-pooled
    model of the same seed gives another vector."""
    model = _model(image_pooling="attention", image_heads=2, image_size=32)
    images = torch.rand(3, 3, 32, 32)
    assert model.pool.grid == (4, 4)  # small-cnn: stride 8
    with torch.no_grad():
        img = model.embed_images(images)
        expected = model.pool(model.encoder.forward_features(images))
    assert torch.allclose(img, torch.nn.functional.normalize(expected, dim=-1), atol=1e-6)
    assert not hasattr(model, "img_proj")
    with torch.no_grad():  # another image size: the position embedding is resized
        assert model.embed_images(torch.rand(1, 3, 64, 64)).shape == (1, 12)
    with pytest.raises(ParameterError, match="needs image_size"):
        _model(image_pooling="attention")
    with pytest.raises(ParameterError, match="needs image_size"):
        _model(image_layers=1)
    with pytest.raises(ParameterError, match="image_layers must be an integer >= 0"):
        _model(image_layers=-1, image_size=32)
    with pytest.raises(ParameterError, match="image_pooling"):
        _model(image_pooling="max")


def test_flatten_pooling_is_vggs_head_and_keeps_where_things_are():
    """``image_pooling="flatten"``: the map average-pooled to its grid at ``image_size``,
    flattened and one Linear (torchvision's VGG head); a feature moved to another place
    gives another vector, where the mean cannot tell."""
    model = _model(image_pooling="flatten", image_size=32)
    images = torch.rand(3, 3, 32, 32)
    linear = model.pool[-1]
    with torch.no_grad():
        img = model.embed_images(images)
        flat = model.encoder.forward_features(images).flatten(1)  # (3, C * 4 * 4)
        want = torch.nn.functional.normalize(linear(flat), dim=-1)
        assert torch.allclose(img, want, atol=1e-6)
        assert model.embed_images(torch.rand(1, 3, 64, 64)).shape == (1, 12)  # pooled to 4x4
        one = torch.zeros(1, linear.in_features // 16, 4, 4)
        one[0, 0, 0, 0] = 1.0
        moved = one.roll(2, dims=-1)
        assert torch.equal(one.mean((2, 3)), moved.mean((2, 3)))
        assert not torch.allclose(model.pool(one), model.pool(moved))
    with pytest.raises(ParameterError, match="needs image_size"):
        _model(image_pooling="flatten")


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_image_layers_run_on_the_map_before_the_pooling(pooling):
    model = _model(image_pooling=pooling, image_heads=2, image_layers=1, image_size=32)
    images = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        img = model.embed_images(images)
        mapped = model.map_blocks(model.encoder.forward_features(images))
        vec = model.pool(mapped) if pooling == "attention" else model.img_proj(mapped.mean((2, 3)))
    assert torch.allclose(img, torch.nn.functional.normalize(vec, dim=-1), atol=1e-6)


def test_map_transformer_is_equivariant_to_moving_locations_but_for_its_positions():
    """Without its position embedding, self-attention over locations commutes with any
    permutation of them; with it, a moved feature gives another map."""
    torch.manual_seed(0)
    blocks = MapTransformer((3, 3), 8, 2, layers=2).eval()
    x = torch.randn(2, 8, 3, 3)
    perm = torch.randperm(9)
    moved = x.flatten(2)[..., perm].view_as(x)
    with torch.no_grad():
        assert blocks(x).shape == x.shape
        with_positions = blocks(moved).flatten(2)
        assert not torch.allclose(with_positions, blocks(x).flatten(2)[..., perm], atol=1e-4)
        blocks.positional_embedding.zero_()
        torch.testing.assert_close(blocks(moved).flatten(2), blocks(x).flatten(2)[..., perm])
    with pytest.raises(ParameterError, match=r"\(B, 8, H', W'\). Found: \(1, 4, 3, 3\)"):
        blocks(torch.zeros(1, 4, 3, 3))
