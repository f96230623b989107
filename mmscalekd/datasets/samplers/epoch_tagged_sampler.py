"""A sampler whose keys carry the epoch: ``(epoch, index)``."""
from __future__ import annotations

from typing import Iterator, Tuple

from mmscalekd.registry import DATA_SAMPLERS

from .resumable_sampler import ResumableSampler


@DATA_SAMPLERS.register_module()
class EpochTaggedSampler(ResumableSampler):
    """:class:`ResumableSampler` that yields ``(epoch, index)`` pairs instead of indices.

    The order and the split across ranks are ``DefaultSampler``'s (shuffled from ``seed +
    epoch``); each index is paired with the sampler's epoch at the start of the pass, as set by
    MMEngine's ``DistSamplerSeedHook`` (epoch-based loops) or by the endless iterator of the
    iteration-based loops. The epoch travels with the key into the dataloader workers, so
    :class:`SeededViewDataset` and :class:`TeacherCacheDataset` know it without any shared state
    (persistent workers included). Mid-epoch resume (:meth:`start_at`) works as in
    :class:`ResumableSampler`.

    Args: as :class:`ResumableSampler`.
    """

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        epoch = int(self.epoch)
        return ((epoch, int(i)) for i in super().__iter__())
