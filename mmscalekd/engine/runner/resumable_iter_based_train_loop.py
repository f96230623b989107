"""An iteration-based train loop that resumes mid-epoch exactly, without re-loading data."""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Tuple, Union

from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator
from torch.utils.data import DataLoader

from mmscalekd.registry import LOOPS

from ._data_position import open_epoch, resume_hook, resume_state, sampler_of


class _ContinuedDataloaderIterator(_InfiniteDataloaderIterator):
    """MMEngine's endless iterator, started from an existing iterator and epoch."""

    def __init__(self, dataloader: DataLoader, iterator, epoch: int) -> None:
        self._dataloader = dataloader
        self._iterator = iterator
        self._epoch = epoch


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` whose resume neither re-loads data nor loses the RNG state.

    On resume MMEngine's loop loads and discards every batch consumed so far
    (slow, and the discarded batches draw augmentation randomness again), and
    its endless iterator restarts its epoch count at 0. This loop computes the
    data epoch and position from the iteration count, starts the sampler there
    (:class:`ResumableSampler`, else it loads and discards only the current
    epoch's consumed batches), and restores the RNG states saved by
    :class:`ExactResumeHook` (list it in ``custom_hooks``; without it the loop
    continues at the same data position, without the RNG states).

    Args: as :class:`mmengine.runner.IterBasedTrainLoop`.
    """

    supports_exact_resume = True

    def __init__(self, runner, dataloader: Union[DataLoader, Dict], max_iters: int,
                 val_begin: int = 1, val_interval: int = 1000,
                 dynamic_intervals: Optional[List[Tuple[int, int]]] = None) -> None:
        super().__init__(runner, dataloader, max_iters, val_begin=val_begin,
                         val_interval=val_interval, dynamic_intervals=dynamic_intervals)
        self._resume_hook = resume_hook(runner, type(self).__name__)
        self._positioned = False  # the data position of a resume is applied once

    def _reposition(self) -> None:
        num_batches = len(self.dataloader)
        state = resume_state(self._resume_hook, self._positioned, self._iter, num_batches)
        self._positioned = True
        if state is None:
            if self._iter > 0:  # a checkpoint without our state: MMEngine's way
                print_log(f'Advance dataloader {self._iter} steps (checkpoint without '
                          'exact-resume state)', logger='current', level=logging.WARNING)
                for _ in range(self._iter):
                    next(self.dataloader_iterator)
            return
        epoch, skip = divmod(self._iter, num_batches)
        sampler = sampler_of(self.dataloader)
        if hasattr(sampler, 'set_epoch'):
            sampler.set_epoch(epoch)
        iterator = open_epoch(self.dataloader, skip, state['rng'])
        self.dataloader_iterator = _ContinuedDataloaderIterator(self.dataloader, iterator, epoch)

    def run(self):
        """Launch training (after a resume, from the saved data position)."""
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')  # the whole run is one "epoch"
        self._reposition()
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            self.run_iter(next(self.dataloader_iterator))
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0 or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model
