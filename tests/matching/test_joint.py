"""The joint embedding model: shapes, unit norm, padding invariance, batched = one by one."""

from __future__ import annotations

import pytest
import torch

from xmodal.errors import ParameterError
from xmodal.matching import GRUTextEncoder, JointEmbedding
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


def test_word_init_sets_the_embedding():
    weight = torch.randn(len(VOCAB), 6)
    weight[0] = 0
    enc = GRUTextEncoder(len(VOCAB), word_dim=6, hidden=4, embed_dim=5, word_init=weight)
    assert torch.equal(enc.embed.weight.detach(), weight)
    with pytest.raises(ParameterError, match=rf"word_init must have shape \({len(VOCAB)}, 7\)"):
        GRUTextEncoder(len(VOCAB), word_dim=7, word_init=weight)


def test_bad_input_is_a_parameter_error():
    model = _model()
    tokens, lengths = VOCAB.encode_batch(CAPTIONS)
    with pytest.raises(ParameterError, match="tokens must be an integer tensor"):
        model.embed_texts(tokens.float(), lengths)
    with pytest.raises(ParameterError, match=r"lengths must be an integer tensor of shape \(4,\)"):
        model.embed_texts(tokens, lengths[:2])
    with pytest.raises(ParameterError, match=r"lengths must be in \[1, "):
        model.embed_texts(tokens, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ParameterError, match="pooling must be one of"):
        GRUTextEncoder(10, pooling="max")
    with pytest.raises(ParameterError, match="images must have shape"):
        model.embed_images(torch.rand(2, 1, 32, 32))
