"""The sound source localizer: its map is the cosine of the sound with every position,
the attention sums to 1, and each loss term equals its definition computed by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xmodal.audio.encoders import create_encoder as create_audio_encoder
from xmodal.errors import ParameterError
from xmodal.referencing.sound_source import (
    SoundSourceLocalizer,
    attend,
    localization_losses,
    mask_targets,
    upsample_maps,
)
from xmodal.vision.encoders import create_encoder


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = SoundSourceLocalizer(create_encoder("small-cnn", channels=16),
                             create_audio_encoder("vggish", width=0.125), embed_dim=8)  # fmt: skip
    return m.eval()


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(4, 3, 32, 32, generator=g)
    wave = torch.randn(4, 16000, generator=g) * 0.1
    masks = torch.zeros(4, 32, 32)
    for k in range(4):
        masks[k, 8 * k : 8 * k + 8, 4:12] = 1.0
    return images, wave, masks


def test_the_map_is_the_cosine_of_the_sound_with_each_position(model, batch):
    images, wave, _ = batch
    with torch.no_grad():
        maps = model(images, wave)
        visual, audio = model.image_map(images), model.audio_vector(wave)
        cross = model.cross_maps(visual, audio)
    assert maps.shape == (4, 4, 4)  # stride 8
    want = F.cosine_similarity(visual[2], audio[2][:, None, None], dim=0)
    torch.testing.assert_close(maps[2], want)
    torch.testing.assert_close(cross.diagonal().permute(2, 0, 1), maps)  # own pairs
    torch.testing.assert_close(
        cross[1, 3], F.cosine_similarity(visual[3], audio[1][:, None, None], dim=0)
    )
    assert maps.abs().max() <= 1 + 1e-6


def test_attention_sums_to_one_and_follows_the_map():
    maps = torch.tensor([[[0.0, 1.0], [0.5, -1.0]]])
    a = attend(maps, 0.1)
    assert float(a.sum()) == pytest.approx(1.0)
    assert int(a.flatten().argmax()) == 1
    torch.testing.assert_close(a.flatten(), (maps.flatten() / 0.1).softmax(0))


def test_mask_targets_are_the_share_of_each_cell_covered():
    masks = torch.zeros(1, 8, 8)
    masks[0, :4, :2] = 1  # half of the top-left 4x4 cell
    assert mask_targets(masks, (2, 2)).tolist() == [[[0.5, 0.0], [0.0, 0.0]]]
    with pytest.raises(ParameterError, match="tile"):
        mask_targets(masks, (3, 3))


def test_upsampling_keeps_the_corners():
    maps = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])
    up = upsample_maps(maps, (5, 5))
    assert up[0, 0, 0] == 0 and up[0, 0, -1] == 1 and up[0, -1, 0] == 2 and up[0, -1, -1] == 3
    assert float(up[0, 2, 2]) == pytest.approx(1.5)


def test_unsupervised_loss_is_infonce_over_attended_scores_against_the_background(model, batch):
    images, wave, _ = batch
    with torch.no_grad():
        loss, parts = localization_losses(model, images, wave, temperature=0.07)
        trimap, _ = localization_losses(model, images, wave, background="trimap",
                                        background_threshold=0.4)  # fmt: skip
        plain, _ = localization_losses(model, images, wave, background="none")
        visual, audio = model.image_map(images), model.audio_vector(wave)
    cross = torch.einsum("jdhw,id->ijhw", visual, audio).flatten(2)  # sound i, image j
    att = (cross / model.attention_temperature).softmax(-1)
    scores = (att * cross).sum(-1)
    target = torch.arange(4)
    want = F.cross_entropy((scores - cross.mean(-1)) / 0.07, target)  # contrast: less the mean
    assert float(loss) == pytest.approx(float(want), rel=1e-5)
    own = torch.stack([cross[i, i] for i in range(4)])
    w = 1 - torch.sigmoid((own - 0.4) / 0.03)  # LVS's soft tri-map
    background = (w * own).sum(1) / w.sum(1)
    want = F.cross_entropy(torch.cat([scores, background[:, None]], 1) / 0.07, target)
    assert float(trimap) == pytest.approx(float(want), rel=1e-5)
    assert float(plain) == pytest.approx(float(F.cross_entropy(scores / 0.07, target)), rel=1e-5)
    assert float(trimap) > float(plain)  # one more negative never lowers the loss
    assert set(parts) == {"contrastive", "accuracy"}


def test_supervised_loss_is_the_cross_entropy_of_the_mask_and_the_attention(model, batch):
    images, wave, masks = batch
    with torch.no_grad():
        loss, parts = localization_losses(model, images, wave, masks, objective="supervised")
        maps = model(images, wave)
    target = F.adaptive_avg_pool2d(masks[:, None], (4, 4))[:, 0].flatten(1)
    target = target / target.sum(1, keepdim=True)
    log_att = (maps.flatten(1) / model.attention_temperature).log_softmax(1)
    assert float(loss) == pytest.approx(float(-(target * log_att).sum(1).mean()), rel=1e-5)
    assert set(parts) == {"supervised"}


def test_semi_supervised_uses_the_labelled_masks_only(model, batch):
    images, wave, masks = batch
    labelled = torch.tensor([True, False, True, False])
    other = masks.clone()
    other[1] = 1 - other[1]  # an unlabelled clip's mask changes: the loss must not
    with torch.no_grad():
        a, _ = localization_losses(
            model, images, wave, masks, labelled, objective="semi-supervised"
        )
        b, _ = localization_losses(
            model, images, wave, other, labelled, objective="semi-supervised"
        )
        c, _ = localization_losses(model, images, wave, other, None, objective="semi-supervised")
    assert float(a) == float(b)
    assert float(c) != float(a)


def test_bad_input(model, batch):
    images, wave, _ = batch
    with pytest.raises(ParameterError, match="objective"):
        localization_losses(model, images, wave, objective="weakly")
    with pytest.raises(ParameterError, match="needs the sounding masks"):
        localization_losses(model, images, wave, objective="supervised")
    with pytest.raises(ParameterError, match="at least 2 clips"):
        localization_losses(model, images[:1], wave[:1])


def test_a_tiny_model_learns_to_point_at_the_sounding_quadrant():
    """Four images with one bright quadrant each and four tones: supervised, the map's
    peak lands in the quadrant its tone belongs to."""
    torch.manual_seed(0)
    audio = create_audio_encoder("vggish", width=0.125)
    model = SoundSourceLocalizer(create_encoder("small-cnn", channels=16), audio, embed_dim=8)
    images, masks = torch.zeros(4, 3, 32, 32), torch.zeros(4, 32, 32)
    t = torch.arange(16000) / 16000
    wave = torch.stack([0.3 * torch.sin(2 * torch.pi * f * t) for f in (220, 440, 880, 1760)])
    for k in range(4):
        y, x = divmod(k, 2)
        images[k, k % 3, 16 * y : 16 * y + 16, 16 * x : 16 * x + 16] = 1.0
        masks[k, 16 * y : 16 * y + 16, 16 * x : 16 * x + 16] = 1.0
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss, _ = localization_losses(model, images, wave, masks, objective="supervised")
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        peaks = upsample_maps(model(images, wave), (32, 32)).flatten(1).argmax(1)
    assert masks.flatten(1).gather(1, peaks[:, None]).all()
