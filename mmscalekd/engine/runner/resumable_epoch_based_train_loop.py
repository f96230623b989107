"""An epoch-based train loop that resumes mid-epoch exactly."""
from __future__ import annotations

import warnings
from typing import Dict, List, Optional, Tuple, Union

from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import DataLoader

from mmscalekd.registry import LOOPS

from ._data_position import open_epoch, resume_hook, resume_state


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` that continues an epoch where the checkpoint left it.

    MMEngine's loop restarts the whole epoch when a checkpoint saved mid-epoch
    (``CheckpointHook(by_epoch=False)``) is resumed, so some batches are seen
    twice and the random state differs. This loop skips the batches of the
    current epoch that were already trained on (cheaply with
    :class:`ResumableSampler`) and restores the RNG states saved by
    :class:`ExactResumeHook` (list it in ``custom_hooks``; without it only the data
    position is restored), so the resumed run is
    bitwise the uninterrupted one on CPU with deterministic settings (see
    ``docs/reliability.md``). Batch indices passed to hooks continue from the
    skipped position.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The train dataloader.
        max_epochs (int): Total epochs.
        val_begin (int): First epoch that validates. Defaults to 1.
        val_interval (int): Validation interval in epochs. Defaults to 1.
        dynamic_intervals (list[tuple[int, int]], optional): As MMEngine's.
            Defaults to None.
    """

    supports_exact_resume = True

    def __init__(self, runner, dataloader: Union[DataLoader, Dict], max_epochs: int,
                 val_begin: int = 1, val_interval: int = 1,
                 dynamic_intervals: Optional[List[Tuple[int, int]]] = None) -> None:
        super().__init__(runner, dataloader, max_epochs, val_begin=val_begin,
                         val_interval=val_interval, dynamic_intervals=dynamic_intervals)
        self._resume_hook = resume_hook(runner, type(self).__name__)
        self._positioned = False  # the data position of a resume is applied once

    def run_epoch(self) -> None:
        """Iterate one epoch, or the rest of it right after a resume."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        num_batches = len(self.dataloader)
        state = resume_state(self._resume_hook, self._positioned, self._iter, num_batches)
        self._positioned = True
        skip, rng = 0, None
        if state is not None:
            skip = self._iter - self._epoch * num_batches
            if not 0 <= skip <= num_batches:
                warnings.warn(f'ResumableEpochBasedTrainLoop: iteration {self._iter} is not in '
                              f'epoch {self._epoch} of {num_batches} batches; restarting the '
                              'epoch as MMEngine does.')
                skip = 0
            else:
                rng = state['rng']
        for idx, data_batch in enumerate(open_epoch(self.dataloader, skip, rng), start=skip):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
