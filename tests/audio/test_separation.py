"""Mask-based separation on complex STFTs: power-law compression, complex ratio masks and
their bounded form, Looking to Listen's loss and permutation-invariant training."""

from __future__ import annotations

import itertools
import re

import pytest
import torch
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio as si_sdr

from xmodal import audio
from xmodal.audio import separation as sep
from xmodal.errors import ParameterError

SR = 16000


def harmonic(f0: float, n_harmonics: int, *, seed: int, noise: float = 0.05) -> torch.Tensor:
    """One second of a harmonic tone (partials falling as 1/k) plus white noise, float32."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(SR, dtype=torch.float64) / SR
    y = sum(torch.sin(2 * torch.pi * k * f0 * t + k) / k for k in range(1, n_harmonics + 1))
    return (0.3 * y + noise * torch.randn(SR, generator=g, dtype=torch.float64)).float()


@pytest.fixture(scope="module")
def two_sources():
    """Two sources (2, time), their mixture (time,) and the STFTs, Hamming window and the
    project's defaults: (2, 257, 101) and (257, 101) complex64."""
    sources = torch.stack([harmonic(140.0, 8, seed=0), harmonic(233.0, 5, seed=1)])
    mixture = sources.sum(0)
    return sources, mixture, audio.stft(sources), audio.stft(mixture)


def rand_spec(*shape, seed: int = 0, dtype=torch.complex128) -> torch.Tensor:
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- compression


def test_compress_raises_the_magnitude_to_p_and_keeps_the_phase():
    S = rand_spec(3, 17, 9)
    C = audio.power_law_compress(S, power=0.3)
    torch.testing.assert_close(C.abs(), S.abs() ** 0.3)
    torch.testing.assert_close(C / C.abs(), S / S.abs())


@pytest.mark.parametrize("p", [0.3, 0.5, 2.0])
def test_decompress_inverts_compress(p):
    S = rand_spec(2, 33, 12, seed=1)
    S[0, :4] = 0  # silent bins survive the round trip as exact zeros
    compress, decompress = audio.power_law_compress, audio.power_law_decompress
    torch.testing.assert_close(decompress(compress(S, power=p), power=p), S)
    torch.testing.assert_close(compress(decompress(S, power=p), power=p), S)
    assert (compress(S, power=p)[0, :4] == 0).all()


@pytest.mark.parametrize("dtype", [torch.complex128, torch.float64])
def test_compress_has_finite_gradients_at_zero_and_correct_ones_elsewhere(dtype):
    S = rand_spec(4, 6, seed=2, dtype=dtype)
    S[1, 2] = 0
    S[3] = 0
    S.requires_grad_(True)
    C = audio.power_law_compress(S, power=0.3)
    (torch.view_as_real(C) if C.is_complex() else C).sum().backward()
    grad = torch.view_as_real(S.grad) if S.is_complex() else S.grad
    assert torch.isfinite(grad).all()
    assert (S.grad[3] == 0).all() and S.grad[1, 2] == 0
    # Away from zero the gradient is the analytic one (gradcheck: finite differences).
    nonzero = rand_spec(3, 5, seed=3, dtype=dtype).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: audio.power_law_compress(x, power=0.3), (nonzero,))


# ----------------------------------------------------------------------------- masks


def test_complex_mask_is_the_complex_product_in_parts():
    Y, M = rand_spec(2, 9, 7, seed=4), rand_spec(2, 9, 7, seed=5)
    out = sep.apply_complex_mask(Y, M)
    Yr, Yi, Mr, Mi = Y.real, Y.imag, M.real, M.imag
    torch.testing.assert_close(out.real, Mr * Yr - Mi * Yi)
    torch.testing.assert_close(out.imag, Mr * Yi + Mi * Yr)


def test_mask_layouts_complex_and_trailing_two_give_the_same_output():
    Y = rand_spec(3, 1, 9, 7, seed=6)  # (B, 1, F, T): one mixture for S masks
    M = rand_spec(3, 2, 9, 7, seed=7)  # (B, S, F, T)
    parts = torch.stack([M.real, M.imag], dim=-1)  # (B, S, F, T, 2) real
    expected = sep.apply_complex_mask(Y, M)
    assert expected.shape == (3, 2, 9, 7)
    torch.testing.assert_close(sep.apply_complex_mask(Y, parts), expected)
    # A network's (B, 2, S, F, T) output permuted to (..., 2) is not contiguous: still fine.
    channels_first = parts.permute(0, 4, 1, 2, 3).contiguous()
    torch.testing.assert_close(
        sep.apply_complex_mask(Y, channels_first.permute(0, 2, 3, 4, 1)), expected
    )
    torch.testing.assert_close(expected[:, 1], M[:, 1] * Y[:, 0])


def source_si_sdr(estimate_spec, source):
    y = audio.istft(estimate_spec, length=source.shape[-1])
    return si_sdr(y.double(), source.double())


def test_oracle_mask_recovers_each_source_from_the_mixture(two_sources):
    sources, mixture, S, Y = two_sources
    M = sep.ideal_complex_mask(S, Y.unsqueeze(0))  # (2, F, T) complex
    estimates = sep.apply_complex_mask(Y.unsqueeze(0), M)
    # S conj(Y) / |Y|^2 times Y is S again: exact up to float32 rounding (138 dB measured),
    # far past the 30 dB that tells a separated source.
    quality = source_si_sdr(estimates, sources)
    assert (quality > 100).all(), quality
    # The mixture itself is far from either source (0 dB): the mask did the separating.
    assert (si_sdr(mixture.double().expand(2, -1), sources.double()) < 1).all()


def test_oracle_mask_is_s_over_y_and_zero_where_the_mixture_is_silent():
    S, Y = rand_spec(4, 5, seed=8), rand_spec(4, 5, seed=9)
    Y[2, 3] = 0
    M = sep.ideal_complex_mask(S, Y, eps=1e-12)
    keep = Y != 0
    torch.testing.assert_close(M[keep], (S / Y)[keep])
    assert M[2, 3] == 0


def test_bound_mask_is_williamsons_compression_into_minus_k_k():
    x = torch.linspace(-300, 300, 601, dtype=torch.float64)
    K, C = 10.0, 0.1
    torch.testing.assert_close(
        sep.bound_mask(x, k=K, c=C), K * (1 - torch.exp(-C * x)) / (1 + torch.exp(-C * x))
    )
    assert (sep.bound_mask(x).abs() <= K).all()
    M = rand_spec(5, 6, seed=10) * 20
    bounded = sep.bound_mask(M)
    torch.testing.assert_close(bounded.real, sep.bound_mask(M.real))
    torch.testing.assert_close(bounded.imag, sep.bound_mask(M.imag))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_unbound_mask_inverts_bound_mask(dtype):
    x = torch.linspace(-100, 100, 401, dtype=dtype)
    tol = {torch.float32: 2e-2, torch.float64: 1e-7}[dtype]  # atanh near 1 loses digits
    torch.testing.assert_close(sep.unbound_mask(sep.bound_mask(x)), x, atol=tol, rtol=0)
    M = rand_spec(3, 4, seed=11)
    torch.testing.assert_close(sep.unbound_mask(sep.bound_mask(M, k=5, c=0.3), k=5, c=0.3), M)
    # A saturated or overshooting output maps to the largest finite mask, not inf or NaN.
    edge = sep.unbound_mask(torch.tensor([-10.0, 10.0, 12.0], dtype=dtype))
    assert torch.isfinite(edge).all()
    assert edge[0] == -edge[1] and edge[1] == edge[2] and edge[1] > 100


def test_bounded_oracle_mask_unbound_still_recovers_the_sources(two_sources):
    sources, _, S, Y = two_sources
    bounded = sep.ideal_complex_mask(S, Y.unsqueeze(0), bounded=True)
    # In float32 the bound saturates to exactly 10 where |Y| is tiny next to |S|.
    assert (bounded.real.abs() <= 10).all() and (bounded.imag.abs() <= 10).all()
    estimates = sep.apply_complex_mask(Y.unsqueeze(0), sep.unbound_mask(bounded))
    # The few saturated bins (4 of 51914) come back as the largest finite mask and
    # atanh near 1 loses float32 digits: 68 dB measured, still far past 30 dB.
    quality = source_si_sdr(estimates, sources)
    assert (quality > 50).all(), quality


# ----------------------------------------------------------------------------- losses


def test_separation_loss_is_the_mse_of_compressed_spectra():
    est, tgt = rand_spec(2, 3, 9, 4, seed=12), rand_spec(2, 3, 9, 4, seed=13)
    c_est = est.abs() ** 0.3 * torch.exp(1j * est.angle())
    c_tgt = tgt.abs() ** 0.3 * torch.exp(1j * tgt.angle())
    per_bin = (c_est.real - c_tgt.real) ** 2 + (c_est.imag - c_tgt.imag) ** 2
    torch.testing.assert_close(sep.separation_loss(est, tgt), per_bin.mean())
    torch.testing.assert_close(
        sep.separation_loss(est, tgt, reduction="none"), per_bin.mean(dim=(1, 2, 3))
    )
    assert sep.separation_loss(tgt, tgt) == 0


def test_pit_loss_is_the_better_of_both_assignments_for_two_speakers():
    est, tgt = rand_spec(4, 2, 9, 5, seed=14), rand_spec(4, 2, 9, 5, seed=15)
    est[1] = tgt[1].flip(0) + 0.01  # item 1: the estimates come out swapped
    identity = sep.separation_loss(est, tgt, reduction="none")
    swapped = sep.separation_loss(est.flip(1), tgt, reduction="none")
    loss, perm = sep.pit_loss(est, tgt, reduction="none")
    torch.testing.assert_close(loss, torch.minimum(identity, swapped))
    expected = torch.where(
        (swapped < identity)[:, None], torch.tensor([1, 0]), torch.tensor([0, 1])
    )
    assert torch.equal(perm, expected)
    assert perm[1].tolist() == [1, 0]
    torch.testing.assert_close(sep.pit_loss(est, tgt)[0], loss.mean())


@pytest.mark.parametrize("n_src", [2, 3])
def test_pit_loss_is_invariant_to_permuting_the_estimates(n_src):
    est, tgt = rand_spec(3, n_src, 6, 4, seed=16), rand_spec(3, n_src, 6, 4, seed=17)
    loss, perm = sep.pit_loss(est, tgt, reduction="none")
    rows = torch.arange(3)[:, None]
    aligned = est[rows, perm]
    for shuffle in itertools.permutations(range(n_src)):
        loss2, perm2 = sep.pit_loss(est[:, list(shuffle)], tgt, reduction="none")
        torch.testing.assert_close(loss2, loss)
        torch.testing.assert_close(est[:, list(shuffle)][rows, perm2], aligned)
    torch.testing.assert_close(sep.separation_loss(aligned, tgt, reduction="none"), loss)


def test_pit_loss_takes_any_per_item_loss_and_passes_gradients_through_the_best():
    tgt = torch.randn(2, 3, 50, generator=torch.Generator().manual_seed(18))  # waveforms
    est = (tgt[:, [2, 0, 1]] + 0.1).requires_grad_(True)

    def mse(e, t):
        return ((e - t) ** 2).mean(dim=(1, 2))

    loss, perm = sep.pit_loss(est, tgt, loss_fn=mse)
    assert perm.tolist() == [[1, 2, 0], [1, 2, 0]]
    torch.testing.assert_close(loss, torch.tensor(0.01))
    loss.backward()
    torch.testing.assert_close(est.grad, torch.full_like(est, 2 * 0.1 / est[0].numel() / 2))


# ----------------------------------------------------------------------------- bad input

Y = rand_spec(2, 9, 7, seed=19)
EST = rand_spec(2, 2, 9, 7, seed=20)


def says(*parts: str) -> str:
    return "(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts)


CASES = [
    ("p-loss", lambda: sep.separation_loss(EST, EST, p=0.0), says("p must be", "Found: 0.0")),
    ("spec-int", lambda: sep.ideal_complex_mask(Y, torch.ones(9, 7, dtype=torch.int64)),
     says("mixture_spec must have dtype", "int64")),
    ("spec-real", lambda: sep.ideal_complex_mask(Y, Y.abs()),
     says("mixture_spec must have dtype complex", "float64")),
    ("spec-nan", lambda: sep.ideal_complex_mask(
        Y, torch.full((2, 9, 7), float("nan"), dtype=torch.complex128)),
     says("mixture_spec contains", "non-finite")),
    ("mask-last-3", lambda: sep.apply_complex_mask(Y, torch.zeros(2, 9, 7, 3)),
     says("mask must be complex", "(2, 9, 7, 3)")),
    ("mask-freq", lambda: sep.apply_complex_mask(Y, torch.zeros(2, 8, 7, 2)),
     says("mask must have the mixture's (freq, time)", "(2, 8, 7)", "(2, 9, 7)")),
    ("mask-ndim", lambda: sep.apply_complex_mask(Y, EST),
     says("mask must have", "(2, 2, 9, 7)", "(2, 9, 7)")),
    ("mask-batch", lambda: sep.apply_complex_mask(Y, rand_spec(3, 9, 7)),
     says("mask must have", "(3, 9, 7)", "(2, 9, 7)")),
    ("mixture-real", lambda: sep.apply_complex_mask(Y.abs(), Y),
     says("mixture_spec must have dtype complex")),
    ("ideal-shapes", lambda: sep.ideal_complex_mask(Y, EST),
     says("mixture_spec must have source_spec's shape", "(2, 9, 7)", "(2, 2, 9, 7)")),
    ("ideal-eps", lambda: sep.ideal_complex_mask(Y, Y, eps=0), says("eps must be", "Found: 0.0")),
    ("bound-k", lambda: sep.bound_mask(Y, k=-1), says("k must be", "Found: -1.0")),
    ("unbound-c", lambda: sep.unbound_mask(Y, c=0), says("c must be", "Found: 0.0")),
    ("loss-shapes", lambda: sep.separation_loss(EST, EST[:, :1]),
     says("estimates and targets must have the same shape", "(2, 2, 9, 7)", "(2, 1, 9, 7)")),
    ("loss-3d", lambda: sep.separation_loss(Y, Y),
     says("estimates must have at least 4", "(2, 9, 7)")),
    ("loss-5d", lambda: sep.separation_loss(EST[None], EST[None]),
     says("estimates must be complex (B, S, freq, time)", "(1, 2, 2, 9, 7)")),
    ("loss-reduction", lambda: sep.separation_loss(EST, EST, reduction="sum"),
     says("reduction must be one of", "'sum'")),
    ("pit-shapes", lambda: sep.pit_loss(EST, EST[:, :1]),
     says("estimates and targets must have the same shape", "(2, 1, 9, 7)")),
    ("pit-1d", lambda: sep.pit_loss(torch.zeros(3), torch.zeros(3)),
     says("estimates must be (B, S, ...)", "(3,)")),
    ("pit-many", lambda: sep.pit_loss(torch.zeros(1, 7, 4), torch.zeros(1, 7, 4)),
     says("S! assignments", "Found: S=7")),
    ("pit-loss-fn-shape", lambda: sep.pit_loss(EST, EST, loss_fn=lambda e, t: (e - t).abs().mean()),
     says("loss_fn must return one loss per item", "(2,)", "Found: ()")),
    ("pit-not-tensor", lambda: sep.pit_loss([1.0], [1.0]), says("must be torch.Tensors", "list")),
]  # fmt: skip


@pytest.mark.parametrize("call, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_parameter_error_naming_the_value(call, message):
    with pytest.raises(ParameterError, match=message):
        call()
