import math

import pytest
import torch

from xmodal.audio.separation import MASK_K
from xmodal.errors import ParameterError
from xmodal.metrics.separation import si_sdr_improvement
from xmodal.referencing.speech_separation import LookingToListen, separation_batch_loss

SR = 16000

# Tiny sizes: 129 bins (n_fft 256), 100 STFT frames/s, 16x16 faces.
TINY = dict(
    n_freq=129,
    win_length=256,
    audio_channels=8,
    audio_layers=(((1, 5), (1, 1)), ((5, 1), (1, 1)), ((3, 3), (2, 2))),
    audio_reduced_channels=4,
    visual_channels=8,
    visual_kernel=3,
    visual_dilations=(1, 2),
    lstm_hidden=16,
    fc_sizes=(32,),
)


def tiny(visual=True, seed=0, **kw):
    torch.manual_seed(seed)
    return LookingToListen(visual=visual, **{**TINY, **kw})


def faces(batch, n_frames, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 2, n_frames, 3, 16, 16), dtype=torch.uint8, generator=g)


def spec(model, samples, batch=2, seed=2):
    g = torch.Generator().manual_seed(seed)
    return model.stft(torch.randn(batch, samples, generator=g))


@pytest.mark.parametrize("visual", [True, False])
def test_shapes_and_bounded_masks(visual):
    model = tiny(visual).eval()
    Y = spec(model, 4000)  # 0.25 s: 26 STFT frames, 7 video frames
    assert Y.shape == (2, 129, 26)
    with torch.no_grad():
        masks = model(Y, faces(2, 7) if visual else None)
    assert masks.shape == (2, 2, 129, 26, 2)
    assert masks.abs().max() < MASK_K
    # Initialised to the even split: real part 1/S, imaginary 0 (up to the small weights).
    assert masks[..., 0].mean().item() == pytest.approx(0.5, abs=0.1)


def test_default_model_shapes():
    model = LookingToListen().eval()
    Y = model.stft(torch.randn(1, SR))
    with torch.no_grad():
        masks = model(Y, torch.zeros(1, 2, 25, 3, 64, 64, dtype=torch.uint8))
    assert masks.shape == (1, 2, 257, 101, 2)


def test_faces_required_or_refused():
    Y = spec(tiny(), 4000)
    with pytest.raises(ParameterError, match="audio-only"):
        tiny(visual=False)(Y, faces(2, 7))
    with pytest.raises(ParameterError, match="faces are required"):
        tiny(visual=True)(Y, None)
    with pytest.raises(ParameterError, match=r"\(2, 2, frames, 3, H, W\)"):
        tiny(visual=True)(Y, faces(2, 7)[:, :1])


def test_short_face_track():
    model = tiny().eval()
    Y = spec(model, 4000)  # 26 STFT frames: frame 25 shows video frame 25 * 160 * 25 // 16000 = 6
    with pytest.raises(ParameterError, match=r"26 STFT frames.*need 7 video frames.*Found: 5"):
        model(Y, faces(2, 5))
    f = faces(2, 6)
    with torch.no_grad():
        padded = model(Y, f)  # one frame short: the last frame is repeated
        explicit = model(Y, torch.cat([f, f[:, :, -1:]], dim=2))
        longer = model(Y, torch.cat([f, f[:, :, -1:], faces(2, 3, seed=9)], dim=2))
    torch.testing.assert_close(padded, explicit, rtol=0, atol=1e-6)
    torch.testing.assert_close(padded, longer, rtol=0, atol=1e-6)  # extra frames ignored


def test_swapping_faces_swaps_masks():
    model = tiny().eval()
    torch.nn.init.normal_(model.mask_head.weight, std=0.5)  # make the faces count at init
    Y = spec(model, 4000)
    f = faces(2, 7)
    with torch.no_grad():
        masks = model(Y, f)
        swapped = model(Y, f.flip(1))
    torch.testing.assert_close(swapped, masks.flip(1), rtol=0, atol=1e-6)
    assert (masks[:, 0] - masks[:, 1]).abs().max() > 1e-4  # the faces do matter


@pytest.mark.parametrize("visual", [True, False])
def test_separate_returns_mixture_length(visual):
    model = tiny(visual).eval()
    y = torch.randn(2, 4321)
    with torch.no_grad():
        waves, masks, est = model.separate(y, faces(2, 7) if visual else None,
                                           lengths=torch.tensor([4321, 3000]))  # fmt: skip
    assert waves.shape == (2, 2, 4321)
    assert masks.shape == (2, 2, 129, 28, 2) and est.shape == (2, 2, 129, 28)
    assert waves[1, :, 3000:].abs().max() == 0


def test_pit_loss_invariant_to_target_order():
    model = tiny(visual=False).eval()
    g = torch.Generator().manual_seed(3)
    sources = torch.randn(2, 2, 4000, generator=g)
    mixture = sources.sum(1)
    with torch.no_grad():
        a, _ = separation_batch_loss(model, mixture, sources, permutation_invariant=True)
        b, _ = separation_batch_loss(model, mixture, sources.flip(1),
                                     permutation_invariant=True)  # fmt: skip
        c, _ = separation_batch_loss(model, mixture, sources, permutation_invariant=False)
    torch.testing.assert_close(a, b)
    assert a <= c


def _tones(n_items=3, seconds=0.48, fps=25):
    """Two harmonic tones per item with on/off envelopes; 'faces' whose brightness is
    each tone's envelope (the visual cue that tells which tone is whose)."""
    g = torch.Generator().manual_seed(0)
    n = int(seconds * SR)
    t = torch.arange(n) / SR
    n_video = int(seconds * fps)
    sources, tracks = [], []
    for _ in range(n_items):
        srcs, track = [], []
        for f0 in (200.0, 310.0):
            # Random on/off per video frame, so the envelopes differ between speakers.
            env_v = (torch.rand(n_video, generator=g) > 0.4).float()
            env = env_v.repeat_interleave(n // n_video)
            wave = sum(torch.sin(2 * math.pi * k * f0 * t) / k for k in (1, 2, 3))
            srcs.append(0.3 * wave * env)
            track.append((env_v * 255).to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 16, 16))
        sources.append(torch.stack(srcs))
        tracks.append(torch.stack(track))
    sources = torch.stack(sources)
    return sources.sum(1), sources, torch.stack(tracks)


@pytest.fixture
def one_thread():
    # Tiny ops: threads only add contention (a shared CI machine makes this 20x slower).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_visual_model_overfits_tones(one_thread):
    mixture, sources, tracks = _tones()
    model = tiny(visual=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(120):
        loss, _ = separation_batch_loss(model, mixture, sources, tracks,
                                        permutation_invariant=False)  # fmt: skip
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        waves, _, _ = model.separate(mixture, tracks)
    gain = si_sdr_improvement(waves, sources, mixture.unsqueeze(1))
    assert gain.mean() > 4.0, gain  # about 6 dB after 120 steps
