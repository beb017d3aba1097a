"""The pointing game over attention hops: a hop hits when its peak lies on its look's
objects; maps whose look has no object are left out; the scores are percentages."""

from __future__ import annotations

import pytest
import torch

from xmodal.metrics.localization import look_targets, pointing_hits, pointing_scores


def test_pointing_hits_count_the_peaks_on_their_objects():
    attention = torch.full((2, 3, 4, 4), 0.01)
    attention[0, 0, 0, 0] = attention[0, 1, 3, 3] = attention[0, 2, 2, 2] = 0.9
    attention[1, :, 1, 1] = 0.9
    referents = torch.zeros(2, 2, 16, 16, dtype=torch.bool)
    referents[0, 0, 1, 1] = True  # one pixel of cell (0, 0): the first look
    referents[0, 1, 8:12, 8:12] = True  # cell (2, 2): the second look (hops 2 and 3)
    referents[1, 1, 0, 0] = True  # question 1: no first look; the second at cell (0, 0)
    hit, has = pointing_hits(attention, referents)
    assert has.tolist() == [[True, True, True], [False, True, True]]
    assert hit.tolist() == [[True, False, True], [False, False, False]]
    scores = pointing_scores(hit.sum(dim=0), has.sum(dim=0))
    assert scores == pytest.approx({"pointing_hop1": 100.0, "pointing_hop2": 0.0,
                                    "pointing_hop3": 50.0})  # fmt: skip
    assert pointing_scores(torch.zeros(1), torch.zeros(1)) == {"pointing_hop1": 0.0}


def test_look_targets_are_the_share_of_each_cell_covered():
    referents = torch.zeros(1, 2, 8, 8, dtype=torch.bool)
    referents[0, 0, 0:2, 0:1] = True  # half of cell (0, 0) of a 4x4 grid
    referents[0, 1, 6:8, 6:8] = True  # all of cell (3, 3)
    target = look_targets(torch.zeros(1, 3, 4, 4), referents)
    assert target.shape == (1, 3, 4, 4)
    assert float(target[0, 0, 0, 0]) == 0.5 and float(target[0, 0].sum()) == 0.5
    for hop in (1, 2):  # hops after the first look at the second look's objects
        assert float(target[0, hop, 3, 3]) == 1.0 and float(target[0, hop].sum()) == 1.0
