"""Properties that hold for every valid parameter set, checked on generated cases."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xmodal.audio import functional as F


@st.composite
def frame_params(draw):
    n_fft = draw(st.sampled_from([32, 64, 128, 256]))
    win_length = draw(st.integers(min_value=n_fft // 2, max_value=n_fft))
    hop_length = draw(st.integers(min_value=1, max_value=win_length // 2))
    window = draw(st.sampled_from(["hamming", "hann"]))
    length = draw(st.integers(min_value=n_fft, max_value=4 * n_fft + 37))
    seed = draw(st.integers(min_value=0, max_value=2**16))
    return (
        dict(n_fft=n_fft, win_length=win_length, hop_length=hop_length, window=window),
        length,
        seed,
    )


@settings(max_examples=60, deadline=None)
@given(frame_params())
def test_istft_inverts_stft_for_any_valid_framing(case):
    frames, length, seed = case
    y = torch.from_numpy(np.random.default_rng(seed).standard_normal(length))
    S = F.stft(y, **frames)
    assert S.shape == (frames["n_fft"] // 2 + 1, 1 + length // frames["hop_length"])
    y_hat = F.istft(S, length=length, **{k: v for k, v in frames.items() if k != "n_fft"})
    torch.testing.assert_close(y_hat, y, rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(frame_params(), st.integers(min_value=1, max_value=4))
def test_batched_stft_equals_per_item(case, batch):
    frames, length, seed = case
    y = torch.from_numpy(np.random.default_rng(seed).standard_normal((batch, length)))
    S = F.stft(y, **frames)
    for i in range(batch):
        torch.testing.assert_close(S[i], F.stft(y[i], **frames), rtol=0, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=48000.0), min_size=1, max_size=20),
    st.booleans(),
)
def test_mel_scale_is_monotone_and_invertible(freqs, htk):
    f = np.array(freqs)
    m = F.hz_to_mel(f, htk=htk)
    np.testing.assert_allclose(F.mel_to_hz(m, htk=htk), f, rtol=1e-10, atol=1e-8)
    order = np.argsort(f)
    assert np.all(np.diff(m[order]) >= 0)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**16),
    st.floats(min_value=0.0, max_value=120.0),
)
def test_power_to_db_keeps_each_clip_within_top_db_of_its_peak(seed, top_db):
    rng = np.random.default_rng(seed)
    S = torch.from_numpy(rng.exponential(size=(3, 16, 9)) * 10.0 ** rng.uniform(-8, 4, (3, 1, 1)))
    db = F.power_to_db(S, top_db=top_db)
    peak = db.amax(dim=(-2, -1))
    floor = db.amin(dim=(-2, -1))
    assert torch.all(peak - floor <= top_db + 1e-9)
    torch.testing.assert_close(peak, 10 * torch.log10(S.amax(dim=(-2, -1))))
