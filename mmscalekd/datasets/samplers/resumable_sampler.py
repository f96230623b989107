"""A DefaultSampler that can start an epoch part-way through, for exact mid-epoch resume."""
from __future__ import annotations

from typing import Iterator

from mmengine.dataset import DefaultSampler

from mmscalekd.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class ResumableSampler(DefaultSampler):
    """MMEngine's ``DefaultSampler`` plus a one-shot start offset.

    The order of every epoch is exactly ``DefaultSampler``'s (shuffled from
    ``seed + epoch``, split across ranks). :meth:`start_at` makes the *next*
    pass begin at a given position of this rank's share, so a run resumed in
    the middle of an epoch continues with the samples that had not been seen,
    without loading and discarding the consumed ones. The offset applies once;
    later passes are whole again. ``len()`` stays the full epoch length, so
    ``len(dataloader)`` (and schedules converted from epochs) do not change.

    The resumable train loops (:class:`ResumableEpochBasedTrainLoop`,
    :class:`ResumableIterBasedTrainLoop`) call :meth:`start_at` on resume;
    with another sampler they skip consumed batches by loading them (exact, but
    slower).

    Args:
        dataset: As ``DefaultSampler``.
        shuffle (bool): As ``DefaultSampler``. Defaults to True.
        seed (int, optional): As ``DefaultSampler``. Defaults to None.
        round_up (bool): As ``DefaultSampler``. Defaults to True.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._start = 0

    def start_at(self, position: int) -> None:
        """Begin the next pass at ``position`` (samples of this rank already consumed).

        Args:
            position (int): ``0 <= position <= len(self)``.
        """
        if isinstance(position, bool) or not isinstance(position, int) \
                or not 0 <= position <= len(self):
            raise ValueError(f'position must be an int in [0, {len(self)}] (samples of this '
                             f'rank in one epoch), got {position!r}')
        self._start = position

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        start, self._start = self._start, 0
        return iter(indices[start:])
