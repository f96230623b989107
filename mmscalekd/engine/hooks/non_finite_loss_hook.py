"""Stop training at the first NaN/inf loss, naming the loss term, the iteration and the last
finite checkpoint."""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
from mmengine.hooks import Hook

from mmscalekd.registry import HOOKS


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; training was stopped."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` when a logged loss term is NaN or infinite.

    On by default: ``configs/_base_/default_runtime.py`` lists it in
    ``default_hooks`` as ``non_finite`` (turn it off with
    ``--cfg-options default_hooks.non_finite=None``). Runs after each training
    iteration, before the checkpoint hook (priority ``ABOVE_NORMAL``), so no
    checkpoint is written from the broken step. The message names every
    non-finite term (e.g. ``distill.loss_s3_freq``), the iteration, the
    learning rate, which usually points at the cause (a too-large LR, a
    teacher/student normalisation mismatch, fp16 overflow without loss
    scaling), and the newest checkpoint with finite weights to resume from
    (kept by :class:`SafeCheckpointHook`). ``tools/train.py`` turns the error
    into a one-line message and exit status 1.

    Args:
        check_all (bool): Check every logged value, not only the keys that
            contain ``'loss'``. Defaults to False.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, check_all: bool = False) -> None:
        if not isinstance(check_all, bool):
            raise TypeError(f'check_all must be a bool, got {check_all!r}')
        self.check_all = check_all

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs:
            return
        bad = []
        for key, value in outputs.items():
            if not (self.check_all or 'loss' in key):
                continue
            if isinstance(value, torch.Tensor):
                finite = bool(torch.isfinite(value.detach()).all())
                shown = value.detach().float().mean().item() if value.numel() else value
            elif isinstance(value, (int, float)):
                finite, shown = math.isfinite(value), value
            else:
                continue
            if not finite:
                bad.append(f'{key}={shown}')
        if bad:
            try:
                lr = runner.optim_wrapper.get_lr()
            except Exception:  # an optimizer wrapper without get_lr
                lr = 'unknown'
            raise NonFiniteLossError(
                f'Non-finite loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}): '
                f'{", ".join(bad)}; every loss term must be finite. Learning rate: {lr}. '
                f'{self._resume_hint(runner)}Before resuming, lower the learning rate, check '
                "the teacher's mean/std and input size, or enable loss scaling for fp16.")

    @staticmethod
    def _resume_hint(runner) -> str:
        hub = getattr(runner, 'message_hub', None)
        if hub is None:  # not a Runner (a bare hook call)
            return ''
        finite = hub.get_info('last_finite_ckpt')
        if finite:
            return (f'The newest checkpoint with finite weights is {finite} (resume with '
                    f'`tools/train.py CONFIG --resume {finite}`). ')
        last = hub.get_info('last_ckpt')
        if last:
            return (f'The last checkpoint is {last} (its weights were not checked; '
                    'SafeCheckpointHook keeps and names the last finite one). ')
        return 'No checkpoint had been saved yet. '

