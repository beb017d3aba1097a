"""Retrieval metrics on hand-made matrices (analytic answers) and against a brute-force loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xmodal.errors import ParameterError
from xmodal.metrics import fold_average, retrieval_ceiling, retrieval_metrics, retrieval_ranks
from xmodal.metrics.retrieval import world_retrieval_ceiling

SIMS = torch.tensor([[0.9, 0.1, 0.8, 0.2], [0.3, 0.7, 0.6, 0.5]])
TEXT_IMAGE = torch.tensor([0, 0, 1, 1])


def test_a_hand_made_matrix():
    i2t, t2i = retrieval_ranks(SIMS, TEXT_IMAGE)
    # image 1: its best caption (0.6) is beaten by caption 1 (0.7) of image 0.
    assert i2t.tolist() == [1, 2]
    assert t2i.tolist() == [1, 2, 2, 1]
    m = retrieval_metrics(SIMS, TEXT_IMAGE)
    assert m["i2t_R@1"] == 50.0 and m["i2t_R@5"] == 100.0 and m["i2t_R@10"] == 100.0
    assert m["t2i_R@1"] == 50.0 and m["t2i_R@5"] == 100.0
    assert m["i2t_medr"] == 1.0 and m["i2t_meanr"] == 1.5  # floor(median([0, 1])) + 1
    assert m["t2i_medr"] == 1.0 and m["t2i_meanr"] == 1.5
    assert m["rsum"] == 50 + 100 + 100 + 50 + 100 + 100


def test_perfect_and_constant_similarities():
    perfect = retrieval_metrics(torch.eye(12), torch.arange(12))
    assert all(perfect[f"{p}_R@{k}"] == 100.0 for p in ("i2t", "t2i") for k in (1, 5, 10))
    assert perfect["i2t_medr"] == perfect["t2i_meanr"] == 1.0
    # Ties count against the query: all-equal scores rank every correct item last.
    flat = retrieval_metrics(torch.zeros(12, 12), torch.arange(12))
    assert flat["i2t_R@1"] == flat["t2i_R@10"] == 0.0
    assert flat["i2t_medr"] == flat["t2i_meanr"] == 12.0


def _loop(sims: np.ndarray, text_image: np.ndarray) -> dict[str, float]:
    n_images, n_texts = sims.shape

    def rank(scores, correct):  # wrong items first among equal scores
        order = sorted(range(len(scores)), key=lambda j: (-scores[j], correct(j)))
        return 1 + next(p for p, j in enumerate(order) if correct(j))

    i2t = [rank(sims[i], lambda t, i=i: text_image[t] == i) for i in range(n_images)]
    t2i = [rank(sims[:, t], lambda i, t=t: text_image[t] == i) for t in range(n_texts)]
    out = {}
    for name, ranks in (("i2t", i2t), ("t2i", t2i)):
        for k in (1, 5, 10):
            out[f"{name}_R@{k}"] = 100.0 * sum(r <= k for r in ranks) / len(ranks)
        out[f"{name}_medr"] = math.floor(np.median([r - 1 for r in ranks])) + 1
        out[f"{name}_meanr"] = sum(ranks) / len(ranks)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_a_brute_force_loop(seed):
    rng = np.random.default_rng(seed)
    n_images, per = 30, 3
    text_image = np.repeat(np.arange(n_images), per)
    rng.shuffle(text_image)
    sims = rng.normal(size=(n_images, n_images * per)).round(1)  # rounding makes ties
    sims[text_image, np.arange(len(text_image))] += 1.0  # better than chance
    got = retrieval_metrics(torch.from_numpy(sims), torch.from_numpy(text_image))
    want = _loop(sims, text_image)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key


def test_fold_average_is_the_mean_over_blocks():
    sims = torch.zeros(4, 8)
    text_image = torch.arange(8) // 2
    sims[:2, :4] = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])  # fold 0: right
    sims[2:, 4:] = torch.tensor([[0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])  # fold 1: wrong
    sims[:2, 4:] = sims[2:, :4] = 5.0  # cross-fold scores must not count
    m = fold_average(sims, text_image, n_folds=2)
    assert m["i2t_R@1"] == m["t2i_R@1"] == 50.0
    assert m["i2t_meanr"] == pytest.approx((1 + 3) / 2)  # fold 1: both wrong texts first
    assert fold_average(SIMS, TEXT_IMAGE, n_folds=1) == retrieval_metrics(SIMS, TEXT_IMAGE)
    with pytest.raises(ParameterError, match="n_folds must divide the 4 images evenly"):
        fold_average(sims, text_image, n_folds=3)


def test_bad_input_is_a_parameter_error():
    with pytest.raises(
        ParameterError, match=r"text_image must be an integer tensor of shape \(4,\)"
    ):
        retrieval_metrics(SIMS, torch.tensor([0, 1]))
    with pytest.raises(ParameterError, match=r"image indices in \[0, 2\)"):
        retrieval_metrics(SIMS, torch.tensor([0, 0, 1, 2]))
    with pytest.raises(ParameterError, match="image 1 has no text"):
        retrieval_metrics(SIMS, torch.tensor([0, 0, 0, 0]))
    bad = SIMS.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ParameterError, match="similarity contains 1 non-finite"):
        retrieval_metrics(bad, TEXT_IMAGE)
    with pytest.raises(ParameterError, match="similarity must have shape"):
        retrieval_metrics(SIMS[None], TEXT_IMAGE)


# ----------------------------------------------------------------------------- ceiling


def test_ceiling_of_texts_that_name_their_image_alone_is_perfect():
    truth = torch.eye(3, dtype=torch.bool).repeat_interleave(2, dim=1)  # 2 texts per image
    got = retrieval_ceiling(truth, torch.arange(6) // 2)
    assert got == {"i2t_R@1": 100.0, "t2i_R@1": 100.0, "texts_true_of_one_image": 100.0,
                   "median_images_per_text": 1.0}  # fmt: skip


def test_ceiling_of_ambiguous_texts_is_their_expected_random_pick():
    # Image 0 has texts 0 ("true of 0 only") and 1 ("true of 0 and 1"); image 1 has text
    # 2 ("true of 0, 1 and 2"); image 2 has text 3 ("true of 2 and 1").
    truth = torch.tensor(
        [[1, 1, 1, 0],
         [0, 1, 1, 1],
         [0, 0, 1, 1]], dtype=torch.bool)  # fmt: skip
    got = retrieval_ceiling(truth, torch.tensor([0, 0, 1, 2]))
    # t2i: 1/1, 1/2, 1/3, 1/2.
    assert got["t2i_R@1"] == pytest.approx(100 * (1 + 1 / 2 + 1 / 3 + 1 / 2) / 4)
    # i2t by P(image | text) = truth / n_t: image 0 -> text 0 (1.0): its own; image 1 ->
    # texts 1 and 3 tie at 1/2, none its own: 0; image 2 -> text 3 (1/2): its own.
    assert got["i2t_R@1"] == pytest.approx(100 * 2 / 3)
    assert got["texts_true_of_one_image"] == pytest.approx(25.0)
    # A text false of its own image (a parse the scene does not bear out) earns nothing.
    truth[0, 0] = False
    assert retrieval_ceiling(truth, torch.tensor([0, 0, 1, 2]))["t2i_R@1"] == pytest.approx(
        100 * (1 / 2 + 1 / 3 + 1 / 2) / 4
    )


def test_ceiling_needs_a_bool_matrix():
    with pytest.raises(ParameterError, match="true_of must be a bool matrix"):
        retrieval_ceiling(torch.ones(2, 2), torch.tensor([0, 1]))


def test_world_ceiling_is_the_ceiling_of_the_world_s_own_caption_parser():
    from xmodal.world import World

    world, n = World(seed=0), 8
    got = world_retrieval_ceiling(world, "test", n)
    scenes = [world.scene("test", i, audio=False) for i in range(n)]
    texts = [c for s in scenes for c in s.captions]
    truth = torch.tensor([[world.caption_is_true(c, s) for c in texts] for s in scenes])
    # The world writes true captions: each is true of its own image, and of others too.
    assert truth[torch.arange(5 * n) // 5, torch.arange(5 * n)].all()
    assert got == retrieval_ceiling(truth, torch.arange(5 * n) // 5)
    assert 0.0 < got["t2i_R@1"] < 100.0
    with pytest.raises(ParameterError, match="n must be an integer >= 1"):
        world_retrieval_ceiling(world, "test", 0)


# ----------------------------------------------------------------- plausible matches


def test_plausible_metrics_by_hand():
    from xmodal.metrics.retrieval import plausible_retrieval_metrics

    # Text 0 is true of images 0 and 2 (a caption true of two images); the model ranks
    # images 2, 1, 0 for it: R@1 right, R = 2, top 2 holds 1 plausible image; mAP@R =
    # (P(1) * 1 + P(2) * 0) / 2 = 0.5. Text 1 is true of image 1 only, ranked second.
    sims = torch.tensor([[0.1, 0.9], [0.5, 0.8], [0.9, 0.2]])
    truth = torch.tensor([[True, False], [False, True], [True, False]])
    m = plausible_retrieval_metrics(sims, truth)
    assert m["t2i_R@1"] == pytest.approx(50.0)  # text 0 right, text 1 wrong
    assert m["t2i_R-P"] == pytest.approx((50.0 + 0.0) / 2)
    assert m["t2i_mAP@R"] == pytest.approx((50.0 + 0.0) / 2)
    # Images: 0 ranks text 1 first (wrong); 1 ranks text 1 first (right); 2 text 0 (right).
    assert m["i2t_R@1"] == pytest.approx(200 / 3)
    assert m["t2i_queries_without_match"] == m["i2t_queries_without_match"] == 0


def test_a_query_with_no_plausible_match_is_left_out_and_counted():
    from xmodal.metrics.retrieval import plausible_retrieval_metrics

    sims = torch.tensor([[0.9, 0.1, 0.3], [0.2, 0.8, 0.1]])
    truth = torch.tensor([[True, False, False], [False, True, False]])  # text 2: true of none
    m = plausible_retrieval_metrics(sims, truth)
    assert m["t2i_queries_without_match"] == 1
    assert m["t2i_R@1"] == m["t2i_mAP@R"] == 100.0  # the two others are perfect
    assert m["i2t_R@1"] == 100.0


def test_a_perfect_model_scores_100_and_ties_count_against_the_query():
    from xmodal.metrics.retrieval import plausible_retrieval_metrics

    truth = torch.rand(6, 9, generator=torch.Generator().manual_seed(0)) > 0.5
    truth[torch.arange(9) % 6, torch.arange(9)] = True  # every image and text has a match
    perfect = plausible_retrieval_metrics(truth.float(), truth)  # plausible items score 1
    assert all(perfect[f"{way}_{name}"] == 100.0
               for way in ("i2t", "t2i") for name in ("R@1", "R-P", "mAP@R"))  # fmt: skip
    flat = plausible_retrieval_metrics(torch.zeros(6, 9), truth)  # everything tied
    assert flat["i2t_R@1"] == flat["t2i_R@1"] == 0.0
    with pytest.raises(ParameterError, match="true_of must be a bool matrix shaped as"):
        plausible_retrieval_metrics(torch.zeros(6, 9), truth[:, :3])


def test_near_miss_accuracy_counts_the_pairs_whose_caption_wins():
    from xmodal.metrics.retrieval import near_miss_accuracy

    true = torch.tensor([0.9, 0.2, 0.5, 0.4])
    miss = torch.tensor([0.1, 0.5, 0.5, 0.3])  # wins, loses, ties (a failure), wins
    got = near_miss_accuracy(true, miss, ["relation", "count", "count", "relation"])
    assert got == {"all": 50.0, "relation": 100.0, "count": 0.0}
    assert near_miss_accuracy(true, miss) == {"all": 50.0}
    with pytest.raises(ParameterError, match="two vectors of one length"):
        near_miss_accuracy(true, miss[:2])
    with pytest.raises(ParameterError, match="kinds must name each of the 4 pairs"):
        near_miss_accuracy(true, miss, ["relation"])


def test_world_near_misses_are_false_and_say_their_kind():
    from xmodal.metrics.retrieval import world_near_misses
    from xmodal.world import World
    from xmodal.world.language import NEAR_MISS_KINDS

    world = World(seed=0)
    image, caption, miss, kind = world_near_misses(world, "test", 8)
    assert len(image) == len(caption) == len(miss) == len(kind) >= 0.9 * 8 * 5
    for i, c, m, k in zip(image, caption, miss, kind, strict=True):
        scene = world.scene("test", i, audio=False, questions=False)
        assert c in scene.captions and world.caption_is_true(c, scene)
        assert not world.caption_is_true(m, scene) and k in NEAR_MISS_KINDS
