"""The transformer attention figure: one panel per head drawing exactly the weights of the
chosen layer, tokens on both axes (whitespace made visible), every accepted input form,
bad input refused by name, and the figure saves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from xmodal.errors import ParameterError
from xmodal.text.transformer import GPT, TransformerConfig
from xmodal.viz.transformer_attention import plot_attention_map, token_label

TOKENS = list("a red\ncircle")  # 12 characters, with a space and a line end


@pytest.fixture(scope="module")
def maps():
    """Attention maps of a small GPT over TOKENS: 3 layers of (1, 2, 12, 12)."""
    torch.manual_seed(0)
    model = GPT(TransformerConfig(vocab_size=20, block_size=16, n_layer=3, n_head=2, n_embd=8))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))  # not the near-uniform maps of the init
    idx = torch.tensor([[ord(c) % 20 for c in TOKENS]])
    return model.attention_maps(idx)


def _ticks(ax, axis: str) -> list[str]:
    labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in labels]


def test_every_head_of_a_layer_draws_its_weights(maps):
    fig = plot_attention_map(maps, TOKENS, layer=-1, head=None, title="over a sentence")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert fig.get_suptitle() == "over a sentence"
    visible = [token_label(t) for t in TOKENS]
    assert visible[1] == "\u2423" and visible[5] == "\u21b5"  # space and line end shown
    for h, ax in enumerate(fig.axes):
        assert ax.get_title() == f"layer 2, head {h}"  # -1 is the last of 3 layers
        (image,) = ax.images
        weights = maps[2][0, h].numpy()
        np.testing.assert_array_equal(np.asarray(image.get_array()), weights)
        assert image.get_clim() == pytest.approx((0.0, weights.max()))
        assert _ticks(ax, "x") == visible and _ticks(ax, "y") == visible
        assert ax.get_xlabel() == "key (attended to)" and ax.get_ylabel() == "query"


def test_one_head_and_every_input_form(maps):
    want = maps[1][0, 1].numpy()
    stacked = torch.stack([m[0] for m in maps])  # (L, H, T, T)
    forms = [maps, [m[0] for m in maps], stacked, stacked.numpy()]
    for form in forms:
        fig = plot_attention_map(form, TOKENS, layer=1, head=1)
        (ax,) = fig.axes
        assert ax.get_title() == "layer 1, head 1"
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), want)
    one_layer = plot_attention_map(maps[0][0], TOKENS, layer=0, head=0)  # (H, T, T)
    np.testing.assert_array_equal(np.asarray(one_layer.axes[0].images[0].get_array()),
                                  maps[0][0, 0].numpy())  # fmt: skip


def test_long_sentences_label_every_kth_token():
    T = 130
    weights = torch.full((1, T, T), 1.0 / T)
    fig = plot_attention_map(weights, ["x"] * T, layer=0, head=0)
    ticks = fig.axes[0].get_xticks()
    assert len(ticks) == 44 and list(ticks[:3]) == [0, 3, 6]  # every 3rd: at most 64 labels


def test_the_figure_saves(maps, tmp_path):
    path = tmp_path / "attention.png"
    plot_attention_map(maps, TOKENS, head=None).savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"layer": 3}, "layer must be an int in [-3, 3). Found: 3"),
        ({"layer": -4}, "layer must be an int in [-3, 3). Found: -4"),
        ({"head": 2}, "head must be None or an int in [0, 2). Found: 2"),
        ({"head": -1}, "head must be None or an int in [0, 2). Found: -1"),
        ({"tokens": TOKENS[:-1]}, "tokens must hold one string per position (12). Found 11"),
        ({"tokens": "a red circle"}, "tokens must be a list of strings"),
        ({"tokens": [1] * 12}, "tokens[0] must be a string. Found: 1"),
        ({"ncols": 0}, "ncols must be an integer >= 1"),
    ],
)
def test_bad_choices_are_refused_by_name(maps, kw, message):
    args = {"tokens": TOKENS, **kw}
    tokens = args.pop("tokens")
    with pytest.raises(ParameterError) as err:
        plot_attention_map(maps, tokens, **args)
    assert message in str(err.value)


def test_bad_weights_are_refused():
    good = torch.full((2, 4, 4), 0.25)
    bad = {
        "must lie in [0, 1]": good * 5,
        "non-finite": good.masked_fill(torch.eye(4, dtype=torch.bool), float("nan")),
        "must be square": torch.full((2, 4, 3), 0.25),
    }
    for message, weights in bad.items():
        with pytest.raises(ParameterError, match=message.replace("[", r"\[").replace("]", r"\]")):
            plot_attention_map([weights], list("abcd"))
    with pytest.raises(ParameterError, match="attentions must be a non-empty list"):
        plot_attention_map([], list("abcd"))
    with pytest.raises(ParameterError, match=r"attentions\[0\] must be \(H, T, T\)"):
        plot_attention_map([torch.full((2, 2, 4, 4), 0.25)], list("abcd"))
    with pytest.raises(ParameterError, match="Found shape \\(4, 4\\)"):
        plot_attention_map(torch.full((4, 4), 0.25), list("abcd"))
