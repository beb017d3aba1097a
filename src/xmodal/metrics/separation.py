"""How well sources were separated from a mixture, in dB: SI-SDR and BSS-Eval SDR, and how
much each improves on the mixture itself.

- :func:`si_sdr`, :func:`si_sdr_improvement`: scale-invariant SDR (Le Roux et al. 2019),
  ``10 log10(|a s|^2 / |a s - s_hat|^2)`` with the best scale ``a``, computed by
  ``torchmetrics.functional.audio.scale_invariant_signal_distortion_ratio``. One estimate
  against one reference, no permutation.
- :func:`sdr`, :func:`sdr_improvement`: the SDR of BSS-Eval (Vincent et al. 2006), as
  ``mir_eval.separation.bss_eval_sources`` computes it on whole signals: the estimate may
  differ from its reference by a 512-tap filter. Computed by ``fast_bss_eval``. The
  assignment of estimates to references is solved, as BSS-Eval does; the result is per
  reference.

SDR here means BSS-Eval's: ``fast_bss_eval`` picks the assignment that maximizes the summed
SDR, ``mir_eval.separation.bss_eval_sources`` the one that maximizes the mean SIR; they can
differ only where SDR and SIR rank the assignments differently, i.e. for estimates that are
barely separated (tests/metrics/test_separation.py checks that they agree otherwise).

Example:
    >>> from xmodal.metrics.separation import sdr, si_sdr_improvement
    >>> sdr(estimates, sources)                          # (B, S, time) -> (B, S) dB
    >>> si_sdr_improvement(estimates, sources, mixture.unsqueeze(1))   # (B, S) dB
"""

from __future__ import annotations

import fast_bss_eval
import torch
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

from xmodal._checks import as_signal, check_bool, check_positive_int
from xmodal.errors import ParameterError

__all__ = ["sdr", "sdr_improvement", "si_sdr", "si_sdr_improvement"]

# mir_eval's bss_eval_sources allows a 512-tap distortion filter, fixed; so does museval.
FILTER_LENGTH = 512


def _pair(estimate, reference, e_name: str, r_name: str, *, min_ndim: int = 1):
    est = as_signal(estimate, e_name, min_ndim=min_ndim)
    ref = as_signal(reference, r_name, min_ndim=min_ndim)
    if est.shape != ref.shape:
        raise ParameterError(
            f"{e_name} and {r_name} must have the same shape. "
            f"Found: {tuple(est.shape)} and {tuple(ref.shape)}"
        )
    return est, ref


def _mixture_like(mixture, reference: torch.Tensor) -> torch.Tensor:
    """``mixture`` expanded to ``reference``'s shape: it must have as many dimensions and
    broadcast to it, e.g. ``(B, 1, time)`` against ``(B, S, time)``."""
    mix = as_signal(mixture, "mixture")
    fits = mix.ndim == reference.ndim and mix.shape[-1] == reference.shape[-1]
    if fits:
        try:
            fits = torch.broadcast_shapes(mix.shape, reference.shape) == reference.shape
        except RuntimeError:
            fits = False
    if not fits:
        raise ParameterError(
            f"mixture must broadcast to the references' shape {tuple(reference.shape)} with "
            f"as many dimensions (one mixture for S sources: unsqueeze(-2), (B, 1, time)). "
            f"Found shape {tuple(mix.shape)}"
        )
    return mix.expand_as(reference)


# ----------------------------------------------------------------------------- SI-SDR


def si_sdr(estimate, reference, *, zero_mean: bool = False) -> torch.Tensor:
    """Scale-invariant signal-to-distortion ratio in dB, item by item.

    ``10 log10(|a s|^2 / |a s - s_hat|^2)`` with ``a = <s_hat, s> / |s|^2``: a rescaled
    estimate scores as the estimate, and noise orthogonal to ``s`` at a given SNR scores
    that SNR. An exact estimate (up to scale) scores very high but finite: torchmetrics adds
    the dtype's eps to both energies, so the ceiling grows with the signal's energy (about
    200 dB in float64 and 110 dB in float32 for a second of unit-variance noise at 16 kHz).

    Args:
        estimate: ``(..., time)``, float32 or float64.
        reference: the shape of ``estimate``.
        zero_mean: subtract each signal's mean first (as asteroid's loss does).

    Returns:
        ``(...)``, dB.
    """
    est, ref = _pair(estimate, reference, "estimate", "reference")
    zero_mean = check_bool(zero_mean, "zero_mean")
    return scale_invariant_signal_distortion_ratio(est, ref, zero_mean=zero_mean)


def si_sdr_improvement(estimate, reference, mixture, *, zero_mean: bool = False):
    """SI-SDRi in dB: ``si_sdr(estimate, reference) - si_sdr(mixture, reference)``.

    Args:
        estimate: ``(..., time)``, e.g. ``(B, S, time)``.
        reference: the shape of ``estimate``.
        mixture: broadcastable to ``reference`` with as many dimensions: ``(B, 1, time)``.

    Returns:
        ``(...)``, dB.
    """
    est, ref = _pair(estimate, reference, "estimate", "reference")
    mix = _mixture_like(mixture, ref)
    return si_sdr(est, ref, zero_mean=zero_mean) - si_sdr(mix, ref, zero_mean=zero_mean)


# ----------------------------------------------------------------------------- BSS-Eval SDR


def _check_sources(estimates, references, filter_length):
    est, ref = _pair(estimates, references, "estimates", "references", min_ndim=2)
    filter_length = check_positive_int(filter_length, "filter_length")
    if ref.shape[-1] < filter_length:
        raise ParameterError(
            f"the signals must be at least filter_length={filter_length} samples long. "
            f"Found {ref.shape[-1]}"
        )
    # A silent reference makes the filter's normal equations singular (mir_eval refuses
    # it too); a silent estimate is fine and scores -inf.
    silent = (ref == 0).all(dim=-1)
    if bool(silent.any()):
        index = tuple(silent.nonzero()[0].tolist())
        raise ParameterError(
            f"references must not be silent: BSS-Eval's SDR is undefined for an all-zero "
            f"reference. Found one at index {index}"
        )
    return est, ref, filter_length


def sdr(
    estimates,
    references,
    *,
    filter_length: int = FILTER_LENGTH,
    return_perm: bool = False,
):
    """BSS-Eval signal-to-distortion ratio in dB, per reference, after the best assignment
    of estimates to references.

    The estimate may differ from its reference by a ``filter_length``-tap filter without
    penalty (BSS-Eval's allowed distortion); what remains is the error. The assignment of
    estimates to references is the one with the largest summed SDR (Hungarian, by
    ``fast_bss_eval``). Computed in float64 whatever the input: so it agrees with
    ``mir_eval`` to ~1e-12 dB; in float32 ``fast_bss_eval`` strays by ~1e-4 dB.

    Args:
        estimates: ``(..., S, time)``: S estimated sources.
        references: the shape of ``estimates``: the true ones.
        filter_length: taps of the allowed distortion filter; 512 as mir_eval and museval.
        return_perm: also return the assignment.

    Returns:
        ``(..., S)`` dB in ``estimates``' dtype, entry ``j`` for reference ``j`` (-inf for a
        silent estimate); with
        ``return_perm``, also ``perm (..., S)`` int64: ``perm[..., j]`` is the estimate
        assigned to reference ``j`` (mir_eval's convention).
    """
    est, ref, filter_length = _check_sources(estimates, references, filter_length)
    return_perm = check_bool(return_perm, "return_perm")
    value, perm = fast_bss_eval.sdr(
        ref.double(), est.double(), filter_length=filter_length, return_perm=True
    )
    value = value.to(est.dtype)
    return (value, perm) if return_perm else value


def sdr_improvement(estimates, references, mixture, *, filter_length: int = FILTER_LENGTH):
    """SDRi in dB: :func:`sdr` of the estimates (best assignment) minus the SDR of the
    mixture itself against each reference.

    Args:
        estimates: ``(..., S, time)``.
        references: the shape of ``estimates``.
        mixture: ``(..., 1, time)`` (or ``(..., S, time)``).

    Returns:
        ``(..., S)`` dB, entry ``j`` for reference ``j``.
    """
    est, ref, filter_length = _check_sources(estimates, references, filter_length)
    mix = _mixture_like(mixture, ref)
    # Each reference against the mixture, no assignment: the mixture holds every source.
    baseline = -fast_bss_eval.sdr_loss(
        mix.double(), ref.double(), filter_length=filter_length, pairwise=False
    )
    return sdr(est, ref, filter_length=filter_length) - baseline.to(est.dtype)
