"""Data loaders whose order is a pure function of (seed, epoch).

Lightning calls ``sampler.set_epoch(epoch)`` before each epoch; the order of that epoch is
then drawn from a generator seeded by (seed, epoch) alone, so it does not depend on how
many epochs ran in this process, and a run resumed from a checkpoint sees the same
batches as one that was never stopped. Imports torch only (no Lightning), so tasks can use
it cheaply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from xmodal._checks import check_bool, check_positive_int
from xmodal.errors import ParameterError

__all__ = ["SeededSampler", "mix_seed", "seeded_loader"]


def mix_seed(*parts: int) -> int:
    """A 63-bit seed that is a pure function of ``parts`` (e.g. ``(seed, epoch)``).

    Hashing, rather than ``seed + epoch``, keeps ``(0, 1)`` and ``(1, 0)`` apart.
    """
    text = ":".join(str(int(p)) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


class SeededSampler(Sampler[int]):
    """Indices ``0 .. n-1``, shuffled per epoch by a generator seeded with (seed, epoch).

    ``skip_once(k, epoch)`` drops the first ``k`` indices of the next pass over ``epoch``
    only: the engine uses it to continue a run resumed from a mid-epoch checkpoint where
    it stopped.
    """

    def __init__(self, n: int, *, shuffle: bool, seed: int) -> None:
        self.n = check_positive_int(n, "len(dataset)")
        self.shuffle = check_bool(shuffle, "shuffle")
        self.seed = int(seed)
        self.epoch = 0
        self._skip: tuple[int, int] | None = None  # (epoch, indices to skip)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def skip_once(self, k: int, epoch: int) -> None:
        self._skip = (int(epoch), max(0, int(k)))

    def order(self, epoch: int | None = None) -> torch.Tensor:
        """The full index order of ``epoch`` (default: the current one), shape ``(n,)``."""
        epoch = self.epoch if epoch is None else epoch
        if not self.shuffle:
            return torch.arange(self.n)
        gen = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
        return torch.randperm(self.n, generator=gen)

    def __iter__(self) -> Iterator[int]:
        skip, self._skip = self._skip, None
        start = skip[1] if skip is not None and skip[0] == self.epoch else 0
        return iter(self.order()[start:].tolist())

    def __len__(self) -> int:
        return self.n


def seeded_loader(
    dataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over a map-style ``dataset`` whose order depends only on (seed, epoch).

    Worker processes are kept between epochs (``persistent_workers``) when
    ``num_workers > 0``; their base seed comes from a generator seeded by ``seed``, so
    iterating never draws from the global RNG (a resumed run stays identical).

        >>> loader = seeded_loader(list(range(10)), batch_size=4, shuffle=True, seed=0)
        >>> loader.sampler.set_epoch(1)
        >>> [len(b) for b in loader]
        [4, 4, 2]
    """
    try:
        n = len(dataset)
    except TypeError:
        raise ParameterError(
            f"seeded_loader needs a dataset with a length (map-style). Found: {type(dataset)!r}"
        ) from None
    if n == 0:
        raise ParameterError("seeded_loader was given an empty dataset")
    batch_size = check_positive_int(batch_size, "batch_size")
    num_workers = check_positive_int(num_workers, "num_workers", minimum=0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ParameterError(f"seed must be an integer. Found: {seed!r}")
    sampler = SeededSampler(n, shuffle=shuffle, seed=seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        drop_last=check_bool(drop_last, "drop_last"),
        pin_memory=check_bool(pin_memory, "pin_memory"),
        persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(mix_seed(seed, -1)),
    )
