"""im2recipe's protocol: retrieval metrics averaged over seeded random galleries of each
size, sizes over the test set skipped, the directions named by the caller."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xmodal.errors import ParameterError
from xmodal.metrics.galleries import drawn_galleries, size_key
from xmodal.metrics.retrieval import retrieval_metrics


def _pairs(n: int, noise: float = 1.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    img = F.normalize(torch.randn(n, 8, generator=g), dim=-1)
    txt = F.normalize(img + noise * torch.randn(n, 8, generator=g), dim=-1)
    return img, txt


def test_each_size_is_the_mean_over_draws_of_seeded_galleries():
    img, txt = _pairs(30)
    got = drawn_galleries(img, txt, sizes=(10, 20, 1000), draws=4, seed=3)
    assert set(got) == {"10", "20"}  # 1000 > 30 pairs: skipped
    for size in (10, 20):
        rng = np.random.default_rng([3, size])
        draws = []
        for _ in range(4):
            idx = torch.from_numpy(np.sort(rng.choice(30, size=size, replace=False)))
            draws.append(retrieval_metrics(img[idx] @ txt[idx].T, torch.arange(size)))
        want = {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}
        assert got[str(size)] == pytest.approx(want)
    # Another seed draws other galleries.
    assert drawn_galleries(img, txt, sizes=(10,), draws=4, seed=4) != {"10": got["10"]}


def test_a_set_under_every_size_is_scored_whole_and_directions_are_renamed():
    img, txt = _pairs(12)
    got = drawn_galleries(img, txt, sizes=(1000, 10000), draws=2, seed=0,
                          prefixes=("im2recipe", "recipe2im"))  # fmt: skip
    assert set(got) == {"12"}
    whole = retrieval_metrics(img @ txt.T, torch.arange(12))  # every draw is the whole set
    assert got["12"] == pytest.approx(
        {k.replace("i2t_", "im2recipe_").replace("t2i_", "recipe2im_"): v for k, v in whole.items()}
    )
    assert "rsum" in got["12"]


def test_perfect_pairs_rank_first():
    img, _ = _pairs(20)
    got = drawn_galleries(img, img, sizes=(10,), draws=3, seed=0)["10"]
    assert got["i2t_R@1"] == got["t2i_R@1"] == 100.0 and got["i2t_medr"] == 1.0


def test_size_keys_and_bad_input():
    assert [size_key(s) for s in (1000, 10000, 10, 1500)] == ["1k", "10k", "10", "1500"]
    img, txt = _pairs(10)
    with pytest.raises(ParameterError, match="same number of pairs. Found 10 and 9"):
        drawn_galleries(img, txt[:9], sizes=(5,), draws=1, seed=0)
    with pytest.raises(ParameterError, match="draws"):
        drawn_galleries(img, txt, sizes=(5,), draws=0, seed=0)
