"""Contrastive losses against hand-computed 3x3 values and a straightforward loop."""

from __future__ import annotations

import math

import pytest
import torch

from xmodal.errors import ParameterError
from xmodal.nn import LogitScale, hinge_triplet_loss, info_nce_loss

# img = I, so S = img @ txt.T = txt.T; txt's rows (S's columns) are unit vectors.
S = torch.tensor([[1.0, 0.6, 0.0], [0.0, 0.8, 0.6], [0.0, 0.0, 0.8]])
IMG, TXT = torch.eye(3), S.T.contiguous()


@pytest.mark.parametrize(
    "margin, hardest, ids, want",
    [
        (1.0, False, None, 4 / 3),  # image anchors (.6+1+.4)/3, text anchors (0+1+1)/3
        (1.0, True, None, 3.2 / 3),  # hardest: (.6+.8+.2)/3 + (0+.8+.8)/3
        (0.5, False, None, 0.4 / 3 + 0.2),
        (0.0, False, None, 0.0),  # every positive beats every negative
        (1.0, False, [0, 0, 1], 0.8),  # rows 0 and 1 share an image: not negatives
    ],
)
def test_hinge_matches_hand_computed_values(margin, hardest, ids, want):
    ids = None if ids is None else torch.tensor(ids)
    got = hinge_triplet_loss(IMG, TXT, margin=margin, hardest=hardest, image_ids=ids)
    assert got.item() == pytest.approx(want, abs=1e-6)


def test_info_nce_matches_hand_computed_values():
    scale = 2.0
    rows = [[2.0, 1.2, 0.0], [0.0, 1.6, 1.2], [0.0, 0.0, 1.6]]  # scale * S
    cols = [list(c) for c in zip(*rows, strict=True)]

    def xent(logits, k):
        return -logits[k] + math.log(sum(math.exp(v) for v in logits))

    want = 0.5 * (sum(xent(r, k) for k, r in enumerate(rows)) / 3
                  + sum(xent(c, k) for k, c in enumerate(cols)) / 3)  # fmt: skip
    assert info_nce_loss(IMG, TXT, scale).item() == pytest.approx(want, abs=1e-6)
    # With rows 0 and 1 of one image, logits (0, 1) and (1, 0) leave both softmaxes.
    masked = 0.5 * (
        (xent([2.0, 0.0], 0) + xent([1.6, 1.2], 0) + xent(rows[2], 2)) / 3
        + (xent([2.0, 0.0], 0) + xent([1.6, 0.0], 0) + xent(cols[2], 2)) / 3
    )
    got = info_nce_loss(IMG, TXT, torch.tensor(scale), image_ids=torch.tensor([0, 0, 1]))
    assert got.item() == pytest.approx(masked, abs=1e-6)


def _loop_hinge(img, txt, margin, hardest, ids, extra=()):
    """``extra``: hard negative texts, more negatives of every image anchor."""
    b = len(img)
    s = [[float(img[i] @ txt[j]) for j in range(b)] for i in range(b)]
    total = 0.0
    for a in range(b):
        to_txt = [max(0.0, margin - s[a][a] + s[a][j]) for j in range(b) if ids[j] != ids[a]]
        to_txt += [max(0.0, margin - s[a][a] + float(img[a] @ e)) for e in extra]
        to_img = [max(0.0, margin - s[a][a] + s[i][a]) for i in range(b) if ids[i] != ids[a]]
        for costs in (to_txt, to_img):
            total += (max(costs) if hardest else sum(costs)) if costs else 0.0
    return total / b


def _loop_info_nce(img, txt, scale, ids, extra=()):
    b = len(img)
    s = [[scale * float(img[i] @ txt[j]) for j in range(b)] for i in range(b)]
    total = 0.0
    for a in range(b):
        keep = [j for j in range(b) if j == a or ids[j] != ids[a]]
        extras = [math.exp(scale * float(img[a] @ e)) for e in extra]
        total += -s[a][a] + math.log(sum(math.exp(s[a][j]) for j in keep) + sum(extras))
        total += -s[a][a] + math.log(sum(math.exp(s[i][a]) for i in keep))
    return total / (2 * b)


@pytest.mark.parametrize("hardest", [False, True])
@pytest.mark.parametrize("ids", [None, [0, 0, 1, 2, 2, 2, 3, 4]])
def test_losses_match_a_loop(hardest, ids):
    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(8, 5, generator=g, dtype=torch.float64), dim=1)
    txt = torch.nn.functional.normalize(torch.randn(8, 5, generator=g, dtype=torch.float64), dim=1)
    tids = None if ids is None else torch.tensor(ids)
    lids = list(range(8)) if ids is None else ids
    got = hinge_triplet_loss(img, txt, margin=0.3, hardest=hardest, image_ids=tids)
    assert got.item() == pytest.approx(_loop_hinge(img, txt, 0.3, hardest, lids), abs=1e-10)
    got = info_nce_loss(img, txt, 7.0, image_ids=tids)
    assert got.item() == pytest.approx(_loop_info_nce(img, txt, 7.0, lids), abs=1e-10)


@pytest.mark.parametrize("hardest", [False, True])
def test_hard_negatives_are_more_negative_texts_of_every_image(hardest):
    g = torch.Generator().manual_seed(1)
    img, txt, extra = (
        torch.nn.functional.normalize(torch.randn(n, 5, generator=g, dtype=torch.float64), dim=1)
        for n in (6, 6, 4)
    )
    ids = [0, 0, 1, 2, 3, 3]
    tids = torch.tensor(ids)
    got = info_nce_loss(img, txt, 7.0, image_ids=tids, hard_negatives=extra)
    assert got.item() == pytest.approx(_loop_info_nce(img, txt, 7.0, ids, extra), abs=1e-10)
    assert got.item() > info_nce_loss(img, txt, 7.0, image_ids=tids).item()
    got = hinge_triplet_loss(img, txt, margin=0.3, hardest=hardest, image_ids=tids,
                             hard_negatives=extra)  # fmt: skip
    assert got.item() == pytest.approx(_loop_hinge(img, txt, 0.3, hardest, ids, extra), abs=1e-10)
    with pytest.raises(ParameterError, match=r"hard_negatives must have shape \(M, D\) with D=5"):
        info_nce_loss(img, txt, 7.0, hard_negatives=extra[:, :3])


def test_logit_scale_is_learned_and_capped():
    scale = LogitScale()
    assert scale().item() == pytest.approx(1 / 0.07, rel=1e-6)
    loss = info_nce_loss(IMG, TXT, scale())
    loss.backward()
    assert scale.log_scale.grad is not None and scale.log_scale.grad.item() != 0
    with torch.no_grad():
        scale.log_scale.fill_(10.0)
    assert scale().item() == pytest.approx(100.0)
    with pytest.raises(ParameterError, match="init must be <= max"):
        LogitScale(init=200.0)
    with pytest.raises(ParameterError, match="init"):
        LogitScale(init=0.0)


def test_bad_input_is_a_parameter_error():
    with pytest.raises(ParameterError, match=r"Found img \(3, 3\) and txt \(2, 3\)"):
        hinge_triplet_loss(IMG, TXT[:2])
    with pytest.raises(ParameterError, match=r"img must have at least 2 dimension"):
        info_nce_loss(IMG[0], TXT[0], 1.0)
    nan = TXT.clone()
    nan[1, 2] = float("nan")
    with pytest.raises(ParameterError, match="txt contains 1 non-finite"):
        hinge_triplet_loss(IMG, nan)
    with pytest.raises(ParameterError, match="margin must be a finite number >= 0. Found: -0.1"):
        hinge_triplet_loss(IMG, TXT, margin=-0.1)
    with pytest.raises(ParameterError, match="image_ids must be an integer tensor of shape"):
        hinge_triplet_loss(IMG, TXT, image_ids=torch.tensor([0, 1]))
    with pytest.raises(ParameterError, match="logit_scale"):
        info_nce_loss(IMG, TXT, torch.tensor(float("nan")))
    with pytest.raises(ParameterError, match="logit_scale"):
        info_nce_loss(IMG, TXT, 0.0)
    # Not normalised is allowed (the caller's choice), and gives a finite loss.
    assert torch.isfinite(hinge_triplet_loss(3 * IMG, TXT))


def test_distillation_is_the_kl_from_teacher_to_student_times_t_squared():
    from xmodal.nn import distillation_loss

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    teacher = torch.tensor([[0.7, 0.2, 0.1], [0.0, 1.0, 0.0]])
    for t in (1.0, 2.0):
        q = [
            [math.exp(v / t) / sum(math.exp(u / t) for u in row) for v in row]
            for row in logits.tolist()
        ]
        kl = [sum(p * math.log(p / qq) for p, qq in zip(pr, qr, strict=True) if p > 0)
              for pr, qr in zip(teacher.tolist(), q, strict=True)]  # fmt: skip
        want = t * t * sum(kl) / 2
        assert distillation_loss(logits, teacher, temperature=t).item() == pytest.approx(
            want, abs=1e-6
        )
    # A one-hot teacher: the cross entropy of its class.
    one_hot = torch.nn.functional.cross_entropy(logits[1:], torch.tensor([1]))
    assert distillation_loss(logits[1:], teacher[1:]).item() == pytest.approx(one_hot.item())
    with pytest.raises(ParameterError, match="rows >= 0 that sum to 1. Found row sums from 2 to 2"):
        distillation_loss(logits, teacher * 2)
    with pytest.raises(ParameterError, match=r"both have shape \(B, K\)"):
        distillation_loss(logits, teacher[:, :2])
    with pytest.raises(ParameterError, match="temperature"):
        distillation_loss(logits, teacher, temperature=0.0)
