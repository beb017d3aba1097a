"""Spectrogram pieces of mask-based speech separation, as in Looking to Listen (Ephrat et al.,
SIGGRAPH 2018): power-law compression, complex ratio masks and the permutation-invariant loss.

Everything works on complex STFTs from :func:`xmodal.audio.stft`, ``(..., freq, time)``;
batches of separated sources are ``(B, S, freq, time)`` (S speakers).

- :func:`xmodal.audio.power_law_compress` / ``power_law_decompress``: ``|X| ** p`` with the
  phase kept (Looking to Listen uses ``p = 0.3`` for the network's input and for its loss).
- :func:`apply_complex_mask`: a complex ratio mask (cRM, Williamson et al. 2016) times the
  mixture, the mask either complex or real with a trailing (real, imaginary) axis of 2.
- :func:`ideal_complex_mask`: the oracle cRM ``S / Y``; :func:`bound_mask` and
  :func:`unbound_mask`: Williamson's bounded form of a mask and its inverse.
- :func:`separation_loss`: the squared error between compressed spectrograms.
- :func:`pit_loss`: any per-item loss under the best assignment of estimates to targets
  (permutation-invariant training, Yu et al. 2017).

Example:
    >>> from xmodal import audio
    >>> from xmodal.audio import separation as sep
    >>> Y = audio.stft(mixture)                              # (B, F, T) complex
    >>> masks = net(audio.power_law_compress(Y))             # (B, S, F, T, 2) real
    >>> estimates = sep.apply_complex_mask(Y.unsqueeze(1), masks)   # (B, S, F, T)
    >>> loss, perm = sep.pit_loss(estimates, audio.stft(sources))  # sources (B, S, time)
    >>> waveforms = audio.istft(estimates, length=mixture.shape[-1])  # (B, S, time)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch

from xmodal._checks import as_signal, check_bool, check_choice, check_positive_number
from xmodal.audio.functional.scale import power_law_compress
from xmodal.errors import ParameterError

__all__ = [
    "MASK_C",
    "MASK_K",
    "MAX_PIT_SOURCES",
    "apply_complex_mask",
    "bound_mask",
    "ideal_complex_mask",
    "pit_loss",
    "separation_loss",
    "unbound_mask",
]

# pit_loss tries all S! assignments: 24 at S = 4, 720 at S = 6. Beyond that a Hungarian
# assignment on a pairwise loss matrix is the tool, not enumeration.
MAX_PIT_SOURCES = 6

# Williamson et al. (2016) squash the cIRM's real and imaginary parts into (-K, K) by
# K (1 - exp(-C x)) / (1 + exp(-C x)) with K = 10, C = 0.1; Looking to Listen
# reimplementations (e.g. bill9800/speech_separation) keep these values.
MASK_K = 10.0
MASK_C = 0.1


# --------------------------------------------------------------------------- checks


def _spec(x, name: str, *, min_ndim: int = 2) -> torch.Tensor:
    return as_signal(x, name, min_ndim=min_ndim, complex_ok=True, real_ok=False)


def _same_shape(a: torch.Tensor, b: torch.Tensor, a_name: str, b_name: str) -> None:
    if a.shape != b.shape:
        raise ParameterError(
            f"{a_name} and {b_name} must have the same shape. "
            f"Found: {tuple(a.shape)} and {tuple(b.shape)}"
        )


def _broadcast(a: torch.Size, b: torch.Size) -> torch.Size | None:
    """The broadcast shape of ``a`` and ``b``, None if they do not broadcast."""
    try:
        return torch.broadcast_shapes(a, b)
    except RuntimeError:
        return None


def _broadcasts_to(a: torch.Size, b: torch.Size) -> bool:
    """``a`` broadcasts to ``b`` with as many dimensions (no silent new leading axes)."""
    return len(a) == len(b) and _broadcast(a, b) == b


def _as_complex_mask(mask) -> torch.Tensor:
    """A mask as a complex tensor: complex ``(..., F, T)`` as given, or real
    ``(..., F, T, 2)`` read as (real, imaginary)."""
    m = as_signal(mask, "mask", complex_ok=True)
    if m.is_complex():
        return m
    if m.ndim < 3 or m.shape[-1] != 2:
        raise ParameterError(
            f"mask must be complex (..., freq, time) or real (..., freq, time, 2) "
            f"(real, imaginary). Found real shape {tuple(m.shape)}"
        )
    # torch.complex takes any strides (a network's permuted output); view_as_complex won't.
    return torch.complex(m[..., 0], m[..., 1])


# --------------------------------------------------------------------------- masks


def apply_complex_mask(mixture_spec, mask) -> torch.Tensor:
    """A complex ratio mask applied to a mixture: ``mask * mixture_spec``, complex product.

    In real and imaginary parts, ``(Mr Yr - Mi Yi) + i (Mr Yi + Mi Yr)`` (Williamson et al.
    2016); the mask changes both the magnitude and the phase of each bin.

    Args:
        mixture_spec: complex ``(..., freq, time)``.
        mask: complex ``(..., freq, time)``, or real ``(..., freq, time, 2)`` with the real
            part at ``[..., 0]`` and the imaginary part at ``[..., 1]``, as a network
            outputs it. Its ``(freq, time)`` must be the mixture's; the dimensions before
            broadcast, and the mask has as many of them as the mixture (to apply S masks
            to one mixture, pass ``mixture_spec.unsqueeze(-3)``: ``(B, 1, F, T)`` with
            masks ``(B, S, F, T)``).

    Returns:
        complex, the broadcast shape ``(..., freq, time)``.
    """
    Y = _spec(mixture_spec, "mixture_spec")
    M = _as_complex_mask(mask)
    if M.ndim != Y.ndim or M.shape[-2:] != Y.shape[-2:] or _broadcast(M.shape, Y.shape) is None:
        raise ParameterError(
            f"mask must have the mixture's (freq, time) and leading dimensions that "
            f"broadcast with it, as many as it has (unsqueeze the mixture's source axis: "
            f"(B, 1, F, T)). Found: mask {tuple(M.shape)} (as complex), "
            f"mixture_spec {tuple(Y.shape)}"
        )
    return M * Y


def ideal_complex_mask(
    source_spec,
    mixture_spec,
    *,
    eps: float = 1e-8,
    bounded: bool = False,
    k: float = MASK_K,
    c: float = MASK_C,
) -> torch.Tensor:
    """The oracle complex ratio mask ``S / Y`` (the cIRM of Williamson et al. 2016).

    Computed as ``S conj(Y) / max(|Y|^2, eps)``: exactly ``S / Y`` wherever
    ``|Y|^2 >= eps``, and going to 0 with ``Y`` in (near-)silent bins instead of blowing up,
    so ``apply_complex_mask(Y, M)`` gives back ``S`` in every bin that the mixture carries.

    Args:
        source_spec: complex ``(..., freq, time)``, one source (or ``(B, S, F, T)``).
        mixture_spec: complex, the shape of ``source_spec`` or broadcastable to it with as
            many dimensions (``(B, 1, F, T)``).
        eps: floor of ``|Y|^2`` in squared STFT magnitude units, > 0.
        bounded: return :func:`bound_mask` of the mask (the training target that
            Williamson et al. and Looking to Listen reimplementations regress).
        k, c: the bound's K and C (used when ``bounded``).

    Returns:
        complex ``(..., freq, time)``; unbounded masks are unbounded (|M| may be large where
        the sources cancel in the mixture).
    """
    S = _spec(source_spec, "source_spec")
    Y = _spec(mixture_spec, "mixture_spec")
    eps = check_positive_number(eps, "eps")
    bounded = check_bool(bounded, "bounded")
    if not _broadcasts_to(Y.shape, S.shape):
        raise ParameterError(
            f"mixture_spec must have source_spec's shape or broadcast to it with as many "
            f"dimensions. Found: source_spec {tuple(S.shape)}, mixture_spec {tuple(Y.shape)}"
        )
    power = Y.real.square() + Y.imag.square()
    M = S * Y.conj() / power.clamp_min(eps)
    return bound_mask(M, k=k, c=c) if bounded else M


def _check_bound(k, c) -> tuple[float, float]:
    return check_positive_number(k, "k"), check_positive_number(c, "c")


def _partwise(fn, mask, name: str) -> torch.Tensor:
    """``fn`` applied to the real and the imaginary part of a complex mask, or to every
    value of a real one; the result has the mask's layout."""
    m = as_signal(mask, name, complex_ok=True)
    if m.is_complex():
        return torch.complex(fn(m.real), fn(m.imag))
    return fn(m)


def bound_mask(mask, *, k: float = MASK_K, c: float = MASK_C) -> torch.Tensor:
    """Squash a mask's real and imaginary parts into ``(-k, k)``, as Williamson et al. (2016):
    ``k (1 - exp(-c x)) / (1 + exp(-c x))``, i.e. ``k tanh(c x / 2)``, part by part.

    A network regresses this bounded target rather than the cIRM, whose parts are
    unbounded. ``k = 10, c = 0.1`` are Williamson's values, kept by the Looking to Listen
    reimplementations; the paper itself bounds its masks with a sigmoid.

    Args:
        mask: complex ``(..., freq, time)`` or real with any last axis (each value is
            squashed; a ``(..., freq, time, 2)`` mask keeps its layout).

    Returns:
        the layout and shape of ``mask``, every part in ``(-k, k)`` (reaching ``±k`` in
        floating point once ``|c x / 2|`` is past about 9 in float32, 19 in float64).
    """
    k, c = _check_bound(k, c)
    return _partwise(lambda x: k * torch.tanh(0.5 * c * x), mask, "mask")


def unbound_mask(bounded, *, k: float = MASK_K, c: float = MASK_C) -> torch.Tensor:
    """The inverse of :func:`bound_mask`: ``-(1 / c) log((k - x) / (k + x))``, i.e.
    ``(2 / c) atanh(x / k)``, part by part.

    Values at or beyond ``±k`` (a saturated bound in floating point, or a network with a
    linear output that overshoots) are clamped to just inside, so they map to the largest
    finite mask value (about 166 for float32 and 367 for float64 with ``c = 0.1``) rather
    than to inf or NaN.

    Args:
        bounded: complex ``(..., freq, time)`` or real ``(..., freq, time, 2)``.

    Returns:
        the layout and shape of ``bounded``.
    """
    k, c = _check_bound(k, c)

    def inverse(x):
        edge = 1.0 - torch.finfo(x.dtype).eps
        return (2.0 / c) * torch.atanh((x / k).clamp(-edge, edge))

    return _partwise(inverse, bounded, "bounded")


# --------------------------------------------------------------------------- losses


def _check_sources(x, name: str) -> torch.Tensor:
    x = _spec(x, name, min_ndim=4)
    if x.ndim != 4:
        raise ParameterError(
            f"{name} must be complex (B, S, freq, time). Found shape {tuple(x.shape)}"
        )
    return x


def separation_loss(estimates, targets, *, p: float = 0.3, reduction: str = "mean"):
    """Looking to Listen's loss: the squared error between power-law compressed spectrograms.

    ``mean |C(estimates) - C(targets)|^2`` (``C``: :func:`~xmodal.audio.power_law_compress`)
    over speakers and time-frequency bins, where a bin's squared error is that of its real
    part plus that of its imaginary part. (Keras reimplementations that take the MSE over a
    real ``(..., 2)`` layout get half of this value.)

    Args:
        estimates: complex ``(B, S, freq, time)``, the separated spectrograms.
        targets: complex ``(B, S, freq, time)``, the clean ones, in the same order.
        p: the compression exponent, > 0.
        reduction: ``"mean"``: a scalar, the mean over the batch too; ``"none"``: ``(B,)``,
            one loss per item (what :func:`pit_loss` needs).
    """
    est = _check_sources(estimates, "estimates")
    tgt = _check_sources(targets, "targets")
    _same_shape(est, tgt, "estimates", "targets")
    p = check_positive_number(p, "p")
    check_choice(reduction, "reduction", ("mean", "none"))
    diff = power_law_compress(est, power=p) - power_law_compress(tgt, power=p)
    per_bin = diff.real.square() + diff.imag.square()  # (B, S, F, T)
    per_item = per_bin.flatten(1).mean(dim=1)
    return per_item.mean() if reduction == "mean" else per_item


def _default_pit_loss(estimates, targets):
    return separation_loss(estimates, targets, reduction="none")


def pit_loss(
    estimates,
    targets,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    reduction: str = "mean",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Permutation-invariant training (Yu et al. 2017): the loss under the best assignment
    of estimates to targets, item by item.

    A separator has no reason to output speaker 1 first; PIT scores each item under every
    assignment of its S estimates to its S targets and keeps the smallest loss. All S!
    assignments are tried, each a call of ``loss_fn`` on the whole batch: fine for the
    usual S <= 4 (24 calls), refused above ``MAX_PIT_SOURCES`` (6, 720 calls).

    Args:
        estimates: ``(B, S, ...)``, e.g. complex spectrograms ``(B, S, F, T)`` or
            waveforms ``(B, S, time)``.
        targets: the shape of ``estimates``.
        loss_fn: ``loss_fn(estimates, targets) -> (B,)``, one loss per item for estimates
            already in the targets' order. Defaults to :func:`separation_loss` with
            ``reduction="none"`` (complex ``(B, S, F, T)`` inputs).
        reduction: ``"mean"``: the loss is a scalar, the mean over the batch; ``"none"``:
            ``(B,)``.

    Returns:
        ``(loss, perm)``. ``perm`` is ``(B, S)`` int64: ``perm[b, j]`` is the estimate
        assigned to target ``j``, so ``estimates[torch.arange(B)[:, None], perm]`` lines
        the estimates up with the targets. Gradients flow through the best assignment.
    """
    if not isinstance(estimates, torch.Tensor) or not isinstance(targets, torch.Tensor):
        found = f"{type(estimates).__name__} and {type(targets).__name__}"
        raise ParameterError(f"estimates and targets must be torch.Tensors. Found: {found}")
    if estimates.ndim < 2:
        raise ParameterError(f"estimates must be (B, S, ...). Found shape {tuple(estimates.shape)}")
    _same_shape(estimates, targets, "estimates", "targets")
    check_choice(reduction, "reduction", ("mean", "none"))
    batch, n_src = estimates.shape[:2]
    if not 1 <= n_src <= MAX_PIT_SOURCES:
        raise ParameterError(
            f"pit_loss tries all S! assignments, for 1 <= S <= {MAX_PIT_SOURCES} sources. "
            f"Found: S={n_src}"
        )
    if loss_fn is None:
        loss_fn = _default_pit_loss
    elif not callable(loss_fn):
        raise ParameterError(f"loss_fn must be callable. Found: {loss_fn!r}")

    perms = torch.tensor(list(itertools.permutations(range(n_src))), device=estimates.device)
    losses = []
    for perm in perms:  # (S,): estimate perm[j] against target j
        loss = loss_fn(estimates[:, perm], targets)
        if not isinstance(loss, torch.Tensor) or loss.shape != (batch,):
            found = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ParameterError(
                f"loss_fn must return one loss per item, shape ({batch},). Found: {found}"
            )
        losses.append(loss)
    losses = torch.stack(losses, dim=1)  # (B, S!)
    best = losses.argmin(dim=1)
    per_item = losses.gather(1, best[:, None]).squeeze(1)
    loss = per_item.mean() if reduction == "mean" else per_item
    return loss, perms[best]
